output "alarm_topic_arn" {
  description = "ARN of the SNS topic the alarms notify (created here or passed in)."
  value       = local.topic_arn
}

output "alarm_names" {
  description = "Names of the alarms, by function role and alarm kind (views.iterator-age, ...)."
  value       = { for key, alarm in aws_cloudwatch_metric_alarm.this : key => alarm.alarm_name }
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_dimensions" {
  description = "Dimensions of each alarm's metric, by function role and alarm kind (for tests and tools)."
  value       = { for key, alarm in local.alarms : key => alarm.dimensions }
}

output "alarm_thresholds" {
  description = "Threshold of each alarm in its metric's unit (IteratorAge in ms), by function role and alarm kind (for tests and tools)."
  value       = { for key, alarm in local.alarms : key => alarm.threshold }
}

output "alarm_topic_kms_key_arn" {
  description = "KMS key that encrypts the created alarm topic; null when it is unencrypted (the default) or when a topic was passed in."
  value       = var.alarm_topic_arn == null ? aws_sns_topic.alarms[0].kms_master_key_id : null
}
