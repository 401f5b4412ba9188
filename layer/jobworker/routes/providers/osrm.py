"""``osrm``: OSRM's engine in the process, reading datasets ``jobworker roads build`` prepared.

A dataset is a folder holding ``roads.osrm.*`` (OSRM's MLD files) and ``dataset.json`` (its
profile). The ``data`` option names either one dataset, or a root with one dataset per profile
(``ROOT/car``, ``ROOT/bicycle``, ...). It is a local path (development, or an EFS mount in
AWS) or ``s3://bucket/prefix``: then the profile's files are copied to ``cache_dir`` (``/tmp``
in Lambda) the first time a process needs them, and read from there while it lives.

OSRM's module (``osrm-bindings``) is published for Python 3.12+ only; without it this provider
answers a :class:`~jobworker.routes.travel.TravelError` that says so.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from jobworker.routes.providers.budget import (
    Clock,
    PointError,
    blocks,
    check_deadline,
    describe_point,
)
from jobworker.routes.travel import LatLon, Polyline, TravelError, TravelMatrix, register_provider

NAME = "osrm"
DATASET_BASENAME = "roads"  # roads.osrm, roads.osrm.cells, ... inside a dataset folder
MANIFEST = "dataset.json"
ALGORITHM = "MLD"
DEFAULT_SNAP_RADIUS_M = 500.0  # a stop further than this from any road is an input error
DEFAULT_ROWS_PER_CALL = 100  # the deadline is checked between calls of this many rows
DEFAULT_CACHE_DIR = "/tmp/jobworker-osrm"  # noqa: S108 (Lambda's only writable folder)
NO_SEGMENT = re.compile(r"NoSegment.*coordinate (\d+)")

_engines: dict[Path, Any] = {}
_engines_lock = threading.Lock()


def osrm_module() -> ModuleType:
    """OSRM's Python module, or a TravelError that says why it is missing."""
    try:
        import osrm
    except ImportError:
        import sys

        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        raise TravelError(
            "the osrm provider needs OSRM's Python module (pip install osrm-bindings), which is "
            f"published for Python 3.12 and newer only; this process runs Python {version}"
        ) from None
    module: ModuleType = osrm
    return module


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def dataset_file(folder: Path) -> Path:
    """The path OSRM is given for a dataset folder (its files share this prefix)."""
    return folder / f"{DATASET_BASENAME}.osrm"


def local_dataset(root: Path, profile: str) -> Path:
    """The dataset folder for ``profile`` under ``root`` (itself, or ``root/profile``)."""
    for folder in (root, root / profile):
        manifest = read_manifest(folder)
        if manifest is not None and manifest.get("profile") == profile:
            return folder
    have = sorted(
        str(manifest["profile"])
        for folder in (root, *(p for p in root.iterdir() if p.is_dir()))
        if (manifest := read_manifest(folder)) is not None
    ) if root.is_dir() else []
    raise TravelError(
        f"osrm: no road dataset for profile {profile!r} in {root} "
        f"(have: {', '.join(have) or 'none'}); build one with "
        f"`jobworker roads build FILE.osm.pbf --profile {profile} --out {root / profile}`"
    )


def copy_from_s3(uri: str, profile: str, cache_dir: Path, s3: Any = None) -> Path:
    """Copy the profile's dataset from ``s3://bucket/prefix`` (or ``prefix/profile``) once."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    target = cache_dir / profile
    if read_manifest(target) is not None:
        return target
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    for candidate in (f"{prefix}/{profile}" if prefix else profile, prefix):
        keys = _list_keys(s3, bucket, candidate)
        manifest_key = f"{candidate}/{MANIFEST}".lstrip("/")
        if manifest_key not in keys:
            continue
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        if manifest.get("profile") != profile:
            continue
        partial = cache_dir / f".{profile}.partial"
        partial.mkdir(parents=True, exist_ok=True)
        for key in keys:
            s3.download_file(bucket, key, str(partial / key.rsplit("/", 1)[-1]))
        partial.rename(target)  # the manifest's presence means a complete copy
        return target
    raise TravelError(f"osrm: no road dataset for profile {profile!r} under {uri}")


def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Objects directly under ``prefix`` (not in deeper folders)."""
    start = f"{prefix}/" if prefix else ""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        keys += [item["Key"] for item in page.get("Contents", [])
                 if "/" not in item["Key"][len(start):]]
    return keys


def plain(value: Any, osrm: ModuleType) -> Any:
    """OSRM's result objects as dicts, lists and numbers."""
    if isinstance(value, osrm.Object):
        return {key: plain(value[key], osrm) for key in value}
    if isinstance(value, osrm.Array):
        return [plain(item, osrm) for item in value]
    return value


