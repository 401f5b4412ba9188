"""Sweeper Lambda: on its own schedule, fails over-long jobs, recovers orphans (expired
leases), prunes old finished jobs, and reports the queue's depth."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobworker import service
from jobworker.observability import record_sweep, traced

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"jobworker"})


@metrics.log_metrics
@traced
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = service.sweep_once()
    record_sweep(metrics, summary)
    return summary.to_dict()
