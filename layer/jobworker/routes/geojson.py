"""A route plan as a GeoJSON FeatureCollection (RFC 7946) that any map tool draws.

Positions are ``[lon, lat]`` as the RFC requires. One LineString per route (depot, stops,
depot), one Point per stop, and the depot as a Point with ``role: "depot"``. Stdlib only.
"""

from __future__ import annotations

from typing import Any, Protocol

from jobworker.routes.plan import PlannedRoute, PlannedStop, RoutePlan

Feature = dict[str, Any]


class HasLatLon(Protocol):
    """The depot: a ``Depot`` model, a ``Point``, or anything with ``lat`` and ``lon``."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


def plan_to_geojson(plan: RoutePlan, depot: HasLatLon) -> dict[str, Any]:
    """The whole plan: the depot first, then per route its line and its stops in order."""
    home = _position(depot.lon, depot.lat)
    features: list[Feature] = [_point(home, {"role": "depot"})]
    for route in plan.routes:
        features.append(_route_line(route, home))
        features.extend(_stop_point(route, stop) for stop in route.stops)
    return {"type": "FeatureCollection", "features": features}


def _position(lon: float, lat: float) -> list[float]:
    return [lon, lat]


def _point(position: list[float], properties: dict[str, Any]) -> Feature:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": position},
        "properties": properties,
    }


def _route_line(route: PlannedRoute, home: list[float]) -> Feature:
    """Along the roads when the route has leg geometry, else straight from stop to stop."""
    if route.legs:
        path = [_position(lon, lat) for leg in route.legs for lat, lon in leg]
        path = [point for k, point in enumerate(path) if k == 0 or point != path[k - 1]]
    else:
        path = [home, *(_position(stop.lon, stop.lat) for stop in route.stops), home]
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": path},
        "properties": {
            "role": "route",
            "vehicle": route.vehicle,
            "load": route.load,
            "distance_km": route.distance_km,
            "duration_minutes": route.duration_minutes,
            "start_minute": route.start_minute,
            "end_minute": route.end_minute,
            "stop_count": len(route.stops),
            "on_roads": bool(route.legs),
        },
    }


def _stop_point(route: PlannedRoute, stop: PlannedStop) -> Feature:
    return _point(
        _position(stop.lon, stop.lat),
        {
            "role": "stop",
            "location_id": stop.location_id,
            "vehicle": route.vehicle,
            "sequence": stop.sequence,
            "arrival_minute": stop.arrival_minute,
            "departure_minute": stop.departure_minute,
            "demand": stop.demand,
        },
    )
