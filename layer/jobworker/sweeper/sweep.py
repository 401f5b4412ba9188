"""Maintenance in one bounded pass: fail over-long jobs, recover orphans, prune old jobs and the
route groups they left behind.

Returns counts of what it changed (and the queue's depth, for metrics); running it twice in a
row changes nothing the second time. Pruning deletes in bounded batches, each its own short
transaction, until nothing is left or the pass's time is up (the deadline is an input, read
on the clock it is given): a backlog of any size drains over as many passes as it takes, and
a pass that runs out of time stops between batches, keeps what it deleted and says so.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobworker import queue

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("jobworker.sweeper")

# Rows per DELETE: large enough that a round trip is a small part of a batch, small enough that
# one batch is a short transaction (tens of milliseconds; see notes for the measured rate).
PRUNE_BATCH = 10_000
# A route group takes its routes and stops with it (up to thousands of rows): smaller batches.
ROUTE_GROUP_PRUNE_BATCH = 500


@dataclass
class SweepSummary:
    timed_out: int = 0
    recovered: int = 0
    failed_orphans: int = 0
    pruned: int = 0
    pruned_route_groups: int = 0
    prune_batches: int = 0
    # False when the pass ran out of time with rows still to prune (the next pass goes on).
    prune_complete: bool = True
    queue_depth: int = 0
    oldest_queued_age_seconds: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Retention:
    jobs_days: int
    route_groups_days: int


def sweep(
    engine: Engine,
    *,
    job_timeout_minutes: int,
    enable_orphan_recovery: bool,
    retention_days: int,
    route_retention_days: int,
    now: datetime | None = None,
    deadline: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> SweepSummary:
    """One pass; ``deadline`` is a reading of ``clock`` after which no new batch starts."""
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
        depth, oldest = queue.queued_summary(conn, now=now)
    summary.queue_depth = depth
    summary.oldest_queued_age_seconds = oldest

    retention = Retention(retention_days, route_retention_days)
    prune(engine, summary, retention, now=now, deadline=deadline, clock=clock)
    log.info("Sweep done", extra=summary.to_dict())
    return summary


def prune(engine: Engine, summary: SweepSummary, retention: Retention, *,
          now: datetime | None, deadline: float, clock: Callable[[], float]) -> None:
    """Jobs first, then the route groups whose jobs are gone, batch after batch in time."""

    jobs_after: list[datetime | None] = [None]  # where the next batch starts
    groups_after: list[datetime | None] = [None]

    def jobs_batch(conn: Connection) -> bool:
        pruned = queue.prune_finished_batch(conn, retention_days=retention.jobs_days,
                                            limit=PRUNE_BATCH, after=jobs_after[0], now=now)
        summary.pruned += pruned.deleted
        jobs_after[0] = pruned.resume_after
        return pruned.deleted == PRUNE_BATCH  # a full batch: more may be left

    def route_groups_batch(conn: Connection) -> bool:
        pruned = queue.prune_route_groups(conn, route_retention_days=retention.route_groups_days,
                                          limit=ROUTE_GROUP_PRUNE_BATCH,
                                          after=groups_after[0], now=now)
        summary.pruned_route_groups += pruned.deleted
        groups_after[0] = pruned.resume_after
        return pruned.deleted == ROUTE_GROUP_PRUNE_BATCH

    for batch in (jobs_batch, route_groups_batch):
        if not _repeat_in_time(engine, batch, summary, deadline=deadline, clock=clock):
            summary.prune_complete = False
            log.warning("Sweep ran out of time with rows left to prune; the next one goes on",
                        extra={"pruned": summary.pruned,
                               "pruned_route_groups": summary.pruned_route_groups})
            return


def _repeat_in_time(engine: Engine, batch: Callable[[Connection], bool], summary: SweepSummary,
                    *, deadline: float, clock: Callable[[], float]) -> bool:
    """Run ``batch`` (one transaction each) while it says more may be left; False if the next
    one could not finish before ``deadline`` (judged by the longest one so far)."""
    longest = 0.0
    more = True
    while more:
        started = clock()
        if started + longest >= deadline:
            return False
        with engine.begin() as conn:
            more = batch(conn)
        summary.prune_batches += 1
        longest = max(longest, clock() - started)
    return True
