# A module other configurations call (with count, for_each, depends_on and a provider of
# their choice): it declares the provider it needs and configures none. The deployment root
# that `make deploy` applies, deploy/, configures it (region, default tags).
terraform {
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
