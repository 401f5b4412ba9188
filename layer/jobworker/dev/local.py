"""Running the Lambda handlers on a laptop: a Lambda-like context and the handler loader."""

from __future__ import annotations

import importlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

HANDLER_NAMES = ("api", "poller", "sweeper")

LambdaHandler = Callable[[dict[str, Any], Any], Any]


class LocalContext:
    """What a handler uses of Lambda's context object, with a real clock behind it.

    ``stop()`` makes the remaining time drop to zero, so a poller ends its invocation at its
    next check, as it would near Lambda's limit.
    """

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int = 1024) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:local:000000000000:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds
        self._stopped = threading.Event()

    def get_remaining_time_in_millis(self) -> int:
        if self._stopped.is_set():
            return 0
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def stop(self) -> None:
        self._stopped.set()


def set_local_defaults(name: str) -> None:
    """Environment a handler expects from the template, for running outside AWS."""
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", f"jobworker-{name}")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "jobworker")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


HANDLER_MODULES = {
    "api": "jobworker.api.app",
    "poller": "jobworker.poller.handler",
    "sweeper": "jobworker.sweeper.handler",
}


def load_module(name: str) -> ModuleType:
    """Import the module behind ``functions/<name>/app.py`` (which only re-exports it), with
    the environment the template would give it."""
    if name not in HANDLER_NAMES:
        raise ValueError(f"unknown handler {name!r}; choose one of {', '.join(HANDLER_NAMES)}")
    set_local_defaults(name)
    return importlib.import_module(HANDLER_MODULES[name])


def load_handler(name: str) -> LambdaHandler:
    handler: LambdaHandler = load_module(name).lambda_handler
    return handler
