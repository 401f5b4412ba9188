"""From an API request to the solver's :class:`~jobworker.routes.solver.RoutingProblem`.

Places are the depots, the vehicles' own start and end places, then the stops (matrix rows
in that order). Travel comes from the request's provider, one matrix pair per distinct
vehicle ``profile``; a provider that fails is replaced by the fallback (``haversine`` unless
the request says ``null``) and the result says so. Every phase checks the deadline.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jobworker.routes.bounds import METRES_PER_KM, ROUTE_HORIZON_SECONDS, UNREACHABLE_SECONDS
from jobworker.routes.checks import stop_obstacles
from jobworker.routes.models import (
    MAX_MATRIX_KM,
    MAX_SPEED_FACTOR,
    GenerateRoutesRequest,
    Point,
    VehicleType,
)
from jobworker.routes.plan import RoutePlan
from jobworker.routes.solver import (
    SECONDS_PER_MINUTE,
    FleetSpec,
    IntMatrix,
    Place,
    RoutingProblem,
    StopSpec,
    scaled,
)
from jobworker.routes.travel import TravelError, TravelMatrix, provider_for

Clock = Callable[[], float]
# The deployment's options for a provider by name (where its data or server is): the job
# passes them from jobworker.aws.settings; a request adds only its own safe options.
DeploymentOptions = Callable[[str], Mapping[str, Any]]


def no_deployment_options(name: str) -> Mapping[str, Any]:
    return {}
_CODES = {"no vehicle has": "skill", "over capacity": "capacity", "no time window": "window"}
# A profile's matrix holds each arc's time before a vehicle's speed factor divides it, so it
# keeps an arc exact up to what the fastest vehicle the API accepts still drives within the
# horizon; each vehicle's own matrix is capped at UNREACHABLE_SECONDS once divided (the
# solver's). Capping before dividing made an arc of three weeks look like two days to a
# vehicle at 10x. Unreachable here stays unreachable at every speed factor.
TRAVEL_CAP_SECONDS = UNREACHABLE_SECONDS * math.ceil(MAX_SPEED_FACTOR)


class OutOfTime(Exception):
    """The deadline passed while building the problem."""


def _seconds(minutes: float) -> int:
    return round(minutes * SECONDS_PER_MINUTE)


def _endpoint_key(ref: str | Point | None) -> str | tuple[float, float] | None:
    if ref is None or isinstance(ref, str):
        return ref
    return (ref.lat, ref.lon)


def _row_key(place: object) -> object:
    """A stop index as it is; an endpoint (depot id or Point) as :func:`_endpoint_key`."""
    if isinstance(place, int):
        return place
    assert isinstance(place, str | Point)
    return _endpoint_key(place)


def _places(request: GenerateRoutesRequest) -> tuple[list[Place], dict[object, int]]:
    """Every matrix row, and the row of each depot id, own endpoint (lat, lon) and stop."""
    places: list[Place] = []
    row: dict[object, int] = {}
    for depot in request.location_group.all_depots:
        row[depot.id] = len(places)
        places.append(Place(id=depot.id, lat=depot.lat, lon=depot.lon, depot=True))
    for vehicle in request.fleet():
        for name in ("start", "end"):
            key = _endpoint_key(getattr(vehicle, name))
            if isinstance(key, tuple) and key not in row:
                row[key] = len(places)
                places.append(Place(id=f"{vehicle.id}:{name}", lat=key[0], lon=key[1],
                                    depot=False))
    for i, location in enumerate(request.location_group.locations):
        row[i] = len(places)
        places.append(Place(id=location.id, lat=location.lat, lon=location.lon))
    return places, row


def travel_matrices(request: GenerateRoutesRequest, places: list[Place], *,
                    deadline: float | None, clock: Clock = time.monotonic,
                    deployment: DeploymentOptions = no_deployment_options,
                    ) -> tuple[dict[str, TravelMatrix], dict[str, Any]]:
    """One TravelMatrix per vehicle profile, and what the result says about travel."""
    travel = request.travel
    points = [(p.lat, p.lon) for p in places]
    profiles = sorted({vehicle.profile for vehicle in request.fleet()})
    matrices: dict[str, TravelMatrix] = {}
    fell_back, reasons = False, []
    used = travel.provider
    for profile in profiles:
        if deadline is not None and clock() >= deadline:
            raise OutOfTime("the deadline passed while building travel matrices")
        try:
            provider = provider_for(travel.provider,
                                    _options(request, travel.provider, places, deployment))
            matrices[profile] = provider.matrix(points, profile, deadline=deadline)
        except TravelError as exc:
            _name_points(exc, places)
            if not travel.fallback or travel.fallback == travel.provider:
                raise
            fallback = provider_for(travel.fallback,
                                    _options(request, travel.fallback, places, deployment))
            matrices[profile] = fallback.matrix(points, profile, deadline=deadline)
            fell_back, used = True, travel.fallback
            reasons.append(f"{travel.provider} ({profile}): {exc.reason}")
    info = {"provider": used if fell_back else travel.provider, "requested": travel.provider,
            "profiles": profiles, "fell_back": fell_back,
            "reason": "; ".join(reasons) or None}
    return matrices, info


def _name_points(exc: TravelError, places: list[Place]) -> None:
    """Say which depot or stop the provider's point numbers are (PointError.points)."""
    indexes = getattr(exc, "points", ())
    if indexes:
        names = ", ".join(
            f"point {i} is {'depot' if places[i].depot else 'location'} {places[i].id}"
            for i in indexes)
        exc.reason = f"{exc.reason} ({names})"
        exc.args = (exc.reason,)


