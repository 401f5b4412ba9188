"""The poller's work: claim batches, run each job before the deadline, record how each ended.

One call to :func:`run_poller` is one Lambda invocation: it polls at once after any batch
and, while it finds nothing, after waits that grow from a tenth of a second to
``poll_interval``, until its budget runs out; it never starts a job it cannot finish in time,
hands unstarted jobs back, and returns a summary of what it did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jobworker import queue
from jobworker.aws.logs import log_each
from jobworker.kinds import JobContext, JobHandler, JobOutcome, JobSignals, handler_for
from jobworker.poller.heartbeat import Heartbeat
from jobworker.queue.errors import (
    JobCancelled,
    JobFailure,
    LeaseLost,
    LeaseLostDuringWork,
    PermanentJobError,
    is_database_unavailable,
)
from jobworker.queue.progress import Progress

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("jobworker.worker")

NO_OUTCOME = JobOutcome()  # what a handler that returns None leaves behind
COMPLETION_FLUSH_SECONDS = 0.5  # buffered completions are written at least this often
FIRST_IDLE_WAIT_SECONDS = 0.1  # after work; then 0.2, 0.4, ... up to poll_interval
ERROR_TEXT_LIMIT = 500
SHORT_JOB_SECONDS = 0.001  # "Starting job" lines of such jobs are printed together
CLAIM_HORIZON_SECONDS = 1.0  # a claim takes at most about this much work (see claim_limit)


@dataclass(frozen=True)
class PollerOptions:
    owner: str
    batch_size: int = 10
    lease_seconds: float = 60.0
    poll_interval: float = 5.0
    job_timeout_seconds: float = 30 * 60
    backoff_base_seconds: float = 5.0
    backoff_cap_seconds: float = 300.0
    min_start_seconds: float = 0.05
    idle_exit_seconds: float = 0.0  # 0: poll until the budget ends


class Budget:
    """The time this invocation may still use, asked of ``remaining`` (seconds) each time.

    In Lambda, ``remaining`` reads the context's clock; ``jobworker dev`` can make it drop to
    zero to stop a poller early and cleanly.
    """

    def __init__(self, remaining: Callable[[], float]) -> None:
        self.remaining = remaining

    @classmethod
    def seconds(cls, seconds: float) -> Budget:
        deadline = time.monotonic() + seconds
        return cls(lambda: deadline - time.monotonic())

    def left(self) -> float:
        return self.remaining()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the budget runs out first."""
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end and self.left() > 0:
            time.sleep(min(0.1, end - now, max(self.left(), 0.0)))


@dataclass
class PollSummary:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0
    polls: int = 0
    error: str | None = None
    job_seconds: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SUMMARY_COUNTS}


SUMMARY_COUNTS = ("claimed", "completed", "failed", "retried", "cancelled", "released", "lost",
                  "polls", "error")


@dataclass(slots=True)
class Ended:
    """How one attempt ended, before it is recorded."""

    how: Literal["completed", "failed", "cancelled", "lost"]
    outcome: JobOutcome | None = None
    error: str | None = None
    permanent: bool = False


class DurationEstimate:
    """Moving average of job durations, per kind, to size claims and skip jobs that won't fit."""

    def __init__(self) -> None:
        self.by_kind: dict[str, float] = {}
        self.overall: float | None = None

    def record(self, kind: str, seconds: float) -> None:
        self.by_kind[kind] = _ewma(self.by_kind.get(kind), seconds)
        self.overall = _ewma(self.overall, seconds)

    def claim_limit(self, seconds_left: float, batch_size: int) -> int:
        """Slow start: one job until a duration is known, then what this poller finishes
        within ``CLAIM_HORIZON_SECONDS`` (and the time left): thousands of no-op jobs, one
        route job, so long jobs stay in the queue for other pollers instead of waiting
        behind each other in one poller's batch."""
        if self.overall is None:
            return 1
        typical = max(self.overall, 1e-6)
        fits = int(min(seconds_left, CLAIM_HORIZON_SECONDS) / typical)
        return max(1, min(batch_size, fits))

    def expected(self, kind: str) -> float:
        return self.by_kind.get(kind, 0.0)

    def typical(self) -> float:
        """Expected duration of a job of unknown kind (0 until one has run)."""
        return self.overall or 0.0


