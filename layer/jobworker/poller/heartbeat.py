"""A background thread that keeps the leases of the jobs a worker holds alive.

Every ``interval`` seconds it extends all held leases in one statement. A job missing from the
answer was taken away (recovered, maybe re-claimed): its ``lost`` signal is set so the work
stops and writes nothing. A cancellation request sets its ``cancel`` signal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING
from uuid import UUID

from jobworker import queue
from jobworker.aws.timeouts import set_local

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Engine

log = logging.getLogger("jobworker.heartbeat")

MIN_BEAT_LIMIT_SECONDS = 2.0


@dataclass(slots=True)
class LeaseFlags:
    """What the heartbeat found about one held job. Plain booleans (set by one thread, read
    by another; each write is atomic): a batch of a thousand jobs needs a thousand of these,
    and the work polls them at its checkpoints anyway. A job's context reads them as its stop
    signals."""

    cancel_requested: bool = False
    lease_lost: bool = False


class Heartbeat:
    """With ``background`` (the default) a thread beats every ``interval`` seconds while the
    heartbeat is entered; without, the caller calls :meth:`beat` (tests, on their own clock)."""

    def __init__(self, engine: Engine, *, owner: str, lease_seconds: float,
                 interval: float | None = None, background: bool = True) -> None:
        self.engine = engine
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.interval = interval if interval is not None else max(0.2, lease_seconds / 3)
        self.background = background
        self._held: dict[UUID, tuple[int, LeaseFlags]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobworker-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self.background:
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self.background:
            self._thread.join(timeout=10)

    def hold_all(self, jobs: Iterable[queue.Held]) -> list[LeaseFlags]:
        """Start keeping these (job_id, token) leases alive; their flags, in order."""
        entries = [(job_id, token, LeaseFlags()) for job_id, token in jobs]
        with self._lock:
            for job_id, token, flags in entries:
                self._held[job_id] = (token, flags)
        return [flags for _, _, flags in entries]

    def drop(self, job_id: UUID) -> None:
        self.drop_all([job_id])

    def drop_all(self, job_ids: Iterable[UUID]) -> None:
        with self._lock:
            for job_id in job_ids:
                self._held.pop(job_id, None)

    def held(self) -> list[queue.Held]:
        with self._lock:
            return [(job_id, token) for job_id, (token, _) in self._held.items()]

    def held_of(self, job_ids: Iterable[UUID]) -> list[queue.Held]:
        """Those of ``job_ids`` still held, with their tokens."""
        with self._lock:
            return [(job_id, entry[0]) for job_id in job_ids
                    if (entry := self._held.get(job_id)) is not None]

    def beat(self) -> None:
        """Extend every held lease once; mark lost and cancelled jobs."""
        with self._lock:
            snapshot = dict(self._held)
        if not snapshot:
            return
        with self.engine.begin() as conn:
            # A beat that cannot finish before the next one is due gives way to it (leases
            # last three intervals: a slow beat never holds them hostage).
            limit = max(self.interval, MIN_BEAT_LIMIT_SECONDS)
            set_local(conn, statement_seconds=limit, lock_seconds=limit / 2)
            alive = queue.extend_leases(
                conn,
                owner=self.owner,
                held=[(job_id, token) for job_id, (token, _) in snapshot.items()],
                lease_seconds=self.lease_seconds,
            )
        for job_id, (_, signals) in snapshot.items():
            if job_id not in alive:
                signals.lease_lost = True
            elif alive[job_id]:
                signals.cancel_requested = True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a failed beat must not kill the thread; the next one may work
                log.warning("heartbeat failed; leases may expire", exc_info=True)
