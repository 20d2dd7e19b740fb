"""Which deployment a tool talks to: table name, endpoint and (local only) the engine's
control URL, from flags or the environment the Makefile sets after ``make deploy``.

Nothing here is local-specific: without ``AWS_ENDPOINT_URL`` boto3 goes to AWS with the default
credential chain, so every tool works unchanged against a real deployment.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from vstats.cli import UsageError, positive_int

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TABLE_ENV = "VIDEO_STATS_TABLE"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
CONTROL_ENV = "LOCALCLOUD_CONTROL_URL"
SHARDS_ENV = "SUMMARY_INDEX_SHARDS"
DEFAULT_INDEX_SHARDS = 4
DEFAULT_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Deployment:
    table: str
    endpoint_url: str | None = None
    control_url: str | None = None
    region: str | None = None
    index_shards: int = DEFAULT_INDEX_SHARDS

    @property
    def is_local(self) -> bool:
        """True when the local engine's control API is known (faults, drained, stats)."""
        return self.control_url is not None

    def client(self, service: str, *, pool: int = 10) -> Any:
        # Standard retries absorb throttling (AWS_MAX_ATTEMPTS, botocore's own variable,
        # overrides); the pool matches the tool's concurrency.
        attempts = os.environ.get("AWS_MAX_ATTEMPTS", "")
        config = Config(
            retries={
                "mode": "standard",
                "max_attempts": int(attempts) if attempts.isdigit() else DEFAULT_ATTEMPTS,
            },
            max_pool_connections=max(pool, 10),
        )
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=config,
        )

    def dynamodb(self, *, pool: int = 10) -> DynamoDBClient:
        client: DynamoDBClient = self.client("dynamodb", pool=pool)
        return client


def add_arguments(parser: argparse.ArgumentParser, *, index_shards: bool = False) -> None:
    """The deployment flags every tool shares; each defaults to its environment variable."""
    group = parser.add_argument_group("deployment")
    group.add_argument(
        "--table", help=f"table name (default: ${TABLE_ENV}, set by the make targets)"
    )
    group.add_argument(
        "--endpoint-url",
        help=f"AWS endpoint (default: ${ENDPOINT_ENV}; unset means real AWS)",
    )
    group.add_argument(
        "--control-url",
        help=f"local engine control API (default: ${CONTROL_ENV}; local endpoint only)",
    )
    group.add_argument("--region", help="AWS region (default: the credential chain's)")
    if index_shards:
        group.add_argument(
            "--index-shards",
            type=positive_int,
            help=f"GSI2 shards per summary type (default: ${SHARDS_ENV} or "
            f"{DEFAULT_INDEX_SHARDS}; must match the deployment)",
        )


def resolve(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Deployment:
    env = dict(os.environ) if environ is None else environ
    table = args.table or env.get(TABLE_ENV)
    if not table:
        raise UsageError(
            f"no table: pass --table NAME or set {TABLE_ENV} (the make targets set it after "
            "'make deploy')"
        )
    shards = getattr(args, "index_shards", None)
    if shards is None:
        raw = env.get(SHARDS_ENV, str(DEFAULT_INDEX_SHARDS))
        try:
            shards = int(raw)
        except ValueError:
            shards = 0
        if shards < 1:
            raise UsageError(f"{SHARDS_ENV}={raw!r} is not a whole number >= 1")
    return Deployment(
        table=table,
        endpoint_url=args.endpoint_url or env.get(ENDPOINT_ENV) or None,
        control_url=(args.control_url or env.get(CONTROL_ENV) or "").rstrip("/") or None,
        region=args.region or None,
        index_shards=shards,
    )
