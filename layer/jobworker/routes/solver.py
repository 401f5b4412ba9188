"""The solver entry point shared by the ``generate_routes`` job and ``jobworker bench routes``.

:class:`RoutingProblem` is the problem whatever its source (an API request, a VRPLIB file):
places (matrix rows), stops, vehicle types and one integer matrix pair per travel profile.
:func:`solve` runs PyVRP's iterated local search on it until a time limit and returns a
:class:`~jobworker.routes.plan.RoutePlan`. PyVRP is imported inside :func:`solve` only, so
that importing this module costs numpy and nothing more.

How the request maps onto PyVRP's own features (no hand-made search):

* vehicle types: ``VehicleType`` with its capacity per dimension, start and end depot,
  shift (``tw_early``/``tw_late``), ``shift_duration``, ``max_distance``, fixed and unit costs,
  and a matrix ``profile``;
* several depots, and start/end places of a vehicle's own: PyVRP depots;
* open routes: an end depot every place reaches in zero time and distance;
* delivery and pickup: ``Client.delivery`` / ``Client.pickup`` (simultaneous);
* optional stops: ``required=False`` with ``prize`` = the penalty of skipping them;
* several time windows: one client per window in a mutually exclusive ``ClientGroup``
  (required when the stop is);
* skills: PyVRP has no skills; a vehicle type without a stop's skills gets a profile in
  which that stop is unreachable (its arcs take longer than any shift), so no feasible
  route uses it, the way PyVRP's own docs model client-vehicle restrictions;
* speed factors: the travel profile's durations divided by the factor, a profile each.

Everything is integer: distances in units (metres for requests), times in seconds, costs in
ten-thousandths of the currency. An arc is at most ~40,000 km and :data:`UNREACHABLE_SECONDS`;
:mod:`jobworker.routes.bounds` bounds every cost PyVRP sums from the problem's largest numbers
and chooses the penalties so that the total stays inside int64.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.bounds import (
    COST_SCALE,
    INT64_MAX,
    METRES_PER_KM,
    ROUTE_HORIZON_SECONDS,
    SECONDS_PER_HOUR,
    UNREACHABLE_SECONDS,
    Extremes,
    penalty_limits,
)
from jobworker.routes.dropped import Scales, why_dropped
from jobworker.routes.insertion import Tour, Vehicle, Visit, cheapest_insertion, places_of
from jobworker.routes.matrix import FloatMatrix
from jobworker.routes.plan import (
    COST_DIGITS,
    KM_DIGITS,
    MINUTE_DIGITS,
    PlannedRoute,
    PlannedStop,
    RouteEnd,
    RoutePlan,
    SolverInfo,
    StopReason,
    UnassignedStop,
)
from jobworker.routes.repair import without_violations

if TYPE_CHECKING:
    from pyvrp import ProblemData, Result, Route, Solution

__all__ = [
    "FleetSpec",
    "InfeasibleProblem",
    "IntMatrix",
    "Place",
    "RoutePlan",
    "RoutingProblem",
    "StopSpec",
    "default_stale_iterations",
    "scaled",
    "solve",
]

IntMatrix = NDArray[np.int64]
Heartbeat = Callable[[], None]
Clock = Callable[[], float]

SECONDS_PER_MINUTE = 60.0
# PyVRP's penalties for excess load, time and distance are tuned for costs of about one unit
# per metre of travel: they are scaled up with the largest unit cost, so that they still
# outweigh travel (jobworker.routes.bounds lowers them where int64 needs it).
USUAL_MIN_PENALTY = 0.1
USUAL_MAX_PENALTY = 100_000.0
DEFAULT_SEED = 0  # a fixed default keeps plans repeatable unless the caller asks otherwise
HEARTBEAT_EVERY_SECONDS = 1.0
STALE_ITERATIONS_PER_LOCATION = 1_000
MIN_STALE_ITERATIONS = 10_000
_MAX_NAMED = 10
_SCALE_ROWS = 256  # rows per block when scaling matrices (bounds temporaries on big inputs)


class InfeasibleProblem(Exception):
    """No plan can meet the constraints (or none was found): says which locations and why."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("no feasible routes: " + "; ".join(reasons))
        self.reasons = list(reasons)