def _ewma(previous: float | None, value: float, weight: float = 0.3) -> float:
    return value if previous is None else previous + weight * (value - previous)


class Poller:
    def __init__(self, engine: Engine, options: PollerOptions, budget: Budget,
                 heartbeat: Heartbeat) -> None:
        self.engine = engine
        self.options = options
        self.budget = budget
        self.heartbeat = heartbeat
        self.summary = PollSummary()
        self.estimate = DurationEstimate()
        self.pending: list[queue.Completion] = []
        self.pending_since = 0.0
        self.idle_since: float | None = None
        self.next_wait = FIRST_IDLE_WAIT_SECONDS
        self.handlers: dict[str, JobHandler] = {}

    def run(self) -> PollSummary:
        opts = self.options
        with self.engine.connect() as conn:
            while self.budget.left() > max(opts.min_start_seconds, self.estimate.typical()):
                limit = self.estimate.claim_limit(self.budget.left(), opts.batch_size)
                with conn.begin():
                    jobs = queue.claim_batch(
                        conn, owner=opts.owner, limit=limit, lease_seconds=opts.lease_seconds
                    )
                self.summary.polls += 1
                self.summary.claimed += len(jobs)
                if jobs:
                    self.idle_since = None
                    if not self._run_batch(conn, jobs):
                        break  # out of time: what was left is released
                if not jobs and not self._idle_wait():
                    break
        return self.summary

    def _idle_wait(self) -> bool:
        """Wait before the next poll, if there is time for one after the wait (and, with
        ``idle_exit_seconds``, if the poller has not been idle that long already).

        The waits start short after work and double up to ``poll_interval``: a job enqueued
        just after a burst (whose kick the API's debounce held back) is picked up in a
        fraction of a second, and an idle queue is still polled every ``poll_interval``.
        """
        opts = self.options
        now = time.monotonic()
        if self.idle_since is None:
            self.idle_since, self.next_wait = now, FIRST_IDLE_WAIT_SECONDS
        wait = min(self.next_wait, opts.poll_interval)
        self.next_wait = wait * 2
        if opts.idle_exit_seconds:
            idle_left = opts.idle_exit_seconds - (now - self.idle_since)
            if idle_left <= 0:
                return False
            wait = min(wait, idle_left)  # the last poll comes when idle_exit_seconds is up
        if self.budget.left() <= wait + opts.min_start_seconds:
            return False
        self.budget.sleep(wait)
        return True

    def _run_batch(self, conn: Connection, jobs: list[queue.ClaimedJob]) -> bool:
        """Run the batch in order; False if time ran out before every job could start."""
        heartbeat = self.heartbeat
        signals = heartbeat.hold_all((job.job_id, job.attempt) for job in jobs)
        if log.isEnabledFor(logging.INFO):  # a thousand lines: formatted and written at once
            log_each(log, logging.INFO, [("Found job", _about(job)) for job in jobs])
        in_time = True
        announced_until = 0  # jobs[:announced_until] had their "Starting job" line printed
        try:
            for index, (job, job_signals) in enumerate(zip(jobs, signals, strict=True)):
                expected = self.estimate.expected(job.kind)
                time_left, now = self.budget.left(), time.monotonic()
                if time_left < max(self.options.min_start_seconds, expected):
                    in_time = False
                    break
                if self.pending and (expected == 0.0 or expected > COMPLETION_FLUSH_SECONDS):
                    self._flush(conn)  # finished jobs don't wait behind one that may take long
                deadline = now + min(self.options.job_timeout_seconds, time_left)
                if index >= announced_until and log.isEnabledFor(logging.INFO):
                    announced_until = index + self._announce_short_run(
                        jobs[index:], time_left, deadline - now)
                ended = self._execute(job, job_signals, deadline,
                                      announced=index < announced_until)
                if not self._record(conn, job, ended):
                    heartbeat.drop(job.job_id)
        finally:
            self._flush(conn)
            unstarted = heartbeat.held()
            if unstarted:
                with conn.begin():
                    released = queue.release_jobs(conn, owner=self.options.owner, held=unstarted)
                heartbeat.drop_all(job_id for job_id, _ in unstarted)
                self.summary.released += len(released)
                log.info("Released jobs it could not start in time",
                         extra={"released": len(released)})
        return in_time

    def _announce_short_run(self, jobs: list[queue.ClaimedJob], time_left: float,
                            deadline_seconds: float) -> int:
        """Print the "Starting job" lines of the run of jobs known to take under
        ``SHORT_JOB_SECONDS`` at the head of ``jobs``, in one write just before the first starts
        (each line still comes before its job starts; one record per no-op job would cost
        more than the job). Only jobs sure to start in time are announced; returns how many."""
        run: list[tuple[str, dict[str, Any]]] = []
        budget = time_left - self.options.min_start_seconds
        for job in jobs:
            expected = self.estimate.expected(job.kind)
            if not 0.0 < expected < SHORT_JOB_SECONDS or budget < expected:
                break
            budget -= expected
            run.append(("Starting job", {**_about(job),
                                         "deadline_seconds": round(deadline_seconds, 3)}))
        log_each(log, logging.INFO, run)
        return len(run)

    def _handler(self, kind: str) -> JobHandler:
        handler = self.handlers.get(kind)
        if handler is None:
            handler = self.handlers[kind] = handler_for(kind)  # unknown kind: raises
        return handler

    def _execute(self, job: queue.ClaimedJob, signals: JobSignals, deadline: float,
                 announced: bool = False) -> Ended:
        ctx = JobContext(
            job_id=job.job_id, kind=job.kind, payload_json=job.payload_json, attempt=job.attempt,
            max_attempts=job.max_attempts, deadline=deadline, signals=signals,
        )
        if not announced and log.isEnabledFor(logging.INFO):
            log.info("Starting job",
                     extra={**_about(job), "deadline_seconds": round(ctx.time_left(), 3)})
        started = time.monotonic()
        try:
            outcome = self._handler(job.kind)(ctx) or NO_OUTCOME
            _check_result(outcome)
            ended = Ended("completed", outcome=outcome)
        except JobCancelled:
            ended = Ended("cancelled")
        except LeaseLostDuringWork:
            ended = Ended("lost")
        except JobFailure as exc:
            ended = Ended("failed", error=_short(exc), permanent=exc.permanent)
        except Exception as exc:  # one job's crash never ends the invocation
            log.exception("Job raised", extra={"job_id": str(job.job_id)})
            ended = Ended("failed", error=_short(exc), permanent=_is_permanent(exc))
        seconds = time.monotonic() - started
        self.estimate.record(job.kind, seconds)
        self.summary.job_seconds.append(seconds)
        return ended

    def _record(self, conn: Connection, job: queue.ClaimedJob, ended: Ended) -> bool:
        """Write how the attempt ended; True when the write was buffered for a batch."""
        opts = self.options
        outcome = ended.outcome
        if ended.how == "completed" and outcome is not None and outcome.persist is None:
            if not self.pending:
                self.pending_since = time.monotonic()
            self.pending.append(queue.Completion(job.job_id, job.attempt, outcome.result))
            if time.monotonic() - self.pending_since >= COMPLETION_FLUSH_SECONDS:
                self._flush(conn)
            return True
        extra = _about(job)
        try:
            if ended.how == "completed" and outcome is not None and outcome.persist is not None:
                with conn.begin():
                    route_group_id = outcome.persist(conn)
                    queue.complete_job(conn, owner=opts.owner, job_id=job.job_id,
                                       attempt=job.attempt, result=outcome.result,
                                       route_group_id=route_group_id)
                self.summary.completed += 1
                log.info(f"Job {job.job_id} completed successfully", extra=extra)
            elif ended.how == "failed":
                with conn.begin():
                    progress = queue.fail_job(
                        conn, owner=opts.owner, job_id=job.job_id, attempt=job.attempt,
                        error=ended.error or "failed", permanent=ended.permanent,
                        backoff_base_seconds=opts.backoff_base_seconds,
                        backoff_cap_seconds=opts.backoff_cap_seconds,
                    )
                if progress is Progress.FAILED:
                    self.summary.failed += 1
                    log.error(f"Job {job.job_id} failed", extra={**extra, "error": ended.error})
                else:
                    self.summary.retried += 1
                    log.warning(f"Job {job.job_id} will be retried",
                                extra={**extra, "error": ended.error})
            elif ended.how == "cancelled":
                with conn.begin():
                    queue.cancel_running_job(conn, owner=opts.owner, job_id=job.job_id,
                                             attempt=job.attempt)
                self.summary.cancelled += 1
                log.info(f"Job {job.job_id} cancelled", extra=extra)
            else:
                raise LeaseLost(job.job_id, opts.owner, job.attempt)
        except LeaseLost:
            self.summary.lost += 1
            log.warning("Lost the lease of job; its new owner keeps it", extra=extra)
        return False

    def _flush(self, conn: Connection) -> None:
        """Write buffered completions in one fenced statement."""
        if not self.pending:
            return
        done, self.pending = self.pending, []
        with conn.begin():
            lost = queue.complete_jobs(conn, owner=self.options.owner, done=done)
        self.heartbeat.drop_all(item.job_id for item in done)
        self.summary.completed += len(done) - len(lost)
        self.summary.lost += len(lost)
        for job_id in lost:
            log.warning("Lost the lease of job; its new owner keeps it",
                        extra={"job_id": str(job_id)})
        if log.isEnabledFor(logging.INFO):
            log_each(log, logging.INFO, [
                (f"Job {job_id} completed successfully",
                 {"job_id": job_id, "attempt": item.attempt})
                for item in done if item.job_id not in lost
                for job_id in (str(item.job_id),)])


