"""A job that finds too little time left to set up is handed back unstarted: its attempt given
back, its place in the queue kept (run_at unchanged), for a poller with more time; one that no
invocation could ever fit ends FAILED saying so. On real Postgres, on a fake clock (time moves
only when a job waits) and through the poller's Lambda handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.runtime import get_engine
from jobworker.kinds import JobContext, NotEnoughTime, SetupTime, job_kind
from jobworker.poller.clock import Budget
from jobworker.poller.heartbeat import Heartbeat
from jobworker.poller.loop import PollerOptions, PollSummary, run_poller
from jobworker.queue import NewJob
from jobworker.queue.progress import Progress
from tests.conftest import LambdaClient
from tests.fake_clock import FakeClock
from tests.test_route_jobs import request

STOPS = 3000  # setting them up takes about 4.6 s (routes.solver.setup_seconds)


@job_kind("sets_up", setup=lambda payload: SetupTime(payload["setup"], "warming up"))
def sets_up(ctx: JobContext) -> None:
    """Declares its setup: the poller decides before it starts the job."""
    ctx.wait(ctx.payload["setup"])


@job_kind("finds_out_late")
def finds_out_late(ctx: JobContext) -> None:
    """Declares nothing: finds out itself, after 1 s of looking, that its 4 s of setup won't
    fit, and says so before doing anything else."""
    ctx.wait(1)
    setup = SetupTime(4.0, "warming up")
    if ctx.time_left() < setup.seconds:
        raise NotEnoughTime(setup, ctx.time_left())


def seven_seconds_of_work() -> list[NewJob]:
    """Seven 1 s jobs first: a 10 s poller then has 3 s left, and it is no longer fresh."""
    return [NewJob(kind="simulate", payload={"seconds": 1}, priority=-1)] * 7


def route_job(priority: int = 0) -> NewJob:
    return NewJob(kind="generate_routes", payload=request(STOPS, vehicles=500, capacity=100),
                  priority=priority)


def poll(engine: Engine, clock: FakeClock, seconds: float, owner: str = "poller") -> PollSummary:
    opts = PollerOptions(owner=owner, batch_size=50, lease_seconds=30, poll_interval=0.2,
                         backoff_base_seconds=60, idle_exit_seconds=0.1)
    heartbeat = Heartbeat(engine, owner=owner, lease_seconds=30, background=False)
    clock.every(heartbeat.interval, heartbeat.beat)
    return run_poller(engine, opts, Budget.seconds(clock, seconds), heartbeat=heartbeat)


def enqueue(engine: Engine, *jobs: NewJob) -> list[UUID]:
    with engine.begin() as conn:
        return queue.create_jobs(conn, list(jobs), max_attempts=3)


def job(engine: Engine, job_id: UUID | str) -> queue.Job:
    with engine.connect() as conn:
        return queue.get_job(conn, UUID(str(job_id)))


def assert_handed_back_unstarted(before: queue.Job, after: queue.Job) -> None:
    """QUEUED as it was before the claim: no attempt used, none recorded, same place."""
    assert after.progress is Progress.QUEUED
    assert (after.attempts, after.attempt_history) == (0, [])
    assert after.run_at == before.run_at
    assert (after.lease_owner, after.started_at, after.error) == (None, None, None)


# --- on a fake clock ---------------------------------------------------------------------


def test_route_job__with_too_little_time_left_is_handed_back_and_the_poller_goes_on(
        engine: Engine) -> None:
    """Seven 1 s jobs leave 3 s: the route job is claimed, handed back at once without its
    attempt, and not claimed again by this poller (it would only hand it back again); the
    jobs behind it run."""
    ahead = enqueue(engine, *[NewJob(kind="simulate", payload={"seconds": 1})] * 7)
    (route,) = enqueue(engine, route_job(priority=1))
    behind = enqueue(engine, *[NewJob(kind="noop", priority=2)] * 3)
    queued = job(engine, route)

    summary = poll(engine, FakeClock(), 10)

    assert_handed_back_unstarted(queued, job(engine, route))
    assert (summary.claimed, summary.released, summary.retried) == (11, 1, 0)
    assert {job(engine, job_id).progress for job_id in ahead + behind} == {Progress.COMPLETED}


def test_route_job__that_no_invocation_can_fit_fails_at_once_saying_why(engine: Engine) -> None:
    """A fresh poller with its whole budget (3 s) cannot set up 3,000 stops (4.6 s): no
    invocation ever could, so the job fails, once, instead of coming back for ever."""
    (route,) = enqueue(engine, route_job())
    clock = FakeClock()

    summary = poll(engine, clock, 3)

    failed = job(engine, route)
    assert (failed.progress, failed.attempts, summary.failed) == (Progress.FAILED, 1, 1)
    assert [entry["outcome"] for entry in failed.attempt_history] == ["failed"]
    assert failed.error is not None
    assert f"setting up {STOPS} stops takes about 4.6 s" in failed.error
    assert "can never run" in failed.error
    assert clock.now() < 1  # no work was done: it was not set up, let alone searched


# --- through the poller's Lambda handler (real time) ----------------------------------------


def test_poller_handler__a_route_job_too_long_for_the_lambda_fails_in_one_invocation(
        api: LambdaClient, engine: Engine, handlers: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's case: a 4 s Lambda and 3,000 stops. Before, three invocations each used an
    attempt and the job ended FAILED without ever running; now the first one fails it, with
    the reason, and no invocation is wasted on it again."""
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.3")
    job_id = api("POST", "/jobs/generate", request(STOPS, vehicles=500, capacity=100)
                 ).json["job_id"]

    summary = handlers["poller"](4)

    failed = api("GET", f"/jobs/{job_id}").json
    assert (summary["failed"], failed["progress"], failed["attempts"]) == (1, "FAILED", 1)
    assert [entry["outcome"] for entry in failed["attempt_history"]] == ["failed"]
    assert "can never run" in failed["error"]
    assert f"setting up {STOPS} stops" in failed["error"]


