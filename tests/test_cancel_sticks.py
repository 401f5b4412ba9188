"""A requested cancel sticks (issue 11, defect 3): whatever ends a claim without running the
job to its end (release, orphan recovery, the transient-retry path, the start itself) ends a
cancel-requested job CANCELLED; a claim never clears the flag; the poller looks at it before
it starts a job, so a kind that never checkpoints is cancelled too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from jobworker import queue
from jobworker.kinds import JobContext, JobOutcome, job_kind
from jobworker.poller import estimate
from jobworker.poller.clock import Budget
from jobworker.poller.heartbeat import Heartbeat
from jobworker.poller.loop import PollerOptions, run_poller
from jobworker.queue import NewJob
from jobworker.queue.progress import Progress
from tests.fake_clock import FakeClock

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def claimed(conn: Connection, *, start: int | None = None, limit: int = 1,
            owner: str = "w") -> list[queue.ClaimedJob]:
    return queue.claim_batch(conn, owner=owner, limit=limit, lease_seconds=30, start=start,
                             now=at(0))


def row(conn: Connection, job_id: UUID) -> queue.Job:
    return queue.get_job(conn, job_id)


def test_release__of_a_cancel_requested_job_ends_it_cancelled(engine: Engine) -> None:
    """A cancel racing a release: the API answered cancel_requested=true while the poller
    was handing the job back; the old release queued it again with the flag cleared."""
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=at(0))
        (job,) = claimed(conn, start=0)
        assert queue.cancel_job(conn, job_id, now=at(1)).cancel_requested
        assert queue.release_jobs(conn, owner="w", held=[(job_id, job.token)],
                                  now=at(2)) == {job_id}
        after = row(conn, job_id)
    assert (after.progress, after.cancel_requested, after.attempts) == (
        Progress.CANCELLED, True, 0)
    assert after.finished_at == at(2)
    assert after.error == "cancelled on request before it started"


def test_recovery__of_cancel_requested_jobs_ends_them_cancelled(engine: Engine) -> None:
    with engine.begin() as conn:
        started_id, unstarted_id = queue.create_jobs(conn, [NewJob(kind="noop")] * 2, now=at(0))
        claimed(conn, start=1, limit=2)
        queue.cancel_job(conn, started_id, now=at(1))
        queue.cancel_job(conn, unstarted_id, now=at(1))
        recovered = queue.recover_orphans(conn, now=at(31))
        started, unstarted = row(conn, started_id), row(conn, unstarted_id)
    assert sorted(recovered.cancelled) == sorted([started_id, unstarted_id])
    assert (recovered.requeued, recovered.unstarted, recovered.failed) == ([], [], [])
    assert (started.progress, started.attempts) == (Progress.CANCELLED, 1)
    assert (unstarted.progress, unstarted.attempts) == (Progress.CANCELLED, 0)
    assert "cancelled on request" in (started.error or "")


def test_transient_failure__of_a_cancel_requested_job_ends_it_cancelled(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=at(0))
        (job,) = claimed(conn)
        queue.cancel_job(conn, job_id, now=at(1))
        progress = queue.fail_job(conn, owner="w", job_id=job_id, token=job.token,
                                  error="db hiccup", permanent=False, now=at(2))
        after = row(conn, job_id)
    assert progress is Progress.CANCELLED
    assert after.progress is Progress.CANCELLED
    assert after.error == "cancelled on request after a failed attempt: db hiccup"
    assert after.attempt_history[-1]["outcome"] == "error"


def test_claim__never_clears_a_cancel_request(engine: Engine) -> None:
    """A QUEUED row with the flag set (written by raw SQL, or by an older release): the
    claim leaves the flag, and the start then cancels the job instead of running it."""
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], now=at(0))
        conn.execute(text("UPDATE jobs SET cancel_requested = true WHERE job_id = :id"),
                     {"id": job_id})
        (job,) = claimed(conn)
        assert not job.started  # a cancel-requested job is never marked started
        assert row(conn, job_id).cancel_requested
        flushed = queue.start_jobs(conn, owner="w", start=[(job_id, job.token)], now=at(1))
        after = row(conn, job_id)
    assert flushed.cancelled == {job_id}
    assert (after.progress, after.attempts) == (Progress.CANCELLED, 0)


ran_jobs: list[UUID] = []


@job_kind("never_checkpoints")
def never_checkpoints(ctx: JobContext) -> JobOutcome:
    """Does its (fake-timed) work without ever looking at its signals."""
    ran_jobs.append(ctx.job_id)
    ctx.clock.sleep(float(ctx.payload.get("seconds", 1.0)))
    return JobOutcome(result={"ran": True})


def test_poller__cancels_a_job_that_never_checkpoints_before_it_starts(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs of a kind that ignores cancellation (1 s each): after a warm-up job, two are
    claimed together (a claim horizon of 10 s of work, not the default 1 s that would claim
    these one at a time) and only the first is marked started (a second of work is more than
    a start chunk). The second is cancelled while the first runs; its start refuses it, so it
    ends CANCELLED with no attempt used and never runs."""
    monkeypatch.setattr(estimate, "CLAIM_HORIZON_SECONDS", 10.0)
    ran_jobs.clear()
    with engine.begin() as conn:
        warm_up, first, second = queue.create_jobs(
            conn, [NewJob(kind="never_checkpoints", priority=p) for p in (0, 1, 2)])
    clock = FakeClock()

    def cancel_second() -> None:
        with engine.begin() as conn:
            assert queue.cancel_job(conn, second).progress is Progress.RUNNING  # claimed

    clock.at(1.2, cancel_second)
    opts = PollerOptions(owner="p", batch_size=2, lease_seconds=3, idle_exit_seconds=0.1)
    heartbeat = Heartbeat(engine, owner="p", lease_seconds=3, background=False)
    clock.every(heartbeat.interval, heartbeat.beat)
    summary = run_poller(engine, opts, Budget.seconds(clock, 30), heartbeat=heartbeat)
    with engine.connect() as conn:
        jobs = {job_id: row(conn, job_id) for job_id in (warm_up, first, second)}
    assert ran_jobs == [warm_up, first]
    assert jobs[first].progress is Progress.COMPLETED
    assert (jobs[second].progress, jobs[second].attempts) == (Progress.CANCELLED, 0)
    assert jobs[second].error == "cancelled on request before it started"
    assert (summary.claimed, summary.completed, summary.cancelled) == (3, 2, 1)


