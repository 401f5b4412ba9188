"""``osrm-http`` against OSRM's own server (``osrm-routed``, shipped in osrm-bindings) answering
from the test grid's dataset, and small servers of ours that fail on purpose; 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from jobworker.routes.providers.budget import PointError, ProviderUnavailable
from jobworker.routes.travel import TravelError, provider_for
from tests.conftest import LambdaClient
from tests.roadnet import SIZE, RoadGrid, position
from tests.test_roads_jobs import road_request, run_job

SERVER_TABLE_LIMIT = 10  # osrm-routed --max-table-size: a 30-point table needs blocks
SERVER_ROUTE_LIMIT = 4  # --max-viaroute-size
POINTS = [position((row, column)) for row in range(0, SIZE, 1) for column in (0, 3, 5, 7)][:30]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def routed(road_grid: RoadGrid) -> Iterator[str]:
    """osrm-routed on 127.0.0.1 serving the grid's car dataset; its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "osrm", "routed", "-a", "MLD", "-i", "127.0.0.1", "-p", str(port),
         "-t", "1", "--max-table-size", str(SERVER_TABLE_LIMIT),
         "--max-viaroute-size", str(SERVER_ROUTE_LIMIT), str(road_grid.car / "roads.osrm")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)  # `python -m osrm` runs osrm-routed as its child: stop both
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/nearest/v1/car/4.0,52.0", timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.05)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


class Recorder(ThreadingHTTPServer):
    requests: list[str]


@pytest.fixture
def flaky(routed: str) -> Iterator[Recorder]:
    """Answers 503 to its first request, then passes requests on to osrm-routed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server = self.server
            assert isinstance(server, Recorder)
            server.requests.append(self.path)
            if len(server.requests) == 1:
                self.send_error(503)
                return
            try:
                with urllib.request.urlopen(routed + self.path, timeout=10) as answer:
                    body, status = answer.read(), answer.status
            except urllib.error.HTTPError as refused:
                body, status = refused.read(), refused.code
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = Recorder(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def http_provider(url: str, **options: Any) -> Any:
    return provider_for("osrm-http", {"url": url, "max_table_size": SERVER_TABLE_LIMIT,
                                      "max_route_points": SERVER_ROUTE_LIMIT, **options})


def test_osrm_http__table_in_blocks_equals_the_in_process_table(routed: str,
                                                               road_grid: RoadGrid) -> None:
    over_http = http_provider(routed).matrix(POINTS, "car", deadline=time.monotonic() + 60)
    in_process = provider_for("osrm", {"data": str(road_grid.root)}).matrix(POINTS, "car",
                                                                          deadline=None)
    assert np.allclose(over_http.durations_minutes, in_process.durations_minutes, atol=0.01)
    assert np.allclose(over_http.distances_km, in_process.distances_km, atol=0.002)
    assert over_http.provider == "osrm-http"
    # The server really holds the limit that the blocks respect:
    with pytest.raises(TravelError, match="too big"):
        http_provider(routed, max_table_size=4 * SERVER_TABLE_LIMIT).matrix(
            POINTS, "car", deadline=None)


def test_osrm_http__legs_in_windows_equal_the_in_process_legs(routed: str,
                                                            road_grid: RoadGrid) -> None:
    stops = POINTS[:8]
    over_http = http_provider(routed).leg_geometry(stops, "car")
    in_process = provider_for("osrm", {"data": str(road_grid.root)}).leg_geometry(stops, "car")
    assert over_http is not None
    assert in_process is not None
    assert len(over_http) == len(stops) - 1
    for ours, theirs in zip(over_http, in_process, strict=True):
        assert np.allclose(ours, theirs, atol=1e-6)


def test_osrm_http__a_point_off_the_roads_is_named_by_its_index(routed: str) -> None:
    points = [*POINTS[:12], (52.2, 4.3)]  # the stray point sits in the third block
    with pytest.raises(PointError) as failure:
        http_provider(routed, snap_radius_m=200).matrix(points, "car", deadline=None)
    assert failure.value.points == (12,)
    assert "point 12 (52.20000, 4.30000) is more than 200 m from any road" in str(failure.value)


def test_osrm_http__an_overloaded_server_is_retried(flaky: Recorder) -> None:
    url = f"http://127.0.0.1:{flaky.server_address[1]}"
    table = http_provider(url, backoff_seconds=0).matrix(POINTS[:4], "car", deadline=None)
    assert len(flaky.requests) == 2, "one 503, then the answer"
    assert table.durations_minutes[0, 1] > 0


def test_osrm_http__a_server_that_never_answers_fails_after_its_attempts(silent: str) -> None:
    provider = http_provider(silent, timeout_seconds=0.2, retries=1, backoff_seconds=0)
    with pytest.raises(ProviderUnavailable, match=r"after 2 attempt\(s\).*no answer within 0\.2 s"):
        provider.matrix(POINTS[:3], "car", deadline=None)


def test_osrm_http__attempts_stop_at_the_deadline(silent: str) -> None:
    provider = http_provider(silent, timeout_seconds=30, retries=50, backoff_seconds=0)
    with pytest.raises(ProviderUnavailable, match="deadline passed"):
        provider.matrix(POINTS[:3], "car", deadline=time.monotonic() + 0.3)


def test_route_job__osrm_http_plans_on_the_servers_times(
    routed: str, road_grid: RoadGrid, api: LambdaClient, handlers: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSRM_HTTP_URL", routed)
    monkeypatch.setenv("OSRM_HTTP_MAX_TABLE_SIZE", str(SERVER_TABLE_LIMIT))
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.5")
    job = run_job(api, handlers, road_request({"provider": "osrm-http"}))
    assert job["progress"] == "COMPLETED", job["error"]
    assert job["result"]["travel"]["provider"] == "osrm-http"


def test_route_job__an_unreachable_server_is_retried_later(
    api: LambdaClient, handlers: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OSRM_HTTP_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OSRM_HTTP_RETRIES", "0")
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "0.5")
    job = run_job(api, handlers, road_request({"provider": "osrm-http", "fallback": None}))
    assert job["progress"] == "QUEUED", "an unreachable server may answer on a later attempt"
    assert job["attempts"] == 1
    assert "did not answer after 1 attempt(s): cannot connect" in job["error"]
