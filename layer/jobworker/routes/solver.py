"""The solver entry point shared by the ``generate_routes`` job and ``jobworker bench routes``.

:class:`RoutingProblem` is the problem whatever its source (an API request, a VRPLIB file);
:func:`solve` runs PyVRP's iterated local search on it until a time limit and returns a
:class:`~jobworker.routes.plan.RoutePlan`. PyVRP is imported inside :func:`solve` only, so
that importing this module costs numpy and nothing more.

Everything here is integer, as PyVRP wants: distances in "units" (metres for haversine
problems, the instance's rounded units for VRPLIB) and times in seconds. The plan converts back
to kilometres and minutes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.matrix import FloatMatrix, HaversineMatrixBuilder, MatrixBuilder, Point
from jobworker.routes.models import GenerateRoutesRequest
from jobworker.routes.plan import (
    KM_DIGITS,
    MINUTE_DIGITS,
    PlannedRoute,
    PlannedStop,
    RoutePlan,
    SolverInfo,
    StopReason,
)

if TYPE_CHECKING:
    from pyvrp import ProblemData, Result, Route, Solution

__all__ = [
    "InfeasibleProblem",
    "IntMatrix",
    "RoutePlan",
    "RoutingProblem",
    "default_stale_iterations",
    "precheck",
    "problem_from_request",
    "solve",
]

IntMatrix = NDArray[np.int64]
Heartbeat = Callable[[], None]
Clock = Callable[[], float]

METRES_PER_KM = 1000.0
SECONDS_PER_MINUTE = 60.0
DEFAULT_SEED = 0  # a fixed default keeps plans repeatable unless the caller asks otherwise
HEARTBEAT_EVERY_SECONDS = 1.0
# Stop once the best plan has not improved for this many search iterations per location
# (at least the minimum). Small problems converge in well under a second and would otherwise
# idle through the whole budget; larger ones keep improving late, and at the few thousand
# iterations per second PyVRP manages from ~100 locations on, this rarely fires before 30 s.
STALE_ITERATIONS_PER_LOCATION = 1_000
MIN_STALE_ITERATIONS = 10_000
_MAX_NAMED = 10  # locations named in one message
_SCALE_ROWS = 256  # rows per block when scaling matrices (bounds temporaries on big inputs)
UNLIMITED = np.iinfo(np.int64).max  # PyVRP's own "no limit" for time windows and durations


class InfeasibleProblem(Exception):
    """No plan can meet the constraints (or none was found): says which locations and why."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("no feasible routes: " + "; ".join(reasons))
        self.reasons = list(reasons)


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    """A capacitated VRP with time windows, independent of where it came from.

    Index 0 of ``coordinates`` and of both matrices is the depot; location ``i`` (0-based in
    ``location_ids``, ``demands``, ...) is row ``i + 1``. ``duration`` is travel time only;
    service times are separate. Time windows are seconds from the start of the first day.
    """

    name: str
    location_ids: tuple[str, ...]
    coordinates: tuple[Point, ...]
    distance: IntMatrix  # in units; ``distance_units_per_km`` converts to km
    duration: IntMatrix  # seconds
    demands: tuple[int, ...]
    service_seconds: tuple[int, ...]
    time_windows: tuple[tuple[int, int] | None, ...]
    vehicles: int
    capacity: int
    max_route_seconds: int | None = None
    distance_units_per_km: float = METRES_PER_KM
    max_runtime_seconds: float | None = None  # the budget the user asked for, if any
    seed: int | None = None

    def __post_init__(self) -> None:
        n = len(self.location_ids)
        sizes = {len(self.demands), len(self.service_seconds), len(self.time_windows)}
        if sizes != {n} or len(self.coordinates) != n + 1:
            raise ValueError("locations, demands, service times and time windows differ in size")
        for matrix in (self.distance, self.duration):
            if matrix.shape != (n + 1, n + 1) or matrix.dtype != np.int64:
                raise ValueError(f"matrices must be int64 of shape {(n + 1, n + 1)}")
        if self.vehicles < 1 or self.capacity < 0:
            raise ValueError("need at least one vehicle and a non-negative capacity")

    @property
    def size(self) -> int:
        return len(self.location_ids)


