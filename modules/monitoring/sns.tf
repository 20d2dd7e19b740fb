# Alarm notifications go to a topic the user passes (an existing on-call topic) or to one
# the module creates; the e-mail subscription is optional either way.
resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == null ? 1 : 0

  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = "alias/aws/sns"
  tags              = var.tags
}

locals {
  topic_arn = var.alarm_topic_arn != null ? var.alarm_topic_arn : aws_sns_topic.alarms[0].arn
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email != null ? 1 : 0

  topic_arn = local.topic_arn
  protocol  = "email"
  endpoint  = var.alarm_email
}
