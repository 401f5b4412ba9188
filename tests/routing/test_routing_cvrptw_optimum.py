"""A CVRPTW instance whose optimum this file proves, and ``jobworker bench routes`` reaching it.

``tests/routing/data/JW-TW9.vrptw`` is in the LKH-3 dialect (FLOOR_2D, SCALE 10,
SERVICE_TIME, VEHICLES 3): 9 customers around a central depot, as Solomon's instances are laid
out. Its optimum is found here without PyVRP or the vrplib package: every elementary route the
windows and the capacity allow is enumerated depth first (the cheapest per set of customers),
then the cheapest partition of the customers into at most VEHICLES of those routes. Distances
are ``floor(10 d)``, i.e. ``isqrt(100 (dx^2 + dy^2))`` in exact integers: DIMACS tenths.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

INSTANCE = Path(__file__).parent / "data" / "JW-TW9.vrptw"
INFEASIBLE = math.inf


@dataclass(frozen=True)
class Node:
    x: int
    y: int
    demand: int
    ready: int  # tenths, as the solver's units
    due: int


@dataclass(frozen=True)
class Instance:
    nodes: list[Node]  # the depot first
    capacity: int
    vehicles: int
    service: int  # tenths, every customer
    stated_optimum: float


def _section(text: str, name: str) -> list[list[int]]:
    body = text.split(f"{name}_SECTION", 1)[1]
    rows = []
    for line in body.strip().splitlines():
        if "_SECTION" in line or line.strip() in ("-1", "EOF"):
            break
        rows.append([int(value) for value in line.split()[1:]])
    return rows


def read(path: Path) -> Instance:
    """The file, read with nothing but the standard library."""
    text = path.read_text()
    spec = dict(re.findall(r"^(\w+) : (.*)$", text, re.MULTILINE))
    assert (spec["EDGE_WEIGHT_TYPE"], spec["SCALE"]) == ("FLOOR_2D", "10")
    coords, demands = _section(text, "NODE_COORD"), _section(text, "DEMAND")
    windows = _section(text, "TIME_WINDOW")
    nodes = [Node(x, y, demand, 10 * ready, 10 * due)
             for (x, y), (demand,), (ready, due) in zip(coords, demands, windows, strict=True)]
    optimum = re.search(r"Optimal value: ([\d.]+)", spec["COMMENT"])
    assert optimum is not None
    return Instance(nodes=nodes, capacity=int(spec["CAPACITY"]), vehicles=int(spec["VEHICLES"]),
                    service=10 * int(spec["SERVICE_TIME"]), stated_optimum=float(optimum[1]))


def tenths(a: Node, b: Node) -> int:
    return math.isqrt(100 * ((a.x - b.x) ** 2 + (a.y - b.y) ** 2))


def cheapest_route_per_set(instance: Instance) -> dict[int, int]:
    """For each set of customers (a bit mask) one route can serve, its cheapest cost."""
    nodes, depot = instance.nodes, instance.nodes[0]
    best: dict[int, int] = {}

    def extend(last: int, ready_to_leave: int, load: int, served: int, cost: int) -> None:
        back = cost + tenths(nodes[last], depot)
        if served and ready_to_leave + tenths(nodes[last], depot) <= depot.due:
            best[served] = min(best.get(served, back), back)
        for j in range(1, len(nodes)):
            node = nodes[j]
            if served >> j & 1 or load + node.demand > instance.capacity:
                continue
            start = max(ready_to_leave + tenths(nodes[last], node), node.ready)
            if start <= node.due:  # waiting is allowed, lateness is not
                extend(j, start + instance.service, load + node.demand, served | 1 << j,
                       cost + tenths(nodes[last], node))

    extend(0, depot.ready, 0, 0, 0)
    return best


def optimum_tenths(instance: Instance) -> float:
    """The cheapest cover of every customer by at most ``vehicles`` routes (set partitioning)."""
    routes = cheapest_route_per_set(instance)
    everyone = sum(1 << j for j in range(1, len(instance.nodes)))
    cheapest: dict[int, float] = {0: 0}  # set -> cost with the routes used so far
    for _ in range(instance.vehicles):
        nxt = dict(cheapest)
        for covered, cost in cheapest.items():
            for served, route in routes.items():
                if not covered & served:
                    union = covered | served
                    nxt[union] = min(nxt.get(union, INFEASIBLE), cost + route)
        cheapest = nxt
    return cheapest.get(everyone, INFEASIBLE)


def test_jw_tw9__the_stated_optimum_is_the_exact_one() -> None:
    instance = read(INSTANCE)

    assert optimum_tenths(instance) == round(instance.stated_optimum * 10) == 2265


def test_jw_tw9__windows_and_the_vehicle_limit_both_bind() -> None:
    """Not a CVRP in disguise: without windows, or with a fourth vehicle, it is cheaper."""
    instance = read(INSTANCE)
    open_all_day = [replace(node, ready=0, due=100 * instance.nodes[0].due)
                    for node in instance.nodes]

    assert optimum_tenths(replace(instance, nodes=open_all_day)) < 2265
    assert optimum_tenths(replace(instance, vehicles=4)) == 2193


def test_jobworker_bench_routes__jw_tw9__reaches_the_optimum_in_two_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from jobworker.dev.cli import main

    status = main(["bench", "routes", str(INSTANCE), "--seconds", "2", "--json"])

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0
    assert (report["cost"], report["optimum"], report["gap_pct"]) == (226.5, 226.5, 0.0)
    assert report["routes"] <= 3
    assert report["seconds"] < 5
