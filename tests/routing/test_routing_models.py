"""Input validation: what a user gets a clear 422 for instead of a failed job."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from jobworker.routes.models import (
    MAX_LOCATIONS,
    GenerateRoutesRequest,
    Location,
    LocationGroup,
    RoutingSettings,
    describe_validation_error,
)


def _body(locations: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {
        "location_group": {"depot": {"lat": 52.0, "lon": 5.0}, "locations": locations},
        "settings": {"vehicles": 2, "vehicle_capacity": 10, **settings},
    }


def _where(lat: float = 52.1, lon: float = 5.1, **fields: Any) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, **fields}


def _error_text(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        GenerateRoutesRequest.model_validate(body)
    return describe_validation_error(caught.value)


def test_request__minimal_body__defaults_filled() -> None:
    request = GenerateRoutesRequest.model_validate(_body([_where(id="a")]))

    location = request.location_group.locations[0]
    assert (location.demand, location.service_minutes, location.time_window) == (1, 0, None)
    settings = request.settings
    assert (settings.speed_kmh, settings.max_runtime_seconds, settings.seed) == (40, 30, None)
    assert settings.max_route_minutes is None


def test_location__flat_earliest_latest__same_as_time_window() -> None:
    flat = Location.model_validate(_where(id="a", earliest=480, latest=600))
    nested = Location.model_validate(_where(id="a", time_window={"earliest": 480, "latest": 600}))

    assert flat == nested
    assert flat.model_dump()["time_window"] == {"earliest": 480, "latest": 600}


def test_location__only_latest__window_open_from_midnight() -> None:
    location = Location.model_validate(_where(id="a", latest=600))

    assert location.time_window is not None
    assert (location.time_window.earliest, location.time_window.latest) == (0, 600)


def test_location__both_window_shapes__rejected() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Location.model_validate(_where(id="a", earliest=1, time_window={"latest": 5}))


def test_time_window__closes_before_it_opens__rejected() -> None:
    with pytest.raises(ValidationError, match="closes before it opens"):
        Location.model_validate(_where(id="a", earliest=600, latest=480))


@pytest.mark.parametrize(("lat", "lon"), [(90.5, 5.0), (-91.0, 5.0), (52.0, 180.5), (52.0, -181.0)])
def test_location__coordinates_out_of_range__rejected(lat: float, lon: float) -> None:
    text = _error_text(_body([_where(lat, lon, id="a")]))

    assert "location_group.locations.0.l" in text


def test_location__empty_id_or_unknown_field__rejected() -> None:
    assert "locations.0.id" in _error_text(_body([_where(id="")]))
    assert "locations.0.dmand" in _error_text(_body([_where(id="a", dmand=3)]))


def test_location_group__duplicate_ids__named_in_the_error() -> None:
    locations = [_where(id=name) for name in ("a", "b", "a", "c", "c")]

    text = _error_text(_body(locations, vehicles=5))

    assert "duplicate location ids: a, c" in text


def test_location_group__more_than_5000_locations__rejected() -> None:
    locations = [_where(id=str(i), demand=0) for i in range(MAX_LOCATIONS + 1)]

    text = _error_text(_body(locations))

    assert f"at most {MAX_LOCATIONS}" in text


def test_location_group__exactly_5000_locations__accepted() -> None:
    locations = [{"id": str(i), "lat": 0, "lon": 0, "demand": 0} for i in range(MAX_LOCATIONS)]

    group = LocationGroup.model_validate({"depot": {"lat": 0, "lon": 0}, "locations": locations})

    assert len(group.locations) == MAX_LOCATIONS


def test_request__total_demand_over_fleet_capacity__says_so_with_numbers() -> None:
    locations = [_where(id=str(i), demand=6) for i in range(4)]  # 24 > 2 x 10

    text = _error_text(_body(locations))

    assert "total demand 24 exceeds the fleet capacity of 20 (2 vehicles x 10)" in text


def test_request__location_heavier_than_a_vehicle__named() -> None:
    text = _error_text(_body([_where(id="piano", demand=11), _where(id="box")]))

    assert "demand above the vehicle capacity of 10 at: piano (11)" in text


@pytest.mark.parametrize(
    "settings",
    [
        {"vehicles": 0, "vehicle_capacity": 1},
        {"vehicles": 1001, "vehicle_capacity": 1},
        {"vehicles": 1, "vehicle_capacity": 0},
        {"vehicles": 1, "vehicle_capacity": 1, "speed_kmh": 0},
        {"vehicles": 1, "vehicle_capacity": 1, "max_runtime_seconds": 901},
        {"vehicles": 1, "vehicle_capacity": 1, "max_route_minutes": 0},
        {"vehicles": 1, "vehicle_capacity": 1, "vehicle": 3},
    ],
)
def test_settings__out_of_range_or_unknown__rejected(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RoutingSettings.model_validate(settings)


@pytest.mark.parametrize("payload", [{}, None])
def test_from_payload__empty__no_locations(payload: dict[str, Any] | None) -> None:
    request = GenerateRoutesRequest.from_payload(payload)

    assert request.location_group.locations == []
    assert (request.settings.vehicles, request.settings.vehicle_capacity) == (1, 1)


def test_from_payload__invalid__raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        GenerateRoutesRequest.from_payload({"location_group": {}})


def test_describe_validation_error__short_and_located() -> None:
    text = _error_text(_body([_where(95, 5, id="a")], vehicles=0))

    assert text.startswith("location_group.locations.0.lat: Input should be less than")
    assert "settings.vehicles" in text


def test_json_schema__documents_the_fields() -> None:
    schema = GenerateRoutesRequest.model_json_schema()

    location = schema["$defs"]["Location"]["properties"]
    assert "description" in location["time_window"]
    assert location["lat"]["maximum"] == 90


def _fleet_body(locations: list[dict[str, Any]], **vehicle: Any) -> dict[str, Any]:
    van = {"id": "van", "count": 2, "capacity": [10, 4], "start": "hq", "end": "hq", **vehicle}
    return {"location_group": {"depots": [{"id": "hq", "lat": 52.0, "lon": 5.0}],
                               "locations": locations},
            "settings": {"vehicles": [van]}}


def test_fleet_request__pickup_only_stop__delivers_nothing() -> None:
    request = GenerateRoutesRequest.model_validate(
        _fleet_body([_where(id="a", pickup=[3, 1]), _where(id="b")]))

    a, b = request.location_group.locations
    assert (a.delivery(2), a.collection(2)) == ([0, 0], [3, 1])
    assert (b.delivery(2), b.collection(2)) == ([1, 0], [0, 0])


@pytest.mark.parametrize(("locations", "vehicle", "expected"), [
    ([_where(id="a", demand=[1, 2, 3])], {},
     "location_group.locations.0.demand: 3 dimension(s), but vehicle capacities have 2"),
    ([_where(id="a")], {"start": "nowhere"}, "settings.vehicles.0.start: unknown depot id"),
    ([_where(id="a", skills=["fridge"])], {},
     "location_group.locations.0: stop a: no vehicle has the skill(s) fridge"),
    ([_where(id="a", demand=[11, 1])], {}, "stop a: over capacity"),
    ([_where(id="a", time_windows=[{"earliest": 0, "latest": 1}])],
     {"shift": {"earliest": 600, "latest": 900}}, "stop a: no time window reachable"),
    ([_where(id="a", lat=53.0)], {"max_distance_km": 50}, "stop a: a route serving it alone"),
])
def test_fleet_request__what_no_vehicle_can_do__422_naming_the_field(
    locations: list[dict[str, Any]], vehicle: dict[str, Any], expected: str,
) -> None:
    assert expected in _error_text(_fleet_body(locations, **vehicle))


def test_fleet_request__optional_stop_no_vehicle_can_serve__accepted() -> None:
    body = _fleet_body([_where(id="a", skills=["fridge"], required=False, penalty=10)])

    request = GenerateRoutesRequest.model_validate(body)

    assert request.location_group.locations[0].is_required is False


def test_a_field_of_several_shapes_is_named_without_pydantics_branch_names() -> None:
    """``vehicles`` is a number or a list of types; ``demand`` a number or a list: a wrong
    value names the field a client sent, not "constrained-int" or "list[VehicleType]"."""
    from pydantic import ValidationError

    from jobworker.problems import field_problems

    body = {"location_group": {"depot": {"lat": 1, "lon": 1},
                               "locations": [{"id": "a", "lat": 1, "lon": 1, "demand": [1, "q"]}]},
            "settings": {"vehicles": [{"id": "van", "count": "z", "capacity": 3}]}}
    with pytest.raises(ValidationError) as caught:
        GenerateRoutesRequest.model_validate(body)
    fields = {problem.field for problem in field_problems(caught.value.errors())}
    assert fields == {"location_group.locations.0.demand", "location_group.locations.0.demand.1",
                      "settings.vehicles", "settings.vehicles.0.count"}
