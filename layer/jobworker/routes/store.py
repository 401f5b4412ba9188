"""Route groups in Postgres: written in the transaction that completes the job, read by the API."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from jobworker.queue.sql import query
from jobworker.routes.plan import PlannedRoute, PlannedStop, RoutePlan, SolverInfo

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class StoredRouteGroup:
    route_group_id: UUID
    job_id: UUID | None
    created_at: datetime
    depot_lat: float
    depot_lon: float
    plan: RoutePlan


def save_plan(conn: Connection, *, job_id: UUID, depot_lat: float, depot_lon: float,
              plan: RoutePlan) -> UUID:
    """Insert the group, its routes and stops (three statements); returns route_group_id."""
    group_id: UUID = conn.execute(query("route_group_insert"), {
        "job_id": job_id, "depot_lat": depot_lat, "depot_lon": depot_lon,
        "total_distance_km": plan.total_distance_km,
        "total_duration_minutes": plan.total_duration_minutes,
        "vehicles_used": plan.vehicles_used, "locations_served": plan.locations_served,
        "solver": json.dumps(asdict(plan.solver)), "notes": json.dumps(plan.notes),
    }).scalar_one()
    if not plan.routes:
        return group_id
    routes = plan.routes
    conn.execute(query("route_insert_many"), {
        "route_group_id": group_id,
        "vehicles": [r.vehicle for r in routes], "loads": [r.load for r in routes],
        "distances": [r.distance_km for r in routes],
        "durations": [r.duration_minutes for r in routes],
        "starts": [r.start_minute for r in routes], "ends": [r.end_minute for r in routes],
        "to_depot": [r.distance_to_depot_km for r in routes],
        "legs": [None if r.legs is None else json.dumps(r.legs) for r in routes],
    })
    stops = [(route.vehicle, stop) for route in routes for stop in route.stops]
    conn.execute(query("route_stop_insert_many"), {
        "route_group_id": group_id,
        "vehicles": [vehicle for vehicle, _ in stops],
        "sequences": [s.sequence for _, s in stops],
        "location_ids": [s.location_id for _, s in stops],
        "lats": [s.lat for _, s in stops], "lons": [s.lon for _, s in stops],
        "arrivals": [s.arrival_minute for _, s in stops],
        "waits": [s.wait_minutes for _, s in stops],
        "departures": [s.departure_minute for _, s in stops],
        "demands": [s.demand for _, s in stops],
        "cumulative": [s.cumulative_demand for _, s in stops],
        "from_previous": [s.distance_from_previous_km for _, s in stops],
    })
    return group_id


def load_plan(conn: Connection, route_group_id: UUID) -> StoredRouteGroup | None:
    group = conn.execute(query("route_group_get"),
                         {"route_group_id": route_group_id}).one_or_none()
    if group is None:
        return None
    stops_by_vehicle: dict[int, list[PlannedStop]] = {}
    for row in conn.execute(query("route_stop_list_for_group"),
                            {"route_group_id": route_group_id}):
        values = row._asdict()
        vehicle = values.pop("vehicle")
        stops_by_vehicle.setdefault(vehicle, []).append(PlannedStop(**values))
    routes = [
        PlannedRoute(stops=stops_by_vehicle.get(row.vehicle, []), **row._asdict())
        for row in conn.execute(query("route_list_for_group"), {"route_group_id": route_group_id})
    ]
    plan = RoutePlan(routes=routes, solver=SolverInfo(**group.solver), notes=list(group.notes))
    return StoredRouteGroup(route_group_id=group.route_group_id, job_id=group.job_id,
                            created_at=group.created_at, depot_lat=group.depot_lat,
                            depot_lon=group.depot_lon, plan=plan)
