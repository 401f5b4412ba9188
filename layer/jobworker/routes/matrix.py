"""Distance and travel-time matrices between points, behind an interface a road router can fill.

The solver only needs two square matrices (kilometres, minutes) indexed like the points it was
given. :class:`HaversineMatrixBuilder` gives great-circle distances at a constant speed; a
builder asking a road-network service for the same two matrices can replace it later without
touching the solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG), the usual choice for haversine
_ROWS_PER_CHUNK = 256  # bounds the float temporaries to 256 x n per array on big inputs

FloatMatrix = NDArray[np.float64]


class Point(NamedTuple):
    lat: float
    lon: float


@dataclass(frozen=True, eq=False)
class Matrices:
    """``distance_km[i, j]`` and ``duration_minutes[i, j]``: travel from point i to point j."""

    distance_km: FloatMatrix
    duration_minutes: FloatMatrix


class MatrixBuilder(Protocol):
    def build(self, points: Sequence[Point]) -> Matrices:
        """Matrices for travel between every pair of ``points``, in their order."""
        ...


def haversine_km(points: Sequence[Point]) -> FloatMatrix:
    """Great-circle distances in km between every pair of points (vectorised, chunked by row)."""
    coords = np.radians(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    lat, lon = coords[:, 0], coords[:, 1]
    cos_lat = np.cos(lat)
    n = len(coords)
    out = np.empty((n, n), dtype=np.float64)
    for start in range(0, n, _ROWS_PER_CHUNK):
        rows = slice(start, min(start + _ROWS_PER_CHUNK, n))
        half_dlat = (lat[None, :] - lat[rows, None]) / 2
        half_dlon = (lon[None, :] - lon[rows, None]) / 2
        a = np.sin(half_dlat) ** 2 + cos_lat[rows, None] * cos_lat[None, :] * np.sin(half_dlon) ** 2
        # min(1, .) keeps rounding from pushing arcsin out of its domain for antipodes.
        out[rows] = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return out


@dataclass(frozen=True)
class HaversineMatrixBuilder:
    """Straight-line (great-circle) distances, travelled at ``speed_kmh`` everywhere."""

    speed_kmh: float

    def __post_init__(self) -> None:
        if not self.speed_kmh > 0:
            raise ValueError(f"speed_kmh must be positive, not {self.speed_kmh}")

    def build(self, points: Sequence[Point]) -> Matrices:
        distance = haversine_km(points)
        return Matrices(distance_km=distance, duration_minutes=distance * (60.0 / self.speed_kmh))
