"""Sweeper Lambda: on its own schedule, fails over-long jobs, recovers orphans (expired
leases), prunes old finished jobs, and reports the queue's depth."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobworker.aws.observability import record_database_unavailable, traced
from jobworker.aws.runtime import drop_connections, get_engine, get_settings
from jobworker.queue.errors import is_database_unavailable
from jobworker.sweeper.sweep import SweepSummary, sweep

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"jobworker"})
log = logging.getLogger("jobworker.sweeper")


@metrics.log_metrics
@traced
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = sweep_once(context.get_remaining_time_in_millis() / 1000)
    record_sweep(metrics, summary)
    return summary.to_dict()


def sweep_once(seconds_left: float, clock: Callable[[], float] = time.monotonic) -> SweepSummary:
    """One pass that starts no prune batch after the invocation's time, less a margin, is up."""
    config = get_settings()
    margin = min(config.safety_margin_seconds, seconds_left * 0.1)
    try:
        return sweep(
            get_engine("sweeper"),
            job_timeout_minutes=config.job_timeout_minutes,
            enable_orphan_recovery=config.enable_orphan_recovery,
            retention_days=config.retention_days,
            route_retention_days=config.route_retention_days,
            deadline=clock() + seconds_left - margin,
            clock=clock,
        )
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        log.error("Database unavailable; sweep skipped", exc_info=True)
        drop_connections()  # the next pass starts on fresh ones
        return SweepSummary(error=f"database unavailable: {type(exc).__name__}")


def record_sweep(metrics: Metrics, summary: SweepSummary) -> None:
    counts = {
        "JobsTimedOut": summary.timed_out,
        "JobsRecovered": summary.recovered,
        "JobsFailed": summary.timed_out + summary.failed_orphans,
        "JobsPruned": summary.pruned,
        "RouteGroupsPruned": summary.pruned_route_groups,
        "QueueDepth": summary.queue_depth,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(
        name="OldestQueuedAgeSeconds",
        unit=MetricUnit.Seconds,
        value=summary.oldest_queued_age_seconds or 0.0,
    )
    if not summary.prune_complete:  # pruning is behind: the table grows until it catches up
        metrics.add_metric(name="PruneIncomplete", unit=MetricUnit.Count, value=1)
    if summary.error:
        record_database_unavailable(metrics)
