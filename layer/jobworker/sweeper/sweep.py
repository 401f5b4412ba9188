"""Maintenance in one bounded pass: fail over-long jobs, recover orphans, prune old jobs.

Returns counts of what it changed (and the queue's depth, for metrics); running it twice in a
row changes nothing the second time.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobworker import queue

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Engine

log = logging.getLogger("jobworker.sweeper")

PRUNE_BATCH = 10_000


@dataclass
class SweepSummary:
    timed_out: int = 0
    recovered: int = 0
    failed_orphans: int = 0
    pruned: int = 0
    queue_depth: int = 0
    oldest_queued_age_seconds: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep(
    engine: Engine,
    *,
    job_timeout_minutes: int,
    enable_orphan_recovery: bool,
    retention_days: int,
    now: datetime | None = None,
) -> SweepSummary:
    summary = SweepSummary()
    with engine.begin() as conn:
        timed_out = queue.fail_timed_out(conn, timeout_minutes=job_timeout_minutes, now=now)
    summary.timed_out = len(timed_out)
    for job_id in timed_out:
        log.warning("Job timed out and is marked FAILED",
                    extra={"job_id": str(job_id), "job_timeout_minutes": job_timeout_minutes})

    if enable_orphan_recovery:
        with engine.begin() as conn:
            recovered = queue.recover_orphans(conn, now=now)
        summary.recovered = len(recovered.requeued) + len(recovered.unstarted)
        summary.failed_orphans = len(recovered.failed)
        for job_id in recovered.requeued:
            log.warning("Recovered orphaned job: lease expired, back to QUEUED",
                        extra={"job_id": str(job_id)})
        for job_id in recovered.unstarted:  # its worker died before starting it
            log.warning("Recovered orphaned job: lease expired before it started, back to"
                        " QUEUED with its attempts intact", extra={"job_id": str(job_id)})
        for job_id in recovered.cancelled:
            log.info("Orphaned job had a cancel request: CANCELLED",
                     extra={"job_id": str(job_id)})
        for job_id in recovered.failed:
            log.error("Orphaned job had no attempts left: FAILED", extra={"job_id": str(job_id)})

    with engine.begin() as conn:
        summary.pruned = queue.prune_finished(
            conn, retention_days=retention_days, limit=PRUNE_BATCH, now=now
        )
        depth, oldest = queue.queued_summary(conn, now=now)
    summary.queue_depth = depth
    summary.oldest_queued_age_seconds = oldest
    log.info("Sweep done", extra=summary.to_dict())
    return summary
