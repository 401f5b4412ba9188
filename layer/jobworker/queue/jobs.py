"""Queue operations: every read and state change of ``jobs``, one function each.

The SQL lives in ``sql/queries.sql``; this module binds parameters and turns "no row matched"
into the typed error that says why. Functions take a SQLAlchemy ``Connection`` and run inside
the caller's transaction, so a caller can combine several (create + enqueue, complete + save
results) atomically. ``now`` is optional everywhere: ``None`` means the database clock.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from uuid import UUID

from jobworker.queue.errors import (
    UNAVAILABLE_SQLSTATES,
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    LeaseLost,
    LeaseStillHeld,
)
from jobworker.queue.progress import Progress
from jobworker.queue.rows import Job
from jobworker.queue.sql import SERVER_FUNCTIONS, binary_statement, query
from jobworker.queue.storable import dotted, inspect_json

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection

DEFAULT_KIND = "generate_routes"
# The queue's defaults, defined here once; settings (aws/settings.py) and the poller's options
# take theirs from these. Migration 0001 wrote DEFAULT_MAX_ATTEMPTS into the schema as the
# column default (tests/test_poller_options.py checks they agree).
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_BASE_SECONDS = 5.0
DEFAULT_BACKOFF_CAP_SECONDS = 300.0
JOB_FIELDS = tuple(f.name for f in fields(Job))  # the order of {job_columns}


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a caller asks for; everything else gets the table's defaults."""

    kind: str = DEFAULT_KIND
    payload: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    run_at: datetime | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


class ClaimedJob(NamedTuple):
    """A job this worker now holds a lease on; ``token`` is the fencing token of this claim.

    ``attempt`` is the number of the attempt it runs as (counted in ``attempts`` once it is
    started: ``started`` says the claim already marked it). A tuple straight from the claim's
    rows (a batch can be a thousand jobs); the payload stays JSON text until someone reads
    ``payload`` (decoded anew on each read; the worker hands handlers a ``JobContext``, which
    decodes it once).
    """

    job_id: UUID
    kind: str
    payload_json: str
    attempt: int
    max_attempts: int
    token: int
    started: bool = False

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.payload_json)
        return value


class Completion(NamedTuple):
    job_id: UUID
    token: int
    result: Any = None


Held = tuple[UUID, int]  # (job_id, token): a claim this worker holds


@dataclass(frozen=True, slots=True)
class Flushed:
    """What a completion flush could not do as asked (normally all empty)."""

    lost: set[UUID] = field(default_factory=set)  # completions whose lease was lost
    not_started: set[UUID] = field(default_factory=set)  # starts whose lease was lost
    cancelled: set[UUID] = field(default_factory=set)  # starts refused: cancel requested


@dataclass(frozen=True, slots=True)
class QueueStats:
    counts: dict[Progress, int]
    oldest_queued_age_seconds: float | None

    @property
    def queue_depth(self) -> int:
        return self.counts[Progress.QUEUED]


@dataclass(frozen=True, slots=True)
class FinishedMinute:
    """How many jobs ended in one minute, by how they ended."""

    minute: datetime
    progress: Progress
    jobs: int


@dataclass(frozen=True, slots=True)
class StuckJob:
    job_id: UUID
    kind: str
    lease_owner: str | None
    attempts: int
    max_attempts: int
    started_at: datetime
    lease_expires_at: datetime | None
    minutes_running: float
    lease_expired: bool


@dataclass(frozen=True, slots=True)
class Recovered:
    """Jobs whose lease expired: ``requeued`` had started (an attempt used), ``unstarted``
    had not (back with their attempts intact)."""

    requeued: list[UUID]
    failed: list[UUID]
    unstarted: list[UUID] = field(default_factory=list)
    cancelled: list[UUID] = field(default_factory=list)


# --- creating and enqueueing (the API side) -----------------------------------------------


