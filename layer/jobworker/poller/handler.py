"""Poller Lambda: started by the schedule (and by the API's kick), it claims and runs jobs
until its time is nearly up, then returns a summary of what it did."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobworker.aws.logs import make_logger
from jobworker.aws.observability import (
    MAX_VALUES_PER_METRIC,
    record_database_unavailable,
    spread,
    traced,
)
from jobworker.aws.runtime import drop_connections, get_engine, get_settings
from jobworker.poller.clock import SYSTEM_CLOCK, Budget
from jobworker.poller.loop import run_poller
from jobworker.poller.options import PollerOptions
from jobworker.poller.outcomes import PollSummary

logger = make_logger()  # Powertools' Logger, with the cheaper formatter
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"jobworker"})
# What the cold start made (every module imported, hundreds of thousands of objects) lives as
# long as the container: kept out of the collector's passes. Draining no-op jobs allocates a
# few objects per job, so the collector runs often, and each full pass walked all of it: about
# a tenth of the poller's CPU per job at a batch of 1,000 (README, Benchmarks).
gc.freeze()


@metrics.log_metrics
@traced
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = poll(context.get_remaining_time_in_millis, context.aws_request_id)
    if summary.error:
        drop_connections()  # the next invocation starts on fresh ones
    record_poll(metrics, summary)
    return summary.to_dict()


def poll(remaining_ms: Callable[[], int], invocation_id: str) -> PollSummary:
    """One poller invocation on real time, ending ``safety_margin_seconds`` (at most 10% of
    the time available) before the Lambda's own limit; ``remaining_ms`` is the context's clock."""
    config = get_settings()
    margin = min(config.safety_margin_seconds, remaining_ms() / 1000 * 0.1)
    options = PollerOptions.from_settings(config, owner=f"poller:{invocation_id}")
    budget = Budget(SYSTEM_CLOCK, lambda: remaining_ms() / 1000 - margin)
    return run_poller(get_engine("poller"), options, budget)


def record_poll(metrics: Metrics, summary: PollSummary) -> None:
    counts = {
        "JobsClaimed": summary.claimed,
        "JobsCompleted": summary.completed,
        "JobsFailed": summary.failed,
        "JobsRetried": summary.retried,
        "JobsCancelled": summary.cancelled,
        "JobsReleased": summary.released,
        "LeasesLost": summary.lost,
        "JobsUnrecorded": summary.unrecorded,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for seconds in spread(summary.job_seconds, MAX_VALUES_PER_METRIC):
        metrics.add_metric(name="JobDurationSeconds", unit=MetricUnit.Seconds, value=seconds)
    if summary.error:
        record_database_unavailable(metrics)