def _options(request: GenerateRoutesRequest, name: str, places: list[Place],
             deployment: DeploymentOptions = no_deployment_options) -> dict[str, Any]:
    options = dict(deployment(name))
    if name == request.travel.provider:
        options.update(request.travel.options())
    if name == "haversine":
        options.setdefault("speed_kmh", request.settings.speed_kmh)
    if name == "matrix" and request.matrix is not None:
        options.update(order=request.matrix.order, durations=request.matrix.durations,
                       distances=request.matrix.distances, ids=[p.id for p in places])
    return options


def _integer(matrix: TravelMatrix, n: int) -> tuple[IntMatrix, IntMatrix]:
    """Units and seconds; what no route can use (non-finite, negative) becomes unreachable."""
    durations = np.asarray(matrix.durations_minutes, dtype=np.float64)
    distances = np.asarray(matrix.distances_km, dtype=np.float64)
    if durations.shape != (n, n) or distances.shape != (n, n):
        raise TravelError(f"{matrix.provider} answered a matrix of the wrong shape")
    durations = np.where(np.isfinite(durations) & (durations >= 0), durations,
                         TRAVEL_CAP_SECONDS / SECONDS_PER_MINUTE)
    distances = np.where(np.isfinite(distances) & (distances >= 0), distances, MAX_MATRIX_KM)
    return (scaled(np.minimum(distances, MAX_MATRIX_KM), METRES_PER_KM),
            scaled(durations, SECONDS_PER_MINUTE, cap=TRAVEL_CAP_SECONDS))


def _fleet_spec(vehicle: VehicleType, row: dict[object, int], home: str) -> FleetSpec:
    start = _endpoint_key(vehicle.start) or home
    end = _endpoint_key(vehicle.end)
    return FleetSpec(
        id=vehicle.id, count=vehicle.count, capacity=tuple(vehicle.capacities),
        start_row=row[start], end_row=None if end is None else row[end],
        earliest=_seconds(vehicle.shift.earliest) if vehicle.shift else 0,
        latest=_seconds(vehicle.shift.latest) if vehicle.shift else ROUTE_HORIZON_SECONDS,
        max_duration=None if vehicle.max_route_minutes is None
        else _seconds(vehicle.max_route_minutes),
        max_distance=None if vehicle.max_distance_km is None
        else math.floor(vehicle.max_distance_km * METRES_PER_KM),
        fixed_cost=vehicle.fixed_cost, cost_per_km=vehicle.cost_per_km,
        cost_per_hour=vehicle.cost_per_hour, speed_factor=vehicle.speed_factor,
        skills=frozenset(vehicle.skills), profile=vehicle.profile,
    )


