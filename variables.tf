variable "name_prefix" {
  description = "Prefix of every resource name, so that several environments coexist in one account."
  type        = string
  default     = "video-stats"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,37}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 38 letters, digits or hyphens (function, role and queue names derive from it)."
  }
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "package_file" {
  description = "Deployment zip of lambda_src/, built deterministically by `make package`."
  type        = string
  default     = "build/lambda.zip"
}

variable "deletion_protection" {
  description = "Protect the table from deletion. Switch off only for ephemeral environments."
  type        = bool
  default     = true
}

variable "lambda_runtime" {
  description = "Lambda runtime of both functions."
  type        = string
  default     = "python3.12"
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups, in days."
  type        = number
  default     = 30
}

variable "log_level" {
  description = "Log level of the handlers (Powertools Logger)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "summary_index_shards" {
  description = "Write shards of the GSI2 ranking index per summary type; more shards spread the writes of hot summaries over more partitions."
  type        = number
  default     = 4

  validation {
    condition     = var.summary_index_shards >= 1 && var.summary_index_shards <= 100 && floor(var.summary_index_shards) == var.summary_index_shards
    error_message = "summary_index_shards must be a whole number between 1 and 100."
  }
}

variable "stream_mapping" {
  description = "Settings of both event source mappings; see modules/stream_function for each one's meaning and range. The batching window is the cost/freshness knob: 300 s (AWS's maximum) merges the most summary writes, and summaries then lag writes by up to that long; 5 s is near real time at about 1.8-3.2x the aggregation cost (docs/design.md §6). The Makefile's local target sets LOCAL_BATCHING_WINDOW_SECONDS (5) through TF_VAR_stream_mapping."
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
  default = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
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
  default = {}
}
