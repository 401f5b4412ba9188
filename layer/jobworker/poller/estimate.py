"""How long jobs take, learnt as they run: sizes claims and skips jobs that would not fit."""

from __future__ import annotations


class DurationEstimate:
    """Moving average of job durations, per kind and overall."""

    def __init__(self) -> None:
        self.by_kind: dict[str, float] = {}
        self.overall: float | None = None

    def record(self, kind: str, seconds: float) -> None:
        self.by_kind[kind] = _ewma(self.by_kind.get(kind), seconds)
        self.overall = _ewma(self.overall, seconds)

    def claim_limit(self, seconds_left: float, batch_size: int) -> int:
        """Slow start: one job until a duration is known, then what fits in the time left."""
        if self.overall is None:
            return 1
        fits = int(seconds_left / max(self.overall, 1e-6))
        return max(1, min(batch_size, fits))

    def expected(self, kind: str) -> float:
        """Expected duration of a job of ``kind`` (0 until one has run)."""
        return self.by_kind.get(kind, 0.0)

    def known(self, kind: str) -> bool:
        return kind in self.by_kind

    def typical(self) -> float:
        """Expected duration of a job of unknown kind (0 until one has run)."""
        return self.overall or 0.0


def _ewma(previous: float | None, value: float, weight: float = 0.3) -> float:
    return value if previous is None else previous + weight * (value - previous)
