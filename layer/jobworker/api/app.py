"""API Lambda: create and enqueue jobs, report their state (API Gateway HTTP API, payload v2)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobworker.api import http, service, ui
from jobworker.api.models import (
    BatchRequest,
    BatchResponse,
    CreateJobRequest,
    HealthView,
    JobPage,
    JobView,
    StatsView,
    ThroughputView,
    decode_cursor,
    encode_cursor,
)
from jobworker.aws.observability import record_enqueued, traced
from jobworker.queue import NewJob
from jobworker.queue.progress import Progress
from jobworker.routes.models import GenerateRoutesRequest

logger = Logger()
metrics = Metrics()
# Reads emit no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")
copy_config_to_registered_loggers(source_logger=logger, include={"jobworker"})
app = APIGatewayHttpResolver(enable_validation=True)
TITLE, VERSION = "jobworker", "1.0.0"
DESCRIPTION = "A job queue whose queue is a PostgreSQL table."
app.enable_swagger(path="/docs", title=TITLE, version=VERSION, description=DESCRIPTION)

NO_NUL = r"^[^\x00]*$"  # Postgres text cannot hold NUL
IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=200,
                                               pattern=NO_NUL,
                                               description="Retry-safe: same key, same job")]


def _job_response(job: JobView, status: int) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=job.model_dump_json(), headers={"Location": job.links["self"]})


@app.post("/jobs/generate", responses={202: {"description": "Accepted and queued"}})
def generate_routes(body: GenerateRoutesRequest,
                    idempotency_key: IdempotencyKey = None) -> Response[str]:
    """Create a route-generation job and queue it (the seed's call). 200 on an idempotent replay."""
    job, created = service.submit_job(
        kind="generate_routes", payload=body.model_dump(mode="json", exclude_unset=True),
        enqueue=True, idempotency_key=idempotency_key,
    )
    if created:
        record_enqueued(metrics, 1)
    return _job_response(JobView.of(job), 202 if created else 200)


@app.post("/jobs")
def create_job(body: CreateJobRequest, idempotency_key: IdempotencyKey = None) -> Response[str]:
    """Create a job that stays PENDING until POST /jobs/{job_id}/enqueue."""
    job, created = service.submit_job(
        kind=body.kind, payload=body.payload, enqueue=False, idempotency_key=idempotency_key,
        priority=body.priority, max_attempts=body.max_attempts, run_at=body.run_at,
        request_body=body.model_dump(mode="json"),
    )
    return _job_response(JobView.of(job), 201 if created else 200)


@app.post("/jobs/batch")
def create_batch(body: BatchRequest) -> Response[str]:
    """Create and queue up to 1,000 jobs in one transaction."""
    ids = service.submit_jobs([
        NewJob(kind=item.kind, payload=item.payload, priority=item.priority) for item in body.jobs
    ])
    record_enqueued(metrics, len(ids))
    answer = BatchResponse(count=len(ids), job_ids=ids)
    return Response(202, content_types.APPLICATION_JSON, answer.model_dump_json())


@app.post("/jobs/<job_id>/enqueue")
def enqueue_job(job_id: UUID) -> JobView:
    """PENDING -> QUEUED."""
    job = JobView.of(service.enqueue_job(job_id))
    record_enqueued(metrics, 1)
    return job


@app.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: UUID) -> JobView:
    """PENDING/QUEUED -> CANCELLED; a RUNNING job is asked to stop at its next heartbeat."""
    return JobView.of(service.cancel_job(job_id))


@app.post("/jobs/<job_id>/retry")
def retry_job(job_id: UUID) -> JobView:
    """FAILED/CANCELLED -> QUEUED with a fresh set of attempts."""
    return JobView.of(service.retry_job(job_id))


@app.get("/jobs/stats")
def stats() -> StatsView:
    """Jobs by progress, and the age of the oldest QUEUED job."""
    return StatsView.of(service.queue_stats())


@app.get("/jobs/throughput")
def throughput(minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60) -> ThroughputView:
    """Jobs finished per minute over the last ``minutes`` (the dashboard's chart)."""
    since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    return ThroughputView.of(since, service.finished_per_minute(since=since))


@app.get("/jobs")
def list_jobs(progress: Annotated[Progress | None, Query()] = None,
              kind: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response[str]:
    """Newest first; follow ``next_cursor`` for the next page."""
    try:
        before = decode_cursor(cursor) if cursor else None
    except ValueError as exc:
        return http.error_response(422, "validation_error", str(exc), [{"field": "query.cursor"}])
    jobs = service.list_jobs(progress=progress, kind=kind, limit=limit, before=before)
    page = JobPage(jobs=[JobView.of(job) for job in jobs],
                   next_cursor=encode_cursor(jobs[-1]) if len(jobs) == limit else None)
    return Response(200, content_types.APPLICATION_JSON, page.model_dump_json())


@app.get("/jobs/<job_id>")
def get_job(job_id: UUID,
            include_payload: Annotated[bool, Query(description="Add the job's payload")] = False,
            ) -> JobView:
    """The seed's status call."""
    return JobView.of(service.get_job(job_id), with_payload=include_payload)


@app.get("/jobs/<job_id>/routes")
def get_routes(job_id: UUID,
               format: Annotated[str, Query(pattern="^(json|geojson)$")] = "json") -> Any:
    """The route group a COMPLETED route-generation job produced; ``?format=geojson`` for maps."""
    return service.job_routes(job_id, geojson=format == "geojson")


@app.get("/health")
def health() -> Response[str]:
    service.check_database()
    return Response(200, content_types.APPLICATION_JSON,
                    HealthView(status="ok", database="ok").model_dump_json())


@app.get("/ui", include_in_schema=False)
def ui_root() -> Response[str]:
    return Response(308, content_types.TEXT_PLAIN, "", headers={"Location": "/ui/index.html"})


@app.get("/ui/<name>", include_in_schema=False)
def ui_file(name: str) -> Response[str]:
    """The dashboard (static files; the page calls the API like any client)."""
    if name == "config.json":
        from jobworker.aws.runtime import get_settings

        return Response(200, content_types.APPLICATION_JSON,
                        ui.page_config(get_settings().tile_url))
    return _ui_answer(name)


@app.get("/ui/vendor/<name>", include_in_schema=False)
def ui_vendor_file(name: str) -> Response[str]:
    return _ui_answer(f"vendor/{name}")


def _ui_answer(name: str) -> Response[str]:
    found = ui.static_file(name)
    if found is None:
        return http.error_response(404, "not_found", f"no such file of the dashboard: {name}")
    body, content_type = found
    return Response(200, content_type, body, headers={"Cache-Control": "no-cache"})


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON,
                    app.get_openapi_json_schema(title=TITLE, version=VERSION,
                                                description=DESCRIPTION))


@app.not_found
def on_unknown_route(exc: Exception) -> Response[str]:
    return http.error_response(404, "not_found", "no such route; see /docs")


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def on_invalid_request(exc: RequestValidationError) -> Response[str]:
    return http.validation_response(exc.errors())


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def on_error(exc: Exception) -> Response[str]:
    return http.response_for_exception(exc)


@metrics.log_metrics
@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return http.guard_request(event) or app.resolve(event, context)
