"""A route plan as a GeoJSON FeatureCollection (RFC 7946) that any map tool draws.

Positions are ``[lon, lat]`` as the RFC requires. Features, each with ``role``:
``depot`` (every depot), ``route`` (a LineString from its start through its stops to its
end, or the road geometry the travel provider gave), ``stop`` (every visit, with the same
fields as the JSON answer) and ``unassigned`` (every stop left out, with its reason).
Stdlib only.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

from jobworker.routes.plan import PlannedRoute, PlannedStop, RoutePlan, UnassignedStop

Feature = dict[str, Any]


class HasLatLon(Protocol):
    """A depot: a ``Depot`` model, a ``Point``, or anything with ``lat`` and ``lon``."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


def plan_to_geojson(plan: RoutePlan, depot: HasLatLon | None = None) -> dict[str, Any]:
    """The whole plan: depots first, then per route its line and its stops, then the left-out."""
    depots = plan.depots or ([{"id": "depot", "lat": depot.lat, "lon": depot.lon}]
                             if depot is not None else [])
    features: list[Feature] = [
        _point([d["lon"], d["lat"]], {"role": "depot", "depot_id": d["id"]}) for d in depots
    ]
    for route in plan.routes:
        features.append(_route_line(route))
        features.extend(_stop_point(route, stop) for stop in route.stops)
    features.extend(_unassigned_point(stop) for stop in plan.unassigned)
    return {"type": "FeatureCollection", "features": features,
            "properties": {**plan.totals(), "travel": dict(plan.travel)}}


def _point(position: list[float], properties: dict[str, Any]) -> Feature:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": position},
        "properties": properties,
    }


def _route_line(route: PlannedRoute) -> Feature:
    if route.geometry:
        path = [list(p) for p in route.geometry]
    else:
        path = [[s.lon, s.lat] for s in route.stops]
        if route.start is not None:
            path.insert(0, [route.start.lon, route.start.lat])
        if route.end is not None:
            path.append([route.end.lon, route.end.lat])
    properties = route.to_dict()
    properties.pop("stops")
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": path},
        "properties": {"role": "route", "stop_count": len(route.stops), **properties},
    }


def _stop_point(route: PlannedRoute, stop: PlannedStop) -> Feature:
    return _point([stop.lon, stop.lat], {
        "role": "stop", "vehicle": route.vehicle, "vehicle_type": route.vehicle_type,
        "vehicle_index": route.vehicle_index, **asdict(stop),
    })


def _unassigned_point(stop: UnassignedStop) -> Feature:
    return _point([stop.lon, stop.lat], {"role": "unassigned", **asdict(stop)})
