"""GeoJSON output: a FeatureCollection with [lon, lat] positions (RFC 7946)."""

from __future__ import annotations

import json
from collections.abc import Callable

from jobworker.routes.build import problem_from_request
from jobworker.routes.geojson import plan_to_geojson
from jobworker.routes.models import Depot, GenerateRoutesRequest
from jobworker.routes.plan import RoutePlan
from jobworker.routes.solver import solve


def test_plan_to_geojson__depot_routes_and_stops(
    make_request: Callable[..., GenerateRoutesRequest],
) -> None:
    request = make_request(15, vehicles=5, capacity=12)
    plan = solve(problem_from_request(request), time_limit_seconds=0.5)
    depot = request.location_group.depot

    collection = json.loads(json.dumps(plan_to_geojson(plan, depot)))

    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert all(feature["type"] == "Feature" for feature in features)
    by_role: dict[str, list[dict]] = {}
    for feature in features:
        by_role.setdefault(feature["properties"]["role"], []).append(feature)
    assert len(by_role["depot"]) == 1
    assert by_role["depot"][0]["geometry"] == {"type": "Point", "coordinates": [4.89, 52.37]}
    assert len(by_role["route"]) == plan.vehicles_used
    assert len(by_role["stop"]) == 15
    for line, route in zip(by_role["route"], plan.routes, strict=True):
        coordinates = line["geometry"]["coordinates"]
        assert line["geometry"]["type"] == "LineString"
        assert coordinates[0] == coordinates[-1] == [depot.lon, depot.lat]
        assert coordinates[1:-1] == [[stop.lon, stop.lat] for stop in route.stops]
        assert line["properties"]["vehicle"] == route.vehicle
        assert line["properties"]["stop_count"] == len(route.stops)
        assert line["properties"]["distance_km"] == route.distance_km
    first_stop = plan.routes[0].stops[0]
    stop = next(
        f for f in by_role["stop"] if f["properties"]["location_id"] == first_stop.location_id
    )
    assert stop["geometry"]["coordinates"] == [first_stop.lon, first_stop.lat]
    assert stop["properties"]["sequence"] == 1
    assert stop["properties"]["arrival_minute"] == first_stop.arrival_minute


def test_plan_to_geojson__empty_plan__only_the_depot() -> None:
    plan = RoutePlan.from_dict(
        {
            "routes": [],
            "solver": {
                "cost": 0,
                "feasible": True,
                "runtime_seconds": 0.0,
                "iterations": 0,
                "stopped_early": False,
                "stop_reason": "empty",
                "seed": 0,
                "time_limit_seconds": 1.0,
            },
        }
    )

    collection = plan_to_geojson(plan, Depot(lat=1.5, lon=2.5))

    assert [f["properties"]["role"] for f in collection["features"]] == ["depot"]
    assert collection["features"][0]["geometry"]["coordinates"] == [2.5, 1.5]
