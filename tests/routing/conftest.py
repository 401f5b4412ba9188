"""Generated routing instances and a checker that every returned plan must pass.

No database: these tests exercise ``jobworker.routes`` alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobworker.routes.models import GenerateRoutesRequest
from jobworker.routes.plan import RoutePlan
from jobworker.routes.solver import RoutingProblem

SHARED_CVRP = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cvrp"
TOLERANCE_MINUTES = 0.02  # plan times are rounded to hundredths of a minute
TOLERANCE_KM = 0.002  # plan distances are rounded to metres

RequestFactory = Callable[..., GenerateRoutesRequest]
PlanChecker = Callable[[RoutePlan, GenerateRoutesRequest, RoutingProblem], None]


@pytest.fixture
def cvrp_dir() -> Path:
    if not SHARED_CVRP.is_dir():
        pytest.skip(f"shared CVRP instances not found at {SHARED_CVRP.resolve()}")
    return SHARED_CVRP


def generated_request(
    n: int,
    *,
    seed: int = 1,
    vehicles: int = 10,
    capacity: int = 30,
    windows: bool = False,
    service_minutes: float = 0.0,
    max_route_minutes: float | None = None,
    max_runtime_seconds: float = 30,
) -> GenerateRoutesRequest:
    """``n`` locations within ~15 km of a depot in Amsterdam; every third one with a window."""
    rnd = random.Random(seed)
    locations: list[dict[str, Any]] = []
    for i in range(n):
        location: dict[str, Any] = {
            "id": f"L{i}",
            "lat": 52.37 + rnd.uniform(-0.12, 0.12),
            "lon": 4.89 + rnd.uniform(-0.2, 0.2),
            "demand": rnd.randint(1, 5),
            "service_minutes": service_minutes,
        }
        if windows and i % 3 == 0:
            opens = 480 + 60 * rnd.randint(0, 4)
            location["time_window"] = {"earliest": opens, "latest": opens + 90}
        locations.append(location)
    settings: dict[str, Any] = {
        "vehicles": vehicles,
        "vehicle_capacity": capacity,
        "max_runtime_seconds": max_runtime_seconds,
    }
    if max_route_minutes is not None:
        settings["max_route_minutes"] = max_route_minutes
    group = {"depot": {"lat": 52.37, "lon": 4.89}, "locations": locations}
    return GenerateRoutesRequest.model_validate({"location_group": group, "settings": settings})


@pytest.fixture
def make_request() -> RequestFactory:
    return generated_request


def check_plan(plan: RoutePlan, request: GenerateRoutesRequest, problem: RoutingProblem) -> None:
    """Every location once; capacity, windows, service and max duration kept; sums add up."""
    by_id = {loc.id: loc for loc in request.location_group.locations}
    served = [stop.location_id for route in plan.routes for stop in route.stops]
    assert sorted(served) == sorted(by_id), "every location exactly once"
    assert [route.vehicle for route in plan.routes] == list(range(1, len(plan.routes) + 1))
    assert plan.vehicles_used <= request.settings.vehicles
    assert plan.locations_served == len(by_id)
    row = {loc_id: i + 1 for i, loc_id in enumerate(problem.location_ids)}
    for route in plan.routes:
        _check_route(route, by_id, row, request, problem)
    assert plan.total_distance_km == pytest.approx(
        sum(r.distance_km for r in plan.routes), abs=TOLERANCE_KM
    )
    assert plan.total_duration_minutes == pytest.approx(
        sum(r.duration_minutes for r in plan.routes), abs=TOLERANCE_MINUTES
    )
    assert plan.solver.feasible


def _check_route(
    route: Any, by_id: dict[str, Any], row: dict[str, int], request: Any, problem: RoutingProblem
) -> None:
    settings = request.settings
    assert route.stops, "no empty routes"
    assert route.load == sum(by_id[s.location_id].demand for s in route.stops)
    assert route.load <= settings.vehicle_capacity
    previous, departed, carried, travelled = 0, route.start_minute, 0, 0.0
    for sequence, stop in enumerate(route.stops, 1):
        location = by_id[stop.location_id]
        here = row[stop.location_id]
        assert stop.sequence == sequence
        assert (stop.lat, stop.lon) == (location.lat, location.lon)
        travel = problem.duration[previous, here] / 60
        assert stop.arrival_minute == pytest.approx(departed + travel, abs=TOLERANCE_MINUTES)
        start = stop.arrival_minute + stop.wait_minutes
        if location.time_window is not None:
            assert start >= location.time_window.earliest - TOLERANCE_MINUTES
            assert start <= location.time_window.latest + TOLERANCE_MINUTES
        assert stop.departure_minute == pytest.approx(
            start + location.service_minutes, abs=TOLERANCE_MINUTES
        )
        leg_km = problem.distance[previous, here] / 1000
        assert stop.distance_from_previous_km == pytest.approx(leg_km, abs=TOLERANCE_KM)
        carried += location.demand
        assert stop.cumulative_demand == carried
        travelled += stop.distance_from_previous_km
        previous, departed = here, stop.departure_minute
    assert route.distance_to_depot_km == pytest.approx(
        problem.distance[previous, 0] / 1000, abs=TOLERANCE_KM
    )
    assert route.distance_km == pytest.approx(
        travelled + route.distance_to_depot_km, abs=TOLERANCE_KM * (len(route.stops) + 1)
    )
    back = departed + problem.duration[previous, 0] / 60
    assert route.end_minute == pytest.approx(back, abs=TOLERANCE_MINUTES)
    assert route.duration_minutes == pytest.approx(
        route.end_minute - route.start_minute, abs=TOLERANCE_MINUTES
    )
    if settings.max_route_minutes is not None:
        assert route.duration_minutes <= settings.max_route_minutes + TOLERANCE_MINUTES


@pytest.fixture
def assert_valid_plan() -> PlanChecker:
    return check_plan
