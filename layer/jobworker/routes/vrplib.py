"""VRPLIB instances (CVRP, and CVRPTW in the LKH-3/Solomon dialect) as the job's own
:class:`RoutingProblem`, read with the ``vrplib`` package (a PyVRP dependency).

Benchmarks run exactly the solver the job runs: only the source of the matrices differs.
The conventions, stated per file in :class:`Conventions`:

* **Distances.** The file's ``EDGE_WEIGHT_TYPE`` and ``SCALE`` (TSPLIB/LKH-3: distances are
  multiplied by it) decide the solver's integers; times windows and service times are
  multiplied by the same scale, so that a solver unit of time is a unit of distance.
  ``FLOOR_2D`` ``floor(s d)``, ``CEIL_2D`` ``ceil(s d)`` (``s`` = SCALE, default 1),
  ``EXACT_2D`` ``round(s d)`` (default 1000, LKH-3's), ``EXPLICIT`` the file's weights:
  vrplib's own weights wherever it computes that rule (it knows no SCALE but EXACT_2D's 1000).
  ``EUC_2D`` without SCALE keeps the convention the instances' best-known costs are quoted in:
  CVRP VRPLIB's ``nint(d)`` (``floor(d + 0.5)``, the X/E/A sets); CVRPTW (Solomon,
  Homberger) the DIMACS challenge's truncation to one decimal, ``floor(10 d)`` tenths.
  LKH-3's Solomon files (FLOOR_2D, SCALE 10) are that same truncation. Costs are reported
  in the instance's units (solver cost / scale). Travel times equal distances.
* **Fleet.** A ``VEHICLES`` entry is a limit. The ``kN`` in a CVRP name is not: in the X set
  of Uchoa et al. it is the minimum number of routes, and the fleet is unlimited (capping it
  at N can make the best-known solution unreachable). Without ``VEHICLES`` the fleet is one
  vehicle per customer, which never binds.

Coordinates map to the plan's points as ``lat = y``, ``lon = x`` (0, 0 for EXPLICIT files
without coordinates).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from jobworker.routes.bounds import ROUTE_HORIZON_SECONDS
from jobworker.routes.solver import (
    FleetSpec,
    IntMatrix,
    Place,
    RoutingProblem,
    StopSpec,
)

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
    rounding: str  # the distance rule, in words
    fleet: str  # how the vehicle count was chosen
    vehicles: int
    min_routes_in_name: int | None
    edge_weight_type: str = "EUC_2D"
    scale: int = 1  # solver units per instance unit (distance and time)
    cost: str = ""  # how the reported cost relates to the best-known cost conventions

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
    edge_weight_type: str = "EUC_2D"
    scale: int | None = None  # the SCALE entry, if any
    weights: NDArray[np.float64] | None = None  # EXPLICIT: the file's matrix, depot first


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


# The EDGE_WEIGHT_TYPEs vrplib computes (vrplib.parse.parse_distances), and the SCALE its own
# weights are in: it applies none from the file, and EXACT_2D is round(1000 d) there.
_VRPLIB_SCALE = {"EUC_2D": None, "FLOOR_2D": 1, "CEIL_2D": 1, "EXACT_2D": 1000, "EXPLICIT": 1}
MAX_SCALE = 10_000  # with 5,000 nodes a kilometre-wide instance stays far inside int64
_EPSILON = 1e-9  # float noise: floor(10 * 0.3) must be 3, as the file's arithmetic means


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
    weights = _edge_weight_type(data)
    for key in ("demand", "capacity", *(() if weights == "EXPLICIT" else ("node_coord",))):
        if key not in data:
            raise VrplibError(f"{key.upper()} is missing")
    depots = [int(d) for d in np.atleast_1d(data.get("depot", [0]))]
    if len(depots) != 1:
        raise VrplibError(f"one depot is supported; this file has {len(depots)}")
    demands = np.atleast_1d(data["demand"])
    dimension = int(data.get("dimension", len(demands)))
    coords = _coordinates(data, dimension)
    explicit = _explicit_weights(data, dimension) if weights == "EXPLICIT" else None
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
        edge_weight_type=weights, scale=_scale(data),
        weights=None if explicit is None else explicit[np.ix_(order, order)],
    )


def _edge_weight_type(data: dict[str, Any]) -> str:
    weights = str(data.get("edge_weight_type", "EUC_2D")).upper()
    if weights not in _VRPLIB_SCALE:
        raise VrplibError(f"EDGE_WEIGHT_TYPE {weights} is not supported: vrplib computes "
                          f"{', '.join(_VRPLIB_SCALE)}")
    return weights


def _scale(data: dict[str, Any]) -> int | None:
    """The SCALE entry: a positive integer (LKH-3 multiplies distances by it), if any."""
    if "scale" not in data:
        return None
    scale = data["scale"]
    whole = isinstance(scale, int | float) and not isinstance(scale, bool) and scale == int(scale)
    if not whole or not 1 <= scale <= MAX_SCALE:
        raise VrplibError(f"SCALE {scale!r} is not supported: need an integer from 1 to "
                          f"{MAX_SCALE}")
    return int(scale)


def _coordinates(data: dict[str, Any], dimension: int) -> NDArray[np.float64]:
    """The nodes' (x, y); an EXPLICIT file may have none (the plan's points are then 0, 0)."""
    if "node_coord" not in data:
        return np.zeros((dimension, 2), dtype=np.float64)
    return np.asarray(data["node_coord"], dtype=np.float64)


def _explicit_weights(data: dict[str, Any], dimension: int) -> NDArray[np.float64]:
    """The EDGE_WEIGHT_SECTION as vrplib read it (LOWER_ROW or FULL_MATRIX), n x n."""
    if "edge_weight" not in data:
        raise VrplibError("EDGE_WEIGHT_SECTION is missing (EDGE_WEIGHT_TYPE is EXPLICIT)")
    weights = np.asarray(data["edge_weight"], dtype=np.float64)
    if weights.shape != (dimension, dimension):
        raise VrplibError(f"EDGE_WEIGHT_SECTION is {weights.shape[0]} x {weights.shape[-1]}, "
                          f"DIMENSION is {dimension}")
    return weights


def euc_2d(coords: NDArray[np.float64]) -> IntMatrix:
    """TSPLIB EUC_2D: Euclidean distance rounded half up to the nearest integer."""
    exact = _euclidean(coords)
    # floor(x + 0.5), not np.rint: TSPLIB's nint rounds halves up, numpy rounds them to even.
    rounded: IntMatrix = np.floor(exact + 0.5).astype(np.int64)
    return rounded


def dimacs_tenths(coords: NDArray[np.float64]) -> IntMatrix:
    """DIMACS VRPTW convention: distance truncated to one decimal, as integer tenths."""
    tenths: IntMatrix = np.floor(_euclidean(coords) * 10 + _EPSILON).astype(np.int64)
    return tenths


def _euclidean(coords: NDArray[np.float64]) -> NDArray[np.float64]:
    delta = coords[:, None, :] - coords[None, :, :]
    return np.asarray(np.sqrt((delta**2).sum(axis=-1)), dtype=np.float64)


@dataclass(frozen=True)
class DistanceRule:
    """How one file's distances become the solver's integers, in words for the report."""

    scale: int
    rounding: str
    cost: str


_DIMACS_COST = ("in the instance's units (solver cost / 10): the DIMACS one-decimal truncation "
                "per arc, the convention Solomon and Homberger best-known costs are quoted in")


def distance_matrix(instance: CvrpInstance) -> tuple[IntMatrix, DistanceRule]:
    """The solver's distances for ``instance`` and the rule that made them."""
    weights, scale = instance.edge_weight_type, instance.scale
    coords = np.asarray(instance.coordinates, dtype=np.float64)
    if weights == "EUC_2D" and scale is None:
        return _euc_2d_convention(coords, timed=instance.time_windows is not None)
    if weights == "EXPLICIT":
        return _explicit(instance, scale or 1)
    scale = scale or (_VRPLIB_SCALE[weights] or 1)
    rule = {"FLOOR_2D": "floor", "CEIL_2D": "ceil", "EXACT_2D": "round",
            "EUC_2D": "nint"}[weights]
    if scale == _VRPLIB_SCALE[weights]:
        matrix, source = _vrplib_weights(weights, coords), "vrplib's own weights"
    else:  # vrplib's FLOOR_2D and CEIL_2D apply no SCALE: LKH-3's meaning, computed here
        matrix, source = _scaled(_euclidean(coords), scale, rule), "the file's SCALE applied"
    rounding = f"{weights}, SCALE {scale}: {rule}({scale}*d) ({source})"
    return matrix, DistanceRule(scale=scale, rounding=rounding, cost=_cost_note(weights, scale))


