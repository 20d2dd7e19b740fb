# The root module as an ephemeral test environment: pytest-terraform applies this
# folder with a fresh state and data dir per session; every input comes from
# TF_VAR_* set by tests/integration/conftest.py (a unique name prefix, the zip,
# the region, a short batching window). Like deploy/, it configures the provider the module
# only declares.
provider "aws" {
  region = var.region
}

module "stack" {
  source = "../../.."

  name_prefix         = var.name_prefix
  package_file        = var.package_file
  deletion_protection = false
  log_retention_days  = 1
  stream_mapping      = var.stream_mapping
}

variable "name_prefix" {
  description = "Unique prefix of this test session's resources."
  type        = string
}

variable "region" {
  description = "AWS region (scripts/tf local sets TF_VAR_region; the AWS target takes the caller's)."
  type        = string
  default     = "us-east-1"
}

variable "package_file" {
  description = "Absolute path of the deployment zip."
  type        = string
}

variable "stream_mapping" {
  description = "Mapping settings for the test environment (short batching window)."
  type        = any
  default     = {}
}

output "table_name" {
  description = "Name of the test table."
  value       = module.stack.table_name
}

output "table_arn" {
  description = "ARN of the test table."
  value       = module.stack.table_arn
}

output "stream_arn" {
  description = "ARN of the test table's stream."
  value       = module.stack.stream_arn
}

output "function_names" {
  description = "Names of the stream functions."
  value       = module.stack.function_names
}

output "failure_queue_urls" {
  description = "URLs of the on-failure queues."
  value       = module.stack.failure_queue_urls
}

output "event_source_mapping_uuids" {
  description = "UUIDs of the event source mappings."
  value       = module.stack.event_source_mapping_uuids
}
