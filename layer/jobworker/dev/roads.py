"""``jobworker roads``: prepare an OSRM road dataset from an OpenStreetMap extract, and check it.

``build`` runs OSRM's own tools (``python -m osrm extract|partition|customize``, shipped in
``osrm-bindings``) for the MLD algorithm and writes ``DIR/roads.osrm.*`` plus ``DIR/dataset.json``
(profile, source, bounding box, sizes), which is what the ``osrm`` provider reads. ``check``
answers a small table from a built dataset, so a bad build shows before a job meets it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

SHIPPED_PROFILES = ("car", "bicycle", "foot")
OSM_SUFFIXES = (".osm.pbf", ".osm.bz2", ".osm", ".pbf")
CHECK_SNAP_RADIUS_M = 5000.0  # check's sample points lie anywhere in the box: snap generously
MIB = 1024 * 1024


class RoadsError(Exception):
    """Something the user can fix (a missing module, file or profile): exit 2 with it."""


def add_parser(commands: Any) -> None:
    roads = commands.add_parser("roads", help="prepare and check OSRM road datasets")
    steps = roads.add_subparsers(dest="roads_command", required=True)
    build = steps.add_parser("build", help="OSM extract -> OSRM dataset (MLD)")
    build.add_argument("source", type=Path, help="FILE.osm.pbf or FILE.osm")
    build.add_argument("--profile", default="car",
                       help=f"vehicle profile name ({', '.join(SHIPPED_PROFILES)} ship with "
                            "OSRM; others need --profile-lua)")
    build.add_argument("--profile-lua", type=Path,
                       help="a custom OSRM profile (e.g. a truck profile) for --profile")
    build.add_argument("--out", type=Path, required=True, help="dataset folder (emptied first)")
    build.add_argument("--threads", type=int, default=0, help="OSRM's threads (0: all cores)")
    check = steps.add_parser("check", help="answer a small table from a dataset")
    check.add_argument("dataset", type=Path, help="a folder that `roads build` wrote")
    check.add_argument("--point", action="append", default=[], metavar="LAT,LON",
                       help="points to route between (default: five inside its bounding box)")


def _provider() -> ModuleType:
    """The osrm provider module (numpy and all), imported when a roads command runs."""
    from jobworker.routes.providers import osrm

    return osrm


def run(args: argparse.Namespace) -> int:
    from jobworker.routes.travel import TravelError

    try:
        if args.roads_command == "build":
            return build(args.source, args.profile, args.out, profile_lua=args.profile_lua,
                         threads=args.threads)
        return check(args.dataset, [parse_point(text) for text in args.point])
    except (RoadsError, TravelError) as exc:
        print(f"jobworker roads: {exc}", file=sys.stderr)
        return 2


def parse_point(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(part) for part in text.split(","))
    except ValueError:
        raise RoadsError(f"--point wants LAT,LON, not {text!r}") from None
    return lat, lon


# --- build ----------------------------------------------------------------------------------


def profile_script(profile: str, profile_lua: Path | None) -> Path:
    if profile_lua is not None:
        if not profile_lua.is_file():
            raise RoadsError(f"no such profile file: {profile_lua}")
        return profile_lua.resolve()
    if profile not in SHIPPED_PROFILES:
        raise RoadsError(f"OSRM ships the profiles {', '.join(SHIPPED_PROFILES)}; for "
                         f"{profile!r} give its Lua file with --profile-lua")
    return Path(_osrm().__file__).parent / "share" / "profiles" / f"{profile}.lua"


def _osrm() -> Any:
    from jobworker.routes.travel import TravelError

    try:
        return _provider().osrm_module()
    except TravelError as exc:
        raise RoadsError(exc.reason) from None


def source_suffix(source: Path) -> str:
    name = source.name.lower()
    for suffix in OSM_SUFFIXES:
        if name.endswith(suffix):
            return ".osm.pbf" if suffix == ".pbf" else suffix
    raise RoadsError(f"{source}: expected an OpenStreetMap extract ({', '.join(OSM_SUFFIXES)})")


def build(source: Path, profile: str, out: Path, *, profile_lua: Path | None = None,
          threads: int = 0) -> int:
    if not source.is_file():
        raise RoadsError(f"no such file: {source}")
    script = profile_script(profile, profile_lua)
    suffix = source_suffix(source)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # OSRM names its files after the input: a link gives them the dataset's fixed name.
    link = out / f"{_provider().DATASET_BASENAME}{suffix}"
    link.symlink_to(source.resolve())
    thread_args = ["-t", str(threads)] if threads > 0 else []
    timings = {}
    try:
        timings["extract"] = _step(out, "extract", "-p", str(script), *thread_args, link.name)
        target = _provider().dataset_file(out).name
        timings["partition"] = _step(out, "partition", *thread_args, target)
        timings["customize"] = _step(out, "customize", *thread_args, target)
    finally:
        link.unlink()
    manifest = _manifest(source, profile, script, out, timings)
    (out / _provider().MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"built the {profile!r} road dataset ({_provider().ALGORITHM}) from {source.name} "
          f"in {out}")
    print(f"  {manifest['files']} files, {manifest['bytes'] / MIB:.2f} MiB; "
          + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in timings.items()))
    if manifest["bbox"]:
        south, west, north, east = manifest["bbox"]
        print(f"  bounding box: lat {south:.5f}..{north:.5f}, lon {west:.5f}..{east:.5f}")
    print(f"  use it: OSRM_DATA={out} (or a parent folder holding one folder per profile)")
    return 0


def _step(folder: Path, step: str, *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "osrm", step, *args], cwd=folder,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RoadsError(f"osrm-{step} failed (exit {done.returncode}):\n{tail}")
    return time.monotonic() - started


def _manifest(source: Path, profile: str, script: Path, out: Path,
              timings: dict[str, float]) -> dict[str, Any]:
    files = sorted(path for path in out.iterdir() if path.is_file())
    return {
        "profile": profile,
        "algorithm": _provider().ALGORITHM,
        "source": source.name,
        "source_bytes": source.stat().st_size,
        "profile_script": script.name,
        "bbox": dataset_bbox(out),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "osrm_bindings": _osrm_version(),
        "files": len(files),
        "bytes": sum(path.stat().st_size for path in files),
        "seconds": {step: round(seconds, 3) for step, seconds in timings.items()},
    }


def _osrm_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("osrm-bindings")
    except PackageNotFoundError:
        return None


def dataset_bbox(folder: Path) -> list[float] | None:
    """[south, west, north, east] of the road nodes of the dataset built in ``folder``, read
    from OSRM's own node file (``*.osrm.nbg_nodes``: a tar holding the coordinates as int32
    longitude, latitude pairs in millionths of a degree), whatever the source's format."""
    import struct
    import tarfile

    found = sorted(folder.glob("*.osrm.nbg_nodes"))
    if not found:
        return None
    try:
        with tarfile.open(found[0]) as archive:
            count_file = archive.extractfile("/common/nbn_data/coordinates.meta")
            data_file = archive.extractfile("/common/nbn_data/coordinates")
            if count_file is None or data_file is None:
                return None
            (count,) = struct.unpack("<Q", count_file.read(8))
            data = data_file.read(8 * count)
    except (tarfile.TarError, KeyError, struct.error):
        return None  # another OSRM file layout: check then needs --point
    if count == 0 or len(data) != 8 * count:
        return None
    fixed = struct.unpack(f"<{2 * count}i", data)
    lons, lats = fixed[0::2], fixed[1::2]
    return [min(lats) / 1e6, min(lons) / 1e6, max(lats) / 1e6, max(lons) / 1e6]