def create_job(
    conn: Connection, new: NewJob, *, enqueue: bool = False, commit: bool = False,
    now: datetime | None = None,
) -> tuple[Job, bool]:
    """Insert one job, PENDING or (``enqueue``) QUEUED; returns ``(job, created)``.

    With an idempotency key already used by the same request, returns the existing job and
    ``created=False``; used by a different request, raises IdempotencyConflict.

    ``commit=True`` (``conn`` outside a transaction): the insert is its own transaction,
    committed when this returns, in one round trip (no BEGIN, no COMMIT): what a single
    enqueue needs, at about half the cost of an explicit transaction.
    """
    params = {
        "kind": new.kind,
        "progress": (Progress.QUEUED if enqueue else Progress.PENDING).value,
        "payload": json.dumps(new.payload),
        "priority": new.priority,
        "run_at": new.run_at,
        "max_attempts": new.max_attempts,
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
        "now": now,
    }
    if commit:
        created = _committed_job(conn, "job_create", params)
    else:
        row = conn.execute(query("job_create"), params).one_or_none()
        created = None if row is None else Job.from_row(row)
    if created is not None:
        return created, True
    assert new.idempotency_key is not None  # only a key conflict makes the insert a no-op
    by_key = {"idempotency_key": new.idempotency_key}
    found = (_committed_job(conn, "job_get_by_idempotency_key", by_key) if commit
             else Job.from_row(conn.execute(query("job_get_by_idempotency_key"), by_key).one()))
    if found is None:
        raise RuntimeError("the job holding this idempotency key is gone")  # deleted meanwhile
    existing = found
    if existing.request_hash != new.request_hash:
        raise IdempotencyConflict(new.idempotency_key, existing.job_id)
    return existing, False


def _committed_job(conn: Connection, name: str, params: Mapping[str, Any]) -> Job | None:
    """The one job row a statement returns, run as its own transaction (None: no row)."""
    rows = _binary_rows(conn, name, params, commit=True)
    if not rows:
        return None
    # The statement returns {job_columns}: Job's fields, in their order (rows.job_select_list).
    values = dict(zip(JOB_FIELDS, rows[0], strict=True))
    values["progress"] = Progress(values["progress"])
    return Job(**values)


def create_jobs(
    conn: Connection,
    jobs: Sequence[NewJob],
    *,
    enqueue: bool = True,
    max_attempts: int | None = None,
    now: datetime | None = None,
) -> list[UUID]:
    """Bulk insert in one statement (no idempotency keys); returns the new ids in input order.

    Each job keeps its own priority, ``run_at`` and ``max_attempts``; ``max_attempts`` here,
    when given, overrides the latter for the whole batch.
    """
    if not jobs:
        return []
    rows = conn.execute(
        query("job_create_many"),
        {
            "kinds": [job.kind for job in jobs],
            "payloads": [json.dumps(job.payload) for job in jobs],
            "priorities": [job.priority for job in jobs],
            "run_ats": [job.run_at for job in jobs],
            "max_attempts": [max_attempts or job.max_attempts for job in jobs],
            "progress": (Progress.QUEUED if enqueue else Progress.PENDING).value,
            "now": now,
        },
    ).all()
    return [row.job_id for row in rows]


def enqueue_job(conn: Connection, job_id: UUID, *, now: datetime | None = None) -> Job:
    """PENDING -> QUEUED."""
    row = conn.execute(query("job_enqueue"), {"job_id": job_id, "now": now}).one_or_none()
    if row is None:
        _refuse(conn, job_id, "enqueue", {Progress.PENDING})
    return Job.from_row(row)


def cancel_job(conn: Connection, job_id: UUID, *, now: datetime | None = None) -> Job:
    """PENDING/QUEUED -> CANCELLED at once; RUNNING -> cancellation requested."""
    row = conn.execute(query("job_cancel_or_request"), {"job_id": job_id, "now": now}).one_or_none()
    if row is None:
        _refuse(conn, job_id, "cancel", {Progress.PENDING, Progress.QUEUED, Progress.RUNNING})
    return Job.from_row(row)


def requeue_by_hand(conn: Connection, job_id: UUID, *, force: bool = False,
                    now: datetime | None = None) -> Job:
    """RUNNING -> QUEUED for a job whose lease expired (its worker is gone), or any RUNNING job
    with ``force``; LeaseStillHeld while a live lease protects it."""
    row = conn.execute(query("job_requeue_by_hand"),
                       {"job_id": job_id, "force": force, "now": now}).one_or_none()
    if row is not None:
        return Job.from_row(row)
    if get_job(conn, job_id).progress == Progress.RUNNING:
        raise LeaseStillHeld(job_id)
    _refuse(conn, job_id, "requeue", {Progress.RUNNING})
    return None


