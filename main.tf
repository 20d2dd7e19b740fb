module "table" {
  source = "./modules/dynamodb_table"

  name                   = "${var.name_prefix}-data"
  deletion_protection    = var.deletion_protection
  point_in_time_recovery = var.point_in_time_recovery
  kms_key_arn            = var.table_kms_key_arn
  tags                   = var.tags
}

locals {
  # Relative to path.module, not to the caller's working directory: `make deploy` runs
  # Terraform in deploy/, a test in tests/terraform/stack, a caller somewhere else.
  package_file = coalesce(var.package_file, "${path.module}/build/lambda.zip")

  handler_environment = {
    TABLE_NAME                   = module.table.name
    SUMMARY_INDEX_SHARDS         = tostring(var.summary_index_shards)
    POWERTOOLS_METRICS_NAMESPACE = "VideoStats"
    POWERTOOLS_LOG_LEVEL         = var.log_level
  }

  stream_functions = {
    views = {
      description = "Keeps the views and duration counters of the video and user summaries exact."
      handler     = "video_stats.handlers.update_view_counters"
      item_type   = "VIEW"
    }
    votes = {
      description = "Keeps the likes and dislikes counters of the video and user summaries exact."
      handler     = "video_stats.handlers.update_vote_counters"
      item_type   = "VOTE"
    }
  }
}

locals {
  # Powertools' service name: the `service` dimension of each function's EMF metrics.
  metrics_service = { for role in keys(local.stream_functions) : role => "update-${role}" }

  # Lag beyond the batching window before the iterator-age alarm counts a period: a quiet
  # shard's only record legitimately waits the whole window (docs/design.md §9).
  iterator_age_margin_seconds = 120
}

# One filtered stream function per base item type (docs/design.md §3, §4).
module "stream_function" {
  source   = "./modules/stream_function"
  for_each = local.stream_functions

  name            = "${var.name_prefix}-update-${each.key}"
  description     = each.value.description
  handler         = each.value.handler
  runtime         = var.lambda_runtime
  architecture    = var.lambda_architecture
  memory_size     = var.lambda_memory_size
  timeout         = var.lambda_timeout
  package_file    = local.package_file
  environment     = merge(local.handler_environment, { POWERTOOLS_SERVICE_NAME = local.metrics_service[each.key] })
  table_arn       = module.table.arn
  stream_arn      = module.table.stream_arn
  filter_patterns = local.filter_patterns[each.value.item_type]

  log_retention_days                 = var.log_retention_days
  batch_size                         = var.stream_mapping.batch_size
  maximum_batching_window_in_seconds = var.stream_mapping.maximum_batching_window_in_seconds
  starting_position                  = var.stream_mapping.starting_position
  maximum_retry_attempts             = var.stream_mapping.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.stream_mapping.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = var.stream_mapping.bisect_batch_on_function_error
  report_batch_item_failures         = var.stream_mapping.report_batch_item_failures
  tumbling_window_in_seconds         = var.stream_mapping.tumbling_window_in_seconds
  enabled                            = var.stream_mapping.enabled
  tags                               = var.tags
}

# Alarms (stream lag, errors, throttles, given-up batches, skipped records, integrity
# events), their SNS topic and the dashboard; the same on AWS and on the local endpoint
# (docs/design.md §9).
module "monitoring" {
  source = "./modules/monitoring"

  name_prefix       = var.name_prefix
  table_name        = module.table.name
  metrics_namespace = local.handler_environment.POWERTOOLS_METRICS_NAMESPACE
  functions = {
    for role, fn in module.stream_function : role => {
      function_name      = fn.function_name
      failure_queue_name = element(split(":", fn.failure_queue_arn), 5)
      metrics_service    = local.metrics_service[role]
    }
  }

  alarm_topic_arn                 = var.monitoring.alarm_topic_arn
  alarm_topic_kms_key_arn         = var.monitoring.alarm_topic_kms_key_arn
  alarm_email                     = var.monitoring.alarm_email
  alarm_period_seconds            = var.monitoring.alarm_period_seconds
  iterator_age_threshold_seconds  = coalesce(var.monitoring.iterator_age_threshold_seconds, var.stream_mapping.maximum_batching_window_in_seconds + local.iterator_age_margin_seconds)
  iterator_age_evaluation_periods = var.monitoring.iterator_age_evaluation_periods
  errors_threshold                = var.monitoring.errors_threshold
  throttles_threshold             = var.monitoring.throttles_threshold
  tags                            = var.tags
}
