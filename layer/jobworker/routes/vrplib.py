"""VRPLIB instances (CVRP, and CVRPTW in the LKH-3/Solomon dialect) as the job's own
:class:`RoutingProblem`, read with the ``vrplib`` package (a PyVRP dependency).

Benchmarks run exactly the solver the job runs: only the source of the matrices differs.
The conventions, stated per file in :class:`Conventions`:

* **Rounding.** CVRP: VRPLIB's ``round``, ``nint(sqrt(dx^2 + dy^2))`` with
  ``nint(x) = floor(x + 0.5)``, the convention the X/E/A sets' optima are quoted in.
  CVRPTW (Solomon, Homberger): the DIMACS challenge's truncation to one decimal,
  ``floor(10 * d) / 10``, in which their best-known costs are quoted; the solver works in
  tenths and the cost is reported back in the instance's units. Travel times equal distances.
* **Fleet.** A ``VEHICLES`` entry is a limit. The ``kN`` in a CVRP name is not: in the X set
  of Uchoa et al. it is the minimum number of routes, and the fleet is unlimited (capping it
  at N can make the best-known solution unreachable). Without ``VEHICLES`` the fleet is one
  vehicle per customer, which never binds.

Coordinates map to the plan's points as ``lat = y``, ``lon = x``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.solver import FleetSpec, IntMatrix, Place, RoutingProblem, StopSpec

# "Optimal value: 784", "Best value: 784", "best known 1073", "Optimal: 375", "opt = 5.5"
_OPTIMUM = re.compile(
    r"\b(?:optimal|optimum|best)(?:\s+known)?(?:\s+(?:value|cost|solution))?\s*[:=]?\s*"
    r"(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_FLEET_IN_NAME = re.compile(r"-k(\d+)\b", re.IGNORECASE)
PROFILE = "car"


class VrplibError(ValueError):
    """The file is not an instance this reader understands; the message says where."""


@dataclass(frozen=True)
class Conventions:
    rounding: str  # "nint" (VRPLIB round) or "dimacs-1-decimal-truncation"
    fleet: str  # how the vehicle count was chosen
    vehicles: int
    min_routes_in_name: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CvrpInstance:
    """What the file says, before it becomes a problem for the solver."""

    name: str
    comment: str
    kind: str  # CVRP or CVRPTW
    node_ids: list[int]  # the file's node numbers, depot first
    capacity: int
    coordinates: list[tuple[float, float]]  # depot first, the file's (x, y)
    demands: list[int]  # depot first (its demand is ignored)
    optimum: float | None
    vehicles: int | None  # the VEHICLES entry, if any
    time_windows: list[tuple[float, float]] | None = None  # depot first
    service_times: list[float] | None = None


def parse_optimum(comment: str) -> float | None:
    """The optimal or best known cost a COMMENT line mentions, if any."""
    match = _OPTIMUM.search(comment)
    return float(match.group(1)) if match else None


def _solution_cost(path: Path) -> float | None:
    """The ``Cost`` of a ``.sol`` file next to the instance (VRPLIB's own convention)."""
    solution = path.with_suffix(".sol")
    if not solution.is_file():
        return None
    match = re.search(r"^\s*cost\s*:?\s*(\d+(?:\.\d+)?)", solution.read_text(errors="replace"),
                      re.IGNORECASE | re.MULTILINE)
    return float(match.group(1)) if match else None


def _format_of(text: str) -> str:
    """``vrplib`` for ``KEY : value`` files; ``solomon`` for the classic Solomon layout."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "vrplib" if ":" in first or "VEHICLE" not in text.upper() else "solomon"


def read_instance(path: str | Path) -> CvrpInstance:
    """Parse ``path``; raises :class:`VrplibError` naming what is missing or unsupported."""
    import vrplib

    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = vrplib.read_instance(path, instance_format=_format_of(text),
                                    compute_edge_weights=False)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise VrplibError(f"not a VRPLIB instance this reader understands: {exc}") from None
    kind = str(data.get("type", "CVRPTW" if "time_window" in data else "CVRP")).upper()
    if kind not in ("CVRP", "CVRPTW", "VRPTW"):
        raise VrplibError(f"TYPE {kind} is not supported: this reader handles CVRP and CVRPTW")
    weights = str(data.get("edge_weight_type", "EUC_2D")).upper()
    if weights != "EUC_2D":
        raise VrplibError(f"EDGE_WEIGHT_TYPE {weights} is not supported: need EUC_2D")
    for key in ("node_coord", "demand", "capacity"):
        if key not in data:
            raise VrplibError(f"{key.upper()} is missing")
    coords = np.asarray(data["node_coord"], dtype=np.float64)
    depots = [int(d) for d in np.atleast_1d(data.get("depot", [0]))]
    if len(depots) != 1:
        raise VrplibError(f"one depot is supported; this file has {len(depots)}")
    dimension = int(data.get("dimension", len(coords)))
    demands = np.atleast_1d(data["demand"])
    if len(coords) != dimension or len(demands) != dimension:
        raise VrplibError(f"DIMENSION is {dimension} but the file lists {len(coords)} "
                          f"coordinates and {len(demands)} demands")
    windows = data.get("time_window")
    service = data.get("service_time")
    if service is not None:
        service = np.broadcast_to(np.asarray(service, dtype=np.float64), (dimension,))
    # The depot first, the other nodes in file order: row 0 of every matrix is the depot.
    order = [depots[0]] + [i for i in range(dimension) if i != depots[0]]
    coords, demands = coords[order], demands[order]
    windows = None if windows is None else np.asarray(windows)[order]
    service = None if service is None else service[order]
    name = str(data.get("name", path.stem))
    comment = str(data.get("comment", ""))
    vehicles = data.get("vehicles")
    return CvrpInstance(
        name=name, comment=comment, kind="CVRPTW" if windows is not None else "CVRP",
        node_ids=[i + 1 for i in order],
        capacity=int(np.atleast_1d(data["capacity"])[0]),
        coordinates=[(float(x), float(y)) for x, y in coords],
        demands=[int(d) for d in demands],
        optimum=parse_optimum(comment) or _solution_cost(path),
        vehicles=None if vehicles is None else int(vehicles),
        time_windows=None if windows is None else [(float(a), float(b)) for a, b in windows],
        service_times=None if service is None else [float(s) for s in service],
    )


def euc_2d(coords: NDArray[np.float64]) -> IntMatrix:
    """TSPLIB EUC_2D: Euclidean distance rounded half up to the nearest integer."""
    exact = _euclidean(coords)
    # floor(x + 0.5), not np.rint: TSPLIB's nint rounds halves up, numpy rounds them to even.
    rounded: IntMatrix = np.floor(exact + 0.5).astype(np.int64)
    return rounded


def dimacs_tenths(coords: NDArray[np.float64]) -> IntMatrix:
    """DIMACS VRPTW convention: distance truncated to one decimal, as integer tenths."""
    tenths: IntMatrix = np.floor(_euclidean(coords) * 10 + 1e-9).astype(np.int64)
    return tenths


def _euclidean(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    delta = coords[:, None, :] - coords[None, :, :]
    return np.asarray(np.sqrt((delta**2).sum(axis=-1)), dtype=np.float64)


def read_problem(path: str | Path, *, unlimited_fleet: bool = False
                 ) -> tuple[RoutingProblem, CvrpInstance, Conventions]:
    """The solver's problem for a VRPLIB file, the parsed instance, and the conventions used."""
    instance = read_instance(path)
    coords = np.asarray(instance.coordinates, dtype=np.float64)
    timed = instance.time_windows is not None
    distance = dimacs_tenths(coords) if timed else euc_2d(coords)
    scale = 10 if timed else 1  # solver units per instance unit
    customers = len(coords) - 1
    conventions = _conventions(instance, customers, unlimited=unlimited_fleet, timed=timed)
    windows = instance.time_windows or []
    service = instance.service_times or [0.0] * len(coords)

    def units(value: float) -> int:
        return math.floor(value * scale + 1e-9)

    places = tuple(Place(id=str(node), lat=y, lon=x, depot=i == 0)
                   for i, (node, (x, y)) in enumerate(zip(instance.node_ids,
                                                          instance.coordinates, strict=True)))
    stops = tuple(
        StopSpec(id=str(instance.node_ids[i]), row=i, delivery=(instance.demands[i],), pickup=(0,),
                 service_seconds=units(service[i]),
                 windows=((units(windows[i][0]), units(windows[i][1])),) if timed else ())
        for i in range(1, len(coords))
    )
    depot_window = (units(windows[0][0]), units(windows[0][1])) if timed else None
    fleet = FleetSpec(
        id="vehicle", count=conventions.vehicles, capacity=(instance.capacity,), start_row=0,
        end_row=0, earliest=depot_window[0] if depot_window else 0,
        latest=depot_window[1] if depot_window else FleetSpec.latest,
        cost_per_km=1.0, profile=PROFILE,
    )
    problem = RoutingProblem(
        name=instance.name, places=places, stops=stops, fleet=(fleet,),
        distance={PROFILE: distance}, duration={PROFILE: distance.copy()},
        distance_units_per_km=float(scale), cost_scale=float(scale),
    )
    return problem, instance, conventions


def _conventions(instance: CvrpInstance, customers: int, *, unlimited: bool,
                 timed: bool) -> Conventions:
    match = _FLEET_IN_NAME.search(instance.name)
    in_name = int(match.group(1)) if match else None
    if instance.vehicles is not None and not unlimited:
        vehicles, fleet = instance.vehicles, f"VEHICLES {instance.vehicles} (a limit)"
    else:
        vehicles = max(customers, 1)
        fleet = "unlimited (one vehicle per customer)"
        if in_name is not None:
            fleet += f"; the name's k{in_name} is the minimum number of routes, not a cap"
    rounding = ("dimacs: distances truncated to one decimal" if timed
                else "vrplib round: nint(euclidean)")
    return Conventions(rounding=rounding, fleet=fleet, vehicles=vehicles,
                       min_routes_in_name=in_name)