@dataclass(frozen=True)
class Place:
    """A matrix row: a depot, a vehicle's own start or end, or a stop."""

    id: str
    lat: float
    lon: float
    depot: bool = False


@dataclass(frozen=True)
class StopSpec:
    id: str
    row: int
    delivery: tuple[int, ...]
    pickup: tuple[int, ...]
    service_seconds: int = 0
    windows: tuple[tuple[int, int], ...] = ()  # empty: any time
    skills: frozenset[str] = frozenset()
    required: bool = True
    penalty: float = 0.0  # currency, optional stops only


@dataclass(frozen=True)
class FleetSpec:
    id: str
    count: int
    capacity: tuple[int, ...]
    start_row: int
    end_row: int | None  # None: open route
    earliest: int = 0
    latest: int = ROUTE_HORIZON_SECONDS
    max_duration: int | None = None
    max_distance: int | None = None  # units
    fixed_cost: float = 0.0
    cost_per_km: float = 1.0
    cost_per_hour: float = 0.0
    speed_factor: float = 1.0
    skills: frozenset[str] = frozenset()
    profile: str = "car"


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    """A rich VRP, independent of where it came from. Rows of every matrix are ``places``;
    ``distance`` and ``duration`` hold one matrix per travel profile (units, seconds)."""

    name: str
    places: tuple[Place, ...]
    stops: tuple[StopSpec, ...]
    fleet: tuple[FleetSpec, ...]
    distance: Mapping[str, IntMatrix]
    duration: Mapping[str, IntMatrix]
    distance_units_per_km: float = METRES_PER_KM
    cost_scale: float = COST_SCALE
    max_runtime_seconds: float | None = None
    seed: int | None = None
    travel: Mapping[str, Any] = field(default_factory=dict)
    unavailable: Mapping[int, tuple[str, str]] = field(default_factory=dict)  # stop: code, why

    def __post_init__(self) -> None:
        n = len(self.places)
        for matrices in (self.distance, self.duration):
            for matrix in matrices.values():
                if matrix.shape != (n, n) or matrix.dtype != np.int64:
                    raise ValueError(f"matrices must be int64 of shape {(n, n)}")
        if not self.fleet or any(vehicle.profile not in self.duration for vehicle in self.fleet):
            raise ValueError("need a vehicle type, and matrices for every vehicle profile")

    @property
    def size(self) -> int:
        return len(self.stops)

    @property
    def location_ids(self) -> tuple[str, ...]:
        return tuple(stop.id for stop in self.stops)

    @property
    def vehicles(self) -> int:
        return sum(vehicle.count for vehicle in self.fleet)

    @property
    def capacity(self) -> int:
        return max(vehicle.capacity[0] if vehicle.capacity else 0 for vehicle in self.fleet)

    @property
    def dimensions(self) -> int:
        return len(self.fleet[0].capacity)


def scaled(matrix: FloatMatrix, factor: float, *, cap: float | None = None) -> IntMatrix:
    """``rint(matrix * factor)`` as int64 (capped at ``cap``), by row blocks: no full-size
    float temporaries. Inputs are finite and non-negative (validated), so nothing wraps."""
    out = np.empty(matrix.shape, dtype=np.int64)
    for start in range(0, len(matrix), _SCALE_ROWS):
        block = slice(start, start + _SCALE_ROWS)
        values = np.rint(matrix[block] * factor)
        if cap is not None:
            values = np.minimum(values, cap)
        out[block] = values
    return out


def _minutes(seconds: float) -> float:
    return round(seconds / SECONDS_PER_MINUTE, MINUTE_DIGITS)


def _name_some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED])
    more = len(names) - _MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown


# --- checks that need no search -------------------------------------------------------------


def precheck(problem: RoutingProblem) -> None:
    """Raise :class:`InfeasibleProblem` for required stops no vehicle can serve at all."""
    blocked = [f"{problem.stops[i].id} ({why})" for i, (_, why) in problem.unavailable.items()
               if problem.stops[i].required]
    if blocked:
        raise InfeasibleProblem([f"no vehicle can serve {_name_some(blocked)}"])
    for d in range(problem.dimensions):
        total = sum(s.delivery[d] for s in problem.stops if s.required)
        room = sum(v.count * v.capacity[d] for v in problem.fleet)
        if total > room:
            raise InfeasibleProblem([f"total demand {total} exceeds the fleet capacity of "
                                     f"{room} ({problem.vehicles} vehicles)"])