def run_poller(engine: Engine, options: PollerOptions, budget: Budget) -> PollSummary:
    """One invocation's worth of polling; see the module docstring."""
    heartbeat = Heartbeat(engine, owner=options.owner, lease_seconds=options.lease_seconds)
    poller = Poller(engine, options, budget, heartbeat)
    try:
        with heartbeat:
            return poller.run()
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        # Nothing is lost: held leases expire and the sweeper queues those jobs again.
        log.error("Database unavailable; ending this invocation", exc_info=True)
        poller.summary.error = f"database unavailable: {type(exc).__name__}"
        return poller.summary


def _about(job: queue.ClaimedJob) -> dict[str, Any]:
    """The structured keys every log line about a job carries."""
    return {"job_id": str(job.job_id), "kind": job.kind, "attempt": job.attempt}


def _check_result(outcome: JobOutcome) -> None:
    """A result the database cannot store fails its job here, alone, and for good; written
    with a batch of completions it would fail them all, and the attempt would run again."""
    if outcome.result is not None:
        try:
            queue.result_json(outcome.result)
        except ValueError as exc:
            raise PermanentJobError(str(exc)) from None


def _short(exc: BaseException) -> str:
    text = (str(exc) or type(exc).__name__).replace("\x00", "\\x00")  # text cannot hold NUL
    if not isinstance(exc, JobFailure):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def _is_permanent(exc: BaseException) -> bool:
    """A payload that fails validation can never succeed: no point retrying it."""
    return type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic")
