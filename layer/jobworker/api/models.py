"""The API's request and response bodies (pydantic), shared by validation and OpenAPI."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Self
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

import jobworker.routes.job  # noqa: F401  (registers generate_routes, the default kind)
from jobworker.api.http import InvalidCursor
from jobworker.api.public import PublicForm
from jobworker.kinds import kind_spec
from jobworker.problems import describe, field_problems
from jobworker.queue import DEFAULT_KIND, FinishedMinute, Job, NewJob, QueueStats
from jobworker.queue.errors import PermanentJobError
from jobworker.queue.progress import Progress
from jobworker.routes.plan import PlannedRoute, SolverInfo, UnassignedStop

MAX_BATCH = 1000
EARLIEST_RUN_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_DELAY = timedelta(days=366)


class JobRequest(BaseModel):
    """A job of any registered kind. Its payload is validated against the kind's model."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(DEFAULT_KIND, min_length=1, max_length=100, examples=["generate_routes"])
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(0, ge=-1000, le=1000, description="Lower runs first")
    max_attempts: int | None = Field(None, ge=1, le=100,
                                     description="Default: the service's MAX_ATTEMPTS")
    run_at: AwareDatetime | None = Field(None, description="Not before this time (with timezone)")
    # The payload as its kind's model, kept from validation for the admission check.
    _typed_payload: BaseModel | None = PrivateAttr(None)

    def __repr__(self) -> str:
        # Short on purpose: Powertools formats each route's arguments for a debug line on
        # every request (see GenerateRoutesRequest.__repr__); a payload can be large.
        return f"{type(self).__name__}(kind={self.kind!r}, {len(self.payload)} payload keys)"

    @classmethod
    def of_payload(cls, kind: str, payload: BaseModel) -> JobRequest:
        """A request with the service's defaults for a payload already validated as its
        kind's model (``POST /jobs/generate``: the body is the payload)."""
        request = cls.model_construct(
            kind=kind, payload=payload.model_dump(mode="json", exclude_unset=True), priority=0,
            max_attempts=None, run_at=None)
        request._typed_payload = payload
        return request

    @property
    def typed_payload(self) -> BaseModel | None:
        """The payload as its kind's model; None for a kind that declares none."""
        return self._typed_payload

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
    def _payload_fits_kind(self) -> Self:
        try:
            spec = kind_spec(self.kind)
        except PermanentJobError as exc:
            raise ValueError(str(exc)) from None
        if spec.payload_model is not None:
            try:
                self._typed_payload = spec.payload_model.model_validate(self.payload)
            except ValidationError as exc:
                raise ValueError(f"payload does not fit kind {self.kind!r}: "
                                 + describe(field_problems(exc.errors()))) from None
        return self

    def new_job(self, default_max_attempts: int, idempotency_key: str | None = None,
                request_hash: str | None = None) -> NewJob:
        """The job to insert: every field of the request, the service's defaults for the rest."""
        return NewJob(kind=self.kind, payload=self.payload, priority=self.priority,
                      max_attempts=self.max_attempts or default_max_attempts, run_at=self.run_at,
                      idempotency_key=idempotency_key, request_hash=request_hash)


class CreateJobRequest(JobRequest):
    """``POST /jobs``: one job, PENDING until enqueued."""


class BatchItem(JobRequest):
    """One job of ``POST /jobs/batch``; queued at once, not before its ``run_at``."""


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)

    def __repr__(self) -> str:  # short: see JobRequest.__repr__
        return f"BatchRequest({len(self.jobs)} jobs)"


class BatchResponse(BaseModel):
    count: int
    job_ids: list[UUID]


class AttemptView(BaseModel):
    attempt: int
    outcome: str
    owner: str | None = Field(None, description="The worker, by its public name")
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class JobView(BaseModel):
    """A job as the API shows it: the row, less what stays private (``HIDDEN``), with the
    worker names and error texts in their public form (see :mod:`jobworker.api.public`)."""

    HIDDEN: ClassVar[frozenset[str]] = frozenset({"payload", "idempotency_key", "request_hash"})

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
    lease_owner: str | None = Field(description="The worker holding the job, while RUNNING")
    lease_expires_at: datetime | None
    error: str | None = Field(description="Why the job failed or was cancelled")
    result: Any
    attempt_history: list[AttemptView]
    links: dict[str, str] = Field(description="self, and what the job's kind serves (routes)")

    @model_validator(mode="before")
    @classmethod
    def _from_job(cls, data: Any) -> Any:
        if not isinstance(data, Job):
            return data
        public = PublicForm.of(data)
        values = {name: getattr(data, name) for name in cls.model_fields if hasattr(data, name)}
        values.update(
            lease_owner=public.owner(data.lease_owner), error=public.reason(data.error),
            attempt_history=[public.attempt(entry) for entry in data.attempt_history],
            links=links_of(data))
        return values

    @classmethod
    def of(cls, job: Job) -> JobView:
        return cls.model_validate(job)


def links_of(job: Job) -> dict[str, str]:
    """``self``, what the job's kind declares, and ``routes`` whenever the job has a route
    group (whatever its kind: a row written by other means still shows its routes)."""
    try:
        declared = kind_spec(job.kind).links
    except PermanentJobError:  # a kind this process does not know (written by raw SQL)
        declared = ()
    names = {*declared, *(("routes",) if job.route_group_id is not None else ())}
    return {"self": f"/jobs/{job.job_id}"} | {name: f"/jobs/{job.job_id}/{name}"
                                              for name in sorted(names)}


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


class PayloadView(BaseModel):
    """What a job was asked to do (left out of JobView: it can be large)."""

    job_id: UUID
    kind: str
    payload: dict[str, Any]


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
    """Raises InvalidCursor for anything that is not a cursor this API handed out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, job_id = raw.split("|")
        return datetime.fromisoformat(created_at), UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor from None


class ErrorDetail(BaseModel):
    """One thing wrong: a field and why, or facts about the refusal (``current_progress``...)."""

    model_config = ConfigDict(extra="allow")

    field: str | None = None
    message: str | None = None
    type: str | None = None


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorEnvelope(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    error: ErrorBody


class LatLon(BaseModel):
    lat: float
    lon: float


class RoutesView(BaseModel):
    """A COMPLETED route job's route group. Typed from the plan's own records where they exist;
    fields the plan adds later pass through (``extra``)."""

    model_config = ConfigDict(extra="allow")

    job_id: UUID
    route_group_id: UUID
    created_at: datetime
    depot: LatLon
    total_distance_km: float
    total_duration_minutes: float
    total_cost: float = 0.0
    vehicles_used: int
    locations_served: int
    locations_unassigned: int = 0
    stopped_early: bool = False
    routes: list[PlannedRoute]
    unassigned: list[UnassignedStop] = Field(default_factory=list,
                                             description="Stops left out, each with its reason")
    travel: dict[str, Any] = Field(default_factory=dict,
                                   description="How travel was measured: provider, fallback")
    depots: list[dict[str, Any]] = Field(default_factory=list)
    solver: SolverInfo
    notes: list[str] = Field(default_factory=list)


class Feature(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    geometry: dict[str, Any]
    properties: dict[str, Any]


class FeatureCollection(BaseModel):
    """The route group as GeoJSON (RFC 7946): depots, per route its line and stops, then the
    stops left out; the group's totals and travel as ``properties``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[Feature]
