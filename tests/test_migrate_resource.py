"""The ``Custom::Migrations`` handler: it migrates on Create/Update, leaves Delete alone, and
always answers CloudFormation. No AWS: the PUT is replaced, except in the tests of the PUT
itself, which talk to a server on 127.0.0.1. The migration is replaced too, except in the
tests of its deadline, which migrate a real database while another session holds ``jobs``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType
from typing import Any

import psycopg
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
        self.seconds = 0.0
        monkeypatch.setattr(app, "apply_migrations", self.migrate)
        monkeypatch.setattr(app, "put_response", self.put)

    def migrate(self, seconds: float) -> str:
        self.migrations += 1
        self.seconds = seconds
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


def test_migration__gets_the_time_left_less_the_response_margin(
        app: ModuleType, recorder: Recorder) -> None:
    app.lambda_handler(request("Create"), Context(300))
    assert 270 < recorder.seconds <= 300 - app.RESPONSE_MARGIN_SECONDS


def test_unknown_request_type__answers_failed(app: ModuleType, recorder: Recorder) -> None:
    app.lambda_handler(request("Replace"), Context(300))
    assert recorder.migrations == 0
    assert recorder.body["Status"] == "FAILED"


def test_real_migrate_is_called_with_the_migration_engine_and_limits(
        app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    import jobworker.aws.runtime
    import jobworker.queue.schema

    engine = object()
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT_SECONDS", "7")
    jobworker.aws.runtime.reset()
    monkeypatch.setattr(jobworker.aws.runtime, "get_engine",
                        lambda role: engine if role == "migration" else None)

    def migrate(given: object, limits: Any) -> str:
        assert given is engine
        assert limits.lock_seconds == 7
        assert 0 < limits.statement_seconds <= 30 + app.STOP_GRACE_SECONDS
        return "head"

    monkeypatch.setattr(jobworker.queue.schema, "migrate", migrate)
    assert app.apply_migrations(30) == "head"
    jobworker.aws.runtime.reset()


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


# --- The deadline, on a real database whose `jobs` another session holds ---------------------

@pytest.fixture
def behind_head(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database one migration behind (0004 builds an index on ``jobs``), as the handler's."""
    from jobworker.aws import runtime
    from jobworker.aws.engine import make_engine
    from jobworker.queue.schema import migrate

    engine = make_engine(empty_database_url)
    migrate(engine, "0003")
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    runtime.reset()
    yield empty_database_url
    runtime.reset()


@pytest.fixture
def jobs_locked(behind_head: str) -> Iterator[psycopg.Connection[Any]]:
    """Another session, inside a transaction holding ``LOCK jobs`` (ACCESS EXCLUSIVE)."""
    with psycopg.connect(behind_head) as holder:
        holder.execute("LOCK jobs")
        yield holder
        holder.rollback()


def locks_of_others(url: str, *keep: int) -> list[tuple[Any, ...]]:
    """Locks in this database held by sessions other than this one and ``keep``."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, locktype, relation::regclass::text, mode FROM pg_locks "
            "WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND pid <> pg_backend_pid() AND NOT pid = ANY(%s)", [list(keep)]).fetchall()


def revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def test_deadline__cancels_a_migration_stuck_behind_a_lock_and_leaves_nothing_locked(
        app: ModuleType, behind_head: str, jobs_locked: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT_SECONDS", "120")  # only the deadline stops it
    monkeypatch.setattr(app, "RESPONSE_MARGIN_SECONDS", 4.0)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "put_response", lambda url, body: sent.append(body))
    started = time.monotonic()
    app.lambda_handler(request("Update", PhysicalResourceId="jobworker-schema"), Context(6.0))
    assert time.monotonic() - started < 6.0  # answered before the Lambda's own limit
    (body,) = sent
    assert body["Status"] == "FAILED"
    assert "did not finish within" in body["Reason"]
    assert locks_of_others(behind_head, jobs_locked.info.backend_pid) == []
    jobs_locked.rollback()  # the lock goes away: the next deploy migrates
    app.lambda_handler(request("Update", PhysicalResourceId="jobworker-schema"), Context(60))
    assert sent[-1]["Status"] == "SUCCESS"
    assert revision(behind_head) == sent[-1]["Data"]["Revision"] != "0003"


def test_lock_timeout__fails_the_migration_fast_with_the_reason(
        app: ModuleType, behind_head: str, jobs_locked: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT_SECONDS", "0.2")
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "put_response", lambda url, body: sent.append(body))
    app.lambda_handler(request("Create"), Context(300))
    (body,) = sent
    assert body["Status"] == "FAILED"
    assert "lock timeout" in body["Reason"]
    assert locks_of_others(behind_head, jobs_locked.info.backend_pid) == []
    assert revision(behind_head) == "0003"


def test_deadline__terminates_a_migration_idle_in_its_transaction(
        app: ModuleType, behind_head: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend idle between two statements ignores a cancel: it is terminated instead, and
    its locks go with it even though the migration's thread is still busy in Python."""
    from sqlalchemy import text

    import jobworker.queue.schema

    wake = threading.Event()

    def slow_migrate(engine: Any, limits: Any) -> str:
        with engine.connect() as conn:
            limits.on_backend(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            conn.execute(text("LOCK jobs IN SHARE MODE"))
            wake.wait(30)  # Python work inside the transaction, past the deadline
            conn.commit()
        return "never"

    monkeypatch.setattr(jobworker.queue.schema, "migrate", slow_migrate)
    monkeypatch.setattr(app, "RESPONSE_MARGIN_SECONDS", 4.0)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "put_response", lambda url, body: sent.append(body))
    try:
        app.lambda_handler(request("Create"), Context(5.0))
        (body,) = sent
        assert body["Status"] == "FAILED"
        assert locks_of_others(behind_head) == []
    finally:
        wake.set()