# --- check ----------------------------------------------------------------------------------


def check(folder: Path, points: Sequence[tuple[float, float]]) -> int:
    manifest = _provider().read_manifest(folder)
    if manifest is None:
        raise RoadsError(f"{folder} holds no road dataset ({_provider().MANIFEST} is missing)")
    profile = str(manifest["profile"])
    if not points:
        bbox = manifest.get("bbox") or dataset_bbox(folder)
        if not bbox:
            raise RoadsError("could not read where this dataset's roads are: give points "
                             "with --point LAT,LON")
        points = sample_points(bbox)
    provider = _provider().OsrmProvider(data=str(folder), snap_radius_m=CHECK_SNAP_RADIUS_M)
    started = time.monotonic()
    table = provider.matrix(points, profile, deadline=None)
    seconds = time.monotonic() - started
    print(f"{folder}: profile {profile!r}, {len(points)} points, table in {seconds * 1000:.1f} ms")
    for i, (lat, lon) in enumerate(points):
        cells = "  ".join(
            f"{table.durations_minutes[i, j]:6.2f} min {table.distances_km[i, j]:6.3f} km"
            for j in range(len(points)))
        print(f"  {i} ({lat:.5f}, {lon:.5f}): {cells}")
    return 0


def sample_points(bbox: Sequence[float]) -> list[tuple[float, float]]:
    """The centre and four points halfway to the corners of [south, west, north, east]."""
    south, west, north, east = bbox
    mid_lat, mid_lon = (south + north) / 2, (west + east) / 2
    quarter_lat, quarter_lon = (north - south) / 4, (east - west) / 4
    return [(mid_lat, mid_lon)] + [
        (mid_lat + sign_lat * quarter_lat, mid_lon + sign_lon * quarter_lon)
        for sign_lat, sign_lon in ((-1, -1), (-1, 1), (1, -1), (1, 1))
    ]