@dataclass
class OsrmProvider:
    data: str
    snap_radius_m: float = DEFAULT_SNAP_RADIUS_M
    rows_per_call: int = DEFAULT_ROWS_PER_CALL
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    clock: Clock = time.monotonic
    s3: Any = field(default=None, repr=False)

    def dataset(self, profile: str) -> Path:
        if self.data.startswith("s3://"):
            return copy_from_s3(self.data, profile, self.cache_dir, self.s3)
        return local_dataset(Path(self.data), profile)

    def engine(self, profile: str) -> Any:
        """One engine per dataset per process: loading one reads all its files."""
        osrm = osrm_module()
        folder = self.dataset(profile)
        with _engines_lock:
            engine = _engines.get(folder)
            if engine is None:
                engine = osrm.OSRM(storage_config=str(dataset_file(folder)),
                                   algorithm=ALGORITHM, use_shared_memory=False)
                _engines[folder] = engine
        return engine

    def matrix(self, points: Sequence[LatLon], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        osrm = osrm_module()
        n = len(points)
        durations = np.zeros((n, n), dtype=np.float64)
        distances = np.zeros((n, n), dtype=np.float64)
        if n:
            check_deadline(deadline, self.clock, provider=NAME, done=0, total=n * n)
            engine = self.engine(profile)
        coordinates = [(lon, lat) for lat, lon in points]
        for rows in blocks(n, self.rows_per_call):
            check_deadline(deadline, self.clock, provider=NAME, done=rows.start * n, total=n * n)
            params = osrm.TableParameters(
                coordinates=coordinates, sources=list(rows), destinations=list(range(n)),
                annotations=["duration", "distance"], radiuses=[self.snap_radius_m] * n)
            answer = self._call(engine.Table, params, points, profile)
            # Only the two matrices leave OSRM's objects (rows of floats or None): converting
            # the whole answer (hints and all) cost more than the table on big inputs.
            for key, out in (("durations", durations), ("distances", distances)):
                out[rows.start:rows.stop] = _cells([list(row) for row in answer[key]], rows,
                                                   points, profile)
        return TravelMatrix(durations_minutes=durations / 60.0, distances_km=distances / 1000.0,
                            provider=NAME, profile=profile)

    def leg_geometry(self, points: Sequence[LatLon], profile: str) -> list[Polyline] | None:
        osrm = osrm_module()
        if len(points) < 2:
            return []
        params = osrm.RouteParameters(
            coordinates=[(lon, lat) for lat, lon in points], steps=True, geometries="geojson",
            overview="false", continue_straight=False,
            radiuses=[self.snap_radius_m] * len(points))
        answer = plain(self._call(self.engine(profile).Route, params, points, profile), osrm)
        return [leg_polyline(leg) for leg in answer["routes"][0]["legs"]]

    def _call(self, service: Any, params: Any, points: Sequence[LatLon], profile: str) -> Any:
        try:
            return service(params)
        except RuntimeError as exc:
            raise osrm_error(str(exc), points, profile, self.snap_radius_m) from None


def leg_polyline(leg: Mapping[str, Any]) -> Polyline:
    """A leg's steps joined into one (lat, lon) line, without repeated vertices."""
    line: Polyline = []
    for step in leg["steps"]:
        for lon, lat in step["geometry"]["coordinates"]:
            if not line or line[-1] != (lat, lon):
                line.append((lat, lon))
    return line


def osrm_error(message: str, points: Sequence[LatLon], profile: str,
               snap_radius_m: float) -> TravelError:
    """OSRM's message (in-process or HTTP) as a reason a dispatcher can act on."""
    no_segment = NO_SEGMENT.search(message)
    if no_segment:
        index = int(no_segment.group(1))
        return PointError(
            f"{describe_point(points, index)} is more than {snap_radius_m:g} m from any road "
            f"the {profile!r} profile can use", [index])
    return TravelError(f"OSRM could not answer: {message}")


def _cells(rows_answer: list[list[float | None]], rows: range, points: Sequence[LatLon],
           profile: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The answer's rows as floats; a missing cell means no road route between two points."""
    for offset, row in enumerate(rows_answer):
        for j, value in enumerate(row):
            if value is None:
                i = rows.start + offset
                raise PointError(
                    f"no road route for the {profile!r} profile from {describe_point(points, i)}"
                    f" to {describe_point(points, j)} (the road network is not connected there)",
                    [i, j])
    return np.asarray(rows_answer, dtype=np.float64)


def _factory(options: Mapping[str, Any]) -> OsrmProvider:
    data = options.get("data")
    if not data:
        raise TravelError(
            "osrm: no road dataset configured (OSRM_DATA: a folder that `jobworker roads build` "
            "wrote, or s3://bucket/prefix)")
    return OsrmProvider(
        data=str(data),
        snap_radius_m=float(options.get("snap_radius_m", DEFAULT_SNAP_RADIUS_M)),
        rows_per_call=int(options.get("rows_per_call", DEFAULT_ROWS_PER_CALL)),
        cache_dir=Path(options.get("cache_dir", DEFAULT_CACHE_DIR)),
    )


register_provider(NAME, _factory)
