"""Poller Lambda: started by the schedule (and by the API's kick), it claims and runs jobs
until its time is nearly up, then returns a summary of what it did."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobworker import service
from jobworker.observability import record_poll, traced

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"jobworker"})


@metrics.log_metrics
@traced
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = service.poll(context.get_remaining_time_in_millis, context.aws_request_id)
    record_poll(metrics, summary)
    return summary.to_dict()
