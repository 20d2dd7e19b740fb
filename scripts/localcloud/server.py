"""The local endpoint process: moto server + stream engine + control API, in one process.

``serve`` runs in the foreground until SIGTERM or SIGINT, then stops the engine and its
workers and removes ``endpoint.json``. Every wait on the way down is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from logging.handlers import WatchedFileHandler
from pathlib import Path
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from localcloud import motopatch, motostreams
from localcloud.control import ControlState, start_control_server
from localcloud.engine import Engine
from localcloud.faults import Faults
from localcloud.invocation import function_spec
from localcloud.mapping_stats import StatsRegistry
from localcloud.metrics_publisher import MetricsPublisher
from localcloud.shards import StreamSettings, merge_settings
from localcloud.state import EndpointInfo, write_endpoint_info
from localcloud.worker_pool import WorkerPool
from localcloud.writestats import WriteStats

log = logging.getLogger("localcloud.server")

# DynamoDB and Streams requests run one at a time, as one item's writes are atomic in AWS:
# moto's threaded server would otherwise interleave read-modify-write updates (lost
# counter increments), hand out duplicate stream sequence numbers, and let a stream
# reader see a transaction that is then rolled back.
DYNAMODB_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")

# Shards close and hand over to a child every few hours on AWS; here every 45 s by default, so
# that a load test crosses several generations (0 turns rotation off).
DEFAULT_STREAM_SETTINGS = StreamSettings(partitions=4, rotation_seconds=45.0)
ENVIRONMENT_SETTINGS = {
    "LOCALCLOUD_STREAM_PARTITIONS": "partitions",
    "LOCALCLOUD_SHARD_ROTATION_SECONDS": "rotation_seconds",
    "LOCALCLOUD_SHARD_ROTATION_RECORDS": "rotation_records",
    "LOCALCLOUD_SHARD_SPLIT_EVERY": "split_every",
}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PortInUse(Exception):
    pass


def serialize_dynamodb(app: WSGIApp) -> WSGIApp:
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(DYNAMODB_TARGETS):
            return app(environ, start_response)
        with lock:
            body = app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    return wrapped


def _configure_logging(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    moto_handler = WatchedFileHandler(log_dir / "moto.log")
    moto_handler.setFormatter(formatter)
    engine_handler = WatchedFileHandler(log_dir / "engine.log")
    engine_handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [moto_handler]
    root.setLevel(logging.INFO)
    engine_logger = logging.getLogger("localcloud")
    engine_logger.handlers[:] = [engine_handler]
    engine_logger.propagate = False
    # One line per request would be thousands a second under load.
    request_level = logging.INFO if os.environ.get("LOCALCLOUD_LOG_REQUESTS") else logging.WARNING
    logging.getLogger("werkzeug").setLevel(request_level)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _make_moto_server(host: str, port: int) -> Any:
    app = serialize_dynamodb(DomainDispatcherApplication(create_backend_app))
    try:
        return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use") from None
        raise
    except SystemExit:  # werkzeug exits when the port is taken
        raise PortInUse(f"port {port} on {host} is already in use") from None


def stream_settings_from_environment(environ: Mapping[str, str] | None = None) -> StreamSettings:
    """The endpoint's stream defaults from ``LOCALCLOUD_STREAM_PARTITIONS``,
    ``LOCALCLOUD_SHARD_ROTATION_SECONDS``, ``LOCALCLOUD_SHARD_ROTATION_RECORDS`` and
    ``LOCALCLOUD_SHARD_SPLIT_EVERY`` (ValueError with a readable reason if invalid)."""
    environ = os.environ if environ is None else environ
    body: dict[str, Any] = {}
    for variable, name in ENVIRONMENT_SETTINGS.items():
        text = environ.get(variable, "").strip()
        if text:
            try:
                body[name] = float(text) if "." in text else int(text)
            except ValueError:
                raise ValueError(f"{variable} must be a number, not {text!r}") from None
    try:
        return merge_settings(DEFAULT_STREAM_SETTINGS, body)
    except ValueError as exc:
        raise ValueError(f"stream settings from the environment: {exc}") from None


def serve(
    state_dir: Path,
    port: int,
    host: str = "127.0.0.1",
    control_port: int = 0,
    stream_settings: StreamSettings | None = None,
) -> int:
    state_dir = state_dir.resolve()
    log_dir = state_dir / "logs"
    _configure_logging(log_dir)
    # moto reads its settings from the environment; its own Lambda never runs here.
    os.environ.setdefault("MOTO_PORT", str(port))

    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    moto_server = _make_moto_server(host, port)
    endpoint_url = f"http://{host}:{port}"
    write_stats = WriteStats()
    stats = StatsRegistry()
    faults = Faults()
    pool = WorkerPool(state_dir, endpoint_url)
    engine = Engine(endpoint_url, pool, stats, faults)
    engine.metrics = publisher = MetricsPublisher(endpoint_url, pool.log_dir)

    def invoke(function: Any, event: bytes) -> tuple[bool, bytes]:
        """The Lambda Invoke API, run in the engine's workers."""
        handle = pool.invoke(function_spec(function), lambda: bytes(function.code_bytes), event)
        while not handle.wait(1.0):
            pass
        result = handle.result
        if result.ok:
            return True, json.dumps(result.payload).encode()
        error = {"errorMessage": result.error_message or "", "errorType": result.error_type}
        return False, json.dumps(error).encode()

    motopatch.install(write_stats, engine.notify, invoke, faults)
    settings = stream_settings or stream_settings_from_environment()
    motostreams.configure(settings)
    log.info("stream settings: %s", settings)

    threading.Thread(target=moto_server.serve_forever, name="moto", daemon=True).start()
    state = ControlState(engine, stats, write_stats, faults, endpoint_url, time.time())
    control = start_control_server(state, host, control_port)
    engine.start()
    publisher.start()
    info = EndpointInfo(os.getpid(), endpoint_url, state.control_url)
    write_endpoint_info(state_dir, info)
    log.info("serving %s (control %s)", endpoint_url, state.control_url)
    print(f"localcloud serving {endpoint_url} (control {state.control_url})", flush=True)

    while not stopping.wait(1.0):
        pass

    log.info("stopping")
    with contextlib.suppress(FileNotFoundError):
        current = json.loads((state_dir / "endpoint.json").read_text())
        if current.get("pid") == os.getpid():
            (state_dir / "endpoint.json").unlink()
    publisher.stop()
    engine.stop(timeout=5.0)
    for server in (control, moto_server):
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        stopper.join(3.0)
    log.info("stopped")
    return 0
