"""API Lambda: create and enqueue jobs, report their state (API Gateway HTTP API, payload v2).

Each route is a thin translator: parameters in, one call into ``service``, a model out. Every
error, wherever raised (the guard before routing, validation, a use case), leaves through
``http.problem_for``. Every operation declares each answer it gives (``answers``), so the
OpenAPI document at ``/openapi.json`` is enough to generate a typed client.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from jobworker.api import http, service, ui
from jobworker.api.models import (
    BatchRequest,
    BatchResponse,
    CreateJobRequest,
    ErrorEnvelope,
    FeatureCollection,
    HealthView,
    JobPage,
    JobRequest,
    JobView,
    PayloadView,
    RoutesView,
    StatsView,
    ThroughputView,
    decode_cursor,
    encode_cursor,
)
from jobworker.aws.logs import make_logger
from jobworker.aws.observability import record_enqueued, traced
from jobworker.aws.runtime import get_settings
from jobworker.queue import DEFAULT_KIND
from jobworker.queue.progress import Progress
from jobworker.routes.models import GenerateRoutesRequest

logger = make_logger()  # Powertools' Logger, with the cheaper formatter
metrics = Metrics()
# Reads emit no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")
copy_config_to_registered_loggers(source_logger=logger, include={"jobworker"})
app = APIGatewayHttpResolver(enable_validation=True)
TITLE, VERSION = "jobworker", "1.0.0"
DESCRIPTION = "A job queue whose queue is a PostgreSQL table."
app.enable_swagger(path="/docs", title=TITLE, version=VERSION, description=DESCRIPTION)

NO_NUL = r"^[^\x00]*$"  # Postgres text cannot hold NUL
GEOJSON = "application/geo+json"
MAX_KEY_LENGTH = 200
IdempotencyKey = Annotated[str | None, Header(
    # Visible ASCII, spaces only between characters (proxies trim the ends); empty passes
    # here only so that usable_key can say what is wrong with it.
    alias="idempotency-key", max_length=MAX_KEY_LENGTH, pattern=r"^([!-~]([ -~]*[!-~])?)?$",
    description=f"Retry-safe: the same key and body return the same job. 1 to {MAX_KEY_LENGTH} "
                "visible ASCII characters (spaces only between them)")]

ERROR_DESCRIPTIONS = {
    400: "The body is not JSON", 404: "No such job (or route)",
    409: "The job is not in a state that allows this", 413: "The body is too large",
    415: "The body is not application/json", 422: "A field is wrong; each detail names one",
    500: "Misconfigured or an unexpected error (logged)",
    503: "The database is unreachable; retry after Retry-After seconds",
}
ALWAYS = (422, 500, 503)
WITH_BODY = (400, 413, 415)
FOR_A_JOB = (404,)


def answers(ok: dict[int, tuple[str, type[BaseModel]]], *errors: int) -> dict[int, OpenAPIResponse]:
    """The OpenAPI responses of one operation: its successes and the error envelope for each
    error status it can answer (validation, misconfiguration and outages always)."""
    declared: dict[int, OpenAPIResponse] = {
        status: {"description": what, "content": {"application/json": {"model": model}}}
        for status, (what, model) in ok.items()
    }
    for status in sorted({*errors, *ALWAYS}):
        declared[status] = {"description": ERROR_DESCRIPTIONS[status],
                            "content": {"application/json": {"model": ErrorEnvelope}}}
    return declared


def usable_key(key: str | None) -> str | None:
    """A blank key would match every other blank key: refuse it rather than share a job."""
    if key is not None and not key:
        raise http.InvalidRequest.of_field(
            "header.idempotency-key", "Idempotency-Key is blank: send 1 to "
            f"{MAX_KEY_LENGTH} visible ASCII characters, or leave the header out", "blank")
    return key


def _json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = content_types.APPLICATION_JSON) -> Response[str]:
    return Response(status_code=status, content_type=content_type,
                    body=model.model_dump_json(), headers=headers)


def _job_response(job: JobView, status: int) -> Response[str]:
    return _json(job, status, headers={"Location": job.links["self"]})


# --- jobs -----------------------------------------------------------------------------------


@app.post("/jobs/generate", operation_id="generateRoutes", tags=["routes"],
          responses=answers({202: ("Accepted and queued", JobView),
                             200: ("Replay of an Idempotency-Key: the same job", JobView)},
                            *WITH_BODY))
def generate_routes(body: GenerateRoutesRequest,
                    idempotency_key: IdempotencyKey = None) -> Response[str]:
    """Create a route-generation job and queue it (the seed's call)."""
    request = JobRequest.of_payload(DEFAULT_KIND, body)
    job, created = service.submit_job(request, enqueue=True,
                                      idempotency_key=usable_key(idempotency_key),
                                      request_body=request.payload, payload_field="body")
    if created:
        record_enqueued(metrics, 1)
    return _job_response(JobView.of(job), 202 if created else 200)


@app.post("/jobs", operation_id="createJob", tags=["jobs"],
          responses=answers({201: ("Created, PENDING", JobView),
                             200: ("Replay of an Idempotency-Key: the same job", JobView)},
                            *WITH_BODY))
def create_job(body: CreateJobRequest, idempotency_key: IdempotencyKey = None) -> Response[str]:
    """Create a job that stays PENDING until POST /jobs/{job_id}/enqueue."""
    job, created = service.submit_job(body, enqueue=False,
                                      idempotency_key=usable_key(idempotency_key))
    return _job_response(JobView.of(job), 201 if created else 200)


@app.post("/jobs/batch", operation_id="createJobs", tags=["jobs"],
          responses=answers({202: ("All queued, in one transaction", BatchResponse)},
                            *WITH_BODY))
def create_batch(body: BatchRequest) -> Response[str]:
    """Create and queue up to 1,000 jobs in one transaction; each keeps its run_at,
    priority and max_attempts."""
    ids = service.submit_jobs(body.jobs)
    record_enqueued(metrics, len(ids))
    return _json(BatchResponse(count=len(ids), job_ids=ids), 202)


@app.post("/jobs/<job_id>/enqueue", operation_id="enqueueJob", tags=["jobs"],
          responses=answers({200: ("Now QUEUED", JobView)}, 404, 409))
def enqueue_job(job_id: UUID) -> JobView:
    """PENDING -> QUEUED."""
    job = JobView.of(service.enqueue_job(job_id))
    record_enqueued(metrics, 1)
    return job


@app.post("/jobs/<job_id>/cancel", operation_id="cancelJob", tags=["jobs"],
          responses=answers({200: ("CANCELLED, or cancel_requested while RUNNING", JobView)},
                            404, 409))
def cancel_job(job_id: UUID) -> JobView:
    """PENDING/QUEUED -> CANCELLED; a RUNNING job is asked to stop at its next heartbeat."""
    return JobView.of(service.cancel_job(job_id))


@app.post("/jobs/<job_id>/retry", operation_id="retryJob", tags=["jobs"],
          responses=answers({200: ("QUEUED again", JobView)}, 404, 409))
def retry_job(job_id: UUID) -> JobView:
    """FAILED/CANCELLED -> QUEUED with a fresh set of attempts."""
    return JobView.of(service.retry_job(job_id))


@app.get("/jobs/stats", operation_id="getStats", tags=["jobs"],
         responses=answers({200: ("Counts", StatsView)}))
def stats() -> StatsView:
    """Jobs by progress, and the age of the oldest QUEUED job."""
    return StatsView.of(service.queue_stats())


@app.get("/jobs/throughput", operation_id="getThroughput", tags=["jobs"],
         responses=answers({200: ("Jobs finished per minute, by outcome", ThroughputView)}))
def throughput(minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60) -> ThroughputView:
    """Jobs finished per minute over the last ``minutes`` (the dashboard's chart)."""
    since = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    return ThroughputView.of(since, service.finished_per_minute(since=since))


@app.get("/jobs", operation_id="listJobs", tags=["jobs"],
         responses=answers({200: ("One page, newest first", JobPage)}))
def list_jobs(progress: Annotated[Progress | None, Query()] = None,
              kind: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response[str]:
    """Newest first; follow ``next_cursor`` for the next page."""
    before = decode_cursor(cursor) if cursor else None
    jobs = service.list_jobs(progress=progress, kind=kind, limit=limit, before=before)
    return _json(JobPage(jobs=[JobView.of(job) for job in jobs],
                         next_cursor=encode_cursor(jobs[-1]) if len(jobs) == limit else None))


@app.get("/jobs/<job_id>", operation_id="getJob", tags=["jobs"],
         responses=answers({200: ("The job", JobView)}, 404))
def get_job(job_id: UUID) -> JobView:
    """The seed's status call."""
    return JobView.of(service.get_job(job_id))


@app.get("/jobs/<job_id>/payload", operation_id="getJobPayload", tags=["jobs"],
         responses=answers({200: ("What the job was asked to do", PayloadView)}, 404))
def get_job_payload(job_id: UUID) -> PayloadView:
    """The job's payload, left out of the job itself because it can be large."""
    job = service.get_job(job_id)
    return PayloadView(job_id=job.job_id, kind=job.kind, payload=job.payload)


@app.get("/jobs/<job_id>/routes", operation_id="getRoutes", tags=["routes"],
         responses={**answers({}, 404, 409), 200: {
             "description": "The route group: JSON, or GeoJSON with ?format=geojson",
             # One schema per media type, and both under JSON too: a generated client reads
             # the first JSON media type of an answer, whichever format was asked for.
             "content": {"application/json": {"model": RoutesView | FeatureCollection},
                         GEOJSON: {"model": FeatureCollection}}}})
def get_routes(job_id: UUID,
               format: Annotated[str, Query(pattern="^(json|geojson)$")] = "json") -> Response[str]:
    """The route group a COMPLETED route-generation job produced; ``?format=geojson`` for maps."""
    answer = service.job_routes(job_id, geojson=format == "geojson")
    if format == "geojson":
        return _json(FeatureCollection.model_validate(answer), content_type=GEOJSON)
    return _json(RoutesView.model_validate(answer))


# --- the service ----------------------------------------------------------------------------


@app.get("/health", operation_id="getHealth", tags=["service"],
         responses=answers({200: ("Up, and the database answers", HealthView)}))
def health() -> HealthView:
    service.check_database()
    return HealthView(status="ok", database="ok")


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
        return http.Problem(404, "not_found", f"no such file of the dashboard: {name}").response()
    body, content_type = found
    return Response(200, content_type, body, headers={"Cache-Control": "no-cache"})


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON,
                    app.get_openapi_json_schema(title=TITLE, version=VERSION,
                                                description=DESCRIPTION))


@app.not_found
def on_unknown_route(exc: Exception) -> Response[str]:
    if app.current_event.path == "/ui/":  # the dashboard's folder: a route cannot end in "/"
        return ui_root()
    return http.NO_ROUTE.response()


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def on_invalid_request(exc: RequestValidationError) -> Response[str]:
    return http.problem_for(http.invalid_request(exc.errors())).response()


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def on_error(exc: Exception) -> Response[str]:
    return http.problem_for(exc).response()


@metrics.log_metrics
@traced
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        http.guard_request(event, get_settings().max_body_bytes)
    except Exception as exc:  # refused before routing: the same table, API Gateway's format
        return http.problem_for(exc).gateway()
    return app.resolve(event, context)
