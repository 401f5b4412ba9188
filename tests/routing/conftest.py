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
from tests.routing.checker import check_answer

SHARED_CVRP = Path("/work/shared/data/cvrp") if Path("/work/shared/data/cvrp").is_dir() else (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cvrp")

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


def check_plan(plan: RoutePlan, request: GenerateRoutesRequest,
               problem: RoutingProblem | None = None) -> None:
    """The independent checker (tests/routing/checker.py) on the plan's JSON answer."""
    check_answer(plan.to_dict(), request.model_dump(mode="json", exclude_unset=True))
    assert plan.solver.feasible


@pytest.fixture
def assert_valid_plan() -> PlanChecker:
    return check_plan
