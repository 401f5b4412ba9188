"""The generated city (tests/routing/realistic.py): 300 stops, 3 depots, 3 vehicle types."""

from __future__ import annotations

from collections import Counter

from jobworker.routes.build import problem_from_request
from jobworker.routes.geojson import plan_to_geojson
from jobworker.routes.models import GenerateRoutesRequest
from jobworker.routes.solver import solve
from tests.routing.checker import check_answer
from tests.routing.realistic import city_request


def test_city__300_stops_3_depots_3_types__feasible_within_its_limit() -> None:
    body = city_request(runtime=8)
    request = GenerateRoutesRequest.model_validate(body)

    plan = solve(problem_from_request(request), time_limit_seconds=8)
    answer = plan.to_dict()

    check_answer(answer, body)
    assert plan.solver.stop_reason in ("time_limit", "converged")
    assert not plan.solver.stopped_early
    required = [s["id"] for s in body["location_group"]["locations"]
                if s.get("required", True)]
    served = {stop.location_id for route in plan.routes for stop in route.stops}
    assert set(required) <= served
    assert all(item.required is False for item in plan.unassigned)
    types = Counter(route.vehicle_type for route in plan.routes)
    assert types["reefer"] >= 1  # 30 stops need a fridge
    assert types["truck"] >= 1  # 15 need a tail lift
    two_windowed = [s for s in body["location_group"]["locations"] if s.get("time_windows")]
    assert len(two_windowed) == 30
    served_in_afternoon = [stop for route in plan.routes for stop in route.stops
                           if stop.time_window is not None and stop.time_window[0] == 900]
    assert all(900 <= stop.start_service_minute <= 1080 for stop in served_in_afternoon)
    collection = plan_to_geojson(plan)
    roles = Counter(f["properties"]["role"] for f in collection["features"])
    assert roles == {"depot": 3, "route": len(plan.routes), "stop": len(served),
                     "unassigned": len(plan.unassigned)}
    remote = {item.location_id: item for item in plan.unassigned
              if item.location_id.startswith("remote-")}
    assert sorted(remote) == ["remote-0", "remote-1", "remote-2"]
    assert all(item.code == "penalty" and "penalty (5)" in item.reason
               for item in remote.values())