def test_poller__a_cancel_seen_by_the_heartbeat_stops_a_marked_job_before_it_runs(
        engine: Engine) -> None:
    """Fast jobs (0.2 s) are marked started in chunks: after the first of the batch, the
    flush marks the next two (0.4 s of work). The third is cancelled while the second runs;
    the heartbeat at 0.5 s reports it, and the poller honours it before calling the kind."""
    ran_jobs.clear()
    fast = {"seconds": 0.2}
    with engine.begin() as conn:
        warm_up, one, two, three = queue.create_jobs(
            conn, [NewJob(kind="never_checkpoints", payload=fast, priority=p) for p in range(4)])
    clock = FakeClock()

    def cancel_three() -> None:
        with engine.begin() as conn:
            queue.cancel_job(conn, three)

    clock.at(0.45, cancel_three)
    opts = PollerOptions(owner="p", batch_size=3, lease_seconds=1.5, idle_exit_seconds=0.1)
    heartbeat = Heartbeat(engine, owner="p", lease_seconds=1.5, background=False)
    clock.every(heartbeat.interval, heartbeat.beat)  # every 0.5 s
    summary = run_poller(engine, opts, Budget.seconds(clock, 30), heartbeat=heartbeat)
    with engine.connect() as conn:
        jobs = {job_id: row(conn, job_id) for job_id in (warm_up, one, two, three)}
    assert ran_jobs == [warm_up, one, two]
    assert jobs[three].progress is Progress.CANCELLED
    assert jobs[three].attempts == 1  # it had been marked started: the trade-off
    assert (summary.completed, summary.cancelled) == (3, 1)
