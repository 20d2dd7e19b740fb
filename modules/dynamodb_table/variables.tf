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
