"""Travel times for one route request: the provider it (or the deployment) names, one matrix per
vehicle profile, the haversine fallback only where the request allows it, and road geometry
for the routes found.

No queue, database or AWS imports: the deployment's choices come in as arguments (the job
passes them from :mod:`jobworker.aws.settings`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobworker.routes.matrix import Matrices, Point
from jobworker.routes.models import GenerateRoutesRequest, TravelSettings
from jobworker.routes.plan import RoutePlan
from jobworker.routes.travel import (
    HaversineProvider,
    LatLon,
    TravelError,
    TravelMatrix,
    TravelProvider,
    provider_for,
)

DeploymentOptions = Callable[[str], Mapping[str, Any]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class TravelTimes:
    """The matrices the solver plans with, and what the result says about them."""

    matrices: dict[str, TravelMatrix]  # by profile
    provider: TravelProvider  # the one whose times these are (haversine after a fallback)
    requested: str
    fell_back: bool = False
    reason: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def used(self) -> str:
        return next(iter(self.matrices.values())).provider if self.matrices else self.requested

    def summary(self) -> dict[str, Any]:
        return {"provider": self.used, "requested": self.requested,
                "profiles": sorted(self.matrices), "fell_back": self.fell_back,
                "reason": self.reason}

    def builder(self, profile: str) -> PreparedMatrices:
        return PreparedMatrices(self.matrices[profile])


@dataclass(frozen=True)
class PreparedMatrices:
    """A :class:`~jobworker.routes.matrix.MatrixBuilder` that hands back a matrix already built."""

    matrix: TravelMatrix

    def build(self, points: Sequence[Point]) -> Matrices:
        if len(points) != len(self.matrix.durations_minutes):
            raise ValueError("the prepared matrix was built for other points")
        return Matrices(distance_km=self.matrix.distances_km,
                        duration_minutes=self.matrix.durations_minutes)


def request_points(request: GenerateRoutesRequest) -> list[LatLon]:
    """Depot first, then the locations in order: the solver's matrix rows."""
    group = request.location_group
    return [(group.depot.lat, group.depot.lon), *((loc.lat, loc.lon) for loc in group.locations)]


def point_name(request: GenerateRoutesRequest, index: int) -> str:
    if index == 0:
        return "the depot"
    return f"location {request.location_group.locations[index - 1].id}"


def travel_times(request: GenerateRoutesRequest, *, deadline: float | None,
                 default_provider: str = "haversine",
                 deployment_options: DeploymentOptions = lambda name: {},
                 profiles: Sequence[str] | None = None) -> TravelTimes:
    """One matrix per profile from the chosen provider; raises :class:`TravelError` (its reason
    naming the depot or locations concerned) unless the request allows the fallback."""
    travel = request.settings.travel or TravelSettings(provider=default_provider)
    wanted = list(dict.fromkeys(profiles or [travel.profile]))
    points = request_points(request)
    try:
        options = {"speed_kmh": request.settings.speed_kmh,
                   **deployment_options(travel.provider), **travel.provider_options()}
        provider = provider_for(travel.provider, options)
        matrices = {profile: provider.matrix(points, profile, deadline=deadline)
                    for profile in wanted}
        return TravelTimes(matrices=matrices, provider=provider, requested=travel.provider)
    except TravelError as exc:
        reason = named(exc, request)
        if travel.fallback != "haversine":
            exc.reason, exc.args = reason, (reason,)
            raise
        fallback = HaversineProvider(request.settings.speed_kmh)
        matrices = {profile: fallback.matrix(points, profile, deadline=deadline)
                    for profile in wanted}
        note = (f"travel times from {travel.provider} were unavailable ({reason}): planned on "
                f"straight-line distances at {request.settings.speed_kmh:g} km/h instead")
        return TravelTimes(matrices=matrices, provider=fallback, requested=travel.provider,
                           fell_back=True, reason=reason, notes=[note])


def named(exc: TravelError, request: GenerateRoutesRequest) -> str:
    """The provider's reason, saying which depot or locations its point numbers are."""
    indexes = getattr(exc, "points", ())
    if not indexes:
        return exc.reason
    names = ", ".join(f"point {i} is {point_name(request, i)}" for i in indexes)
    return f"{exc.reason} ({names})"


def with_road_geometry(plan: RoutePlan, travel: TravelTimes, depot: LatLon, profile: str, *,
                       deadline: float | None, clock: Clock = time.monotonic) -> RoutePlan:
    """The plan with each route's legs along the roads, where the provider draws them.

    Drawing never fails the job: on an error, or once the deadline is near, the remaining
    routes keep straight lines and a note says why.
    """
    routes, notes = [], list(plan.notes)
    for index, route in enumerate(plan.routes):
        if deadline is not None and clock() >= deadline:
            notes.append(f"no time left to draw {len(plan.routes) - index} route(s) on the "
                         "roads: they are straight lines")
            routes += plan.routes[index:]
            break
        points = [depot, *((stop.lat, stop.lon) for stop in route.stops), depot]
        try:
            legs = travel.provider.leg_geometry(points, profile)
        except TravelError as exc:
            notes.append(f"route {route.vehicle} is drawn with straight lines: {exc.reason}")
            legs = None
        routes.append(route if legs is None else dataclasses.replace(route, legs=legs))
    return dataclasses.replace(plan, routes=routes, notes=notes)
