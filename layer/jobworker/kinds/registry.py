"""Job kinds: a registry from a job's ``kind`` to the function that does its work.

A handler receives a :class:`JobContext` and returns a :class:`JobOutcome` (or ``None``). It
must return, or raise, by ``ctx.deadline``; long work calls ``ctx.checkpoint()`` now and then,
which raises when the job was cancelled, its lease was lost, or its deadline passed.

Built in: ``simulate`` (sleeps, like the seed's placeholder) and ``noop`` here, and
``generate_routes`` (the default kind) in ``jobworker.routes.job``, wired in by the poller and
the API, which import it. More kinds come from modules named in ``JOBWORKER_PLUGINS``
(comma-separated); each is imported once and registers its kinds with :func:`job_kind`.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from pydantic import BaseModel

from jobworker.problems import FieldProblem
from jobworker.queue.errors import (
    DeadlineExceeded,
    JobCancelled,
    LeaseLostDuringWork,
    PermanentJobError,
)

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection

CHECK_EVERY_SECONDS = 0.05  # how often ctx.wait() looks at the signals and the deadline

PersistHook = Callable[["Connection"], "UUID | None"]


class Clock(Protocol):
    """Where a job (and the poller that runs it) reads the time and sleeps: passed in, so
    tests move time instead of waiting for it."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time: ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class StopSignals(Protocol):
    """Whatever tells a running job to stop: the poller's heartbeat flags, or a test's."""

    @property
    def cancel_requested(self) -> bool: ...

    @property
    def lease_lost(self) -> bool: ...


@dataclass(slots=True)
class JobSignals:
    """Plain stop flags, for a context built without a heartbeat (tests, local runs)."""

    cancel_requested: bool = False
    lease_lost: bool = False


JOB_LOGGER = logging.getLogger("jobworker.job")


