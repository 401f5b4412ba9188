"""Running the Lambda handlers on a laptop: a Lambda-like context and the handler loader."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
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


def functions_dir() -> Path:
    """Where ``functions/`` is: $JOBWORKER_FUNCTIONS_DIR, ./functions, or the source checkout."""
    candidates = [
        os.environ.get("JOBWORKER_FUNCTIONS_DIR"),
        Path.cwd() / "functions",
        Path(__file__).resolve().parents[2] / "functions",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "api" / "app.py").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "cannot find functions/ (run from the project folder or set JOBWORKER_FUNCTIONS_DIR)"
    )


def set_local_defaults(name: str) -> None:
    """Environment a handler expects from the template, for running outside AWS."""
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", f"jobworker-{name}")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "jobworker")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def load_module(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` as Lambda would (once per process)."""
    if name not in HANDLER_NAMES:
        raise ValueError(f"unknown handler {name!r}; choose one of {', '.join(HANDLER_NAMES)}")
    module_name = f"jobworker_function_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    set_local_defaults(name)
    path = functions_dir() / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(name: str) -> LambdaHandler:
    handler: LambdaHandler = load_module(name).lambda_handler
    return handler
