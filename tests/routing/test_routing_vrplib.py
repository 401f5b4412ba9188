"""The VRPLIB reader, and the solver on the shared classic instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobworker.routes.solver import solve
from jobworker.routes.vrplib import (
    VrplibError,
    euc_2d,
    parse_optimum,
    read_instance,
    read_problem,
)

SMALL = """NAME : tiny-k2
COMMENT : (made up, Best value: 40)
TYPE : CVRP
DIMENSION : 4
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
1 10 0
2 0 0
3 20 0
4 10 10
DEMAND_SECTION
1 4
2 0
3 6
4 5
DEPOT_SECTION
 2
 -1
EOF
"""


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("(Augerat et al, Min no of trucks: 5, Optimal value: 784)", 784),
        ("(Christofides and Eilon, Min no of trucks: 4, Optimal value: 375)", 375),
        ("(Augerat et al, Min no of trucks: 10, Best value: 1764)", 1764),
        ("best known 1073.5", 1073.5),
        ("Optimal: 375", 375),
        ("(Uchoa et al. 2014)", None),
        ("", None),
    ],
)
def test_parse_optimum(comment: str, expected: float | None) -> None:
    assert parse_optimum(comment) == expected


def test_euc_2d__rounds_halves_up_like_tsplib() -> None:
    coords = np.array([[0.0, 0.0], [0.5, 0.0], [2.5, 0.0], [3.0, 4.0]])

    distance = euc_2d(coords)

    assert distance[0, 1] == 1  # numpy's rint would give 0 (half to even)
    assert distance[0, 2] == 3  # ... and 2 here
    assert distance[0, 3] == 5
    assert distance.dtype == np.int64


def test_read_problem__depot_not_first_in_file__moved_to_row_zero(tmp_path: Path) -> None:
    path = tmp_path / "tiny-k2.vrp"
    path.write_text(SMALL)

    problem, instance, _ = read_problem(path)

    assert instance.coordinates[0] == (0.0, 0.0)
    assert problem.location_ids == ("1", "3", "4")
    assert [stop.delivery for stop in problem.stops] == [(4,), (6,), (5,)]
    assert (problem.capacity, instance.optimum) == (10, 40)
    assert problem.distance["car"][0].tolist() == [0, 10, 20, 14]


def test_read_problem__k_in_the_name__not_a_fleet_cap(tmp_path: Path) -> None:
    path = tmp_path / "tiny-k2.vrp"
    path.write_text(SMALL)

    problem, _, conventions = read_problem(path)

    assert problem.vehicles == 3  # one per customer, not the name's 2
    assert conventions.min_routes_in_name == 2
    assert "not a cap" in conventions.fleet
    assert conventions.rounding.startswith("vrplib round")


def test_read_problem__vehicles_entry__is_a_limit(tmp_path: Path) -> None:
    path = tmp_path / "tiny-k2.vrp"
    path.write_text(SMALL.replace("CAPACITY : 10", "CAPACITY : 10\nVEHICLES : 2"))

    problem, _, conventions = read_problem(path)

    assert problem.vehicles == 2
    assert conventions.fleet == "VEHICLES 2 (a limit)"


def test_read_instance__dimension_mismatch__refused(tmp_path: Path) -> None:
    path = tmp_path / "short.vrp"
    path.write_text(SMALL.replace("DIMENSION : 4", "DIMENSION : 5"))

    with pytest.raises(VrplibError):
        read_instance(path)


@pytest.mark.parametrize(
    ("name", "dimension", "capacity", "vehicles", "optimum"),
    [("E-n22-k4", 22, 6000, 4, 375), ("A-n32-k5", 32, 100, 5, 784)],
)
def test_read_problem__shared_instances(
    cvrp_dir: Path, name: str, dimension: int, capacity: int, vehicles: int, optimum: int
) -> None:
    problem, instance, conventions = read_problem(cvrp_dir / f"{name}.vrp")

    assert instance.name == name
    assert problem.size == dimension - 1
    assert problem.distance["car"].shape == (dimension, dimension)
    assert (problem.capacity, conventions.min_routes_in_name, instance.optimum) == (
        capacity, vehicles, optimum)
    assert problem.vehicles == dimension - 1


@pytest.mark.parametrize("name", ["E-n22-k4", "A-n32-k5"])
def test_solve__shared_instance_in_2_seconds__reaches_the_optimum(
    cvrp_dir: Path, name: str
) -> None:
    problem, instance, _ = read_problem(cvrp_dir / f"{name}.vrp")

    plan = solve(problem, time_limit_seconds=2)

    assert plan.solver.cost == instance.optimum
    assert plan.locations_served == problem.size
    assert plan.vehicles_used <= problem.vehicles
    # The reported distance is the instance's own units: it adds up to the cost.
    assert plan.total_distance_km == pytest.approx(instance.optimum)


CVRPTW = """NAME : tw-4
COMMENT : made up, best known 60.2
TYPE : CVRPTW
DIMENSION : 4
VEHICLES : 2
CAPACITY : 10
EDGE_WEIGHT_TYPE : EUC_2D
NODE_COORD_SECTION
1 0 0
2 3 4
3 0 7.05
4 -5 0
DEMAND_SECTION
1 0
2 4
3 5
4 6
SERVICE_TIME_SECTION
1 0
2 10
3 10
4 10
TIME_WINDOW_SECTION
1 0 200
2 0 50
3 20 90
4 100 150
DEPOT_SECTION
1
-1
EOF
"""

SOLOMON = """TINY3

