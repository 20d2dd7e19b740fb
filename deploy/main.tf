# The deployment root of `make deploy`, `make plan` and `make destroy`: the provider, the
# state, and the video-stats module (the repository's root module) with the operator's
# settings. Every input is the module's: null (unset) takes the module's default, which
# lives in ../variables.tf only.
module "video_stats" {
  source = "../"

  name_prefix            = var.name_prefix
  package_file           = var.package_file
  deletion_protection    = var.deletion_protection
  point_in_time_recovery = var.point_in_time_recovery
  table_kms_key_arn      = var.table_kms_key_arn
  lambda_runtime         = var.lambda_runtime
  lambda_architecture    = var.lambda_architecture
  lambda_memory_size     = var.lambda_memory_size
  lambda_timeout         = var.lambda_timeout
  log_retention_days     = var.log_retention_days
  log_level              = var.log_level
  summary_index_shards   = var.summary_index_shards
  stream_mapping         = var.stream_mapping
  tags                   = var.tags
  monitoring             = var.monitoring
}
