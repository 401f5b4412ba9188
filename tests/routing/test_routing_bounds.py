"""Nothing a request can hold makes PyVRP's int64 costs wrap (routes/bounds.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jobworker.routes import models
from jobworker.routes.bounds import (
    COST_BUDGET,
    COST_SCALE,
    INT64_MAX,
    UNREACHABLE_SECONDS,
    api_extremes,
    penalty_limits,
)
from jobworker.routes.solver import (
    USUAL_MAX_PENALTY,
    USUAL_MIN_PENALTY,
    FleetSpec,
    Place,
    RoutingProblem,
    StopSpec,
    solve,
)


def test_bounds__largest_request_the_api_accepts__every_cost_term_inside_int64() -> None:
    worst = api_extremes()
    scale = worst.unit_distance_cost  # the usual penalties scale with the travel cost
    low, high = penalty_limits(worst, usual_min=USUAL_MIN_PENALTY * scale,
                               usual_max=USUAL_MAX_PENALTY * scale)

    assert worst.clients == models.MAX_LOCATIONS * models.MAX_WINDOWS
    assert worst.load_total == (worst.clients * models.MAX_DIMENSIONS * 2
                                * models.MAX_QUANTITY)
    assert worst.largest_prize == models.MAX_PENALTY * COST_SCALE
    # The cost terms alone take under a twentieth of the budget; the penalties the rest.
    assert worst.cost() < COST_BUDGET // 20
    assert 0 < low <= high
    assert worst.cost() + high * worst.violation() <= COST_BUDGET
    assert 4 * COST_BUDGET <= INT64_MAX


def test_bounds__the_audits_case__old_penalty_would_wrap_the_new_one_does_not() -> None:
    """1,200 stops of [1e9] x 8 on one route wrapped at the old 1e6 per unit."""
    excess = 1_200 * 8 * models.MAX_QUANTITY
    worst = api_extremes()
    _, high = penalty_limits(worst, usual_min=1.0, usual_max=1e6)

    assert 1e6 * excess > INT64_MAX
    assert high * excess <= COST_BUDGET


def _capture_search_input(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stop ``solve`` at PyVRP's door and keep what it was handed."""
    import pyvrp

    seen: dict[str, Any] = {}

    class Handed(Exception):
        pass

    def fake_solve(data: Any, stop: Any, **kwargs: Any) -> Any:
        seen.update(data=data, params=kwargs["params"])
        raise Handed

    monkeypatch.setattr(pyvrp, "solve", fake_solve)
    seen["handed"] = Handed
    return seen


def _heaviest_problem(n: int, dims: int) -> RoutingProblem:
    """Every number at the API's limit: loads, pickups, prizes, costs, legs and service."""
    places = (Place("depot", 0.0, 0.0, depot=True), *(Place(f"s{i}", 0.0, 0.0)
                                                       for i in range(n)))
    biggest = (models.MAX_QUANTITY,) * dims
    stops = tuple(StopSpec(id=f"s{i}", row=i + 1, delivery=biggest, pickup=biggest,
                           service_seconds=models.MINUTES_PER_DAY * 60, required=False,
                           penalty=models.MAX_PENALTY) for i in range(n))
    van = FleetSpec(id="van", count=1, capacity=biggest, start_row=0, end_row=0,
                    fixed_cost=models.MAX_FIXED_COST, cost_per_km=models.MAX_COST_PER_KM,
                    cost_per_hour=models.MAX_COST_PER_HOUR)
    distance = np.full((n + 1, n + 1), round(models.MAX_MATRIX_KM * 1000), dtype=np.int64)
    duration = np.full((n + 1, n + 1), UNREACHABLE_SECONDS, dtype=np.int64)
    np.fill_diagonal(distance, 0)
    np.fill_diagonal(duration, 0)
    return RoutingProblem(name="heaviest", places=places, stops=stops, fleet=(van,),
                          distance={"car": distance}, duration={"car": duration})


def test_cost_evaluator__max_settings_all_stops_on_one_route__penalised_cost_positive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyVRP's own arithmetic, at the penalties ``solve`` hands it (all at their maximum)."""
    from pyvrp import CostEvaluator, Solution

    dims, n = models.MAX_DIMENSIONS, 1_500
    seen = _capture_search_input(monkeypatch)
    with pytest.raises(seen["handed"]):
        solve(_heaviest_problem(n, dims), time_limit_seconds=1)
    data, penalty = seen["data"], seen["params"].penalty.max_penalty
    everything = Solution(data, [list(range(data.num_clients))])

    cost = CostEvaluator([penalty] * dims, penalty, penalty).penalised_cost(everything)

    excess_load = sum(everything.excess_load())
    assert excess_load == (n - 1) * dims * models.MAX_QUANTITY  # every stop over a full van
    assert cost > 0
    assert cost >= penalty * (excess_load + everything.time_warp())  # no silent wrap either
