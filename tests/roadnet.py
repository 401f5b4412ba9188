"""A street network the road tests write themselves, its own shortest paths, and OSRM datasets
built from it with ``jobworker roads build`` (the package's own tools).

The grid: ``SIZE`` x ``SIZE`` intersections, ``LAT_STEP`` / ``LON_STEP`` apart (about 111 m and
103 m at 52 N). Every street is residential, except row 0 (the southern edge), a fast
``primary`` arterial. Row ``ONEWAY_ROW`` is one-way eastbound and column ``ONEWAY_COLUMN``
one-way northbound. Fixtures are registered from tests/conftest.py (``pytest_plugins``).

OSRM's module exists for Python 3.12+ only: without it the fixtures skip, except under
``CI=true``, where a missing module fails the test (CI must run them).
"""

from __future__ import annotations

import heapq
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SIZE = 8
LAT0, LON0 = 52.0, 4.0
LAT_STEP, LON_STEP = 0.001, 0.0015
ARTERIAL_ROW = 0
ONEWAY_ROW = 3
ONEWAY_COLUMN = 5
EARTH_RADIUS_M = 6371008.8
ROOT = Path(__file__).resolve().parents[1]

Node = tuple[int, int]  # (row, column)


def require_osrm() -> None:
    """Skip (or, under CI=true, fail) when OSRM's module is not installed."""
    try:
        import osrm  # noqa: F401
    except ImportError:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        reason = (f"OSRM's module (osrm-bindings) needs Python 3.12+; this is Python {version}:"
                  " the osrm road provider is unavailable here")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the road tests: {reason}")
        pytest.skip(reason)


def position(node: Node) -> tuple[float, float]:
    row, column = node
    return round(LAT0 + row * LAT_STEP, 7), round(LON0 + column * LON_STEP, 7)


def node_id(node: Node) -> int:
    return 1 + node[0] * SIZE + node[1]


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def write_grid(path: Path) -> Path:
    """The grid as OSM XML: nodes, one way per row and per column."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests">']
    for row in range(SIZE):
        for column in range(SIZE):
            lat, lon = position((row, column))
            lines.append(f'  <node id="{node_id((row, column))}" version="1" '
                         f'lat="{lat:.7f}" lon="{lon:.7f}"/>')
    way = 1
    for row in range(SIZE):
        kind = "primary" if row == ARTERIAL_ROW else "residential"
        oneway = '<tag k="oneway" v="yes"/>' if row == ONEWAY_ROW else ""
        refs = "".join(f'<nd ref="{node_id((row, c))}"/>' for c in range(SIZE))
        lines.append(f'  <way id="{way}" version="1">{refs}<tag k="highway" v="{kind}"/>'
                     f'<tag k="name" v="Row {row}"/>{oneway}</way>')
        way += 1
    for column in range(SIZE):
        oneway = '<tag k="oneway" v="yes"/>' if column == ONEWAY_COLUMN else ""
        refs = "".join(f'<nd ref="{node_id((r, column))}"/>' for r in range(SIZE))
        lines.append(f'  <way id="{way}" version="1">{refs}<tag k="highway" v="residential"/>'
                     f'<tag k="name" v="Column {column}"/>{oneway}</way>')
        way += 1
    lines.append("</osm>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def directed_edges() -> dict[Node, list[tuple[Node, float]]]:
    """Every street segment in the directions it may be driven, with its length in metres."""
    edges: dict[Node, list[tuple[Node, float]]] = {}

    def add(a: Node, b: Node, both: bool) -> None:
        length = metres(position(a), position(b))
        edges.setdefault(a, []).append((b, length))
        if both:
            edges.setdefault(b, []).append((a, length))

    for row in range(SIZE):
        for column in range(SIZE - 1):  # eastward along the row
            add((row, column), (row, column + 1), both=row != ONEWAY_ROW)
    for column in range(SIZE):
        for row in range(SIZE - 1):  # northward along the column
            add((row, column), (row + 1, column), both=column != ONEWAY_COLUMN)
    return edges


def shortest_metres(nodes: list[Node]) -> np.ndarray:
    """Dijkstra from every node: our own reference for the road distances between ``nodes``."""
    edges = directed_edges()
    out = np.zeros((len(nodes), len(nodes)))
    for i, start in enumerate(nodes):
        best = {start: 0.0}
        queue = [(0.0, start)]
        while queue:
            dist, node = heapq.heappop(queue)
            if dist > best[node]:
                continue
            for nxt, length in edges.get(node, []):
                if dist + length < best.get(nxt, math.inf):
                    best[nxt] = dist + length
                    heapq.heappush(queue, (dist + length, nxt))
        out[i] = [best[node] for node in nodes]
    return out


def distance_profile(folder: Path) -> Path:
    """OSRM's car profile, weighted by distance: its tables are shortest distances."""
    import osrm

    profiles = Path(osrm.__file__).parent / "share" / "profiles"
    text = (profiles / "car.lua").read_text(encoding="utf-8")
    text = text.replace("weight_name                     = 'routability'",
                        "weight_name                     = 'distance'", 1)
    assert "= 'distance'" in text
    script = folder / "car-distance.lua"
    script.write_text(f"package.path = '{profiles}/?.lua;' .. package.path\n{text}",
                      encoding="utf-8")
    return script


def roads_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jobworker.dev.cli", "roads", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@dataclass(frozen=True)
class RoadGrid:
    osm: Path
    root: Path  # one dataset per profile: root/car (by time), root/car-distance
    build_output: str

    @property
    def car(self) -> Path:
        return self.root / "car"


@pytest.fixture(scope="session")
def road_grid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoadGrid]:
    """The grid, built twice with `jobworker roads build`: car, and car weighted by distance."""
    require_osrm()
    folder = tmp_path_factory.mktemp("roads")
    osm = write_grid(folder / "grid.osm")
    root = folder / "datasets"
    car = roads_command("build", str(osm), "--profile", "car", "--out", str(root / "car"))
    assert car.returncode == 0, car.stderr
    by_distance = roads_command("build", str(osm), "--profile", "car-distance", "--profile-lua",
                                str(distance_profile(folder)), "--out",
                                str(root / "car-distance"))
    assert by_distance.returncode == 0, by_distance.stderr
    return RoadGrid(osm=osm, root=root, build_output=car.stdout)


def pytest_configure(config: pytest.Config) -> None:
    """No geo-routes client in the tests can reach AWS: its endpoint is this machine (port 9,
    where nothing listens). Stubbed clients never send; an unstubbed call fails here."""
    os.environ.setdefault("AWS_ENDPOINT_URL_GEO_ROUTES", "http://127.0.0.1:9")
