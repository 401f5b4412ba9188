"""The output of route generation: routes with their stops in visiting order, what was left out
and why, and how the plan was found.

Plain dataclasses (stdlib only) so that reading a stored plan back, or turning it into GeoJSON,
needs neither numpy nor PyVRP. Units: kilometres and minutes from the start of the first day,
rounded to metres and hundredths of a minute; costs in the request's currency. Totals are
derived from the routes so that they always add up. Loads are lists, one entry per load
dimension; ``demand``, ``load`` and ``cumulative_demand`` repeat the first dimension as
today's single-capacity answers had them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

StopReason = Literal["time_limit", "deadline", "converged", "empty"]

KM_DIGITS = 3  # metres
MINUTE_DIGITS = 2
COST_DIGITS = 2


@dataclass(frozen=True)
class PlannedStop:
    """One visit: travel ends at ``arrival_minute``, service runs from ``start_service_minute``
    (after ``wait_minutes``) to ``departure_minute``."""

    location_id: str
    sequence: int  # 1-based position on the route
    lat: float
    lon: float
    arrival_minute: float
    wait_minutes: float
    departure_minute: float
    demand: int  # first load dimension of ``delivery``
    cumulative_demand: int  # delivered on this route up to here, first dimension
    distance_from_previous_km: float  # from the route's start for the first stop
    start_service_minute: float = 0.0
    service_minutes: float = 0.0
    duration_from_previous_minutes: float = 0.0
    delivery: list[int] = field(default_factory=list)
    pickup: list[int] = field(default_factory=list)
    load_after: list[int] = field(default_factory=list)  # on board when leaving, per dimension
    time_window: list[float] | None = None  # the window service started in


@dataclass(frozen=True)
class RouteEnd:
    """Where a route starts or ends: a depot (its id) or a place of the vehicle's own."""

    lat: float
    lon: float
    depot_id: str | None = None


@dataclass(frozen=True)
class PlannedRoute:
    """One vehicle's trip: ``start``, ``stops`` in order, ``end`` (None: open, ends at the last
    stop)."""

    vehicle: int  # 1-based over the whole plan
    stops: list[PlannedStop]
    load: int  # delivered on the route, first dimension
    distance_km: float  # including the way to the end
    duration_minutes: float  # start departure to end arrival, waiting included
    start_minute: float
    end_minute: float
    distance_to_depot_km: float  # last stop to the end (0 for open routes)
    vehicle_type: str = "vehicle"
    vehicle_index: int = 1  # 1-based within its type
    start: RouteEnd | None = None
    end: RouteEnd | None = None
    delivery: list[int] = field(default_factory=list)
    pickup: list[int] = field(default_factory=list)
    cost: float = 0.0
    geometry: list[list[float]] | None = None  # road polyline [[lon, lat], ...]; None: straight

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, without the geometry (that is for the map: GeoJSON)."""
        data = asdict(self)
        data.pop("geometry")
        return data


@dataclass(frozen=True)
class UnassignedStop:
    """A stop the plan leaves out, and why in words (``code`` for machines)."""

    location_id: str
    lat: float
    lon: float
    code: str  # skill | capacity | window | shift | limit | penalty | time (routes.dropped)
    reason: str
    required: bool = False


@dataclass(frozen=True)
class SolverInfo:
    """How the plan was found.

    ``cost`` is the solver's integer objective (for VRPLIB files: the distance in the
    instance's own rounded units). ``stopped_early`` is true when the job's deadline cut the
    search short of the requested ``max_runtime_seconds``.
    """

    cost: int | None
    feasible: bool
    runtime_seconds: float
    iterations: int
    stopped_early: bool
    stop_reason: StopReason
    seed: int | None
    time_limit_seconds: float | None


@dataclass(frozen=True)
class RoutePlan:
    routes: list[PlannedRoute]
    solver: SolverInfo
    notes: list[str] = field(default_factory=list)
    unassigned: list[UnassignedStop] = field(default_factory=list)
    travel: dict[str, Any] = field(default_factory=dict)  # provider, profiles, fell_back, reason
    depots: list[dict[str, Any]] = field(default_factory=list)  # id, lat, lon

    @property
    def total_distance_km(self) -> float:
        return round(sum(route.distance_km for route in self.routes), KM_DIGITS)

    @property
    def total_duration_minutes(self) -> float:
        return round(sum(route.duration_minutes for route in self.routes), MINUTE_DIGITS)

    @property
    def total_cost(self) -> float:
        return round(sum(route.cost for route in self.routes), COST_DIGITS)

    @property
    def vehicles_used(self) -> int:
        return len(self.routes)

    @property
    def locations_served(self) -> int:
        return sum(len(route.stops) for route in self.routes)

    @property
    def locations_unassigned(self) -> int:
        return len(self.unassigned)

    def totals(self) -> dict[str, Any]:
        return {
            "total_distance_km": self.total_distance_km,
            "total_duration_minutes": self.total_duration_minutes,
            "total_cost": self.total_cost,
            "vehicles_used": self.vehicles_used,
            "locations_served": self.locations_served,
            "locations_unassigned": self.locations_unassigned,
            "stopped_early": self.solver.stopped_early,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: routes, unassigned stops and solver facts plus the derived totals."""
        return {
            **self.totals(),
            "routes": [route.to_dict() for route in self.routes],
            "unassigned": [asdict(stop) for stop in self.unassigned],
            "travel": dict(self.travel),
            "depots": list(self.depots),
            "solver": asdict(self.solver),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutePlan:
        """Read back what :meth:`to_dict` wrote; the derived totals are recomputed, not read."""
        solver = dict(data["solver"])
        solver["stop_reason"] = cast(StopReason, solver["stop_reason"])
        return cls(
            routes=[route_from_dict(route) for route in data["routes"]],
            solver=SolverInfo(**solver),
            notes=list(data.get("notes", [])),
            unassigned=[UnassignedStop(**item) for item in data.get("unassigned", [])],
            travel=dict(data.get("travel", {})),
            depots=list(data.get("depots", [])),
        )


def route_from_dict(data: Mapping[str, Any]) -> PlannedRoute:
    fields = dict(data)
    fields["stops"] = [PlannedStop(**stop) for stop in data["stops"]]
    for end in ("start", "end"):
        if fields.get(end) is not None:
            fields[end] = RouteEnd(**fields[end])
    return PlannedRoute(**fields)
