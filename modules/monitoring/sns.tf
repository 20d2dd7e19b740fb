# Alarm notifications go to a topic the user passes (an existing on-call topic) or to one
# the module creates; the e-mail subscription is optional either way.
#
# The created topic is not encrypted unless alarm_topic_kms_key_arn names a customer managed
# key. CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key
# alias/aws/sns: AWS Knowledge Center, "How do I configure a CloudWatch alarm with an encrypted
# SNS topic?" (https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns; the search
# tool holds its French and Japanese copies): a customer managed key is required to deliver
# alarm notifications through an encrypted topic; with alias/aws/sns the alarm action does not
# run and the alarm history reads "CloudWatch Alarms does not have authorization to access the
# SNS topic encryption key."; that key's policy does not let CloudWatch call kms:Decrypt and
# kms:GenerateDataKey, and an AWS managed key's policy cannot be edited. A customer managed
# key costs $1 a month, a fifth of the stack's fixed-cost budget (docs/design.md §6), to protect
# messages that hold alarm names, states and metric values, no customer data (docs/design.md
# §9); .checkov.yaml skips CKV_AWS_26 for that reason.
resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.alarm_topic_kms_key_arn
  tags              = var.tags
}

locals {
  topic_arn = var.alarm_topic_arn != null ? var.alarm_topic_arn : aws_sns_topic.alarms[0].arn
}

# The created topic's access policy replaces SNS's default one, so it restates that default
# (every principal of the topic's own account, AWS:SourceOwner) and adds CloudWatch alarms of
# the same account as publishers ("The policy update grants permissions to the CloudWatch
# alarms service to publish messages to the SNS topic", AWS Knowledge Center, "Why didn't I
# receive an SNS notification for my CloudWatch alarm trigger?",
# https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger);
# aws:SourceAccount keeps alarms of other accounts out (the confused deputy). A passed topic
# keeps its own policy: its owner grants CloudWatch there.
resource "aws_sns_topic_policy" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  arn = aws_sns_topic.alarms[0].arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "OwnerAccountDefault"
        Effect    = "Allow"
        Principal = { AWS = "*" }
        Action = [
          "SNS:GetTopicAttributes",
          "SNS:SetTopicAttributes",
          "SNS:AddPermission",
          "SNS:RemovePermission",
          "SNS:DeleteTopic",
          "SNS:Subscribe",
          "SNS:ListSubscriptionsByTopic",
          "SNS:Publish",
        ]
        Resource  = aws_sns_topic.alarms[0].arn
        Condition = { StringEquals = { "AWS:SourceOwner" = local.topic_account } }
      },
      {
        Sid       = "CloudWatchAlarmsPublish"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.alarms[0].arn
        Condition = { StringEquals = { "aws:SourceAccount" = local.topic_account } }
      },
    ]
  })
}

locals {
  # The account of the created topic: arn:<partition>:sns:<region>:<account>:<name>.
  topic_account = var.alarm_topic_arn == null ? split(":", aws_sns_topic.alarms[0].arn)[4] : null
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email != null ? 1 : 0

  topic_arn = local.topic_arn
  protocol  = "email"
  endpoint  = var.alarm_email
}
