"""The sweeper Lambda: one bounded pass that fails over-long jobs, recovers orphans, prunes."""

from __future__ import annotations

import importlib
import json
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob
from jobworker.queue.progress import Progress

# The module (the package's name `sweep` is its function).
sweep_module = importlib.import_module("jobworker.sweeper.sweep")


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


def finished_jobs(engine: Engine, count: int, *, days_ago: float) -> list[UUID]:
    """``count`` COMPLETED jobs that finished ``days_ago`` days ago."""
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, [NewJob(kind="noop")] * count)
        conn.execute(text(
            "UPDATE jobs SET progress = 'COMPLETED', started_at = now(), finished_at = now() "
            "- make_interval(secs => :ago * 86400) WHERE job_id = ANY(:ids)"),
            {"ago": days_ago, "ids": ids})
    return ids


def remaining_jobs(engine: Engine) -> set[UUID]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT job_id FROM jobs")).scalars())


class SteppingClock:
    """A clock that moves one second every time it is read: time is an input."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_sweeper__prunes_a_backlog_of_many_batches_in_one_pass(
    engine: Engine, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep_module, "PRUNE_BATCH", 7)
    finished_jobs(engine, 30, days_ago=15)
    recent = finished_jobs(engine, 1, days_ago=1)
    summary = handlers["sweeper"]()
    assert (summary["pruned"], summary["prune_complete"]) == (30, True)
    assert summary["prune_batches"] == 5 + 1  # 7+7+7+7+2 jobs, then one of route groups
    assert remaining_jobs(engine) == set(recent)


def test_sweep__out_of_time_stops_between_batches_and_the_next_pass_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweep_module, "PRUNE_BATCH", 7)
    finished_jobs(engine, 30, days_ago=15)
    rules = {"job_timeout_minutes": 30, "enable_orphan_recovery": True,
             "retention_days": 14, "route_retention_days": 14}
    clock = SteppingClock()
    # Batch 1 starts at 1 and ends at 2; batch 2 runs from 3 to 4; a third, started at 5,
    # would end after the deadline (batches take a second on this clock): the pass stops.
    first = sweep_module.sweep(engine, **rules, clock=clock, deadline=5.5)
    assert (first.pruned, first.prune_batches, first.prune_complete) == (14, 2, False)
    assert len(remaining_jobs(engine)) == 16
    second = sweep_module.sweep(engine, **rules, clock=SteppingClock())
    assert (second.pruned, second.prune_complete) == (16, True)
    assert remaining_jobs(engine) == set()


def test_sweeper__reports_pruning_that_ran_out_of_time(
    engine: Engine, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    finished_jobs(engine, 3, days_ago=15)
    monkeypatch.setenv("SAFETY_MARGIN_SECONDS", "0")
    summary = handlers["sweeper"](seconds=0.001)  # no time left for a single batch
    assert (summary["pruned"], summary["prune_complete"]) == (0, False)
    assert emitted_metrics(capsys.readouterr().out)["PruneIncomplete"] == [1.0]
    assert len(remaining_jobs(engine)) == 3


def route_group(engine: Engine, job_id: UUID | None, *, days_ago: float) -> UUID:
    """A route group made ``days_ago`` days ago by ``job_id``, with one route and one stop."""
    with engine.begin() as conn:
        group: UUID = conn.execute(text(
            "INSERT INTO route_groups (job_id, created_at, depot_lat, depot_lon, "
            "total_distance_km, total_duration_minutes, vehicles_used, locations_served, solver)"
            " VALUES (:job, now() - make_interval(secs => :ago * 86400), 0, 0, 0, 0, 1, 1, '{}')"
            " RETURNING route_group_id"), {"job": job_id, "ago": days_ago}).scalar_one()
        conn.execute(text(
            "INSERT INTO routes VALUES (:g, 1, 1, 1.0, 1.0, 0, 1, 0.5)"), {"g": group})
        conn.execute(text(
            "INSERT INTO route_stops VALUES (:g, 1, 1, 'a', 0, 0, 0, 0, 0, 1, 1, 0.5)"),
            {"g": group})
        if job_id is not None:
            conn.execute(text("UPDATE jobs SET route_group_id = :g WHERE job_id = :id"),
                         {"g": group, "id": job_id})
    return group


def test_sweeper__route_groups_of_pruned_jobs_follow_their_own_retention(
    engine: Engine, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "14")
    monkeypatch.setenv("ROUTE_RETENTION_DAYS", "30")
    pruned_old, pruned_young = finished_jobs(engine, 2, days_ago=15)
    (kept_job,) = finished_jobs(engine, 1, days_ago=1)
    expired = route_group(engine, pruned_old, days_ago=40)
    young = route_group(engine, pruned_young, days_ago=20)
    job_still_there = route_group(engine, kept_job, days_ago=40)
    summary = handlers["sweeper"]()
    assert (summary["pruned"], summary["pruned_route_groups"]) == (2, 1)
    with engine.connect() as conn:
        groups = set(conn.execute(text("SELECT route_group_id FROM route_groups")).scalars())
        routes = set(conn.execute(text("SELECT route_group_id FROM routes")).scalars())
        stops = set(conn.execute(text("SELECT route_group_id FROM route_stops")).scalars())
    assert groups == routes == stops == {young, job_still_there}
    assert expired not in groups
    assert job(engine, kept_job).route_group_id == job_still_there


def test_prune__never_deletes_a_job_queued_again_while_it_runs(engine: Engine) -> None:
    """A retry in flight holds the row: the prune passes it by, and the job lives on QUEUED."""
    import threading

    (retried,) = finished_jobs(engine, 1, days_ago=15)
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET progress = 'FAILED' WHERE job_id = :id"),
                     {"id": retried})
    pruned: list[int] = []
    with engine.connect() as retrying:
        with retrying.begin():
            queue.retry_job(retrying, retried)

            def prune() -> None:
                with engine.begin() as conn:
                    pruned.append(queue.prune_finished(conn, retention_days=14))

            pruner = threading.Thread(target=prune)
            pruner.start()
            pruner.join(2.0)  # a prune that waited for the row would still be waiting here
        pruner.join()  # the retry has committed
    assert pruned == [0]
    assert job(engine, retried).progress is Progress.QUEUED
