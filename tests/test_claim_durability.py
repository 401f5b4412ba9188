"""A claim that commits alone does not wait for its WAL flush; outcomes and enqueues always do.

A claim's commit only marks jobs RUNNING under a lease. If a server crash loses it, the jobs
are QUEUED again with their old lease token, exactly as if they had been reset by hand: the
worker's completion for that claim is refused by the fence and the job runs again under a new
claim (at least once, as after any crash). So the claim that is its own transaction commits
with ``synchronous_commit = off`` for that transaction only (``job_claim_batch`` sets it
locally), and skips waiting for the disk. A transaction that writes an outcome, or an enqueue
the API has accepted, keeps the server's setting: it is durable before anyone is told.

How the tests see the difference without a crash: a server of their own names a synchronous
standby that never connects. A commit that waits for durability then waits for that standby
for ever (and stays invisible to other sessions); a commit with ``synchronous_commit = off``
returns at once. ``synchronous_standby_names`` is server-wide, hence the server of their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.engine import libpq_url, make_engine
from jobworker.dev.localdb import LocalPostgres, embedded_postgres
from jobworker.queue import Completion, NewJob
from jobworker.queue.schema import migrate
from tests.conftest import DatabaseFactory

NEVER_ATTACHED = "jobworker_standby_that_never_attaches"
BLOCKED_SECONDS = 2.0  # long enough to call a commit "waiting"; a free one takes milliseconds


@pytest.fixture(scope="module")
def own_server() -> Iterator[LocalPostgres]:
    with embedded_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def database_url(own_server: LocalPostgres) -> Iterator[str]:
    """Overrides the session's database: these tests change a server-wide setting."""
    databases = DatabaseFactory(own_server)
    url = databases.create("jobworker_durability")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    databases.drop_all()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=4, max_overflow=4)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs, route_groups CASCADE"))
    yield engine
    engine.dispose()


