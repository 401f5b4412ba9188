"""Where a stop the plan left out could still go, or what stops it: the cheapest insertion.

For a dropped optional stop, every place on the plan's routes (between two visits, or on a
vehicle the plan leaves unused) is tried at once, in the solver's integers and with the
solver's rules: load per dimension with pickups on board after them, the stop's time
windows, the later stops' windows and the shift's end, the route's maximum duration
(waiting included) and distance. Times follow the classic concatenation of route segments
(duration, time warp, earliest and latest start; Vidal et al. 2013), the rules PyVRP's own
routes follow, so a verdict here matches what PyVRP would say of the same route.

The verdict is the candidate that came closest: the first check it fails (in the order
capacity, its own window, the rest of the route's times, the route's limits), by how much,
or, when one passes everything, the cheapest such place and its added cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
# How far a candidate got, in check order; FITS passed every check.
CAPACITY, OWN_WINDOW, ROUTE_TIMES, ROUTE_LIMITS, FITS = range(5)
_NO_END = np.iinfo(np.int64).max // 4  # a shift end no route reaches (sums stay in int64)
Outcome = Literal["fits", "capacity", "window", "late", "shift", "duration", "distance"]


@dataclass(frozen=True)
class Visit:
    """A stop in solver integers, in one of its time windows (seconds, distance units)."""

    row: int
    delivery: tuple[int, ...]
    pickup: tuple[int, ...]
    service: int
    early: int
    late: int


@dataclass(frozen=True, eq=False)
class Vehicle:
    """A vehicle type as an insertion must respect it, with its matrices and unit costs."""

    name: str
    capacity: tuple[int, ...]
    start_row: int
    end_row: int  # an open route's end is the row every place reaches at no cost
    earliest: int
    latest: int
    max_duration: int
    max_distance: int
    unit_distance_cost: int
    unit_duration_cost: int
    fixed_cost: int
    distance: IntArray
    duration: IntArray
    unused: int  # vehicles of this type the plan does not use


@dataclass(frozen=True)
class Tour:
    """A route of the plan: its number in the answer (1-based) and its visits in order."""

    number: int
    vehicle: int  # index into the vehicles
    visits: tuple[Visit, ...]


@dataclass(frozen=True)
class Verdict:
    """The closest any place came. ``amount``: by how much it failed (load units, seconds,
    distance units) or, when it fits, the added cost in solver cost units."""

    outcome: Outcome
    vehicle: int
    tour: int | None  # the route's number; None: a vehicle the plan leaves unused
    amount: int
    dimension: int = 0  # the load dimension that overflows (capacity)


class Segments(NamedTuple):
    """Route segments (scalars or arrays): duration with waits, time warp, and the
    earliest and latest start that achieve them."""

    duration: IntArray
    warp: IntArray
    early: IntArray
    late: IntArray


def merge(first: Segments, second: Segments, travel: IntArray) -> Segments:
    """``first``, then ``travel`` seconds, then ``second`` (Vidal et al. 2013)."""
    delta = first.duration - first.warp + travel
    wait = np.maximum(second.early - delta - first.late, 0)
    warp = np.maximum(first.early + delta - second.late, 0)
    return Segments(
        duration=first.duration + second.duration + travel + wait,
        warp=first.warp + second.warp + warp,
        early=np.maximum(second.early - delta, first.early) - wait,
        late=np.minimum(second.late - delta, first.late) + warp,
    )


def _segment(duration: int, early: int, late: int) -> Segments:
    return Segments(*(np.asarray(x, dtype=np.int64) for x in (duration, 0, early, late)))


def _stacked(parts: Sequence[Segments]) -> Segments:
    return Segments(*(np.array([getattr(p, f) for p in parts], dtype=np.int64).reshape(-1)
                      for f in Segments._fields))


@dataclass(frozen=True, eq=False)
class Places:
    """Every place on one vehicle type's routes a stop could go: between ``before`` (the
    route up to it) and ``after`` (the rest of the route), position by position."""

    before: Segments
    after: Segments
    after_open: Segments  # the same, were there no end to the shift
    row_from: IntArray
    row_to: IntArray
    leg: IntArray  # the distance the insertion replaces (0 on an unused vehicle)
    distance: IntArray  # the route's distance now
    duration: IntArray  # the route's duration now
    fixed: IntArray  # the fixed cost an unused vehicle adds
    load_before: IntArray  # (places, dimensions): most on board up to the place
    load_after: IntArray  # and from it on
    tour: IntArray  # the route's number; 0: an unused vehicle


def _tour_places(vehicle: Vehicle, tour: Tour | None) -> Places:
    """The places on one route (or on an unused vehicle: ``tour`` None)."""
    visits = tour.visits if tour is not None else ()
    rows = [vehicle.start_row, *(v.row for v in visits), vehicle.end_row]
    shift = _segment(0, vehicle.earliest, vehicle.latest)
    stops = [_segment(v.service, v.early, v.late) for v in visits]
    forward = [shift]  # forward[p]: from the start through visit p
    for p, stop in enumerate(stops, 1):
        forward.append(merge(forward[-1], stop, vehicle.duration[rows[p - 1], rows[p]]))
    backward = _backward(vehicle, rows, stops, shift)
    unbounded = _backward(vehicle, rows, stops, _segment(0, vehicle.earliest, _NO_END))
    legs = np.array([vehicle.distance[a, b] for a, b in itertools.pairwise(rows)],
                    dtype=np.int64)
    whole = merge(forward[-1], shift, vehicle.duration[rows[-2], rows[-1]])
    loads = _loads(visits, len(vehicle.capacity))
    used = bool(visits)
    n = len(visits) + 1
    return Places(
        before=_stacked(forward), after=_stacked(backward), after_open=_stacked(unbounded),
        row_from=np.array(rows[:-1], dtype=np.int64), row_to=np.array(rows[1:], dtype=np.int64),
        leg=legs if used else np.zeros(1, dtype=np.int64),
        distance=np.full(n, int(legs.sum()) if used else 0, dtype=np.int64),
        duration=np.full(n, int(whole.duration) if used else 0, dtype=np.int64),
        fixed=np.full(n, 0 if used else vehicle.fixed_cost, dtype=np.int64),
        load_before=np.maximum.accumulate(loads, axis=0),
        load_after=np.maximum.accumulate(loads[::-1], axis=0)[::-1],
        tour=np.full(n, tour.number if tour is not None else 0, dtype=np.int64),
    )


def _backward(vehicle: Vehicle, rows: Sequence[int], stops: Sequence[Segments],
              end: Segments) -> list[Segments]:
    """Per place p: the route from visit p + 1 (1-based) on to ``end``; the last is ``end``."""
    backward = [end]
    for p in range(len(stops), 0, -1):
        backward.append(merge(stops[p - 1], backward[-1], vehicle.duration[rows[p], rows[p + 1]]))
    return backward[::-1]


def _loads(visits: Sequence[Visit], dims: int) -> IntArray:
    """On board at the start and after each visit: all deliveries first, then what changes."""
    change = np.array([np.subtract(v.pickup, v.delivery) for v in visits],
                      dtype=np.int64).reshape(len(visits), dims)
    start = np.array([v.delivery for v in visits], dtype=np.int64).reshape(len(visits), dims)
    return np.vstack([start.sum(axis=0), start.sum(axis=0) + np.cumsum(change, axis=0)])


def places_of(vehicle: Vehicle, tours: Sequence[Tour]) -> Places:
    """Every place on ``tours`` (routes of ``vehicle``), and one on an unused vehicle."""
    parts = [_tour_places(vehicle, tour) for tour in tours]
    if vehicle.unused:
        parts.append(_tour_places(vehicle, None))
    return _joined(parts)


def _joined(parts: Sequence[Places]) -> Places:
    def column(name: str) -> IntArray:
        return np.concatenate([getattr(part, name) for part in parts])

    def segments(name: str) -> Segments:
        return Segments(*(np.concatenate([getattr(getattr(part, name), f) for part in parts])
                          for f in Segments._fields))

    return Places(
        before=segments("before"), after=segments("after"), after_open=segments("after_open"),
        row_from=column("row_from"), row_to=column("row_to"), leg=column("leg"),
        distance=column("distance"), duration=column("duration"), fixed=column("fixed"),
        load_before=column("load_before"), load_after=column("load_after"),
        tour=column("tour"),
    )


def cheapest_insertion(windows: Sequence[Visit], vehicles: Sequence[Vehicle],
                       places: Mapping[int, Places]) -> Verdict | None:
    """The closest any place on ``places`` (per vehicle index) came to taking the stop, in
    any of its ``windows``; None when there is no place at all (no route, no spare vehicle)."""
    best: tuple[int, int, Verdict] | None = None
    for k, where in places.items():
        for window in windows:
            stage, verdict = _closest(window, vehicles[k], k, where)
            key = (-stage, verdict.amount)
            if best is None or key < best[:2]:
                best = (*key, verdict)
    return None if best is None else best[2]


class Evaluation(NamedTuple):
    """Per place: the stage reached, how much it failed by there (or the added cost when it
    fits), and the route's duration with the stop."""

    stage: IntArray
    amount: IntArray
    duration: IntArray
    over_load: IntArray  # (places, dimensions)
    late_elsewhere: IntArray  # late at a later stop, were there no end to the shift
    over_duration: IntArray


