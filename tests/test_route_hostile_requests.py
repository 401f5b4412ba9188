"""Hostile route requests end to end: whatever passes validation ends COMPLETED or FAILED.

Hypothesis builds requests from values at every bound the API states (coordinates at the
poles and the date line, loads of 0 and 1e9, the slowest and fastest speeds, the longest
windows and services, the largest costs and penalties) in both request shapes, posts them to
the API handler and runs the poller handler. Each answer is a 202 or a 422; each accepted job
ends COMPLETED (its answer passing the checker) or FAILED with a reason; no invocation raises.
Kept cheap: a few stops per request, a fifth of a second of search.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from jobworker.routes import models as m
from tests.conftest import LambdaClient
from tests.routing.checker import check_answer

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
