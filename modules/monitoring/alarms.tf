# Six alarms per stream function, named <function name>-<kind> so that `make status`
# finds a function's alarms by name prefix. Every one notifies on ALARM and on OK.
#
# Cost: CloudWatch bills alarms per metric they analyze, $0.10 per standard-resolution alarm
# metric a month (https://aws.amazon.com/cloudwatch/pricing/; its free tier reads "10 Alarm
# metrics (only applicable to Standard resolution alarms that list metrics directly ...)"), so
# a metric-math alarm over 3 metrics costs 3. Every alarm here watches one metric: the handlers
# publish the integrity signals summed as IntegrityEvents instead of this module folding
# RecordsOutOfOrder, KeysReplayGuarded and UnknownShard with metric math (docs/design.md §9).
locals {
  alarm_kinds = {
    iterator-age = {
      description        = "Stream lag: the last record of a batch was older than the threshold for several periods; the function is falling behind the table's writes."
      namespace          = "AWS/Lambda"
      metric_name        = "IteratorAge"
      statistic          = "Maximum"
      threshold          = var.iterator_age_threshold_seconds * 1000 # IteratorAge is in milliseconds
      evaluation_periods = var.iterator_age_evaluation_periods
      dimension          = "function"
    }
    errors = {
      description        = "The function failed invocations (throttling, an outage, a timeout: a malformed record never fails a batch): Lambda retries the batch, by default until its records are older than the mapping's maximum record age (6 h), then sends it to the on-failure queue."
      namespace          = "AWS/Lambda"
      metric_name        = "Errors"
      statistic          = "Sum"
      threshold          = var.errors_threshold
      evaluation_periods = 1
      dimension          = "function"
    }
    throttles = {
      description        = "Invocations were throttled (account or reserved concurrency): the shard waits and its lag grows."
      namespace          = "AWS/Lambda"
      metric_name        = "Throttles"
      statistic          = "Sum"
      threshold          = var.throttles_threshold
      evaluation_periods = 1
      dimension          = "function"
    }
    failure-queue = {
      description        = "Batches were given up on: their records are missing from the summaries until `make redrive` (or `make reconcile ARGS=--repair`)."
      namespace          = "AWS/SQS"
      metric_name        = "ApproximateNumberOfMessagesVisible"
      statistic          = "Maximum"
      threshold          = 0
      evaluation_periods = 1
      dimension          = "queue"
    }
    skipped-invalid = {
      description        = "The function skipped malformed stream records (logged with sequence number and reason); a writer produces items outside the data model."
      namespace          = var.metrics_namespace
      metric_name        = "RecordsSkippedInvalid"
      statistic          = "Sum"
      threshold          = 0
      evaluation_periods = 1
      dimension          = "service"
    }
    integrity = {
      description        = "The function met a delivery that a healthy run never shows (IntegrityEvents = RecordsOutOfOrder + KeysReplayGuarded + UnknownShard, each also published under its own name and logged as an error): a range of a shard delivered before an earlier one was applied, a replay of a finished parent shard that the replay guard suppressed, or a shard DescribeStream does not list. Check with `make reconcile`; `make reconcile ARGS=--repair` restores the counters (docs/design.md §8, §9)."
      namespace          = var.metrics_namespace
      metric_name        = "IntegrityEvents"
      statistic          = "Sum"
      threshold          = 0
      evaluation_periods = 1
      dimension          = "service"
    }
  }

  alarms = merge([
    for role, fn in var.functions : {
      for kind, spec in local.alarm_kinds : "${role}.${kind}" => merge(spec, {
        name = "${fn.function_name}-${kind}"
        dimensions = {
          function = { FunctionName = fn.function_name }
          queue    = { QueueName = fn.failure_queue_name }
          service  = { service = fn.metrics_service }
        }[spec.dimension]
      })
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = each.value.name
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = var.alarm_period_seconds
  evaluation_periods  = each.value.evaluation_periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  # No data means no invocation, no error, no message, no skipped record, no integrity
  # event: all healthy (the handlers publish a counter only when it is not zero, and an SQS
  # queue that holds messages counts as active and keeps publishing its depth).
  treat_missing_data = "notBreaching"
  alarm_actions      = [local.topic_arn]
  ok_actions         = [local.topic_arn]
  tags               = var.tags

  lifecycle {
    precondition {
      condition     = var.alarm_topic_arn == null || var.alarm_topic_kms_key_arn == null
      error_message = "alarm_topic_kms_key_arn encrypts the topic this module creates; with alarm_topic_arn set no topic is created, so the key would be ignored: encrypt the passed topic where it is managed."
    }
  }
}
