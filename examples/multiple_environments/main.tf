# Two independent video-stats stacks in one configuration: the module called with for_each,
# under one provider configuration that this caller owns. From outside this repository, set
# source to the repository (for example "git::https://<host>/video-stats.git?ref=<tag>") and
# package_file to the zip `make package` built there.
terraform {
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region of both stacks."
  type        = string
  default     = "us-east-1"
}

variable "environments" {
  description = "One stack per name; each name becomes part of every resource name of its stack."
  type        = set(string)
  default     = ["blue", "green"]
}

variable "package_file" {
  description = "Deployment zip (make package); null: the module's own build/lambda.zip."
  type        = string
  default     = null
}

module "video_stats" {
  source   = "../.."
  for_each = var.environments

  name_prefix         = "vstats-${each.key}"
  package_file        = var.package_file
  deletion_protection = false
  tags                = { Environment = each.key }
}

output "table_names" {
  description = "Table of each stack, by environment."
  value       = { for env, stack in module.video_stats : env => stack.table_name }
}

output "function_names" {
  description = "Stream functions of each stack, by environment and function (views, votes)."
  value       = { for env, stack in module.video_stats : env => stack.function_names }
}

output "alarm_topic_arns" {
  description = "Alarm topic of each stack, by environment."
  value       = { for env, stack in module.video_stats : env => stack.alarm_topic_arn }
}