def retry_job(conn: Connection, job_id: UUID, *, now: datetime | None = None) -> Job:
    """FAILED/CANCELLED -> QUEUED with its attempts reset."""
    row = conn.execute(query("job_retry"), {"job_id": job_id, "now": now}).one_or_none()
    if row is None:
        _refuse(conn, job_id, "retry", {Progress.FAILED, Progress.CANCELLED})
    return Job.from_row(row)


# --- reading ------------------------------------------------------------------------------


def get_job(conn: Connection, job_id: UUID) -> Job:
    row = conn.execute(query("job_get"), {"job_id": job_id}).one_or_none()
    if row is None:
        raise JobNotFound(job_id)
    return Job.from_row(row)


def list_jobs(
    conn: Connection,
    *,
    progress: Progress | None = None,
    kind: str | None = None,
    limit: int = 50,
    before: tuple[datetime, UUID] | None = None,
) -> list[Job]:
    """Newest first. ``before`` is the (created_at, job_id) of the last job of the previous page."""
    rows = conn.execute(
        query("job_list"),
        {
            "progress": progress.value if progress else None,
            "kind": kind,
            "limit": limit,
            "before_created_at": before[0] if before else None,
            "before_job_id": before[1] if before else None,
        },
    ).all()
    return [Job.from_row(row) for row in rows]


def finished_per_minute(conn: Connection, *, since: datetime) -> list[FinishedMinute]:
    """Jobs that ended in each minute from ``since`` on (minutes with none are absent)."""
    rows = conn.execute(query("job_finished_per_minute"), {"since": since})
    return [FinishedMinute(row.minute, Progress(row.progress), row.jobs) for row in rows]


def list_stuck(conn: Connection, *, minutes: float, now: datetime) -> list[StuckJob]:
    """RUNNING jobs started more than ``minutes`` before ``now``, oldest first."""
    rows = conn.execute(query("job_list_stuck"), {
        "started_before": now - timedelta(minutes=minutes), "now": now})
    return [StuckJob(**row._asdict()) for row in rows]


def queue_stats(conn: Connection, *, now: datetime | None = None) -> QueueStats:
    counts = dict.fromkeys(Progress, 0)
    for row in conn.execute(query("job_count_by_progress")):
        counts[Progress(row.progress)] = row.jobs
    return QueueStats(counts=counts,
                      oldest_queued_age_seconds=queued_summary(conn, now=now)[1])


def queued_summary(conn: Connection, *, now: datetime | None = None) -> tuple[int, float | None]:
    """(jobs QUEUED, seconds since the oldest one became runnable): cheap at any table size."""
    row = conn.execute(query("job_queued_summary"), {"now": now}).one()
    return row.depth, row.oldest_age_seconds


# --- the worker side: claim, heartbeat, finish --------------------------------------------


def result_json(result: Any) -> str | None:
    """A job's result as JSON text ``jsonb`` accepts; ValueError says why it cannot be stored
    (NaN or Infinity, a NUL character, or a value JSON has no form for)."""
    if result is None:
        return None
    try:
        encoded = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the result cannot be stored as JSON: {exc}") from None
    if "\\u0000" in encoded:  # cheap test first: an escaped backslash can read the same
        _, found = inspect_json(result)
        if found is not None:
            path, message, _ = found
            raise ValueError(f"the result cannot be stored as JSON: {dotted('result', path)} "
                             f"{message}")
    return encoded



# The claim's call text, made once (not at every claim: the poller's hot path).
_CLAIM_CALL = SERVER_FUNCTIONS["job_claim_batch"].call()
_COMPLETE_CALL = SERVER_FUNCTIONS["job_complete_many_if_owned"].call()


