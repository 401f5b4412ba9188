"""A failure to record a job's outcome is a failure of that job alone (issue 11, defect 1).

Each step of recording is made to fail in turn, by the database itself (a CHECK, a trigger,
a deferred constraint, a backend killed mid-statement): the job whose outcome could not be
written ends FAILED (the database refused it: permanent, with its reason) or QUEUED with its
attempt used (the connection was lost: transient); its batch-mates complete; the poller
returns a summary; jobs behind it, and the next invocation, run as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from jobworker import queue
from jobworker.kinds import JobContext, JobOutcome, job_kind
from jobworker.poller.clock import Budget
from jobworker.poller.heartbeat import Heartbeat
from jobworker.poller.loop import PollerOptions, PollSummary, run_poller
from jobworker.queue import NewJob
from jobworker.queue.progress import TERMINAL, Progress
from tests.fake_clock import FakeClock

WORK_SECONDS = 0.01  # of fake time: enough for completions to be buffered into one batch


def _refused_route_group(conn: Connection) -> None:
    """What an overflowing solver scale produced: a negative duration the schema refuses."""
    conn.execute(text(
        "INSERT INTO route_groups (depot_lat, depot_lon, total_distance_km,"
        " total_duration_minutes, vehicles_used, locations_served, solver)"
        " VALUES (0, 0, 0, -1, 0, 0, '{}')"))


def _raise_in_persist(conn: Connection) -> None:
    raise RuntimeError("the results store is out of space")


def _drop_own_connection(conn: Connection) -> None:
    conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


PERSIST_HOOKS = {"refused": _refused_route_group, "raises": _raise_in_persist,
                 "drop": _drop_own_connection, "none": lambda conn: None}


@job_kind("faulty")
def faulty(ctx: JobContext) -> JobOutcome:
    """Works WORK_SECONDS, then leaves the outcome its payload names: ``persist`` picks a
    hook (absent: a buffered completion). Triggers of the test pick on ``fault``."""
    ctx.wait(WORK_SECONDS)
    hook = ctx.payload.get("persist")
    return JobOutcome(result={"fault": ctx.payload.get("fault")},
                      persist=PERSIST_HOOKS[hook] if hook else None)


@job_kind("steady")
def steady(ctx: JobContext) -> JobOutcome:
    ctx.wait(WORK_SECONDS)
    return JobOutcome(result={"ok": True})


# Faults the database injects into the completion of a job whose payload names them.
TRIGGERS = """
CREATE OR REPLACE FUNCTION test_fault_on_complete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.progress = 'COMPLETED' AND NEW.payload->>'fault' = 'statement' THEN
        RAISE EXCEPTION 'test: completion refused' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.progress = 'COMPLETED' AND NEW.payload->>'fault' = 'drop' THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END;
$$;
CREATE OR REPLACE FUNCTION test_fault_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'test: refused at commit' USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER test_fault_on_complete BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION test_fault_on_complete();
CREATE CONSTRAINT TRIGGER test_fault_at_commit AFTER UPDATE ON jobs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.progress = 'COMPLETED' AND NEW.payload->>'fault' = 'commit')
    EXECUTE FUNCTION test_fault_at_commit();
"""
DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS test_fault_on_complete ON jobs;
DROP TRIGGER IF EXISTS test_fault_at_commit ON jobs;
DROP FUNCTION IF EXISTS test_fault_on_complete();
DROP FUNCTION IF EXISTS test_fault_at_commit();
"""


@pytest.fixture
def faults(engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        conn.execute(text(DROP_TRIGGERS))
        conn.execute(text(TRIGGERS))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(DROP_TRIGGERS))


@dataclass(frozen=True)
class Fault:
    payload: dict[str, Any]
    progress: Progress
    error: str  # in the job's error


FAULTS = {
    "persist_refused_by_a_check": Fault(
        {"persist": "refused"}, Progress.FAILED, "route_groups_total_duration_minutes_check"),
    "persist_raises": Fault(
        {"persist": "raises"}, Progress.QUEUED, "the job raised RuntimeError"),  # text: logged
    "single_completion_statement_fails": Fault(
        {"persist": "none", "fault": "statement"}, Progress.FAILED, "completion refused"),
    "batch_completion_statement_fails": Fault(
        {"fault": "statement"}, Progress.FAILED, "completion refused"),
    "single_commit_fails": Fault(
        {"persist": "none", "fault": "commit"}, Progress.FAILED, "refused at commit"),
    "batch_commit_fails": Fault({"fault": "commit"}, Progress.FAILED, "refused at commit"),
    "connection_drops_in_persist": Fault(
        {"persist": "drop"}, Progress.QUEUED, "connection was lost"),
    "connection_drops_mid_batch_statement": Fault(
        {"fault": "drop"}, Progress.QUEUED, "connection was lost"),
}


def invoke(engine: Engine, clock: FakeClock, *, owner: str) -> PollSummary:
    opts = PollerOptions(owner=owner, batch_size=20, lease_seconds=30, poll_interval=0.2,
                         backoff_base_seconds=600, backoff_cap_seconds=600,
                         idle_exit_seconds=0.3)
    heartbeat = Heartbeat(engine, owner=owner, lease_seconds=30, background=False)
    clock.every(heartbeat.interval, heartbeat.beat)
    return run_poller(engine, opts, Budget.seconds(clock, 60), heartbeat=heartbeat)


def jobs_by_id(engine: Engine) -> dict[UUID, queue.Job]:
    with engine.connect() as conn:
        return {job.job_id: job for job in queue.list_jobs(conn, limit=1000)}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_recording_fault__fails_that_job_alone_and_the_queue_moves_on(
        engine: Engine, faults: None, name: str) -> None:
    fault = FAULTS[name]
    with engine.begin() as conn:
        # A warm-up job first: durations become known and the batch after it is a real one.
        (warm_up,) = queue.create_jobs(conn, [NewJob(kind="steady", priority=0)])
        before = queue.create_jobs(conn, [NewJob(kind="steady", priority=1)] * 3)
        (bad,) = queue.create_jobs(conn, [NewJob(kind="faulty", payload=fault.payload,
                                                 priority=2)])
        behind = queue.create_jobs(conn, [NewJob(kind="steady", priority=3)] * 3)
    clock = FakeClock()
    summary = invoke(engine, clock, owner="first")  # returns: it never raises

    jobs = jobs_by_id(engine)
    for job in jobs.values():
        assert job.progress in TERMINAL or job.progress is Progress.QUEUED, job
        assert job.lease_owner is None
    assert all(jobs[job_id].progress is Progress.COMPLETED
               for job_id in [warm_up, *before, *behind])
    assert all(jobs[job_id].attempts == 1 for job_id in [warm_up, *before, *behind])
    assert (jobs[bad].progress, jobs[bad].attempts) == (fault.progress, 1)
    assert fault.error in (jobs[bad].error or "")
    assert [entry["outcome"] for entry in jobs[bad].attempt_history] == [
        "failed" if fault.progress is Progress.FAILED else "error"]
    assert summary.completed == 7
    assert (summary.failed, summary.retried) == (
        (1, 0) if fault.progress is Progress.FAILED else (0, 1))
    assert (summary.lost, summary.unrecorded, summary.error) == (0, 0, None)

    with engine.begin() as conn:
        later = queue.create_jobs(conn, [NewJob(kind="steady")] * 2)
    again = invoke(engine, clock, owner="second")
    assert again.completed == 2
    assert all(jobs_by_id(engine)[job_id].progress is Progress.COMPLETED for job_id in later)
