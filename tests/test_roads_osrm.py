"""The ``osrm`` provider and ``jobworker roads`` on a street grid the tests wrote
(tests/roadnet.py)."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobworker.routes.providers.budget import PointError
from jobworker.routes.travel import TravelError, provider_for
from tests.roadnet import (
    ARTERIAL_ROW,
    LAT_STEP,
    ONEWAY_COLUMN,
    ONEWAY_ROW,
    SIZE,
    RoadGrid,
    position,
    roads_command,
    shortest_metres,
)

ALL_NODES = [(row, column) for row in range(SIZE) for column in range(SIZE)]


def test_roads_build__prints_what_it_built_and_its_size(road_grid: RoadGrid) -> None:
    manifest = json.loads((road_grid.car / "dataset.json").read_text())
    assert manifest["profile"] == "car"
    assert manifest["algorithm"] == "MLD"
    files = [path for path in road_grid.car.iterdir()
             if path.is_file() and path.name != "dataset.json"]
    assert manifest["bytes"] == sum(path.stat().st_size for path in files)
    assert f"{manifest['bytes'] / 1024 / 1024:.2f} MiB" in road_grid.build_output
    assert "'car' road dataset (MLD)" in road_grid.build_output
    assert (road_grid.car / "roads.osrm.mldgr").is_file()


def test_roads_build__unknown_profile_without_a_script_is_refused(road_grid: RoadGrid,
                                                                   tmp_path: object) -> None:
    done = roads_command("build", str(road_grid.osm), "--profile", "truck", "--out",
                         str(road_grid.root / "refused"))
    assert done.returncode == 2
    assert "--profile-lua" in done.stderr


def test_roads_check__answers_a_small_table(road_grid: RoadGrid) -> None:
    done = roads_command("check", str(road_grid.car))
    assert done.returncode == 0, done.stderr
    assert "profile 'car', 5 points" in done.stdout
    assert done.stdout.count(" min ") == 25


def test_roads_build__the_bounding_box_comes_from_the_built_dataset(road_grid: RoadGrid) -> None:
    """Read from OSRM's node file, so a PBF-built dataset has one too (check needs no --point)."""
    import xml.etree.ElementTree as ElementTree

    nodes = [(float(node.get("lat", "nan")), float(node.get("lon", "nan")))
             for node in ElementTree.parse(road_grid.osm).getroot().iter("node")]  # noqa: S314 (the test wrote it)
    lats, lons = [lat for lat, _ in nodes], [lon for _, lon in nodes]
    manifest = json.loads((road_grid.car / "dataset.json").read_text(encoding="utf-8"))
    assert manifest["bbox"] == pytest.approx([min(lats), min(lons), max(lats), max(lons)],
                                             abs=2e-6)


