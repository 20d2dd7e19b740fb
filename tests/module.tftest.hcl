# terraform test of the root module as a module other configurations call: with for_each (two
# stacks side by side), its defaults, its validations and its outputs; and of the deployment
# root deploy/. Mock provider: no endpoint, no credentials. Run with `make tf-test`.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_region" {
    defaults = {
      name = "us-east-1"
    }
  }

  # The provider validates ARNs, so the mocks must look like real ones.
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/tftest"
    }
  }

  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:us-east-1:123456789012:tftest-on-failure"
      url = "https://sqs.us-east-1.amazonaws.com/123456789012/tftest-on-failure"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/tftest"
    }
  }

  mock_resource "aws_lambda_function" {
    defaults = {
      arn = "arn:aws:lambda:us-east-1:123456789012:function:tftest"
    }
  }

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:us-east-1:123456789012:tftest-alarms"
    }
  }
}

# examples/multiple_environments: the module called with for_each under the caller's provider
# (a module that configured its own provider could not be). No package_file: each instance
# finds build/lambda.zip next to the module, not in the caller's folder.
run "for_each_plans_two_stacks_with_distinct_names" {
  command = plan

  module {
    source = "./examples/multiple_environments"
  }

  assert {
    condition     = output.table_names == { blue = "vstats-blue-data", green = "vstats-green-data" }
    error_message = "each instance must have its own table, named from its name_prefix"
  }

  assert {
    condition = output.function_names == {
      blue  = { views = "vstats-blue-update-views", votes = "vstats-blue-update-votes" }
      green = { views = "vstats-green-update-views", votes = "vstats-green-update-votes" }
    }
    error_message = "each instance must have its own two functions"
  }
}

run "package_file_defaults_to_the_modules_own_build" {
  command = plan

  assert {
    condition     = local.package_file == "${path.module}/build/lambda.zip"
    error_message = "package_file null must resolve against the module's folder, not the caller's working directory"
  }
}

run "a_passed_package_file_wins" {
  command = plan

  variables {
    package_file = "./build/../build/lambda.zip"
  }

  assert {
    condition     = local.package_file == "./build/../build/lambda.zip"
    error_message = "a passed package_file must be used as given"
  }
}

run "outputs_name_every_function_role_and_queue" {
  command = apply

  assert {
    condition     = output.function_arns == { views = "arn:aws:lambda:us-east-1:123456789012:function:tftest", votes = "arn:aws:lambda:us-east-1:123456789012:function:tftest" }
    error_message = "function_arns must hold both functions' ARNs"
  }

  assert {
    condition     = output.role_arns == { views = "arn:aws:iam::123456789012:role/tftest", votes = "arn:aws:iam::123456789012:role/tftest" }
    error_message = "role_arns must hold both execution roles' ARNs"
  }

  assert {
    condition     = keys(output.failure_queue_arns) == ["views", "votes"] && keys(output.failure_queue_urls) == ["views", "votes"]
    error_message = "failure_queue_arns and failure_queue_urls must name both functions' queues"
  }
}

run "rejects_unsupported_runtime_retention_and_sizes" {
  command = plan

  variables {
    lambda_runtime      = "python3.9"
    lambda_architecture = "arm"
    lambda_memory_size  = 64
    lambda_timeout      = 901
    log_retention_days  = 10
    table_kms_key_arn   = "alias/aws/dynamodb"
  }

  expect_failures = [
    var.lambda_runtime,
    var.lambda_architecture,
    var.lambda_memory_size,
    var.lambda_timeout,
    var.log_retention_days,
    var.table_kms_key_arn,
  ]
}

run "accepts_every_cloudwatch_retention" {
  command = plan

  variables {
    log_retention_days = 3653
    lambda_runtime     = "python3.13"
  }
}

# deploy/: the deployment root of `make deploy`; an unset input takes the module's default.
# Terraform warns "Backend configuration ignored" here (validate and test): expected, deploy/'s
# local backend applies only when deploy/ is the root.
run "deployment_root_rejects_a_bad_region" {
  command = plan

  module {
    source = "./deploy"
  }

  variables {
    region = "moon-base-1a"
  }

  expect_failures = [var.region]
}

run "deployment_root_plans_with_the_modules_defaults" {
  command = plan

  module {
    source = "./deploy"
  }

  assert {
    condition     = output.table_name == "video-stats-data" && output.summary_index_shards == 4
    error_message = "the deployment root must deploy the module with its defaults when nothing is set"
  }
}