def claim_batch(
    conn: Connection,
    *,
    owner: str,
    limit: int,
    lease_seconds: float,
    start: int | None = None,
    fast_kinds: Sequence[str] = (),
    skip: Collection[UUID] = (),
    commit: bool = False,
    now: datetime | None = None,
) -> list[ClaimedJob]:
    """Lease up to ``limit`` runnable jobs (QUEUED, run_at reached), in claim order; the
    first ``start`` of them (all, by default) are marked started: their attempt counted.
    When every job claimed is of one of ``fast_kinds``, all of them are. Jobs in ``skip``
    (the worker handed them back: too little time left for them) are passed over.

    ``commit=True`` runs the claim as a transaction of its own, committed when it returns
    (``conn`` must not be in one): the statement alone, without the BEGIN and COMMIT round
    trips around it, and without waiting for its WAL to reach the disk (a claim a crash
    loses only puts its jobs back in the queue: see ``job_claim_batch``). Inside the
    caller's transaction, the claim is as durable as the rest of it."""
    rows = _binary_rows(
        conn,
        "job_claim_batch",
        {"owner": owner, "limit": limit, "lease_seconds": lease_seconds,
         "start_count": limit if start is None else start, "fast_kinds": list(fast_kinds),
         "skip_ids": list(skip), "durable": not commit, "now": now},
        commit=commit,
        statement=_CLAIM_CALL,  # its plan kept per connection
    )
    rows.sort(key=_claim_order)
    return [ClaimedJob(*row[:7]) for row in rows]


def _claim_order(row: Any) -> tuple[Any, ...]:
    """priority, run_at (RETURNING keeps no order); among ties, the started ones first: they
    are the ones the claim took first."""
    return (row[7], row[8], not row[6])


def _binary_rows(conn: Connection, name: str, params: Mapping[str, Any], *,
                 commit: bool = False, statement: str | None = None) -> list[Any]:
    """Run a statement that moves a whole batch on the psycopg connection under ``conn`` (same
    transaction), parameters and rows in binary: no text quoting per array element, no
    SQLAlchemy row per job. Rows come back as plain tuples; errors as SQLAlchemy's.
    ``commit``: the statement is its own transaction (autocommit, for that statement only)."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    if commit and conn.in_transaction():
        raise RuntimeError(f"{name} with commit=True needs a connection outside a transaction")
    if not commit and not conn.in_transaction():
        conn.begin()  # as conn.execute would: the caller commits, or the close rolls back
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no open psycopg connection")
    statement = statement or binary_statement(name)
    try:
        if commit:
            driver.autocommit = True
        cursor = _binary_cursor(conn, driver)
        cursor.execute(statement, params)
        rows: list[Any] = cursor.fetchall()
    except psycopg.Error as exc:
        conn.connection.info.pop(_CURSOR_KEY, None)  # a fresh cursor for the next statement
        # What SQLAlchemy does for the statements it runs: a connection that died, or whose
        # server turned read-only or is shutting down, is not handed out again.
        gone = (driver.closed or getattr(exc, "sqlstate", None) in UNAVAILABLE_SQLSTATES
                or conn.dialect.is_disconnect(exc, driver, None))  # type: ignore[arg-type]
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(statement, dict(params), exc, psycopg.Error,
                                  dialect=conn.dialect, connection_invalidated=gone) from exc
    finally:
        if commit and not driver.closed:
            driver.autocommit = False
    return rows


_CURSOR_KEY = "jobworker.binary_cursor"


def _binary_cursor(conn: Connection, driver: Any) -> Any:
    """The binary cursor kept with this database connection (in the pool's ``info`` for it,
    which lives exactly as long as the connection), made on first use: making a cursor per
    statement cost about 40 us of CPU here, a sixth of a single enqueue's Python side."""
    info = conn.connection.info
    cursor = info.get(_CURSOR_KEY)
    if cursor is None or cursor.closed or cursor.connection is not driver:
        cursor = info[_CURSOR_KEY] = driver.cursor(binary=True)
    return cursor


def extend_leases(
    conn: Connection,
    *,
    owner: str,
    held: Iterable[Held],
    lease_seconds: float,
    now: datetime | None = None,
) -> dict[UUID, bool]:
    """Heartbeat. Returns {job_id: cancel_requested} for the jobs still owned; absent = lost."""
    ids, tokens = _unzip(held)
    if not ids:
        return {}
    rows = conn.execute(
        query("job_extend_leases"),
        {
            "owner": owner,
            "job_ids": ids,
            "tokens": tokens,
            "lease_seconds": lease_seconds,
            "now": now,
        },
    ).all()
    return {row.job_id: row.cancel_requested for row in rows}


