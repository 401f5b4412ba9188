"""What can be told about a route request before any search: the API's 422s and the job's reasons.

Stdlib only (the API runs it on every request). :func:`request_problems` lists what makes a
request unusable, each naming its field. :func:`stop_obstacles` says, per stop, why no vehicle
could serve it even on a route of its own (skills, load, windows, shifts, limits): a required
stop with an obstacle is a 422 (or a failed job when only the job's travel times show it), an
optional one is reported unassigned with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from jobworker.routes.models import (
        GenerateRoutesRequest,
        Location,
        Point,
        TimeWindow,
        VehicleType,
    )

EARTH_RADIUS_KM = 6371.0088
HORIZON_MINUTES = 7 * 1440  # as in models; every route ends by twice this (the solver too)
_SLACK_MINUTES = 1e-6  # float noise only; the job repeats the check on its integer matrices
# A travel function: (vehicle type, from, to) -> (minutes, km). Places are endpoints
# (a depot id or a Point) or stops (their index in the request's locations).
Place = "str | Point | int"
Travel = Callable[["VehicleType", object, object], tuple[float, float]]


def _name_some(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(a, 1.0)))


def request_problems(request: GenerateRoutesRequest) -> list[str]:
    """Everything that makes the request unusable, each message starting with its field."""
    problems = _dimension_problems(request) + _endpoint_problems(request)
    problems += _matrix_problems(request)
    if problems:
        return problems
    problems += _legacy_fleet_problems(request)
    travel = api_travel(request)
    obstacles = stop_obstacles(request, travel) if travel is not None else {}
    locations = request.location_group.locations
    problems += [
        f"location_group.locations.{i}: stop {locations[i].id}: {reason}"
        for i, reason in sorted(obstacles.items())
        if locations[i].is_required
    ][:10]
    problems += _required_load_problems(request)
    return problems


def _dimension_problems(request: GenerateRoutesRequest) -> list[str]:
    dimensions = len(request.fleet()[0].capacities)
    problems = []
    for i, location in enumerate(request.location_group.locations):
        for name in ("demand", "pickup"):
            value = getattr(location, name)
            stated = name in location.model_fields_set
            size = len(value) if isinstance(value, list) else 1
            if stated and size != dimensions and not (name == "pickup" and value == 0):
                problems.append(f"location_group.locations.{i}.{name}: {size} dimension(s), "
                                f"but vehicle capacities have {dimensions}")
    return problems[:10]


def _endpoint_problems(request: GenerateRoutesRequest) -> list[str]:
    depot_ids = {depot.id for depot in request.location_group.all_depots}
    problems = []
    if isinstance(request.settings.vehicles, list):
        for i, vehicle in enumerate(request.settings.vehicles):
            for name in ("start", "end"):
                ref = getattr(vehicle, name)
                if isinstance(ref, str) and ref not in depot_ids:
                    problems.append(f"settings.vehicles.{i}.{name}: unknown depot id {ref!r} "
                                    f"(depots: {_name_some(sorted(depot_ids))})")
                elif ref is not None and not isinstance(ref, str) and request.matrix is not None:
                    problems.append(f"settings.vehicles.{i}.{name}: with a matrix, start and "
                                    "end must be depot ids listed in matrix.order")
    return problems


def _matrix_problems(request: GenerateRoutesRequest) -> list[str]:
    provider = request.travel.provider
    if request.matrix is None:
        return ["matrix: travel provider 'matrix' needs a matrix"] if provider == "matrix" else []
    if provider != "matrix":
        return [f"settings.travel.provider: {provider!r} with a matrix; use 'matrix' or leave "
                "the matrix out"]
    group = request.location_group
    wanted = {depot.id for depot in group.all_depots} | {loc.id for loc in group.locations}
    listed = set(request.matrix.order)
    problems = []
    if wanted - listed:
        problems.append(f"matrix.order: missing {_name_some(sorted(wanted - listed))}")
    if listed - wanted:
        problems.append(f"matrix.order: unknown ids {_name_some(sorted(listed - wanted))}")
    return problems


def _legacy_fleet_problems(request: GenerateRoutesRequest) -> list[str]:
    """Today's numeric fleet: total demand and the heaviest stop against its one capacity."""
    settings = request.settings
    if not isinstance(settings.vehicles, int):
        return []
    capacity, vehicles = settings.vehicle_capacity or 1, settings.vehicles
    locations = request.location_group.locations
    problems = []
    total = sum(loc.delivery(1)[0] for loc in locations if loc.is_required)
    if total > vehicles * capacity:
        fleet = f"{vehicles} vehicle{'s' if vehicles != 1 else ''} x {capacity}"
        problems.append(f"total demand {total} exceeds the fleet capacity of "
                        f"{vehicles * capacity} ({fleet}): add vehicles or capacity")
    heavy = [loc for loc in locations if max(loc.delivery(1)[0], loc.collection(1)[0]) > capacity]
    if heavy:
        problems.append(f"demand above the vehicle capacity of {capacity} at: "
                        + _name_some([f"{loc.id} ({loc.delivery(1)[0]})" for loc in heavy]))
    return problems


