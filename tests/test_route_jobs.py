"""generate_routes jobs end to end: API -> poller -> route tables -> API, as a user sees them."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import LambdaClient

pytestmark = pytest.mark.usefixtures("poller_ends_when_idle")


def request(locations: int, *, seed: int = 1, vehicles: int = 10, capacity: int = 30,
            max_runtime_seconds: float = 30, **extra: Any) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "location_group": {
            "depot": {"lat": 52.37, "lon": 4.89},
            "locations": [
                {"id": f"L{i}", "lat": 52.37 + rng.uniform(-0.1, 0.1),
                 "lon": 4.89 + rng.uniform(-0.15, 0.15), "demand": rng.randint(1, 5),
                 "service_minutes": 5, **extra}
                for i in range(locations)
            ],
        },
        "settings": {"vehicles": vehicles, "vehicle_capacity": capacity,
                     "max_runtime_seconds": max_runtime_seconds, "seed": seed},
    }


def test_route_job__routes_are_valid_and_stored_with_the_completion(
    api: LambdaClient, handlers: dict[str, Any], engine: Engine,
) -> None:
    body = request(40, max_runtime_seconds=2)
    job_id = api("POST", "/jobs/generate", body).json["job_id"]
    assert handlers["poller"](8)["completed"] == 1

    job = api("GET", f"/jobs/{job_id}").json
    routes = api("GET", f"/jobs/{job_id}/routes").json
    assert job["progress"] == "COMPLETED"
    assert routes["route_group_id"] == job["route_group_id"]
    demand = {loc["id"]: loc["demand"] for loc in body["location_group"]["locations"]}
    served = [stop["location_id"] for route in routes["routes"] for stop in route["stops"]]
    assert sorted(served) == sorted(demand)
    assert len(routes["routes"]) <= body["settings"]["vehicles"]
    for route in routes["routes"]:
        assert route["load"] == sum(demand[stop["location_id"]] for stop in route["stops"])
        assert route["load"] <= body["settings"]["vehicle_capacity"]
        assert [stop["sequence"] for stop in route["stops"]] == list(
            range(1, len(route["stops"]) + 1))
        arrivals = [stop["arrival_minute"] for stop in route["stops"]]
        assert arrivals == sorted(arrivals)
    total = sum(route["distance_km"] for route in routes["routes"])
    assert abs(routes["total_distance_km"] - total) < 0.01
    with engine.connect() as conn:
        stored_stops = conn.execute(text(
            "SELECT count(*) FROM route_stops WHERE route_group_id = :g"),
            {"g": job["route_group_id"]}).scalar_one()
    assert stored_stops == 40


def test_route_job__deadline_cuts_the_search_and_the_job_still_completes(
    api: LambdaClient, handlers: dict[str, Any],
) -> None:
    job_id = api("POST", "/jobs/generate",
                 request(150, vehicles=30, max_runtime_seconds=60)).json["job_id"]
    summary = handlers["poller"](5)
    job = api("GET", f"/jobs/{job_id}").json
    assert summary["completed"] == 1
    assert job["progress"] == "COMPLETED"
    assert job["result"]["stopped_early"] is True
    assert "deadline" in job["result"]["note"]
    assert job["result"]["solver_seconds"] < 5


def test_route_job__unreachable_time_window__refused_up_front_naming_the_stop(
    api: LambdaClient, engine: Engine,
) -> None:
    body = request(3, max_runtime_seconds=2)
    body["location_group"]["locations"].append(
        {"id": "far-and-early", "lat": 53.2, "lon": 6.5, "time_window": {"earliest": 0,
                                                                        "latest": 5}})
    answer = api("POST", "/jobs/generate", body)

    assert answer.status == 422
    [detail] = answer.json["error"]["details"]
    assert detail["field"] == "body.location_group.locations.3"
    assert detail["message"].startswith("stop far-and-early: no time window reachable")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0


def test_route_job__fleet_too_small_is_refused_up_front(api: LambdaClient,
                                                        engine: Engine) -> None:
    answer = api("POST", "/jobs/generate", request(20, vehicles=1, capacity=5))
    assert answer.status == 422
    assert "capacity" in answer.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
