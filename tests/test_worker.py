"""The poller's work loop on real Postgres and a fake clock: outcomes, deadlines, heartbeats,
cancellation. Time moves only when the poller or a job sleeps, so every count is exact."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.engine import make_engine
from jobworker.kinds import JobContext, JobOutcome, job_kind
from jobworker.poller.clock import Budget
from jobworker.poller.heartbeat import Heartbeat
from jobworker.poller.loop import PollerOptions, PollSummary, run_poller
from jobworker.queue import NewJob
from jobworker.queue.progress import Progress
from tests.fake_clock import FakeClock


@job_kind("returns_unstorable")
def returns_unstorable(ctx: JobContext) -> JobOutcome:
    """A result json.dumps takes by default and jsonb refuses."""
    return JobOutcome(result={"nan": float("nan")} if ctx.payload.get("nan") else {"s": "a\x00b"})


def options(**overrides: Any) -> PollerOptions:
    values: dict[str, Any] = {"owner": "test-poller", "batch_size": 50, "lease_seconds": 30,
                              "poll_interval": 0.2, "backoff_base_seconds": 60}
    values.update(overrides)
    return PollerOptions(**values)


def poll(engine: Engine, clock: FakeClock, seconds: float, **overrides: Any) -> PollSummary:
    """One invocation of ``seconds`` on ``clock``, its heartbeat beating every third of a
    lease on the same clock."""
    opts = options(**overrides)
    heartbeat = Heartbeat(engine, owner=opts.owner, lease_seconds=opts.lease_seconds,
                          background=False)
    clock.every(heartbeat.interval, heartbeat.beat)
    return run_poller(engine, opts, Budget.seconds(clock, seconds), heartbeat=heartbeat)


def enqueue(engine: Engine, *jobs: NewJob, max_attempts: int = 3) -> list[UUID]:
    with engine.begin() as conn:
        return queue.create_jobs(conn, list(jobs), max_attempts=max_attempts)


def rows(engine: Engine) -> dict[UUID, queue.Job]:
    with engine.connect() as conn:
        return {job.job_id: job for job in queue.list_jobs(conn, limit=10_000)}


def test_poller__drains_noop_jobs_and_reports_counts(engine: Engine) -> None:
    ids = enqueue(engine, *[NewJob(kind="noop")] * 120)
    summary = poll(engine, FakeClock(), 3, batch_size=50, idle_exit_seconds=0.1)
    assert (summary.claimed, summary.completed, summary.failed, summary.lost) == (120, 120, 0, 0)
    # slow start: one job, then full batches of 50, 50 and the last 19, then one empty poll
    # and the one idle_exit_seconds later
    assert summary.polls == 6
    assert {job.progress for job in rows(engine).values()} == {Progress.COMPLETED}
    assert set(rows(engine)) == set(ids)
    assert {job.attempts for job in rows(engine).values()} == {1}


def test_poller__one_failing_job_does_not_stop_the_others(engine: Engine) -> None:
    transient, permanent, unknown, fine = enqueue(
        engine,
        NewJob(kind="simulate", payload={"seconds": 0, "fail": "transient"}, priority=1),
        NewJob(kind="simulate", payload={"seconds": 0, "fail": "permanent"}, priority=2),
        NewJob(kind="no-such-kind", priority=3),
        NewJob(kind="noop", priority=4),
    )
    summary = poll(engine, FakeClock(), 1.5)
    jobs = rows(engine)
    assert (summary.retried, summary.failed, summary.completed) == (1, 2, 1)
    assert jobs[transient].progress is Progress.QUEUED
    assert jobs[transient].error == "simulated transient failure"
    assert jobs[transient].run_at > jobs[transient].updated_at + timedelta(seconds=20)  # backoff
    assert jobs[permanent].progress is Progress.FAILED
    assert jobs[unknown].progress is Progress.FAILED
    assert "unknown job kind 'no-such-kind'" in (jobs[unknown].error or "")
    assert jobs[fine].progress is Progress.COMPLETED


def test_poller__invalid_payload_fails_permanently(engine: Engine) -> None:
    (job_id,) = enqueue(engine, NewJob(kind="simulate", payload={"seconds": "soon"}))
    poll(engine, FakeClock(), 1)
    job = rows(engine)[job_id]
    assert job.progress is Progress.FAILED
    assert job.attempts == 1
    assert "invalid simulate payload" in (job.error or "")


def test_poller__transient_errors_end_failed_after_max_attempts(engine: Engine) -> None:
    (job_id,) = enqueue(engine, NewJob(kind="simulate", payload={"seconds": 0,
                                                                 "fail": "transient"}),
                        max_attempts=3)
    summary = poll(engine, FakeClock(), 2, backoff_base_seconds=0, backoff_cap_seconds=0)
    job = rows(engine)[job_id]
    assert (summary.retried, summary.failed) == (2, 1)
    assert job.progress is Progress.FAILED
    assert [entry["outcome"] for entry in job.attempt_history] == ["error"] * 3
    assert [entry["attempt"] for entry in job.attempt_history] == [1, 2, 3]


def test_poller__deadline_claims_only_what_it_can_start_and_another_finishes(
    engine: Engine,
) -> None:
    """A 5 s budget and 2 s jobs: it runs two, never claims a third, and a second poller
    completes the rest."""
    ids = enqueue(engine, *[NewJob(kind="simulate", payload={"seconds": 2})] * 4)
    clock = FakeClock()
    first = poll(engine, clock, 5, owner="first")
    assert (first.claimed, first.completed, first.released, first.polls) == (2, 2, 0, 2)
    assert clock.now() == pytest.approx(4)
    waiting = [job for job in rows(engine).values() if job.progress is Progress.QUEUED]
    assert len(waiting) == 2
    assert all(job.attempts == 0 for job in waiting)
    second = poll(engine, clock, 5, owner="second")
    assert second.completed == 2
    assert {rows(engine)[job_id].progress for job_id in ids} == {Progress.COMPLETED}


def test_poller__releases_claimed_jobs_it_cannot_start_in_time(engine: Engine) -> None:
    enqueue(engine, NewJob(kind="noop", priority=0),
            *[NewJob(kind="simulate", payload={"seconds": 1.5}, priority=1)] * 4)
    summary = poll(engine, FakeClock(), 2.5)
    assert summary.claimed == 5  # the fast noop made the next claim a full batch
    assert summary.completed == 2
    assert summary.released == 3
    jobs = rows(engine).values()
    released = [job for job in jobs if job.progress is Progress.QUEUED]
    assert len(released) == 3
    assert all(job.attempts == 0 and job.lease_owner is None for job in released)


def test_poller__each_job_deadline_is_capped_by_the_budget(engine: Engine) -> None:
    (job_id,) = enqueue(engine, NewJob(kind="simulate", payload={"seconds": 30}))
    clock = FakeClock()
    summary = poll(engine, clock, 1.0)
    assert clock.now() == pytest.approx(1.0)  # the 30 s job stopped at the budget's end
    job = rows(engine)[job_id]
    assert summary.retried == 1
    assert job.progress is Progress.QUEUED
    assert "deadline" in (job.error or "")


def test_poller__running_job_cancelled_through_the_heartbeat(engine: Engine) -> None:
    (job_id,) = enqueue(engine, NewJob(kind="simulate", payload={"seconds": 20}))
    clock = FakeClock()

    def cancel() -> None:
        with engine.begin() as conn:
            queue.cancel_job(conn, job_id)

    clock.at(0.5, cancel)
    summary = poll(engine, clock, 10, lease_seconds=1.5, idle_exit_seconds=0.3)
    job = rows(engine)[job_id]
    assert summary.cancelled == 1
    assert job.progress is Progress.CANCELLED
    assert job.finished_at is not None
    # the first beat after the request (every 0.5 s) stopped it at the next check (0.05 s)
    assert job.attempt_history[-1]["outcome"] == "cancelled"


def test_poller__lost_lease_stops_the_work_and_writes_nothing(engine: Engine) -> None:
    (job_id,) = enqueue(engine, NewJob(kind="simulate", payload={"seconds": 20}))
    clock = FakeClock()

    def steal() -> None:
        """The sweeper wrongly thinks the worker died (clock skew) and another worker claims."""
        with engine.begin() as conn:
            later = datetime.now(UTC) + timedelta(hours=1)
            queue.recover_orphans(conn, now=later)
            queue.claim_batch(conn, owner="thief", limit=1, lease_seconds=600, start=1,
                              now=later)

    clock.at(0.4, steal)
    summary = poll(engine, clock, 10, lease_seconds=1.5, idle_exit_seconds=0.3)
    job = rows(engine)[job_id]
    assert summary.lost == 1
    assert (job.progress, job.lease_owner, job.attempts) == (Progress.RUNNING, "thief", 2)


def test_poller__database_unreachable_ends_the_invocation_cleanly() -> None:
    dead = make_engine("postgresql://postgres@/postgres?host=/tmp/jobworker-no-server-here")
    summary = run_poller(dead, options(), Budget.seconds(FakeClock(), 2))
    assert summary.error is not None
    assert summary.error.startswith("database unavailable")


def test_poller_handler__seed_raw_insert_runs_to_completed_with_seed_logs(
    engine: Engine, handlers: dict[str, Any], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the Lambda handler, on real time (idle exit keeps it short)."""
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.2")
    caplog.set_level(logging.DEBUG, logger="jobworker")
    with engine.begin() as conn:
        job_id = conn.execute(text(
            "INSERT INTO jobs (job_id, progress, created_at) "
            "VALUES (gen_random_uuid(), 'QUEUED', NOW()) RETURNING job_id;")).scalar_one()
    summary = handlers["poller"](5)
    job = rows(engine)[job_id]
    assert summary["completed"] == 1
    assert job.progress is Progress.COMPLETED
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.route_group_id is not None
    about_job = [record for record in caplog.records
                 if getattr(record, "job_id", None) == str(job_id)]
    messages = " | ".join(record.getMessage() for record in about_job)
    for wording in ("Found job", "Starting job", "Generating routes", "completed successfully"):
        assert wording in messages
    starting = [record for record in caplog.records if record.getMessage() == "Job worker starting"]
    assert len(starting) == 1
    assert starting[0].levelno == logging.INFO
    assert starting[0].options["idle_exit_seconds"] == 0.2  # type: ignore[attr-defined]
    loops = [record for record in caplog.records if record.getMessage() == "Worker loop"]
    assert len(loops) == summary["polls"]
    assert {record.levelno for record in loops} == {logging.DEBUG}


