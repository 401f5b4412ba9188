"""The sweeper Lambda: one bounded pass that fails over-long jobs, recovers orphans, prunes."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob
from jobworker.queue.progress import Progress


def running_job(engine: Engine, *, started_minutes_ago: float, lease_left_seconds: float,
                attempts: int = 1, max_attempts: int = 3) -> UUID:
    """Fabricate a RUNNING job as a worker would have left it (no sleeping in tests)."""
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")], max_attempts=max_attempts)
        conn.execute(text(
            "UPDATE jobs SET progress = 'RUNNING', attempts = :attempts, lease_owner = 'gone', "
            "attempt_started = true, "
            "started_at = now() - make_interval(secs => :ago * 60), "
            "lease_expires_at = now() + make_interval(secs => :left) WHERE job_id = :id"),
            {"attempts": attempts, "ago": started_minutes_ago, "left": lease_left_seconds,
             "id": job_id})
    return job_id


def job(engine: Engine, job_id: UUID) -> queue.Job:
    with engine.connect() as conn:
        return queue.get_job(conn, job_id)


def emitted_metrics(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            return dict(json.loads(line))
    raise AssertionError("no EMF metrics document was printed")


def test_sweeper__recovers_expired_leases_and_fails_exhausted_ones(
    engine: Engine, handlers: dict[str, Any], capsys: pytest.CaptureFixture[str],
) -> None:
    orphan = running_job(engine, started_minutes_ago=2, lease_left_seconds=-10)
    poison = running_job(engine, started_minutes_ago=2, lease_left_seconds=-10, attempts=3)
    healthy = running_job(engine, started_minutes_ago=2, lease_left_seconds=50)
    summary = handlers["sweeper"]()
    assert (summary["recovered"], summary["failed_orphans"]) == (1, 1)
    assert job(engine, orphan).progress is Progress.QUEUED
    assert job(engine, poison).progress is Progress.FAILED
    assert job(engine, healthy).progress is Progress.RUNNING
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["JobsRecovered"] == [1.0]
    assert metrics["JobsFailed"] == [1.0]
    assert metrics["QueueDepth"] == [1.0]


def test_sweeper__fails_jobs_running_longer_than_the_timeout(
    engine: Engine, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOB_TIMEOUT_MINUTES", "30")
    too_long = running_job(engine, started_minutes_ago=31, lease_left_seconds=50)
    fine = running_job(engine, started_minutes_ago=29, lease_left_seconds=50)
    summary = handlers["sweeper"]()
    assert summary["timed_out"] == 1
    failed = job(engine, too_long)
    assert failed.progress is Progress.FAILED
    assert failed.error == "timed out: RUNNING for longer than job_timeout_minutes (30 min)"
    assert job(engine, fine).progress is Progress.RUNNING


def test_sweeper__orphan_recovery_can_be_switched_off(
    engine: Engine, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENABLE_ORPHAN_RECOVERY", "false")
    orphan = running_job(engine, started_minutes_ago=2, lease_left_seconds=-10)
    summary = handlers["sweeper"]()
    assert summary["recovered"] == 0
    assert job(engine, orphan).progress is Progress.RUNNING


def test_sweeper__prunes_old_finished_jobs_and_keeps_route_groups(
    engine: Engine, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "14")
    with engine.begin() as conn:
        old, recent = queue.create_jobs(conn, [NewJob(kind="noop")] * 2)
        group = conn.execute(text(
            "INSERT INTO route_groups (job_id, depot_lat, depot_lon, total_distance_km, "
            "total_duration_minutes, vehicles_used, locations_served, solver) "
            "VALUES (:id, 0, 0, 0, 0, 0, 0, '{}') RETURNING route_group_id"),
            {"id": old}).scalar_one()
        conn.execute(text(
            "UPDATE jobs SET progress = 'COMPLETED', started_at = now(), route_group_id = :g, "
            "finished_at = now() - interval '15 days' WHERE job_id = :id"),
            {"id": old, "g": group})
        conn.execute(text("UPDATE jobs SET progress = 'COMPLETED', started_at = now(), "
                          "finished_at = now() WHERE job_id = :id"), {"id": recent})
    summary = handlers["sweeper"]()
    assert summary["pruned"] == 1
    with engine.connect() as conn:
        left = set(conn.execute(text("SELECT job_id FROM jobs")).scalars())
        groups = conn.execute(text("SELECT count(*) FROM route_groups")).scalar_one()
    assert left == {recent}
    assert groups == 1


def test_sweeper__second_pass_changes_nothing(engine: Engine, handlers: dict[str, Any]) -> None:
    running_job(engine, started_minutes_ago=2, lease_left_seconds=-10)
    first = handlers["sweeper"]()
    second = handlers["sweeper"]()
    assert first["recovered"] == 1
    assert (second["recovered"], second["timed_out"], second["failed_orphans"]) == (0, 0, 0)


def test_sweeper__database_unreachable_ends_cleanly_with_a_metric(
    handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from jobworker.aws import runtime

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@/postgres?host=/tmp/jw-no-server")
    runtime.reset()
    summary = handlers["sweeper"]()
    assert summary["error"].startswith("database unavailable")
    assert emitted_metrics(capsys.readouterr().out)["DatabaseUnavailable"] == [1.0]
