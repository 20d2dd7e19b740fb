variable "name_prefix" {
  description = "Prefix of the stack's resource names; names the alarm topic and the dashboard."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,37}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 38 letters, digits or hyphens."
  }
}

variable "functions" {
  description = "The stream functions to watch, by role (views, votes): function name, its on-failure queue's name, and the Powertools service name its EMF metrics carry as the `service` dimension."
  type = map(object({
    function_name      = string
    failure_queue_name = string
    metrics_service    = string
  }))

  validation {
    condition     = length(var.functions) >= 1
    error_message = "functions must name at least one stream function."
  }
}

variable "table_name" {
  description = "Name of the DynamoDB table whose consumed write capacity and throttles the dashboard shows."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the handlers' EMF metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
  default     = "VideoStats"

  validation {
    condition     = length(var.metrics_namespace) >= 1 && length(var.metrics_namespace) <= 255 && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1 to 255 characters and must not start with AWS/ (reserved)."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic that receives every alarm's ALARM and OK notifications. null: the module creates <name_prefix>-alarms."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be null or the ARN of an SNS topic (arn:aws:sns:<region>:<account>:<name>)."
  }
}

variable "alarm_topic_kms_key_arn" {
  description = "Customer managed KMS key (key ARN) that encrypts the topic this module creates; null (default) leaves it unencrypted: its messages hold alarm names, states and metric values, no customer data, and a key costs $1 a month (docs/design.md §9). The key policy must allow the service principal cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*, or CloudWatch cannot publish the alarms. The AWS managed key alias/aws/sns is refused: its policy does not let CloudWatch use it and cannot be edited. Only for the created topic: a passed alarm_topic_arn keeps its own encryption."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", var.alarm_topic_kms_key_arn))
    error_message = "alarm_topic_kms_key_arn must be null or the ARN of a customer managed KMS key (arn:aws:kms:<region>:<account>:key/<key id>); aliases such as alias/aws/sns are refused: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (AWS sends a confirmation mail first). null: no subscription."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "alarm_period_seconds" {
  description = "Length of one evaluation period of every alarm, in seconds (Lambda and SQS publish one data point a minute)."
  type        = number
  default     = 60

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds <= 86400 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60 between 60 and 86,400."
  }
}

variable "iterator_age_threshold_seconds" {
  description = "Stream lag alarm: the age of the last record of a batch (IteratorAge, Maximum) above which a function is falling behind. Normal is up to the batching window plus a few seconds (a quiet shard's only record waits the whole window); the root module passes the window + 120 s."
  type        = number
  default     = 120

  validation {
    condition     = var.iterator_age_threshold_seconds >= 1 && var.iterator_age_threshold_seconds <= 86400
    error_message = "iterator_age_threshold_seconds must be between 1 and 86,400 (the stream keeps records 24 h)."
  }
}

variable "iterator_age_evaluation_periods" {
  description = "Consecutive periods the iterator age must stay above its threshold before the alarm fires (lag that lasts, not a burst)."
  type        = number
  default     = 5

  validation {
    condition     = var.iterator_age_evaluation_periods >= 1 && var.iterator_age_evaluation_periods <= 1440 && floor(var.iterator_age_evaluation_periods) == var.iterator_age_evaluation_periods
    error_message = "iterator_age_evaluation_periods must be a whole number between 1 and 1,440."
  }
}

variable "errors_threshold" {
  description = "Function errors alarm: invocation errors per period (Errors, Sum) above which it fires. Every error is a retried batch, so the default is 0."
  type        = number
  default     = 0

  validation {
    condition     = var.errors_threshold >= 0 && floor(var.errors_threshold) == var.errors_threshold
    error_message = "errors_threshold must be a whole number >= 0."
  }
}

variable "throttles_threshold" {
  description = "Throttles alarm: throttled invocations per period (Throttles, Sum) above which it fires."
  type        = number
  default     = 0

  validation {
    condition     = var.throttles_threshold >= 0 && floor(var.throttles_threshold) == var.throttles_threshold
    error_message = "throttles_threshold must be a whole number >= 0."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
