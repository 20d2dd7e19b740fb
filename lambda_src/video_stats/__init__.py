"""video-stats: exact per-video and per-user statistics kept from a DynamoDB stream.

Modules:
    model     the item format (docs/design.md §2) and what a base item contributes to the
              summaries (§3); pure, shared by the handlers and every tool.
    records   parsing and merging of a batch of stream records into net deltas; pure.
    marks     exactly-once marks (per summary, function and shard): the argument, format,
              lineage pruning, replay guard, retention; pure.
    lineage   shard lineage snapshots (parent/children) and when to refresh them; pure.
    apply     the apply loop: concurrent per-key writes, retries, partial batch failure; pure.
    store     the DynamoDB adapter (conditional UpdateItem with exactly-once marks, GSI2 bucket).
    streams   the DynamoDB Streams adapter (DescribeStream: shards and parents).
    handlers  the two thin Lambda entry points.
"""
