variable "name_prefix" {
  description = "Prefix of every resource name, so that several environments coexist in one account."
  type        = string
  default     = "video-stats"
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,37}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 38 letters, digits or hyphens (function, role and queue names derive from it)."
  }
}

variable "package_file" {
  description = "Deployment zip of lambda_src/, built deterministically by `make package`. null: build/lambda.zip of this module's own folder, wherever the caller runs Terraform (a checkout where `make package` ran); a caller that takes the module from git or a registry, where no build/ exists, passes the zip it built."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Protect the table from deletion. Switch off only for ephemeral environments."
  type        = bool
  default     = true
  nullable    = false
}

variable "point_in_time_recovery" {
  description = "Keep continuous backups of the table (35 days of point-in-time recovery)."
  type        = bool
  default     = true
  nullable    = false
}

variable "table_kms_key_arn" {
  description = "Customer managed KMS key (key ARN) that encrypts the table; null uses the AWS managed key alias/aws/dynamodb. Changing it re-encrypts the table in place."
  type        = string
  default     = null

  validation {
    condition     = var.table_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", var.table_kms_key_arn))
    error_message = "table_kms_key_arn must be null or the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<key id>)."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime of both functions: a Python the package is built for (scripts/build_lambda_zip.py takes pure-Python wheels for 3.11, pyproject.toml requires >= 3.11)."
  type        = string
  default     = "python3.12"
  nullable    = false

  validation {
    condition     = contains(["python3.11", "python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.11, python3.12 or python3.13 (the handlers need Python >= 3.11)."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of both functions: arm64 costs about 20 % less per GB-second than x86_64 (the package holds pure-Python wheels only, so either runs it)."
  type        = string
  default     = "arm64"
  nullable    = false

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_size" {
  description = "Memory of each function in MB (Lambda scales CPU with it)."
  type        = number
  default     = 256
  nullable    = false

  validation {
    condition     = var.lambda_memory_size >= 128 && var.lambda_memory_size <= 10240 && floor(var.lambda_memory_size) == var.lambda_memory_size
    error_message = "lambda_memory_size must be a whole number of MB between 128 and 10,240."
  }
}

variable "lambda_timeout" {
  description = "Timeout of one invocation in seconds. mark_retention_margin_seconds of modules/stream_function (default 3,600 s) must cover it; 900 is Lambda's maximum."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.lambda_timeout >= 1 && var.lambda_timeout <= 900 && floor(var.lambda_timeout) == var.lambda_timeout
    error_message = "lambda_timeout must be a whole number of seconds between 1 and 900."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups, in days: one of the values CloudWatch Logs accepts, or 0 to keep the logs forever."
  type        = number
  default     = 30
  nullable    = false

  validation {
    # "Possible values are: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    # 1096, 1827, 2192, 2557, 2922, 3288, and 3653." (CloudWatch Logs API Reference,
    # PutRetentionPolicy); 0 makes the provider keep the events forever.
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be 0 (never expire) or one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 (CloudWatch Logs' values)."
  }
}

variable "log_level" {
  description = "Log level of the handlers (Powertools Logger)."
  type        = string
  default     = "INFO"
  nullable    = false

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "summary_index_shards" {
  description = "Write shards of the GSI2 ranking index per summary type; more shards spread the writes of hot summaries over more partitions."
  type        = number
  default     = 4
  nullable    = false

  validation {
    condition     = var.summary_index_shards >= 1 && var.summary_index_shards <= 100 && floor(var.summary_index_shards) == var.summary_index_shards
    error_message = "summary_index_shards must be a whole number between 1 and 100."
  }
}

variable "stream_mapping" {
  description = "Settings of both event source mappings; see modules/stream_function for each one's meaning and range. The batching window is the cost/freshness knob: 300 s (AWS's maximum) merges the most summary writes, and summaries then lag writes by up to that long; 5 s is near real time at a higher aggregation cost (docs/design.md §6; the ratio per window and cell is generated into docs/benchmark.md). The Makefile's local target sets LOCAL_BATCHING_WINDOW_SECONDS (5) through TF_VAR_stream_mapping."
  type = object({
    batch_size                         = optional(number, 5000)
    maximum_batching_window_in_seconds = optional(number, 300)
    starting_position                  = optional(string, "TRIM_HORIZON")
    maximum_retry_attempts             = optional(number, -1)
    maximum_record_age_in_seconds      = optional(number, 21600)
    bisect_batch_on_function_error     = optional(bool, false)
    report_batch_item_failures         = optional(bool, true)
    tumbling_window_in_seconds         = optional(number, 900)
    enabled                            = optional(bool, true)
  })
  default  = {}
  nullable = false
}

variable "tags" {
  description = "Tags added to every resource of every submodule (table, functions with their roles, log groups, queues and mappings, alarms and topic), on top of the caller's provider default_tags."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "monitoring" {
  description = "Alarms and their notifications; see modules/monitoring for each setting's meaning and range. alarm_topic_arn null creates <name_prefix>-alarms, unencrypted unless alarm_topic_kms_key_arn names a customer managed key whose policy allows cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey* (CloudWatch alarms cannot publish to a topic under the AWS managed key alias/aws/sns); alarm_email null subscribes nobody; iterator_age_threshold_seconds null is the batching window + 120 s (a quiet shard's last record waits the whole window, so a fixed threshold below the window would alarm on idle streams)."
  type = object({
    alarm_topic_arn                 = optional(string)
    alarm_topic_kms_key_arn         = optional(string)
    alarm_email                     = optional(string)
    alarm_period_seconds            = optional(number, 60)
    iterator_age_threshold_seconds  = optional(number)
    iterator_age_evaluation_periods = optional(number, 5)
    errors_threshold                = optional(number, 0)
    throttles_threshold             = optional(number, 0)
  })
  default  = {}
  nullable = false
}
