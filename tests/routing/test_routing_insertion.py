"""The insertion check (routes/insertion.py) says what PyVRP's own Route says, place by place."""

from __future__ import annotations

import random

import numpy as np
import pytest

from jobworker.routes.insertion import FITS, Tour, Vehicle, Visit, evaluate, places_of


def _instance(rnd: random.Random, n: int) -> tuple[list[Visit], Vehicle, object]:
    """``n`` clients behind two depots (start 0, end 1), random and non-metric travel, tight
    enough that windows, shift, duration, distance and both load dimensions all bind."""
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType

    size = n + 2
    distance = np.array([[0 if a == b else rnd.randint(1, 60) for b in range(size)]
                         for a in range(size)], dtype=np.int64)
    duration = np.array([[0 if a == b else rnd.randint(1, 60) for b in range(size)]
                         for a in range(size)], dtype=np.int64)
    visits = []
    for i in range(n):
        early = rnd.randint(0, 300)
        visits.append(Visit(row=i + 2, delivery=(rnd.randint(0, 5), rnd.randint(0, 3)),
                            pickup=(rnd.randint(0, 4), rnd.randint(0, 3)),
                            service=rnd.randint(0, 20), early=early,
                            late=early + rnd.randint(0, 200)))
    vehicle = Vehicle(
        name="van", capacity=(rnd.randint(12, 30), rnd.randint(6, 16)), start_row=0, end_row=1,
        earliest=rnd.randint(0, 60), latest=rnd.randint(300, 600),
        max_duration=rnd.randint(150, 500), max_distance=rnd.randint(100, 400),
        unit_distance_cost=rnd.randint(0, 5), unit_duration_cost=rnd.randint(0, 3),
        fixed_cost=rnd.randint(0, 50), distance=distance, duration=duration, unused=0)
    data = ProblemData(
        locations=[Location(x=0, y=0) for _ in range(size)],
        clients=[Client(location=v.row, delivery=list(v.delivery), pickup=list(v.pickup),
                        service_duration=v.service, tw_early=v.early, tw_late=v.late)
                 for v in visits],
        depots=[Depot(location=0), Depot(location=1)],
        vehicle_types=[VehicleType(
            num_available=1, capacity=list(vehicle.capacity), start_depot=0, end_depot=1,
            tw_early=vehicle.earliest, tw_late=vehicle.latest,
            shift_duration=vehicle.max_duration, max_distance=vehicle.max_distance,
            unit_distance_cost=vehicle.unit_distance_cost,
            unit_duration_cost=vehicle.unit_duration_cost, fixed_cost=vehicle.fixed_cost)],
        distance_matrices=[distance], duration_matrices=[duration], groups=[],
    )
    return visits, vehicle, data


@pytest.mark.parametrize("seed", range(40))
def test_evaluate__every_place__feasible_exactly_when_pyvrp_says_so(seed: int) -> None:
    from pyvrp import Route

    rnd = random.Random(seed)
    visits, vehicle, data = _instance(rnd, 9)
    order = rnd.sample(range(len(visits)), rnd.randint(0, 6))
    left = [c for c in range(len(visits)) if c not in order]
    places = places_of(vehicle, [Tour(number=1, vehicle=0, visits=tuple(visits[c] for c in order))])
    base = Route(data, order, 0) if order else None

    for c in left:
        seen = evaluate(visits[c], vehicle, places)
        for p in range(len(order) + 1):
            route = Route(data, [*order[:p], c, *order[p:]], 0)  # type: ignore[arg-type]
            assert (seen.stage[p] == FITS) == route.is_feasible(), (seed, c, p)
            if route.is_feasible():
                added = (route.distance_cost() + route.duration_cost()
                         - (base.distance_cost() + base.duration_cost() if base else
                            -vehicle.fixed_cost))
                assert seen.duration[p] == route.duration()
                assert seen.amount[p] == added
