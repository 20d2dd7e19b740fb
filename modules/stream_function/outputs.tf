output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "event_source_mapping_uuid" {
  description = "UUID of the stream's event source mapping."
  value       = aws_lambda_event_source_mapping.this.uuid
}

output "failure_queue_url" {
  description = "URL of the queue that receives batches given up on."
  value       = aws_sqs_queue.on_failure.url
}

output "failure_queue_arn" {
  description = "ARN of the queue that receives batches given up on."
  value       = aws_sqs_queue.on_failure.arn
}
