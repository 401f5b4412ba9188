"""``jobworker bench SCENARIO [options]``: the benchmarks of issue 5 (and solver quality).

Scenarios: ``throughput``, ``claim-latency``, ``cold-start``, ``pickup-latency``, ``routes``.
Each prints a readable table and, with ``--json``, one JSON object as its last stdout line.
Also runs as ``python -m bench SCENARIO``. Scenario modules load only when asked for.
"""

from __future__ import annotations

import importlib
import sys
from typing import Protocol, cast

SCENARIOS = {
    "throughput": "bench.throughput",
    "claim-latency": "bench.claim_latency",
    "cold-start": "bench.cold_start",
    "pickup-latency": "bench.pickup_latency",
    "routes": "bench.routes",
    "prune": "bench.prune",
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
    module = cast(_Scenario, importlib.import_module(SCENARIOS[name]))
    return module.main(rest)
