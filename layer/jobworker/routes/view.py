"""The read model of route generation: a job's stored route group, as JSON or GeoJSON."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine

from jobworker import queue


def job_routes(engine: Engine, job_id: UUID, *, geojson: bool) -> dict[str, Any]:
    """The route group of a COMPLETED generate_routes job, as JSON or GeoJSON."""
    from jobworker.queue.errors import RoutesNotAvailable
    from jobworker.routes.geojson import plan_to_geojson
    from jobworker.routes.models import Depot
    from jobworker.routes.store import load_plan

    with engine.connect() as conn:
        job = queue.get_job(conn, job_id)
        stored = load_plan(conn, job.route_group_id) if job.route_group_id else None
    if stored is None:
        raise RoutesNotAvailable(job_id, job.kind, job.progress)
    if geojson:
        return plan_to_geojson(stored.plan, Depot(lat=stored.depot_lat, lon=stored.depot_lon))
    return {
        "job_id": str(job_id),
        "route_group_id": str(stored.route_group_id),
        "created_at": stored.created_at.isoformat(),
        "depot": {"lat": stored.depot_lat, "lon": stored.depot_lon},
        **stored.plan.to_dict(),
    }