def _euc_2d_convention(coords: NDArray[np.float64], *, timed: bool
                       ) -> tuple[IntMatrix, DistanceRule]:
    """EUC_2D without SCALE: the rounding the instances' best-known costs are quoted in."""
    if timed:
        return dimacs_tenths(coords), DistanceRule(
            scale=10, rounding="dimacs: distances truncated to one decimal (floor(10*d), in "
                               "tenths)", cost=_DIMACS_COST)
    return euc_2d(coords), DistanceRule(
        scale=1, rounding="vrplib round: nint(euclidean)",
        cost="in the instance's units, nint per arc: the convention CVRPLIB's X, E and A "
             "optima are quoted in")


def _explicit(instance: CvrpInstance, scale: int) -> tuple[IntMatrix, DistanceRule]:
    assert instance.weights is not None
    values = instance.weights * scale
    matrix: IntMatrix = np.floor(values + 0.5).astype(np.int64)
    rounded = "" if np.array_equal(matrix, values) else ", rounded to the nearest integer"
    return matrix, DistanceRule(
        scale=scale, rounding=f"EXPLICIT, SCALE {scale}: the file's weights (vrplib){rounded}",
        cost="in the file's own units: compare with a best-known cost quoted for these weights")


def _vrplib_weights(weights: str, coords: NDArray[np.float64]) -> IntMatrix:
    """vrplib's own weights for a coordinate type (its FLOOR_2D, CEIL_2D, EXACT_2D)."""
    from vrplib.parse.parse_distances import parse_distances

    values = np.asarray(parse_distances([], weights, node_coord=coords), dtype=np.float64)
    matrix: IntMatrix = np.rint(values).astype(np.int64)  # already whole: only the dtype
    return matrix


