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

  default_tags {
    tags = {
      Project     = "video-stats"
      Environment = var.name_prefix
      Purpose     = "benchmark-reference-design"
    }
  }
}
