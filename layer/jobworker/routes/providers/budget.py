"""What every road provider does the same way: respect the job's deadline, split big tables
into the blocks a service accepts, and say which points a failure is about."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from jobworker.routes.travel import LatLon, ProviderUnavailable, TravelError

__all__ = ["Clock", "PointError", "ProviderUnavailable", "blocks", "check_deadline",
           "describe_point", "seconds_left"]

Clock = Callable[[], float]


class PointError(TravelError):
    """A failure about particular points (indexes into the list the provider was given), so
    that the caller can name them (the depot, a location id) in the reason it reports."""

    def __init__(self, reason: str, points: Sequence[int]) -> None:
        super().__init__(reason)
        self.points = tuple(points)


def check_deadline(deadline: float | None, clock: Clock = time.monotonic, *,
                   provider: str, done: int, total: int) -> None:
    """Raise when the job's deadline has passed; ``done`` of ``total`` cells are built."""
    if deadline is not None and clock() >= deadline:
        raise TravelError(
            f"{provider}: the job's deadline passed while building the travel-time matrix "
            f"({done} of {total} cells done); give the job more time or fewer locations"
        )


def seconds_left(deadline: float | None, clock: Clock = time.monotonic) -> float | None:
    return None if deadline is None else deadline - clock()


def blocks(count: int, size: int) -> Iterator[range]:
    """``range(0, size)``, ``range(size, 2 * size)``, ... covering ``range(count)``."""
    for start in range(0, count, size):
        yield range(start, min(start + size, count))


def describe_point(points: Sequence[LatLon], index: int) -> str:
    lat, lon = points[index]
    return f"point {index} ({lat:.5f}, {lon:.5f})"
