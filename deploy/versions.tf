terraform {
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # The state stays where `make deploy` kept it before this folder existed: one workspace per
  # target (scripts/tf selects `local` or `aws`) under the repository's terraform.tfstate.d/.
  # Paths are relative to this folder (scripts/tf runs terraform -chdir=deploy). For a team,
  # replace this block with a remote backend (S3 with locking) and run
  # `scripts/tf aws -chdir=deploy init -migrate-state`.
  backend "local" {
    path          = "../terraform.tfstate"
    workspace_dir = "../terraform.tfstate.d"
  }
}
