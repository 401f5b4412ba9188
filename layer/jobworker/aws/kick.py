"""The kick: after an enqueue commits, wake a poller at once instead of waiting for the schedule.

In AWS the API invokes the poller Lambda asynchronously (``InvocationType=Event``);
``jobworker dev`` installs a local kicker that starts its poller the same way, in-process.
Kicks are debounced to one per second per process. The kick sits on the request path of a
job that is already committed, so it may cost the answer at most ``KICK_BUDGET_SECONDS``:
short connect and read timeouts, no retries. A failed kick is a log line and a
``PollerKickFailed`` metric, never an error: the schedule is the safety net.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from functools import lru_cache
from typing import Any

from jobworker.aws.runtime import get_settings

log = logging.getLogger("jobworker.kick")

KICK_INTERVAL_SECONDS = 1.0
KICK_EVENT = {"source": "jobworker.kick"}
# An async invoke answers in milliseconds when Lambda's API is reachable; when it is not (a
# subnet with no route to it), boto3's defaults (60 s + 60 s, retried) would hold the request
# until API Gateway gives up with a 5xx for a job that was committed.
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 0.5
KICK_BUDGET_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS

_lock = threading.Lock()
_last_kick = -KICK_INTERVAL_SECONDS
_local_kicker: Callable[[], None] | None = None


def set_local_kicker(kicker: Callable[[], None] | None) -> None:
    """Route kicks to ``kicker`` instead of Lambda (used by ``jobworker dev`` and tests)."""
    global _local_kicker
    _local_kicker = kicker


def no_kick() -> None:
    """A local kicker that does nothing (``jobworker dev --no-kick``)."""


def reset_debounce() -> None:
    global _last_kick
    _last_kick = -KICK_INTERVAL_SECONDS


def client_config() -> Any:
    """botocore's Config for the kick: one try, short timeouts."""
    from botocore.config import Config

    return Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                  retries={"total_max_attempts": 1, "mode": "standard"})


@lru_cache(maxsize=1)
def _lambda_client() -> Any:
    import boto3

    return boto3.client("lambda", config=client_config())


def _count_failure() -> None:
    """Powertools keeps one metric set per process: the handler's log_metrics publishes it."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    with suppress(Exception):  # counting a failure must not become one
        Metrics().add_metric(name="PollerKickFailed", unit=MetricUnit.Count, value=1)


def kick_poller() -> bool:
    """Wake a poller unless one was woken in the last second; True if a kick was sent."""
    global _last_kick
    with _lock:
        now = time.monotonic()
        if now - _last_kick < KICK_INTERVAL_SECONDS:
            return False
        _last_kick = now
    try:
        if _local_kicker is not None:
            _local_kicker()
            return True
        function_name = get_settings().poller_function_name
        if not function_name:
            return False
        _lambda_client().invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps(KICK_EVENT).encode(),
        )
    except Exception:
        log.warning("Could not kick the poller; the schedule will pick the job up", exc_info=True)
        _count_failure()
        return False
    return True
