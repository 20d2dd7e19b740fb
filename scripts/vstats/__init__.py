"""Operator tools of the video-stats stack: load test, live summary, access-pattern queries,
reconcile and plan review. Each is ``python -m vstats.<tool>`` and needs only boto3's default
credential chain (plus ``AWS_ENDPOINT_URL`` for the local endpoint)."""
