output "table_name" {
  description = "Name of the DynamoDB table."
  value       = module.table.name
}

output "table_arn" {
  description = "ARN of the DynamoDB table."
  value       = module.table.arn
}

output "stream_arn" {
  description = "ARN of the table's stream."
  value       = module.table.stream_arn
}

output "function_names" {
  description = "Names of the stream functions, by item type they aggregate (views, votes)."
  value       = { for role, fn in module.stream_function : role => fn.function_name }
}

output "function_arns" {
  description = "ARNs of the stream functions, by function (views, votes)."
  value       = { for role, fn in module.stream_function : role => fn.function_arn }
}

output "role_arns" {
  description = "ARNs of the functions' execution roles, by function (views, votes)."
  value       = { for role, fn in module.stream_function : role => fn.role_arn }
}

output "failure_queue_arns" {
  description = "ARNs of the mappings' on-failure queues, by function (views, votes)."
  value       = { for role, fn in module.stream_function : role => fn.failure_queue_arn }
}

output "failure_queue_urls" {
  description = "URLs of the mappings' on-failure queues, by function (views, votes)."
  value       = { for role, fn in module.stream_function : role => fn.failure_queue_url }
}

output "event_source_mapping_uuids" {
  description = "UUIDs of the event source mappings, by function (views, votes)."
  value       = { for role, fn in module.stream_function : role => fn.event_source_mapping_uuid }
}

output "summary_index_shards" {
  description = "Write shards of the GSI2 ranking index; the summary tool queries each one."
  value       = var.summary_index_shards
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic the alarms notify."
  value       = module.monitoring.alarm_topic_arn
}

output "alarm_names" {
  description = "Names of the alarms, by function role and kind (views.iterator-age, votes.failure-queue, ...)."
  value       = module.monitoring.alarm_names
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}
