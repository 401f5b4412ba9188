"""The use cases the Lambda handlers call: one function per thing a handler does.

Each opens its own transaction(s) on the process's engine; a job the API accepted is
committed before the function returns, so before the HTTP response goes out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from jobworker import queue
from jobworker.api.http import InvalidRequest
from jobworker.api.models import JobRequest
from jobworker.aws.kick import kick_poller
from jobworker.aws.runtime import get_engine, get_settings
from jobworker.kinds import Limits, admission_problems
from jobworker.queue import Job, QueueStats
from jobworker.queue.progress import Progress

log = logging.getLogger("jobworker.service")


def request_hash(body: Mapping[str, Any]) -> str:
    """Fingerprint of a request body, independent of key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_job(request: JobRequest, *, enqueue: bool, idempotency_key: str | None = None,
               request_body: Mapping[str, Any] | None = None,
               payload_field: str = "body.payload") -> tuple[Job, bool]:
    """Create a job (and enqueue it, in the same transaction); returns ``(job, created)``.

    With a key, the fingerprint of ``request_body`` (default: the request) is stored beside
    it, so a replay with another body is refused instead of answered with this job. A job
    the poller could never run is refused first (InvalidRequest, naming fields under
    ``payload_field``, where the request carries the payload).
    """
    refuse_what_the_poller_cannot_run([(payload_field, request)])
    body = request_body if request_body is not None else request.model_dump(mode="json")
    new = request.new_job(get_settings().max_attempts, idempotency_key=idempotency_key,
                          request_hash=request_hash(body) if idempotency_key is not None
                          else None)
    with get_engine().connect() as conn:  # one statement, committed before the answer
        job, created = queue.create_job(conn, new, enqueue=enqueue, commit=True)
    if created and enqueue:
        kick_poller()
    return job, created


def submit_jobs(requests: Sequence[JobRequest]) -> list[UUID]:
    """Create and enqueue many jobs in one transaction, each with every field it asked for;
    none if the poller could never run one of them (InvalidRequest naming each)."""
    refuse_what_the_poller_cannot_run(
        (f"body.jobs.{index}.payload", request) for index, request in enumerate(requests))
    default_max_attempts = get_settings().max_attempts
    with get_engine().begin() as conn:
        ids = queue.create_jobs(conn, [item.new_job(default_max_attempts) for item in requests],
                                enqueue=True)
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


def finished_per_minute(*, since: datetime) -> list[queue.FinishedMinute]:
    with get_engine().connect() as conn:
        return queue.finished_per_minute(conn, since=since)


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


def refuse_what_the_poller_cannot_run(requests: Iterable[tuple[str, JobRequest]]) -> None:
    """Every way a job enters runs its kind's admission check against this deployment's
    poller (``POLLER_MEMORY_MB``): a job it could never run would fail on every attempt (a
    route job too large for its memory kills the poller each time). Raises InvalidRequest
    naming each field at fault, under the field that carries the payload."""
    limits = Limits(poller_memory_mb=get_settings().poller_memory_mb)
    problems = [
        dataclasses.replace(problem, field=f"{payload_field}.{problem.field}")
        for payload_field, request in requests
        for problem in admission_problems(request.kind, request.typed_payload, limits)
    ]
    if problems:
        raise InvalidRequest(problems)


def job_routes(job_id: UUID, *, geojson: bool) -> dict[str, Any]:
    from jobworker.routes.view import job_routes as read

    return read(get_engine(), job_id, geojson=geojson)
