variable "region" {
  description = "AWS region to deploy to (scripts/tf sets TF_VAR_region for the local target)."
  type        = string
  default     = "us-east-1"

  validation {
    # Commercial (us-east-1), GovCloud (us-gov-west-1), China (cn-north-1), ISO (us-isob-east-1),
    # European Sovereign Cloud (eusc-de-east-1).
    condition     = can(regex("^[a-z]{2,4}(-[a-z]+)?-[a-z]+-[0-9]{1,2}$", var.region))
    error_message = "region must be an AWS region code such as us-east-1 or eu-west-1."
  }
}

# The module's inputs, unset by default: null makes the module use its own default
# (../variables.tf, where each one's meaning, default and validation live).

variable "name_prefix" {
  description = "See the module's name_prefix (../variables.tf); also the Environment default tag."
  type        = string
  default     = "video-stats"
}

variable "package_file" {
  description = "See the module's package_file: null is ../build/lambda.zip (`make package`)."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "See the module's deletion_protection (the local target sets false)."
  type        = bool
  default     = null
}

variable "point_in_time_recovery" {
  description = "See the module's point_in_time_recovery."
  type        = bool
  default     = null
}

variable "table_kms_key_arn" {
  description = "See the module's table_kms_key_arn."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "See the module's lambda_runtime."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "See the module's lambda_architecture."
  type        = string
  default     = null
}

variable "lambda_memory_size" {
  description = "See the module's lambda_memory_size."
  type        = number
  default     = null
}

variable "lambda_timeout" {
  description = "See the module's lambda_timeout."
  type        = number
  default     = null
}

variable "log_retention_days" {
  description = "See the module's log_retention_days."
  type        = number
  default     = null
}

variable "log_level" {
  description = "See the module's log_level."
  type        = string
  default     = null
}

variable "summary_index_shards" {
  description = "See the module's summary_index_shards."
  type        = number
  default     = null
}

variable "stream_mapping" {
  description = "See the module's stream_mapping (the local target sets the batching window through TF_VAR_stream_mapping); an unset attribute takes the module's default."
  type = object({
    batch_size                         = optional(number)
    maximum_batching_window_in_seconds = optional(number)
    starting_position                  = optional(string)
    maximum_retry_attempts             = optional(number)
    maximum_record_age_in_seconds      = optional(number)
    bisect_batch_on_function_error     = optional(bool)
    report_batch_item_failures         = optional(bool)
    tumbling_window_in_seconds         = optional(number)
    enabled                            = optional(bool)
  })
  default = null
}

variable "tags" {
  description = "See the module's tags (Project and Environment come from the provider's default_tags)."
  type        = map(string)
  default     = null
}

variable "monitoring" {
  description = "See the module's monitoring; an unset attribute takes the module's default."
  type = object({
    alarm_topic_arn                 = optional(string)
    alarm_topic_kms_key_arn         = optional(string)
    alarm_email                     = optional(string)
    alarm_period_seconds            = optional(number)
    iterator_age_threshold_seconds  = optional(number)
    iterator_age_evaluation_periods = optional(number)
    errors_threshold                = optional(number)
    throttles_threshold             = optional(number)
  })
  default = null
}
