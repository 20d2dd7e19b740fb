# terraform test of modules/monitoring with a mock provider: every stream function gets every
# alarm, each on the right metric, dimensions and comparison. Run with `make tf-test`.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "us-east-1"
    }
  }

  # The provider validates ARNs, so the mocks must look like real ones.
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/tftest"
    }
  }

  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:us-east-1:123456789012:tftest-on-failure"
      url = "https://sqs.us-east-1.amazonaws.com/123456789012/tftest-on-failure"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/tftest"
    }
  }

  mock_resource "aws_lambda_function" {
    defaults = {
      arn = "arn:aws:lambda:us-east-1:123456789012:function:tftest"
    }
  }

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:us-east-1:123456789012:tftest-alarms"
    }
  }
}

variables {
  name_prefix  = "tftest"
  package_file = "build/lambda.zip"
}

# The root wires each function's own name, queue and EMF service into the module.
run "every_function_gets_every_alarm" {
  command = apply

  override_resource {
    target = module.stream_function["views"].aws_sqs_queue.on_failure
    values = {
      arn = "arn:aws:sqs:us-east-1:123456789012:tftest-update-views-on-failure"
    }
  }

  override_resource {
    target = module.stream_function["votes"].aws_sqs_queue.on_failure
    values = {
      arn = "arn:aws:sqs:us-east-1:123456789012:tftest-update-votes-on-failure"
    }
  }

  assert {
    condition = output.alarm_names == {
      for pair in setproduct(["views", "votes"], ["iterator-age", "errors", "throttles", "failure-queue", "skipped-invalid", "integrity"]) :
      "${pair[0]}.${pair[1]}" => "tftest-update-${pair[0]}-${pair[1]}"
    }
    error_message = "each function must have the six alarms, named <function>-<kind> (make status finds them by the function's name)"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] :
      module.monitoring.alarm_dimensions["${role}.failure-queue"] == { QueueName = "tftest-update-${role}-on-failure" }
      && module.monitoring.alarm_dimensions["${role}.skipped-invalid"] == { service = "update-${role}" }
      && module.monitoring.alarm_dimensions["${role}.integrity"] == { service = "update-${role}" }
      && module.monitoring.alarm_dimensions["${role}.errors"] == { FunctionName = "tftest-update-${role}" }
    ])
    error_message = "each function's alarms must watch its own function, its own failure queue and its own EMF service"
  }

  assert {
    condition     = output.alarm_topic_arn == "arn:aws:sns:us-east-1:123456789012:tftest-alarms"
    error_message = "without alarm_topic_arn the stack creates its own topic"
  }

  assert {
    condition     = module.monitoring.alarm_topic_kms_key_arn == null
    error_message = "the created topic is unencrypted by default: CloudWatch alarms cannot publish to a topic under the AWS managed key alias/aws/sns (docs/design.md §9)"
  }

  assert {
    condition     = output.dashboard_name == "tftest-pipeline"
    error_message = "the dashboard is named <name_prefix>-pipeline"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] :
      module.monitoring.alarm_thresholds["${role}.iterator-age"] == (300 + 120) * 1000
    ])
    error_message = "by default the stream-lag alarm sits 120 s above the 300 s batching window: a quiet shard's only record waits the whole window"
  }
}

# The lag threshold follows the deployed batching window unless it is set.
run "iterator_age_threshold_follows_the_batching_window" {
  command = plan

  variables {
    stream_mapping = { maximum_batching_window_in_seconds = 5 }
  }

  assert {
    condition     = module.monitoring.alarm_thresholds["views.iterator-age"] == 125000
    error_message = "a 5 s window gives a 125 s lag threshold"
  }
}

run "iterator_age_threshold_set_explicitly" {
  command = plan

  variables {
    monitoring = { iterator_age_threshold_seconds = 600 }
  }

  assert {
    condition     = module.monitoring.alarm_thresholds["votes.iterator-age"] == 600000
    error_message = "an explicit threshold wins over the window-derived one"
  }
}

