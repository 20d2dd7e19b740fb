"""On-failure destinations of a stream mapping: SQS queues and SNS topics on the endpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable

import boto3


class Destinations:
    """One sender per destination ARN, made on first use. Thread-safe."""

    def __init__(self, endpoint_url: str) -> None:
        self._endpoint_url = endpoint_url
        self._senders: dict[str, Callable[[str], None]] = {}
        self._lock = threading.Lock()

    def send(self, arn: str, message: str) -> None:
        with self._lock:
            sender = self._senders.get(arn)
            if sender is None:
                sender = self._senders[arn] = self._make_sender(arn)
        sender(message)

    def _make_sender(self, arn: str) -> Callable[[str], None]:
        parts = arn.split(":")
        service, region, account, name = parts[2], parts[3], parts[4], parts[5]
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=region
        )
        if service == "sqs":
            sqs = session.client("sqs", endpoint_url=self._endpoint_url)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            return lambda body: sqs.send_message(QueueUrl=url, MessageBody=body) and None
        if service == "sns":
            sns = session.client("sns", endpoint_url=self._endpoint_url)
            return lambda body: sns.publish(TopicArn=arn, Message=body) and None
        raise ValueError(f"unsupported on-failure destination {arn}")