def complete_job(
    conn: Connection,
    *,
    owner: str,
    job_id: UUID,
    token: int,
    result: Any = None,
    route_group_id: UUID | None = None,
    now: datetime | None = None,
) -> None:
    """RUNNING -> COMPLETED, only while ``owner`` still holds claim ``token``; else LeaseLost."""
    row = conn.execute(
        query("job_complete_if_owned"),
        {
            "owner": owner,
            "job_id": job_id,
            "token": token,
            "result": result_json(result),
            "route_group_id": route_group_id,
            "now": now,
        },
    ).one_or_none()
    if row is None:
        raise LeaseLost(job_id, owner, token)


def complete_jobs(
    conn: Connection, *, owner: str, done: Sequence[Completion], now: datetime | None = None
) -> set[UUID]:
    """Batch completion with the same fence per job; returns the ids it could not complete
    because their lease was lost (normally none)."""
    return complete_and_start(conn, owner=owner, done=done, now=now).lost


def start_jobs(conn: Connection, *, owner: str, start: Sequence[Held],
               now: datetime | None = None) -> Flushed:
    """Mark claimed jobs started (their attempt counted) just before the worker runs them;
    one whose cancel was requested ends CANCELLED instead."""
    return complete_and_start(conn, owner=owner, done=(), start=start, now=now)


def complete_and_start(
    conn: Connection,
    *,
    owner: str,
    done: Sequence[Completion],
    start: Sequence[Held] = (),
    now: datetime | None = None,
) -> Flushed:
    """Complete ``done`` and mark ``start`` started, in one fenced statement (one round trip);
    answers with what it could not do as asked."""
    if not done and not start:
        return Flushed()
    start_ids, start_tokens = _unzip(start)
    rows = _binary_rows(
        conn,
        "job_complete_many_if_owned",
        {
            "owner": owner,
            "job_ids": [item.job_id for item in done],
            "tokens": [item.token for item in done],
            "results": [result_json(item.result) for item in done],
            "start_ids": start_ids,
            "start_tokens": start_tokens,
            "now": now,
        },
        statement=_COMPLETE_CALL,  # its plan kept per connection
    )
    refused: dict[str, set[UUID]] = {"lost": set(), "not_started": set(), "cancelled": set()}
    for job_id, why in rows:
        refused[why].add(job_id)
    return Flushed(**refused)


def fail_job(
    conn: Connection,
    *,
    owner: str,
    job_id: UUID,
    token: int,
    error: str,
    permanent: bool,
    backoff_base_seconds: float = DEFAULT_BACKOFF_BASE_SECONDS,
    backoff_cap_seconds: float = DEFAULT_BACKOFF_CAP_SECONDS,
    now: datetime | None = None,
) -> Progress:
    """End a failed attempt: QUEUED again with backoff while attempts remain and the error is
    not permanent (CANCELLED instead if a cancel was requested), else FAILED. Returns the new
    progress; LeaseLost if no longer owned."""
    row = conn.execute(
        query("job_fail_if_owned"),
        {
            "owner": owner,
            "job_id": job_id,
            "token": token,
            "error": error,
            "permanent": permanent,
            "backoff_base_seconds": backoff_base_seconds,
            "backoff_cap_seconds": backoff_cap_seconds,
            "now": now,
        },
    ).one_or_none()
    if row is None:
        raise LeaseLost(job_id, owner, token)
    return Progress(row.progress)


def cancel_running_job(
    conn: Connection, *, owner: str, job_id: UUID, token: int, now: datetime | None = None
) -> None:
    """The owner stops a job whose cancellation was requested: RUNNING -> CANCELLED."""
    row = conn.execute(
        query("job_cancel_if_owned"),
        {"owner": owner, "job_id": job_id, "token": token, "now": now},
    ).one_or_none()
    if row is None:
        raise LeaseLost(job_id, owner, token)


