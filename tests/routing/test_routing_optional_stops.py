"""Optional stops: a plan that leaves some out instead of failing, and why each one is out.

Every plan goes through the independent checker (tests/routing/checker.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from jobworker.routes.build import problem_from_request
from jobworker.routes.models import MAX_PENALTY, MAX_PRIORITY, GenerateRoutesRequest
from jobworker.routes.solver import solve
from tests.routing.conftest import check_plan

DEPOT = {"id": "d", "lat": 52.32, "lon": 4.82}


def _stops(n: int, prefix: str = "s", **fields: Any) -> list[dict[str, Any]]:
    """``n`` stops a few km south-west of the depot (lat 52.30-52.34, lon 4.80-4.81)."""
    return [{"id": f"{prefix}{i}", "lat": 52.30 + 0.04 * i / max(n - 1, 1),
             "lon": 4.80 + 0.01 * (i % 11) / 10, **fields} for i in range(n)]


def _one_van(stops: list[dict[str, Any]], **van: Any) -> GenerateRoutesRequest:
    vehicle = {"id": "van", "count": 1, "capacity": 50, "start": "d", "end": "d", **van}
    return GenerateRoutesRequest.model_validate({
        "location_group": {"depots": [DEPOT], "locations": stops},
        "settings": {"vehicles": [vehicle], "max_runtime_seconds": 5},
    })


@pytest.mark.parametrize(("stops", "skip_cost"), [
    (6, {"priority": 10}),
    (6, {"penalty": 10_000}),
    (6, {"priority": MAX_PRIORITY}),
    (6, {"penalty": MAX_PENALTY}),
    (150, {"penalty": 1_000}),
    (150, {"priority": MAX_PRIORITY}),
    (150, {"penalty": MAX_PENALTY}),
])
def test_solve__all_optional_and_a_high_penalty__feasible_plan_leaves_stops_out(
    stops: int, skip_cost: dict[str, float],
) -> None:
    """The issue's request: 5 of them fit the van (50 / 10 each); the rest stay unassigned."""
    request = _one_van(_stops(stops, demand=10, **skip_cost))

    plan = solve(problem_from_request(request), time_limit_seconds=1)

    check_plan(plan, request)
    assert plan.locations_served == 5
    assert plan.locations_unassigned == stops - 5
    assert {item.code for item in plan.unassigned} == {"capacity"}


def test_solve__required_stops_and_optional_ones_that_overload__optional_ones_left_out() -> None:
    required = _stops(3, prefix="r", demand=10)
    optional = _stops(150, prefix="o", demand=10, priority=MAX_PRIORITY)
    request = _one_van(required + optional)

    plan = solve(problem_from_request(request), time_limit_seconds=1)

    check_plan(plan, request)
    served = {stop.location_id for route in plan.routes for stop in route.stops}
    assert {"r0", "r1", "r2"} <= served
    assert plan.locations_served == 5


def test_solve__fixed_cost_above_the_penalty_for_overloading__second_van_used() -> None:
    """A unit of overload must cost more than the vehicle it would save."""
    request = _one_van(_stops(6, demand=10), count=2, fixed_cost=1_000_000)

    plan = solve(problem_from_request(request), time_limit_seconds=1)

    check_plan(plan, request)
    assert plan.vehicles_used == 2


@pytest.fixture
def weak_penalties(monkeypatch: pytest.MonkeyPatch) -> None:
    """Penalties far below the prizes: the search's best plan keeps breaking limits, and the
    repair (routes/repair.py) must turn it into a feasible one."""
    from jobworker.routes import solver

    monkeypatch.setattr(solver, "penalty_limits", lambda *_, **__: (0.1, 1.0))


@pytest.mark.parametrize(("why", "van"), [
    ("capacity", {}),
    ("shift", {"capacity": 1_000, "shift": {"earliest": 480, "latest": 560}}),
])
@pytest.mark.usefixtures("weak_penalties")
def test_solve__best_plan_found_breaks_a_limit__optional_stops_taken_off_until_it_holds(
    why: str, van: dict[str, Any],
) -> None:
    required = _stops(2, prefix="r", demand=10, service_minutes=10)
    optional = _stops(40, prefix="o", demand=10, service_minutes=10, priority=MAX_PRIORITY)
    request = _one_van(required + optional, **van)

    plan = solve(problem_from_request(request), time_limit_seconds=0.5)

    check_plan(plan, request)
    served = {stop.location_id for route in plan.routes for stop in route.stops}
    assert {"r0", "r1"} <= served
    assert len(served) > 2, f"{why}: the repair keeps what still fits"
    assert any("optional stop(s) were taken off" in note for note in plan.notes)