def problem_from_request(
    request: GenerateRoutesRequest, builder: MatrixBuilder | None = None
) -> RoutingProblem:
    """The solver's view of an API request; haversine matrices unless ``builder`` says else."""
    group, settings = request.location_group, request.settings
    points = [Point(group.depot.lat, group.depot.lon)]
    points += [Point(loc.lat, loc.lon) for loc in group.locations]
    matrices = (builder or HaversineMatrixBuilder(settings.speed_kmh)).build(points)
    return RoutingProblem(
        name="request",
        location_ids=tuple(loc.id for loc in group.locations),
        coordinates=tuple(points),
        distance=_scaled(matrices.distance_km, METRES_PER_KM),
        duration=_scaled(matrices.duration_minutes, SECONDS_PER_MINUTE),
        demands=tuple(loc.demand for loc in group.locations),
        service_seconds=tuple(_seconds(loc.service_minutes) for loc in group.locations),
        time_windows=tuple(
            None
            if loc.time_window is None
            else (_seconds(loc.time_window.earliest), _seconds(loc.time_window.latest))
            for loc in group.locations
        ),
        vehicles=settings.vehicles,
        capacity=settings.vehicle_capacity,
        max_route_seconds=(
            None if settings.max_route_minutes is None else _seconds(settings.max_route_minutes)
        ),
        max_runtime_seconds=settings.max_runtime_seconds,
        seed=settings.seed,
    )


def _scaled(matrix: FloatMatrix, factor: float) -> IntMatrix:
    """``rint(matrix * factor)`` as int64, by row blocks: no full-size float temporaries."""
    out = np.empty(matrix.shape, dtype=np.int64)
    for start in range(0, len(matrix), _SCALE_ROWS):
        block = slice(start, start + _SCALE_ROWS)
        out[block] = np.rint(matrix[block] * factor)
    return out


def _seconds(minutes: float) -> int:
    return round(minutes * SECONDS_PER_MINUTE)


def _minutes(seconds: float) -> float:
    return round(seconds / SECONDS_PER_MINUTE, MINUTE_DIGITS)


def _name_some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED])
    more = len(names) - _MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


# --- checks that need no search -------------------------------------------------------------


def precheck(problem: RoutingProblem) -> None:
    """Raise :class:`InfeasibleProblem` for what no search can fix, naming the locations."""
    reasons = [
        reason
        for reason in (
            _fleet_too_small(problem),
            _too_heavy(problem),
            _windows_unreachable(problem),
            _round_trips_too_long(problem),
        )
        if reason
    ]
    if reasons:
        raise InfeasibleProblem(reasons)


def _fleet_too_small(problem: RoutingProblem) -> str | None:
    total, fleet = sum(problem.demands), problem.vehicles * problem.capacity
    if total <= fleet:
        return None
    return (
        f"total demand {total} exceeds the fleet capacity of {fleet} "
        f"({problem.vehicles} x {problem.capacity})"
    )


def _too_heavy(problem: RoutingProblem) -> str | None:
    heavy = [
        f"{loc_id} ({demand})"
        for loc_id, demand in zip(problem.location_ids, problem.demands, strict=True)
        if demand > problem.capacity
    ]
    if not heavy:
        return None
    return f"demand above the vehicle capacity of {problem.capacity} at {_name_some(heavy)}"


def _windows_unreachable(problem: RoutingProblem) -> str | None:
    """Vehicles leave the depot at minute 0 at the earliest: some windows close before that."""
    late = []
    for i, window in enumerate(problem.time_windows):
        earliest_arrival = int(problem.duration[0, i + 1])
        if window is not None and earliest_arrival > window[1]:
            late.append(
                f"{problem.location_ids[i]} (reachable at minute {_minutes(earliest_arrival):g},"
                f" window closes at {_minutes(window[1]):g})"
            )
    if not late:
        return None
    return f"time window closes before a vehicle can get there from the depot: {_name_some(late)}"


def _round_trips_too_long(problem: RoutingProblem) -> str | None:
    """A route serving one location alone is the shortest route that serves it."""
    limit = problem.max_route_seconds
    if limit is None:
        return None
    too_long = []
    for i in range(problem.size):
        needed = (
            int(problem.duration[0, i + 1])
            + problem.service_seconds[i]
            + int(problem.duration[i + 1, 0])
        )
        if needed > limit:
            too_long.append(f"{problem.location_ids[i]} ({_minutes(needed):g} min)")
    if not too_long:
        return None
    return (
        f"max_route_minutes {_minutes(limit):g} is shorter than a direct round trip from the"
        f" depot to {_name_some(too_long)}"
    )


# --- the search -----------------------------------------------------------------------------