run "alarms_watch_the_right_metrics" {
  command = plan

  module {
    source = "./modules/monitoring"
  }

  variables {
    table_name = "tftest-data"
    functions = {
      views = { function_name = "f-views", failure_queue_name = "q-views", metrics_service = "update-views" }
      votes = { function_name = "f-votes", failure_queue_name = "q-votes", metrics_service = "update-votes" }
    }
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.this) == 12
    error_message = "two functions must give twelve alarms"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] : (
        aws_cloudwatch_metric_alarm.this["${role}.iterator-age"].namespace == "AWS/Lambda"
        && aws_cloudwatch_metric_alarm.this["${role}.iterator-age"].metric_name == "IteratorAge"
        && aws_cloudwatch_metric_alarm.this["${role}.iterator-age"].statistic == "Maximum"
        && aws_cloudwatch_metric_alarm.this["${role}.iterator-age"].threshold == 120000
        && aws_cloudwatch_metric_alarm.this["${role}.iterator-age"].evaluation_periods == 5
        && aws_cloudwatch_metric_alarm.this["${role}.iterator-age"].dimensions == tomap({ FunctionName = "f-${role}" })
      )
    ])
    error_message = "iterator-age must alarm on AWS/Lambda IteratorAge (Maximum, ms) of its function for 5 periods above 120 s"
  }

  assert {
    condition = alltrue(flatten([
      for role in ["views", "votes"] : [
        for kind in ["errors", "throttles"] : (
          aws_cloudwatch_metric_alarm.this["${role}.${kind}"].namespace == "AWS/Lambda"
          && aws_cloudwatch_metric_alarm.this["${role}.${kind}"].metric_name == title(kind)
          && aws_cloudwatch_metric_alarm.this["${role}.${kind}"].statistic == "Sum"
          && aws_cloudwatch_metric_alarm.this["${role}.${kind}"].threshold == 0
          && aws_cloudwatch_metric_alarm.this["${role}.${kind}"].dimensions == tomap({ FunctionName = "f-${role}" })
        )
      ]
    ]))
    error_message = "errors and throttles must alarm on the function's AWS/Lambda Errors / Throttles (Sum) above 0"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] : (
        aws_cloudwatch_metric_alarm.this["${role}.failure-queue"].namespace == "AWS/SQS"
        && aws_cloudwatch_metric_alarm.this["${role}.failure-queue"].metric_name == "ApproximateNumberOfMessagesVisible"
        && aws_cloudwatch_metric_alarm.this["${role}.failure-queue"].statistic == "Maximum"
        && aws_cloudwatch_metric_alarm.this["${role}.failure-queue"].threshold == 0
        && aws_cloudwatch_metric_alarm.this["${role}.failure-queue"].dimensions == tomap({ QueueName = "q-${role}" })
      )
    ])
    error_message = "failure-queue must alarm when the function's own on-failure queue holds any message"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] : (
        aws_cloudwatch_metric_alarm.this["${role}.skipped-invalid"].namespace == "VideoStats"
        && aws_cloudwatch_metric_alarm.this["${role}.skipped-invalid"].metric_name == "RecordsSkippedInvalid"
        && aws_cloudwatch_metric_alarm.this["${role}.skipped-invalid"].statistic == "Sum"
        && aws_cloudwatch_metric_alarm.this["${role}.skipped-invalid"].threshold == 0
        && aws_cloudwatch_metric_alarm.this["${role}.skipped-invalid"].dimensions == tomap({ service = "update-${role}" })
      )
    ])
    error_message = "skipped-invalid must alarm on the handlers' EMF RecordsSkippedInvalid (namespace VideoStats, dimension service) above 0"
  }

  assert {
    # One metric per alarm (an alarm is billed per metric it analyzes): the handlers publish
    # RecordsOutOfOrder + KeysReplayGuarded + UnknownShard summed as IntegrityEvents.
    condition = alltrue([
      for role in ["views", "votes"] : (
        aws_cloudwatch_metric_alarm.this["${role}.integrity"].alarm_name == "f-${role}-integrity"
        && aws_cloudwatch_metric_alarm.this["${role}.integrity"].namespace == "VideoStats"
        && aws_cloudwatch_metric_alarm.this["${role}.integrity"].metric_name == "IntegrityEvents"
        && aws_cloudwatch_metric_alarm.this["${role}.integrity"].statistic == "Sum"
        && aws_cloudwatch_metric_alarm.this["${role}.integrity"].threshold == 0
        && aws_cloudwatch_metric_alarm.this["${role}.integrity"].evaluation_periods == 1
        && aws_cloudwatch_metric_alarm.this["${role}.integrity"].dimensions == tomap({ service = "update-${role}" })
        && length(aws_cloudwatch_metric_alarm.this["${role}.integrity"].metric_query) == 0
      )
    ])
    error_message = "integrity must alarm on the handlers' EMF IntegrityEvents (namespace VideoStats, dimension service, Sum) above 0, one metric, named <function>-integrity"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] : anytrue([
        for widget in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
        contains(try(widget.properties.metrics, []), ["VideoStats", "IntegrityEvents", "service", "update-${role}", { stat = "Sum" }])
      ])
    ])
    error_message = "the dashboard must graph each function's IntegrityEvents"
  }

  assert {
    condition = alltrue([
      for role in ["views", "votes"] : anytrue([
        for widget in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
        widget.type == "log" && try(
          strcontains(widget.properties.query, "SOURCE '/aws/lambda/")
          && strcontains(widget.properties.query, "${role}'")
          && strcontains(widget.properties.query, "filter message = 'batch applied'"),
          false
        )
      ])
    ])
    error_message = "the dashboard must read each function's batch volume from its log lines (Logs Insights), not from custom metrics"
  }

  assert {
    condition = alltrue(flatten([
      for widget in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets : [
        for metric in try(widget.properties.metrics, []) :
        !contains(["RecordsReceived", "RecordsApplied", "SummaryWrites", "SummaryReads", "OldestRecordAgeSeconds"], metric[1])
      ]
    ]))
    error_message = "the dashboard must not graph custom metrics the handlers no longer publish"
  }

  assert {
    condition = alltrue([
      for widget in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
      widget.x >= 0 && widget.width >= 1 && widget.x + widget.width <= 24
    ])
    error_message = "every dashboard widget must fit the 24-unit grid"
  }

  assert {
    condition = alltrue([
      for alarm in values(aws_cloudwatch_metric_alarm.this) :
      alarm.comparison_operator == "GreaterThanThreshold" && alarm.period == 60
      && alarm.treat_missing_data == "notBreaching"
      && length(alarm.alarm_actions) == 1 && length(alarm.ok_actions) == 1
    ])
    error_message = "every alarm compares with GreaterThanThreshold over 60 s periods and notifies on ALARM and OK"
  }
}

