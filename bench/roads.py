"""``jobworker bench roads``: what road travel times cost, against the solve they feed.

Writes a uniform street grid (OSM XML), builds it with ``jobworker roads build`` (MLD), then
times the ``osrm`` provider's matrix (in process) and, with ``--http``, the ``osrm-http``
provider against ``osrm-routed`` on 127.0.0.1, for each point count: the figures behind
"no matrix cache" (a table costs milliseconds; the solve it feeds, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

STEP_DEG = 0.001


def write_grid(path: Path, size: int) -> None:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="bench">']

    def node(r: int, c: int) -> int:
        return 1 + r * size + c

    for r in range(size):
        for c in range(size):
            lines.append(f'<node id="{node(r, c)}" version="1" lat="{52 + r * STEP_DEG:.7f}" '
                         f'lon="{4 + c * STEP_DEG * 1.6:.7f}"/>')
    way = 1
    for r in range(size):
        refs = "".join(f'<nd ref="{node(r, c)}"/>' for c in range(size))
        lines.append(f'<way id="{way}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        way += 1
    for c in range(size):
        refs = "".join(f'<nd ref="{node(r, c)}"/>' for r in range(size))
        lines.append(f'<way id="{way}" version="1">{refs}<tag k="highway" v="residential"/></way>')
        way += 1
    lines.append("</osm>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def timed(call: Any, repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def start_routed(dataset: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "osrm", "routed", "-a", "MLD", "-i",
                               "127.0.0.1", "-p", str(port), str(dataset / "roads.osrm")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # osrm-routed runs as its child
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            urllib.request.urlopen(f"{url}/nearest/v1/car/4.0,52.0", timeout=1).close()  # noqa: S310
            return server, url
        except OSError:
            time.sleep(0.05)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit("osrm-routed did not come up")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jobworker bench roads", description=__doc__)
    parser.add_argument("--grid", type=int, default=40, help="intersections per side")
    parser.add_argument("--points", default="50,200,500,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--http", action="store_true", help="also time osrm-http")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from jobworker.routes.travel import provider_for

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        osm, dataset = Path(folder) / "grid.osm", Path(folder) / "car"
        write_grid(osm, args.grid)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jobworker.dev.cli", "roads", "build", str(osm),
                        "--profile", "car", "--out", str(dataset)], check=True,
                       capture_output=True)
        build_seconds = time.perf_counter() - started
        size = json.loads((dataset / "dataset.json").read_text())["bytes"]
        in_process = provider_for("osrm", {"data": str(dataset)})
        server, url = start_routed(dataset) if args.http else (None, "")
        try:
            over_http = provider_for("osrm-http", {"url": url}) if url else None
            rng = random.Random(1)
            for n in (int(text) for text in args.points.split(",")):
                points = [(52 + rng.uniform(0, (args.grid - 1) * STEP_DEG),
                           4 + rng.uniform(0, (args.grid - 1) * STEP_DEG * 1.6))
                          for _ in range(n)]
                in_process.matrix(points[:2], "car", deadline=None)  # load the engine
                row: dict[str, Any] = {"points": n, "osrm_ms": 1000 * timed(
                    lambda p=points: in_process.matrix(p, "car", deadline=None), args.repeat)}
                if over_http is not None:
                    row["osrm_http_ms"] = 1000 * timed(
                        lambda p=points: over_http.matrix(p, "car", deadline=None), args.repeat)
                rows.append(row)
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=10)
    print(f"grid {args.grid}x{args.grid}: roads build {build_seconds:.2f} s, "
          f"{size / 1024 / 1024:.2f} MiB")
    for row in rows:
        http = f", osrm-http {row['osrm_http_ms']:.0f} ms" if "osrm_http_ms" in row else ""
        print(f"  {row['points']:5d} points: osrm {row['osrm_ms']:.0f} ms{http}")
    if args.json:
        print(json.dumps({"grid": args.grid, "build_seconds": build_seconds, "bytes": size,
                          "tables": rows}))
    return 0
