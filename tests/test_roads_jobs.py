"""Route jobs on roads, end to end: API -> poller -> route tables -> API, with ``provider: osrm``
on the street grid the tests wrote (tests/roadnet.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from jobworker.routes.travel import provider_for
from tests.conftest import LambdaClient
from tests.roadnet import LAT0, LAT_STEP, LON0, LON_STEP, SIZE, RoadGrid, position

pytestmark = pytest.mark.usefixtures("poller_ends_when_idle")

STOPS = [(1, 1), (2, 6), (3, 3), (5, 0), (6, 6), (7, 2), (4, 5), (0, 7)]
DEPOT = (0, 0)
TOLERANCE_MINUTES = 0.03  # arrivals are whole seconds, shown to 0.01 min


@pytest.fixture
def osrm_env(road_grid: RoadGrid, monkeypatch: pytest.MonkeyPatch) -> RoadGrid:
    """The deployment's dataset setting, read by the poller's job (OSRM_DATA)."""
    monkeypatch.setenv("OSRM_DATA", str(road_grid.root))
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.5")  # one job per invocation: no idling
    return road_grid


def road_request(travel: dict[str, Any], stops: list[tuple[int, int]] = STOPS, *,
                 profile: str | None = None) -> dict[str, Any]:
    """Stops on grid intersections; two vehicles (of ``profile``: a vehicle type's own)."""
    depot_lat, depot_lon = position(DEPOT)
    fleet: dict[str, Any] = {"vehicles": 2, "vehicle_capacity": 5}
    if profile is not None:
        fleet = {"vehicles": [{"id": profile, "count": 2, "capacity": 5, "profile": profile,
                               "end": "depot"}]}
    return {
        "location_group": {
            "depot": {"lat": depot_lat, "lon": depot_lon},
            "locations": [
                {"id": f"S{k}", "lat": position(node)[0], "lon": position(node)[1],
                 "service_minutes": 2}
                for k, node in enumerate(stops)
            ],
        },
        "settings": {**fleet, "max_runtime_seconds": 1, "seed": 3, "travel": travel},
    }


def run_job(api: LambdaClient, handlers: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    created = api("POST", "/jobs/generate", body)
    assert created.status == 202, created.text
    job_id = created.json["job_id"]
    handlers["poller"](8)
    job: dict[str, Any] = api("GET", f"/jobs/{job_id}").json
    return job


def on_a_street(lon: float, lat: float) -> bool:
    row, column = (lat - LAT0) / LAT_STEP, (lon - LON0) / LON_STEP
    return (abs(row - round(row)) < 1e-3 and 0 <= round(row) < SIZE) or (
        abs(column - round(column)) < 1e-3 and 0 <= round(column) < SIZE)


def test_route_job__osrm_arrivals_follow_the_table_and_lines_follow_the_streets(
    osrm_env: RoadGrid, api: LambdaClient, handlers: dict[str, Any],
) -> None:
    job = run_job(api, handlers, road_request({"provider": "osrm"}))
    assert job["progress"] == "COMPLETED", job["error"]
    assert job["result"]["travel"] == {"provider": "osrm", "requested": "osrm",
                                       "profiles": ["car"], "fell_back": False, "reason": None}
    routes = api("GET", f"/jobs/{job['job_id']}/routes").json["routes"]
    names = {f"S{k}": position(node) for k, node in enumerate(STOPS)}
    points = [position(DEPOT), *names.values()]
    row = {name: k + 1 for k, name in enumerate(names)}
    table = provider_for("osrm", {"data": str(osrm_env.root)}).matrix(points, "car",
                                                                    deadline=None)
    served = 0
    for route in routes:
        previous, left = 0, route["start_minute"]
        for stop in route["stops"]:
            here = row[stop["location_id"]]
            expected = left + table.durations_minutes[previous, here]
            assert abs(stop["arrival_minute"] - expected) < TOLERANCE_MINUTES, stop
            expected_km = table.distances_km[previous, here]
            assert abs(stop["distance_from_previous_km"] - expected_km) < 0.002
            previous, left = here, stop["departure_minute"]
            served += 1
        back = left + table.durations_minutes[previous, 0]
        assert abs(route["end_minute"] - back) < TOLERANCE_MINUTES
    assert served == len(STOPS)

    geojson = api("GET", f"/jobs/{job['job_id']}/routes?format=geojson").json
    lines = [f for f in geojson["features"] if f["properties"]["role"] == "route"]
    assert len(lines) == len(routes)
    depot_lat, depot_lon = position(DEPOT)
    for line, route in zip(lines, routes, strict=True):
        assert line["properties"]["on_roads"] is True
        path = line["geometry"]["coordinates"]
        assert all(on_a_street(lon, lat) for lon, lat in path)
        for (lon1, lat1), (lon2, lat2) in itertools.pairwise(path):
            assert abs(lat1 - lat2) < 1e-6 or abs(lon1 - lon2) < 1e-6, "a segment off the grid"
        assert path[0] == pytest.approx([depot_lon, depot_lat])
        assert path[-1] == pytest.approx([depot_lon, depot_lat])
        vertices = {(round(lon, 6), round(lat, 6)) for lon, lat in path}
        for stop in route["stops"]:
            assert (round(stop["lon"], 6), round(stop["lat"], 6)) in vertices


def test_route_job__provider_error_falls_back_to_haversine_only_when_allowed(
    osrm_env: RoadGrid, api: LambdaClient, handlers: dict[str, Any],
) -> None:
    allowed = run_job(api, handlers, road_request(
        {"provider": "osrm", "fallback": "haversine"}, profile="bicycle"))
    assert allowed["progress"] == "COMPLETED", allowed["error"]
    travel = allowed["result"]["travel"]
    assert travel["provider"] == "haversine"
    assert travel["requested"] == "osrm"
    assert travel["fell_back"] is True
    assert "no road dataset for profile 'bicycle'" in travel["reason"]
    geojson = api("GET", f"/jobs/{allowed['job_id']}/routes?format=geojson").json
    assert all(not f["properties"]["on_roads"] for f in geojson["features"]
               if f["properties"]["role"] == "route")

    refused = run_job(api, handlers, road_request({"provider": "osrm", "fallback": None},
                                                  profile="bicycle"))
    assert refused["progress"] == "FAILED"
    assert refused["attempts"] == 1, "a missing profile cannot get better by retrying"
    assert "travel times: osrm: no road dataset for profile 'bicycle'" in refused["error"]


def test_route_job__a_stop_off_the_roads_fails_naming_it(
    osrm_env: RoadGrid, api: LambdaClient, handlers: dict[str, Any],
) -> None:
    body = road_request({"provider": "osrm", "fallback": None, "snap_radius_m": 300})
    body["location_group"]["locations"].append({"id": "in-the-lake", "lat": 52.03, "lon": 4.0})
    job = run_job(api, handlers, body)
    assert job["progress"] == "FAILED"
    assert job["attempts"] == 1
    assert "more than 300 m from any road" in job["error"]
    assert "location in-the-lake" in job["error"]


def test_route_request__deployment_options_are_refused_by_name(api: LambdaClient) -> None:
    answer = api("POST", "/jobs/generate", road_request({"provider": "osrm", "data": "/etc"}))
    assert answer.status == 422
    details = answer.json["error"]["details"]
    assert [d["field"] for d in details] == ["body.settings.travel.data"]
    assert details[0]["message"] == "set by the deployment (its settings), not by a request"


@pytest.mark.slow
def test_dev__a_road_job_on_jobworker_dev(road_grid: RoadGrid, tmp_path: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`jobworker dev` as a user runs it, with OSRM_DATA naming the datasets."""
    from tests.test_cli import DevServer, free_port

    monkeypatch.setenv("OSRM_DATA", str(road_grid.root))
    dev = DevServer(tmp_path / "pgdata", free_port())
    try:
        status, _, job = dev.call("POST", "/jobs/generate", road_request({"provider": "osrm"}))
        assert status == 202, job
        done = dev.wait_for(job["job_id"], "COMPLETED")
        assert done["result"]["travel"]["provider"] == "osrm"
        _, _, geojson = dev.call("GET", f"/jobs/{job['job_id']}/routes?format=geojson")
        lines = [f for f in geojson["features"] if f["properties"]["role"] == "route"]
        assert lines
        assert all(line["properties"]["on_roads"] for line in lines)
        assert all(on_a_street(lon, lat) for line in lines
                   for lon, lat in line["geometry"]["coordinates"])
    finally:
        dev.stop()


def test_route_job__one_osrm_matrix_per_vehicle_profile(
    osrm_env: RoadGrid, api: LambdaClient, handlers: dict[str, Any],
) -> None:
    body = road_request({"provider": "osrm", "fallback": None})
    del body["settings"]["vehicle_capacity"]
    body["settings"]["vehicles"] = [
        {"id": profile, "count": 1, "capacity": 5, "profile": profile, "end": "depot"}
        for profile in ("car", "car-distance")]
    job = run_job(api, handlers, body)
    assert job["progress"] == "COMPLETED", job["error"]
    assert job["result"]["travel"]["profiles"] == ["car", "car-distance"]
    assert job["result"]["travel"]["fell_back"] is False
    routes = api("GET", f"/jobs/{job['job_id']}/routes").json["routes"]
    names = {f"S{k}": position(node) for k, node in enumerate(STOPS)}
    points = [position(DEPOT), *names.values()]
    row = {name: k + 1 for k, name in enumerate(names)}
    provider = provider_for("osrm", {"data": str(osrm_env.root)})
    tables = {profile: provider.matrix(points, profile, deadline=None)
              for profile in ("car", "car-distance")}
    told_apart = 0  # legs whose times or lengths differ between the two profiles' tables
    for route in routes:
        table = tables[route["vehicle_type"]]
        other = tables["car" if route["vehicle_type"] == "car-distance" else "car-distance"]
        previous, left = 0, route["start_minute"]
        for stop in route["stops"]:
            here = row[stop["location_id"]]
            assert abs(stop["distance_from_previous_km"]
                       - table.distances_km[previous, here]) < 0.002, route["vehicle_type"]
            assert abs(stop["arrival_minute"] - left - table.durations_minutes[previous, here]
                       ) < TOLERANCE_MINUTES, route["vehicle_type"]
            told_apart += bool(
                abs(table.durations_minutes[previous, here]
                    - other.durations_minutes[previous, here]) >= TOLERANCE_MINUTES
                or abs(table.distances_km[previous, here]
                       - other.distances_km[previous, here]) >= 0.002)
            previous, left = here, stop["departure_minute"]
    # Planned on one matrix for both types, some of these legs would not match their own.
    assert told_apart > 0