def _set_standby(url: str, names: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        admin.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        admin.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the reload reaches new sessions
            with psycopg.connect(libpq_url(url)) as probe:
                row = probe.execute("SHOW synchronous_standby_names").fetchone()
            if row is not None and row[0] == names:
                return
            time.sleep(0.05)
    raise AssertionError(f"synchronous_standby_names never became {names!r}")


class DurableCommits:
    """``hold()``: from then on, a commit that waits for durability waits until ``release()``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.held = False

    def hold(self) -> None:
        _set_standby(self.url, NEVER_ATTACHED)
        self.held = True

    def release(self) -> None:
        if self.held:
            _set_standby(self.url, "")  # the commits waiting are let go
            self.held = False


@pytest.fixture
def durable_commits(database_url: str) -> Iterator[DurableCommits]:
    commits = DurableCommits(database_url)
    try:
        yield commits
    finally:
        commits.release()


class Background:
    """Runs ``work`` in a thread, to see whether it is held up."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self.result = work()
        except BaseException as exc:  # reported by finished()
            self.error = exc

    def finished(self, within: float) -> bool:
        self.thread.join(within)
        if self.error is not None:
            raise self.error
        return not self.thread.is_alive()


def _enqueue(engine: Engine, count: int = 3) -> list[UUID]:
    with engine.begin() as conn:
        return queue.create_jobs(conn, [NewJob(kind="noop")] * count)


def _progress(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT progress, count(*) FROM jobs GROUP BY 1")).all()
    return {str(row[0]): int(row[1]) for row in rows}


def _claim_alone(engine: Engine, owner: str = "w") -> list[queue.ClaimedJob]:
    with engine.connect() as conn:
        return queue.claim_batch(conn, owner=owner, limit=10, lease_seconds=60, commit=True)


def test_a_claim_that_commits_alone_does_not_wait_for_durability(
        engine: Engine, durable_commits: DurableCommits) -> None:
    _enqueue(engine)
    durable_commits.hold()
    claim = Background(lambda: _claim_alone(engine))
    assert claim.finished(within=10), "the claim waited for a durable commit"
    assert len(claim.result) == 3
    assert _progress(engine) == {"RUNNING": 3}  # committed and visible


def test_an_outcome_waits_for_durability_and_is_invisible_until_then(
        engine: Engine, durable_commits: DurableCommits) -> None:
    _enqueue(engine)
    claimed = _claim_alone(engine)
    durable_commits.hold()

    def complete() -> set[UUID]:
        with engine.begin() as conn:
            return queue.complete_jobs(conn, owner="w", done=[
                Completion(job.job_id, job.token) for job in claimed])

    completion = Background(complete)
    assert not completion.finished(within=BLOCKED_SECONDS), "an outcome did not wait"
    assert _progress(engine) == {"RUNNING": 3}
    durable_commits.release()
    assert completion.finished(within=10)
    assert completion.result == set()
    assert _progress(engine) == {"COMPLETED": 3}


def test_a_claim_that_carries_outcomes_waits_for_durability(
        engine: Engine, durable_commits: DurableCommits) -> None:
    """The poller writes buffered completions and claims the next batch in one transaction:
    that transaction is as durable as its completions."""
    _enqueue(engine, 6)
    with engine.connect() as conn:
        first = queue.claim_batch(conn, owner="w", limit=3, lease_seconds=60, commit=True)
    durable_commits.hold()

    def complete_then_claim() -> list[queue.ClaimedJob]:
        with engine.begin() as conn:
            queue.complete_jobs(conn, owner="w", done=[
                Completion(job.job_id, job.token) for job in first])
            return queue.claim_batch(conn, owner="w", limit=3, lease_seconds=60)

    both = Background(complete_then_claim)
    assert not both.finished(within=BLOCKED_SECONDS), "the claim made its outcomes undurable"
    durable_commits.release()
    assert both.finished(within=10)
    assert _progress(engine) == {"COMPLETED": 3, "RUNNING": 3}


def test_an_accepted_enqueue_waits_for_durability(
        engine: Engine, durable_commits: DurableCommits) -> None:
    def enqueue_one() -> Any:
        with engine.connect() as conn:
            return queue.create_job(conn, NewJob(kind="noop"), enqueue=True, commit=True)

    durable_commits.hold()
    single = Background(enqueue_one)
    many = Background(lambda: _enqueue(engine, 2))
    assert not single.finished(within=BLOCKED_SECONDS), "an enqueue did not wait"
    assert not many.finished(within=0.1), "a bulk enqueue did not wait"
    durable_commits.release()
    assert single.finished(within=10)
    assert many.finished(within=10)
    assert _progress(engine) == {"QUEUED": 3}


def test_the_pollers_own_claims_do_not_wait_but_its_outcomes_do(
        engine: Engine, handlers: dict[str, Any], durable_commits: DurableCommits,
) -> None:
    """Through the poller handler: its claim is visible at once (RUNNING) while the batch's
    completion waits for durability; once durable, the jobs are COMPLETED, each once."""
    ids = _enqueue(engine, 5)
    durable_commits.hold()
    invocation = Background(lambda: handlers["poller"](15))
    deadline = time.monotonic() + 10
    while _progress(engine).get("RUNNING", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _progress(engine) == {"RUNNING": 5}, "the poller's claim waited for durability"
    time.sleep(BLOCKED_SECONDS)
    assert _progress(engine) == {"RUNNING": 5}, "an outcome was written without durability"
    durable_commits.release()
    assert invocation.finished(within=30)
    with engine.connect() as conn:
        jobs = [queue.get_job(conn, job_id) for job_id in ids]
    assert {job.progress.value for job in jobs} == {"COMPLETED"}
    assert {job.attempts for job in jobs} == {1}


def test_a_claim_lost_to_a_crash_is_a_reset_the_fence_refuses_and_the_job_runs_again(
        engine: Engine) -> None:
    """What a crash that lost a claim's commit leaves: the row as it was before the claim.
    The completion of the lost claim is refused; a new claim runs the job; one outcome."""
    (job_id,) = _enqueue(engine, 1)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT * FROM jobs WHERE job_id = :id"),
                              {"id": job_id}).mappings().one()
    (lost,) = _claim_alone(engine, owner="invocation-1")
    with engine.begin() as conn:  # the crash: the claim's tuple never reached the disk
        conn.execute(text(
            "UPDATE jobs SET progress = 'QUEUED', lease_owner = NULL, lease_expires_at = NULL,"
            " started_at = NULL, attempts = :attempts, attempt_started = :attempt_started,"
            " lease_token = :lease_token, updated_at = :updated_at WHERE job_id = :job_id"),
            {key: before[key] for key in ("attempts", "attempt_started", "lease_token",
                                          "updated_at", "job_id")})
    with engine.begin() as conn:
        refused = queue.complete_jobs(conn, owner="invocation-1",
                                      done=[Completion(job_id, lost.token, {"run": 1})])
    assert refused == {job_id}
    (again,) = _claim_alone(engine, owner="invocation-2")
    with engine.begin() as conn:
        assert queue.complete_jobs(conn, owner="invocation-2",
                                   done=[Completion(job_id, again.token, {"run": 2})]) == set()
    with engine.connect() as conn:
        job = queue.get_job(conn, job_id)
    assert (job.progress.value, job.result, job.attempts) == ("COMPLETED", {"run": 2}, 1)
