"""The API's request and response bodies (pydantic), shared by validation and OpenAPI."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobworker.kinds import kind_spec
from jobworker.queue import DEFAULT_KIND, FinishedMinute, Job, QueueStats
from jobworker.queue.errors import PermanentJobError
from jobworker.queue.progress import Progress

MAX_BATCH = 1000
EARLIEST_RUN_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_DELAY = timedelta(days=366)


class CreateJobRequest(BaseModel):
    """A job of any registered kind. Its payload is validated against the kind's model."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(DEFAULT_KIND, min_length=1, max_length=100, examples=["generate_routes"])
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(0, ge=-1000, le=1000, description="Lower runs first")
    max_attempts: int | None = Field(None, ge=1, le=100)
    run_at: AwareDatetime | None = Field(None, description="Not before this time (with timezone)")

    @field_validator("run_at")
    @classmethod
    def _run_at_in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        latest = datetime.now(UTC) + MAX_DELAY
        if not EARLIEST_RUN_AT <= value <= latest:
            raise ValueError(f"run_at must lie between {EARLIEST_RUN_AT:%Y-%m-%d} and one year "
                             "from now")
        return value

    @model_validator(mode="after")
    def _payload_fits_kind(self) -> CreateJobRequest:
        try:
            spec = kind_spec(self.kind)
        except PermanentJobError as exc:
            raise ValueError(str(exc)) from None
        if spec.payload_model is not None:
            try:
                spec.payload_model.model_validate(self.payload)
            except ValidationError as exc:
                raise ValueError(f"payload does not fit kind {self.kind!r}: "
                                 + describe_errors(exc.errors())) from None
        return self


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[CreateJobRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    count: int
    job_ids: list[UUID]


class AttemptView(BaseModel):
    attempt: int
    outcome: str
    owner: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class JobView(BaseModel):
    """A job as the API shows it (the payload only when asked for: it can be large)."""

    job_id: UUID
    kind: str
    progress: Progress
    priority: int
    attempts: int
    max_attempts: int
    run_at: datetime
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    route_group_id: UUID | None
    cancel_requested: bool
    error: str | None
    result: Any
    attempt_history: list[AttemptView]
    links: dict[str, str]
    lease_owner: str | None = Field(None, description="The worker running it (RUNNING only)")
    lease_expires_at: datetime | None = None
    payload: dict[str, Any] | None = Field(None, description="With ?include_payload=true")

    @classmethod
    def of(cls, job: Job, *, with_payload: bool = False) -> JobView:
        links = {"self": f"/jobs/{job.job_id}"}
        if job.kind == DEFAULT_KIND:
            links["routes"] = f"/jobs/{job.job_id}/routes"
        return cls(
            job_id=job.job_id, kind=job.kind, progress=job.progress, priority=job.priority,
            attempts=job.attempts, max_attempts=job.max_attempts, run_at=job.run_at,
            created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
            updated_at=job.updated_at, route_group_id=job.route_group_id,
            cancel_requested=job.cancel_requested, error=job.error, result=job.result,
            attempt_history=[AttemptView.model_validate(item) for item in job.attempt_history],
            links=links, lease_owner=job.lease_owner, lease_expires_at=job.lease_expires_at,
            payload=job.payload if with_payload else None,
        )


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


class StatsView(BaseModel):
    counts: dict[str, int]
    queue_depth: int
    oldest_queued_age_seconds: float | None

    @classmethod
    def of(cls, stats: QueueStats) -> StatsView:
        return cls(
            counts={progress.value: count for progress, count in stats.counts.items()},
            queue_depth=stats.queue_depth,
            oldest_queued_age_seconds=stats.oldest_queued_age_seconds,
        )


class MinuteCounts(BaseModel):
    minute: datetime = Field(description="Start of the minute (UTC)")
    completed: int = 0
    failed: int = 0
    cancelled: int = 0


class ThroughputView(BaseModel):
    """Jobs finished per minute (from ``finished_at``); minutes in which none ended are absent."""

    since: datetime
    minutes: list[MinuteCounts]

    @classmethod
    def of(cls, since: datetime, rows: list[FinishedMinute]) -> ThroughputView:
        by_minute: dict[datetime, MinuteCounts] = {}
        for row in rows:
            counts = by_minute.setdefault(row.minute, MinuteCounts(minute=row.minute))
            setattr(counts, row.progress.value.lower(), row.jobs)
        return cls(since=since, minutes=list(by_minute.values()))


class HealthView(BaseModel):
    status: str
    database: str


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Raises ValueError for anything that is not a cursor this API handed out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, job_id = raw.split("|")
        return datetime.fromisoformat(created_at), UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("cursor is not one this API returned") from None


def describe_errors(errors: Any) -> str:
    """pydantic errors as one readable line: ``field.path: message; ...``."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = error.get("msg") or error.get("type", "invalid")
        parts.append(f"{where}: {message}" if where else str(message))
    return "; ".join(parts)