def problem_from_request(request: GenerateRoutesRequest, *, deadline: float | None = None,
                         clock: Clock = time.monotonic,
                         deployment: DeploymentOptions = no_deployment_options,
                         ) -> RoutingProblem:
    """The solver's view of a request: travel from its provider, reasons for unservable stops.

    Raises :class:`TravelError` when travel times cannot be had (and no fallback helps) and
    :class:`OutOfTime` when ``deadline`` passes first.
    """
    places, row = _places(request)
    travel, info = travel_matrices(request, places, deadline=deadline, clock=clock,
                                   deployment=deployment)
    distance, duration = {}, {}
    for profile, matrix in travel.items():
        distance[profile], duration[profile] = _integer(matrix, len(places))
    if deadline is not None and clock() >= deadline:
        raise OutOfTime("the deadline passed while preparing the problem")
    fleet = request.fleet()
    home = request.location_group.all_depots[0].id
    dims = len(fleet[0].capacities)
    stops = tuple(
        StopSpec(
            id=loc.id, row=row[i], delivery=tuple(loc.delivery(dims)),
            pickup=tuple(loc.collection(dims)), service_seconds=_seconds(loc.service_minutes),
            windows=tuple((_seconds(w.earliest), _seconds(w.latest)) for w in loc.windows),
            skills=frozenset(loc.skills), required=loc.is_required,
            penalty=0.0 if loc.is_required else loc.skip_penalty,
        )
        for i, loc in enumerate(request.location_group.locations)
    )

    def matrix_travel(vehicle: VehicleType, a: object, b: object) -> tuple[float, float]:
        i, j = row[_row_key(a)], row[_row_key(b)]
        seconds = round(int(duration[vehicle.profile][i, j]) / vehicle.speed_factor)
        return seconds / SECONDS_PER_MINUTE, int(distance[vehicle.profile][i, j]) / METRES_PER_KM

    unavailable = {
        i: (next((code for start, code in _CODES.items() if why.startswith(start)), "limit"), why)
        for i, why in stop_obstacles(request, matrix_travel).items()
    }
    return RoutingProblem(
        name="request", places=tuple(places), stops=stops,
        fleet=tuple(_fleet_spec(vehicle, row, home) for vehicle in fleet),
        distance=distance, duration=duration,
        max_runtime_seconds=request.settings.max_runtime_seconds, seed=request.settings.seed,
        travel=info, unavailable=unavailable,
    )


def attach_geometry(plan: RoutePlan, request: GenerateRoutesRequest,
                    deployment: DeploymentOptions = no_deployment_options) -> RoutePlan:
    """Road polylines for the map from the provider that gave the travel times, if it has them.

    Best effort: a provider that fails here leaves straight lines (the plan is already made).
    """
    name = plan.travel.get("provider") or request.travel.provider
    if name in ("haversine", "matrix") or not plan.routes:
        return plan
    places, _ = _places(request)
    try:
        provider = provider_for(name, _options(request, name, places, deployment))
    except TravelError:
        return plan
    profile_of = {vehicle.id: vehicle.profile for vehicle in request.fleet()}
    routes = []
    for route in plan.routes:
        points = [(s.lat, s.lon) for s in route.stops]
        if route.start is not None:
            points.insert(0, (route.start.lat, route.start.lon))
        if route.end is not None:
            points.append((route.end.lat, route.end.lon))
        try:
            legs = provider.leg_geometry(points, profile_of.get(route.vehicle_type, "car"))
        except TravelError:
            legs = None
        if legs:
            line = [[lon, lat] for leg in legs for lat, lon in leg]
            route = dataclasses.replace(route, geometry=line)
        routes.append(route)
    return dataclasses.replace(plan, routes=routes)