def test_poller__idle_exit_ends_an_empty_invocation_early(engine: Engine) -> None:
    clock = FakeClock()
    summary = poll(engine, clock, 30, poll_interval=0.2, idle_exit_seconds=0.5)
    assert summary.polls == 4  # at 0, 0.1, 0.3 and 0.5 s
    assert clock.now() == pytest.approx(0.5)


def test_poller__idle_polls_come_quickly_after_work_then_every_poll_interval(
        engine: Engine) -> None:
    """With poll_interval 5 s and idle exit at 2 s, an invocation still polls at 0.1, 0.3,
    0.7, 1.5 and 2.0 s of idleness (waiting poll_interval first, it would have left at once):
    a job enqueued meanwhile (its kick held back by the API's debounce) is found by the
    poller that is still there."""
    found_later: list[UUID] = []
    clock = FakeClock()
    clock.at(0.25, lambda: found_later.extend(enqueue(engine, NewJob(kind="noop"))))
    summary = poll(engine, clock, 30, poll_interval=5, idle_exit_seconds=2.0)
    assert summary.completed == 1
    assert rows(engine)[found_later[0]].progress is Progress.COMPLETED
    # 0 and 0.1 (nothing), 0.3 (the job), then 0.3, 0.4, 0.6, 1.0, 1.8 and 2.3 (idle)
    assert summary.polls == 9
    assert clock.now() == pytest.approx(2.3)


