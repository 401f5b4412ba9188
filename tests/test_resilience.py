"""Nothing lost, nothing done twice: pollers killed at random, Postgres restarted, poison jobs.

These run the real poller handler in separate processes (``jobworker invoke poller``), as
Lambda would run many containers, and the real sweeper handler beside them.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.dev.localdb import LocalPostgres
from jobworker.queue import NewJob
from tests.torture_kinds import LEDGER_DDL

ROOT = Path(__file__).resolve().parents[1]
# The pooler lane runs the torture again, smaller, to keep `make test` within its time.
TORTURE_JOBS = int(os.environ.get("JOBWORKER_TORTURE_JOBS", "2000"))


class PollerFleet:
    """Poller processes that are restarted whenever one exits or is killed."""

    def __init__(self, database_url: str, size: int, *, invocation_seconds: float,
                 env: dict[str, str]) -> None:
        self.size = size
        self.command = [sys.executable, "-m", "jobworker.dev.cli", "invoke", "poller",
                        "--timeout", str(invocation_seconds)]
        self.env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT),
                    "JOBWORKER_PLUGINS": "tests.torture_kinds",
                    "POWERTOOLS_LOG_LEVEL": "WARNING", **env}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed = 0

    def keep_up(self) -> None:
        self.processes = [p for p in self.processes if p.poll() is None]
        while len(self.processes) < self.size:
            self.processes.append(subprocess.Popen(
                self.command, env=self.env, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for p in self.processes if p.poll() is None]
        if alive:
            rng.choice(alive).kill()
            self.killed += 1

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait(timeout=30)


@pytest.fixture
def fleet_env(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(LEDGER_DDL))
        conn.execute(text("TRUNCATE work_ledger"))


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(  # type: ignore[arg-type]
            text("SELECT progress::text, count(*) FROM jobs GROUP BY 1")).all())


def ledger_per_job(engine: Engine) -> dict[Any, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT job_id, count(*) FROM work_ledger GROUP BY job_id")).all())


def run_until_done(engine: Engine, fleet: PollerFleet, handlers: dict[str, Any], total: int,
                   *, timeout: float, kill_every: float | None = None,
                   during: Any = None) -> None:
    rng = random.Random(20261128)
    started = time.monotonic()
    next_kill = started + (kill_every or 0)
    try:
        while counts(engine).get("COMPLETED", 0) < total:
            assert time.monotonic() - started < timeout, f"not done in time: {counts(engine)}"
            fleet.keep_up()
            if kill_every and time.monotonic() >= next_kill:
                fleet.kill_one(rng)
                next_kill += kill_every
            if during is not None:
                during(time.monotonic() - started)
            handlers["sweeper"](5)
            time.sleep(0.5)
    finally:
        fleet.stop()


@pytest.mark.slow
def test_crash_torture__every_job_completes_and_its_work_commits_exactly_once(
    engine: Engine, database_url: str, handlers: dict[str, Any], fleet_env: None,
) -> None:
    rng = random.Random(7)
    jobs = [NewJob(kind="ledgered_simulate", payload={"seconds": rng.uniform(0.005, 0.1)})
            for _ in range(TORTURE_JOBS)]
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, jobs, max_attempts=50)
    fleet = PollerFleet(database_url, 4, invocation_seconds=30,
                        env={"BATCH_SIZE": "5", "LEASE_SECONDS": "2", "POLL_INTERVAL": "0.2"})
    run_until_done(engine, fleet, handlers, len(ids), timeout=400, kill_every=1.0)

    assert fleet.killed >= min(10, TORTURE_JOBS // 100)
    assert counts(engine) == {"COMPLETED": len(ids)}
    ledger = ledger_per_job(engine)
    assert set(ledger) == set(ids)
    assert set(ledger.values()) == {1}, "some job's work committed more than once"


@pytest.mark.slow
def test_database_restart__mid_run_all_jobs_still_complete(
    engine: Engine, database_url: str, handlers: dict[str, Any], fleet_env: None,
    pg_server: LocalPostgres,
) -> None:
    if pg_server.pgdata is None:
        pytest.skip("restarting the server needs the embedded Postgres")
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, [NewJob(kind="ledgered_simulate",
                                              payload={"seconds": 0.05})] * 300)
    fleet = PollerFleet(database_url, 2, invocation_seconds=20,
                        env={"BATCH_SIZE": "5", "LEASE_SECONDS": "2", "POLL_INTERVAL": "0.2"})
    restarted: list[float] = []

    def restart_once(elapsed: float) -> None:
        if not restarted and counts(engine).get("COMPLETED", 0) > 30:
            pg_server.stop_server()
            time.sleep(2)
            pg_server.start_server()
            restarted.append(elapsed)

    run_until_done(engine, fleet, handlers, len(ids), timeout=240, during=restart_once)
    assert restarted, "the database was never restarted"
    assert counts(engine) == {"COMPLETED": len(ids)}
    assert set(ledger_per_job(engine).values()) == {1}


def test_poison_job__fails_after_max_attempts_without_blocking_the_others(
    engine: Engine, database_url: str, handlers: dict[str, Any], fleet_env: None,
) -> None:
    with engine.begin() as conn:
        (poison,) = queue.create_jobs(conn, [NewJob(kind="crash", priority=-1)], max_attempts=2)
        healthy = queue.create_jobs(conn, [NewJob(kind="ledgered_simulate",
                                                  payload={"seconds": 0.01})] * 20)
    fleet = PollerFleet(database_url, 2, invocation_seconds=10,
                        env={"BATCH_SIZE": "1", "LEASE_SECONDS": "1", "POLL_INTERVAL": "0.2"})
    run_until_done(engine, fleet, handlers, len(healthy), timeout=120)
    deadline = time.monotonic() + 30
    while counts(engine).get("FAILED", 0) < 1 and time.monotonic() < deadline:
        fleet.keep_up()
        handlers["sweeper"](5)
        time.sleep(0.5)
    fleet.stop()
    with engine.connect() as conn:
        job = queue.get_job(conn, poison)
    assert job.progress.value == "FAILED"
    assert job.attempts == 2
    assert "attempt 2 of 2" in (job.error or "")


def test_sigkill_mid_batch__unstarted_batch_mates_keep_their_attempts(
    engine: Engine, database_url: str,
) -> None:
    """A poller claims a batch (a slow job in front of five fast ones) and is SIGKILLed while
    the slow job runs: the slow job used its attempt (it started), the five behind it come
    back with none used, and the next poller runs them. Counting at claim, all six lost one."""
    from datetime import UTC, datetime, timedelta

    with engine.begin() as conn:
        (warm_up,) = queue.create_jobs(conn, [NewJob(kind="noop", priority=0)])
        (slow,) = queue.create_jobs(conn, [NewJob(kind="simulate", payload={"seconds": 120},
                                                  priority=1)])
        mates = queue.create_jobs(conn, [NewJob(kind="noop", priority=2)] * 5)
    fleet = PollerFleet(database_url, 1, invocation_seconds=60,
                        env={"BATCH_SIZE": "10", "LEASE_SECONDS": "30"})
    fleet.keep_up()
    try:
        deadline = time.monotonic() + 60
        while True:  # until the batch is claimed and the slow job runs
            assert time.monotonic() < deadline, counts(engine)
            with engine.connect() as conn:
                running = conn.execute(text(
                    "SELECT count(*) FROM jobs WHERE progress = 'RUNNING'")).scalar_one()
            if running == 6:
                break
            time.sleep(0.05)
        fleet.processes[0].kill()  # SIGKILL: no finally, no release
        fleet.processes[0].wait(timeout=30)
    finally:
        fleet.stop()

    with engine.begin() as conn:
        recovered = queue.recover_orphans(conn, now=datetime.now(UTC) + timedelta(minutes=5))
        jobs = {job.job_id: job for job in queue.list_jobs(conn)}
    assert recovered.requeued == [slow]
    assert sorted(recovered.unstarted) == sorted(mates)
    assert jobs[warm_up].progress.value == "COMPLETED"
    assert (jobs[slow].progress.value, jobs[slow].attempts) == ("QUEUED", 1)
    assert {(jobs[m].progress.value, jobs[m].attempts) for m in mates} == {("QUEUED", 0)}
    assert jobs[slow].attempt_history[-1]["outcome"] == "lease_expired"
    assert all(jobs[m].attempt_history == [] for m in mates)

    from jobworker.poller.clock import Budget
    from jobworker.poller.loop import PollerOptions, run_poller
    from tests.fake_clock import FakeClock

    with engine.begin() as conn:  # the slow one is not what this test is about
        queue.cancel_job(conn, slow)
    summary = run_poller(engine, PollerOptions(owner="next", idle_exit_seconds=0.1),
                         Budget.seconds(FakeClock(), 10))
    assert summary.completed == 5
    with engine.connect() as conn:
        assert {queue.get_job(conn, m).attempts for m in mates} == {1}
