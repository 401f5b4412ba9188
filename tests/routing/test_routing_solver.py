"""The solver entry point: valid routes, the time limit, heartbeats, infeasible input."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from jobworker.routes.build import problem_from_request
from jobworker.routes.models import GenerateRoutesRequest
from jobworker.routes.plan import RoutePlan
from jobworker.routes.solver import (
    InfeasibleProblem,
    RoutingProblem,
    solve,
)

RequestFactory = Callable[..., GenerateRoutesRequest]
PlanChecker = Callable[[RoutePlan, GenerateRoutesRequest, RoutingProblem], None]


def test_solve__capacitated_plan_is_valid(
    make_request: RequestFactory, assert_valid_plan: PlanChecker
) -> None:
    request = make_request(60, vehicles=12, capacity=20)
    problem = problem_from_request(request)

    plan = solve(problem, time_limit_seconds=1.5)

    assert_valid_plan(plan, request, problem)
    assert plan.vehicles_used >= 9  # 60 locations of demand 1..5 need more than 8 x 20


def test_solve__time_windows_service_and_max_route_are_kept(
    make_request: RequestFactory, assert_valid_plan: PlanChecker
) -> None:
    request = make_request(
        50, seed=7, vehicles=15, windows=True, service_minutes=6, max_route_minutes=300
    )
    problem = problem_from_request(request)

    plan = solve(problem, time_limit_seconds=2)

    assert_valid_plan(plan, request, problem)
    assert any(stop.wait_minutes > 0 for route in plan.routes for stop in route.stops) or all(
        route.start_minute > 0 for route in plan.routes
    ), "windows opening at 08:00 make vehicles wait or leave late"


def test_solve__deadline_shorter_than_budget__stops_in_time_and_says_so(
    make_request: RequestFactory, assert_valid_plan: PlanChecker
) -> None:
    request = make_request(300, vehicles=80, max_runtime_seconds=30)
    problem = problem_from_request(request)

    started = time.monotonic()
    plan = solve(problem, time_limit_seconds=1)
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert plan.solver.stopped_early
    assert plan.solver.stop_reason == "deadline"
    assert "deadline cut the search to 1 s of the 30 s" in plan.notes[0]
    assert_valid_plan(plan, request, problem)


def test_solve__budget_reached__not_stopped_early(make_request: RequestFactory) -> None:
    problem = problem_from_request(make_request(30, max_runtime_seconds=1))

    plan = solve(problem, time_limit_seconds=1, stale_iterations=10**9)

    assert not plan.solver.stopped_early
    assert plan.solver.stop_reason == "time_limit"


def test_solve__converged_small_problem__ends_before_the_limit(
    make_request: RequestFactory,
) -> None:
    problem = problem_from_request(make_request(8))

    plan = solve(problem, time_limit_seconds=30, stale_iterations=500)

    assert plan.solver.stop_reason == "converged"
    assert plan.solver.runtime_seconds < 10
    assert not plan.solver.stopped_early


def test_solve__heartbeat_is_called_while_searching(make_request: RequestFactory) -> None:
    beats: list[float] = []

    solve(
        problem_from_request(make_request(40)),
        time_limit_seconds=2.6,
        heartbeat=lambda: beats.append(time.monotonic()),
        stale_iterations=10**9,
    )

    assert len(beats) >= 2
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(beats))


class _Cancelled(Exception):
    pass


def test_solve__heartbeat_raises__solve_aborts_with_that_error(
    make_request: RequestFactory,
) -> None:
    def cancel() -> None:
        raise _Cancelled("job cancelled")

    started = time.monotonic()
    with pytest.raises(_Cancelled):
        solve(problem_from_request(make_request(40)), time_limit_seconds=30, heartbeat=cancel)

    assert time.monotonic() - started < 10


def test_solve__empty_problem__empty_plan() -> None:
    problem = problem_from_request(GenerateRoutesRequest.from_payload({}))

    plan = solve(problem, time_limit_seconds=5)

    assert plan.routes == []
    assert plan.to_dict()["locations_served"] == 0
    assert plan.solver.stop_reason == "empty"


def test_request__window_closes_before_any_vehicle_arrives__refused_naming_the_stop(
    make_request: RequestFactory,
) -> None:
    payload = make_request(5).model_dump()
    # ~111 km north of the depot: 167 minutes away at 40 km/h, window closes at minute 60.
    payload["location_group"]["locations"].append(
        {"id": "far-away", "lat": 53.37, "lon": 4.89, "time_window": {"earliest": 0, "latest": 60}}
    )

    with pytest.raises(ValidationError) as caught:
        GenerateRoutesRequest.model_validate(payload)

    message = str(caught.value)
    assert "location_group.locations.5: stop far-away" in message
    assert "no time window reachable in any shift" in message


def test_solve__optional_stop_out_of_reach__unassigned_with_the_reason(
    make_request: RequestFactory, assert_valid_plan: PlanChecker,
) -> None:
    payload = make_request(5).model_dump(exclude_unset=True)
    payload["location_group"]["locations"].append(
        {"id": "far-away", "lat": 53.37, "lon": 4.89, "required": False, "penalty": 50,
         "time_window": {"earliest": 0, "latest": 60}}
    )
    request = GenerateRoutesRequest.model_validate(payload)

    plan = solve(problem_from_request(request), time_limit_seconds=1)

    assert [(u.location_id, u.code) for u in plan.unassigned] == [("far-away", "window")]
    assert "no time window reachable" in plan.unassigned[0].reason
    assert_valid_plan(plan, request, None)


def test_request__location_heavier_than_vehicle__refused(make_request: RequestFactory) -> None:
    payload = make_request(5, capacity=10).model_dump(exclude_unset=True)
    payload["location_group"]["locations"][1]["demand"] = 25

    with pytest.raises(ValidationError, match=r"vehicle capacity of 10 at: L1 \(25\)"):
        GenerateRoutesRequest.model_validate(payload)


def test_request__max_route_shorter_than_a_round_trip__refused(
    make_request: RequestFactory,
) -> None:
    with pytest.raises(ValidationError, match="serving it alone takes"):
        make_request(5, max_route_minutes=2)


def test_solve__windows_reachable_alone_but_not_together__infeasible_after_search() -> None:
    # Two places 20 km apart (30 min at 40 km/h) both served 60..61 by the only vehicle.
    request = GenerateRoutesRequest.model_validate(
        {
            "location_group": {
                "depot": {"lat": 52.0, "lon": 5.0},
                "locations": [
                    {"id": "north", "lat": 52.09, "lon": 5.0, "earliest": 60, "latest": 61},
                    {"id": "south", "lat": 51.91, "lon": 5.0, "earliest": 60, "latest": 61},
                ],
            },
            "settings": {"vehicles": 1, "vehicle_capacity": 5},
        }
    )

    with pytest.raises(InfeasibleProblem) as caught:
        solve(problem_from_request(request), time_limit_seconds=1)

    message = str(caught.value)
    assert "arrives after the time window" in message
    assert "north" in message or "south" in message
    assert "add vehicles" in message


def test_plan__to_dict_and_back__same_plan(make_request: RequestFactory) -> None:
    plan = solve(problem_from_request(make_request(20, windows=True)), time_limit_seconds=0.5)

    stored = json.loads(json.dumps(plan.to_dict()))

    assert RoutePlan.from_dict(stored) == plan
    assert stored["total_distance_km"] == plan.total_distance_km
    solver_keys = {"cost", "feasible", "runtime_seconds", "iterations", "stopped_early", "seed"}
    assert set(stored["solver"]) >= solver_keys


def test_solve__seed_is_reported(make_request: RequestFactory) -> None:
    problem = problem_from_request(make_request(10))

    assert solve(problem, time_limit_seconds=0.2, seed=42).solver.seed == 42
    assert solve(problem, time_limit_seconds=0.2).solver.seed == 0


def test_import__api_side_modules_stay_light() -> None:
    """Models, plan and GeoJSON import neither numpy nor PyVRP; the solver not PyVRP."""
    script = (
        "import sys\n"
        "import jobworker.routes.models, jobworker.routes.plan, jobworker.routes.geojson\n"
        "assert 'numpy' not in sys.modules and 'pyvrp' not in sys.modules, 'api side'\n"
        "from jobworker.routes.models import GenerateRoutesRequest\n"
        "from jobworker.routes.build import problem_from_request\n"
        "from jobworker.routes.solver import solve\n"
        "request = GenerateRoutesRequest.from_payload({})\n"
        "solve(problem_from_request(request), time_limit_seconds=1)\n"
        "assert 'pyvrp' not in sys.modules, 'an empty problem needs no pyvrp'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_problem_from_request__deadline_passed__out_of_time(make_request: RequestFactory) -> None:
    from jobworker.routes.build import OutOfTime

    with pytest.raises(OutOfTime, match="deadline passed"):
        problem_from_request(make_request(10), deadline=time.monotonic() - 1)


def test_scaled__slowest_speed_farthest_points__capped_never_negative() -> None:
    """speed_kmh=1e-300 once overflowed int64 into negative durations; the API now refuses
    it, and even the slowest accepted speed between antipodes stays a positive cap."""
    import numpy as np

    from jobworker.routes.solver import UNREACHABLE_SECONDS, scaled

    minutes = np.array([[0.0, 20_037.5 * 60 / 1.0 / 0.1], [1e300, 0.0]])

    seconds = scaled(minutes, 60.0, cap=UNREACHABLE_SECONDS)

    assert seconds.tolist() == [[0, UNREACHABLE_SECONDS], [UNREACHABLE_SECONDS, 0]]
