"""The kick: after an enqueue commits, wake a poller at once instead of waiting for the schedule.

In AWS the API invokes the poller Lambda asynchronously (``InvocationType=Event``);
``jobworker dev`` installs a local kicker that starts its poller the same way, in-process.
Kicks are debounced to one per second per process, and a failed kick is only logged: the
schedule is the safety net.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jobworker.aws.runtime import get_settings

log = logging.getLogger("jobworker.kick")

KICK_INTERVAL_SECONDS = 1.0
KICK_EVENT = {"source": "jobworker.kick"}

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


@lru_cache(maxsize=1)
def _lambda_client() -> Any:
    import boto3

    return boto3.client("lambda")


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
        return False
    return True