VEHICLE
NUMBER     CAPACITY
  2         10

CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME

    0      0          0          0          0        200          0
    1      3          4          4          0         50         10
    2      0          7          5         20         90         10
    3     -5          0          6        100        150         10
"""


def test_read_problem__cvrptw__windows_service_and_dimacs_tenths(tmp_path: Path) -> None:
    path = tmp_path / "tw-4.vrp"
    path.write_text(CVRPTW)

    problem, instance, conventions = read_problem(path)

    assert instance.kind == "CVRPTW"
    assert instance.optimum == 60.2
    assert problem.vehicles == 2  # VEHICLES is a limit
    assert conventions.rounding.startswith("dimacs")
    # 5.0 -> 50 tenths; sqrt(9 + 9.3025) = 4.2782 -> 42 tenths (truncated, not rounded)
    assert problem.distance["car"][0, 1] == 50
    assert problem.distance["car"][1, 2] == 42
    assert [stop.windows for stop in problem.stops] == [((0, 500),), ((200, 900),),
                                                       ((1000, 1500),)]
    assert [stop.service_seconds for stop in problem.stops] == [100, 100, 100]
    assert (problem.fleet[0].earliest, problem.fleet[0].latest) == (0, 2000)


def test_solve__cvrptw__windows_kept_and_cost_in_instance_units(tmp_path: Path) -> None:
    path = tmp_path / "tw-4.vrp"
    path.write_text(CVRPTW)
    problem, _, _ = read_problem(path)

    plan = solve(problem, time_limit_seconds=0.5)

    assert plan.locations_served == 3
    for route in plan.routes:
        for stop in route.stops:
            assert stop.time_window is not None
            # The plan's "minutes" are solver units / 60; here a unit is a tenth.
            start = stop.start_service_minute * 60
            assert stop.time_window[0] * 60 <= start <= stop.time_window[1] * 60 + 1
    assert plan.solver.cost is not None
    assert plan.total_distance_km == pytest.approx(plan.solver.cost / problem.cost_scale)


def test_read_problem__classic_solomon_layout__same_problem(tmp_path: Path) -> None:
    vrplib_path, solomon_path = tmp_path / "tw-4.vrp", tmp_path / "TINY3.txt"
    vrplib_path.write_text(CVRPTW)
    solomon_path.write_text(SOLOMON)

    a, _, _ = read_problem(vrplib_path)
    b, instance, conventions = read_problem(solomon_path)

    assert instance.kind == "CVRPTW"
    assert conventions.vehicles == 2
    assert b.distance["car"][0].tolist() == [0, 50, 70, 50]  # (0, 7) here, not (0, 7.05)
    assert b.distance["car"][1, 3] == a.distance["car"][1, 3] == 89
    assert [s.windows for s in a.stops] == [s.windows for s in b.stops]


def test_read_instance__unsupported_type__refused(tmp_path: Path) -> None:
    path = tmp_path / "pd.vrp"
    path.write_text(SMALL.replace("TYPE : CVRP", "TYPE : PDPTW"))

    with pytest.raises(VrplibError, match="TYPE PDPTW is not supported"):
        read_instance(path)


# The LKH-3 CVRPTW dialect (its Solomon_25/50/100 files): original coordinates, windows and a
# SERVICE_TIME for every customer, distances FLOOR_2D with SCALE 10, i.e. floor(10 d).
LKH3_FLOOR = """NAME : LK5
TYPE : CVRPTW
DIMENSION : 5
VEHICLES : 2
CAPACITY : 10
SERVICE_TIME : 9
SCALE : 10
EDGE_WEIGHT_TYPE : FLOOR_2D
NODE_COORD_SECTION
1 0 0
2 3 4
3 1 1
4 -2 5
5 6 -1
DEMAND_SECTION
1 0
2 4
3 3
4 5
5 2
TIME_WINDOW_SECTION
1 0 200
2 0 100
3 10 80
4 50 150
5 0 190
DEPOT_SECTION
1
-1
EOF
"""
# Its Homberger and Solomon_100_EXACT files: EXACT_2D, which LKH-3 (and vrplib) compute as
# round(1000 d). Here a window opens at 1500: the route is longer than 1,209,600 solver units.
LKH3_EXACT = (LKH3_FLOOR.replace("SCALE : 10\n", "").replace("FLOOR_2D", "EXACT_2D")
              .replace("1 0 200", "1 0 3390").replace("4 50 150", "4 1500 1600"))


def _written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_problem__lkh3_floor_2d_scale_10__floor_of_ten_d_in_tenths(tmp_path: Path) -> None:
    problem, instance, conventions = read_problem(_written(tmp_path, "LK5.vrptw", LKH3_FLOOR))

    # 5 -> 50; sqrt(2) -> 14; sqrt(29) = 5.385 -> 53; sqrt(37) = 6.083 -> 60 (vrplib's own
    # FLOOR_2D ignores SCALE: 5, 1, 5, 6)
    assert problem.distance["car"][0].tolist() == [0, 50, 14, 53, 60]
    assert problem.distance["car"][1, 2] == 36  # sqrt(13) = 3.606
    assert [stop.service_seconds for stop in problem.stops] == [90] * 4
    assert [stop.windows for stop in problem.stops][:3] == [((0, 1000),), ((100, 800),),
                                                           ((500, 1500),)]
    assert (problem.fleet[0].earliest, problem.fleet[0].latest) == (0, 2000)
    assert (instance.kind, problem.vehicles, problem.cost_scale) == ("CVRPTW", 2, 10)
    assert (conventions.edge_weight_type, conventions.scale) == ("FLOOR_2D", 10)
    assert "floor(10*d)" in conventions.rounding
    assert "DIMACS" in conventions.cost


def test_read_problem__lkh3_exact_2d__thousandths_as_vrplib_rounds(tmp_path: Path) -> None:
    problem, _, conventions = read_problem(_written(tmp_path, "LK5x.vrptw", LKH3_EXACT))

    assert problem.distance["car"][0].tolist() == [0, 5000, 1414, 5385, 6083]
    assert [stop.service_seconds for stop in problem.stops] == [9000] * 4
    assert problem.stops[2].windows == ((1_500_000, 1_600_000),)
    assert (conventions.edge_weight_type, conventions.scale) == ("EXACT_2D", 1000)
    assert "round(1000*d)" in conventions.rounding


def test_solve__lkh3_exact_2d__a_route_longer_than_the_default_horizon_is_planned(
    tmp_path: Path,
) -> None:
    problem, _, _ = read_problem(_written(tmp_path, "LK5x.vrptw", LKH3_EXACT))

    plan = solve(problem, time_limit_seconds=0.5)

    assert plan.locations_served == 4
    assert plan.solver.cost is not None


@pytest.mark.parametrize(("weights", "expected"), [
    ("FLOOR_2D", [0, 5, 1, 5, 6]), ("CEIL_2D", [0, 5, 2, 6, 7]),
])
def test_read_problem__floor_and_ceil_without_scale__vrplib_integers(
    tmp_path: Path, weights: str, expected: list[int],
) -> None:
    text = LKH3_FLOOR.replace("SCALE : 10\n", "").replace("FLOOR_2D", weights)

    problem, _, conventions = read_problem(_written(tmp_path, "LK5.vrptw", text))

    assert problem.distance["car"][0].tolist() == expected
    assert conventions.scale == 1
    assert problem.stops[0].windows == ((0, 100),)


EXPLICIT = """NAME : ex4
TYPE : CVRP
DIMENSION : 4
CAPACITY : 10
EDGE_WEIGHT_TYPE : EXPLICIT
EDGE_WEIGHT_FORMAT : LOWER_ROW
EDGE_WEIGHT_SECTION
7
3 4
9 2 6
DEMAND_SECTION
1 0
2 4
3 5
4 6
DEPOT_SECTION
1
-1
EOF
"""


def test_read_problem__explicit_lower_row__the_files_weights(tmp_path: Path) -> None:
    problem, _, conventions = read_problem(_written(tmp_path, "ex4.vrp", EXPLICIT))

    assert problem.distance["car"].tolist() == [[0, 7, 3, 9], [7, 0, 4, 2], [3, 4, 0, 6],
                                                [9, 2, 6, 0]]
    assert conventions.edge_weight_type == "EXPLICIT"
    assert solve(problem, time_limit_seconds=0.2).locations_served == 3


@pytest.mark.parametrize("weights", ["ATT", "GEO", "MAN_2D"])
def test_read_instance__a_weight_type_vrplib_does_not_compute__refused_naming_those_it_does(
    tmp_path: Path, weights: str,
) -> None:
    path = _written(tmp_path, "w.vrp", SMALL.replace("EUC_2D", weights))

    with pytest.raises(VrplibError, match=f"EDGE_WEIGHT_TYPE {weights} is not supported: "
                                          "vrplib computes EUC_2D, FLOOR_2D, CEIL_2D"):
        read_problem(path)
