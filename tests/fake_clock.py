"""A clock tests move by hand: ``sleep`` advances it at once, running what was due meanwhile."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class FakeClock:
    """``now()`` starts at 0. ``at(t, fn)`` runs ``fn`` once when the clock passes ``t``;
    ``every(dt, fn)`` every ``dt`` seconds. Nothing runs on its own: only ``sleep`` (called
    by the poller's idle waits and by jobs' ``ctx.wait``) moves time."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps = 0
        self._due: list[tuple[float, int, Callable[[], None], float | None]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        until = self.t + max(seconds, 0.0)
        while self._due and self._due[0][0] <= until:
            when, _, action, repeat = heapq.heappop(self._due)
            self.t = max(self.t, when)
            if repeat is not None:
                self._push(when + repeat, action, repeat)
            action()
        self.t = until

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._push(when, action, None)

    def every(self, interval: float, action: Callable[[], None]) -> None:
        self._push(self.t + interval, action, interval)

    def _push(self, when: float, action: Callable[[], None], repeat: float | None) -> None:
        heapq.heappush(self._due, (when, next(self._order), action, repeat))
