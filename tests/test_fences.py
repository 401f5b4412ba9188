"""Every write to a RUNNING job is fenced: it happens only for the worker that holds the claim
(owner and lease token) and, for the writes that end or start an attempt, only in the right
phase of it. One table of writes, each tried by every kind of stale or wrong holder: each
must be refused and leave the row as it was. ``make mutants`` removes each condition of each
fence in turn; these tests are the ones that notice (infra/mutants.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from jobworker import queue
from jobworker.queue import Completion, NewJob
from jobworker.queue.errors import LeaseLost
from jobworker.queue.progress import Progress

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 30


def refused_by_raising(write: Callable[..., Any]) -> Callable[..., bool]:
    def attempt(conn: Connection, owner: str, job_id: UUID, token: int) -> bool:
        try:
            write(conn, owner=owner, job_id=job_id, token=token)
        except LeaseLost:
            return True
        return False
    return attempt


# Each write answers "refused?" for (owner, job, token).
WRITES: dict[str, Callable[[Connection, str, UUID, int], bool]] = {
    "complete": refused_by_raising(lambda conn, **held: queue.complete_job(
        conn, **held, result={"late": True}, now=T0)),
    "fail": refused_by_raising(lambda conn, **held: queue.fail_job(
        conn, **held, error="late", permanent=True, now=T0)),
    "cancel": refused_by_raising(lambda conn, **held: queue.cancel_running_job(
        conn, **held, now=T0)),
    "complete_many": lambda conn, owner, job_id, token: job_id in queue.complete_jobs(
        conn, owner=owner, done=[Completion(job_id, token, {"late": True})], now=T0),
    "extend": lambda conn, owner, job_id, token: job_id not in queue.extend_leases(
        conn, owner=owner, held=[(job_id, token)], lease_seconds=LEASE, now=T0),
    "release": lambda conn, owner, job_id, token: job_id not in queue.release_jobs(
        conn, owner=owner, held=[(job_id, token)], now=T0),
    "start": lambda conn, owner, job_id, token: job_id in queue.start_jobs(
        conn, owner=owner, start=[(job_id, token)], now=T0).not_started,
}
# Writes that end an attempt: refused while the claim's attempt has not started.
ENDS_AN_ATTEMPT = ["complete", "fail", "cancel", "complete_many"]


def snapshot(engine: Engine, job_id: UUID) -> tuple[Any, ...]:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT progress::text, lease_owner, lease_token, lease_expires_at, attempts, "
            "attempt_started, result, finished_at FROM jobs WHERE job_id = :id"),
            {"id": job_id}).one()
    return tuple(row)


def claimed(engine: Engine, *, owner: str = "w1", started: bool = True,
            now: datetime = T0) -> queue.ClaimedJob:
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=now - timedelta(1))
        (job,) = queue.claim_batch(conn, owner=owner, limit=1, lease_seconds=LEASE,
                                   start=1 if started else 0, now=now)
    assert job.job_id == job_id
    return job


def try_write(engine: Engine, name: str, owner: str, job_id: UUID, token: int) -> bool:
    with engine.begin() as conn:
        return WRITES[name](conn, owner, job_id, token)


@pytest.mark.parametrize("name", WRITES)
def test_fence__the_holder_itself_is_let_through(engine: Engine, name: str) -> None:
    """The control: every write in the table does succeed for the right holder (a claim not
    yet started, for ``start``)."""
    job = claimed(engine, started=name != "start")
    assert not try_write(engine, name, "w1", job.job_id, job.token)


@pytest.mark.parametrize("name", WRITES)
def test_fence__another_owner_with_the_same_token_is_refused(engine: Engine, name: str) -> None:
    job = claimed(engine, started=name != "start")
    before = snapshot(engine, job.job_id)
    assert try_write(engine, name, "w2", job.job_id, job.token)
    assert snapshot(engine, job.job_id) == before


@pytest.mark.parametrize("name", WRITES)
def test_fence__the_same_owner_with_a_stale_token_is_refused(engine: Engine, name: str) -> None:
    """w1's lease expired, the sweeper took the job back, and w1 claimed it again: only the
    new claim's token may write; the old one, held by the same owner, may not."""
    stale = claimed(engine, started=name != "start")
    with engine.begin() as conn:
        recovered = queue.recover_orphans(conn, now=T0 + timedelta(seconds=LEASE + 1))
        assert stale.job_id in recovered.requeued + recovered.unstarted
        (again,) = queue.claim_batch(conn, owner="w1", limit=1, lease_seconds=LEASE,
                                     start=1 if name != "start" else 0,
                                     now=T0 + timedelta(seconds=LEASE + 2))
    assert again.token != stale.token
    before = snapshot(engine, stale.job_id)
    assert try_write(engine, name, "w1", stale.job_id, stale.token)
    assert snapshot(engine, stale.job_id) == before


@pytest.mark.parametrize("name", ENDS_AN_ATTEMPT)
def test_fence__an_attempt_that_never_started_cannot_end(engine: Engine, name: str) -> None:
    """Claimed, not started (no attempt counted): completing, failing or cancelling it would
    end an attempt that never ran. Only start, release or recovery may touch it."""
    job = claimed(engine, started=False)
    before = snapshot(engine, job.job_id)
    assert try_write(engine, name, "w1", job.job_id, job.token)
    assert snapshot(engine, job.job_id) == before


def test_fence__a_started_attempt_is_not_started_again(engine: Engine) -> None:
    """Starting twice would count the attempt twice."""
    job = claimed(engine, started=True)
    before = snapshot(engine, job.job_id)
    assert try_write(engine, "start", "w1", job.job_id, job.token)
    assert snapshot(engine, job.job_id) == before


@pytest.mark.parametrize("started", [True, False], ids=["started", "unstarted"])
def test_recover_orphans__takes_only_expired_leases_started_or_not(
        engine: Engine, started: bool) -> None:
    job = claimed(engine, started=started)
    with engine.begin() as conn:
        early = queue.recover_orphans(conn, now=T0 + timedelta(seconds=LEASE - 1))
    assert job.job_id not in early.requeued + early.unstarted + early.failed
    assert snapshot(engine, job.job_id)[0] == Progress.RUNNING
    with engine.begin() as conn:
        late = queue.recover_orphans(conn, now=T0 + timedelta(seconds=LEASE + 1))
    assert job.job_id in (late.requeued if started else late.unstarted)
