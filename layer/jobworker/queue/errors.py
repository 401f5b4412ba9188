"""Typed errors of the queue. Each one names what the caller asked for and why it was refused."""

from __future__ import annotations

from uuid import UUID

from jobworker.queue.progress import Progress


class JobworkerError(Exception):
    """Base class of every error this package raises on purpose."""


class JobNotFound(JobworkerError):
    def __init__(self, job_id: UUID | str) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class IllegalTransition(JobworkerError):
    """The job is not in a state from which the requested change is allowed."""

    def __init__(self, job_id: UUID, current: Progress, action: str, allowed_from: set[Progress]):
        allowed = ", ".join(sorted(allowed_from))
        super().__init__(
            f"cannot {action} job {job_id}: it is {current}, and {action} needs one of: {allowed}"
        )
        self.job_id = job_id
        self.current = current
        self.action = action


class LeaseStillHeld(JobworkerError):
    """A requeue by hand was refused: the job's worker still holds an unexpired lease."""

    def __init__(self, job_id: UUID) -> None:
        super().__init__(
            f"job {job_id} is RUNNING and its lease has not expired: its worker may still be"
            " working on it; requeue it by force only when you know that worker is gone"
        )
        self.job_id = job_id


class RoutesNotAvailable(JobworkerError):
    """The job has no route group (yet): it is not a COMPLETED generate_routes job."""

    def __init__(self, job_id: UUID, kind: str, current: Progress) -> None:
        super().__init__(
            f"job {job_id} has no routes: it is a {kind} job and {current}; routes exist once a"
            " generate_routes job is COMPLETED"
        )
        self.job_id = job_id
        self.current = current


class LeaseLost(JobworkerError):
    """The caller no longer owns the job: its lease expired and someone else took it over."""

    def __init__(self, job_id: UUID, owner: str, token: int) -> None:
        super().__init__(f"job {job_id}: lease of {owner} (claim {token}) is no longer held")
        self.job_id = job_id


class IdempotencyConflict(JobworkerError):
    """The idempotency key was already used for a request with a different body."""

    def __init__(self, key: str, job_id: UUID) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for job {job_id} with a different request"
            " body; use a new key for a new request"
        )
        self.key = key
        self.job_id = job_id


class JobFailure(Exception):
    """Raised by job work to end an attempt; ``permanent`` decides between retry and FAILED."""

    permanent = False


class PermanentJobError(JobFailure):
    """The job can never succeed (its payload cannot be valid): fail it at once, no retry."""

    permanent = True


class TransientJobError(JobFailure):
    """This attempt failed for a reason that may pass: retry with backoff."""


class DeadlineExceeded(TransientJobError):
    """The job did not finish before its deadline."""


class JobCancelled(Exception):
    """Cancellation of the running job was requested; the work stops and the job ends CANCELLED."""


class LeaseLostDuringWork(Exception):
    """The heartbeat found the lease gone while the job ran; stop without writing anything."""


# The server refuses writes (25006 read_only_sql_transaction: a failover made it a reader) or
# is ending the session (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
# cannot_connect_now): as unavailable as a server that cannot be reached, until a new
# connection finds the writer.
UNAVAILABLE_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03"})


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "Postgres cannot be reached right now" (retry later)."""
    import sys

    if getattr(getattr(exc, "orig", exc), "sqlstate", None) in UNAVAILABLE_SQLSTATES:
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None:
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.TimeoutError):  # pool exhausted or connect timed out
            return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)
