"""A small reader for VRPLIB CVRP files (EUC_2D), producing the job's own :class:`RoutingProblem`.

Benchmarks run exactly the solver the job runs: only the source of the matrices differs.
Distances follow the VRPLIB/TSPLIB convention for EUC_2D, ``nint(sqrt(dx^2 + dy^2))`` with
``nint(x) = floor(x + 0.5)``, so costs compare with published optima. There are no times in a
CVRP instance: durations equal distances (as VRPLIB tools do) and are never constrained.
Coordinates map to the plan's points as ``lat = y``, ``lon = x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.matrix import Point
from jobworker.routes.solver import IntMatrix, RoutingProblem

# "Optimal value: 784", "Best value: 784", "best known 1073", "Optimal: 375", "opt = 5.5"
_OPTIMUM = re.compile(
    r"\b(?:optimal|optimum|best)(?:\s+known)?(?:\s+(?:value|cost|solution))?\s*[:=]?\s*"
    r"(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_FLEET_IN_NAME = re.compile(r"-k(\d+)\b", re.IGNORECASE)


class VrplibError(ValueError):
    """The file is not a CVRP instance this reader understands; the message says where."""


@dataclass(frozen=True)
class CvrpInstance:
    """What the file says, before it becomes a problem for the solver."""

    name: str
    comment: str
    capacity: int
    node_ids: list[int]  # the file's node numbers, depot first
    coordinates: list[tuple[float, float]]  # in node_ids order, the file's (x, y)
    demands: list[int]  # depot first (its demand is ignored)
    optimum: float | None
    vehicles: int | None  # from the name's ``-kN`` or a VEHICLES entry


def parse_optimum(comment: str) -> float | None:
    """The optimal or best known cost a COMMENT line mentions, if any."""
    match = _OPTIMUM.search(comment)
    return float(match.group(1)) if match else None


def read_instance(path: str | Path) -> CvrpInstance:
    """Parse ``path``; raises :class:`VrplibError` naming what is missing or unsupported."""
    header, sections = _split(Path(path).read_text(encoding="utf-8", errors="replace"))
    _require_supported(header)
    dimension = _int(header, "DIMENSION")
    coords = {int(r[0]): (float(r[1]), float(r[2])) for r in sections["NODE_COORD_SECTION"]}
    demand = {int(r[0]): int(float(r[1])) for r in sections["DEMAND_SECTION"]}
    depot = _depot(sections.get("DEPOT_SECTION"), default=min(coords, default=1))
    # The depot first, the other nodes in file order: row 0 of every matrix is the depot.
    order = [depot] + [node for node in sorted(coords) if node != depot]
    if len(order) != dimension or set(order) != set(demand):
        raise VrplibError(
            f"DIMENSION is {dimension} but the file lists {len(coords)} coordinates and "
            f"{len(demand)} demands"
        )
    name = header.get("NAME", Path(path).stem)
    comment = header.get("COMMENT", "")
    return CvrpInstance(
        name=name,
        comment=comment,
        capacity=_int(header, "CAPACITY"),
        node_ids=order,
        coordinates=[coords[node] for node in order],
        demands=[demand[node] for node in order],
        optimum=parse_optimum(comment),
        vehicles=_vehicles(header, name),
    )


def read_problem(
    path: str | Path, *, unlimited_fleet: bool = False
) -> tuple[RoutingProblem, CvrpInstance]:
    """The solver's problem for a VRPLIB CVRP file, and the parsed instance for reporting.

    The fleet is the file's VEHICLES entry or the ``-kN`` of its name; without either, or with
    ``unlimited_fleet``, one vehicle per customer (which never binds). Some published best
    solutions (e.g. the X set's) use more routes than ``N``: compare those unlimited.
    """
    instance = read_instance(path)
    distance = euc_2d(np.asarray(instance.coordinates, dtype=np.float64))
    customers = len(instance.coordinates) - 1
    problem = RoutingProblem(
        name=instance.name,
        location_ids=tuple(str(node) for node in instance.node_ids[1:]),
        coordinates=tuple(Point(lat=y, lon=x) for x, y in instance.coordinates),
        distance=distance,
        duration=distance.copy(),
        demands=tuple(instance.demands[1:]),
        service_seconds=(0,) * customers,
        time_windows=(None,) * customers,
        vehicles=_fleet(instance, customers, unlimited=unlimited_fleet),
        capacity=instance.capacity,
        distance_units_per_km=1.0,  # the instance's own units, reported as they are
    )
    return problem, instance


def _fleet(instance: CvrpInstance, customers: int, *, unlimited: bool) -> int:
    if unlimited or instance.vehicles is None:
        return max(customers, 1)
    return instance.vehicles


def euc_2d(coords: NDArray[np.float64]) -> IntMatrix:
    """TSPLIB EUC_2D: Euclidean distance rounded half up to the nearest integer."""
    delta = coords[:, None, :] - coords[None, :, :]
    exact = np.sqrt((delta**2).sum(axis=-1))
    # floor(x + 0.5), not np.rint: TSPLIB's nint rounds halves up, numpy rounds them to even.
    rounded: IntMatrix = np.floor(exact + 0.5).astype(np.int64)
    return rounded


def _split(text: str) -> tuple[dict[str, str], dict[str, list[list[str]]]]:
    """``KEY : value`` header entries, and the rows (split on whitespace) of each section."""
    header: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        keyword = line.split(":", 1)[0].strip().upper() if line else ""
        if not line or keyword == "EOF":
            continue
        if keyword.endswith("_SECTION"):
            current = sections.setdefault(keyword, [])
        elif current is not None and not _is_header(line):
            current.append(line.split())
        else:
            current = None
            key, _, value = line.partition(":")
            header[key.strip().upper()] = value.strip()
    return header, sections


def _is_header(line: str) -> bool:
    """Header entries start with a letter; section rows start with a number."""
    return line[0].isalpha()


def _require_supported(header: dict[str, str]) -> None:
    kind = header.get("TYPE", "CVRP").upper()
    weights = header.get("EDGE_WEIGHT_TYPE", "").upper()
    if kind != "CVRP":
        raise VrplibError(f"TYPE {kind} is not supported: this reader handles CVRP")
    if weights != "EUC_2D":
        raise VrplibError(
            f"EDGE_WEIGHT_TYPE {weights or '(missing)'} is not supported: need EUC_2D"
        )


def _int(header: dict[str, str], key: str) -> int:
    try:
        return int(float(header[key]))
    except KeyError:
        raise VrplibError(f"{key} is missing") from None
    except ValueError:
        raise VrplibError(f"{key} is not a number: {header[key]!r}") from None


def _depot(rows: list[list[str]] | None, default: int) -> int:
    """The first depot id of DEPOT_SECTION (which ends with -1); ``default`` without one."""
    ids = [int(row[0]) for row in rows or [] if row and int(row[0]) >= 0]
    return ids[0] if ids else default


def _vehicles(header: dict[str, str], name: str) -> int | None:
    if "VEHICLES" in header:
        return _int(header, "VEHICLES")
    match = _FLEET_IN_NAME.search(name)
    return int(match.group(1)) if match else None
