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


def test_read_instance__other_edge_weights__refused(tmp_path: Path) -> None:
    path = tmp_path / "geo.vrp"
    path.write_text(SMALL.replace("EUC_2D", "GEO"))

    with pytest.raises(VrplibError, match="EDGE_WEIGHT_TYPE GEO is not supported"):
        read_instance(path)


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