@pytest.mark.usefixtures("weak_penalties")
def test_solve__required_stops_alone_overload__still_infeasible() -> None:
    from jobworker.routes.solver import InfeasibleProblem

    required = _stops(3, prefix="r", demand=15)  # 45 of 2 x 25, but one a van
    request = _one_van(required + _stops(5, prefix="o", demand=10, priority=1), count=2,
                       capacity=25)

    with pytest.raises(InfeasibleProblem, match="over their vehicle's capacity"):
        solve(problem_from_request(request), time_limit_seconds=0.5)


# --- why a stop is left out ------------------------------------------------------------------


def _reasons(request: GenerateRoutesRequest, seconds: float = 1) -> dict[str, tuple[str, str]]:
    plan = solve(problem_from_request(request), time_limit_seconds=seconds)
    check_plan(plan, request)
    return {item.location_id: (item.code, item.reason) for item in plan.unassigned}


def test_why_dropped__the_shift_is_full__shift_not_penalty() -> None:
    """The audit's case: 10 stops of 10 min on one van with an 80-minute shift. Serving one
    more costs about a kilometre, far below its penalty: the shift is what keeps it out."""
    request = _one_van(_stops(10, service_minutes=10, penalty=5000),
                       shift={"earliest": 480, "latest": 560})

    reasons = _reasons(request)

    assert reasons
    assert {code for code, _ in reasons.values()} == {"shift"}
    assert all("after its shift ends at minute 560" in why for _, why in reasons.values())


def test_why_dropped__it_fits_but_costs_more_than_its_penalty__penalty_with_the_cost() -> None:
    far = {"id": "far", "lat": 52.60, "lon": 5.30, "penalty": 1}
    request = _one_van([*_stops(4), far], capacity=100)

    code, why = _reasons(request)["far"]

    assert code == "penalty"
    assert why.startswith("dropped: its penalty (1) was lower than the cost of serving it")
    assert "more, on route 1 (van)" in why


def test_why_dropped__it_would_make_a_required_stop_late__window() -> None:
    """East and west of the depot, both only at 08:20-08:25: the van serves the required one."""
    east = {"id": "east", "lat": 52.32, "lon": 4.97, "time_window": {"earliest": 500,
                                                                     "latest": 505}}
    west = {"id": "west", "lat": 52.32, "lon": 4.67, "penalty": 10_000,
            "time_window": {"earliest": 500, "latest": 505}}
    request = _one_van([east, west], shift={"earliest": 470, "latest": 900})

    code, why = _reasons(request)["west"]

    assert code == "window"
    assert "(the closest, route 1 (van), would miss a later stop's time window by" in why


def test_why_dropped__max_route_minutes_reached__limit() -> None:
    required = _stops(5, prefix="r", service_minutes=10)
    optional = _stops(3, prefix="o", service_minutes=10, penalty=10_000)
    request = _one_van(required + optional, max_route_minutes=75)

    reasons = _reasons(request)

    assert reasons
    assert {code for code, _ in reasons.values()} == {"limit"}
    assert all("over max_route_minutes" in why for _, why in reasons.values())


def test_why_dropped__full_on_one_dimension_counting_pickups__capacity() -> None:
    """Room for its delivery, but not for what it sends back: pickups ride after it."""
    required = _stops(2, prefix="r", demand=[1, 0], pickup=[0, 5])
    extra = {"id": "extra", "lat": 52.31, "lon": 4.81, "demand": [1, 0], "pickup": [0, 1],
             "penalty": 10_000}
    request = _one_van([*required, extra], capacity=[10, 10])

    code, why = _reasons(request)["extra"]

    assert code == "capacity"
    assert "over its capacity in load dimension 1" in why


@pytest.mark.parametrize(("deadline", "says"), [
    (True, "out of time: the job's deadline ended the search before a place was found"),
    (False, "out of time: the search ended before it placed it"),
])
def test_why_dropped__fits_for_less_than_its_penalty__time_naming_the_place(
    deadline: bool, says: str,
) -> None:
    """What the search missed is said as such, never as a penalty it did not weigh."""
    import numpy as np

    from jobworker.routes.dropped import Scales, why_dropped
    from jobworker.routes.insertion import Vehicle, Verdict

    zero = np.zeros((1, 1), dtype=np.int64)
    van = Vehicle(name="van", capacity=(10,), start_row=0, end_row=0, earliest=0, latest=60,
                  max_duration=60, max_distance=1_000, unit_distance_cost=10,
                  unit_duration_cost=0, fixed_cost=0, distance=zero, duration=zero, unused=0)
    fits = Verdict(outcome="fits", vehicle=0, tour=2, amount=12_500)  # 1.25 in currency

    code, why = why_dropped(fits, van, penalty=5, cut_by_deadline=deadline,
                            scales=Scales(distance_units_per_km=1000, cost_scale=10_000,
                                          dimensions=1))

    assert code == "time"
    assert why.startswith(says)
    assert "it fits on route 2 (van) for 1.25 more, less than its penalty 5" in why
