"""``jobworker bench routes FILE.vrp --seconds S [--json] [--seed N]``: solver quality, measured.

Runs the job's own solver entry point (:func:`jobworker.routes.solver.solve`) on a VRPLIB CVRP
or CVRPTW (LKH-3/Solomon dialect, or the classic Solomon layout) file and compares the cost
with the optimum or best known cost from its COMMENT line (or a ``.sol`` file beside it). The
report states the conventions applied to the file (the distance rule and scale from its
EDGE_WEIGHT_TYPE and SCALE, how the reported cost relates to the conventions best-known costs
are quoted in, the fleet; see :mod:`jobworker.routes.vrplib`). With
``--json`` the last line printed is one JSON object (``cost``, ``optimum``, ``gap_pct``,
``seconds``, ``feasible``, ...). Exit status 0 when a feasible plan was found, 1 when not, 2
for a file it cannot read. Also runs as ``python -m jobworker.dev.bench.routes``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from jobworker.routes.solver import InfeasibleProblem, solve
from jobworker.routes.vrplib import VrplibError, read_problem


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobworker bench routes",
        description="Solve a VRPLIB CVRP or CVRPTW instance with the job's solver; report the "
                    "gap.",
    )
    parser.add_argument("file", type=Path,
                        help="VRPLIB file (CVRP or CVRPTW; EUC_2D, FLOOR_2D, CEIL_2D, EXACT_2D, "
                             "EXPLICIT; SCALE)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="solver seed (default 0)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument(
        "--unlimited-fleet",
        action="store_true",
        help="ignore a VEHICLES limit too (the name's -kN never caps the fleet)",
    )
    return parser


def gap_pct(cost: float | None, optimum: float | None) -> float | None:
    """How far above the known optimum, in percent; None when either is unknown."""
    if cost is None or not optimum:
        return None
    return round(100.0 * (cost - optimum) / optimum, 2)


def run(file: Path, seconds: float, seed: int | None, unlimited_fleet: bool) -> dict[str, Any]:
    """Solve one instance; the report is what ``--json`` prints."""
    problem, instance, conventions = read_problem(file, unlimited_fleet=unlimited_fleet)
    started = time.perf_counter()
    cost: float | None = None
    routes: int | None = None
    iterations: int | None = None
    error: str | None = None
    try:
        plan = solve(problem, time_limit_seconds=seconds, seed=seed)
    except InfeasibleProblem as exc:
        error = str(exc)
    else:
        routes, iterations = plan.vehicles_used, plan.solver.iterations
        # The objective is the distance in solver units: the instance's units times the
        # file's scale (10 for DIMACS tenths, 1000 for EXACT_2D); reported in its units.
        cost = None if plan.solver.cost is None else plan.solver.cost / problem.cost_scale
    elapsed = time.perf_counter() - started
    return {
        "instance": instance.name,
        "type": instance.kind,
        "customers": problem.size,
        "vehicles": problem.vehicles,
        "capacity": problem.capacity,
        "cost": cost,
        "optimum": instance.optimum,
        "gap_pct": gap_pct(cost, instance.optimum),
        "seconds": round(elapsed, 3),
        "time_limit_seconds": seconds,
        "feasible": error is None,
        "routes": routes,
        "iterations": iterations,
        "error": error,
        "conventions": conventions.to_dict(),
    }


_COLUMNS = (
    "instance",
    "customers",
    "vehicles",
    "cost",
    "optimum",
    "gap_pct",
    "seconds",
    "feasible",
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _table(report: dict[str, Any]) -> str:
    row = [_cell(report[column]) for column in _COLUMNS]
    widths = [max(len(c), len(v)) for c, v in zip(_COLUMNS, row, strict=True)]
    lines = [
        "  ".join(value.rjust(width) for value, width in zip(values, widths, strict=True))
        for values in (_COLUMNS, row)
    ]
    conventions = report["conventions"]
    lines.append(f"distances: {conventions['rounding']}; solver units per instance unit "
                 f"(times too): {conventions['scale']}")
    lines.append(f"cost: {conventions['cost']}")
    lines.append(f"fleet: {conventions['fleet']}")
    if report["error"]:
        lines.append(report["error"])
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        report = run(args.file, args.seconds, args.seed, args.unlimited_fleet)
    except (OSError, VrplibError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    print(_table(report))
    if args.json:
        print(json.dumps(report))
    return 0 if report["feasible"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
