"""The ``generate_routes`` job: parse the payload, solve within the deadline, store the routes.

The seed's sketch, made real: fetch the location group (it travels in the payload), get the
travel times (haversine, or a road provider: building the matrix counts against the job's
deadline), optimise the routes (PyVRP), draw them on the roads where the provider can, save
the results (in the transaction that completes the job).
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

    from jobworker.routes.travel_times import TravelTimes

log = logging.getLogger("jobworker.routes")


@job_kind("generate_routes", GenerateRoutesRequest)
def generate_routes(ctx: JobContext) -> JobOutcome:
    """Solve the vehicle routing problem in the payload and store the route group."""
    from dataclasses import replace
    from uuid import UUID

    from jobworker.routes.solver import InfeasibleProblem, problem_from_request, solve
    from jobworker.routes.travel_times import with_road_geometry

    try:
        request = GenerateRoutesRequest.from_payload(ctx.payload)
    except ValidationError as exc:
        raise PermanentJobError(
            f"invalid route request: {describe_validation_error(exc)}"
        ) from None
    group, settings = request.location_group, request.settings
    travel = _travel_times(request, ctx)
    profile = next(iter(travel.matrices))
    time_limit = max(0.0, min(settings.max_runtime_seconds, ctx.time_left()))
    log.info(
        f"Job {ctx.job_id}: Generating routes",
        extra={"job_id": str(ctx.job_id), "locations": len(group.locations),
               "vehicles": settings.vehicles, "time_limit_seconds": round(time_limit, 3)},
    )
    try:
        plan = solve(problem_from_request(request, travel.builder(profile)),
                     time_limit_seconds=time_limit, heartbeat=ctx.check_signals)
    except InfeasibleProblem as exc:  # the same request can never succeed: no retry
        raise PermanentJobError(str(exc)) from None
    plan = with_road_geometry(plan, travel, (group.depot.lat, group.depot.lon), profile,
                              deadline=ctx.deadline)
    plan = replace(plan, notes=[*travel.notes, *plan.notes])
    summary: dict[str, object] = {
        "total_distance_km": plan.total_distance_km,
        "total_duration_minutes": plan.total_duration_minutes,
        "vehicles_used": plan.vehicles_used,
        "locations_served": plan.locations_served,
        "stopped_early": plan.solver.stopped_early,
        "stop_reason": plan.solver.stop_reason,
        "solver_seconds": plan.solver.runtime_seconds,
        "travel": travel.summary(),
    }
    if travel.fell_back:
        summary["travel_note"] = travel.notes[0]
    if plan.solver.stopped_early:
        summary["note"] = ("the job's deadline ended the search before max_runtime_seconds; "
                           "these are the best routes found by then")

    def persist(conn: Connection) -> UUID:
        return save_plan(conn, job_id=ctx.job_id, depot_lat=group.depot.lat,
                         depot_lon=group.depot.lon, plan=plan)

    return JobOutcome(result=summary, persist=persist)


def _travel_times(request: GenerateRoutesRequest, ctx: JobContext) -> TravelTimes:
    """The request's travel times, with the deployment's provider settings.

    A provider that did not answer (unreachable, throttled) raises on, so the queue retries
    the job later; any other provider error (a stop off the road network, a profile the
    provider lacks, the deadline) fails it for good with the provider's reason.
    """
    from jobworker.aws.settings import settings as deployment
    from jobworker.routes.providers.budget import ProviderUnavailable
    from jobworker.routes.travel import TravelError
    from jobworker.routes.travel_times import travel_times

    config = deployment()
    try:
        return travel_times(request, deadline=ctx.deadline,
                            default_provider=config.travel_provider,
                            deployment_options=config.travel_options)
    except ProviderUnavailable:
        raise
    except TravelError as exc:
        raise PermanentJobError(f"travel times: {exc.reason}") from None
