# The reference design's two functions and their event source mappings, with the blog's
# settings (main.tf, local.mapping); least privilege as in modules/stream_function.

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${var.name_prefix}-update-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "ReadStream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    resources = [module.table.stream_arn]
  }

  statement {
    sid       = "ListStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["${module.table.arn}/stream/*"]
  }

  statement {
    sid       = "UpdateSummaries"
    actions   = ["dynamodb:UpdateItem"]
    resources = [module.table.arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${var.name_prefix}-update-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${var.name_prefix}-update-${each.key}"
  retention_in_days = 1
}

resource "aws_lambda_function" "function" {
  for_each = local.functions

  function_name    = "${var.name_prefix}-update-${each.key}"
  description      = "Reference design (benchmark only): one transaction per ${each.value.item_type} record."
  role             = aws_iam_role.function[each.key].arn
  filename         = var.package_file
  source_code_hash = filebase64sha256(var.package_file)
  handler          = each.value.handler
  runtime          = "python3.12"
  architectures    = [local.architecture]
  memory_size      = local.memory_size
  timeout          = 30

  environment {
    variables = { TABLE_NAME = module.table.name }
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "function" {
  for_each = local.functions

  function_name     = aws_lambda_function.function[each.key].arn
  event_source_arn  = module.table.stream_arn
  starting_position = local.mapping.starting_position

  batch_size                         = local.mapping.batch_size
  maximum_batching_window_in_seconds = local.mapping.maximum_batching_window_in_seconds
  maximum_retry_attempts             = local.mapping.maximum_retry_attempts
  maximum_record_age_in_seconds      = local.mapping.maximum_record_age_in_seconds
  bisect_batch_on_function_error     = local.mapping.bisect_batch_on_function_error
  tumbling_window_in_seconds         = local.mapping.tumbling_window_in_seconds
  function_response_types            = local.mapping.report_batch_item_failures ? ["ReportBatchItemFailures"] : []

  filter_criteria {
    filter {
      pattern = local.blog_filter_patterns[each.value.item_type]
    }
  }

  depends_on = [aws_iam_role_policy.function]
}
