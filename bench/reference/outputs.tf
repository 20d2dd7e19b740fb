output "table_name" {
  description = "Name of the DynamoDB table."
  value       = module.table.name
}

output "stream_arn" {
  description = "ARN of the table's stream."
  value       = module.table.stream_arn
}

output "function_names" {
  description = "Names of the stream functions, by item type they aggregate (views, votes)."
  value       = { for role, fn in aws_lambda_function.function : role => fn.function_name }
}

output "event_source_mapping_uuids" {
  description = "UUIDs of the event source mappings, by function (views, votes)."
  value       = { for role, mapping in aws_lambda_event_source_mapping.function : role => mapping.uuid }
}

output "settings" {
  description = "The mapping and function settings of this configuration, for the benchmark report."
  value = merge(local.mapping, {
    memory_size  = local.memory_size
    architecture = local.architecture
    filters      = local.blog_filter_patterns
  })
}
