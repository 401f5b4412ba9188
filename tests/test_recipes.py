"""The seed's monitoring recipes as commands, run as a user runs them: ``jobworker <recipe>``
in its own process against DATABASE_URL, read back as JSON or as the table people see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob
from jobworker.queue.errors import LeaseLost

ROOT = Path(__file__).resolve().parents[1]


def recipe(*args: str, env: dict[str, str], status: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "jobworker.dev.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == status, (done.stdout, done.stderr)
    return done


def recipe_json(*args: str, env: dict[str, str]) -> Any:
    return json.loads(recipe(*args, "--json", env=env).stdout)


@pytest.fixture
def env(engine: Engine, database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "POWERTOOLS_LOG_LEVEL": "WARNING"}


def claimed_job(engine: Engine, *, lease_seconds: float,
                started_minutes_ago: float = 0) -> tuple[UUID, int]:
    """A job claimed by worker "w-1", ``started_minutes_ago`` with a lease of ``lease_seconds``
    from then; returns its id and the claim's fencing token."""
    start = datetime.now(UTC) - timedelta(minutes=started_minutes_ago)
    with engine.begin() as conn:
        job, _ = queue.create_job(conn, NewJob(kind="noop"), enqueue=True, now=start)
        (claimed,) = queue.claim_batch(conn, owner="w-1", limit=1, lease_seconds=lease_seconds,
                                       now=start)
    return job.job_id, claimed.token


def running_job(engine: Engine, *, lease_seconds: float, started_minutes_ago: float = 0) -> UUID:
    return claimed_job(engine, lease_seconds=lease_seconds,
                       started_minutes_ago=started_minutes_ago)[0]


def progress_of(engine: Engine, job_id: UUID) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT progress::text FROM jobs WHERE job_id = :id"),
                                {"id": job_id}).scalar_one())


def test_stats__counts_equal_the_database(engine: Engine, env: dict[str, str]) -> None:
    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob(kind="noop")] * 3, enqueue=True)
        queue.create_jobs(conn, [NewJob(kind="noop")] * 2, enqueue=False)
        truth = dict(conn.execute(text(
            "SELECT progress::text, count(*) FROM jobs GROUP BY progress")).all())
    answer = recipe_json("stats", env=env)
    assert {k: v for k, v in answer["counts"].items() if v} == truth
    assert answer["queue_depth"] == 3
    assert answer["oldest_queued_age_seconds"] >= 0
    table = recipe("stats", env=env).stdout
    assert "QUEUED" in table
    assert "oldest QUEUED job:" in table


def test_jobs__newest_first_filtered_by_progress_and_limited(engine: Engine,
                                                             env: dict[str, str]) -> None:
    with engine.begin() as conn:
        queued = queue.create_jobs(conn, [NewJob(kind="noop")] * 4, enqueue=True)
        queue.create_jobs(conn, [NewJob(kind="noop")], enqueue=False)
    answer = recipe_json("jobs", "--progress", "queued", "--limit", "3", env=env)
    assert len(answer) == 3
    assert {row["progress"] for row in answer} == {"QUEUED"}
    assert {row["job_id"] for row in answer} <= {str(job_id) for job_id in queued}
    assert [row["created_at"] for row in answer] == sorted(
        (row["created_at"] for row in answer), reverse=True)
    header = recipe("jobs", env=env).stdout.splitlines()[0]
    assert header.split()[:3] == ["job_id", "kind", "progress"]


def test_stuck__lists_jobs_running_longer_than_the_minutes(engine: Engine,
                                                           env: dict[str, str]) -> None:
    old = running_job(engine, lease_seconds=60, started_minutes_ago=45)
    running_job(engine, lease_seconds=600, started_minutes_ago=1)
    answer = recipe_json("stuck", "--minutes", "30", env=env)
    assert [row["job_id"] for row in answer] == [str(old)]
    assert answer[0]["lease_expired"] is True
    assert answer[0]["minutes_running"] >= 45
    assert "no job has been RUNNING for more than 60 minutes" in recipe(
        "stuck", "--minutes", "60", env=env).stdout


def test_requeue__refuses_a_live_lease_without_force(engine: Engine, env: dict[str, str]) -> None:
    job_id = running_job(engine, lease_seconds=600)
    done = recipe("requeue", str(job_id), env=env, status=1)
    assert "lease has not expired" in done.stderr
    assert progress_of(engine, job_id) == "RUNNING"


def test_requeue__expired_lease_goes_back_to_the_queue_and_says_so(engine: Engine,
                                                                  env: dict[str, str]) -> None:
    job_id = running_job(engine, lease_seconds=1, started_minutes_ago=5)
    done = recipe("requeue", str(job_id), env=env)
    assert "its lease had expired" in done.stdout
    assert "now QUEUED" in done.stdout
    with engine.connect() as conn:
        job = queue.get_job(conn, job_id)
    assert job.progress.value == "QUEUED"
    assert job.lease_owner is None
    assert job.attempt_history[-1]["outcome"] == "requeued_by_hand"


def test_requeue__force_takes_a_live_lease_and_fences_the_old_worker(
        engine: Engine, env: dict[str, str]) -> None:
    job_id, token = claimed_job(engine, lease_seconds=600)
    done = recipe("requeue", str(job_id), "--force", env=env)
    assert "--force" in done.stdout
    assert "refused" in done.stdout
    assert progress_of(engine, job_id) == "QUEUED"
    with engine.begin() as conn, pytest.raises(LeaseLost):
        queue.complete_job(conn, owner="w-1", job_id=job_id, token=token)


def test_requeue__a_job_that_is_not_running_is_refused(engine: Engine,
                                                       env: dict[str, str]) -> None:
    with engine.begin() as conn:
        job, _ = queue.create_job(conn, NewJob(kind="noop"), enqueue=True)
    done = recipe("requeue", str(job.job_id), "--force", env=env, status=1)
    assert "it is QUEUED" in done.stderr


def test_enqueue_then_cancel__move_the_job_and_print_it(engine: Engine,
                                                        env: dict[str, str]) -> None:
    with engine.begin() as conn:
        job, _ = queue.create_job(conn, NewJob(kind="noop",
                                               run_at=datetime.now(UTC) + timedelta(hours=1)))
    assert recipe_json("enqueue", str(job.job_id), env=env)["progress"] == "QUEUED"
    assert progress_of(engine, job.job_id) == "QUEUED"
    assert "is now CANCELLED" in recipe("cancel", str(job.job_id), env=env).stdout
    assert progress_of(engine, job.job_id) == "CANCELLED"
    assert "cannot cancel" in recipe("cancel", str(job.job_id), env=env, status=1).stderr


def test_unknown_job__exits_1_naming_it(env: dict[str, str]) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    assert f"job {missing} does not exist" in recipe("cancel", missing, env=env,
                                                     status=1).stderr


def test_without_a_database__says_how_to_get_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = recipe("stats", "--data-dir", str(tmp_path / "none"), env=env, status=1)
    assert "set DATABASE_URL, or start `jobworker dev`" in done.stderr