class _StopCriterion:
    """PyVRP's stopping criterion, called once per search iteration: time, heartbeat, staleness.

    It stops when the next iteration would likely end after the deadline (the longest
    iteration seen so far is the estimate), so big problems do not overrun by one iteration.
    An exception from ``heartbeat`` propagates out of PyVRP and aborts the solve.
    """

    def __init__(
        self,
        *,
        deadline: float,
        clock: Clock,
        heartbeat: Heartbeat | None,
        started: float,
        stale_iterations: int,
    ) -> None:
        self._deadline = deadline
        self._clock = clock
        self._heartbeat = heartbeat
        self._stale_limit = stale_iterations
        self._last_beat = started
        self._last_call: float | None = None
        self._longest_step = 0.0
        self._best: int | None = None
        self._stale = 0
        self.reason: StopReason = "time_limit"

    def __call__(self, best_cost: int) -> bool:
        now = self._clock()
        self._beat(now)
        if self._last_call is not None:  # the first gap is setup, not an iteration
            self._longest_step = max(self._longest_step, now - self._last_call)
        self._last_call = now
        self._track_improvement(best_cost)
        if now + self._longest_step >= self._deadline:
            self.reason = "time_limit"
            return True
        if self._stale >= self._stale_limit:
            self.reason = "converged"
            return True
        return False

    def _beat(self, now: float) -> None:
        if self._heartbeat is not None and now - self._last_beat >= HEARTBEAT_EVERY_SECONDS:
            self._last_beat = now
            self._heartbeat()

    def _track_improvement(self, best_cost: int) -> None:
        if self._best is None or best_cost < self._best:
            self._best = best_cost
            self._stale = 0
        else:
            self._stale += 1


def solve(
    problem: RoutingProblem,
    *,
    time_limit_seconds: float,
    heartbeat: Heartbeat | None = None,
    seed: int | None = None,
    clock: Clock = time.monotonic,
    stale_iterations: int | None = None,
) -> RoutePlan:
    """Best routes found within ``time_limit_seconds`` (setup included).

    ``heartbeat`` is called about once a second while searching; whatever it raises aborts
    the solve and propagates. ``seed`` overrides ``problem.seed`` (default 0). The search
    ends early once ``stale_iterations`` iterations in a row found nothing better (default:
    :func:`default_stale_iterations`). Raises :class:`InfeasibleProblem` when the constraints
    cannot be met, or when the best plan found in time still breaks one of them.

    PyVRP's setup (neighbour lists, a first local search) cannot be interrupted and holds the
    GIL: on this 2-core machine about 0.2 s at 1,000 locations, 1 s at 2,000 and 5 s at
    5,000. A caller with a hard deadline leaves that margin.
    """
    started = clock()
    used_seed = seed if seed is not None else problem.seed
    used_seed = DEFAULT_SEED if used_seed is None else used_seed
    if problem.size == 0:
        return _empty_plan(used_seed, time_limit_seconds)
    precheck(problem)
    stop = _StopCriterion(
        deadline=started + max(time_limit_seconds, 0.0),
        clock=clock,
        heartbeat=heartbeat,
        started=started,
        stale_iterations=stale_iterations or default_stale_iterations(problem.size),
    )
    result = _search(problem, stop, used_seed)
    runtime = clock() - started
    if not result.is_feasible():
        raise InfeasibleProblem(_explain_infeasible(problem, result.best, runtime))
    reason = stop.reason
    if reason == "time_limit" and _cut_short(problem, time_limit_seconds):
        reason = "deadline"
    info = SolverInfo(
        cost=round(result.cost()),
        feasible=True,
        runtime_seconds=round(runtime, 3),
        iterations=result.num_iterations,
        stopped_early=reason == "deadline",
        stop_reason=reason,
        seed=used_seed,
        time_limit_seconds=time_limit_seconds,
    )
    return _plan(problem, result.best, info)


def _search(problem: RoutingProblem, stop: _StopCriterion, seed: int) -> Result:
    from pyvrp import solve as pyvrp_solve
    from pyvrp.exceptions import PenaltyBoundWarning

    data = _problem_data(problem)
    with warnings.catch_warnings():
        # PyVRP warns when its penalties max out on an instance it cannot make feasible; we
        # report that case ourselves, as InfeasibleProblem, so the warning is only noise.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        return pyvrp_solve(data, stop, seed=seed, collect_stats=False, display=False)


def default_stale_iterations(size: int) -> int:
    """Iterations without improvement after which the search counts as converged."""
    return max(MIN_STALE_ITERATIONS, STALE_ITERATIONS_PER_LOCATION * size)


def _cut_short(problem: RoutingProblem, time_limit_seconds: float) -> bool:
    """Was the search given less time than the user asked for (the job's deadline was near)?"""
    requested = problem.max_runtime_seconds
    return requested is not None and time_limit_seconds < requested


def _empty_plan(seed: int, time_limit_seconds: float) -> RoutePlan:
    info = SolverInfo(
        cost=0,
        feasible=True,
        runtime_seconds=0.0,
        iterations=0,
        stopped_early=False,
        stop_reason="empty",
        seed=seed,
        time_limit_seconds=time_limit_seconds,
    )
    return RoutePlan(routes=[], solver=info, notes=["no locations to visit"])


