# Event filter patterns (docs/design.md §4). A pattern only matches a record that
# holds every field it names, and a REMOVE record has no NewImage: so an item
# of a type is matched on NewImage when it is written (INSERT, MODIFY) and on
# OldImage when it is overwritten or deleted (MODIFY, REMOVE). A MODIFY matches
# both patterns and is still delivered once. Summary items (USER_SUMMARY,
# VIDEO_SUMMARY) match neither, so the handlers' own writes never invoke them.
locals {
  filter_patterns = {
    for item_type in ["VIEW", "VOTE"] : item_type => [
      jsonencode({
        eventName = ["INSERT", "MODIFY"]
        dynamodb  = { NewImage = { type = { S = [item_type] } } }
      }),
      jsonencode({
        eventName = ["MODIFY", "REMOVE"]
        dynamodb  = { OldImage = { type = { S = [item_type] } } }
      }),
    ]
  }
}
