"""Hostile route requests end to end: whatever passes validation ends COMPLETED or FAILED.

Hypothesis builds requests from values at every bound the API states (coordinates at the
poles and the date line, loads of 0 and 1e9, the slowest and fastest speeds, the longest
windows and services, the largest costs and penalties) in both request shapes, posts them to
the API handler and runs the poller handler. Each answer is a 202 or a 422; each accepted job
ends COMPLETED (its answer passing the checker) or FAILED with a reason; no invocation raises.
Kept cheap: a few stops per request, a fifth of a second of search, and travel options drawn
for road providers that are not configured here (their jobs fall back to straight lines).
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from jobworker.routes import models as m
from jobworker.routes import travel_options as t
from tests.conftest import LambdaClient
from tests.routing.checker import check_answer

pytestmark = pytest.mark.usefixtures("poller_ends_when_idle")

LATS = st.sampled_from([-90.0, 90.0, 0.0, 52.37, 52.38, 52.4, -33.9])
LONS = st.sampled_from([-180.0, 180.0, 0.0, 4.89, 4.9, 4.95, 151.2])
QUANTITY = st.sampled_from([0, 1, 7, m.MAX_QUANTITY])
MINUTES = st.sampled_from([0.0, 1e-9, 30.0, 480.0, m.MINUTES_PER_DAY, m.HORIZON_MINUTES])


@st.composite
def windows(draw: st.DrawFn) -> dict[str, float]:
    a, b = sorted([draw(MINUTES), draw(MINUTES)])
    return {"earliest": a, "latest": b}


@st.composite
def stop(draw: st.DrawFn, i: int, dims: int) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"s{i}", "lat": draw(LATS), "lon": draw(LONS)}
    if dims > 1:
        body["demand"] = [draw(QUANTITY) for _ in range(dims)]
    else:
        body["demand"] = draw(QUANTITY)
    body["service_minutes"] = draw(st.sampled_from([0.0, 5.0, float(m.MINUTES_PER_DAY)]))
    shape = draw(st.sampled_from(["none", "one", "many"]))
    if shape == "one":
        body["time_window"] = draw(windows())
    elif shape == "many":
        body["time_windows"] = draw(st.lists(windows(), min_size=1, max_size=3))
    if draw(st.booleans()):
        body.update(required=False, penalty=draw(st.sampled_from([0.0, 1.0, m.MAX_PENALTY])))
    return body


@st.composite
def vehicle_type(draw: st.DrawFn, i: int, dims: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"t{i}", "count": draw(st.sampled_from([1, 2, m.MAX_VEHICLES // 10])),
        "capacity": [draw(st.sampled_from([0, 10, m.MAX_QUANTITY])) for _ in range(dims)],
        "start": "d0", "speed_factor": draw(st.sampled_from([m.MIN_SPEED_FACTOR, 1.0,
                                                             m.MAX_SPEED_FACTOR])),
        "fixed_cost": draw(st.sampled_from([0.0, m.MAX_FIXED_COST])),
        "cost_per_km": draw(st.sampled_from([0.0, 1.0, m.MAX_COST_PER_KM])),
        "cost_per_hour": draw(st.sampled_from([0.0, m.MAX_COST_PER_HOUR])),
    }
    if draw(st.booleans()):
        body["end"] = draw(st.sampled_from(["d0", "d1"]))
    if draw(st.booleans()):
        body["max_route_minutes"] = draw(st.sampled_from([1e-9, 60.0, 2.0 * m.HORIZON_MINUTES]))
    if draw(st.booleans()):
        body["max_distance_km"] = draw(st.sampled_from([1e-9, 50.0, m.MAX_ROUTE_KM]))
    if draw(st.booleans()):
        a, b = sorted([draw(MINUTES), draw(MINUTES)])
        body["shift"] = {"earliest": a, "latest": b}
    return body


# Each road provider's options at their bounds and just past them. No road provider is
# configured here: with the fallback the request asks for, its job plans on straight lines.
# A travel speed_kmh (once a ZeroDivisionError in the job) is settings.speed_kmh's to state.
TRAVEL_OPTIONS: dict[str, dict[str, list[Any]]] = {
    "haversine": {"speed_kmh": [40.0, 0.0]},
    "osrm": {"snap_radius_m": [t.MIN_SNAP_RADIUS_M, t.MAX_SNAP_RADIUS_M, 0.0],
             "rows_per_call": [1, t.MAX_ROWS_PER_CALL, 0]},
    "osrm-http": {"timeout_seconds": [t.MIN_TIMEOUT_SECONDS, t.MAX_TIMEOUT_SECONDS, 0.0],
                  "retries": [0, t.MAX_RETRIES, -1], "backoff_seconds": [0.0, -1.0],
                  "max_table_size": [t.MIN_TABLE_SIZE, t.MAX_TABLE_SIZE, 1],
                  "max_route_points": [t.MIN_ROUTE_POINTS, t.MAX_ROUTE_POINTS, 1]},
}


@st.composite
def travel(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(sorted(TRAVEL_OPTIONS)))
    body: dict[str, Any] = {"provider": provider, "fallback": "haversine"}
    for name, values in TRAVEL_OPTIONS.get(provider, {}).items():
        if draw(st.booleans()):
            body[name] = draw(st.sampled_from(values))
    return body


@st.composite
def route_request(draw: st.DrawFn) -> dict[str, Any]:
    fleet = draw(st.booleans())
    dims = draw(st.sampled_from([1, 2])) if fleet else 1
    stops = [draw(stop(i, dims)) for i in range(draw(st.integers(0, 4)))]
    depot = {"lat": draw(LATS), "lon": draw(LONS)}
    settings_: dict[str, Any] = {
        "speed_kmh": draw(st.sampled_from([m.MIN_SPEED_KMH, 40.0, m.MAX_SPEED_KMH])),
        "max_runtime_seconds": 0.2, "seed": draw(st.sampled_from([0, m.MAX_SEED])),
    }
    if draw(st.booleans()):
        settings_["travel"] = draw(travel())
    if fleet:
        group: dict[str, Any] = {"depots": [{"id": "d0", **depot},
                                            {"id": "d1", "lat": 52.37, "lon": 4.89}]}
        settings_["vehicles"] = [draw(vehicle_type(i, dims)) for i in range(draw(st.integers(1,
                                                                                       3)))]
    else:
        group = {"depot": depot}
        settings_["vehicles"] = draw(st.sampled_from([1, m.MAX_VEHICLES]))
        settings_["vehicle_capacity"] = draw(st.sampled_from([1, m.MAX_QUANTITY]))
        for s in stops:
            s.pop("required", None)
            s.pop("penalty", None)
    return {"location_group": {**group, "locations": stops}, "settings": settings_}


@pytest.mark.timeout(600)
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=route_request())
def test_hostile_requests__every_accepted_job_ends_completed_or_failed_with_a_reason(
    api: LambdaClient, handlers: dict[str, Any], body: dict[str, Any],
) -> None:
    answer = api("POST", "/jobs/generate", body)
    assert answer.status in (202, 422), answer.text
    if answer.status == 422:
        assert answer.json["error"]["message"]
        return
    job_id = answer.json["job_id"]

    handlers["poller"](6)  # raising here fails the test
    job = api("GET", f"/jobs/{job_id}").json

    assert job["progress"] in ("COMPLETED", "FAILED"), job
    if job["progress"] == "FAILED":
        assert job["error"]
        return
    routes = api("GET", f"/jobs/{job_id}/routes").json
    check_answer(routes, body)
    assert all(route["duration_minutes"] >= 0 for route in routes["routes"])


@pytest.mark.parametrize(("field", "value"), [
    ("speed_kmh", 1e-300), ("speed_kmh", 0.99), ("speed_kmh", 200.01),
    ("max_runtime_seconds", 0), ("max_route_minutes", 10081),
])
def test_settings_past_their_bounds__422_naming_the_field(api: LambdaClient, field: str,
                                                          value: float) -> None:
    body = {"location_group": {"depot": {"lat": 52.37, "lon": 4.89},
                               "locations": [{"id": "a", "lat": 52.38, "lon": 4.9}]},
            "settings": {"vehicles": 1, "vehicle_capacity": 5, field: value}}

    answer = api("POST", "/jobs/generate", body)

    assert answer.status == 422
    assert f"settings.{field}" in answer.text


def _one_stop(travel: dict[str, Any]) -> dict[str, Any]:
    return {"location_group": {"depot": {"lat": 52.37, "lon": 4.89},
                               "locations": [{"id": "a", "lat": 52.38, "lon": 4.9}]},
            "settings": {"vehicles": 1, "vehicle_capacity": 10, "travel": travel}}


def _fields(answer: Any) -> list[str]:
    return [detail["field"] for detail in answer.json["error"].get("details", [])]


@pytest.mark.parametrize(("provider", "field", "value"), [
    ("haversine", "speed_kmh", 0), ("haversine", "speed_kmh", "abc"),
    ("haversine", "speed_kmh", [1]), ("haversine", "speed_kmh", {"a": 1}),
    pytest.param("haversine", "speed_kmh", 10**400, id="haversine-speed_kmh-1e400"),
    ("haversine", "speed_kmh", 1e-300),
    ("haversine", "speed_kmh", -5), ("haversine", "speed_kmh", 40),
    ("matrix", "durations", [[0]]), ("haversine", "order", ["a"]),
    ("osrm", "rows_per_call", 0), ("osrm", "rows_per_call", -3), ("osrm", "rows_per_call", 1.5),
    ("osrm", "snap_radius_m", 0), ("osrm", "snap_radius_m", 1e9),
    ("osrm-http", "retries", -1), ("osrm-http", "retries", 11), ("osrm-http", "retries", "x"),
    ("osrm-http", "timeout_seconds", 0), ("osrm-http", "timeout_seconds", 301),
    ("osrm-http", "backoff_seconds", -1),
    pytest.param("osrm-http", "backoff_seconds", 10**400, id="osrm-http-backoff_seconds-1e400"),
    ("osrm-http", "max_table_size", 1), ("osrm-http", "max_table_size", 10**9),
    ("osrm-http", "max_route_points", 1),
    ("amazon-location", "margin_m", -1), ("amazon-location", "routing_boundary", "everywhere"),
    ("amazon-location", "geometry", "no"),
    ("osrm", "retries", 2),  # an option of another provider: a typo here, not a setting
])
def test_travel_options_past_their_bounds__422_naming_the_field(
    api: LambdaClient, provider: str, field: str, value: Any,
) -> None:
    """The job once divided by speed_kmh 0 (ZeroDivisionError, three attempts burnt)."""
    answer = api("POST", "/jobs/generate",
                 _one_stop({"provider": provider, "fallback": "haversine", field: value}))

    assert answer.status == 422, answer.text
    assert f"body.settings.travel.{field}" in _fields(answer)


@pytest.mark.parametrize("key", ["provider", "fallback"])
def test_travel_provider_or_fallback_unknown__422_listing_the_known_ones(
    api: LambdaClient, key: str,
) -> None:
    answer = api("POST", "/jobs/generate", _one_stop({key: "osrn"}))

    assert answer.status == 422, answer.text
    assert f"body.settings.travel.{key}" in _fields(answer)
    assert "haversine, matrix, osrm, osrm-http" in answer.text


def test_travel_options_at_their_bounds__accepted_and_the_job_completes(
    api: LambdaClient, handlers: dict[str, Any],
) -> None:
    """No OSRM server is configured here: the job falls back to straight lines, as asked."""
    travel = {"provider": "osrm-http", "fallback": "haversine", "retries": 0,
              "timeout_seconds": t.MIN_TIMEOUT_SECONDS, "backoff_seconds": 0,
              "max_table_size": 2, "max_route_points": 2, "snap_radius_m": 1}
    answer = api("POST", "/jobs/generate", _one_stop(travel))
    assert answer.status == 202, answer.text

    handlers["poller"](6)
    job = api("GET", f"/jobs/{answer.json['job_id']}").json

    assert job["progress"] == "COMPLETED", job
    assert job["result"]["travel"]["fell_back"] is True


@pytest.mark.parametrize("speed_factor", [m.MAX_SPEED_FACTOR, 5.0])
def test_an_arc_past_the_horizon_at_base_speed__a_fast_vehicle_arrives_when_its_speed_says(
    api: LambdaClient, handlers: dict[str, Any], speed_factor: float,
) -> None:
    """Pole to pole at 40 km/h is about three weeks, past the two-week horizon; a vehicle at
    a 5x or 10x speed factor drives it in days. Its arrival must be that, not the horizon's
    cap divided by its factor (once 2,016 minutes instead of 3,002)."""
    body = {"location_group": {"depots": [{"id": "north", "lat": 90.0, "lon": -180.0}],
                               "locations": [{"id": "south", "lat": -90.0, "lon": -180.0}]},
            "settings": {"speed_kmh": 40.0, "max_runtime_seconds": 0.2, "vehicles": [
                {"id": "fast", "count": 1, "capacity": [1], "start": "north",
                 "speed_factor": speed_factor}]}}
    answer = api("POST", "/jobs/generate", body)
    assert answer.status == 202, answer.text

    handlers["poller"](6)
    job_id = answer.json["job_id"]
    assert api("GET", f"/jobs/{job_id}").json["progress"] == "COMPLETED"
    routes = api("GET", f"/jobs/{job_id}/routes").json

    check_answer(routes, body)
    (stop,) = routes["routes"][0]["stops"]
    assert stop["arrival_minute"] == pytest.approx(20015.1 / 40.0 / speed_factor * 60, abs=0.5)