def _problem_data(problem: RoutingProblem) -> ProblemData:
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType

    clients = []
    for i in range(problem.size):
        early, late = problem.time_windows[i] or (0, UNLIMITED)
        clients.append(
            Client(
                location=i + 1,
                delivery=[problem.demands[i]],
                service_duration=problem.service_seconds[i],
                tw_early=early,
                tw_late=late,
                name=problem.location_ids[i],
            )
        )
    fleet = VehicleType(
        num_available=problem.vehicles,
        capacity=[problem.capacity],
        shift_duration=UNLIMITED
        if problem.max_route_seconds is None
        else problem.max_route_seconds,
    )
    # PyVRP's stubs spell matrices as ``ndarray[int]``, which no numpy type satisfies.
    distances: list[Any] = [problem.distance]
    durations: list[Any] = [problem.duration]
    return ProblemData(
        locations=[Location(x=point.lon, y=point.lat) for point in problem.coordinates],
        clients=clients,
        depots=[Depot(location=0)],
        vehicle_types=[fleet],
        distance_matrices=distances,
        duration_matrices=durations,
    )


def _explain_infeasible(problem: RoutingProblem, best: Solution, runtime: float) -> list[str]:
    """Say what the best plan found still breaks, and what a dispatcher can change."""
    late: list[str] = []
    overloaded = too_long = 0
    for route in best.routes():
        late += [
            problem.location_ids[activity.idx]
            for activity in route.schedule()
            if activity.is_client() and activity.time_warp > 0
        ]
        overloaded += route.has_excess_load()
        too_long += _exceeds_max_duration(problem, route)
    found = [f"searched {runtime:.1f} s with {problem.vehicles} vehicles"]
    if late:
        found.append(f"the best plan still arrives after the time window at {_name_some(late)}")
    if overloaded:
        found.append(f"{overloaded} route(s) over the vehicle capacity of {problem.capacity}")
    if too_long:
        limit = _minutes(problem.max_route_seconds or 0)
        found.append(f"{too_long} route(s) longer than max_route_minutes {limit:g}")
    if best.num_missing_clients():
        found.append(f"{best.num_missing_clients()} location(s) left unvisited")
    found.append("add vehicles, widen time windows, raise max_route_minutes or max_runtime_seconds")
    return found


def _exceeds_max_duration(problem: RoutingProblem, route: Route) -> bool:
    limit = problem.max_route_seconds
    return limit is not None and route.duration() > limit


def _plan(problem: RoutingProblem, best: Solution, info: SolverInfo) -> RoutePlan:
    routes = [_route(problem, vehicle, route) for vehicle, route in enumerate(best.routes(), 1)]
    return RoutePlan(routes=routes, solver=info, notes=_notes(problem, info))


def _notes(problem: RoutingProblem, info: SolverInfo) -> list[str]:
    """What a dispatcher should know about how the search ended."""
    if info.stop_reason == "deadline":
        return [
            f"the job's deadline cut the search to {info.time_limit_seconds:g} s of the"
            f" {problem.max_runtime_seconds:g} s asked for: this is the best plan found by then"
        ]
    if info.stop_reason == "converged":
        return [f"search ended after {info.runtime_seconds:.1f} s: it stopped finding better plans"]
    return []


def _route(problem: RoutingProblem, vehicle: int, route: Route) -> PlannedRoute:
    schedule = route.schedule()
    stops: list[PlannedStop] = []
    previous, carried = 0, 0  # matrix row of the previous place; demand served so far
    for activity in schedule:
        if not activity.is_client():
            continue
        i = activity.idx  # client index: matrix row i + 1
        carried += problem.demands[i]
        arrival = activity.start_time - activity.wait_duration
        stops.append(
            PlannedStop(
                location_id=problem.location_ids[i],
                sequence=len(stops) + 1,
                lat=problem.coordinates[i + 1].lat,
                lon=problem.coordinates[i + 1].lon,
                arrival_minute=_minutes(arrival),
                wait_minutes=_minutes(activity.wait_duration),
                departure_minute=_minutes(activity.end_time),
                demand=problem.demands[i],
                cumulative_demand=carried,
                distance_from_previous_km=_km(problem, int(problem.distance[previous, i + 1])),
            )
        )
        previous = i + 1
    return PlannedRoute(
        vehicle=vehicle,
        stops=stops,
        load=carried,
        distance_km=_km(problem, route.distance()),
        duration_minutes=_minutes(route.duration()),
        start_minute=_minutes(schedule[0].end_time),
        end_minute=_minutes(schedule[-1].start_time),
        distance_to_depot_km=_km(problem, int(problem.distance[previous, 0])),
    )


def _km(problem: RoutingProblem, units: int) -> float:
    return round(units / problem.distance_units_per_km, KM_DIGITS)
