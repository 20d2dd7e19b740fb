# Event filter patterns (docs/design.md §4), one list per base item type, read
# from filter_patterns.json: the one source that Terraform deploys and that the
# local engine, the tools and the tests evaluate (vstats.filter_patterns).
#
# A pattern only matches a record that holds every field it names, and the
# images tell the event kinds apart: INSERT has only a NewImage, REMOVE only an
# OldImage, MODIFY both. So an item of a type is matched on NewImage when it is
# written (INSERT, MODIFY) and on OldImage when it is overwritten or deleted
# (MODIFY, REMOVE); a MODIFY matches both patterns and is still delivered once.
# No eventName: "DynamoDB event source mappings only support filtering on the
# `dynamodb` key" (Lambda guide, "Using event filtering with a DynamoDB event
# source"), and it would select nothing the images do not already select.
# Summary items (USER_SUMMARY, VIDEO_SUMMARY) match neither pattern, so the
# handlers' own writes never invoke them.
locals {
  filter_patterns = {
    for item_type, patterns in jsondecode(file("${path.module}/filter_patterns.json")) :
    item_type => [for pattern in patterns : jsonencode(pattern)]
  }
}
