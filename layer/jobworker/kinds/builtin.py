"""Kinds every worker knows besides route generation: ``noop`` and ``simulate``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobworker.kinds.registry import JobContext, JobOutcome, job_kind
from jobworker.problems import describe, field_problems
from jobworker.queue.errors import PermanentJobError, TransientJobError


@job_kind("noop")
def noop(ctx: JobContext) -> JobOutcome | None:
    """Returns at once: what benchmarks measure is the queue, not the work."""
    return None


class SimulatePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(10.0, ge=0, le=900, description="How long the work takes")
    fail: Literal["transient", "permanent"] | None = Field(
        None, description="End every attempt with this kind of error (for demos and drills)"
    )


@job_kind("simulate", SimulatePayload)
def simulate(ctx: JobContext) -> JobOutcome | None:
    """The seed's placeholder work: sleep ``seconds`` (default 10), honouring cancellation."""
    try:
        payload = SimulatePayload.model_validate(ctx.payload)
    except ValidationError as exc:
        problems = describe(field_problems(exc.errors()))
        raise PermanentJobError(f"invalid simulate payload: {problems}") from None
    ctx.wait(payload.seconds)
    if payload.fail == "permanent":
        raise PermanentJobError("simulated permanent failure")
    if payload.fail == "transient":
        raise TransientJobError("simulated transient failure")
    return JobOutcome(result={"slept_seconds": payload.seconds})
