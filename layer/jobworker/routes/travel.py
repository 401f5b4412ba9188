"""Where travel times come from: providers of duration and distance matrices, by name.

A :class:`TravelProvider` answers, for points given as ``(lat, lon)`` and a travel profile
(``car``, ``truck``, ...), one :class:`TravelMatrix` of minutes and kilometres, and may give
the road geometry of each leg for the map. Two are built in: ``haversine`` (great-circle
distance at the request's speed, today's behaviour) and ``matrix`` (the request's own
matrix); road routers register more with :func:`register_provider`. A provider that fails
raises :class:`TravelError` with a reason a dispatcher can read; the job then falls back (to
``settings.travel.fallback``) and says so in the result.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.matrix import Point, haversine_km
from jobworker.routes.travel_options import (
    ProviderOptions,
    known_providers,
    options_model,
    register_options,
)

FloatMatrix = NDArray[np.float64]
LatLon = tuple[float, float]
Polyline = list[LatLon]


class TravelError(Exception):
    """A provider could not answer; ``reason`` says why, for the dispatcher."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(TravelError):
    """The provider did not answer (unreachable, overloaded, throttled): a later attempt of the
    job may succeed. Any other TravelError (a stop off the roads, a profile the provider lacks)
    would fail the same way again."""


@dataclass(frozen=True)
class TravelMatrix:
    """``durations_minutes[i, j]`` and ``distances_km[i, j]``: from point i to point j."""

    durations_minutes: FloatMatrix
    distances_km: FloatMatrix
    provider: str
    profile: str


class TravelProvider(Protocol):
    def matrix(self, points: Sequence[LatLon], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        """Travel between every pair of ``points`` (in their order); by ``deadline``
        (a ``time.monotonic()`` value) or raise :class:`TravelError`."""
        ...

    def leg_geometry(self, points: Sequence[LatLon],
                     profile: str) -> list[list[LatLon]] | None:
        """One polyline of (lat, lon) per consecutive pair of ``points``; None = straight."""
        ...


ProviderFactory = Callable[[Mapping[str, Any]], TravelProvider]
_PROVIDERS: dict[str, ProviderFactory] = {}
# The road providers (jobworker.routes.providers) register when their module is imported,
# which happens the first time a request names them: haversine never loads a routing engine.
_ROAD_PROVIDERS = {
    "osrm": "jobworker.routes.providers.osrm",
    "osrm-http": "jobworker.routes.providers.osrm_http",
    "amazon-location": "jobworker.routes.providers.amazon_location",
}


def register_provider(name: str, factory: ProviderFactory,
                      options: type[ProviderOptions] | None = None) -> None:
    """Make ``settings.travel.provider: name`` build its provider with ``factory(options)``;
    a request may set the fields of ``options`` (the API checks them), by default none."""
    _PROVIDERS[name] = factory
    if options is not None or options_model(name) is None:
        register_options(name, options or ProviderOptions)


def provider_for(name: str, options: Mapping[str, Any]) -> TravelProvider:
    """The provider registered as ``name``, built with ``options``; TravelError if unknown."""
    if name not in _PROVIDERS and name in _ROAD_PROVIDERS:
        importlib.import_module(_ROAD_PROVIDERS[name])
    try:
        factory = _PROVIDERS[name]
    except KeyError:
        known = ", ".join(provider_names())
        raise TravelError(f"unknown travel provider {name!r} (known: {known})") from None
    return factory(options)


def provider_names() -> list[str]:
    return known_providers()


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


@dataclass(frozen=True)
class HaversineProvider:
    """Great-circle distance travelled at ``speed_kmh`` (every profile alike)."""

    speed_kmh: float = 40.0

    def matrix(self, points: Sequence[LatLon], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        if _past(deadline):
            raise TravelError("no time left to build the travel matrix")
        distances = haversine_km([Point(lat, lon) for lat, lon in points])
        return TravelMatrix(durations_minutes=distances * (60.0 / self.speed_kmh),
                            distances_km=distances, provider="haversine", profile=profile)

    def leg_geometry(self, points: Sequence[LatLon],
                     profile: str) -> list[list[LatLon]] | None:
        return None


@dataclass(frozen=True)
class RequestMatrixProvider:
    """The request's own matrix: ``order`` names its rows; points are matched by position.

    The caller passes the points in the order of ``ids`` given at construction (the solver's
    place order), and the provider picks the rows and columns of those ids.
    """

    order: Sequence[str]
    durations: Sequence[Sequence[float]]
    distances: Sequence[Sequence[float]] | None
    ids: Sequence[str]

    def matrix(self, points: Sequence[LatLon], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        if len(points) != len(self.ids):
            raise TravelError("the matrix does not cover the places to route")
        row = {place_id: i for i, place_id in enumerate(self.order)}
        try:
            pick = np.asarray([row[place_id] for place_id in self.ids], dtype=np.intp)
        except KeyError as exc:
            raise TravelError(f"matrix.order does not list {exc.args[0]!r}") from None
        durations = np.asarray(self.durations, dtype=np.float64)[np.ix_(pick, pick)]
        if self.distances is None:
            distances = np.zeros_like(durations)
        else:
            distances = np.asarray(self.distances, dtype=np.float64)[np.ix_(pick, pick)]
        return TravelMatrix(durations_minutes=durations, distances_km=distances,
                            provider="matrix", profile=profile)

    def leg_geometry(self, points: Sequence[LatLon],
                     profile: str) -> list[list[LatLon]] | None:
        return None


def _haversine_factory(options: Mapping[str, Any]) -> TravelProvider:
    return HaversineProvider(speed_kmh=float(options.get("speed_kmh", 40.0)))


def _matrix_factory(options: Mapping[str, Any]) -> TravelProvider:
    try:
        return RequestMatrixProvider(order=options["order"], durations=options["durations"],
                                     distances=options.get("distances"), ids=options["ids"])
    except KeyError as exc:
        raise TravelError(f"the matrix provider needs {exc.args[0]!r}") from None


register_provider("haversine", _haversine_factory)
register_provider("matrix", _matrix_factory)
