"""``python -m bench.routes`` (what ``jobworker bench routes`` runs): a table, then JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.routes", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bench_routes__json__last_line_has_the_measures(cvrp_dir: Path) -> None:
    done = _bench(str(cvrp_dir / "E-n22-k4.vrp"), "--seconds", "1", "--json")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert {"cost", "optimum", "gap_pct", "seconds", "feasible"} <= set(report)
    assert report["feasible"] is True
    assert report["optimum"] == 375
    assert report["gap_pct"] == pytest.approx(100 * (report["cost"] - 375) / 375, abs=0.01)
    assert report["seconds"] < 5
    assert lines[0].split()[:3] == ["instance", "customers", "vehicles"]


def test_bench_routes__unreadable_file__exit_2(tmp_path: Path) -> None:
    done = _bench(str(tmp_path / "missing.vrp"), "--seconds", "1")

    assert done.returncode == 2
    assert "cannot read" in done.stderr
