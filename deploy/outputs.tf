# The module's outputs, under the same names: `make deploy` writes them to
# .local/deploy/<target>/outputs.json, which the tools read (scripts/deploy_env.py).

output "table_name" {
  description = "Name of the DynamoDB table."
  value       = module.video_stats.table_name
}

output "table_arn" {
  description = "ARN of the DynamoDB table."
  value       = module.video_stats.table_arn
}

output "stream_arn" {
  description = "ARN of the table's stream."
  value       = module.video_stats.stream_arn
}

output "function_names" {
  description = "Names of the stream functions, by item type they aggregate (views, votes)."
  value       = module.video_stats.function_names
}

output "function_arns" {
  description = "ARNs of the stream functions, by function (views, votes)."
  value       = module.video_stats.function_arns
}

output "role_arns" {
  description = "ARNs of the functions' execution roles, by function (views, votes)."
  value       = module.video_stats.role_arns
}

output "failure_queue_arns" {
  description = "ARNs of the mappings' on-failure queues, by function (views, votes)."
  value       = module.video_stats.failure_queue_arns
}

output "failure_queue_urls" {
  description = "URLs of the mappings' on-failure queues, by function (views, votes)."
  value       = module.video_stats.failure_queue_urls
}

output "event_source_mapping_uuids" {
  description = "UUIDs of the event source mappings, by function (views, votes)."
  value       = module.video_stats.event_source_mapping_uuids
}

output "summary_index_shards" {
  description = "Write shards of the GSI2 ranking index; the summary tool queries each one."
  value       = module.video_stats.summary_index_shards
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic the alarms notify."
  value       = module.video_stats.alarm_topic_arn
}

output "alarm_names" {
  description = "Names of the alarms, by function role and kind (views.iterator-age, votes.failure-queue, ...)."
  value       = module.video_stats.alarm_names
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.video_stats.dashboard_name
}
