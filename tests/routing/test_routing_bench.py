"""``python -m bench.routes`` (what ``jobworker bench routes`` runs): a table, then JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.routing.test_routing_vrplib import LKH3_EXACT, LKH3_FLOOR

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


@pytest.mark.parametrize(("text", "rule", "cost"), [
    (LKH3_FLOOR, "FLOOR_2D, SCALE 10: floor(10*d)", "DIMACS one-decimal truncation"),
    (LKH3_EXACT, "EXACT_2D, SCALE 1000: round(1000*d) (vrplib's own weights)",
     "overstates this plan's gap by less than 0.1 per arc"),
])
def test_jobworker_bench_routes__lkh3_cvrptw_file__solved_and_its_conventions_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, rule: str, cost: str,
) -> None:
    from jobworker.dev.cli import main

    path = tmp_path / "LK5.vrptw"
    path.write_text(text)

    status = main(["bench", "routes", str(path), "--seconds", "0.5", "--json"])

    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert status == 0, out
    assert (report["feasible"], report["routes"] is not None) == (True, True)
    assert f"distances: {rule}" in out
    assert "cost: in the instance's units" in out
    assert cost in out
    assert "fleet: VEHICLES 2 (a limit)" in out