# CloudWatch alarms must be able to publish to the topic the module creates: no AWS managed
# key (its policy does not let cloudwatch.amazonaws.com use it), and a topic policy that lets
# CloudWatch alarms of the topic's own account publish.
run "the_created_topic_is_usable_by_cloudwatch" {
  command = apply

  module {
    source = "./modules/monitoring"
  }

  variables {
    table_name = "tftest-data"
    functions = {
      views = { function_name = "f-views", failure_queue_name = "q-views", metrics_service = "update-views" }
    }
  }

  assert {
    condition     = aws_sns_topic.alarms[0].kms_master_key_id == null
    error_message = "by default the created topic is not encrypted (no alias/aws/sns: CloudWatch could not publish)"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(aws_sns_topic_policy.alarms[0].policy).Statement :
      s.Effect == "Allow" && s.Principal == { Service = "cloudwatch.amazonaws.com" }
      && contains(flatten([s.Action]), "SNS:Publish") && s.Resource == aws_sns_topic.alarms[0].arn
      && s.Condition == { StringEquals = { "aws:SourceAccount" = "123456789012" } }
    ])
    error_message = "the topic policy must let cloudwatch.amazonaws.com publish, for alarms of the topic's own account (aws:SourceAccount)"
  }

  assert {
    condition = anytrue([
      for s in jsondecode(aws_sns_topic_policy.alarms[0].policy).Statement :
      s.Effect == "Allow" && s.Principal == { AWS = "*" } && s.Resource == aws_sns_topic.alarms[0].arn
      && s.Condition == { StringEquals = { "AWS:SourceOwner" = "123456789012" } }
      && toset(flatten([s.Action])) == toset(["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"])
    ])
    error_message = "the topic policy must keep SNS's default rights of the owner account"
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_sns_topic_policy.alarms[0].policy).Statement :
      s.Principal != "*" && can(s.Condition)
    ])
    error_message = "no statement of the topic policy may be unconditional or public"
  }

  assert {
    condition     = aws_sns_topic_policy.alarms[0].arn == aws_sns_topic.alarms[0].arn
    error_message = "the policy must be attached to the created topic"
  }

  assert {
    condition = alltrue([
      for alarm in values(aws_cloudwatch_metric_alarm.this) :
      alarm.alarm_actions == toset([aws_sns_topic.alarms[0].arn]) && alarm.ok_actions == toset([aws_sns_topic.alarms[0].arn])
    ])
    error_message = "every alarm notifies the created topic on ALARM and OK"
  }
}