def _required_load_problems(request: GenerateRoutesRequest) -> list[str]:
    if isinstance(request.settings.vehicles, int):
        return []
    fleet = request.fleet()
    dims = len(fleet[0].capacities)
    problems = []
    for d in range(dims):
        total = sum(loc.delivery(dims)[d] for loc in request.location_group.locations
                    if loc.is_required)
        room = sum(vehicle.count * vehicle.capacities[d] for vehicle in fleet)
        if total > room:
            problems.append(f"location_group.locations: required demand {total} in dimension "
                            f"{d} exceeds the fleet's capacity of {room}")
    return problems


# --- serving one stop alone -----------------------------------------------------------------


def api_travel(request: GenerateRoutesRequest) -> Travel | None:
    """Travel the API can know without asking anyone: straight lines, or the request's matrix."""
    group = request.location_group
    depots = {depot.id: depot for depot in group.all_depots}
    if request.travel.provider == "matrix" and request.matrix is not None:
        matrix = request.matrix
        row = {place_id: i for i, place_id in enumerate(matrix.order)}

        def index(place: object) -> int:
            if isinstance(place, int):
                return row[group.locations[place].id]
            assert isinstance(place, str)
            return row[place]

        def from_matrix(vehicle: VehicleType, a: object, b: object) -> tuple[float, float]:
            i, j = index(a), index(b)
            km = matrix.distances[i][j] if matrix.distances is not None else 0.0
            return matrix.durations[i][j] / vehicle.speed_factor, km

        return from_matrix
    if request.travel.provider != "haversine":
        return None  # a road provider: only the job knows its travel times
    speed = request.settings.speed_kmh

    def where(place: object) -> Point | Location:
        if isinstance(place, int):
            return group.locations[place]
        if isinstance(place, str):
            return depots[place]
        return cast("Point", place)  # a vehicle's own start or end

    def straight(vehicle: VehicleType, a: object, b: object) -> tuple[float, float]:
        p, q = where(a), where(b)
        km = haversine_km(p.lat, p.lon, q.lat, q.lon)
        return km * 60.0 / speed / vehicle.speed_factor, km

    return straight


def stop_obstacles(request: GenerateRoutesRequest, travel: Travel) -> dict[int, str]:
    """Per stop (index) that no vehicle type can serve even alone: the reason, in words."""
    fleet = request.fleet()
    home = request.location_group.all_depots[0].id
    dims = len(fleet[0].capacities)
    obstacles = {}
    for i, location in enumerate(request.location_group.locations):
        reason = _why_unservable(i, location, fleet, home, dims, travel)
        if reason is not None:
            obstacles[i] = reason
    return obstacles


def _why_unservable(i: int, location: Location, fleet: Sequence[VehicleType], home: str,
                    dims: int, travel: Travel) -> str | None:
    skilled = [v for v in fleet if set(location.skills) <= set(v.skills)]
    if not skilled:
        return f"no vehicle has the skill(s) {', '.join(sorted(location.skills))}"
    delivery, pickup = location.delivery(dims), location.collection(dims)
    roomy = [v for v in skilled
             if all(max(dl, pu) <= cap
                    for dl, pu, cap in zip(delivery, pickup, v.capacities, strict=True))]
    if not roomy:
        return (f"over capacity: its load {delivery} (pickup {pickup}) exceeds every vehicle "
                "type that has its skills")
    verdicts = [_alone(i, location, v, home, travel) for v in roomy]
    if any(verdict is None for verdict in verdicts):
        return None
    return verdicts[0]


