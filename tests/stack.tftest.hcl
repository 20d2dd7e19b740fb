# terraform test with a mock provider: no endpoint, no credentials.
# Run with `make tf-test` (needs build/lambda.zip from `make package`).

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
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
}

variables {
  name_prefix  = "tftest"
  package_file = "build/lambda.zip"
}

run "filters_match_every_change_of_their_own_item_type" {
  command = plan

  assert {
    condition = local.filter_patterns["VIEW"] == [
      "{\"dynamodb\":{\"NewImage\":{\"type\":{\"S\":[\"VIEW\"]}}}}",
      "{\"dynamodb\":{\"OldImage\":{\"type\":{\"S\":[\"VIEW\"]}}}}",
    ]
    error_message = "views filters must match NewImage.type=VIEW (INSERT, MODIFY) and OldImage.type=VIEW (MODIFY, REMOVE)"
  }

  assert {
    condition = local.filter_patterns["VOTE"] == [
      "{\"dynamodb\":{\"NewImage\":{\"type\":{\"S\":[\"VOTE\"]}}}}",
      "{\"dynamodb\":{\"OldImage\":{\"type\":{\"S\":[\"VOTE\"]}}}}",
    ]
    error_message = "votes filters must match NewImage.type=VOTE (INSERT, MODIFY) and OldImage.type=VOTE (MODIFY, REMOVE)"
  }

  assert {
    # "DynamoDB event source mappings only support filtering on the `dynamodb` key"
    # (Lambda guide, "Using event filtering with a DynamoDB event source").
    condition = alltrue(flatten([
      for patterns in values(local.filter_patterns) : [
        for p in patterns : keys(jsondecode(p)) == ["dynamodb"]
      ]
    ]))
    error_message = "a DynamoDB filter pattern may only name the dynamodb key (docs/design.md §4)"
  }

  assert {
    # Dropping eventName changes nothing: the images a record carries tell INSERT (NewImage),
    # MODIFY (both) and REMOVE (OldImage) apart. The former patterns (eventName INSERT|MODIFY
    # on NewImage, MODIFY|REMOVE on OldImage) delivered to a function every record with an
    # image of its type and nothing else; evaluate today's patterns on every kind of record,
    # type changes and summaries included, and require exactly that.
    condition = alltrue(flatten([
      for record in [
        { NewImage = "VIEW" },                    # INSERT
        { NewImage = "VIEW", OldImage = "VIEW" }, # MODIFY
        { OldImage = "VIEW" },                    # REMOVE
        { NewImage = "VOTE" },
        { NewImage = "VOTE", OldImage = "VOTE" },
        { OldImage = "VOTE" },
        { NewImage = "VOTE", OldImage = "VIEW" }, # a type change
        { NewImage = "VIEW", OldImage = "VOTE" },
        { NewImage = "VIDEO_SUMMARY" }, # the handlers' own writes
        { NewImage = "USER_SUMMARY", OldImage = "USER_SUMMARY" },
        { OldImage = "VIDEO_SUMMARY" },
        ] : [
        for function_type, patterns in local.filter_patterns : anytrue([
          for p in patterns : anytrue([
            for image, rule in jsondecode(p).dynamodb : contains(rule.type.S, lookup(record, image, ""))
          ])
        ]) == contains(values(record), function_type)
      ]
    ]))
    error_message = "the patterns must deliver to a function exactly the records with an image of its item type"
  }

  assert {
    condition     = module.table.name == "tftest-data"
    error_message = "the table must be named from name_prefix"
  }
}

run "table_follows_the_data_model" {
  command = plan

  module {
    source = "./modules/dynamodb_table"
  }

  variables {
    name = "tftest-data"
  }

  assert {
    condition     = aws_dynamodb_table.this.hash_key == "PK" && aws_dynamodb_table.this.range_key == "SK"
    error_message = "the table key must be PK/SK"
  }

  assert {
    condition     = aws_dynamodb_table.this.stream_enabled && aws_dynamodb_table.this.stream_view_type == "NEW_AND_OLD_IMAGES"
    error_message = "the stream must carry new and old images"
  }

  assert {
    condition = anytrue([
      for gsi in aws_dynamodb_table.this.global_secondary_index :
      gsi.name == "GSI1" && gsi.hash_key == "GSI1PK" && gsi.range_key == "GSI1SK" && gsi.projection_type == "INCLUDE"
      && toset(gsi.non_key_attributes) == toset(["type", "userId", "videoId", "duration", "voteType", "views", "likes", "dislikes"])
    ])
    error_message = "GSI1 must be GSI1PK/GSI1SK projecting exactly the data model's attributes (no marks)"
  }

  assert {
    condition = anytrue([
      for gsi in aws_dynamodb_table.this.global_secondary_index :
      gsi.name == "GSI2" && gsi.hash_key == "GSI2PK" && gsi.range_key == "GSI2SK" && gsi.projection_type == "KEYS_ONLY"
    ])
    error_message = "GSI2 must be GSI2PK/GSI2SK (views bucket) with projection KEYS_ONLY, so most summary updates cost it nothing"
  }

  assert {
    condition = (aws_dynamodb_table.this.billing_mode == "PAY_PER_REQUEST"
      && aws_dynamodb_table.this.point_in_time_recovery[0].enabled
      && aws_dynamodb_table.this.server_side_encryption[0].enabled
    && aws_dynamodb_table.this.deletion_protection_enabled)
    error_message = "on-demand billing, PITR, SSE and deletion protection (by default) are required"
  }
}

