"""``amazon-location`` with botocore's Stubber only. Every geo-routes client in the tests points
at 127.0.0.1 (AWS_ENDPOINT_URL_GEO_ROUTES, set in tests/roadnet.py): an unstubbed call cannot
reach AWS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from jobworker.routes.providers import amazon_location
from jobworker.routes.providers.budget import PointError, ProviderUnavailable
from jobworker.routes.travel import TravelError, provider_for
from tests.conftest import LambdaClient
from tests.test_roads_jobs import STOPS, road_request, run_job

CITY = [(52.37 + 0.01 * (k % 5), 4.89 + 0.01 * (k // 5)) for k in range(20)]  # ~5 km across
EUROPE = [(40.0 + k, -3.0 + k) for k in range(20)]  # ~2,600 km across


@pytest.fixture
def client() -> Iterator[Any]:
    geo = boto3.client("geo-routes", region_name="eu-west-1", aws_access_key_id="test",
                       aws_secret_access_key="test",
                       config=Config(retries={"max_attempts": 1}))
    assert geo.meta.endpoint_url.startswith("http://127.0.0.1")
    return geo


def matrix_answer(rows: range, columns: range, *, error: tuple[int, int, str] | None = None,
                  boundary: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the service answers: seconds 60 * (i + j) + 7, metres 100 * (i + 2 * j) + 3."""
    cells = []
    for i in rows:
        row = []
        for j in columns:
            cell: dict[str, Any] = {"Duration": 60 * (i + j) + 7, "Distance": 100 * (i + 2 * j) + 3}
            if error and (i, j) == error[:2]:
                cell["Error"] = error[2]
            row.append(cell)
        cells.append(row)
    return {"ErrorCount": int(error is not None), "PricingBucket": "Core", "RouteMatrix": cells,
            "RoutingBoundary": boundary or {"Unbounded": True}}


def expected_request(points: list[tuple[float, float]], rows: range, columns: range,
                     boundary: Any, mode: str = "Car") -> dict[str, Any]:
    return {"Origins": [{"Position": [points[i][1], points[i][0]]} for i in rows],
            "Destinations": [{"Position": [points[j][1], points[j][0]]} for j in columns],
            "TravelMode": mode, "RoutingBoundary": boundary}


def test_amazon_location__points_in_a_city_take_one_bounded_request(client: Any) -> None:
    everything = range(len(CITY))
    with Stubber(client) as stub:
        stub.add_response("calculate_route_matrix", matrix_answer(everything, everything),
                          expected_request(CITY, everything, everything,
                                           {"Geometry": {"BoundingBox": ANY}}))
        table = provider_for("amazon-location", {"client": client}).matrix(
            CITY, "car", deadline=None)
        stub.assert_no_pending_responses()
    i, j = np.indices((20, 20))
    assert np.allclose(table.durations_minutes, np.where(i == j, 0, (60 * (i + j) + 7) / 60))
    assert np.allclose(table.distances_km, np.where(i == j, 0, (100 * (i + 2 * j) + 3) / 1000))
    assert table.provider == "amazon-location"


def test_amazon_location__the_box_holds_every_point_with_a_margin() -> None:
    west, south, east, north = amazon_location.bounding_box(CITY, 5000)
    assert all(south < lat < north and west < lon < east for lat, lon in CITY)
    assert amazon_location.diagonal_m([west, south, east, north]) < 400_000
    assert amazon_location.diagonal_m(amazon_location.bounding_box(EUROPE, 5000)) > 400_000


def test_amazon_location__points_across_a_continent_go_unbounded_in_15_by_100_blocks(
    client: Any,
) -> None:
    everything = range(len(EUROPE))
    with Stubber(client) as stub:
        for rows in (range(0, 15), range(15, 20)):
            stub.add_response("calculate_route_matrix", matrix_answer(rows, everything),
                              expected_request(EUROPE, rows, everything, {"Unbounded": True},
                                               mode="Truck"))
        table = provider_for("amazon-location", {"client": client}).matrix(
            EUROPE, "truck", deadline=None)
        stub.assert_no_pending_responses()
    assert table.durations_minutes[17, 3] == pytest.approx((60 * 20 + 7) / 60)


def test_amazon_location__a_stop_off_the_roads_is_named(client: Any) -> None:
    everything = range(len(CITY))
    with Stubber(client) as stub:
        stub.add_response("calculate_route_matrix",
                          matrix_answer(everything, everything, error=(4, 9, "NoMatchOrigin")),
                          expected_request(CITY, everything, everything,
                                           {"Geometry": {"BoundingBox": ANY}}))
        with pytest.raises(PointError) as failure:
            provider_for("amazon-location", {"client": client}).matrix(CITY, "car",
                                                                       deadline=None)
    assert failure.value.points == (4,)
    assert "point 4 (52.41000, 4.89000) is not near a road" in failure.value.reason


def test_amazon_location__throttling_is_worth_a_later_attempt(client: Any) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("calculate_route_matrix", service_error_code="ThrottlingException",
                              service_message="Rate exceeded", http_status_code=429)
        with pytest.raises(ProviderUnavailable, match="throttled"):
            provider_for("amazon-location", {"client": client}).matrix(CITY, "car",
                                                                       deadline=None)


