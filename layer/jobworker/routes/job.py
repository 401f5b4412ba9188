"""The ``generate_routes`` job: parse the payload, solve within the deadline, store the routes.

The seed's sketch, made real: fetch the location group (it travels in the payload), optimise
the routes (PyVRP), save the results (in the transaction that completes the job). Every phase
(travel matrices, solver setup, search) is bounded by the job's deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from jobworker.kinds import JobContext, JobOutcome, Limits, NotEnoughTime, SetupTime, job_kind
from jobworker.problems import FieldProblem
from jobworker.queue.errors import PermanentJobError, TransientJobError
from jobworker.routes.models import GenerateRoutesRequest, describe_validation_error
from jobworker.routes.store import save_plan

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection

log = logging.getLogger("jobworker.routes")


def route_admission(request: GenerateRoutesRequest, limits: Limits) -> list[FieldProblem]:
    """What the deployment's poller could never hold of a route request: its memory (a job
    larger would run out of it on every attempt)."""
    from jobworker.routes.checks import memory_problem

    too_big = memory_problem(request, limits.poller_memory_mb)
    if too_big is None:
        return []
    return [FieldProblem("location_group.locations", too_big, "too_large_for_poller")]


def setup_time(stops: int) -> SetupTime:
    """What cannot be cut short in a route job of ``stops`` stops: its matrices and PyVRP's
    setup (routes.solver.setup_seconds)."""
    from jobworker.routes.solver import setup_seconds

    return SetupTime(setup_seconds(stops), f"setting up {stops} stops")


def route_setup(payload: Mapping[str, Any]) -> SetupTime | None:
    """The setup of a route job from its payload's size alone, before it is validated (the
    poller asks before it starts the job); None for a payload without a list of stops."""
    group = payload.get("location_group")
    locations = group.get("locations") if isinstance(group, Mapping) else None
    return setup_time(len(locations)) if isinstance(locations, list) else None


@job_kind("generate_routes", GenerateRoutesRequest, links=("routes",), admit=route_admission,
          setup=route_setup)
def generate_routes(ctx: JobContext) -> JobOutcome:
    """Solve the vehicle routing problem in the payload and store the route group."""
    from uuid import UUID

    from jobworker.aws.settings import settings as deployment_settings
    from jobworker.routes.build import OutOfTime, attach_geometry, problem_from_request
    from jobworker.routes.solver import InfeasibleProblem, solve
    from jobworker.routes.travel import ProviderUnavailable, TravelError

    try:
        request = GenerateRoutesRequest.from_payload(ctx.payload)
    except ValidationError as exc:
        raise PermanentJobError(
            f"invalid route request: {describe_validation_error(exc)}"
        ) from None
    deployment = deployment_settings()
    request = with_default_travel(request, deployment.travel_provider)
    group, settings = request.location_group, request.settings
    stops = len(group.locations)
    # Setup (matrices, PyVRP's first local search) cannot be cut short: start only with time
    # for it, else hand the job back unstarted to an invocation that has the time (the poller
    # checks before it starts the job; this is for time it lost since).
    setup = setup_time(stops)
    if ctx.time_left() < setup.seconds:
        raise NotEnoughTime(setup, ctx.time_left())
    log.info(
        f"Job {ctx.job_id}: Generating routes",
        extra={"job_id": str(ctx.job_id), "locations": stops,
               "vehicles": sum(v.count for v in request.fleet()),
               "time_left_seconds": round(ctx.time_left(), 3)},
    )
    deadline = time.monotonic() + ctx.time_left()
    try:
        problem = problem_from_request(request, deadline=deadline,
                                       deployment=deployment.travel_options)
        time_limit = max(0.0, min(settings.max_runtime_seconds, ctx.time_left()))
        plan = solve(problem, time_limit_seconds=time_limit, heartbeat=ctx.check_signals)
    except InfeasibleProblem as exc:  # the same request can never succeed: no retry
        raise PermanentJobError(str(exc)) from None
    except ProviderUnavailable as exc:  # the server or service may answer a later attempt
        raise TransientJobError(f"travel times unavailable: {exc.reason}") from None
    except TravelError as exc:  # a stop off the roads, a profile without data: for good
        raise PermanentJobError(f"travel times: {exc.reason}") from None
    except OutOfTime as exc:
        raise TransientJobError(str(exc)) from None
    plan = attach_geometry(plan, request, deployment.travel_options)
    summary: dict[str, object] = {
        **plan.totals(),
        "stop_reason": plan.solver.stop_reason,
        "solver_seconds": plan.solver.runtime_seconds,
        "travel": plan.travel,
    }
    if plan.solver.stopped_early:
        summary["note"] = ("the job's deadline ended the search before max_runtime_seconds; "
                           "these are the best routes found by then")
    first = group.all_depots[0]

    def persist(conn: Connection) -> UUID:
        return save_plan(conn, job_id=ctx.job_id, depot_lat=first.lat, depot_lon=first.lon,
                         plan=plan)

    return JobOutcome(result=summary, persist=persist)


def with_default_travel(request: GenerateRoutesRequest, provider: str) -> GenerateRoutesRequest:
    """The request, with the deployment's provider (TRAVEL_PROVIDER) if it names none."""
    from jobworker.routes.models import TravelSettings

    if request.settings.travel is not None or request.matrix is not None:
        return request
    if provider == "haversine":
        return request
    travel = TravelSettings(provider=provider)
    return request.model_copy(
        update={"settings": request.settings.model_copy(update={"travel": travel})})