def test_poller_handler__a_route_job_it_has_no_time_left_for_keeps_its_attempts(
        api: LambdaClient, engine: Engine, handlers: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6 s Lambda spends 1.5 s on a job first: the 4.6 s of setup no longer fit, but they
    fit a fresh invocation, so the job goes back as it was, first in line for the next one."""
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.3")
    enqueue(engine, NewJob(kind="simulate", payload={"seconds": 1.5}, priority=-1))
    job_id = api("POST", "/jobs/generate", request(STOPS, vehicles=500, capacity=100)
                 ).json["job_id"]
    queued = job(engine, job_id)

    summary = handlers["poller"](6)

    assert (summary["completed"], summary["released"], summary["retried"]) == (1, 1, 0)
    assert_handed_back_unstarted(queued, job(engine, job_id))


# --- the kinds API: a setup estimate, NotEnoughTime, and the fence ---------------------------


def test_setup_estimate__a_job_handed_back_is_taken_first_by_the_next_poller(
        engine: Engine) -> None:
    enqueue(engine, *seven_seconds_of_work())
    (setup_job,) = enqueue(engine, NewJob(kind="sets_up", payload={"setup": 4}))
    queued = job(engine, setup_job)
    clock = FakeClock()

    first = poll(engine, clock, 10, owner="first")
    assert (first.completed, first.released) == (7, 1)
    assert_handed_back_unstarted(queued, job(engine, setup_job))
    (later,) = enqueue(engine, NewJob(kind="noop"))  # same priority, enqueued after it

    second = poll(engine, clock, 10, owner="second")

    done, other = job(engine, setup_job), job(engine, later)
    assert second.completed == 2
    assert (done.progress, done.attempts) == (Progress.COMPLETED, 1)
    assert done.started_at is not None
    assert other.started_at is not None
    assert done.started_at < other.started_at  # its place in the queue was kept


def test_not_enough_time__raised_by_the_work_hands_it_back_or_fails_it_when_nothing_can_fit(
        engine: Engine) -> None:
    enqueue(engine, *seven_seconds_of_work())
    (late,) = enqueue(engine, NewJob(kind="finds_out_late"))
    queued = job(engine, late)
    clock = FakeClock()

    summary = poll(engine, clock, 10)
    assert (summary.completed, summary.released, summary.retried) == (7, 1, 0)
    assert_handed_back_unstarted(queued, job(engine, late))

    summary = poll(engine, clock, 4.5)  # fresh, with all an invocation has: it never fits
    failed = job(engine, late)
    assert (failed.progress, failed.attempts, summary.failed) == (Progress.FAILED, 1, 1)
    assert failed.error == (
        "warming up takes about 4.0 s, more than any poller invocation has for it (3.5 s): it "
        "can never run here; send a smaller job, or give the poller more time "
        "(PollerTimeoutSeconds, JOB_TIMEOUT_MINUTES)")


@job_kind("stolen_then_short")
def stolen_then_short(ctx: JobContext) -> None:
    """Its lease goes to another worker (the sweeper thought this one dead), then it finds
    it has no time: the hand-back must not touch the job its new owner holds."""
    later = datetime.now(UTC) + timedelta(hours=1)
    with get_engine().begin() as conn:
        queue.recover_orphans(conn, now=later)
        queue.claim_batch(conn, owner="thief", limit=1, lease_seconds=600, start=1, now=later)
    raise NotEnoughTime(SetupTime(60, "warming up"), ctx.time_left())


def test_hand_back__of_a_job_whose_lease_was_lost_leaves_it_to_its_new_owner(
        engine: Engine, app_env: None) -> None:
    enqueue(engine, *seven_seconds_of_work())
    (stolen,) = enqueue(engine, NewJob(kind="stolen_then_short"))

    summary = poll(engine, FakeClock(), 10)

    row = job(engine, stolen)
    assert summary.released == 0
    assert (row.progress, row.lease_owner, row.attempts) == (Progress.RUNNING, "thief", 2)


def test_claim__passes_over_the_jobs_it_is_asked_to_skip(engine: Engine) -> None:
    first, second = enqueue(engine, NewJob(kind="noop", priority=0), NewJob(kind="noop"))
    with engine.begin() as conn:
        (claimed,) = queue.claim_batch(conn, owner="w", limit=1, lease_seconds=30,
                                       skip=[first])
    assert claimed.job_id == second


def test_route_setup__is_estimated_from_the_payload_size_before_validation() -> None:
    from jobworker.routes.job import route_setup

    assert route_setup(request(STOPS)) == SetupTime(pytest.approx(4.6), "setting up 3000 stops")
    assert route_setup({"location_group": "not a group"}) is None
    assert route_setup({}) is None