def test_amazon_location__a_profile_it_lacks_is_refused(client: Any) -> None:
    with pytest.raises(TravelError, match=r"no 'bicycle' profile \(it has car, foot"):
        provider_for("amazon-location", {"client": client}).matrix(CITY, "bicycle",
                                                                   deadline=None)


def test_amazon_location__an_unstubbed_call_stays_on_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    provider = provider_for("amazon-location", {"region": "eu-west-1"})
    assert provider.client.meta.endpoint_url.startswith("http://127.0.0.1")
    with pytest.raises(ProviderUnavailable, match="could not reach the service"):
        provider.matrix(CITY[:2], "car", deadline=None)


@pytest.fixture
def poller_client(client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stubbed client is the one the poller's jobs get; one job per invocation."""
    monkeypatch.setattr(amazon_location, "make_client", lambda region, endpoint: client)
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.5")
    return client


def test_route_job__amazon_location_plans_on_its_times(
    poller_client: Any, api: LambdaClient, handlers: dict[str, Any],
) -> None:
    client = poller_client
    body = road_request({"provider": "amazon-location", "geometry": False})
    everything = range(len(STOPS) + 1)
    with Stubber(client) as stub:
        stub.add_response("calculate_route_matrix", matrix_answer(everything, everything))
        job = run_job(api, handlers, body)
        stub.assert_no_pending_responses()
    assert job["progress"] == "COMPLETED", job["error"]
    assert job["result"]["travel"]["provider"] == "amazon-location"
    routes = api("GET", f"/jobs/{job['job_id']}/routes").json["routes"]
    first = routes[0]["stops"][0]
    index = int(first["location_id"][1:]) + 1
    assert first["distance_from_previous_km"] == pytest.approx((100 * (0 + 2 * index) + 3) / 1000)


def routes_answer(legs: int, *, offset: int = 0) -> dict[str, Any]:
    """A CalculateRoutes answer of ``legs`` legs, leg k a two-point line marked by k."""
    return {"LegGeometryFormat": "Simple", "Notices": [], "PricingBucket": "Core",
            "Routes": [{"Legs": [{"Geometry": {"LineString": [[4.0 + 0.001 * (offset + k), 52.0],
                                                              [4.0 + 0.001 * (offset + k), 52.1]]},
                                  "TravelMode": "Car", "Type": "Vehicle"}
                                 for k in range(legs)],
                        "MajorRoadLabels": [], "Summary": {}}]}


def routes_request(points: list[tuple[float, float]]) -> dict[str, Any]:
    return {"Origin": [points[0][1], points[0][0]], "Destination": [points[-1][1], points[-1][0]],
            "Waypoints": [{"Position": [lon, lat]} for lat, lon in points[1:-1]],
            "TravelMode": "Car", "LegGeometryFormat": "Simple"}


def test_amazon_location__a_long_route_is_drawn_in_pieces_of_25_points(client: Any) -> None:
    points = [(52.0 + 0.001 * k, 4.0) for k in range(30)]
    with Stubber(client) as stub:
        stub.add_response("calculate_routes", routes_answer(24), routes_request(points[:25]))
        stub.add_response("calculate_routes", routes_answer(5, offset=24),
                          routes_request(points[24:]))
        legs = provider_for("amazon-location", {"client": client}).leg_geometry(points, "car")
        stub.assert_no_pending_responses()
    assert legs is not None
    assert len(legs) == 29  # one per consecutive pair
    assert legs[27] == [(52.0, 4.0 + 0.001 * 27), (52.1, 4.0 + 0.001 * 27)]  # (lat, lon)


def test_amazon_location__geometry_false_asks_for_no_lines(client: Any) -> None:
    provider = provider_for("amazon-location", {"client": client, "geometry": False})
    with Stubber(client) as stub:  # any call would fail: nothing is stubbed
        assert provider.leg_geometry(CITY[:5], "car") is None
        stub.assert_no_pending_responses()


def test_route_job__amazon_location_draws_the_route_on_its_roads(
    poller_client: Any, api: LambdaClient, handlers: dict[str, Any],
) -> None:
    client = poller_client
    body = road_request({"provider": "amazon-location"})
    body["settings"].update(vehicles=1, vehicle_capacity=len(STOPS))  # one route, every stop
    everything = range(len(STOPS) + 1)
    legs = len(STOPS) + 1  # depot, the stops, depot
    with Stubber(client) as stub:
        stub.add_response("calculate_route_matrix", matrix_answer(everything, everything))
        stub.add_response("calculate_routes", routes_answer(legs),
                          {"Origin": ANY, "Destination": ANY, "Waypoints": ANY,
                           "TravelMode": "Car", "LegGeometryFormat": "Simple"})
        job = run_job(api, handlers, body)
        stub.assert_no_pending_responses()
    assert job["progress"] == "COMPLETED", job["error"]
    geojson = api("GET", f"/jobs/{job['job_id']}/routes?format=geojson").json
    (line,) = [f for f in geojson["features"] if f["properties"]["role"] == "route"]
    assert line["properties"]["on_roads"] is True
    assert line["geometry"]["coordinates"] == [
        [4.0 + 0.001 * k, lat] for k in range(legs) for lat in (52.0, 52.1)]