def test_roads_check__a_manifest_without_a_box_is_checked_from_the_nodes(
        road_grid: RoadGrid, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "car"
    shutil.copytree(road_grid.car, copy)
    manifest = json.loads((copy / "dataset.json").read_text(encoding="utf-8"))
    manifest["bbox"] = None  # as an older build of a .pbf wrote it
    (copy / "dataset.json").write_text(json.dumps(manifest), encoding="utf-8")
    done = roads_command("check", str(copy))
    assert done.returncode == 0, done.stderr
    assert "profile 'car', 5 points" in done.stdout


def test_osrm_table__equals_the_grid_shortest_paths(road_grid: RoadGrid) -> None:
    provider = provider_for("osrm", {"data": str(road_grid.root)})
    table = provider.matrix([position(node) for node in ALL_NODES], "car-distance",
                            deadline=time.monotonic() + 30)
    expected = shortest_metres(ALL_NODES) / 1000.0
    off_diagonal = ~np.eye(len(ALL_NODES), dtype=bool)
    relative = np.abs(table.distances_km - expected)[off_diagonal] / expected[off_diagonal]
    assert relative.max() < 0.005, f"worst cell {relative.max():.4%} off the shortest path"
    assert np.allclose(np.diag(table.distances_km), 0)
    assert table.provider == "osrm"
    assert table.profile == "car-distance"


def test_osrm_table__one_way_streets_make_it_asymmetric(road_grid: RoadGrid) -> None:
    west, east = (ONEWAY_ROW, 2), (ONEWAY_ROW, 3)
    south, north = (2, ONEWAY_COLUMN), (3, ONEWAY_COLUMN)
    nodes = [west, east, south, north]
    provider = provider_for("osrm", {"data": str(road_grid.root)})
    for profile in ("car", "car-distance"):
        table = provider.matrix([position(node) for node in nodes], profile, deadline=None)
        # Along the one-way: one block; against it: around a block (at least three).
        assert table.distances_km[1, 0] > 2.5 * table.distances_km[0, 1], profile
        assert table.distances_km[3, 2] > 2.5 * table.distances_km[2, 3], profile
        assert table.durations_minutes[1, 0] > table.durations_minutes[0, 1], profile
    reference = shortest_metres(nodes)
    assert reference[1, 0] > 2.5 * reference[0, 1]


def test_osrm_route__the_fast_road_is_preferred_by_time(road_grid: RoadGrid) -> None:
    start, end = position((1, 0)), position((1, SIZE - 1))
    provider = provider_for("osrm", {"data": str(road_grid.root)})
    by_time = provider.matrix([start, end], "car", deadline=None)
    by_distance = provider.matrix([start, end], "car-distance", deadline=None)
    # The quickest way leaves row 1 for the arterial a block south and comes back: longer...
    assert by_time.distances_km[0, 1] > by_distance.distances_km[0, 1] * 1.2
    legs = provider.leg_geometry([start, end], "car")
    assert legs is not None
    assert len(legs) == 1
    arterial_lat = position((ARTERIAL_ROW, 0))[0]
    on_arterial = [lat for lat, _ in legs[0] if abs(lat - arterial_lat) < LAT_STEP / 10]
    assert on_arterial, "the route should run along the arterial"
    # ...and the shortest way stays on row 1 all along.
    short_legs = provider.leg_geometry([start, end], "car-distance")
    assert short_legs is not None
    assert all(abs(lat - start[0]) < LAT_STEP / 10 for lat, _ in short_legs[0])


def test_osrm_route__legs_run_along_the_streets(road_grid: RoadGrid) -> None:
    stops = [position((0, 0)), position((4, 6)), position((7, 1))]
    legs = provider_for("osrm", {"data": str(road_grid.root)}).leg_geometry(stops, "car")
    assert legs is not None
    assert len(legs) == 2
    for leg, (first, last) in zip(legs, [(stops[0], stops[1]), (stops[1], stops[2])],
                                  strict=True):
        assert np.allclose(leg[0], first, atol=1e-6)
        assert np.allclose(leg[-1], last, atol=1e-6)
        for (lat1, lon1), (lat2, lon2) in itertools.pairwise(leg):
            assert abs(lat1 - lat2) < 1e-6 or abs(lon1 - lon2) < 1e-6, "a segment off the grid"


def test_osrm__a_point_far_from_any_road_is_named(road_grid: RoadGrid) -> None:
    provider = provider_for("osrm", {"data": str(road_grid.root), "snap_radius_m": 200})
    points = [position((0, 0)), (52.2, 4.3)]
    with pytest.raises(PointError) as failure:
        provider.matrix(points, "car", deadline=None)
    assert failure.value.points == (1,)
    assert "point 1 (52.20000, 4.30000) is more than 200 m from any road" in failure.value.reason


def test_osrm__a_profile_without_a_dataset_names_those_there_are(road_grid: RoadGrid) -> None:
    provider = provider_for("osrm", {"data": str(road_grid.root)})
    with pytest.raises(TravelError, match=r"profile 'bicycle'.*have: car, car-distance"):
        provider.matrix([position((0, 0)), position((1, 1))], "bicycle", deadline=None)


def test_osrm__a_passed_deadline_stops_the_matrix(road_grid: RoadGrid) -> None:
    provider = provider_for("osrm", {"data": str(road_grid.root)})
    with pytest.raises(TravelError, match="deadline passed"):
        provider.matrix([position(node) for node in ALL_NODES], "car",
                        deadline=time.monotonic() - 1)


def test_osrm__without_its_module_the_provider_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "osrm", None)  # what `import osrm` meets on Python 3.11
    provider = provider_for("osrm", {"data": "/nonexistent"})
    with pytest.raises(TravelError, match=r"Python 3\.12 and newer only"):
        provider.matrix([(52.0, 4.0), (52.001, 4.001)], "car", deadline=None)


def test_osrm__a_dataset_in_s3_is_copied_to_tmp_once(road_grid: RoadGrid, tmp_path: Any) -> None:
    """What the poller does with OsrmDataSource S3: copy at the first job, then read /tmp."""
    import boto3
    from moto import mock_aws

    points = [position((0, 0)), position((5, 5))]
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="road-data",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for path in road_grid.car.iterdir():
            s3.upload_file(str(path), "road-data", f"osrm/grid/car/{path.name}")
        options = {"data": "s3://road-data/osrm/grid", "cache_dir": str(tmp_path / "cache")}
        first = provider_for("osrm", options).matrix(points, "car", deadline=None)
        for path in road_grid.car.iterdir():
            s3.delete_object(Bucket="road-data", Key=f"osrm/grid/car/{path.name}")
        again = provider_for("osrm", options).matrix(points, "car", deadline=None)
        with pytest.raises(TravelError, match="no road dataset for profile 'foot' under s3://"):
            provider_for("osrm", options).matrix(points, "foot", deadline=None)
    local = provider_for("osrm", {"data": str(road_grid.root)}).matrix(points, "car",
                                                                      deadline=None)
    assert np.array_equal(first.durations_minutes, local.durations_minutes)
    assert np.array_equal(again.durations_minutes, local.durations_minutes)
    assert (tmp_path / "cache" / "car" / "dataset.json").is_file()
