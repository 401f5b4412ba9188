"""Travel times between points, from a provider a request or a deployment names.

A provider answers two questions about an ordered list of (lat, lon) points for one vehicle
profile: the duration and distance matrix (what the solver plans with), and, where it can,
the road geometry of consecutive legs (what the map draws). Providers register by name;
the road providers live in :mod:`jobworker.routes.providers` and are imported on first use,
so that asking for ``haversine`` never loads a routing engine or an AWS client.

NOTE for the integrator: helper "fleet" owns this module (with the ``matrix`` provider);
this is the minimal version the road providers are written against.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.matrix import Point, haversine_km

FloatMatrix = NDArray[np.float64]
LatLon = tuple[float, float]
Polyline = list[LatLon]

DEFAULT_PROFILE = "car"
DEFAULT_SPEED_KMH = 40.0


class TravelError(Exception):
    """A provider could not give travel times; ``reason`` is meant for a dispatcher."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class TravelMatrix:
    """``durations_minutes[i, j]`` and ``distances_km[i, j]``: from point i to point j."""

    durations_minutes: FloatMatrix
    distances_km: FloatMatrix
    provider: str
    profile: str


class TravelProvider(Protocol):
    def matrix(
        self, points: Sequence[LatLon], profile: str, *, deadline: float | None
    ) -> TravelMatrix:
        """Durations and distances between every pair of ``points`` (lat, lon), in order.

        ``deadline`` is a ``time.monotonic()`` value the work must end by; raises
        :class:`TravelError` when the provider cannot answer (in time).
        """
        ...

    def leg_geometry(self, points: Sequence[LatLon], profile: str) -> list[Polyline] | None:
        """One polyline of (lat, lon) per consecutive leg; None: draw straight lines."""
        ...


ProviderFactory = Callable[[Mapping[str, Any]], TravelProvider]

_FACTORIES: dict[str, ProviderFactory] = {}
# Providers that register themselves when their module is first imported.
_LAZY_MODULES = {
    "osrm": "jobworker.routes.providers.osrm",
    "osrm-http": "jobworker.routes.providers.osrm_http",
    "amazon-location": "jobworker.routes.providers.amazon_location",
}


def register_provider(name: str, factory: ProviderFactory) -> None:
    _FACTORIES[name] = factory


def known_providers() -> list[str]:
    return sorted({*_FACTORIES, *_LAZY_MODULES})


def provider_for(name: str, options: Mapping[str, Any]) -> TravelProvider:
    """The provider registered as ``name``, configured with ``options``."""
    if name not in _FACTORIES and name in _LAZY_MODULES:
        importlib.import_module(_LAZY_MODULES[name])
    factory = _FACTORIES.get(name)
    if factory is None:
        raise TravelError(
            f"unknown travel provider {name!r}; known: {', '.join(known_providers())}"
        )
    return factory(options)


@dataclass(frozen=True)
class HaversineProvider:
    """Great-circle distances travelled at ``speed_kmh``: any profile, never fails."""

    speed_kmh: float = DEFAULT_SPEED_KMH

    def matrix(
        self, points: Sequence[LatLon], profile: str, *, deadline: float | None
    ) -> TravelMatrix:
        distances = haversine_km([Point(lat, lon) for lat, lon in points])
        return TravelMatrix(
            durations_minutes=distances * (60.0 / self.speed_kmh),
            distances_km=distances,
            provider="haversine",
            profile=profile,
        )

    def leg_geometry(self, points: Sequence[LatLon], profile: str) -> list[Polyline] | None:
        return None


def _haversine(options: Mapping[str, Any]) -> TravelProvider:
    return HaversineProvider(float(options.get("speed_kmh", DEFAULT_SPEED_KMH)))


register_provider("haversine", _haversine)
