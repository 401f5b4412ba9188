"""What every handler shares of Powertools: metric helpers and lazily loaded tracing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

LambdaHandler = Callable[[Any, Any], Any]

# EMF takes at most 100 values of one metric in one document, and Powertools prints a document
# as soon as a metric reaches 100 (leaving the handler's own flush empty, with a warning).
MAX_VALUES_PER_METRIC = 99


def record_enqueued(metrics: Metrics, count: int) -> None:
    metrics.add_metric(name="JobsEnqueued", unit=MetricUnit.Count, value=count)


def record_database_unavailable(metrics: Metrics) -> None:
    metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=1)


def spread(values: list[float], limit: int) -> list[float]:
    """At most ``limit`` of ``values``, evenly spaced from the first on (all when they fit).

    ``JobDurationSeconds`` is then a sample of the invocation's jobs: its average and
    percentiles stand for all of them, its count does not (``JobsCompleted`` and the other
    counts do)."""
    if len(values) <= limit:
        return values
    step = len(values) / limit
    return [values[int(index * step)] for index in range(limit)]


def traced(handler: LambdaHandler) -> LambdaHandler:
    """``Tracer().capture_lambda_handler``, but the X-Ray SDK (about a quarter of a second to
    import) loads only when tracing is on, at the first invocation; with tracing off (outside
    Lambda, or ``POWERTOOLS_TRACE_DISABLED=true``) the handler runs as it is."""
    chosen: list[LambdaHandler] = []

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        if not chosen:
            chosen.append(_with_tracer(handler))
        return chosen[0](event, context)

    return run


def _with_tracer(handler: LambdaHandler) -> LambdaHandler:
    from aws_lambda_powertools.tracing.tracer import Tracer

    if Tracer._is_tracer_disabled():
        return handler
    wrapped: LambdaHandler = Tracer().capture_lambda_handler(handler)
    return wrapped
