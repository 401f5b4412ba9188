"""``jobworker bench pickup-latency``: how long a queued job waits for a poller, kick on and off.

Starts ``jobworker dev`` (API + scheduled poller + sweeper, the real handlers) as a subprocess
on a database this scenario creates, posts ``simulate`` jobs of a few milliseconds over HTTP to
127.0.0.1 (``POST /jobs/batch`` with one job: created and queued in one transaction, then the
kick), spaced by random (exponential) gaps, and reads ``started_at - created_at`` of each job
from the ``jobs`` table.

Without the kick (``jobworker dev --no-kick``) a job waits for the next scheduled poll.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg

from .common import (
    PROJECT_ROOT,
    BenchServer,
    median,
    percentile,
    print_table,
    rounded,
    run_scenario,
    say,
)

UP_MESSAGE = "jobworker dev is up"
STARTUP_TIMEOUT_SECONDS = 90.0
POST_TIMEOUT_SECONDS = 35.0  # longer than the engine's pool timeout (30 s): see its answer
MAX_ENQUEUE_FAILURES = 3

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def dev_command(port: int, data_dir: str, kick: bool) -> list[str]:
    script = Path(sys.executable).with_name("jobworker")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "jobworker.dev.cli"]
    command += ["dev", "--port", str(port), "--data-dir", data_dir]
    return command if kick else [*command, "--no-kick"]


@contextmanager
def dev_server(database_url: str, *, kick: bool, poll_interval: float,
               idle_exit: float | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run ``jobworker dev`` until the block ends; yields its base URL and its "up" message."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "POLL_INTERVAL": f"{poll_interval:g}",
           "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(PROJECT_ROOT)}
    if idle_exit is not None:
        env["POLLER_IDLE_EXIT_SECONDS"] = f"{idle_exit:g}"
    with tempfile.TemporaryDirectory(prefix="jobworker-pickup-") as data_dir:
        process = subprocess.Popen(
            dev_command(port, data_dir, kick),
            env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        up = threading.Event()
        tail: list[str] = []
        up_message: dict[str, Any] = {}

        def drain() -> None:  # keep reading: a full pipe would block the server
            assert process.stdout is not None
            for line in process.stdout:
                tail.append(line)
                del tail[:-20]
                if UP_MESSAGE in line and not up.is_set():
                    with suppress(ValueError):
                        up_message.update(json.loads(line))
                    up.set()

        threading.Thread(target=drain, daemon=True).start()
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
            while not up.wait(0.1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jobworker dev did not start:\n" + "".join(tail))
            yield f"http://127.0.0.1:{port}", up_message
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def post_job(base_url: str, seconds: float) -> str | None:
    """Enqueue one job; None (and a message) when the API does not accept it in time."""
    body = json.dumps({"jobs": [{"kind": "simulate", "payload": {"seconds": seconds}}]})
    request = urllib.request.Request(  # noqa: S310 (always http://127.0.0.1)
        f"{base_url}/jobs/batch", data=body.encode(), method="POST",
        headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        say(f"  POST /jobs/batch failed after {time.monotonic() - started:.1f} s: {exc}")
        return None
    job_id: str = answer["job_ids"][0]
    return job_id


def wait_for_pickups(database_url: str, job_ids: list[str], timeout: float) -> list[float]:
    """Seconds from created_at to started_at for each job, once all have started."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT EXTRACT(EPOCH FROM started_at - created_at)::float8 FROM jobs"
                " WHERE job_id = ANY(%s::uuid[]) AND started_at IS NOT NULL",
                (job_ids,)).fetchall()
            if len(rows) == len(job_ids) or time.monotonic() > deadline:
                return [float(row[0]) for row in rows]
            time.sleep(0.2)


def measure(server: BenchServer, *, kick: bool, args: argparse.Namespace) -> dict[str, Any]:
    url = server.create_database("jobworker_pickup")
    rng = random.Random(args.seed)
    label = "with kick" if kick else "without kick"
    say(f"pickup-latency {label}: {args.jobs} jobs, mean gap {args.gap:g} s, "
        f"POLL_INTERVAL={args.poll_interval:g}")
    with dev_server(url, kick=kick, poll_interval=args.poll_interval,
                    idle_exit=args.idle_exit) as (base_url, up):
        with urllib.request.urlopen(f"{base_url}/health", timeout=30):  # noqa: S310 (local)
            pass
        time.sleep(args.settle)
        job_ids: list[str] = []
        failed = 0
        for _ in range(args.jobs):
            job_id = post_job(base_url, args.job_seconds)
            if job_id is None:
                failed += 1
                if failed >= MAX_ENQUEUE_FAILURES:
                    say(f"  giving up after {failed} failed enqueues")
                    break
            else:
                job_ids.append(job_id)
            time.sleep(rng.expovariate(1 / args.gap))
        pickups = wait_for_pickups(url, job_ids, timeout=args.poll_interval * 3 + 30)
    return {"pickups": pickups, "missing": len(job_ids) - len(pickups), "failed": failed,
            "kick": up.get("kick")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench pickup-latency",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=30, help="jobs per variant (default 30)")
    parser.add_argument("--poll-interval", type=float, default=5.0,
                        help="POLL_INTERVAL of the dev server, seconds (default 5)")
    parser.add_argument("--gap", type=float, default=1.0,
                        help="mean seconds between two enqueues (exponential; default 1)")
    parser.add_argument("--job-seconds", type=float, default=0.01,
                        help="how long each simulate job runs (default 0.01)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after start-up before the first job (default 1)")
    parser.add_argument("--idle-exit", type=float, default=None,
                        help="POLLER_IDLE_EXIT_SECONDS for the dev server (default: its own)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the gaps (default 5)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    results = {"kick": measure(server, kick=True, args=args),
               "no_kick": measure(server, kick=False, args=args)}
    report: dict[str, Any] = {}
    for name, result in results.items():
        pickups = result["pickups"]
        report[f"pickup_p50_s_{name}"] = rounded(median(pickups), 3)
        report[f"pickup_p99_s_{name}"] = rounded(percentile(pickups, 99), 3)
    report.update({
        "poll_interval": args.poll_interval,
        "poller_idle_exit_seconds": args.idle_exit,
        "jobs": args.jobs,
        "mean_gap_s": args.gap,
        "max_s": {name: rounded(max(r["pickups"], default=None), 3)
                  for name, r in results.items()},
        "not_started": {name: r["missing"] for name, r in results.items()},
        "enqueue_failures": {name: r["failed"] for name, r in results.items()},
        "kick_reported_by_dev": {name: r["kick"] for name, r in results.items()},
    })
    print_table(f"Enqueue to RUNNING through jobworker dev (POLL_INTERVAL={args.poll_interval:g}"
                f" s, {args.jobs} jobs per variant, mean gap {args.gap:g} s)",
                ("variant", "p50 s", "p99 s", "max s", "not started", "enqueue failed"),
                [(name.replace("_", " "), report[f"pickup_p50_s_{name}"],
                  report[f"pickup_p99_s_{name}"], report["max_s"][name],
                  report["not_started"][name], report["enqueue_failures"][name])
                 for name in results])
    return report


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run)
