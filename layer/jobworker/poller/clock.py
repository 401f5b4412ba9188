"""Time as an input: the poller and the jobs it runs read the clock and sleep through a
:class:`Clock` their caller gives them, so tests move time instead of waiting for it.

``Clock`` and ``SystemClock`` are defined by the kinds API (a job's context keeps time the
same way) and used from here; the :class:`Budget` is the poller's own."""

from __future__ import annotations

from collections.abc import Callable

from jobworker.kinds import SYSTEM_CLOCK, Clock, SystemClock

BUDGET_CHECK_SECONDS = 0.1  # an idle wait looks at the budget this often (dev can end it early)

__all__ = ["SYSTEM_CLOCK", "Budget", "Clock", "SystemClock"]


class Budget:
    """The time this invocation may still use, asked of ``remaining`` (seconds) each time.

    In Lambda, ``remaining`` reads the context's clock; ``jobworker dev`` can make it drop to
    zero to stop a poller early and cleanly; tests count it down on a fake clock.
    """

    def __init__(self, clock: Clock, remaining: Callable[[], float]) -> None:
        self.clock = clock
        self.remaining = remaining

    @classmethod
    def seconds(cls, clock: Clock, seconds: float) -> Budget:
        """A budget of ``seconds`` from now on ``clock``."""
        deadline = clock.now() + seconds
        return cls(clock, lambda: deadline - clock.now())

    def left(self) -> float:
        return self.remaining()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the budget runs out first."""
        end = self.clock.now() + seconds
        while (now := self.clock.now()) < end and (left := self.left()) > 0:
            self.clock.sleep(min(BUDGET_CHECK_SECONDS, end - now, left))
