"""The control client against a real HTTP server that is slow to answer: a read is asked
again after a timeout, a write is not, and giving up is one readable error."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from localcloud.client import ControlAPIError, ControlClient

TIMEOUT = 0.2


class SlowServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slow_requests: int) -> None:
        super().__init__(("127.0.0.1", 0), SlowHandler)
        self.slow_requests = slow_requests
        self.requests: list[str] = []
        self.lock = threading.Lock()


class SlowHandler(http.server.BaseHTTPRequestHandler):
    server: SlowServer

    def _answer(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.command)
            slow = len(self.server.requests) <= self.server.slow_requests
        if slow:
            time.sleep(TIMEOUT * 5)  # the client has given up on this one
        body = json.dumps({"drained": True}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[int], SlowServer]]:
    servers: list[SlowServer] = []

    def start(slow_requests: int) -> SlowServer:
        server = SlowServer(slow_requests)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def url(server: SlowServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def test_a_read_that_times_out_is_asked_again(serve: Callable[[int], SlowServer]) -> None:
    server = serve(2)

    assert ControlClient(url(server), timeout=TIMEOUT).drained() is True
    assert server.requests == ["GET", "GET", "GET"]


def test_a_write_that_times_out_is_not_repeated(serve: Callable[[int], SlowServer]) -> None:
    server = serve(1)

    with pytest.raises(
        ControlAPIError, match=r"POST /stats/reset: no answer in 0.2 s \(1 attempt\)"
    ):
        ControlClient(url(server), timeout=TIMEOUT).call("POST", "/stats/reset", {})
    assert server.requests == ["POST"]


def test_giving_up_is_one_readable_line(serve: Callable[[int], SlowServer]) -> None:
    server = serve(10)

    with pytest.raises(ControlAPIError) as raised:
        ControlClient(url(server), timeout=TIMEOUT).drained()
    assert str(raised.value) == (
        "local control API GET /drained: no answer in 0.2 s (3 attempts): "
        "is the machine overloaded?"
    )
    assert server.requests == ["GET"] * 3


def test_a_stopped_endpoint_is_not_asked_again() -> None:
    with pytest.raises(ControlAPIError, match=r"unreachable .*make local-up"):
        ControlClient("http://127.0.0.1:9", timeout=TIMEOUT).drained()
