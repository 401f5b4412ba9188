"""The use cases the Lambda handlers call: one function per thing a handler does.

Each opens its own transaction(s) on the process's engine; a job the API accepted is
committed before the function returns, so before the HTTP response goes out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from jobworker import queue
from jobworker.kick import kick_poller
from jobworker.progress import Progress
from jobworker.queue import Job, NewJob, QueueStats
from jobworker.runtime import get_engine, get_settings
from jobworker.sweeper import SweepSummary, sweep
from jobworker.worker import Budget, PollerOptions, PollSummary, run_poller

log = logging.getLogger("jobworker.service")


def request_hash(body: Mapping[str, Any]) -> str:
    """Fingerprint of a request body, independent of key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_job(
    *,
    kind: str,
    payload: Mapping[str, Any],
    enqueue: bool,
    idempotency_key: str | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    run_at: datetime | None = None,
    request_body: Mapping[str, Any] | None = None,
) -> tuple[Job, bool]:
    """Create a job (and enqueue it, in the same transaction); returns ``(job, created)``."""
    new = NewJob(
        kind=kind,
        payload=payload,
        priority=priority,
        max_attempts=max_attempts or get_settings().max_attempts,
        run_at=run_at,
        idempotency_key=idempotency_key,
        request_hash=request_hash(request_body if request_body is not None else payload)
        if idempotency_key
        else None,
    )
    with get_engine().begin() as conn:
        job, created = queue.create_job(conn, new, enqueue=enqueue)
    if created and enqueue:
        kick_poller()
    return job, created


def submit_jobs(jobs: Sequence[NewJob]) -> list[UUID]:
    """Create and enqueue many jobs in one transaction."""
    with get_engine().begin() as conn:
        ids = queue.create_jobs(conn, jobs, enqueue=True, max_attempts=get_settings().max_attempts)
    kick_poller()
    return ids


def enqueue_job(job_id: UUID) -> Job:
    with get_engine().begin() as conn:
        job = queue.enqueue_job(conn, job_id)
    kick_poller()
    return job


def get_job(job_id: UUID) -> Job:
    with get_engine().connect() as conn:
        return queue.get_job(conn, job_id)


def list_jobs(*, progress: Progress | None, kind: str | None, limit: int,
              before: tuple[datetime, UUID] | None) -> list[Job]:
    with get_engine().connect() as conn:
        return queue.list_jobs(conn, progress=progress, kind=kind, limit=limit, before=before)


def queue_stats() -> QueueStats:
    with get_engine().connect() as conn:
        return queue.queue_stats(conn)


def cancel_job(job_id: UUID) -> Job:
    with get_engine().begin() as conn:
        return queue.cancel_job(conn, job_id)


def retry_job(job_id: UUID) -> Job:
    with get_engine().begin() as conn:
        job = queue.retry_job(conn, job_id)
    kick_poller()
    return job


def check_database() -> None:
    """Raises when Postgres cannot be reached."""
    from sqlalchemy import text

    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def poll(remaining_ms: Callable[[], int], invocation_id: str) -> PollSummary:
    """One poller invocation, ending ``safety_margin_seconds`` (at most 10% of the time
    available) before the Lambda's own limit; ``remaining_ms`` is the context's clock."""
    config = get_settings()
    margin = min(config.safety_margin_seconds, remaining_ms() / 1000 * 0.1)
    options = PollerOptions(
        owner=f"poller:{invocation_id}",
        batch_size=config.batch_size,
        lease_seconds=config.lease_seconds,
        poll_interval=config.poll_interval,
        job_timeout_seconds=config.job_timeout_minutes * 60,
        backoff_base_seconds=config.backoff_base_seconds,
        backoff_cap_seconds=config.backoff_cap_seconds,
        idle_exit_seconds=config.poller_idle_exit_seconds,
    )
    budget = Budget(lambda: remaining_ms() / 1000 - margin)
    return run_poller(get_engine(), options, budget)


def sweep_once() -> SweepSummary:
    from jobworker.errors import is_database_unavailable

    config = get_settings()
    try:
        return sweep(
            get_engine(),
            job_timeout_minutes=config.job_timeout_minutes,
            enable_orphan_recovery=config.enable_orphan_recovery,
            retention_days=config.retention_days,
        )
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        log.error("Database unavailable; sweep skipped", exc_info=True)
        return SweepSummary(error=f"database unavailable: {type(exc).__name__}")


def job_routes(job_id: UUID, *, geojson: bool) -> dict[str, Any]:
    """The route group of a COMPLETED generate_routes job, as JSON or GeoJSON."""
    from jobworker.errors import RoutesNotAvailable
    from jobworker.route_store import load_plan
    from jobworker.routing.geojson import plan_to_geojson
    from jobworker.routing.models import Depot

    with get_engine().connect() as conn:
        job = queue.get_job(conn, job_id)
        stored = load_plan(conn, job.route_group_id) if job.route_group_id else None
    if stored is None:
        raise RoutesNotAvailable(job_id, job.kind, job.progress)
    if geojson:
        return plan_to_geojson(stored.plan, Depot(lat=stored.depot_lat, lon=stored.depot_lon))
    return {
        "job_id": str(job_id),
        "route_group_id": str(stored.route_group_id),
        "created_at": stored.created_at.isoformat(),
        "depot": {"lat": stored.depot_lat, "lon": stored.depot_lon},
        **stored.plan.to_dict(),
    }
