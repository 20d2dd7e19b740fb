variable "name" {
  description = "Name of the function; also names its role, log group and failure queue."
  type        = string
}

variable "description" {
  description = "Description of the function."
  type        = string
  default     = ""
}

variable "package_file" {
  description = "Path of the deployment zip, built by the Makefile."
  type        = string
}

variable "handler" {
  description = "Handler entry point in module.function form."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
  default     = "python3.12"
}

variable "architecture" {
  description = "Instruction set of the function: arm64 costs about 20 % less per GB-second than x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout of one invocation in seconds."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
  default     = 30
}

variable "table_arn" {
  description = "ARN of the table whose items the function updates."
  type        = string
}

variable "stream_arn" {
  description = "ARN of the DynamoDB stream that feeds the function."
  type        = string
}

variable "filter_patterns" {
  description = "Event filter patterns (JSON strings, at most 5, OR-ed). The function is invoked only for stream records that match one of them."
  type        = list(string)

  validation {
    condition     = length(var.filter_patterns) >= 1 && length(var.filter_patterns) <= 5
    error_message = "filter_patterns must hold between 1 and 5 patterns (the Lambda limit per mapping)."
  }

  validation {
    condition     = alltrue([for p in var.filter_patterns : can(jsondecode(p)) && length(p) <= 4096])
    error_message = "every filter pattern must be valid JSON of at most 4,096 characters."
  }
}

variable "batch_size" {
  description = "Most records per invocation. 5,000 lets a 300 s window gather a busy shard's records (more summary writes merge, docs/design.md §6) while a batch of typical view and vote records (about 0.5 KB each in the event) stays under Lambda's 6 MB invocation payload; larger records only make Lambda cut a batch sooner."
  type        = number
  default     = 5000

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number between 1 and 10,000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long Lambda gathers records before it invokes the function (it invokes sooner when batch_size records or 6 MB are gathered): longer windows mean fewer invocations, more summary writes merged, and up to that much delay."
  type        = number
  default     = 300

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "starting_position" {
  description = "Where a new mapping starts reading the stream: LATEST or TRIM_HORIZON."
  type        = string
  default     = "TRIM_HORIZON"

  validation {
    condition     = contains(["LATEST", "TRIM_HORIZON"], var.starting_position)
    error_message = "starting_position must be LATEST or TRIM_HORIZON."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before its records go to the failure queue; -1 (default) retries until the records are older than maximum_record_age_in_seconds (6 h by default). A batch only fails for infrastructure reasons (throttling, an outage, a timeout): a malformed record is skipped and counted, never failed (docs/design.md §8), so a finite count would give a batch up during a long throttling spell and leave the summaries short until a redrive, while retrying costs nothing but the shard's lag (the iterator-age alarm)."
  type        = number
  default     = -1

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts must be between -1 and 10,000."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this are not processed but sent to the failure queue. Must be finite: the handlers keep their exactly-once marks for this long plus mark_retention_margin_seconds (MARK_RETENTION_SECONDS), and a record older than its mark could be counted twice."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 86400 && floor(var.maximum_record_age_in_seconds) == var.maximum_record_age_in_seconds
    error_message = "maximum_record_age_in_seconds must be a whole number between 60 and 86,400 (the stream keeps records 24 h; -1, infinite, is refused: the handlers' exactly-once marks need a finite age)."
  }
}

variable "mark_retention_margin_seconds" {
  description = "How much longer than maximum_record_age_in_seconds the handlers keep a shard's exactly-once mark on a summary: covers the function timeout, retries and clock skew between the record's creation time and the function's clock."
  type        = number
  default     = 3600

  validation {
    condition     = var.mark_retention_margin_seconds >= 900 && var.mark_retention_margin_seconds <= 86400
    error_message = "mark_retention_margin_seconds must be between 900 (the longest function timeout) and 86,400."
  }
}

variable "bisect_batch_on_function_error" {
  description = "Split a failing batch in two and retry the halves. Must stay false: after a function error (timeout, crash) there is no response and no window state, and the halves may be processed second half first, which moves the exactly-once marks past records not yet applied (lost counts nothing detects); partial batch responses already isolate a failing key, and a malformed record never fails a batch (docs/design.md §5, §8)."
  type        = bool
  default     = false

  validation {
    condition     = !var.bisect_batch_on_function_error
    error_message = "bisect_batch_on_function_error must be false: after a function error there is no response and no window state, so halves processed second half first would move the exactly-once marks past unapplied records undetected; partial batch responses already isolate a failing key, and a malformed record never fails a batch (docs/design.md §8)."
  }
}

variable "report_batch_item_failures" {
  description = "Let the function report the first record it could not apply, so that Lambda retries from there. Must stay true: without it Lambda ignores the handlers' batchItemFailures and counts the batch as done, so the records of failed keys would be lost."
  type        = bool
  default     = true

  validation {
    condition     = var.report_batch_item_failures
    error_message = "report_batch_item_failures must be true: the handlers report failed keys through batchItemFailures; without it their records would be skipped silently."
  }
}

variable "parallelization_factor" {
  description = "Concurrent batches per shard. The handlers' exactly-once marks need each shard's records in order, so it must stay 1."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor == 1
    error_message = "parallelization_factor must be 1: the handlers' per-shard sequence marks rely on in-order delivery."
  }
}

variable "tumbling_window_in_seconds" {
  description = "Tumbling window of the mapping. The handlers need it: only tumbling-window events carry the shardId that their per-shard exactly-once marks are keyed by (they refuse events without it). A window ends with one extra invocation per shard, so longer is cheaper."
  type        = number
  default     = 900

  validation {
    condition     = var.tumbling_window_in_seconds >= 1 && var.tumbling_window_in_seconds <= 900 && floor(var.tumbling_window_in_seconds) == var.tumbling_window_in_seconds
    error_message = "tumbling_window_in_seconds must be a whole number between 1 and 900: 0 would take the shardId out of the events, and the handlers' per-shard marks with it."
  }
}

variable "enabled" {
  description = "Whether the mapping polls the stream (false pauses it without losing its position)."
  type        = bool
  default     = true
}

variable "failure_queue_retention_seconds" {
  description = "How long the on-failure queue keeps the metadata of records given up on."
  type        = number
  default     = 1209600

  validation {
    condition     = var.failure_queue_retention_seconds >= 60 && var.failure_queue_retention_seconds <= 1209600
    error_message = "failure_queue_retention_seconds must be between 60 and 1,209,600 (14 days)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module."
  type        = map(string)
  default     = {}
}
