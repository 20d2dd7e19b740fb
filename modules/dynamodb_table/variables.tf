variable "name" {
  description = "Name of the DynamoDB table."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the table through the API. Keep it on for anything that holds real data; switch it off for ephemeral environments."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Keep continuous backups (35 days of point-in-time recovery)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for server-side encryption; null uses the AWS managed key alias/aws/dynamodb."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to the table."
  type        = map(string)
  default     = {}
}

variable "gsi1_attributes" {
  description = "Non-key attributes GSI1 projects: the data model's attributes (docs/design.md §2, video_stats.model.DATA_MODEL_ATTRIBUTES), so that bookkeeping attributes are not copied."
  type        = list(string)
  default     = ["type", "userId", "videoId", "duration", "voteType", "views", "likes", "dislikes"]

  validation {
    condition     = length(var.gsi1_attributes) >= 1 && length(var.gsi1_attributes) <= 100 && length(distinct(var.gsi1_attributes)) == length(var.gsi1_attributes)
    error_message = "gsi1_attributes must list between 1 and 100 distinct attribute names (the DynamoDB limit for INCLUDE projections)."
  }
}
