"""Why no cost PyVRP adds up can leave int64, and the penalties that keep it so.

PyVRP works in int64: a solution's penalised cost is its distance cost, duration cost, fixed
vehicle costs and uncollected prizes, plus a penalty per unit of excess load (per dimension),
of time warp and of excess distance, summed over all routes. Each term is bounded from the
problem's largest numbers (:class:`Extremes`): the cost terms by the data alone, the penalty
terms by the penalty per unit, which :func:`penalty_limits` chooses so that the whole sum
stays under :data:`COST_BUDGET`. :func:`api_extremes` is the worst problem the API accepts
(``jobworker.routes.models``); its cost terms take a small fraction of the budget.

Stdlib only: the solver imports this, and importing the solver costs numpy and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

INT64_MAX = 2**63 - 1
# A ceiling on any solution's penalised cost. The search adds and subtracts a few route
# costs at a time (the cost change of a move over two routes), so a quarter of int64 leaves
# room for those sums as well.
COST_BUDGET = INT64_MAX // 4
METRES_PER_KM = 1000.0
SECONDS_PER_HOUR = 3600
# Solver cost units per unit of currency: a vehicle's cost per km is resolved to 0.1 per km
# (10 units per metre at 1 per km).
COST_SCALE = 10_000
# Every route ends within two weeks of minute 0 (the longest shift the API accepts). An arc
# longer than that is on no feasible route, so it is stored as UNREACHABLE_SECONDS: this
# bounds every duration the solver adds up, and marks the arcs a vehicle may not take.
ROUTE_HORIZON_SECONDS = 14 * 24 * 3600
UNREACHABLE_SECONDS = ROUTE_HORIZON_SECONDS + 1
# A single unit of violation (of load, a second, a metre) can save a skipped stop's prize or
# a vehicle's fixed cost: at its maximum, the penalty per unit is above both (twice: margin),
# so that the search's best plan leaves optional stops out rather than overload a vehicle.
PENALTY_MARGIN = 2


class CostsTooLarge(ValueError):
    """The problem's numbers leave no room for penalties in int64 (never from the API)."""


@dataclass(frozen=True)
class Extremes:
    """A problem's largest numbers, in solver integers (distance units, seconds, cost units)."""

    clients: int  # PyVRP clients: one per stop and time window
    vehicles: int
    load_total: int  # over all clients and load dimensions: delivery + pickup
    longest_leg: int  # distance units
    longest_leg_seconds: int
    longest_service_seconds: int
    latest_opening: int  # seconds: the latest a time window or a shift opens
    latest_end: int  # seconds: the latest a shift ends (and so a route may start)
    unit_distance_cost: int  # the largest over vehicle types, per distance unit
    unit_duration_cost: int  # per second
    largest_fixed_cost: int
    fixed_cost_total: int  # over every vehicle
    largest_prize: int
    prize_total: int  # over every client

    @property
    def legs(self) -> int:
        """Legs over all routes together: a route of k clients has k + 1."""
        return self.clients + self.vehicles

    def distance(self) -> int:
        """Bounds the distance of all routes together, and so their excess distance."""
        return self.legs * self.longest_leg

    def seconds(self) -> int:
        """Bounds the duration of all routes together, and their time warp. A route's clock
        starts by its shift's end and moves forward by legs, services and waits (a wait
        ends when a window opens); time warp only takes back what the clock went forward."""
        per_leg = self.longest_leg_seconds + self.longest_service_seconds + self.latest_opening
        return self.legs * per_leg + self.vehicles * self.latest_end

    def cost(self) -> int:
        """Bounds what a solution costs before penalties."""
        return (self.unit_distance_cost * self.distance()
                + self.unit_duration_cost * self.seconds()
                + self.fixed_cost_total + self.prize_total)

    def violation(self) -> int:
        """Bounds the units a solution can violate: excess load (every dimension), time warp
        (windows, shifts and the excess over a route's maximum duration) and distance."""
        return self.load_total + 2 * self.seconds() + self.distance()


def penalty_limits(extremes: Extremes, *, usual_min: float, usual_max: float,
                   ) -> tuple[float, float]:
    """PyVRP's ``(min_penalty, max_penalty)`` per unit of violation for this problem.

    The maximum is the usual one, raised above the largest prize and fixed cost (see
    :data:`PENALTY_MARGIN`), then lowered where needed until the costs plus the penalties at
    their maximum fit :data:`COST_BUDGET`: where that bites, ``routes.repair`` still turns
    the best plan into a feasible one. Raises :class:`CostsTooLarge` when nothing fits.
    """
    room = (COST_BUDGET - extremes.cost()) // max(extremes.violation(), 1)
    if room < 1:
        raise CostsTooLarge("the problem's costs leave no room for penalties in int64")
    wanted = max(usual_max,
                 PENALTY_MARGIN * max(extremes.largest_prize, extremes.largest_fixed_cost))
    top = min(float(wanted), float(room))
    return min(usual_min, top), top


def api_extremes() -> Extremes:
    """The largest problem ``POST /jobs/generate`` accepts, every number at its limit."""
    from jobworker.routes import models

    clients = models.MAX_LOCATIONS * models.MAX_WINDOWS
    fixed_cost = round(models.MAX_FIXED_COST * COST_SCALE)
    prize = round(max(models.MAX_PENALTY, models.MAX_PRIORITY * models.PENALTY_PER_PRIORITY)
                  * COST_SCALE)
    return Extremes(
        clients=clients,
        vehicles=models.MAX_VEHICLES,
        load_total=clients * models.MAX_DIMENSIONS * 2 * models.MAX_QUANTITY,
        longest_leg=round(models.MAX_MATRIX_KM * METRES_PER_KM),
        longest_leg_seconds=UNREACHABLE_SECONDS,
        longest_service_seconds=models.MINUTES_PER_DAY * 60,
        latest_opening=models.HORIZON_MINUTES * 60,
        latest_end=ROUTE_HORIZON_SECONDS,
        unit_distance_cost=round(models.MAX_COST_PER_KM * COST_SCALE / METRES_PER_KM),
        unit_duration_cost=round(models.MAX_COST_PER_HOUR * COST_SCALE / SECONDS_PER_HOUR),
        largest_fixed_cost=fixed_cost,
        fixed_cost_total=models.MAX_VEHICLES * fixed_cost,
        largest_prize=prize,
        prize_total=clients * prize,
    )