run "a_passed_customer_managed_key_encrypts_the_created_topic" {
  command = plan

  variables {
    monitoring = { alarm_topic_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
  }

  assert {
    condition     = module.monitoring.alarm_topic_kms_key_arn == "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    error_message = "the root module's monitoring.alarm_topic_kms_key_arn must reach the created topic"
  }
}

run "refuses_the_aws_managed_key" {
  command = plan

  module {
    source = "./modules/monitoring"
  }

  variables {
    table_name              = "tftest-data"
    alarm_topic_kms_key_arn = "alias/aws/sns"
    functions = {
      views = { function_name = "f-views", failure_queue_name = "q-views", metrics_service = "update-views" }
    }
  }

  expect_failures = [var.alarm_topic_kms_key_arn]
}

run "refuses_a_key_for_a_passed_topic" {
  command = plan

  module {
    source = "./modules/monitoring"
  }

  variables {
    table_name              = "tftest-data"
    alarm_topic_arn         = "arn:aws:sns:eu-west-1:123456789012:on-call"
    alarm_topic_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    functions = {
      views = { function_name = "f-views", failure_queue_name = "q-views", metrics_service = "update-views" }
    }
  }

  expect_failures = [aws_cloudwatch_metric_alarm.this]
}

run "uses_a_passed_topic_and_subscribes_an_email" {
  command = plan

  module {
    source = "./modules/monitoring"
  }

  variables {
    table_name      = "tftest-data"
    alarm_topic_arn = "arn:aws:sns:eu-west-1:123456789012:on-call"
    alarm_email     = "ops@example.com"
    functions = {
      views = { function_name = "f-views", failure_queue_name = "q-views", metrics_service = "update-views" }
    }
  }

  assert {
    condition     = length(aws_sns_topic.alarms) == 0 && aws_sns_topic_subscription.email[0].topic_arn == "arn:aws:sns:eu-west-1:123456789012:on-call"
    error_message = "a passed topic is used, not created, and the e-mail subscribes to it"
  }

  assert {
    condition     = length(aws_sns_topic_policy.alarms) == 0
    error_message = "a passed topic keeps its own policy"
  }

  assert {
    condition     = alltrue([for alarm in values(aws_cloudwatch_metric_alarm.this) : alarm.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:on-call"])])
    error_message = "every alarm notifies the passed topic"
  }
}

run "rejects_bad_monitoring_settings" {
  command = plan

  module {
    source = "./modules/monitoring"
  }

  variables {
    table_name                      = "tftest-data"
    alarm_topic_arn                 = "not-an-arn"
    alarm_email                     = "nobody"
    alarm_period_seconds            = 90
    iterator_age_threshold_seconds  = 0
    iterator_age_evaluation_periods = 1.5
    errors_threshold                = -1
    metrics_namespace               = "AWS/Lambda"
    functions                       = {}
  }

  expect_failures = [
    var.alarm_topic_arn,
    var.alarm_email,
    var.alarm_period_seconds,
    var.iterator_age_threshold_seconds,
    var.iterator_age_evaluation_periods,
    var.errors_threshold,
    var.metrics_namespace,
    var.functions,
  ]
}
