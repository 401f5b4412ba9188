"""A failover, simulated on the session's server: it turns read-only under warm handlers (as
an Aurora writer demoted to a reader does: its pooled connections stay open and answer 25006
read_only_sql_transaction) and back, and backends are terminated mid-statement (57P01
admin_shutdown). The API answers 503 meanwhile and recovers by itself; the poller and the
sweeper end such an invocation cleanly and drop their connections, so the next invocation
starts on new ones instead of failing on the old ones for as long as they live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url

from jobworker import queue
from jobworker.aws import runtime
from jobworker.aws.engine import libpq_url
from jobworker.aws.timeouts import Role
from jobworker.dev.localdb import LocalPostgres
from jobworker.queue import NewJob
from tests.conftest import ApiAnswer, LambdaClient
from tests.test_api import generate_body

pytestmark = pytest.mark.timeout(90)


def admin(pg_server: LocalPostgres) -> psycopg.Connection:
    """A direct connection to the server (never through a pooler), as its superuser."""
    return psycopg.connect(libpq_url(pg_server.url), autocommit=True)


def wait_for_setting(pg_server: LocalPostgres, value: str) -> None:
    """Until a new session sees it: the postmaster has then re-read the configuration and
    signalled every backend, which applies it before running its next statement."""
    deadline = time.monotonic() + 10
    while True:
        with admin(pg_server) as conn:
            row = conn.execute("SHOW default_transaction_read_only").fetchone()
        if row is not None and row[0] == value:
            return
        assert time.monotonic() < deadline, f"default_transaction_read_only never became {value}"
        time.sleep(0.02)


class ReadOnly:
    """Turns the whole server read-only and back (``ALTER SYSTEM`` + reload)."""

    def __init__(self, pg_server: LocalPostgres) -> None:
        self.pg_server = pg_server
        self.on = False

    def begin(self) -> None:
        with admin(self.pg_server) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")
        self.on = True
        wait_for_setting(self.pg_server, "on")

    def end(self) -> None:
        if self.on:
            with admin(self.pg_server) as conn:
                conn.execute("SET default_transaction_read_only = off")
                conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                conn.execute("SELECT pg_reload_conf()")
            self.on = False
            wait_for_setting(self.pg_server, "off")


@pytest.fixture
def read_only(pg_server: LocalPostgres) -> Iterator[ReadOnly]:
    """Writable again after the test, whatever happened in it."""
    if pg_server.pgdata is None:
        pytest.skip("ALTER SYSTEM needs the session's own server (not an external one)")
    flip = ReadOnly(pg_server)
    try:
        yield flip
    finally:
        flip.end()


class Connects:
    """Counts the connections a handler's engine opens (a dropped one is replaced)."""

    def __init__(self, role: Role) -> None:
        self.count = 0
        event.listen(runtime.get_engine(role), "connect", self._opened)

    def _opened(self, *_: Any) -> None:
        self.count += 1


def assert_unavailable(answer: ApiAnswer) -> None:
    assert answer.status == 503, answer.text
    assert answer.json["error"]["code"] == "database_unavailable"
    assert int(answer.headers["Retry-After"]) > 0


def enqueue_noop(engine: Engine) -> None:
    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob(kind="noop")])


