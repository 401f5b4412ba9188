"""An attempt is counted when its job starts, not when it is claimed (issue 11, defect 5).

The fence is the claim's own token, so a late worker is still told from the job's new owner
(tests/test_state_machine.py checks that for random histories); here: what a lost lease,
a release and the timeout rule do to started and unstarted jobs, and a poison job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob
from jobworker.queue.errors import LeaseLost
from jobworker.queue.progress import Progress

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 30


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_sweeper__tells_started_from_unstarted_orphans(
        engine: Engine, handlers: dict[str, Any]) -> None:
    """A worker died holding a batch of three: only the one it had started used an attempt;
    the sweeper counts both kinds as recovered."""
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, [NewJob(kind="noop", priority=p) for p in range(3)])
        run_at = {job.job_id: job.run_at for job in queue.list_jobs(conn)}
        batch = queue.claim_batch(conn, owner="dead", limit=3, lease_seconds=0.001, start=1)
    assert [job.started for job in batch] == [True, False, False]
    summary = handlers["sweeper"]()
    assert (summary["recovered"], summary["failed_orphans"]) == (3, 0)
    with engine.connect() as conn:
        started, *unstarted = (queue.get_job(conn, job_id) for job_id in ids)
    assert (started.progress, started.attempts) == (Progress.QUEUED, 1)
    assert [entry["outcome"] for entry in started.attempt_history] == ["lease_expired"]
    for job in unstarted:
        assert (job.progress, job.attempts, job.attempt_history) == (Progress.QUEUED, 0, [])
        assert job.run_at == run_at[job.job_id]  # keeps its place in the queue


def test_poison_job__uses_an_attempt_per_crash_and_its_batch_mate_none(engine: Engine) -> None:
    with engine.begin() as conn:
        poison, mate = queue.create_jobs(conn, [NewJob(kind="noop", priority=0),
                                                NewJob(kind="noop", priority=1)],
                                         max_attempts=3, now=at(0))
        for crash in range(3):  # each time the worker dies while the poison job runs
            now = at(crash * 100)
            batch = queue.claim_batch(conn, owner=f"w{crash}", limit=2, lease_seconds=LEASE,
                                      start=1, now=now)
            assert [job.job_id for job in batch] == [poison, mate]
            recovered = queue.recover_orphans(conn, now=now + timedelta(seconds=LEASE + 1))
            assert recovered.unstarted == [mate]
        poisoned, waiting = queue.get_job(conn, poison), queue.get_job(conn, mate)
    assert (poisoned.progress, poisoned.attempts) == (Progress.FAILED, 3)
    assert "attempt 3 of 3" in (poisoned.error or "")
    assert (waiting.progress, waiting.attempts) == (Progress.QUEUED, 0)


def test_release__gives_back_the_count_of_a_job_marked_but_never_run(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=at(0))
        (job,) = queue.claim_batch(conn, owner="w", limit=1, lease_seconds=LEASE, start=1,
                                   now=at(0))
        assert queue.get_job(conn, job_id).attempts == 1
        assert queue.release_jobs(conn, owner="w", held=[(job_id, job.token)]) == {job_id}
        assert queue.get_job(conn, job_id).attempts == 0


def test_unstarted_claim__cannot_end_an_attempt_and_is_not_timed_out(engine: Engine) -> None:
    """Ending an attempt (complete, fail, cancel) needs one that started; the timeout rule
    counts from the start, and an unstarted claim has not started."""
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=at(0))
        (job,) = queue.claim_batch(conn, owner="w", limit=1, lease_seconds=3600, start=0,
                                   now=at(0))
        for end in (lambda: queue.complete_job(conn, owner="w", job_id=job_id, token=job.token),
                    lambda: queue.fail_job(conn, owner="w", job_id=job_id, token=job.token,
                                           error="x", permanent=True)):
            try:
                end()
                raise AssertionError("an unstarted attempt was ended")
            except LeaseLost:
                pass
        assert queue.fail_timed_out(conn, timeout_minutes=1, now=at(120)) == []
        queue.start_jobs(conn, owner="w", start=[(job_id, job.token)], now=at(120))
        assert queue.fail_timed_out(conn, timeout_minutes=1, now=at(150)) == []
        assert queue.fail_timed_out(conn, timeout_minutes=1, now=at(181)) == [job_id]
        assert queue.get_job(conn, job_id).attempts == 1


@pytest.mark.parametrize(("kinds", "started"), [
    (["noop", "noop", "noop"], [True, True, True]),  # all of fast kinds: all marked
    (["noop", "simulate", "noop"], [True, False, False]),  # one other kind: the first only
])
def test_claim__marks_the_whole_batch_only_when_every_job_is_of_a_fast_kind(
        engine: Engine, kinds: list[str], started: list[bool]) -> None:
    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob(kind=kind, priority=n) for n, kind in enumerate(kinds)],
                          now=at(0))
        batch = queue.claim_batch(conn, owner="w", limit=3, lease_seconds=LEASE, start=1,
                                  fast_kinds=["noop"], now=at(0))
    assert [job.kind for job in batch] == kinds
    assert [job.started for job in batch] == started
    with engine.connect() as conn:
        assert sorted(queue.get_job(conn, job.job_id).attempts for job in batch) == sorted(
            int(flag) for flag in started)


def test_claim__with_commit_is_its_own_transaction(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=at(0))
    with engine.connect() as conn:
        (job,) = queue.claim_batch(conn, owner="w", limit=1, lease_seconds=LEASE, commit=True,
                                   now=at(0))
        assert job.job_id == job_id
        assert not conn.in_transaction()
        with engine.connect() as other:  # committed: another session sees the lease
            assert queue.get_job(other, job_id).progress is Progress.RUNNING
        conn.begin()
        with pytest.raises(RuntimeError, match="outside a transaction"):
            queue.claim_batch(conn, owner="w", limit=1, lease_seconds=LEASE, commit=True)
