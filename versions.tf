terraform {
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

# The same configuration serves AWS and the local endpoint: `make deploy` points
# the provider at the local endpoint through AWS_ENDPOINT_URL and dummy
# credentials in the environment, never through a second copy of this block.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "video-stats"
      Environment = var.name_prefix
    })
  }
}
