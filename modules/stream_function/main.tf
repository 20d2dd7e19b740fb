resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  function_name    = var.name
  description      = var.description
  role             = aws_iam_role.this.arn
  filename         = var.package_file
  source_code_hash = filebase64sha256(var.package_file)
  handler          = var.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = var.memory_size
  timeout          = var.timeout

  environment {
    # The handlers keep a shard's exactly-once mark as long as the mapping may still
    # deliver that shard's records (lambda_src/video_stats/marks.py, "Retention").
    variables = merge(var.environment, {
      MARK_RETENTION_SECONDS = tostring(var.maximum_record_age_in_seconds + var.mark_retention_margin_seconds)
    })
  }

  tags = var.tags

  # Lambda logs to /aws/lambda/<name>, the group above (Powertools writes JSON);
  # it must exist first, or Lambda creates one without retention.
  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

# Receives the metadata (shard, sequence range) of batches given up on after
# the retries or the record-age limit, so that no record is lost silently.
resource "aws_sqs_queue" "on_failure" {
  name                      = "${var.name}-on-failure"
  message_retention_seconds = var.failure_queue_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_lambda_event_source_mapping" "this" {
  function_name     = aws_lambda_function.this.arn
  event_source_arn  = var.stream_arn
  starting_position = var.starting_position
  enabled           = var.enabled

  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  parallelization_factor             = var.parallelization_factor
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = var.bisect_batch_on_function_error
  tumbling_window_in_seconds         = var.tumbling_window_in_seconds
  function_response_types            = var.report_batch_item_failures ? ["ReportBatchItemFailures"] : []

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.on_failure.arn
    }
  }

  filter_criteria {
    dynamic "filter" {
      for_each = var.filter_patterns
      content {
        pattern = filter.value
      }
    }
  }

  tags = var.tags

  # The role must be able to read the stream and send to the queue before the
  # mapping is created, or creation fails validation.
  depends_on = [aws_iam_role_policy.this]
}