# Both ways in: the batch insert goes through SQLAlchemy, the single enqueue straight to
# psycopg (one statement, its own transaction): each must drop a connection gone stale.
WRITES = {
    "batch": ("/jobs/batch", {"jobs": [{"kind": "noop"}]}),
    "single": ("/jobs/generate", generate_body()),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_read_only__api_answers_503_for_writes_then_recovers_by_itself(
    api: LambdaClient, engine: Engine, read_only: ReadOnly, write: str,
) -> None:
    path, body = WRITES[write]
    created = api("POST", path, body)
    assert created.status == 202  # warm
    connects = Connects("api")

    read_only.begin()
    assert_unavailable(api("POST", path, body))
    assert connects.count == 0
    assert_unavailable(api("POST", path, body))
    assert connects.count >= 1, "the connection that met the read-only server was reused"
    assert api("GET", "/health").status == 200  # reads still work on a reader
    read_only.end()

    assert api("POST", path, body).status == 202
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 2


def test_read_only__poller_ends_cleanly_and_starts_over_on_new_connections(
    handlers: dict[str, Any], engine: Engine, read_only: ReadOnly,
) -> None:
    enqueue_noop(engine)
    assert handlers["poller"](3)["completed"] == 1  # warm: its pool holds live connections
    enqueue_noop(engine)
    connects = Connects("poller")

    read_only.begin()
    summary = handlers["poller"](3)
    assert summary["error"] == "database unavailable: InternalError"
    assert summary["claimed"] == 0
    opened = connects.count
    assert handlers["poller"](3)["error"] is not None  # still read-only...
    assert connects.count > opened, "...and it tried again on the same connection"
    read_only.end()

    after = handlers["poller"](3)
    assert (after["error"], after["completed"]) == (None, 1)


def test_read_only__sweeper_skips_its_pass_then_recovers(
    handlers: dict[str, Any], engine: Engine, read_only: ReadOnly,
) -> None:
    assert handlers["sweeper"]()["error"] is None  # warm
    with engine.begin() as conn:  # an orphan: its lease ran out, the sweeper must queue it
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")])
        conn.execute(text(
            "UPDATE jobs SET progress = 'RUNNING', attempts = 1, started_at = now(),"
            " lease_owner = 'gone', lease_expires_at = now() - interval '1 minute'"))
    connects = Connects("sweeper")

    read_only.begin()
    assert handlers["sweeper"]()["error"].startswith("database unavailable")
    assert handlers["sweeper"]()["error"].startswith("database unavailable")
    assert connects.count >= 1, "the sweeper kept the connection that met the read-only server"
    read_only.end()

    assert handlers["sweeper"]()["error"] is None
    with engine.connect() as conn:
        assert queue.get_job(conn, job_id).progress.value == "QUEUED"


def direct_url(pg_server: LocalPostgres, database_url: str) -> str:
    """The test database on the server itself, bypassing any pooler."""
    name = make_url(libpq_url(database_url)).database
    return libpq_url(make_url(libpq_url(pg_server.url)).set(database=name))


def terminated_while_blocked(pg_server: LocalPostgres, database_url: str,
                             work: Callable[[], Any]) -> Any:
    """Run ``work`` while the jobs table is locked; once one of its statements waits for the
    lock, terminate that backend (57P01 admin_shutdown), release the lock, and return what
    ``work`` returned."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    with psycopg.connect(direct_url(pg_server, database_url)) as locker:
        locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        me = locker.info.backend_pid
        thread.start()
        deadline = time.monotonic() + 30
        while True:
            with admin(pg_server) as conn:
                waiting = [pid for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND %s = ANY(pg_blocking_pids(pid))", (me,))]
                if waiting:
                    for pid in waiting:
                        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    break
            assert time.monotonic() < deadline, "the work never waited for the lock"
            time.sleep(0.02)
        locker.rollback()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.mark.parametrize("write", sorted(WRITES))
def test_terminated_backend__api_answers_503_then_recovers(
    api: LambdaClient, engine: Engine, pg_server: LocalPostgres, database_url: str, write: str,
) -> None:
    path, body = WRITES[write]
    assert api("GET", "/health").status == 200  # warm
    answer = terminated_while_blocked(pg_server, database_url, lambda: api("POST", path, body))
    assert_unavailable(answer)
    assert api("POST", path, body).status == 202
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 1


def test_terminated_backend__poller_ends_cleanly_and_the_next_invocation_works(
    handlers: dict[str, Any], engine: Engine, pg_server: LocalPostgres, database_url: str,
) -> None:
    enqueue_noop(engine)
    assert handlers["poller"](3)["completed"] == 1  # warm
    enqueue_noop(engine)
    summary = terminated_while_blocked(pg_server, database_url, lambda: handlers["poller"](10))
    assert summary["error"].startswith("database unavailable")
    assert summary["completed"] == 0
    after = handlers["poller"](3)
    assert (after["error"], after["completed"]) == (None, 1)


def test_terminated_backend__sweeper_skips_its_pass_then_recovers(
    handlers: dict[str, Any], pg_server: LocalPostgres, database_url: str, engine: Engine,
) -> None:
    assert handlers["sweeper"]()["error"] is None  # warm
    summary = terminated_while_blocked(pg_server, database_url, lambda: handlers["sweeper"](10))
    assert summary["error"].startswith("database unavailable")
    assert handlers["sweeper"]()["error"] is None
