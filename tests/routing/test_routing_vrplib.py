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