def _scaled(exact: NDArray[np.float64], scale: int, rule: str) -> IntMatrix:
    """``rule(scale * d)``, as LKH-3 applies a SCALE (vrplib applies none)."""
    values = exact * scale
    if rule == "floor":
        result = np.floor(values + _EPSILON)
    elif rule == "ceil":
        result = np.ceil(values - _EPSILON)
    else:  # round, nint: halves up, as TSPLIB's nint
        result = np.floor(values + 0.5)
    matrix: IntMatrix = result.astype(np.int64)
    return matrix


def _cost_note(weights: str, scale: int) -> str:
    if weights == "FLOOR_2D" and scale == 10:
        return _DIMACS_COST
    units = f"solver cost / {scale}" if scale != 1 else "integers"
    if weights == "EXACT_2D":
        return (f"in the instance's units ({units}): Euclidean to 1/{scale} per arc. Solomon "
                "and Homberger best-known costs are quoted with the DIMACS one-decimal "
                "truncation (each arc up to 0.1 shorter), so a gap against one overstates "
                "this plan's gap by less than 0.1 per arc")
    return (f"in the instance's units ({units}), {weights} per arc: compare with a best-known "
            "cost quoted in this rule")


def read_problem(path: str | Path, *, unlimited_fleet: bool = False
                 ) -> tuple[RoutingProblem, CvrpInstance, Conventions]:
    """The solver's problem for a VRPLIB file, the parsed instance, and the conventions used."""
    instance = read_instance(path)
    distance, rule = distance_matrix(instance)
    scale = rule.scale  # solver units per instance unit, for distances and times alike
    timed = instance.time_windows is not None
    customers = len(instance.coordinates) - 1
    conventions = _conventions(instance, customers, unlimited=unlimited_fleet, rule=rule)
    windows = instance.time_windows or []
    service = instance.service_times or [0.0] * len(instance.coordinates)

    def units(value: float) -> int:
        return math.floor(value * scale + _EPSILON)

    # Without windows nothing limits a route's duration (durations equal distances), but the
    # solver's default horizon is 1,209,600 units: at a scale of 1000 a route of 1,210 would
    # break it. Such problems get a horizon no route reaches: every arc, at its longest.
    horizon = int(np.max(distance, initial=0)) * (customers + 1)
    untimed = () if horizon <= ROUTE_HORIZON_SECONDS else ((0, horizon),)
    places = tuple(Place(id=str(node), lat=y, lon=x, depot=i == 0)
                   for i, (node, (x, y)) in enumerate(zip(instance.node_ids,
                                                          instance.coordinates, strict=True)))
    stops = tuple(
        StopSpec(id=str(instance.node_ids[i]), row=i, delivery=(instance.demands[i],), pickup=(0,),
                 service_seconds=units(service[i]),
                 windows=((units(windows[i][0]), units(windows[i][1])),) if timed else untimed)
        for i in range(1, len(instance.coordinates))
    )
    earliest, latest = ((units(windows[0][0]), units(windows[0][1])) if timed
                        else (0, max(horizon, FleetSpec.latest)))
    fleet = FleetSpec(
        id="vehicle", count=conventions.vehicles, capacity=(instance.capacity,), start_row=0,
        end_row=0, earliest=earliest, latest=latest,
        # The depot's window is the horizon; PyVRP's default shift (1,209,600 units) is not.
        max_duration=latest - earliest, cost_per_km=1.0, profile=PROFILE,
    )
    problem = RoutingProblem(
        name=instance.name, places=places, stops=stops, fleet=(fleet,),
        distance={PROFILE: distance}, duration={PROFILE: distance.copy()},
        distance_units_per_km=float(scale), cost_scale=float(scale),
    )
    return problem, instance, conventions


def _conventions(instance: CvrpInstance, customers: int, *, unlimited: bool,
                 rule: DistanceRule) -> Conventions:
    match = _FLEET_IN_NAME.search(instance.name)
    in_name = int(match.group(1)) if match else None
    if instance.vehicles is not None and not unlimited:
        vehicles, fleet = instance.vehicles, f"VEHICLES {instance.vehicles} (a limit)"
    else:
        vehicles = max(customers, 1)
        fleet = "unlimited (one vehicle per customer)"
        if in_name is not None:
            fleet += f"; the name's k{in_name} is the minimum number of routes, not a cap"
    return Conventions(rounding=rule.rounding, fleet=fleet, vehicles=vehicles,
                       min_routes_in_name=in_name, edge_weight_type=instance.edge_weight_type,
                       scale=rule.scale, cost=rule.cost)
