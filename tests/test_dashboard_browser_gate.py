"""Without a browser the browser tests skip saying why, except under CI, where they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_TESTS = "tests/test_dashboard_browser.py"


def run_browser_test(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["JOBWORKER_CHROMIUM"] = "/nonexistent/chromium"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         f"{BROWSER_TESTS}::test_cancel__a_queued_job_becomes_cancelled_in_the_database"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_without_chromium__skips_and_says_how_to_install_it() -> None:
    done = run_browser_test(ci=None)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "no Chromium at /nonexistent/chromium" in done.stdout


def test_without_chromium_under_ci__fails() -> None:
    done = run_browser_test(ci="true")
    assert done.returncode == 1, done.stdout
    assert "CI requires the browser tests" in done.stdout
