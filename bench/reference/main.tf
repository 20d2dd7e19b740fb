# The reference design of the blog post "Simplify your code and save money with
# Lambda Event Filters" (docs/design.md §4, §6), rebuilt on this project's table module for
# `make bench` only: it is never deployed by `make deploy`.
#
# Faithful to the reference code, including its mistakes:
# - batch size 1 and no batching window: one invocation per stream record;
# - the blog's filters, one pattern per function, which never match a REMOVE (it
#   has no NewImage) and drop every MODIFY (a changed vote);
# - handlers that write both summaries in one TransactWriteItems per record;
# - the CDK defaults the reference code ran with: 128 MB, x86_64, and an event
#   source mapping with unlimited retries, no record age limit, no bisection, no
#   partial batch responses, no tumbling window and no on-failure destination.
# Its functions and mappings are its own (functions.tf), not modules/stream_function: that
# module refuses exactly these settings, which would lose counts with this project's handlers.
# Departures: the runtime is python3.12 (the reference's python3.9 is deprecated),
# the timeout is 30 s instead of 3 s (a loaded local endpoint is slower than AWS
# and must not turn into spurious retries), and the table is this project's (the
# §2 item format; the reference summaries never carry GSI2PK, so GSI2 stays empty).

module "table" {
  source = "../../modules/dynamodb_table"

  name                   = "${var.name_prefix}-data"
  deletion_protection    = false
  point_in_time_recovery = false
}

locals {
  memory_size  = 128
  architecture = "x86_64"

  mapping = {
    batch_size                         = 1
    maximum_batching_window_in_seconds = 0
    starting_position                  = "LATEST"
    maximum_retry_attempts             = -1
    maximum_record_age_in_seconds      = -1
    bisect_batch_on_function_error     = false
    report_batch_item_failures         = false
    tumbling_window_in_seconds         = 0
  }

  # The blog's patterns, {"dynamodb":{"NewImage":{"type":{"S":[T]}}},"eventName":["INSERT","REMOVE"]},
  # restated on the dynamodb key alone, since "DynamoDB event source mappings only support
  # filtering on the `dynamodb` key" (docs/design.md §4) and the local endpoint refuses
  # eventName. They match the same records: a REMOVE has no NewImage, and a record without an
  # OldImage (every image holds the key PK) is an INSERT. So, as in the blog, INSERT only.
  blog_filter_patterns = {
    for item_type in ["VIEW", "VOTE"] : item_type => jsonencode({
      dynamodb = {
        NewImage = { type = { S = [item_type] } }
        OldImage = { PK = { S = [{ exists = false }] } }
      }
    })
  }

  functions = {
    views = { handler = "reference_design.handlers.update_view_counters", item_type = "VIEW" }
    votes = { handler = "reference_design.handlers.update_like_counters", item_type = "VOTE" }
  }
}
