"""The ``generate_routes`` job: parse the payload, solve within the deadline, store the routes.

The seed's sketch, made real: fetch the location group (it travels in the payload), optimise
the routes (PyVRP), save the results (in the transaction that completes the job).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from jobworker.kinds import JobContext, JobOutcome, job_kind
from jobworker.queue.errors import PermanentJobError
from jobworker.routes.models import GenerateRoutesRequest, describe_validation_error
from jobworker.routes.store import save_plan

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection

log = logging.getLogger("jobworker.routes")


@job_kind("generate_routes", GenerateRoutesRequest, links=("routes",))
def generate_routes(ctx: JobContext) -> JobOutcome:
    """Solve the vehicle routing problem in the payload and store the route group."""
    from uuid import UUID

    from jobworker.routes.solver import InfeasibleProblem, problem_from_request, solve

    try:
        request = GenerateRoutesRequest.from_payload(ctx.payload)
    except ValidationError as exc:
        raise PermanentJobError(
            f"invalid route request: {describe_validation_error(exc)}"
        ) from None
    group, settings = request.location_group, request.settings
    time_limit = max(0.0, min(settings.max_runtime_seconds, ctx.time_left()))
    log.info(
        f"Job {ctx.job_id}: Generating routes",
        extra={"job_id": str(ctx.job_id), "locations": len(group.locations),
               "vehicles": settings.vehicles, "time_limit_seconds": round(time_limit, 3)},
    )
    try:
        plan = solve(problem_from_request(request), time_limit_seconds=time_limit,
                     heartbeat=ctx.check_signals)
    except InfeasibleProblem as exc:  # the same request can never succeed: no retry
        raise PermanentJobError(str(exc)) from None
    summary: dict[str, object] = {
        "total_distance_km": plan.total_distance_km,
        "total_duration_minutes": plan.total_duration_minutes,
        "vehicles_used": plan.vehicles_used,
        "locations_served": plan.locations_served,
        "stopped_early": plan.solver.stopped_early,
        "stop_reason": plan.solver.stop_reason,
        "solver_seconds": plan.solver.runtime_seconds,
    }
    if plan.solver.stopped_early:
        summary["note"] = ("the job's deadline ended the search before max_runtime_seconds; "
                           "these are the best routes found by then")

    def persist(conn: Connection) -> UUID:
        return save_plan(conn, job_id=ctx.job_id, depot_lat=group.depot.lat,
                         depot_lon=group.depot.lon, plan=plan)

    return JobOutcome(result=summary, persist=persist)
