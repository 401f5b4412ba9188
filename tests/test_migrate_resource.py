"""The ``Custom::Migrations`` handler: it migrates on Create/Update, leaves Delete alone, and
always answers CloudFormation. No AWS and no database: the migration and the PUT are replaced,
except in the tests of the PUT itself, which talk to a server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def app() -> ModuleType:
    """The module behind functions/migrate/app.py (which re-exports its handler)."""
    from jobworker.aws import migrate_resource

    return migrate_resource


class Context:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def request(request_type: str, **extra: Any) -> dict[str, Any]:
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:stack-MigrateFunction",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/signed?X=1",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/jobs/5f1c2d3e",
        "RequestId": "4b2d6c1e-0d6e-4a5e-9f2c-3a1b0c9d8e7f",
        "ResourceType": "Custom::Migrations",
        "LogicalResourceId": "Migrations",
        "ResourceProperties": {"LayerVersion": "arn:aws:lambda:us-east-1:123456789012:layer:x:2"},
    }
    event.update(extra)
    return event


class Recorder:
    """Stands in for the migration and for the PUT to CloudFormation."""

    def __init__(self, app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        self.migrations = 0
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.failure: Exception | None = None
        self.delay = 0.0
        monkeypatch.setattr(app, "apply_migrations", self.migrate)
        monkeypatch.setattr(app, "put_response", self.put)

    def migrate(self) -> str:
        self.migrations += 1
        time.sleep(self.delay)
        if self.failure:
            raise self.failure
        return "0003_routes"

    def put(self, url: str, body: dict[str, Any], timeout: float = 0) -> int:
        self.sent.append((url, body))
        return 200

    @property
    def body(self) -> dict[str, Any]:
        ((_, body),) = self.sent
        return body


@pytest.fixture
def recorder(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(app, monkeypatch)


def test_create__migrates_and_answers_success(app: ModuleType, recorder: Recorder) -> None:
    event = request("Create")
    app.lambda_handler(event, Context(300))
    assert recorder.migrations == 1
    url, body = recorder.sent[0]
    assert url == event["ResponseURL"]
    assert body["Status"] == "SUCCESS"
    assert body["Data"] == {"Revision": "0003_routes"}
    assert body["PhysicalResourceId"] == app.PHYSICAL_RESOURCE_ID
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert body[key] == event[key]


def test_update__migrates_and_keeps_the_physical_id(app: ModuleType, recorder: Recorder) -> None:
    app.lambda_handler(request("Update", PhysicalResourceId="jobworker-schema",
                               OldResourceProperties={}), Context(300))
    assert recorder.migrations == 1
    assert recorder.body["Status"] == "SUCCESS"
    assert recorder.body["PhysicalResourceId"] == "jobworker-schema"


def test_delete__leaves_the_schema_and_answers_success(app: ModuleType,
                                                       recorder: Recorder) -> None:
    app.lambda_handler(request("Delete", PhysicalResourceId="jobworker-schema"), Context(300))
    assert recorder.migrations == 0
    assert recorder.body["Status"] == "SUCCESS"
    assert recorder.body["PhysicalResourceId"] == "jobworker-schema"


def test_failed_migration__answers_failed_with_the_reason(app: ModuleType,
                                                          recorder: Recorder) -> None:
    recorder.failure = RuntimeError("relation jobs already exists")
    app.lambda_handler(request("Create"), Context(300))
    assert recorder.body["Status"] == "FAILED"
    assert "RuntimeError: relation jobs already exists" in recorder.body["Reason"]
    assert recorder.body["PhysicalResourceId"] == app.PHYSICAL_RESOURCE_ID


def test_failed_migration__reason_stays_short(app: ModuleType, recorder: Recorder) -> None:
    recorder.failure = RuntimeError("x" * 10_000)
    app.lambda_handler(request("Update", PhysicalResourceId="jobworker-schema"), Context(300))
    assert len(json.dumps(recorder.body)) < 4096


def test_slow_migration__answers_failed_before_the_lambda_times_out(
        app: ModuleType, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "RESPONSE_MARGIN_SECONDS", 0.9)
    recorder.delay = 2.0
    started = time.monotonic()
    app.lambda_handler(request("Create"), Context(1.0))
    assert time.monotonic() - started < 1.0
    assert recorder.body["Status"] == "FAILED"
    assert "did not finish" in recorder.body["Reason"]


def test_unknown_request_type__answers_failed(app: ModuleType, recorder: Recorder) -> None:
    app.lambda_handler(request("Replace"), Context(300))
    assert recorder.migrations == 0
    assert recorder.body["Status"] == "FAILED"


def test_real_migrate_is_called_with_the_runtime_engine(
        app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import jobworker.aws.runtime
    import jobworker.queue.schema

    engine = object()
    monkeypatch.setattr(jobworker.aws.runtime, "get_engine", lambda: engine)
    monkeypatch.setattr(jobworker.queue.schema, "migrate",
                        lambda given: "head" if given is engine else "wrong engine")
    assert app.apply_migrations() == "head"


# --- The PUT itself, against a server on the loopback interface ------------------------------

class Captured:
    """What the server received."""

    def __init__(self) -> None:
        self.method = ""
        self.headers: dict[str, str] = {}
        self.body = b""


@pytest.fixture
def server() -> Iterator[tuple[str, Captured]]:
    captured = Captured()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            captured.method = "PUT"
            captured.headers = {name.lower(): value for name, value in self.headers.items()}
            captured.body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/signed?X-Amz-Signature=abc", captured
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_put_response__sends_json_with_an_empty_content_type(
        app: ModuleType, server: tuple[str, Captured]) -> None:
    url, captured = server
    body = app.response_body(request("Create"), "SUCCESS", "ok", {"Revision": "r1"})
    assert app.put_response(url, body) == 200
    assert captured.method == "PUT"
    assert captured.headers["content-type"] == ""
    assert json.loads(captured.body) == body


def test_put_response__refuses_other_schemes(app: ModuleType) -> None:
    with pytest.raises(ValueError, match="http"):
        app.put_response("file:///etc/passwd", {})