class JobContext:
    """What a handler gets: the job, its deadline, and ways to notice it must stop.

    ``payload`` is decoded on first use (pass ``payload`` or its JSON text, ``payload_json``):
    a kind that never reads it never pays for it.
    """

    __slots__ = ("_payload", "_payload_json", "attempt", "clock", "deadline", "job_id", "kind",
                 "logger", "max_attempts", "signals")

    def __init__(self, *, job_id: UUID, kind: str, attempt: int, max_attempts: int,
                 deadline: float, payload: dict[str, Any] | None = None,
                 payload_json: str | None = None, signals: StopSignals | None = None,
                 logger: logging.Logger | logging.LoggerAdapter[Any] = JOB_LOGGER,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.job_id = job_id
        self.kind = kind
        self._payload = payload
        self._payload_json = payload_json
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.deadline = deadline  # clock.now() value by which the work must be done
        self.signals: StopSignals = signals if signals is not None else JobSignals()
        self.clock = clock
        self.logger = logger

    @property
    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            self._payload = json.loads(self._payload_json) if self._payload_json else {}
        return self._payload

    def time_left(self) -> float:
        return self.deadline - self.clock.now()

    def check_signals(self) -> None:
        """Raise if the job was cancelled or its lease lost (for work that keeps its own time)."""
        if self.signals.lease_lost:
            raise LeaseLostDuringWork(f"job {self.job_id}: lease lost while running")
        if self.signals.cancel_requested:
            raise JobCancelled(f"job {self.job_id}: cancelled on request")

    def checkpoint(self) -> None:
        """Raise if the work must stop now: cancelled, lease lost, or out of time."""
        self.check_signals()
        if self.time_left() <= 0:
            raise DeadlineExceeded(f"job {self.job_id}: deadline reached before the work ended")

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, waking early to honour cancellation, a lost lease or the deadline."""
        end = self.clock.now() + seconds
        while (remaining := end - self.clock.now()) > 0:
            self.checkpoint()
            self.clock.sleep(max(0.0, min(remaining, self.time_left(), CHECK_EVERY_SECONDS)))


@dataclass
class JobOutcome:
    """What a finished job leaves behind.

    ``result`` is stored in ``jobs.result``. ``persist`` runs inside the transaction that
    completes the job, after the lease check, so its writes commit only if this worker still
    owns the job; it may return a ``route_group_id`` to link from the job.
    """

    result: Any = None
    persist: PersistHook | None = None


JobHandler = Callable[[JobContext], JobOutcome | None]


@dataclass(frozen=True, slots=True)
class SetupTime:
    """Work a job must do before it has anything to show or can stop early (route jobs build
    their travel matrices and solver first): the poller starts such a job only with this
    much time left."""

    seconds: float
    what: str  # how a reason names that work: "setting up 3000 stops"


# A kind's setup estimate, from the job's payload as decoded JSON (not validated: the poller
# asks before the job starts; an unusable payload gets None and fails in the handler).
SetupEstimate = Callable[[Mapping[str, Any]], SetupTime | None]


class NotEnoughTime(Exception):
    """Raised by job work before it has done anything: its setup does not fit the time left.
    Not a failure: the poller hands the job back unstarted (its attempt given back, its
    place in the queue kept) for an invocation with more time, or, when no invocation could
    ever have that much, fails it saying so."""

    def __init__(self, setup: SetupTime, left_seconds: float) -> None:
        super().__init__(f"{left_seconds:.1f} s left, {setup.what} takes about "
                         f"{setup.seconds:.1f} s")
        self.setup = setup
        self.left_seconds = left_seconds


@dataclass(frozen=True, slots=True)
class Limits:
    """What the deployment's poller has: a job that needs more could never run there."""

    poller_memory_mb: float


# A kind's admission check: the payload (validated: an instance of the kind's payload model)
# and the deployment's limits in; what could never run, each naming a field of the payload.
Admission = Callable[[Any, Limits], Sequence[FieldProblem]]


@dataclass(frozen=True)
class KindSpec:
    """A registered kind: its work, the pydantic model its payload must satisfy (if any), and
    the check that refuses, at admission, what the deployment could never run (if any)."""

    handler: JobHandler
    payload_model: type[BaseModel] | None = None
    links: tuple[str, ...] = ()  # sub-resources of its jobs the API links: /jobs/{id}/<link>
    admit: Admission | None = None
    setup: SetupEstimate | None = None


# The kinds of this room. ``generate_routes`` registers itself when a room above the route
# feature (the poller, the API) imports ``jobworker.routes.job``: the registry never names a
# room above it.
BUILTIN_KIND_MODULES = ("jobworker.kinds.builtin",)

_registry: dict[str, KindSpec] = {}
_plugins_loaded = False
_plugins_lock = threading.Lock()


def job_kind(name: str, payload_model: type[BaseModel] | None = None,
             links: tuple[str, ...] = (), *, admit: Admission | None = None,
             setup: SetupEstimate | None = None) -> Callable[[JobHandler], JobHandler]:
    """Decorator: register ``handler`` as the work of jobs of kind ``name``.

    With ``payload_model``, the API refuses (422) a job whose payload does not validate;
    ``links`` names what the API serves about such a job (``"routes"``: /jobs/{id}/routes);
    with ``admit`` (which needs ``payload_model``), the API also refuses a job that check
    finds the deployment's poller could never run, however the job is sent. With ``setup``,
    the poller starts a job only when the setup it estimates fits the time left (see
    :class:`NotEnoughTime`, which the handler raises when it finds that out itself).
    """

    def register(handler: JobHandler) -> JobHandler:
        _registry[name] = KindSpec(handler, payload_model, links, admit, setup)
        return handler

    return register


def kind_spec(kind: str) -> KindSpec:
    """The registered kind; an unknown kind can never succeed, so it fails permanently."""
    load_plugins()
    try:
        return _registry[kind]
    except KeyError:
        known = ", ".join(sorted(_registry))
        raise PermanentJobError(f"unknown job kind {kind!r} (known: {known})") from None


def admission_problems(kind: str, payload: BaseModel | None,
                       limits: Limits) -> list[FieldProblem]:
    """Why the deployment could never run a job of ``kind`` with this payload (validated, as
    the kind's payload model): problems naming fields of the payload; none when it could."""
    check = kind_spec(kind).admit
    if check is None or payload is None:
        return []
    return list(check(payload, limits))


def handler_for(kind: str) -> JobHandler:
    return kind_spec(kind).handler


def known_kinds() -> list[str]:
    load_plugins()
    return sorted(_registry)


def load_plugins(environ: Mapping[str, str] = os.environ) -> None:
    global _plugins_loaded
    with _plugins_lock:
        if _plugins_loaded:
            return
        for module in BUILTIN_KIND_MODULES:
            importlib.import_module(module)
        plugins = environ.get("JOBWORKER_PLUGINS", "").split(",")
        for module in filter(None, (name.strip() for name in plugins)):
            importlib.import_module(module)
        _plugins_loaded = True
