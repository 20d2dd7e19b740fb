variable "name_prefix" {
  description = "Prefix of every resource name (unique per benchmark run)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,37}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 38 letters, digits or hyphens."
  }
}

variable "package_file" {
  description = "Deployment zip of bench/reference/lambda_src (built by `make bench`)."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}
