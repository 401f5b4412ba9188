"""``jobworker dev``'s HTTP server, in-process on a free port of 127.0.0.1, in front of the
real API handler: whatever arrives, the answer is the API's JSON envelope."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from jobworker.dev.server import ApiRequestHandler, without_password

BODY_LIMIT = 4096


@contextmanager
def serving_api(**settings: Any) -> Iterator[tuple[str, int]]:
    """The API handler behind ``jobworker dev``'s request handler, on a free local port."""
    from jobworker.dev.local import load_handler

    handler = type("TestHandler", (ApiRequestHandler,), {
        "api": staticmethod(load_handler("api")), **settings})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def dev_server(app_env: None) -> Iterator[tuple[str, int]]:
    with serving_api(timeout=0.5, max_body_bytes=BODY_LIMIT) as address:
        yield address


def request(server: tuple[str, int], method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    connection = http.client.HTTPConnection(*server, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        text = answer.read().decode()
        return answer.status, answer.getheader("Content-Type") or "", json.loads(text)
    finally:
        connection.close()


def test_dev_server__a_method_it_does_not_route_gets_the_apis_json_404(
        dev_server: tuple[str, int]) -> None:
    """A fuzzer's TRACE (or any method) on every path: the API's envelope, never HTML."""
    answers = {
        (method, path): request(dev_server, method, path)
        for method in ("TRACE", "PATCH", "PUT", "DELETE", "OPTIONS", "BREW")
        for path in ("/", "/jobs", "/jobs/stats", "/health", "/jobs/not-an-id/cancel")
    }

    assert {(status, kind, body["error"]["code"]) for status, kind, body in answers.values()} \
        == {(404, "application/json", "not_found")}


def test_dev_server__routed_method_still_reaches_the_api(dev_server: tuple[str, int]) -> None:
    status, _, body = request(dev_server, "GET", "/health")

    assert (status, body) == (200, {"status": "ok", "database": "ok"})


def test_dev_server__declared_length_over_the_limit_is_413_without_reading_it(
        dev_server: tuple[str, int]) -> None:
    """A client that claims a gigabyte gets its answer at once: nothing waits for the bytes."""
    with socket.create_connection(dev_server, timeout=10) as client:
        client.sendall(b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 1000000000\r\n\r\n{}")
        answer = client.makefile("rb").read().decode()

    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.0 413")
    assert json.loads(body)["error"]["code"] == "body_too_large"


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({"Content-Length": "12abc"}, 400, "malformed_request"),
    ({"Transfer-Encoding": "chunked"}, 411, "length_required"),
])
def test_dev_server__unusable_length_is_refused_in_the_envelope(
        dev_server: tuple[str, int], headers: dict[str, str], status: int, code: str) -> None:
    with socket.create_connection(dev_server, timeout=10) as client:
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        client.sendall(f"POST /jobs HTTP/1.1\r\nHost: x\r\n{lines}\r\n".encode())
        answer = client.makefile("rb").read().decode()

    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith(f"HTTP/1.0 {status}")
    assert json.loads(body)["error"]["code"] == code


def test_dev_server__malformed_request_line_is_answered_in_the_envelope(
        dev_server: tuple[str, int]) -> None:
    with socket.create_connection(dev_server, timeout=10) as client:
        client.sendall(b"GET / HTTP/9.9\r\n\r\n")
        answer = client.makefile("rb").read().decode()

    head, _, body = answer.partition("\r\n\r\n")
    assert "Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "malformed_request"


def test_dev_server__silent_client_is_dropped(dev_server: tuple[str, int]) -> None:
    """A client that connects and sends nothing (slowloris) does not keep a thread forever:
    the server closes the connection after its socket timeout (0.5 s here)."""
    with socket.create_connection(dev_server, timeout=10) as client:
        client.sendall(b"GET /health HTTP/1.1\r\n")  # and never the rest
        assert client.recv(1024) == b""  # closed by the server, not by our own timeout


def test_dev_server__prints_no_password() -> None:
    shown = without_password("postgresql://jobworker:s3cret@db.example:5432/jobs")

    assert "s3cret" not in shown
    assert shown == "postgresql://jobworker:***@db.example:5432/jobs"
