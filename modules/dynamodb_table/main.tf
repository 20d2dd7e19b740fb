# One table in single-table design (docs/design.md §2). The key schema and GSI1 are a
# contract with existing readers and writers; GSI2 is a sparse ranking index that
# only the summary items project into.
resource "aws_dynamodb_table" "this" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "PK"
  range_key    = "SK"

  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "PK"
    type = "S"
  }

  attribute {
    name = "SK"
    type = "S"
  }

  attribute {
    name = "GSI1PK"
    type = "S"
  }

  attribute {
    name = "GSI1SK"
    type = "S"
  }

  attribute {
    name = "GSI2PK"
    type = "S"
  }

  attribute {
    name = "GSI2SK"
    type = "S"
  }

  # The data model's access patterns (docs/design.md §2). It projects the data model's
  # attributes, not ALL: the summaries' exactly-once marks are bookkeeping, and
  # with ALL every mark change would be copied into the index (a second write as
  # large as the item). Every item of the model holds only keys and these
  # attributes, so every GSI1 query returns exactly what it returned with ALL,
  # minus the marks.
  global_secondary_index {
    name               = "GSI1"
    hash_key           = "GSI1PK"
    range_key          = "GSI1SK"
    projection_type    = "INCLUDE"
    non_key_attributes = var.gsi1_attributes
  }

  # Summaries carry GSI2PK = "<type>#<shard>"; nothing else does, so the index
  # holds only summaries and listing them never scans the table. The range key
  # is the power-of-two bucket of views (GSI2SK = "00".."63"), and only keys are
  # projected: DynamoDB writes an index only when a projected attribute changes,
  # so a summary update costs GSI2 nothing unless views leaves its bucket (about
  # log2(views) times in a summary's life). Readers take the top buckets and
  # fetch the exact counters with BatchGetItem (scripts/vstats/tables.py).
  global_secondary_index {
    name            = "GSI2"
    hash_key        = "GSI2PK"
    range_key       = "GSI2SK"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  tags = var.tags
}