def evaluate(visit: Visit, vehicle: Vehicle, at: Places) -> Evaluation:
    """The stop at every place of ``at`` (routes of ``vehicle``) at once."""
    c = visit.row
    over_load = np.maximum(at.load_before + np.asarray(visit.delivery),
                           at.load_after + np.asarray(visit.pickup)) - np.asarray(vehicle.capacity)
    overload = over_load.max(axis=1)
    stop = _segment(visit.service, visit.early, visit.late)
    reached = merge(at.before, stop, vehicle.duration[at.row_from, c])
    served = merge(reached, at.after, vehicle.duration[c, at.row_to])
    unbounded = merge(reached, at.after_open, vehicle.duration[c, at.row_to])
    detour = vehicle.distance[at.row_from, c] + vehicle.distance[c, at.row_to] - at.leg
    over_duration = served.duration - vehicle.max_duration
    over_distance = at.distance + detour - vehicle.max_distance
    stage = np.select(
        [overload > 0, reached.warp > 0, served.warp > 0,
         (over_duration > 0) | (over_distance > 0)],
        [CAPACITY, OWN_WINDOW, ROUTE_TIMES, ROUTE_LIMITS], default=FITS)
    cost = (vehicle.unit_distance_cost * detour
            + vehicle.unit_duration_cost * (served.duration - at.duration) + at.fixed)
    amount = np.choose(stage, [overload, reached.warp, served.warp,
                               np.maximum(over_duration, over_distance), cost])
    return Evaluation(stage=stage, amount=amount, duration=served.duration,
                      over_load=over_load, late_elsewhere=unbounded.warp,
                      over_duration=over_duration)


def _closest(visit: Visit, vehicle: Vehicle, k: int, at: Places) -> tuple[int, Verdict]:
    """The furthest stage any place reached, and the least it failed by (or cost) there."""
    seen = evaluate(visit, vehicle, at)
    top = int(np.max(seen.stage))
    candidates = np.flatnonzero(seen.stage == top)
    pick = int(candidates[np.argmin(seen.amount[candidates])])
    dimension = int(np.argmax(seen.over_load[pick])) if top == CAPACITY else 0
    return top, Verdict(outcome=_outcome(top, pick, seen), vehicle=k,
                        tour=int(at.tour[pick]) or None, amount=int(seen.amount[pick]),
                        dimension=dimension)


def _outcome(stage: int, pick: int, seen: Evaluation) -> Outcome:
    if stage == ROUTE_TIMES:  # late at a later stop, or only at the shift's end
        return "late" if int(seen.late_elsewhere[pick]) > 0 else "shift"
    if stage == ROUTE_LIMITS:
        return "duration" if int(seen.over_duration[pick]) > 0 else "distance"
    outcomes: dict[int, Outcome] = {CAPACITY: "capacity", OWN_WINDOW: "window", FITS: "fits"}
    return outcomes[stage]
