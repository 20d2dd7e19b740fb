"""The control API (JSON over HTTP on ``control_url``); the contract is
scripts/localcloud/README.md, "Control API"."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from localcloud import motostreams
from localcloud.engine import Engine
from localcloud.faults import Faults
from localcloud.mapping_stats import StatsRegistry
from localcloud.writestats import WriteStats

log = logging.getLogger("localcloud.control")


@dataclass
class ControlState:
    engine: Engine
    stats: StatsRegistry
    write_stats: WriteStats
    faults: Faults
    endpoint_url: str
    started: float
    control_url: str = ""

    def stats_document(self) -> dict[str, Any]:
        """Top level: one object per mapping UUID, plus "dynamodb" (writes per table)."""
        document: dict[str, Any] = {}
        details = self.engine.mapping_details()
        for uuid, mapping in self.stats.snapshot().items():
            document[uuid] = {**mapping, **details.get(uuid, {"deleted": True})}
        document["dynamodb"] = self.write_stats.snapshot()
        return document

    def streams_document(self) -> dict[str, Any]:
        """The stream settings in force and, per table with a stream, its shards (lineage,
        records) and its summary-item figures."""
        from localcloud.itemstats import summary_item_figures  # noqa: PLC0415 - domain import

        tables: dict[str, Any] = {}
        for name, table, stream in motostreams.live_tables():
            tables[name] = {**stream.summary(), **summary_item_figures(table)}
        return {**motostreams.settings_document(), "tables": tables}

    def rotate_document(self, body: Any) -> dict[str, Any]:
        """Closes every open shard holding records (of ``body["table"]``, or of every table)."""
        table = body.get("table") if isinstance(body, dict) else None
        rotated = {
            name: stream.rotate_now()
            for name, stream in motostreams.live_streams()
            if table is None or name == table
        }
        return {"rotated": rotated}

    def faults_document(self) -> dict[str, Any]:
        return self.faults.config.to_json()

    def reset_document(self) -> dict[str, Any]:
        self.stats.reset()
        self.write_stats.reset()
        return {"reset": True}


class _Handler(BaseHTTPRequestHandler):
    server: _ControlServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body, indent=1).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else {}

    def _route(self, method: str) -> None:
        state = self.server.state
        path = self.path.split("?")[0].rstrip("/") or "/"
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/health"): lambda: {
                "status": "ok",
                "pid": os.getpid(),
                "endpoint_url": state.endpoint_url,
                "control_url": state.control_url,
                "uptime_seconds": round(time.time() - state.started, 1),
                "workers": state.engine.pool.worker_count(),
                "streams": motostreams.settings_document()["defaults"],
            },
            ("GET", "/stats"): state.stats_document,
            ("POST", "/stats/reset"): state.reset_document,
            ("GET", "/drained"): lambda: {"drained": state.engine.drained()},
            ("GET", "/faults"): state.faults_document,
            ("GET", "/streams"): state.streams_document,
        }
        try:
            if (method, path) in routes:
                self._json(HTTPStatus.OK, routes[(method, path)]())
            elif path == "/streams" and method in ("PUT", "POST"):
                try:
                    document = motostreams.update_settings(self._body())
                except ValueError as exc:
                    self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                log.info("stream settings set to %s", document)
                self._json(HTTPStatus.OK, document)
            elif path == "/streams/rotate" and method == "POST":
                self._json(HTTPStatus.OK, state.rotate_document(self._body()))
            elif path == "/faults" and method in ("PUT", "POST"):
                try:
                    config = state.faults.update(self._body())
                except ValueError as exc:  # includes JSON errors
                    self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                log.info("faults set to %s", config)
                self._json(HTTPStatus.OK, config.to_json())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {method} {path}"})
        except Exception as exc:
            log.exception("control API %s %s failed", method, path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


class _ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    state: ControlState


def start_control_server(state: ControlState, host: str, port: int) -> ThreadingHTTPServer:
    server = _ControlServer((host, port), _Handler)
    server.state = state
    bound_host, bound_port = server.server_address[:2]
    state.control_url = f"http://{bound_host!s}:{bound_port}"
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="control-api", daemon=True
    ).start()
    return server