def _alone(i: int, location: Location, vehicle: VehicleType, home: str,
           travel: Travel) -> str | None:
    """None when ``vehicle`` can serve the stop on a route of its own, else why not."""
    start = vehicle.start if vehicle.start is not None else home
    out_minutes, out_km = travel(vehicle, start, i)
    back_minutes, back_km = travel(vehicle, i, vehicle.end) if vehicle.end is not None else (0, 0)
    shift_early = vehicle.shift.earliest if vehicle.shift else 0.0
    shift_late = vehicle.shift.latest if vehicle.shift else 2.0 * HORIZON_MINUTES
    arrive = shift_early + out_minutes
    windows: list[TimeWindow | None] = list(location.windows) or [None]
    reachable = False
    for window in windows:
        begin = arrive if window is None else max(arrive, window.earliest)
        if window is not None and begin > window.latest + _SLACK_MINUTES:
            continue
        if begin + location.service_minutes + back_minutes <= shift_late + _SLACK_MINUTES:
            reachable = True
            break
    if not reachable:
        return (f"no time window reachable in any shift (earliest arrival minute "
                f"{arrive:.1f})")
    needed = out_minutes + location.service_minutes + back_minutes
    if vehicle.max_route_minutes is not None and needed > vehicle.max_route_minutes + 1e-6:
        return (f"a route serving it alone takes {needed:.1f} min, more than every vehicle's "
                "max_route_minutes")
    if vehicle.max_distance_km is not None and out_km + back_km > vehicle.max_distance_km + 1e-9:
        return (f"a route serving it alone is {out_km + back_km:.1f} km, more than every "
                "vehicle's max_distance_km")
    return None


# --- memory ---------------------------------------------------------------------------------

BASE_MB = 100.0  # Python, numpy, PyVRP and the poller, measured at 58 MB; rounded up
# Bytes per matrix cell at the peak: float64 minutes and km per travel profile, and per
# solver profile our int64 pair plus PyVRP's copy (measured 48 bytes a cell for one of each:
# 252 MB at 2,000 stops, 487 MB at 3,000).
BYTES_PER_CELL_TRAVEL = 16.0
BYTES_PER_CELL_SOLVER = 32.0
MEMORY_SAFETY = 1.25


def estimated_peak_mb(request: GenerateRoutesRequest) -> float:
    """What solving ``request`` takes at its peak, in MB (a generous estimate)."""
    fleet = request.fleet()
    group = request.location_group
    endpoints = {(p.lat, p.lon) for v in fleet for p in (v.start, v.end)
                 if p is not None and not isinstance(p, str)}
    cells = (len(group.all_depots) + len(endpoints) + 1
             + sum(max(1, len(loc.windows)) for loc in group.locations)) ** 2
    skilled = any(loc.skills for loc in group.locations)
    solver_profiles = len({(v.profile, v.speed_factor, frozenset(v.skills) if skilled else None)
                           for v in fleet})
    travel_profiles = len({v.profile for v in fleet})
    per_cell = BYTES_PER_CELL_TRAVEL * travel_profiles + BYTES_PER_CELL_SOLVER * solver_profiles
    return BASE_MB + MEMORY_SAFETY * cells * per_cell / 2**20


def memory_problem(request: GenerateRoutesRequest, poller_memory_mb: float) -> str | None:
    """Why the configured poller cannot hold ``request``, or None when it can."""
    needed = estimated_peak_mb(request)
    if needed <= poller_memory_mb:
        return None
    return (f"location_group.locations: {len(request.location_group.locations)} stops with "
            f"{len({v.profile for v in request.fleet()})} travel profile(s) need about "
            f"{needed:.0f} MB, more than the poller's {poller_memory_mb:.0f} MB: send fewer "
            "stops per job, fewer distinct vehicle profiles, or raise PollerMemoryMB")
