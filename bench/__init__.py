"""``jobworker bench SCENARIO [options]``: the benchmarks of issue 5 (and solver quality).

Scenarios: ``throughput``, ``claim-latency``, ``cold-start``, ``pickup-latency``, ``routes``,
``roads``, ``enqueue``, ``many-pollers``, ``sustained``, ``held-xmin``, ``log-cost``, ``prune``.
Each prints a readable table and, with ``--json``, one JSON object as its last stdout line.
Also runs as ``python -m jobworker.dev.bench SCENARIO``. Scenario modules load only when
asked for (relative to this package: it is installed as ``jobworker.dev.bench``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Protocol, cast

SCENARIOS = {
    "throughput": ".throughput",
    "claim-latency": ".claim_latency",
    "cold-start": ".cold_start",
    "pickup-latency": ".pickup_latency",
    "routes": ".routes",
    "roads": ".roads",
    "enqueue": ".enqueue",
    "many-pollers": ".many_pollers",
    "sustained": ".sustained",
    "held-xmin": ".held_xmin",
    "log-cost": ".log_cost",
    "prune": ".prune",
}


class _Scenario(Protocol):
    def main(self, argv: list[str]) -> int: ...


def usage() -> str:
    return ("usage: jobworker bench SCENARIO [options]   (SCENARIO --help for its options)\n"
            f"scenarios: {', '.join(SCENARIOS)}")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SCENARIOS:
        print(f"unknown scenario {name!r}\n{usage()}", file=sys.stderr)
        return 2
    module = cast(_Scenario, importlib.import_module(SCENARIOS[name], __package__))
    return module.main(rest)
