"""A feasible plan from the search's best one, by leaving optional stops out.

PyVRP returns its best *feasible* solution when it found one, else the best infeasible one.
When every violation sits on routes that could shed optional clients, the answer the
dispatcher wants is that plan with those clients unassigned, not a failed job. The penalties
(``routes.bounds``) make that the search's own outcome almost always; this is the guarantee
for the rest: on each route that breaks a limit, keep the clients that must stay, then add
back the optional ones, highest prize first, while the route stays feasible. PyVRP's own
``Route`` and ``Solution`` judge feasibility, so the result means what the search means.

PyVRP is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvrp import Client, ClientGroup, ProblemData, Route, Solution


def without_violations(data: ProblemData, best: Solution) -> Solution | None:
    """``best`` with optional clients taken off its infeasible routes until all are feasible;
    None when that is not enough (a required client is in the way, or one is missing)."""
    from pyvrp import Solution

    clients, groups = data.clients(), data.groups()
    routes = []
    for route in best.routes():
        kept = route if route.is_feasible() else _feasible_part(data, route, clients, groups)
        if kept is None:
            return None
        if kept.num_clients():
            routes.append(kept)
    repaired = Solution(data, routes)
    return repaired if repaired.is_feasible() and repaired.is_complete() else None


def _feasible_part(data: ProblemData, route: Route, clients: Sequence[Client],
                   groups: Sequence[ClientGroup]) -> Route | None:
    """The route's clients that must stay, plus as many optional ones as keep it feasible,
    in the route's order; None when the ones that must stay alone break a limit."""
    visits = [activity.idx for activity in route.schedule() if activity.is_client()]
    kept = {c for c in visits if _must_stay(clients[c], groups)}
    trial = _route_of(data, route, visits, kept)
    if not trial.is_feasible():
        return None
    optional = sorted((c for c in visits if c not in kept), key=lambda c: -clients[c].prize)
    for client in optional:
        wider = _route_of(data, route, visits, kept | {client})
        if wider.is_feasible():
            kept.add(client)
            trial = wider
    return trial


def _must_stay(client: Client, groups: Sequence[ClientGroup]) -> bool:
    """Required, or the member of a required group this plan serves it with."""
    return client.required or (client.group is not None and groups[client.group].required)


def _route_of(data: ProblemData, route: Route, visits: Sequence[int],
              kept: set[int]) -> Route:
    from pyvrp import Route

    return Route(data, [c for c in visits if c in kept], route.vehicle_type())