def release_jobs(conn: Connection, *, owner: str, held: Iterable[Held],
                 now: datetime | None = None) -> set[UUID]:
    """Claimed jobs this worker will not run: QUEUED with their attempts intact, or CANCELLED
    if a cancel was requested. Returns the ids of those it still held."""
    ids, tokens = _unzip(held)
    if not ids:
        return set()
    rows = conn.execute(
        query("job_release_many_if_owned"),
        {"owner": owner, "job_ids": ids, "tokens": tokens, "now": now},
    ).all()
    return {row.job_id for row in rows}


# --- maintenance (the sweeper) ------------------------------------------------------------


def recover_orphans(conn: Connection, *, now: datetime | None = None) -> Recovered:
    """RUNNING jobs with an expired lease -> QUEUED (an attempt used if they had started,
    none if not), FAILED when a started one has no attempt left, CANCELLED if requested."""
    started = conn.execute(query("job_recover_orphans"), {"now": now}).all()
    unstarted = conn.execute(query("job_recover_unstarted_orphans"), {"now": now}).all()
    return Recovered(
        requeued=[row.job_id for row in started if row.progress == Progress.QUEUED],
        failed=[row.job_id for row in started if row.progress == Progress.FAILED],
        unstarted=[row.job_id for row in unstarted if row.progress == Progress.QUEUED],
        cancelled=[row.job_id for row in [*started, *unstarted]
                   if row.progress == Progress.CANCELLED],
    )


def fail_timed_out(
    conn: Connection, *, timeout_minutes: int, now: datetime | None = None
) -> list[UUID]:
    """RUNNING longer than ``timeout_minutes`` -> FAILED, with the error saying so."""
    rows = conn.execute(
        query("job_fail_timed_out"), {"timeout_minutes": timeout_minutes, "now": now}
    ).all()
    return [row.job_id for row in rows]


class Pruned(NamedTuple):
    """One prune batch: how many rows went, and where the next batch starts (the latest
    timestamp of those rows; None when none went)."""

    deleted: int
    resume_after: datetime | None


def prune_finished(
    conn: Connection, *, retention_days: int, limit: int = 10_000, now: datetime | None = None
) -> int:
    """Delete up to ``limit`` terminal jobs that finished more than ``retention_days`` ago,
    oldest first; returns how many went (fewer than ``limit``: nothing is left to prune)."""
    return prune_finished_batch(conn, retention_days=retention_days, limit=limit, now=now).deleted


def prune_finished_batch(
    conn: Connection, *, retention_days: int, limit: int, after: datetime | None = None,
    now: datetime | None = None,
) -> Pruned:
    """One batch of :func:`prune_finished`, starting at jobs that finished at ``after``."""
    rows = conn.execute(
        query("job_prune_finished"),
        {"retention_days": retention_days, "limit": limit, "after": after, "now": now},
    ).scalars().all()
    return Pruned(len(rows), max(rows, default=None))


def prune_route_groups(
    conn: Connection, *, route_retention_days: int, limit: int = 1000,
    after: datetime | None = None, now: datetime | None = None,
) -> Pruned:
    """Delete up to ``limit`` route groups (with their routes and stops) made more than
    ``route_retention_days`` ago (and at ``after`` or later) whose job has been pruned."""
    rows = conn.execute(
        query("route_group_prune"),
        {"route_retention_days": route_retention_days, "limit": limit, "after": after,
         "now": now},
    ).scalars().all()
    return Pruned(len(rows), max(rows, default=None))


# --- helpers ------------------------------------------------------------------------------


def _refuse(conn: Connection, job_id: UUID, action: str, allowed_from: set[Progress]) -> NoReturn:
    """Explain why a guarded update matched nothing: the job is missing or in the wrong state."""
    current = conn.execute(query("job_progress"), {"job_id": job_id}).scalar_one_or_none()
    if current is None:
        raise JobNotFound(job_id)
    raise IllegalTransition(job_id, Progress(current), action, allowed_from)


def _unzip(pairs: Iterable[Held]) -> tuple[list[UUID], list[int]]:
    ids: list[UUID] = []
    tokens: list[int] = []
    for job_id, token in pairs:
        ids.append(job_id)
        tokens.append(token)
    return ids, tokens
