"""The output of route generation: routes with their stops in visiting order, and solver facts.

Plain dataclasses (stdlib only) so that reading a stored plan back, or turning it into GeoJSON,
needs neither numpy nor PyVRP. Units: kilometres and minutes from the start of the first day,
rounded to metres and hundredths of a minute. Totals are derived from the routes so that they
always add up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

StopReason = Literal["time_limit", "deadline", "converged", "empty"]

KM_DIGITS = 3  # metres
MINUTE_DIGITS = 2


@dataclass(frozen=True)
class PlannedStop:
    """One visit. ``arrival_minute`` + ``wait_minutes`` is when service starts."""

    location_id: str
    sequence: int  # 1-based position on the route
    lat: float
    lon: float
    arrival_minute: float
    wait_minutes: float
    departure_minute: float
    demand: int
    cumulative_demand: int  # demand served on this route up to and including this stop
    distance_from_previous_km: float  # from the depot for the first stop


@dataclass(frozen=True)
class PlannedRoute:
    """One vehicle's trip: depot, ``stops`` in order, back to the depot."""

    vehicle: int  # 1-based
    stops: list[PlannedStop]
    load: int
    distance_km: float  # including the way back to the depot
    duration_minutes: float  # depot departure to depot return, waiting included
    start_minute: float
    end_minute: float
    distance_to_depot_km: float  # last stop back to the depot
    # Road geometry where the travel provider draws it: one (lat, lon) line per leg (depot to
    # the first stop, ..., the last stop back to the depot); None means straight lines.
    legs: list[list[tuple[float, float]]] | None = None


@dataclass(frozen=True)
class SolverInfo:
    """How the plan was found.

    ``cost`` is the solver's integer objective: total distance in metres for haversine
    problems, in the instance's own rounded units for VRPLIB files. ``stopped_early`` is true
    when the job's deadline cut the search short of the requested ``max_runtime_seconds``.
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

    @property
    def total_distance_km(self) -> float:
        return round(sum(route.distance_km for route in self.routes), KM_DIGITS)

    @property
    def total_duration_minutes(self) -> float:
        return round(sum(route.duration_minutes for route in self.routes), MINUTE_DIGITS)

    @property
    def vehicles_used(self) -> int:
        return len(self.routes)

    @property
    def locations_served(self) -> int:
        return sum(len(route.stops) for route in self.routes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: routes and solver facts plus the derived totals."""
        return {
            "total_distance_km": self.total_distance_km,
            "total_duration_minutes": self.total_duration_minutes,
            "vehicles_used": self.vehicles_used,
            "locations_served": self.locations_served,
            "routes": [_route_to_dict(route) for route in self.routes],
            "solver": asdict(self.solver),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutePlan:
        """Read back what :meth:`to_dict` wrote; the derived totals are recomputed, not read."""
        solver = dict(data["solver"])
        solver["stop_reason"] = cast(StopReason, solver["stop_reason"])
        return cls(
            routes=[_route_from_dict(route) for route in data["routes"]],
            solver=SolverInfo(**solver),
            notes=list(data.get("notes", [])),
        )


def _route_to_dict(route: PlannedRoute) -> dict[str, Any]:
    """The route without its road geometry: the GeoJSON answer draws that."""
    data = asdict(route)
    data.pop("legs")
    return data


def _route_from_dict(data: Mapping[str, Any]) -> PlannedRoute:
    fields = dict(data)
    fields["stops"] = [PlannedStop(**stop) for stop in data["stops"]]
    return PlannedRoute(**fields)
