"""Fleet requests end to end: API -> poller -> route tables -> API, checked from the request.

Mixed vehicle types, several depots, open routes, two time windows, skills, optional stops,
pickups, a custom matrix and travel providers (a failing one, one with road geometry). Every
answer goes through the independent checker (tests/routing/checker.py).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker.routes import travel
from jobworker.routes.matrix import Point, haversine_km
from jobworker.routes.travel import TravelError, TravelMatrix
from tests.conftest import LambdaClient
from tests.routing.checker import check_answer

pytestmark = pytest.mark.usefixtures("poller_ends_when_idle")


def fleet_request(stops: int = 30, *, seed: int = 3, runtime: float = 2) -> dict[str, Any]:
    rng = random.Random(seed)
    locations: list[dict[str, Any]] = []
    for i in range(stops):
        stop: dict[str, Any] = {
            "id": f"S{i}", "lat": 52.37 + rng.uniform(-0.06, 0.06),
            "lon": 4.89 + rng.uniform(-0.1, 0.1), "demand": [rng.randint(1, 4), 1],
            "service_minutes": 4,
        }
        if i % 7 == 0:
            stop["skills"] = ["fridge"]
        if i % 5 == 1:
            stop["time_windows"] = [{"earliest": 480, "latest": 600},
                                    {"earliest": 900, "latest": 1020}]
        if i % 6 == 2:
            stop["pickup"] = [2, 0]
        if i % 9 == 4:
            stop.update(required=False, penalty=500)
        locations.append(stop)
    locations.append({"id": "cheap", "lat": 52.6, "lon": 5.3, "demand": [1, 1],
                      "required": False, "penalty": 0.01})
    return {
        "location_group": {
            "depots": [{"id": "west", "lat": 52.37, "lon": 4.80},
                       {"id": "east", "lat": 52.36, "lon": 4.98}],
            "locations": locations,
        },
        "settings": {
            "vehicles": [
                {"id": "van", "count": 3, "capacity": [20, 12], "start": "west", "end": "west",
                 "shift": {"earliest": 420, "latest": 1140}, "cost_per_hour": 25},
                {"id": "reefer", "count": 1, "capacity": [30, 20], "start": "east",
                 "end": "east", "skills": ["fridge"], "fixed_cost": 40, "speed_factor": 0.8,
                 "max_route_minutes": 600},
                {"id": "bike", "count": 2, "capacity": [6, 6], "start": "east",
                 "max_distance_km": 40, "profile": "bike"},
            ],
            "speed_kmh": 30, "max_runtime_seconds": runtime, "seed": 1,
        },
    }


def _run(api: LambdaClient, handlers: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    created = api("POST", "/jobs/generate", body)
    assert created.status == 202, created.text
    job_id = created.json["job_id"]
    handlers["poller"](15)
    job = api("GET", f"/jobs/{job_id}").json
    assert job["progress"] == "COMPLETED", job
    return {"job": job, "routes": api("GET", f"/jobs/{job_id}/routes").json,
            "geojson": api("GET", f"/jobs/{job_id}/routes?format=geojson").json}


def test_fleet_job__plan_passes_the_checker_and_is_read_from_the_tables(
    api: LambdaClient, handlers: dict[str, Any], engine: Engine,
) -> None:
    body = fleet_request()
    done = _run(api, handlers, body)
    answer = done["routes"]

    check_answer(answer, body)
    assert {route["vehicle_type"] for route in answer["routes"]} >= {"reefer"}
    assert any(route["end"] is None for route in answer["routes"]
               if route["vehicle_type"] == "bike") or not any(
        route["vehicle_type"] == "bike" for route in answer["routes"])
    cheap = [u for u in answer["unassigned"] if u["location_id"] == "cheap"]
    assert cheap
    assert cheap[0]["code"] == "penalty"
    assert answer["travel"]["provider"] == "haversine"
    assert answer["travel"]["profiles"] == ["bike", "car"]
    assert answer["total_cost"] == pytest.approx(sum(r["cost"] for r in answer["routes"]),
                                                 abs=0.05)
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT location_id, reason FROM route_unassigned WHERE route_group_id = :g"),
            {"g": done["job"]["route_group_id"]}).all()
    assert {row.location_id for row in stored} == {u["location_id"] for u in answer["unassigned"]}
    roles = [f["properties"]["role"] for f in done["geojson"]["features"]]
    assert roles.count("depot") == 2
    assert roles.count("route") == len(answer["routes"])
    assert roles.count("stop") == answer["locations_served"]
    assert roles.count("unassigned") == answer["locations_unassigned"]
    stop = next(f for f in done["geojson"]["features"] if f["properties"]["role"] == "stop")
    assert {"arrival_minute", "wait_minutes", "start_service_minute", "departure_minute",
            "load_after", "vehicle_type"} <= set(stop["properties"])


def test_fleet_job__custom_matrix__arrivals_come_from_it(
    api: LambdaClient, handlers: dict[str, Any],
) -> None:
    body = fleet_request(12)
    group = body["location_group"]
    order = [d["id"] for d in group["depots"]] + [s["id"] for s in group["locations"]]
    places = {p["id"]: p for p in group["depots"] + group["locations"]}
    km = haversine_km([Point(places[i]["lat"], places[i]["lon"]) for i in order])
    # Twice as slow as straight lines at 30 km/h, and 30% longer: not what haversine gives.
    body["matrix"] = {"order": order, "durations": (km * 4).round(3).tolist(),
                      "distances": (km * 1.3).round(4).tolist()}
    for vehicle in body["settings"]["vehicles"]:
        vehicle["profile"] = "car"

    answer = _run(api, handlers, body)["routes"]

    check_answer(answer, body)
    assert answer["travel"]["provider"] == "matrix"


class _Broken:
    def matrix(self, points: Sequence[tuple[float, float]], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        raise TravelError("road service answered 503")

    def leg_geometry(self, points: Sequence[tuple[float, float]],
                     profile: str) -> list[list[tuple[float, float]]] | None:
        return None


class _SlowRoads:
    """Roads three times slower than straight lines, with a bend in every leg."""

    def matrix(self, points: Sequence[tuple[float, float]], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        km = haversine_km([Point(lat, lon) for lat, lon in points])
        return TravelMatrix(durations_minutes=km * 6.0, distances_km=km * 1.4,
                            provider="slow-roads", profile=profile)

    def leg_geometry(self, points: Sequence[tuple[float, float]],
                     profile: str) -> list[list[tuple[float, float]]] | None:
        return [[a, ((a[0] + b[0]) / 2 + 0.001, (a[1] + b[1]) / 2), b]
                for a, b in itertools.pairwise(points)]


@pytest.fixture
def test_providers() -> Iterator[None]:
    def broken(options: Mapping[str, Any]) -> _Broken:
        return _Broken()

    def slow(options: Mapping[str, Any]) -> _SlowRoads:
        return _SlowRoads()

    travel.register_provider("broken-roads", broken)
    travel.register_provider("slow-roads", slow)
    yield
    travel._PROVIDERS.pop("broken-roads", None)
    travel._PROVIDERS.pop("slow-roads", None)


def test_fleet_job__provider_fails__falls_back_to_haversine_and_says_why(
    api: LambdaClient, handlers: dict[str, Any], test_providers: None,
) -> None:
    body = fleet_request(10)
    body["settings"]["travel"] = {"provider": "broken-roads", "fallback": "haversine"}

    answer = _run(api, handlers, body)["routes"]

    check_answer(answer, body)
    assert answer["travel"]["fell_back"] is True
    assert answer["travel"]["provider"] == "haversine"
    assert "503" in answer["travel"]["reason"]


def test_fleet_job__provider_fails__without_a_fallback_asked_for__the_job_says_why(
    api: LambdaClient, handlers: dict[str, Any], test_providers: None,
) -> None:
    """Straight lines instead of the roads asked for only when the request allows it."""
    body = fleet_request(10)
    body["settings"]["travel"] = {"provider": "broken-roads"}
    job_id = api("POST", "/jobs/generate", body).json["job_id"]

    handlers["poller"](10)
    job = api("GET", f"/jobs/{job_id}").json

    assert job["progress"] == "FAILED"  # a refusal (not an outage): it would fail again
    assert job["attempts"] == 1
    assert "503" in job["error"]
    assert job.get("routes") is None


def test_fleet_job__road_provider__its_times_and_geometry_are_used(
    api: LambdaClient, handlers: dict[str, Any], test_providers: None,
) -> None:
    body = fleet_request(10)
    body["settings"]["travel"] = {"provider": "slow-roads"}

    done = _run(api, handlers, body)
    answer = done["routes"]

    assert answer["travel"] == {"provider": "slow-roads", "requested": "slow-roads",
                                "profiles": ["bike", "car"], "fell_back": False, "reason": None}
    route = answer["routes"][0]
    first = route["stops"][0]
    start = route["start"]
    straight = float(haversine_km([Point(start["lat"], start["lon"]),
                                   Point(first["lat"], first["lon"])])[0, 1])
    assert first["distance_from_previous_km"] == pytest.approx(straight * 1.4, abs=0.002)
    line = next(f for f in done["geojson"]["features"] if f["properties"]["role"] == "route")
    assert len(line["geometry"]["coordinates"]) == 3 * (len(route["stops"]) + 1) - (
        1 if route["end"] is None else 0) * 3


def test_fleet_job__required_stop_unreachable_on_the_roads__fails_once_with_the_stop(
    api: LambdaClient, handlers: dict[str, Any], test_providers: None,
) -> None:
    body = fleet_request(6)
    # Straight lines reach it in time (the API accepts it); the slow roads do not.
    body["location_group"]["locations"].append(
        {"id": "tight", "lat": 52.40, "lon": 4.98, "demand": [1, 1],
         "time_window": {"earliest": 0, "latest": 20}})
    body["settings"]["travel"] = {"provider": "slow-roads", "fallback": None}
    job_id = api("POST", "/jobs/generate", body).json["job_id"]

    handlers["poller"](10)
    job = api("GET", f"/jobs/{job_id}").json

    assert job["progress"] == "FAILED"
    assert job["attempts"] == 1
    assert "tight" in job["error"]


def test_fleet_job__matrix_of_the_wrong_shape__422_naming_it(api: LambdaClient) -> None:
    body = fleet_request(3)
    order = ["west", "east", "S0", "S1", "S2", "cheap"]
    body["matrix"] = {"order": order, "durations": np.zeros((6, 5)).tolist()}

    answer = api("POST", "/jobs/generate", body)

    assert answer.status == 422
    assert "matrix.durations must be 6 x 6" in answer.text


def test_fleet_job__several_cross_field_problems__one_detail_per_field(
        api: LambdaClient) -> None:
    """Rules across fields (dimensions against capacities, depot ids) each name their own
    field, not one joined message at the body."""
    body = fleet_request(3)
    body["location_group"]["locations"][1]["demand"] = [1, 2, 3]
    body["settings"]["vehicles"][0]["start"] = "north"

    answer = api("POST", "/jobs/generate", body)

    assert answer.status == 422
    details = {detail["field"]: detail["message"] for detail in answer.json["error"]["details"]}
    assert set(details) == {"body.location_group.locations.1.demand",
                            "body.settings.vehicles.0.start"}, details
    assert "3 dimension(s)" in details["body.location_group.locations.1.demand"]
    assert "north" in details["body.settings.vehicles.0.start"]


def test_fleet_job__more_than_the_poller_memory_holds__422_before_queueing(
    api: LambdaClient, engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobworker.aws import runtime

    monkeypatch.setenv("POLLER_MEMORY_MB", "512")
    runtime.reset()
    big, small = fleet_request(3500), fleet_request(800)
    for body in (big, small):
        body["settings"]["vehicles"][0]["count"] = 500  # room for every stop's load

    refused = api("POST", "/jobs/generate", big)
    accepted = api("POST", "/jobs/generate", small)

    assert refused.status == 422
    assert refused.json["error"]["details"][0]["type"] == "too_large_for_poller"
    assert refused.json["error"]["details"][0]["field"] == "body.location_group.locations"
    assert "more than the poller's 512 MB" in refused.text
    assert accepted.status == 202
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 1


def _one_van_request(stops: list[dict[str, Any]], **van: Any) -> dict[str, Any]:
    """Stops a few km south-west of depot d (lat 52.30-52.34, lon 4.80-4.81), one van."""
    located = [{"lat": 52.30 + 0.04 * i / max(len(stops) - 1, 1),
                "lon": 4.80 + 0.01 * (i % 11) / 10, **stop} for i, stop in enumerate(stops)]
    vehicle = {"id": "van", "count": 1, "capacity": 50, "start": "d", "end": "d", **van}
    return {"location_group": {"depots": [{"id": "d", "lat": 52.32, "lon": 4.82}],
                               "locations": located},
            "settings": {"vehicles": [vehicle], "max_runtime_seconds": 5}}


def test_fleet_job__all_stops_optional_and_too_many__completes_leaving_some_out(
    api: LambdaClient, handlers: dict[str, Any],
) -> None:
    """The audit's request: it ended FAILED ("over their vehicle's capacity ... or make stops
    optional") although every stop was optional."""
    body = _one_van_request([{"id": f"s{i}", "demand": 10, "priority": 10} for i in range(6)])

    answer = _run(api, handlers, body)["routes"]

    check_answer(answer, body)
    assert answer["locations_served"] == 5
    assert [u["code"] for u in answer["unassigned"]] == ["capacity"]


def test_fleet_job__stops_left_out_for_want_of_shift_time__the_reason_says_shift(
    api: LambdaClient, handlers: dict[str, Any], engine: Engine,
) -> None:
    """They were said to be dropped for their penalty (5000) although serving one more costs
    about a kilometre; the van's shift (480-560) is what keeps them out."""
    stops = [{"id": f"s{i}", "service_minutes": 10, "penalty": 5000} for i in range(10)]
    body = _one_van_request(stops, shift={"earliest": 480, "latest": 560})

    done = _run(api, handlers, body)
    answer = done["routes"]

    check_answer(answer, body)
    assert answer["unassigned"]
    assert {u["code"] for u in answer["unassigned"]} == {"shift"}
    assert all("after its shift ends at minute 560" in u["reason"]
               for u in answer["unassigned"])
    with engine.connect() as conn:
        stored = conn.execute(text(
            "SELECT DISTINCT code FROM route_unassigned WHERE route_group_id = :g"),
            {"g": done["job"]["route_group_id"]}).scalars().all()
    assert stored == ["shift"]
