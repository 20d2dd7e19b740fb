"""Helpers of the operator-tool tests (imported by conftest.py and the tests): a table with
the stack's schema, a stand-in stream consumer built from the real handler code, and the
project's handlers deployed on a local endpoint (``deploy_handlers``).

The consumer (``StreamConsumer``) reads the table's stream with the Streams API and applies it
with ``video_stats``' own parse/apply/store code (one mark per stream, as the handlers do with
ALLOW_EVENTS_WITHOUT_SHARD_ID on a one-shard stream). It keeps its position while paused, like
an event source mapping, so it can stand in for the pipeline in reconcile --repair and load-test
runs without the local engine.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import build_lambda_zip
import stream_fakes
from localcloud.endpoint_process import LAMBDA_TRUST_POLICY, LocalEndpoint
from video_stats import model
from video_stats.apply import Applier, ApplyConfig
from video_stats.marks import shard_marks
from video_stats.records import parse_batch
from video_stats.store import SummaryStore
from vstats.filter_patterns import filter_criteria

REGION = "us-east-1"
INDEX_SHARDS = 4
LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
#: Function suffix, item type, handler: the two functions main.tf deploys.
HANDLERS = (
    ("views", "VIEW", "update_view_counters"),
    ("votes", "VOTE", "update_vote_counters"),
)


@dataclass
class TableEnv:
    endpoint: str
    name: str
    client: Any
    streams: Any
    stream_arn: str

    def args(self) -> list[str]:
        """The deployment flags every tool takes."""
        return ["--table", self.name, "--endpoint-url", self.endpoint, "--region", REGION]

    def put(self, item: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.name, Item=item)

    def put_summary(self, key: model.SummaryKey, counters: model.Counters) -> None:
        """A summary item as the handlers write it (identity, counters, GSI2 bucket), without
        marks."""
        item: dict[str, Any] = {
            **model.summary_item_key(key),
            **model.summary_identity(key, INDEX_SHARDS),
            "GSI2SK": {"S": model.summary_index_bucket(counters.views)},
            "views": {"N": str(counters.views)},
            "duration": {"N": str(counters.duration)},
            "likes": {"N": str(counters.likes)},
            "dislikes": {"N": str(counters.dislikes)},
        }
        self.put(item)


def create_table(client: Any, name: str) -> str:
    """The project's table (schema from stream_fakes); returns its stream ARN."""
    stream_fakes.create_table(client, name)
    arn: str = client.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    return arn


