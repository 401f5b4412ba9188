"""How long jobs take, learnt as they run: sizes claims and skips jobs that would not fit."""

from __future__ import annotations

CLAIM_HORIZON_SECONDS = 1.0  # a claim takes at most about this much work (see claim_limit)


class DurationEstimate:
    """Moving average of job durations, per kind and overall."""

    def __init__(self) -> None:
        self.by_kind: dict[str, float] = {}
        self.overall: float | None = None

    def record(self, kind: str, seconds: float) -> None:
        self.by_kind[kind] = _ewma(self.by_kind.get(kind), seconds)
        self.overall = _ewma(self.overall, seconds)

    def claim_limit(self, seconds_left: float, batch_size: int) -> int:
        """Slow start: one job until a duration is known, then what this poller finishes
        within ``CLAIM_HORIZON_SECONDS`` (and the time left): thousands of no-op jobs, one
        route job, so long jobs stay in the queue for other pollers instead of waiting
        behind each other in one poller's batch."""
        if self.overall is None:
            return 1
        fits = int(min(seconds_left, CLAIM_HORIZON_SECONDS) / max(self.overall, 1e-6))
        return max(1, min(batch_size, fits))

    def expected(self, kind: str) -> float:
        """Expected duration of a job of ``kind`` (0 until one has run)."""
        return self.by_kind.get(kind, 0.0)

    def kinds_within(self, seconds: float) -> list[str]:
        """The kinds seen to take at most ``seconds`` a job (none before one has run)."""
        return [kind for kind, typical in self.by_kind.items() if typical <= seconds]

    def known(self, kind: str) -> bool:
        return kind in self.by_kind

    def typical(self) -> float:
        """Expected duration of a job of unknown kind (0 until one has run)."""
        return self.overall or 0.0


def _ewma(previous: float | None, value: float, weight: float = 0.3) -> float:
    return value if previous is None else previous + weight * (value - previous)