# --- the search -----------------------------------------------------------------------------


class _StopCriterion:
    """PyVRP's stopping criterion, called once per search iteration: time, heartbeat, staleness.

    It stops when the next iteration would likely end after the deadline (the longest
    iteration seen so far is the estimate), so big problems do not overrun by one iteration.
    An exception from ``heartbeat`` propagates out of PyVRP and aborts the solve.
    """

    def __init__(self, *, deadline: float, clock: Clock, heartbeat: Heartbeat | None,
                 started: float, stale_iterations: int) -> None:
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
    ends early once ``stale_iterations`` iterations in a row found nothing better. Raises
    :class:`InfeasibleProblem` when the required stops cannot all be served, or when the best
    plan found in time still breaks a constraint that leaving optional stops out does not
    mend. Optional stops left out are listed in the plan's ``unassigned`` with a reason.
    """
    started = clock()
    used_seed = seed if seed is not None else problem.seed
    used_seed = DEFAULT_SEED if used_seed is None else used_seed
    precheck(problem)
    model = _Model(problem)
    if not model.client_stop:
        return _plan_without_search(problem, used_seed, time_limit_seconds)
    stop = _StopCriterion(
        deadline=started + max(time_limit_seconds, 0.0), clock=clock, heartbeat=heartbeat,
        started=started,
        stale_iterations=stale_iterations or default_stale_iterations(problem.size),
    )
    data = model.data()
    result = _search(data, model, stop, used_seed)
    best, left_out = _feasible_best(problem, model, data, result.best, clock() - started)
    runtime = clock() - started
    reason = stop.reason
    if reason == "time_limit" and _cut_short(problem, time_limit_seconds):
        reason = "deadline"
    info = SolverInfo(
        cost=_objective(best), feasible=True, runtime_seconds=round(runtime, 3),
        iterations=result.num_iterations, stopped_early=reason == "deadline",
        stop_reason=reason, seed=used_seed, time_limit_seconds=time_limit_seconds,
    )
    return _plan(problem, model, best, info, left_out=left_out)


def default_stale_iterations(size: int) -> int:
    """Iterations without improvement after which the search counts as converged."""
    return max(MIN_STALE_ITERATIONS, STALE_ITERATIONS_PER_LOCATION * size)


def _cut_short(problem: RoutingProblem, time_limit_seconds: float) -> bool:
    requested = problem.max_runtime_seconds
    return requested is not None and time_limit_seconds < requested


def _search(data: ProblemData, model: _Model, stop: _StopCriterion, seed: int) -> Result:
    from pyvrp import PenaltyParams, SolveParams
    from pyvrp import solve as pyvrp_solve
    from pyvrp.exceptions import PenaltyBoundWarning

    low, high = model.penalty_limits()
    params = SolveParams(penalty=PenaltyParams(min_penalty=low, max_penalty=high))
    with warnings.catch_warnings():
        # PyVRP warns when its penalties max out on an instance it cannot make feasible; we
        # report that case ourselves, as InfeasibleProblem, so the warning is only noise.
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        return pyvrp_solve(data, stop, seed=seed, collect_stats=False, display=False,
                           params=params)


def _feasible_best(problem: RoutingProblem, model: _Model, data: ProblemData, best: Solution,
                   runtime: float) -> tuple[Solution, int]:
    """The search's best plan, with optional stops taken off the routes it overloads or makes
    late if it must be (and how many); raises :class:`InfeasibleProblem` if that is not enough.
    """
    if best.is_feasible() and best.is_complete():
        return best, 0
    repaired = without_violations(data, best)
    if repaired is None:
        raise InfeasibleProblem(_explain_infeasible(problem, model, best, runtime))
    return repaired, best.num_clients() - repaired.num_clients()


def _objective(solution: Solution) -> int:
    """What the plan costs in solver units (PyVRP's objective of a feasible solution)."""
    from pyvrp import CostEvaluator

    return int(CostEvaluator([0.0] * len(solution.excess_load()), 0.0, 0.0).cost(solution))


# --- the PyVRP model ------------------------------------------------------------------------


class _Model:
    """The problem as PyVRP sees it, and the maps back from PyVRP's indices to ours."""

    def __init__(self, problem: RoutingProblem) -> None:
        self.problem = problem
        self.open_row = len(problem.places) if any(v.end_row is None for v in problem.fleet) \
            else None
        self.depot_rows = sorted({row for v in problem.fleet
                                  for row in (v.start_row, v.end_row) if row is not None}
                                 | ({self.open_row} if self.open_row is not None else set()))
        self.client_stop: list[int] = []  # PyVRP client -> stop index
        self.client_window: list[int | None] = []  # PyVRP client -> window index
        for i, stop in enumerate(problem.stops):
            if i in problem.unavailable:
                continue
            for w in range(len(stop.windows)) if stop.windows else [None]:
                self.client_stop.append(i)
                self.client_window.append(w)
        self.profile_keys: list[tuple[str, float, frozenset[int]]] = []
        self.vehicle_profile: list[int] = []
        skills_used = {s for stop in problem.stops for s in stop.skills}
        for vehicle in problem.fleet:
            key = (vehicle.profile, vehicle.speed_factor, frozenset(
                i for i, stop in enumerate(problem.stops) if not stop.skills <= vehicle.skills
            ) if skills_used else frozenset())
            if key not in self.profile_keys:
                self.profile_keys.append(key)
            self.vehicle_profile.append(self.profile_keys.index(key))
        self._matrices: list[tuple[IntMatrix, IntMatrix]] = [
            self._profile_matrices(*key) for key in self.profile_keys
        ]

    def _profile_matrices(self, profile: str, speed_factor: float,
                          forbidden: frozenset[int]) -> tuple[IntMatrix, IntMatrix]:
        distance = self.problem.distance[profile]
        duration = self.problem.duration[profile]
        # A profile's matrix may hold arcs only a faster vehicle drives within the horizon
        # (jobworker.routes.build): this vehicle's are divided first, then capped.
        if speed_factor != 1.0:
            duration = scaled(duration.astype(np.float64), 1.0 / speed_factor,
                              cap=UNREACHABLE_SECONDS)
        elif duration.size and int(np.max(duration)) > UNREACHABLE_SECONDS:
            duration = np.minimum(duration, UNREACHABLE_SECONDS)
        if self.open_row is not None:
            distance, duration = _with_open_end(distance), _with_open_end(duration)
        if forbidden:
            duration = duration.copy()
            rows = [self.problem.stops[i].row for i in forbidden]
            duration[rows, :] = UNREACHABLE_SECONDS
            duration[:, rows] = UNREACHABLE_SECONDS
            for row in rows:
                duration[row, row] = 0
        return distance, duration

    def penalty_limits(self) -> tuple[float, float]:
        """PyVRP's (min, max) penalty per unit of violation: the usual ones scaled with the
        largest travel cost per distance unit, within what int64 leaves room for."""
        scale = max(1, max(self.unit_distance_cost(v) for v in self.problem.fleet))
        return penalty_limits(self.extremes(), usual_min=USUAL_MIN_PENALTY * scale,
                              usual_max=USUAL_MAX_PENALTY * scale)

    def extremes(self) -> Extremes:
        """The problem's largest numbers as PyVRP will see them (see ``routes.bounds``)."""
        problem = self.problem
        clients = [problem.stops[i] for i in self.client_stop]
        prizes = [self.prize(stop) for stop in clients]
        fixed = [self.fixed_cost(v) for v in problem.fleet]
        opening = max([v.earliest for v in problem.fleet]
                      + [early for stop in clients for early, _ in stop.windows])
        return Extremes(
            clients=len(clients), vehicles=problem.vehicles,
            load_total=sum(sum(stop.delivery) + sum(stop.pickup) for stop in clients),
            longest_leg=max(int(np.max(d)) for d, _ in self._matrices),
            longest_leg_seconds=max(int(np.max(t)) for _, t in self._matrices),
            longest_service_seconds=max((stop.service_seconds for stop in clients), default=0),
            latest_opening=opening, latest_end=max(v.latest for v in problem.fleet),
            unit_distance_cost=max(self.unit_distance_cost(v) for v in problem.fleet),
            unit_duration_cost=max(self.unit_duration_cost(v) for v in problem.fleet),
            largest_fixed_cost=max(fixed),
            fixed_cost_total=sum(v.count * cost for v, cost in zip(problem.fleet, fixed,
                                                                     strict=True)),
            largest_prize=max(prizes, default=0), prize_total=sum(prizes),
        )

    def prize(self, stop: StopSpec) -> int:
        return 0 if stop.required else round(stop.penalty * self.problem.cost_scale)

    def fixed_cost(self, v: FleetSpec) -> int:
        return round(v.fixed_cost * self.problem.cost_scale)

    def unit_distance_cost(self, v: FleetSpec) -> int:
        return round(v.cost_per_km * self.problem.cost_scale / self.problem.distance_units_per_km)

    def unit_duration_cost(self, v: FleetSpec) -> int:
        return round(v.cost_per_hour * self.problem.cost_scale / SECONDS_PER_HOUR)

    def matrices_of(self, vehicle_type: int) -> tuple[IntMatrix, IntMatrix]:
        return self._matrices[self.vehicle_profile[vehicle_type]]

    def data(self) -> ProblemData:
        from pyvrp import Client, ClientGroup, Depot, Location, ProblemData, VehicleType

        problem = self.problem
        # PyVRP numbers locations depots first, then clients: ``order`` is our row of each.
        order = self.depot_rows + [problem.stops[i].row for i in self.client_stop]
        place = list(problem.places)
        coords = [place[row] if row < len(place) else place[self.depot_rows[0]]
                  for row in order]
        depot_index = {row: k for k, row in enumerate(self.depot_rows)}
        groups: list[list[int]] = []
        group_of: dict[int, int] = {}
        clients = []
        for c, (i, w) in enumerate(zip(self.client_stop, self.client_window, strict=True)):
            stop = problem.stops[i]
            early, late = _window(stop, w)
            grouped = len(stop.windows) > 1
            if grouped and i not in group_of:
                group_of[i] = len(groups)
                groups.append([])
            if grouped:
                groups[group_of[i]].append(c)
            clients.append(Client(
                location=len(self.depot_rows) + c, delivery=list(stop.delivery),
                pickup=list(stop.pickup), service_duration=stop.service_seconds,
                tw_early=early, tw_late=late,
                prize=self.prize(stop),
                required=stop.required and not grouped,
                group=group_of.get(i), name=stop.id,
            ))
        group_stops = list(group_of)
        client_groups = [
            ClientGroup(clients=members, required=problem.stops[group_stops[g]].required)
            for g, members in enumerate(groups)
        ]
        vehicle_types = [self._vehicle_type(VehicleType, v, k, depot_index)
                         for k, v in enumerate(problem.fleet)]
        pick = np.asarray(order, dtype=np.intp)
        distances: list[Any] = [d[np.ix_(pick, pick)] for d, _ in self._matrices]
        durations: list[Any] = [t[np.ix_(pick, pick)] for _, t in self._matrices]
        return ProblemData(
            locations=[Location(x=p.lon, y=p.lat) for p in coords],
            clients=clients,
            depots=[Depot(location=k) for k in range(len(self.depot_rows))],
            vehicle_types=vehicle_types,
            distance_matrices=distances,
            duration_matrices=durations,
            groups=client_groups,
        )

    def _vehicle_type(self, vehicle_type: Any, v: FleetSpec, k: int,
                      depot_index: Mapping[int, int]) -> Any:
        end = v.end_row if v.end_row is not None else self.open_row
        assert end is not None
        return vehicle_type(
            num_available=v.count, capacity=list(v.capacity),
            start_depot=depot_index[v.start_row], end_depot=depot_index[end],
            fixed_cost=self.fixed_cost(v), tw_early=v.earliest, tw_late=v.latest,
            shift_duration=_max_duration(v), max_distance=_max_distance(v),
            unit_distance_cost=self.unit_distance_cost(v),
            unit_duration_cost=self.unit_duration_cost(v),
            profile=self.vehicle_profile[k], name=v.id,
        )


def _with_open_end(matrix: IntMatrix) -> IntMatrix:
    """One more row and column: the open routes' end, reached from anywhere at no cost."""
    n = len(matrix)
    out = np.empty((n + 1, n + 1), dtype=np.int64)
    out[:n, :n] = matrix
    out[:, n] = 0
    out[n, :n] = UNREACHABLE_SECONDS  # no route starts at the open end
    return out


# --- reading the answer ---------------------------------------------------------------------


def _explain_infeasible(problem: RoutingProblem, model: _Model, best: Solution,
                        runtime: float) -> list[str]:
    """Say what the best plan found still breaks, and what a dispatcher can change."""
    late: list[str] = []
    overloaded = too_long = too_far = 0
    for route in best.routes():
        late_here = [problem.stops[model.client_stop[a.idx]].id for a in route.schedule()
                     if a.is_client() and a.time_warp > 0]
        late += late_here
        overloaded += route.has_excess_load()
        # Time warp with no stop served late: the shift or max_route_minutes is what breaks.
        too_long += route.has_time_warp() and not late_here
        too_far += route.has_excess_distance()
    found = [f"searched {runtime:.1f} s with {problem.vehicles} vehicles"]
    if late:
        found.append(f"the best plan still arrives after the time window at {_name_some(late)}")
    if overloaded:
        found.append(f"{overloaded} route(s) over their vehicle's capacity")
    if too_long:
        found.append(f"{too_long} route(s) past their shift or max_route_minutes")
    if too_far:
        found.append(f"{too_far} route(s) longer than max_distance_km")
    missing = _missing_required(problem, model, best)
    if missing:
        found.append(f"required stops left unvisited: {_name_some(missing)}")
    found.append("add vehicles, widen time windows, raise max_route_minutes or "
                 "max_runtime_seconds, or make stops optional")
    return found


def _visited_stops(model: _Model, best: Solution) -> set[int]:
    return {model.client_stop[a.idx] for route in best.routes() for a in route.schedule()
            if a.is_client()}


def _missing_required(problem: RoutingProblem, model: _Model, best: Solution) -> list[str]:
    visited = _visited_stops(model, best)
    return [stop.id for i, stop in enumerate(problem.stops) if stop.required and i not in visited]


def _plan(problem: RoutingProblem, model: _Model, best: Solution, info: SolverInfo, *,
          left_out: int = 0) -> RoutePlan:
    routes: list[PlannedRoute] = []
    used_per_type: dict[int, int] = {}
    ordered = sorted(best.routes(), key=lambda r: (r.vehicle_type(), r.start_time()))
    for route in ordered:
        k = route.vehicle_type()
        used_per_type[k] = used_per_type.get(k, 0) + 1
        routes.append(_route(problem, model, route, len(routes) + 1, used_per_type[k]))
    unassigned = _unassigned(problem, model, best, ordered, info)
    return RoutePlan(routes=routes, solver=info, notes=_notes(problem, info, left_out),
                     unassigned=unassigned, travel=dict(problem.travel),
                     depots=_depots(problem))


def _plan_without_search(problem: RoutingProblem, seed: int, time_limit: float) -> RoutePlan:
    info = SolverInfo(cost=0, feasible=True, runtime_seconds=0.0, iterations=0,
                      stopped_early=False, stop_reason="empty", seed=seed,
                      time_limit_seconds=time_limit)
    unassigned = [_unavailable(problem, i) for i in sorted(problem.unavailable)]
    return RoutePlan(routes=[], solver=info, notes=["no locations to visit"],
                     unassigned=unassigned, travel=dict(problem.travel), depots=_depots(problem))


def _depots(problem: RoutingProblem) -> list[dict[str, Any]]:
    return [{"id": p.id, "lat": p.lat, "lon": p.lon} for p in problem.places if p.depot]


def _notes(problem: RoutingProblem, info: SolverInfo, left_out: int = 0) -> list[str]:
    notes = []
    if info.stop_reason == "deadline":
        notes.append(
            f"the job's deadline cut the search to {info.time_limit_seconds:g} s of the"
            f" {problem.max_runtime_seconds:g} s asked for: this is the best plan found by then"
        )
    elif info.stop_reason == "converged":
        notes.append(f"search ended after {info.runtime_seconds:.1f} s: it stopped finding "
                     "better plans")
    if left_out:
        notes.append(f"the best plan found broke a vehicle's limits: {left_out} optional "
                     "stop(s) were taken off its routes to keep every route within them")
    return notes


def _end_of(problem: RoutingProblem, row: int | None) -> RouteEnd | None:
    if row is None:
        return None
    place = problem.places[row]
    return RouteEnd(lat=place.lat, lon=place.lon, depot_id=place.id if place.depot else None)


def _route(problem: RoutingProblem, model: _Model, route: Route, number: int,
           index_in_type: int) -> PlannedRoute:
    k = route.vehicle_type()
    vehicle = problem.fleet[k]
    distance, duration = model.matrices_of(k)
    schedule = route.schedule()
    visits = [a for a in schedule if a.is_client()]
    delivered = [sum(problem.stops[model.client_stop[a.idx]].delivery[d] for a in visits)
                 for d in range(problem.dimensions)]
    picked = [sum(problem.stops[model.client_stop[a.idx]].pickup[d] for a in visits)
              for d in range(problem.dimensions)]
    on_board = list(delivered)
    stops: list[PlannedStop] = []
    previous, carried, km = vehicle.start_row, 0, 0.0
    for activity in visits:
        i = model.client_stop[activity.idx]
        stop, place = problem.stops[i], problem.places[problem.stops[i].row]
        on_board = [load - dl + pu for load, dl, pu in
                    zip(on_board, stop.delivery, stop.pickup, strict=True)]
        carried += stop.delivery[0]
        window = model.client_window[activity.idx]
        leg = _km(problem, int(distance[previous, stop.row]))
        km += leg
        stops.append(PlannedStop(
            location_id=stop.id, sequence=len(stops) + 1, lat=place.lat, lon=place.lon,
            arrival_minute=_minutes(activity.start_time - activity.wait_duration),
            wait_minutes=_minutes(activity.wait_duration),
            start_service_minute=_minutes(activity.start_time),
            service_minutes=_minutes(stop.service_seconds),
            departure_minute=_minutes(activity.end_time),
            demand=stop.delivery[0], cumulative_demand=carried,
            distance_from_previous_km=leg,
            duration_from_previous_minutes=_minutes(int(duration[previous, stop.row])),
            delivery=list(stop.delivery), pickup=list(stop.pickup), load_after=on_board,
            time_window=None if window is None else [_minutes(t) for t in stop.windows[window]],
        ))
        previous = stop.row
    to_end = 0.0 if vehicle.end_row is None else _km(problem,
                                                     int(distance[previous, vehicle.end_row]))
    distance_km = round(km + to_end, KM_DIGITS)
    start_minute, end_minute = _minutes(schedule[0].end_time), _minutes(schedule[-1].start_time)
    duration_minutes = round(end_minute - start_minute, MINUTE_DIGITS)
    cost = (vehicle.fixed_cost + vehicle.cost_per_km * distance_km
            + vehicle.cost_per_hour * duration_minutes / 60)
    return PlannedRoute(
        vehicle=number, stops=stops, load=delivered[0], distance_km=distance_km,
        duration_minutes=duration_minutes, start_minute=start_minute, end_minute=end_minute,
        distance_to_depot_km=to_end, vehicle_type=vehicle.id, vehicle_index=index_in_type,
        start=_end_of(problem, vehicle.start_row), end=_end_of(problem, vehicle.end_row),
        delivery=delivered, pickup=picked, cost=round(cost, COST_DIGITS),
    )


def _km(problem: RoutingProblem, units: int) -> float:
    return round(units / problem.distance_units_per_km, KM_DIGITS)


def _unavailable(problem: RoutingProblem, i: int) -> UnassignedStop:
    stop, (code, why) = problem.stops[i], problem.unavailable[i]
    place = problem.places[stop.row]
    return UnassignedStop(location_id=stop.id, lat=place.lat, lon=place.lon, code=code,
                          reason=why, required=stop.required)


def _unassigned(problem: RoutingProblem, model: _Model, best: Solution,
                ordered: Sequence[Route], info: SolverInfo) -> list[UnassignedStop]:
    """Every stop not on a route, with the most telling reason we can state for it."""
    visited = _visited_stops(model, best)
    left = [_unavailable(problem, i) for i in sorted(problem.unavailable)]
    dropped = [i for i in range(len(problem.stops))
               if i not in visited and i not in problem.unavailable]
    if not dropped:
        return left
    why = _Dropped(problem, model, ordered, cut_by_deadline=info.stop_reason == "deadline")
    for i in dropped:
        stop, place = problem.stops[i], problem.places[problem.stops[i].row]
        code, reason = why(stop)
        left.append(UnassignedStop(location_id=stop.id, lat=place.lat, lon=place.lon,
                                   code=code, reason=reason, required=stop.required))
    return left


class _Dropped:
    """Why an optional stop is off the plan: its cheapest insertion into the plan's routes
    (``routes.insertion``), or what stops every one, in words (``routes.dropped``)."""

    def __init__(self, problem: RoutingProblem, model: _Model, ordered: Sequence[Route], *,
                 cut_by_deadline: bool) -> None:
        self._problem, self._model = problem, model
        self._cut_by_deadline = cut_by_deadline
        self._scales = Scales(distance_units_per_km=problem.distance_units_per_km,
                              cost_scale=problem.cost_scale, dimensions=problem.dimensions)
        tours: dict[int, list[Tour]] = {k: [] for k in range(len(problem.fleet))}
        for number, route in enumerate(ordered, 1):
            visits = tuple(self._visit(a.idx) for a in route.schedule() if a.is_client())
            tours[route.vehicle_type()].append(Tour(number, route.vehicle_type(), visits))
        self._vehicles = [self._vehicle(k, len(tours[k])) for k in range(len(problem.fleet))]
        self._places = {k: places_of(self._vehicles[k], tours[k]) for k in tours
                        if tours[k] or self._vehicles[k].unused}

    def __call__(self, stop: StopSpec) -> tuple[str, str]:
        able = {k: where for k, where in self._places.items()
                if stop.skills <= self._problem.fleet[k].skills}
        windows = [_as_visit(stop, w) for w in range(len(stop.windows))] or [_as_visit(stop)]
        verdict = cheapest_insertion(windows, self._vehicles, able)
        if verdict is None:  # no vehicle with its skills at all: precheck's case, for safety
            return "skill", "no vehicle has the skill(s) " + ", ".join(sorted(stop.skills))
        return why_dropped(verdict, self._vehicles[verdict.vehicle], penalty=stop.penalty,
                           scales=self._scales, cut_by_deadline=self._cut_by_deadline)

    def _visit(self, client: int) -> Visit:
        stop = self._problem.stops[self._model.client_stop[client]]
        return _as_visit(stop, self._model.client_window[client])

    def _vehicle(self, k: int, used: int) -> Vehicle:
        v, model = self._problem.fleet[k], self._model
        distance, duration = model.matrices_of(k)
        end = v.end_row if v.end_row is not None else model.open_row
        assert end is not None
        return Vehicle(
            name=v.id, capacity=v.capacity, start_row=v.start_row, end_row=end,
            earliest=v.earliest, latest=v.latest, max_duration=_max_duration(v),
            max_distance=_max_distance(v), unit_distance_cost=model.unit_distance_cost(v),
            unit_duration_cost=model.unit_duration_cost(v), fixed_cost=model.fixed_cost(v),
            distance=distance, duration=duration, unused=v.count - used,
        )


def _as_visit(stop: StopSpec, window: int | None = None) -> Visit:
    early, late = _window(stop, window)
    return Visit(row=stop.row, delivery=stop.delivery, pickup=stop.pickup,
                 service=stop.service_seconds, early=early, late=late)


def _window(stop: StopSpec, window: int | None) -> tuple[int, int]:
    """When service may start (seconds): the given window, or any time in the horizon."""
    return stop.windows[window] if window is not None else (0, ROUTE_HORIZON_SECONDS)


def _max_duration(v: FleetSpec) -> int:
    return v.max_duration if v.max_duration is not None else ROUTE_HORIZON_SECONDS


def _max_distance(v: FleetSpec) -> int:
    return v.max_distance if v.max_distance is not None else INT64_MAX


def setup_seconds(size: int) -> float:
    """A generous estimate of what cannot be interrupted at ``size`` stops: matrices and
    PyVRP's setup (measured on this 2-core machine: ~0.2 s at 1,000, 1 s at 2,000, 5 s at
    5,000; it grows with the square of the size), plus a second for the rest."""
    return 1.0 + 0.4 * (size / 1000) ** 2
