"""Route groups in Postgres: written in the transaction that completes the job, read by the API.

The tables hold everything the route answer says (routes, stops, unassigned stops, travel),
so the API's answer is read back from them, never from the job's result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from jobworker.queue.sql import query
from jobworker.routes.plan import (
    PlannedRoute,
    PlannedStop,
    RouteEnd,
    RoutePlan,
    SolverInfo,
    UnassignedStop,
)

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
    """Insert the group, its routes, stops and unassigned stops; returns route_group_id."""
    group_id: UUID = conn.execute(query("route_group_insert"), {
        "job_id": job_id, "depot_lat": depot_lat, "depot_lon": depot_lon,
        "total_distance_km": plan.total_distance_km,
        "total_duration_minutes": plan.total_duration_minutes,
        "vehicles_used": plan.vehicles_used, "locations_served": plan.locations_served,
        "solver": json.dumps(asdict(plan.solver)), "notes": json.dumps(plan.notes),
        "total_cost": plan.total_cost, "locations_unassigned": plan.locations_unassigned,
        "travel": json.dumps(plan.travel), "depots": json.dumps(plan.depots),
    }).scalar_one()
    if plan.routes:
        conn.execute(query("route_insert_many"), _route_rows(group_id, plan.routes))
        conn.execute(query("route_stop_insert_many"), _stop_rows(group_id, plan.routes))
    if plan.unassigned:
        left = plan.unassigned
        conn.execute(query("route_unassigned_insert_many"), {
            "route_group_id": group_id, "location_ids": [u.location_id for u in left],
            "lats": [u.lat for u in left], "lons": [u.lon for u in left],
            "codes": [u.code for u in left], "reasons": [u.reason for u in left],
            "required": [u.required for u in left],
        })
    return group_id


def _side(end: RouteEnd | None, name: str) -> Any:
    return None if end is None else getattr(end, name)


def _route_rows(group_id: UUID, routes: Sequence[PlannedRoute]) -> dict[str, Any]:
    return {
        "route_group_id": group_id,
        "vehicles": [r.vehicle for r in routes], "loads": [r.load for r in routes],
        "distances": [r.distance_km for r in routes],
        "durations": [r.duration_minutes for r in routes],
        "starts": [r.start_minute for r in routes], "ends": [r.end_minute for r in routes],
        "to_depot": [r.distance_to_depot_km for r in routes],
        "vehicle_types": [r.vehicle_type for r in routes],
        "vehicle_indexes": [r.vehicle_index for r in routes],
        "start_depots": [_side(r.start, "depot_id") for r in routes],
        "start_lats": [_side(r.start, "lat") for r in routes],
        "start_lons": [_side(r.start, "lon") for r in routes],
        "end_depots": [_side(r.end, "depot_id") for r in routes],
        "end_lats": [_side(r.end, "lat") for r in routes],
        "end_lons": [_side(r.end, "lon") for r in routes],
        "deliveries": [json.dumps(r.delivery) for r in routes],
        "pickups": [json.dumps(r.pickup) for r in routes],
        "costs": [r.cost for r in routes],
        "geometries": [json.dumps(r.geometry) for r in routes],
    }


def _stop_rows(group_id: UUID, routes: Sequence[PlannedRoute]) -> dict[str, Any]:
    stops = [(route.vehicle, stop) for route in routes for stop in route.stops]
    windows: list[list[float] | list[None]] = [s.time_window or [None, None] for _, s in stops]
    return {
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
        "start_services": [s.start_service_minute for _, s in stops],
        "services": [s.service_minutes for _, s in stops],
        "travels": [s.duration_from_previous_minutes for _, s in stops],
        "deliveries": [json.dumps(s.delivery) for _, s in stops],
        "pickups": [json.dumps(s.pickup) for _, s in stops],
        "loads_after": [json.dumps(s.load_after) for _, s in stops],
        "window_earliests": [w[0] for w in windows],
        "window_latests": [w[1] for w in windows],
    }


def _end(depot_id: str | None, lat: float | None, lon: float | None) -> RouteEnd | None:
    return None if lat is None or lon is None else RouteEnd(lat=lat, lon=lon, depot_id=depot_id)


def load_plan(conn: Connection, route_group_id: UUID) -> StoredRouteGroup | None:
    params = {"route_group_id": route_group_id}
    group = conn.execute(query("route_group_get"), params).one_or_none()
    if group is None:
        return None
    stops_by_vehicle: dict[int, list[PlannedStop]] = {}
    for row in conn.execute(query("route_stop_list_for_group"), params):
        values = row._asdict()
        vehicle = values.pop("vehicle")
        earliest, latest = values.pop("window_earliest"), values.pop("window_latest")
        values["time_window"] = None if earliest is None else [earliest, latest]
        for name in ("delivery", "pickup", "load_after"):
            values[name] = list(values[name])
        stops_by_vehicle.setdefault(vehicle, []).append(PlannedStop(**values))
    routes = []
    for row in conn.execute(query("route_list_for_group"), params):
        values = row._asdict()
        start = _end(values.pop("start_depot"), values.pop("start_lat"), values.pop("start_lon"))
        end = _end(values.pop("end_depot"), values.pop("end_lat"), values.pop("end_lon"))
        values["delivery"], values["pickup"] = list(values["delivery"]), list(values["pickup"])
        routes.append(PlannedRoute(stops=stops_by_vehicle.get(values["vehicle"], []),
                                   start=start, end=end, **values))
    unassigned = [UnassignedStop(**row._asdict())
                  for row in conn.execute(query("route_unassigned_list_for_group"), params)]
    plan = RoutePlan(routes=routes, solver=SolverInfo(**group.solver), notes=list(group.notes),
                     unassigned=unassigned, travel=dict(group.travel),
                     depots=list(group.depots))
    return StoredRouteGroup(route_group_id=group.route_group_id, job_id=group.job_id,
                            created_at=group.created_at, depot_lat=group.depot_lat,
                            depot_lon=group.depot_lon, plan=plan)