def test_poller__without_idle_exit_it_polls_until_the_budget_ends(engine: Engine) -> None:
    clock = FakeClock()
    summary = poll(engine, clock, 1.5, poll_interval=0.2)
    # 0, 0.1, 0.3, ... 1.3: the next wait would leave less than min_start_seconds
    assert summary.polls == 8
    assert clock.now() == pytest.approx(1.3)


def test_poller__a_result_the_database_cannot_store_fails_that_job_alone(engine: Engine) -> None:
    """Written with the batch's other completions, it would fail them all and send the whole
    batch back to the queue, to run again and again."""
    good = enqueue(engine, *[NewJob(kind="noop")] * 5)
    nan, nul = enqueue(engine, NewJob(kind="returns_unstorable", payload={"nan": True}),
                       NewJob(kind="returns_unstorable"))
    summary = poll(engine, FakeClock(), 30, idle_exit_seconds=0.3)
    assert (summary.completed, summary.failed, summary.retried) == (5, 2, 0)
    jobs = rows(engine)
    assert all(jobs[job_id].progress is Progress.COMPLETED for job_id in good)
    assert jobs[nan].progress is Progress.FAILED
    assert "cannot be stored as JSON" in (jobs[nan].error or "")
    assert jobs[nul].progress is Progress.FAILED
    assert "NUL" in (jobs[nul].error or "")


@job_kind("one_millisecond")
def one_millisecond(ctx: JobContext) -> None:
    ctx.wait(0.001)


def test_poller__completions_buffered_across_batches_are_written_once_and_never_released(
        engine: Engine) -> None:
    """Small batches of short jobs: their completions wait for the next claim that is due
    to write them (1,000 buffered or half a second), so they span batches; each job still
    runs once, ends COMPLETED, and no batch's end hands back another batch's finished jobs."""
    ids = enqueue(engine, *[NewJob(kind="one_millisecond")] * 45)
    summary = poll(engine, FakeClock(), 10, batch_size=10, idle_exit_seconds=0.1)
    assert (summary.claimed, summary.completed, summary.released, summary.lost) == (45, 45, 0, 0)
    jobs = rows(engine)
    assert set(jobs) == set(ids)
    assert {(job.progress, job.attempts) for job in jobs.values()} == {(Progress.COMPLETED, 1)}
    # Batches of 1 (slow start), 10, 10, 10, 10 and 4, then two empty polls (as above).
    assert summary.polls == 8
    # 45 ms of work, never half a second: all written by one statement (one transaction's
    # finished_at), when the first empty poll found nothing more to run.
    assert len({job.finished_at for job in jobs.values()}) == 1


def test_poller_handler__its_cold_start_objects_are_kept_out_of_the_collectors_passes() -> None:
    """Loaded as Lambda loads it, in a fresh process: what its import made is frozen (a full
    collection walked it all, every few thousand no-op jobs)."""
    import subprocess
    import sys
    from pathlib import Path

    app = Path(__file__).resolve().parents[1] / "functions" / "poller" / "app.py"
    code = ("import gc, importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('poller_app', {str(app)!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "print(gc.get_freeze_count())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert int(done.stdout.split()[-1]) > 10_000