run "mapping_uses_production_defaults" {
  # apply against the mock provider, so that ARNs in the IAM policy are known.
  command = apply

  module {
    source = "./modules/stream_function"
  }

  variables {
    name            = "tftest-update-views"
    handler         = "video_stats.handlers.update_view_counters"
    table_arn       = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data"
    stream_arn      = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data/stream/2026-01-01T00:00:00.000"
    filter_patterns = ["{\"eventName\":[\"INSERT\"]}", "{\"eventName\":[\"REMOVE\"]}"]
  }

  assert {
    condition     = aws_lambda_event_source_mapping.this.batch_size == 5000 && aws_lambda_event_source_mapping.this.maximum_batching_window_in_seconds == 300
    error_message = "batches of up to 5,000 records gathered for up to 300 s by default (the cost/freshness knob, docs/design.md §6)"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.this.starting_position == "TRIM_HORIZON" && aws_lambda_event_source_mapping.this.parallelization_factor == 1
    error_message = "a new mapping must read the whole stream, one batch per shard at a time"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.this.maximum_retry_attempts == -1 && aws_lambda_event_source_mapping.this.maximum_record_age_in_seconds == 21600
    error_message = "by default a failing batch is retried until its records are 6 h old: failures are infrastructure (throttling, outages), a bad record never fails a batch (docs/design.md §5)"
  }

  assert {
    condition     = aws_lambda_event_source_mapping.this.tumbling_window_in_seconds == 900
    error_message = "a tumbling window is needed: only its events carry the shardId of the exactly-once marks"
  }

  assert {
    condition     = aws_lambda_function.this.environment[0].variables["MARK_RETENTION_SECONDS"] == "25200"
    error_message = "the handlers keep marks for the mapping's maximum record age (6 h) plus the 1 h margin"
  }

  assert {
    condition     = !aws_lambda_event_source_mapping.this.bisect_batch_on_function_error
    error_message = "bisect on function error must be off: halves processed second half first would lose records undetected (docs/design.md §8)"
  }

  assert {
    condition     = toset(aws_lambda_event_source_mapping.this.function_response_types) == toset(["ReportBatchItemFailures"])
    error_message = "the handlers report partial batch failures"
  }

  assert {
    condition     = toset([for f in aws_lambda_event_source_mapping.this.filter_criteria[0].filter : f.pattern]) == toset(var.filter_patterns)
    error_message = "the mapping must carry exactly the given filter patterns"
  }

  assert {
    condition     = length(aws_lambda_event_source_mapping.this.destination_config[0].on_failure) == 1
    error_message = "the mapping needs an on-failure destination"
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/aws/lambda/tftest-update-views" && aws_cloudwatch_log_group.this.retention_in_days == 30
    error_message = "the function's log group must exist with a retention"
  }

  assert {
    # No DynamoDB or SQS statement may grant on every resource.
    condition = alltrue([
      for s in data.aws_iam_policy_document.this.statement :
      !contains(s.resources, "*") || !anytrue([for a in s.actions : startswith(a, "dynamodb:") || startswith(a, "sqs:")])
    ])
    error_message = "a DynamoDB or SQS IAM statement has a '*' resource"
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.this.statement : alltrue([for a in s.actions : !strcontains(a, "*")])
    ])
    error_message = "IAM actions must be named, not wildcards"
  }
}

run "rejects_parallelization_above_one" {
  command = plan

  module {
    source = "./modules/stream_function"
  }

  variables {
    name                   = "tftest-update-views"
    handler                = "video_stats.handlers.update_view_counters"
    table_arn              = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data"
    stream_arn             = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data/stream/x"
    filter_patterns        = ["{}"]
    parallelization_factor = 2
    batch_size             = 10001
    maximum_retry_attempts = -2
    starting_position      = "AT_TIMESTAMP"
  }

  expect_failures = [
    var.parallelization_factor,
    var.batch_size,
    var.maximum_retry_attempts,
    var.starting_position,
  ]
}

run "rejects_out_of_range_mapping_settings" {
  command = plan

  module {
    source = "./modules/stream_function"
  }

  variables {
    name                               = "tftest-update-views"
    handler                            = "video_stats.handlers.update_view_counters"
    table_arn                          = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data"
    stream_arn                         = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data/stream/x"
    filter_patterns                    = ["{}", "{}", "{}", "{}", "{}", "{}"]
    maximum_batching_window_in_seconds = 301
    maximum_record_age_in_seconds      = 30
  }

  expect_failures = [
    var.filter_patterns,
    var.maximum_batching_window_in_seconds,
    var.maximum_record_age_in_seconds,
  ]
}

run "rejects_settings_that_lose_counts_silently" {
  command = plan

  module {
    source = "./modules/stream_function"
  }

  variables {
    name                           = "tftest-update-views"
    handler                        = "video_stats.handlers.update_view_counters"
    table_arn                      = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data"
    stream_arn                     = "arn:aws:dynamodb:us-east-1:123456789012:table/tftest-data/stream/x"
    filter_patterns                = ["{}"]
    report_batch_item_failures     = false
    tumbling_window_in_seconds     = 0
    maximum_record_age_in_seconds  = -1
    mark_retention_margin_seconds  = 60
    bisect_batch_on_function_error = true
  }

  expect_failures = [
    var.report_batch_item_failures,
    var.tumbling_window_in_seconds,
    var.maximum_record_age_in_seconds,
    var.mark_retention_margin_seconds,
    var.bisect_batch_on_function_error,
  ]
}

run "rejects_a_bad_name_prefix" {
  command = plan

  variables {
    name_prefix = "1 not a name"
  }

  expect_failures = [var.name_prefix]
}