@dataclass
class StreamConsumer:
    """Applies the stream to the summaries with the handlers' code; a paused consumer keeps its
    position (like a disabled event source mapping). Implements vstats.pipeline.Pipeline."""

    env: TableEnv
    batch_size: int = 100
    positions: dict[str, str] = field(default_factory=dict)  # shard -> last sequence number
    paused: bool = False
    on_pause: Callable[[], None] | None = None  # runs once paused: "the app keeps writing"
    # Summaries whose writes fail (throttling): the batch answers a partial failure and the
    # position stays before the first record a failed key needs, as Lambda's does.
    failing: set[model.SummaryKey] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def process(self) -> int:
        """Apply every record beyond the positions; returns how many were read."""
        with self._lock:
            if self.paused:
                return 0
            store = _FailingStore(
                self.env.client, self.env.name, index_shards=INDEX_SHARDS, failing=self.failing
            )
            arn = self.env.stream_arn
            appliers = {
                item_type: Applier(store, ApplyConfig(function, shard_marks(function, arn)))
                for item_type, function in (("VIEW", "views"), ("VOTE", "votes"))
            }
            description = self.env.streams.describe_stream(StreamArn=self.env.stream_arn)
            read = 0
            for shard in description["StreamDescription"]["Shards"]:
                shard_id = shard["ShardId"]
                kwargs: dict[str, Any] = {"StreamArn": self.env.stream_arn, "ShardId": shard_id}
                if shard_id in self.positions:
                    kwargs |= {
                        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "SequenceNumber": self.positions[shard_id],
                    }
                else:
                    kwargs["ShardIteratorType"] = "TRIM_HORIZON"
                iterator = self.env.streams.get_shard_iterator(**kwargs)["ShardIterator"]
                while iterator:
                    response = self.env.streams.get_records(
                        ShardIterator=iterator, Limit=self.batch_size
                    )
                    records = [_lambda_record(r, self.env.stream_arn) for r in response["Records"]]
                    if not records:
                        break
                    failures = []
                    for item_type, applier in appliers.items():
                        result = applier.apply(parse_batch(records, item_type))  # type: ignore[arg-type]
                        assert result.failure is None or self.failing, result.failed_keys
                        if result.failure is not None:
                            failures.append(int(result.failure))
                    if failures:  # retried on the next call, from the first failed record on
                        done = [
                            r
                            for r in records
                            if int(r["dynamodb"]["SequenceNumber"]) < min(failures)
                        ]
                        if done:
                            self.positions[shard_id] = done[-1]["dynamodb"]["SequenceNumber"]
                        read += len(done)
                        break
                    self.positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
                    read += len(records)
                    iterator = response.get("NextShardIterator")
            return read

    # vstats.pipeline.Pipeline
    def pause(self) -> list[str]:
        with self._lock:
            self.paused = True
        if self.on_pause is not None:
            self.on_pause()
        return ["consumer"]

    def resume(self, paused: list[str]) -> None:
        with self._lock:
            self.paused = False

    # background mode, for load tests
    def start(self, interval: float = 0.05) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.process()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="consumer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _FailingStore(SummaryStore):
    """The handlers' store, throttled for some summaries."""

    def __init__(self, *args: Any, failing: set[model.SummaryKey], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failing = failing

    def update(self, request: Any) -> Any:
        if request.key in self.failing:
            raise RuntimeError(f"throttled: {request.key}")
        return super().update(request)


def _lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A Streams API record in the shape Lambda hands to the function."""
    ddb = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if created is not None and not isinstance(created, int | float):
        ddb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventSource": "aws:dynamodb",
        "eventSourceARN": stream_arn,
        "dynamodb": ddb,
    }


@dataclass
class LocalStack:
    """A table with the handlers deployed on a local endpoint (``deploy_handlers``)."""

    endpoint: LocalEndpoint
    table: str
    client: Any
    stream_arn: str

    def args(self) -> list[str]:
        """The deployment flags every tool takes, with the endpoint's control API."""
        return [
            "--table",
            self.table,
            "--endpoint-url",
            self.endpoint.endpoint_url,
            "--control-url",
            self.endpoint.control_url,
            "--region",
            REGION,
        ]


def handler_zip() -> bytes:
    """The handlers' zip for the local engine: lambda_src's files by the zip builder's own
    allow-list, plus the pinned dependency the local runtime does not provide, taken from this
    virtual environment (no pip, no network)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in build_lambda_zip.source_files(LAMBDA_SRC):
            archive.write(path, path.relative_to(LAMBDA_SRC).as_posix())
        for module in ("aws_lambda_powertools", "typing_extensions"):
            spec = importlib.util.find_spec(module)
            assert spec is not None
            assert spec.origin is not None
            origin = Path(spec.origin)
            if origin.name == "__init__.py":
                root = origin.parent
                for path in sorted(root.rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts:
                        archive.write(path, path.relative_to(root.parent).as_posix())
            else:
                archive.write(origin, origin.name)
    return buffer.getvalue()


@dataclass
class DeployedHandlers:
    functions: list[str]
    mappings: list[str]  # UUIDs
    queues: list[str]  # on-failure queue URLs, when asked for


def deploy_handlers(
    endpoint: LocalEndpoint,
    name: str,
    table: str,
    stream_arn: str,
    *,
    on_failure_queues: bool = False,
    environment: dict[str, str] | None = None,
    **mapping_settings: Any,
) -> DeployedHandlers:
    """The project's two handlers as filtered functions on ``table``'s stream, created with boto3
    (no Terraform): the mapping settings as deployed (filters from filter_patterns.json, partial
    batch responses, a tumbling window so events carry the shardId) unless
    ``mapping_settings`` says otherwise; with ``on_failure_queues``, an SQS queue per function
    as its on-failure destination."""
    lam, iam, sqs = (endpoint.client(s) for s in ("lambda", "iam", "sqs"))
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"][
        "Arn"
    ]
    code = handler_zip()
    deployed = DeployedHandlers([], [], [])
    for function, item_type, handler in HANDLERS:
        function_name = f"{name}-update-{function}"
        settings: dict[str, Any] = {
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 0,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "TumblingWindowInSeconds": 900,  # as deployed: its events carry the shardId
            "FilterCriteria": filter_criteria(item_type),  # as deployed (filter_patterns.json)
            **mapping_settings,
        }
        if on_failure_queues:
            queue = sqs.create_queue(QueueName=f"{function_name}-on-failure")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            settings["DestinationConfig"] = {"OnFailure": {"Destination": queue_arn}}
            deployed.queues.append(queue)
        arn = lam.create_function(
            FunctionName=function_name,
            Runtime="python3.12",
            Role=role,
            Handler=f"video_stats.handlers.{handler}",
            Code={"ZipFile": code},
            Timeout=30,
            Environment={
                "Variables": {
                    "TABLE_NAME": table,
                    "POWERTOOLS_SERVICE_NAME": f"update-{function}",
                    "POWERTOOLS_METRICS_NAMESPACE": "VideoStats",
                    **(environment or {}),
                }
            },
        )["FunctionArn"]
        deployed.functions.append(function_name)
        deployed.mappings.append(
            lam.create_event_source_mapping(
                FunctionName=arn, EventSourceArn=stream_arn, **settings
            )["UUID"]
        )
    return deployed
