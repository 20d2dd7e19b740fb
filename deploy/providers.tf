# The one provider configuration of the stack. The same block serves AWS and the local
# endpoint: scripts/tf points the provider at the local endpoint through AWS_ENDPOINT_URL and
# dummy credentials in the environment, never through a second copy of this block.
provider "aws" {
  region = var.region

  # On every resource that takes tags; the module adds var.tags to each resource itself.
  default_tags {
    tags = {
      Project     = "video-stats"
      Environment = var.name_prefix
    }
  }
}
