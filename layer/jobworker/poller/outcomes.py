"""Recording how each attempt ended: one small function per outcome.

Every write is fenced (the worker must still hold the claim) and a failure to write is a
failure of that job alone: its outcome becomes "failed" with the reason the database gave
(permanent for a refused constraint or value, transient for a lost connection, which uses
the attempt like any other), and the next job runs. Completions without a ``persist`` hook
are buffered and written in batches; a batch the database refuses is written again one job
at a time, so one bad row cannot take its batch-mates with it.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from jobworker import queue
from jobworker.aws.logs import log_each
from jobworker.kinds import JobOutcome
from jobworker.poller.failures import Failure, classify
from jobworker.poller.options import PollerOptions
from jobworker.queue.errors import LeaseLost
from jobworker.queue.progress import Progress

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection

log = logging.getLogger("jobworker.worker")
T = TypeVar("T")


@dataclass
class PollSummary:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0
    unrecorded: int = 0  # ran, but even their failure could not be written (see Ledger.fail)
    polls: int = 0
    error: str | None = None
    job_seconds: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SUMMARY_COUNTS}


SUMMARY_COUNTS = ("claimed", "completed", "failed", "retried", "cancelled", "released", "lost",
                  "unrecorded", "polls", "error")


@dataclass(slots=True)
class Ended:
    """How one attempt ended, before it is recorded. ``handed_back``: it never started (too
    little time left for its setup); ``failure`` then says why, for the log."""

    how: Literal["completed", "failed", "cancelled", "lost", "handed_back"]
    outcome: JobOutcome | None = None
    failure: Failure | None = None


@dataclass
class Ledger:
    """Where outcomes are written: the poller's connection, its options and its summary."""

    conn: Connection
    options: PollerOptions
    summary: PollSummary

    @property
    def owner(self) -> str:
        return self.options.owner

    # --- one function per outcome ---------------------------------------------------------

    def completed(self, job: queue.ClaimedJob, outcome: JobOutcome) -> None:
        """A completion with a ``persist`` hook: its writes and the fenced completion commit
        together, or not at all."""
        assert outcome.persist is not None
        with self.conn.begin():
            route_group_id = outcome.persist(self.conn)
            queue.complete_job(self.conn, owner=self.owner, job_id=job.job_id, token=job.token,
                               result=outcome.result, route_group_id=route_group_id)
        self.summary.completed += 1
        log.info(f"Job {job.job_id} completed successfully", extra=about(job))

    def failed(self, job: queue.ClaimedJob, failure: Failure) -> None:
        """Back to QUEUED with backoff while attempts remain and it may pass, else FAILED."""
        opts = self.options
        with self.conn.begin():
            progress = queue.fail_job(
                self.conn, owner=self.owner, job_id=job.job_id, token=job.token,
                error=failure.reason, permanent=failure.permanent,
                backoff_base_seconds=opts.backoff_base_seconds,
                backoff_cap_seconds=opts.backoff_cap_seconds,
            )
        extra = {**about(job), "error": failure.reason}
        if progress is Progress.FAILED:
            self.summary.failed += 1
            log.error(f"Job {job.job_id} failed", extra=extra)
        elif progress is Progress.CANCELLED:  # a cancel was requested: no retry
            self.summary.cancelled += 1
            log.info(f"Job {job.job_id} cancelled", extra=extra)
        else:
            self.summary.retried += 1
            log.warning(f"Job {job.job_id} will be retried", extra=extra)

    def cancelled(self, job: queue.ClaimedJob) -> None:
        with self.conn.begin():
            queue.cancel_running_job(self.conn, owner=self.owner, job_id=job.job_id,
                                     token=job.token)
        self.summary.cancelled += 1
        log.info(f"Job {job.job_id} cancelled", extra=about(job))

    def lost(self, job_id: object) -> None:
        """The lease was taken away: the job's new owner keeps it; nothing is written."""
        self.summary.lost += 1
        log.warning("Lost the lease of job; its new owner keeps it",
                    extra={"job_id": str(job_id)})

    # --- dispatch, and what happens when a write fails --------------------------------------

    def record(self, job: queue.ClaimedJob, ended: Ended) -> None:
        """Write how the attempt ended; a failed write fails the job (see the module doc)."""
        try:
            if ended.how == "completed" and ended.outcome is not None:
                self.completed(job, ended.outcome)
            elif ended.how == "failed" and ended.failure is not None:
                self.failed(job, ended.failure)
            elif ended.how == "cancelled":
                self.cancelled(job)
            else:
                self.lost(job.job_id)
        except LeaseLost:
            self.lost(job.job_id)
        except Exception as exc:
            self.recording_failed(job, exc)

    def recording_failed(self, job: queue.ClaimedJob, exc: Exception) -> None:
        """The outcome could not be written: the job fails with the database's reason. If even
        that cannot be written (the database is gone), the lease runs out and the sweeper
        requeues the job, its attempt used: it was started."""
        failure = classify(exc)
        log.error("Could not record the outcome of job; it fails instead",
                  exc_info=True, extra={**about(job), "error": failure.reason})
        try:
            self.failed(job, failure)
        except LeaseLost:
            self.lost(job.job_id)
        except Exception:
            self.summary.unrecorded += 1
            log.error("Could not record the failure of job either; its lease will expire",
                      exc_info=True, extra=about(job))

    # --- buffered completions ---------------------------------------------------------------

    def flush(self, done: list[queue.Completion], start: list[queue.Held],
              then: Callable[[], T] | None = None,
              keys: Sequence[Mapping[str, Any] | None] = ()) -> tuple[queue.Flushed, T | None]:
        """Write buffered completions and mark the next jobs started, in one statement; if the
        database refuses it, each completion on its own, then the starts. ``keys`` are the
        completions' log keys (their jobs' :func:`about`, made for their earlier lines), in
        their order; a completion without them gets the job id alone.

        ``then`` (the next claim) runs in the same transaction, after the statement: one
        commit for both. Its value comes back beside what was flushed; None when the
        transaction failed and the completions were written one by one without it (the
        caller runs it again on its own)."""
        after: T | None = None
        try:
            with self.conn.begin():
                flushed = queue.complete_and_start(self.conn, owner=self.owner, done=done,
                                                   start=start)
                if then is not None:
                    after = then()
        except Exception:
            if not done:
                raise  # only starts: nothing to tell apart; the poller ends its batch
            log.warning("Batch of completions refused; writing them one by one",
                        exc_info=True, extra={"jobs": len(done)})
            lost = {item.job_id for item in done if not self.complete_alone(item)}
            with self.conn.begin():
                started = queue.start_jobs(self.conn, owner=self.owner, start=start)
            flushed = queue.Flushed(lost=lost, not_started=started.not_started,
                                    cancelled=started.cancelled)
            after = None
        else:
            lost = flushed.lost
            for job_id in lost:
                self.lost(job_id)
            self.summary.completed += (len(done) if not lost else
                                       sum(item.job_id not in lost for item in done))
            if log.isEnabledFor(logging.INFO):  # the batch's lines in one write
                said = itertools.chain(keys, itertools.repeat(None))
                log_each(log, logging.INFO, [
                    _completed_line(item, job_keys)
                    for item, job_keys in zip(done, said, strict=False)  # said: endless
                    if not lost or item.job_id not in lost])
        for job_id in flushed.not_started:
            self.lost(job_id)
        for job_id in flushed.cancelled:
            self.summary.cancelled += 1
            log.info(f"Job {job_id} cancelled before it started", extra={"job_id": str(job_id)})
        return flushed, after

    def complete_alone(self, item: queue.Completion) -> bool:
        """One buffered completion in its own transaction; False if it was not completed."""
        job = queue.ClaimedJob(item.job_id, "", "", 0, 0, item.token)
        try:
            with self.conn.begin():
                queue.complete_job(self.conn, owner=self.owner, job_id=item.job_id,
                                   token=item.token, result=item.result)
        except LeaseLost:
            self.lost(item.job_id)
            return False
        except Exception as exc:
            self.recording_failed(job, exc)
            return False
        self.summary.completed += 1
        log.info(f"Job {item.job_id} completed successfully", extra={"job_id": str(item.job_id)})
        return True


def _completed_line(item: queue.Completion,
                    keys: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any]]:
    if keys is None:
        keys = {"job_id": str(item.job_id)}
    return f"Job {keys['job_id']} completed successfully", keys


def about(job: queue.ClaimedJob) -> dict[str, Any]:
    """The structured keys every log line about a job carries."""
    return {"job_id": str(job.job_id), "kind": job.kind, "attempt": job.attempt}
