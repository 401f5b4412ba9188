"""A database outage, the real way: the session's Postgres is stopped under a warm handler
(its pooled connection goes dead) and started again. The API answers 503 with Retry-After
meanwhile and recovers on its own, with no ``runtime.reset()``; the poller ends its invocation
cleanly and says so in its summary and its metrics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.engine import libpq_url
from jobworker.dev.localdb import LocalPostgres
from jobworker.queue import NewJob
from tests.conftest import LambdaClient

# A call during the outage must fail fast (the socket is gone; connect_timeout is 5 s), never
# hang until Lambda's or API Gateway's limit: fail the test instead of waiting for that.
pytestmark = pytest.mark.timeout(60)


class Outage:
    """Stops and starts the session's embedded server; ``end()`` is safe to call twice.

    The outage ends when a client can connect again at ``url``: through a pooler that is a
    moment after the server is up (the pooler refuses the first client after a failed login).
    """

    def __init__(self, server: LocalPostgres, url: str) -> None:
        self.server = server
        self.url = url
        self.down = False

    def begin(self) -> None:
        self.server.stop_server()
        self.down = True

    def end(self) -> None:
        if self.down:
            self.server.start_server()
            wait_until_connectable(self.url)
            self.down = False


def wait_until_connectable(url: str, seconds: float = 10.0) -> None:
    """Until a query answers (a pooler accepts a client before it has a server for it)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(libpq_url(url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def outage(pg_server: LocalPostgres, database_url: str) -> Iterator[Outage]:
    """The server is up again after the test, whatever happened in it."""
    if pg_server.pgdata is None:
        pytest.skip("stopping the server needs the embedded Postgres (not an external one)")
    outage = Outage(pg_server, database_url)
    try:
        yield outage
    finally:
        outage.end()


def jobs_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())


def metric_document(output: str) -> dict[str, Any]:
    """The one EMF document the invocation printed."""
    (document,) = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return dict(document)


def assert_unavailable(answer: Any) -> None:
    assert answer.status == 503, answer.text
    assert answer.json["error"]["code"] == "database_unavailable"
    assert int(answer.headers["Retry-After"]) > 0


def test_outage__api_answers_503_then_recovers_without_a_reset(
    api: LambdaClient, engine: Engine, outage: Outage,
) -> None:
    assert api("GET", "/health").status == 200  # warm: the pool holds a live connection

    outage.begin()
    assert_unavailable(api("GET", "/health"))
    assert_unavailable(api("POST", "/jobs/batch", {"jobs": [{"kind": "noop"}]}))
    assert_unavailable(api("GET", "/health"))  # still down: no cached "ok", no crash
    outage.end()

    assert api("GET", "/health").status == 200
    created = api("POST", "/jobs/batch", {"jobs": [{"kind": "noop"}]})
    assert created.status == 202
    assert jobs_count(engine) == 1  # what failed during the outage left nothing behind


def test_outage__poller_ends_its_invocation_with_an_error_and_a_metric(
    handlers: dict[str, Any], engine: Engine, outage: Outage,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob(kind="noop")])
    assert handlers["poller"](3)["completed"] == 1  # warm: its pool holds live connections
    capsys.readouterr()

    outage.begin()
    # Long enough for a pooler's wait for a server (3 s in the pooler lane) and a retry.
    summary = handlers["poller"](10)
    outage.end()

    assert summary["error"].startswith("database unavailable")
    assert summary["claimed"] == 0
    assert metric_document(capsys.readouterr().out)["DatabaseUnavailable"] == [1.0]

    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob(kind="noop")])
    after = handlers["poller"](3)
    assert (after["error"], after["completed"]) == (None, 1)


def test_outage__sweeper_skips_its_pass_with_an_error_and_a_metric(
    handlers: dict[str, Any], outage: Outage, capsys: pytest.CaptureFixture[str],
) -> None:
    assert handlers["sweeper"]()["error"] is None  # warm
    capsys.readouterr()

    outage.begin()
    summary = handlers["sweeper"]()
    outage.end()

    assert summary["error"].startswith("database unavailable")
    assert metric_document(capsys.readouterr().out)["DatabaseUnavailable"] == [1.0]
    assert handlers["sweeper"]()["error"] is None
