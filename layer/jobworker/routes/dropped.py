"""Why an optional stop is not on the plan, in a dispatcher's words and a stable code.

The facts come from :func:`jobworker.routes.insertion.cheapest_insertion`: the place on the
plan that came closest to taking the stop. The codes are the ones stops that no vehicle can
serve at all already have (``jobworker.routes.build``), plus the search's own:

* ``capacity``: every vehicle that could serve it is in use and has no room for its load;
* ``window``: no vehicle with room reaches it within its time window(s), or only by making
  a later stop miss its own;
* ``shift``: no vehicle with room has time for it before the end of its shift;
* ``limit``: it would take a route past its ``max_route_minutes`` or ``max_distance_km``;
* ``penalty``: it fits, but serving it costs more than its penalty;
* ``time``: it fits for less than its penalty, but the search ended before it placed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobworker.routes.insertion import Vehicle, Verdict

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class Scales:
    """How the solver's integers read: distance units per km and cost units per currency."""

    distance_units_per_km: float
    cost_scale: float
    dimensions: int


def why_dropped(verdict: Verdict, vehicle: Vehicle, *, penalty: float, scales: Scales,
                cut_by_deadline: bool) -> tuple[str, str]:
    """(code, reason) for an optional stop of ``penalty`` the plan leaves out."""
    where = (f"route {verdict.tour} ({vehicle.name})" if verdict.tour is not None
             else f"an unused {vehicle.name}")
    if verdict.outcome == "fits":
        return _fits(verdict, where, penalty, scales, cut_by_deadline)
    if verdict.outcome == "capacity":
        return _over_capacity(verdict, where, penalty, scales)
    return _out_of_time_or_limit(verdict, vehicle, where, scales)


def _fits(verdict: Verdict, where: str, penalty: float, scales: Scales,
          cut_by_deadline: bool) -> tuple[str, str]:
    cost = verdict.amount / scales.cost_scale
    if verdict.amount >= round(penalty * scales.cost_scale):
        return "penalty", (f"dropped: its penalty ({penalty:g}) was lower than the cost of "
                           f"serving it (at least {cost:.2f} more, on {where})")
    fits = f"it fits on {where} for {cost:.2f} more, less than its penalty {penalty:g}"
    if cut_by_deadline:
        return "time", ("out of time: the job's deadline ended the search before a place was "
                        f"found for it ({fits})")
    return "time", (f"out of time: the search ended before it placed it ({fits}); a longer "
                    "max_runtime_seconds may serve it")


def _over_capacity(verdict: Verdict, where: str, penalty: float,
                   scales: Scales) -> tuple[str, str]:
    dimension = f" in load dimension {verdict.dimension}" if scales.dimensions > 1 else ""
    return "capacity", (
        "over capacity: every vehicle that can serve it is in use and full (the closest, "
        f"{where}, would be {verdict.amount} over its capacity{dimension}); its penalty "
        f"{penalty:g} was the cheaper loss")


def _out_of_time_or_limit(verdict: Verdict, vehicle: Vehicle, where: str,
                          scales: Scales) -> tuple[str, str]:
    late = f"{verdict.amount / SECONDS_PER_MINUTE:.1f} min"
    if verdict.outcome == "window":
        return "window", ("no time window reachable on this plan: no vehicle with room gets "
                          f"there before it closes (the closest, {where}, {late} late)")
    if verdict.outcome == "late":
        return "window", ("no time window fits: no vehicle with room has time for it (the "
                          f"closest, {where}, would miss a later stop's time window by {late})")
    if verdict.outcome == "shift":
        end = vehicle.latest / SECONDS_PER_MINUTE
        return "shift", ("out of shift time: no vehicle with room has time for it in its shift "
                         f"(the closest, {where}, would be back {late} after its shift ends at "
                         f"minute {end:g})")
    if verdict.outcome == "duration":
        limit = vehicle.max_duration / SECONDS_PER_MINUTE
        return "limit", ("over max_route_minutes: no route with room stays within its limits "
                         f"with it (the closest, {where}, would take {late} more than its "
                         f"{limit:g} min)")
    over = verdict.amount / scales.distance_units_per_km
    limit = vehicle.max_distance / scales.distance_units_per_km
    return "limit", ("over max_distance_km: no route with room stays within its limits with it "
                     f"(the closest, {where}, would drive {over:.1f} km more than its "
                     f"{limit:g} km)")
