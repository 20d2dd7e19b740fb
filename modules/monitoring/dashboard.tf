data "aws_region" "current" {}

# One row per function (Lambda's own metrics, the handlers' EMF metrics and their log lines), then the
# table's write capacity and throttles, then the failure queues' depth.
locals {
  # Five graphs per 24-unit row, in this order (widths add up to 24).
  widget_widths = [5, 5, 5, 4, 5]

  function_rows = [
    for index, role in sort(keys(var.functions)) : [
      for column, widget in [
        {
          title = "${role}: invocations, errors, throttles"
          metrics = [
            for name in ["Invocations", "Errors", "Throttles"] :
            ["AWS/Lambda", name, "FunctionName", var.functions[role].function_name, { stat = "Sum" }]
          ]
        },
        {
          title = "${role}: duration (ms) and iterator age (ms)"
          metrics = [
            ["AWS/Lambda", "Duration", "FunctionName", var.functions[role].function_name, { stat = "Average" }],
            ["AWS/Lambda", "Duration", "FunctionName", var.functions[role].function_name, { stat = "Maximum" }],
            ["AWS/Lambda", "IteratorAge", "FunctionName", var.functions[role].function_name, { stat = "Maximum" }],
          ]
        },
        {
          # Custom metrics only for counters a healthy run leaves at zero: each costs $0.30
          # a month for every hour it is published in (docs/design.md §6).
          title = "${role}: records skipped, suppressed as duplicates, retried"
          metrics = [
            for name in ["RecordsSkippedInvalid", "RecordsSuppressedDuplicate", "RecordsRetried"] :
            [var.metrics_namespace, name, "service", var.functions[role].metrics_service, { stat = "Sum" }]
          ]
        },
        {
          # A batch's volume is in its "batch applied" log line, read with Logs Insights when
          # the dashboard is viewed (billed per GB scanned), not published as metrics.
          title = "${role}: records received, applied; summary writes, reads (logs)"
          query = join(" | ", [
            "SOURCE '/aws/lambda/${var.functions[role].function_name}'",
            "filter message = 'batch applied'",
            "stats sum(received) as received, sum(applied) as applied, sum(writes) as writes, sum(reads) as reads by bin(${var.alarm_period_seconds}s)",
          ])
        },
        {
          # Empty in a healthy run: IntegrityEvents (the integrity alarm's metric) and its
          # parts, beside LineageErrors (batches retried while a shard's lineage is unknown).
          title = "${role}: integrity events (empty when healthy)"
          metrics = [
            for name in ["IntegrityEvents", "RecordsOutOfOrder", "KeysReplayGuarded", "UnknownShard", "LineageErrors"] :
            [var.metrics_namespace, name, "service", var.functions[role].metrics_service, { stat = "Sum" }]
          ]
        },
      ] :
      {
        type   = can(widget.query) ? "log" : "metric"
        x      = sum(concat([0], slice(local.widget_widths, 0, column)))
        y      = index * 6
        width  = local.widget_widths[column]
        height = 6
        # Both shapes through JSON: a conditional's two object types must otherwise match.
        properties = jsondecode(can(widget.query) ? jsonencode({
          title = widget.title, query = widget.query, region = data.aws_region.current.name, view = "timeSeries"
          }) : jsonencode({
          title = widget.title, metrics = widget.metrics, region = data.aws_region.current.name, period = var.alarm_period_seconds, view = "timeSeries", stacked = false
        }))
      }
    ]
  ]

  table_and_queue_row = [
    {
      type   = "metric"
      x      = 0
      y      = length(var.functions) * 6
      width  = 12
      height = 6
      properties = {
        title = "table ${var.table_name}: consumed write capacity and throttles"
        metrics = [
          for name in ["ConsumedWriteCapacityUnits", "WriteThrottleEvents", "ReadThrottleEvents"] :
          ["AWS/DynamoDB", name, "TableName", var.table_name, { stat = "Sum" }]
        ]
        region = data.aws_region.current.name
        period = var.alarm_period_seconds
        view   = "timeSeries"
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = length(var.functions) * 6
      width  = 12
      height = 6
      properties = {
        title = "on-failure queues: messages (batches given up on)"
        metrics = [
          for role in sort(keys(var.functions)) :
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.functions[role].failure_queue_name, { stat = "Maximum" }]
        ]
        region = data.aws_region.current.name
        period = var.alarm_period_seconds
        view   = "timeSeries"
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = "${var.name_prefix}-pipeline"
  dashboard_body = jsonencode({ widgets = concat(flatten(local.function_rows), local.table_and_queue_row) })
}
