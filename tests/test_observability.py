"""What the handlers emit for operators: Powertools logs (JSON, correlation id), EMF metrics
and X-Ray traces.

The honest check is the one Lambda's log pipeline would make: run the handler in its own
process (``jobworker invoke``) and read what it printed. Traces are caught the way the X-Ray
daemon would catch them: on a UDP socket that the X-Ray SDK is pointed at.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.engine import make_engine
from jobworker.aws.settings import Settings
from jobworker.queue import NewJob
from tests.conftest import TABLES_TO_EMPTY, LambdaClient

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "jobworker-observability-test"
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
TRACE_PARENT = "53995c3f42cd8ad8"
UNREACHABLE_DATABASE = "postgresql://postgres@/postgres?host=/tmp/jobworker-no-server-here"
# The jobs of the observed poller run, and how each one ends.
POLLER_JOBS = [
    NewJob(kind="noop"),
    NewJob(kind="noop"),
    NewJob(kind="simulate", payload={"seconds": 0, "fail": "permanent"}),
    NewJob(kind="simulate", payload={"seconds": 0, "fail": "transient"}),
]


# --- running a handler the way Lambda does: its own process, its own environment ---------


def lambda_environment(service: str, database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without anything a handler reads (an earlier in-process
    handler load leaves POWERTOOLS_* defaults behind), plus what the template would set."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {
        name: value for name, value in os.environ.items()
        if name not in settings and name != "TEST_DATABASE_URL"
        and not name.startswith(("POWERTOOLS_", "AWS_", "_X_AMZN", "LAMBDA_"))
    }
    env.update({"DATABASE_URL": database_url, "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE, "POWERTOOLS_LOG_LEVEL": "INFO",
                "POWERTOOLS_TRACE_DISABLED": "true", **extra})
    return env


@dataclass
class Invocation:
    """What one ``jobworker invoke`` printed, sorted into log lines, EMF documents, answer."""

    logs: list[dict[str, Any]]
    metric_documents: list[dict[str, Any]]
    answer: Any


def invoke(handler: str, event: dict[str, Any], env: dict[str, str], folder: Path,
           timeout: float = 3) -> Invocation:
    event_file = folder / f"{handler}-event-{uuid.uuid4().hex[:8]}.json"
    event_file.write_text(json.dumps(event))
    done = subprocess.run(
        [sys.executable, "-m", "jobworker.dev.cli", "invoke", handler, "--event", str(event_file),
         "--timeout", str(timeout)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *printed, last = done.stdout.strip().splitlines()
    documents = [json.loads(line) for line in printed]  # every line must be JSON
    return Invocation(
        logs=[doc for doc in documents if "_aws" not in doc],
        metric_documents=[doc for doc in documents if "_aws" in doc],
        answer=json.loads(last),
    )


class XRayDaemon:
    """A UDP socket standing in for the X-Ray daemon; ``segments()`` decodes what arrived."""

    HEADER = {"format": "json", "version": 1}

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def segments(self) -> list[dict[str, Any]]:
        """Every document received so far (the sender has exited: all of it is queued)."""
        received = []
        while True:
            try:
                packet = self.sock.recv(65535)
            except BlockingIOError:
                return received
            header, body = packet.decode().split("\n", 1)
            assert json.loads(header) == self.HEADER
            received.append(json.loads(body))

    def close(self) -> None:
        self.sock.close()


@dataclass
class PollerRun:
    invocation: Invocation
    segments: list[dict[str, Any]]
    job_ids: dict[str, list[str]]  # kind -> ids, in creation order


@pytest.fixture(scope="module")
def poller_run(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PollerRun]:
    """One traced poller invocation over POLLER_JOBS, observed by several tests below.

    Tracing is on as in Lambda: Powertools only traces when LAMBDA_TASK_ROOT says it runs in
    Lambda, and the X-Ray SDK then takes its parent segment from _X_AMZN_TRACE_ID.
    """
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} CASCADE"))
        ids = queue.create_jobs(conn, POLLER_JOBS)
    engine.dispose()
    job_ids: dict[str, list[str]] = {}
    for new, job_id in zip(POLLER_JOBS, ids, strict=True):
        job_ids.setdefault(new.kind, []).append(str(job_id))
    daemon = XRayDaemon()
    env = lambda_environment(
        "jobworker-poller", database_url,
        POWERTOOLS_TRACE_DISABLED="false",
        LAMBDA_TASK_ROOT=str(ROOT / "functions" / "poller"),
        _X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Parent={TRACE_PARENT};Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS=daemon.address,
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
    )
    try:
        invocation = invoke("poller", {"source": "jobworker.schedule"}, env,
                            tmp_path_factory.mktemp("poller"))
        yield PollerRun(invocation, daemon.segments(), job_ids)
    finally:
        daemon.close()


# --- Logger -------------------------------------------------------------------------------


def test_logger__library_logs_are_powertools_json_with_the_lambda_context(
    poller_run: PollerRun,
) -> None:
    worker_logs = [log for log in poller_run.invocation.logs
                   if log.get("name") == "jobworker.worker"]
    assert worker_logs, "jobworker's own loggers printed nothing through Powertools"
    for log in worker_logs:
        assert log["service"] == "jobworker-poller"
        assert log["function_name"] == "jobworker-poller"
        assert log["function_request_id"]
        assert {"level", "location", "message", "timestamp", "cold_start"} <= log.keys()
        assert log["xray_trace_id"] == TRACE_ROOT


@pytest.mark.parametrize("wording", ["Found job", "Starting job"])
def test_logger__poller_lines_carry_job_id_kind_and_attempt(
    poller_run: PollerRun, wording: str,
) -> None:
    lines = {log["job_id"]: log for log in poller_run.invocation.logs
             if log["message"] == wording}
    for kind, ids in poller_run.job_ids.items():
        for job_id in ids:
            assert job_id in lines, f"no {wording!r} line for {kind} job {job_id}"
            assert (lines[job_id]["kind"], lines[job_id]["attempt"]) == (kind, 1)


def test_logger__outcome_lines_name_the_job_and_the_error(poller_run: PollerRun) -> None:
    def about(job_id: str, level: str) -> list[dict[str, Any]]:
        return [log for log in poller_run.invocation.logs
                if log.get("job_id") == job_id and log["level"] == level]

    permanent, transient = poller_run.job_ids["simulate"]
    assert [log["error"] for log in about(permanent, "ERROR")] == ["simulated permanent failure"]
    assert [log["error"] for log in about(transient, "WARNING")] == ["simulated transient failure"]
    for job_id in poller_run.job_ids["noop"]:
        assert any("completed successfully" in log["message"] for log in about(job_id, "INFO"))


def test_logger__api_lines_carry_the_request_id_as_correlation_id(tmp_path: Path) -> None:
    """GET /health with the database down logs "Database unavailable" from jobworker.api.http."""
    event = json.loads((ROOT / "events" / "api_health.json").read_text())
    request_id = f"obs-{uuid.uuid4().hex[:12]}="
    event["requestContext"]["requestId"] = request_id
    env = lambda_environment("jobworker-api", UNREACHABLE_DATABASE)

    run = invoke("api", event, env, tmp_path)

    assert run.answer["statusCode"] == 503
    (logged,) = [log for log in run.logs if log["message"] == "Database unavailable"]
    assert logged["name"] == "jobworker.http"
    assert logged["level"] == "ERROR"
    assert logged["service"] == "jobworker-api"
    assert logged["correlation_id"] == request_id


def test_logger__api_correlation_id_is_set_on_successful_requests_too(api: LambdaClient) -> None:
    from jobworker.dev.local import LocalContext, load_module
    from jobworker.dev.server import request_to_event

    event = request_to_event("GET", "/health", {}, b"")
    answer = api.handler(event, LocalContext("jobworker-api", 30))
    assert answer["statusCode"] == 200
    assert load_module("api").logger.get_correlation_id() == event["requestContext"]["requestId"]


# --- Metrics ------------------------------------------------------------------------------


def test_metrics__poller_emits_one_document_with_every_count(poller_run: PollerRun) -> None:
    (document,) = poller_run.invocation.metric_documents
    assert poller_run.invocation.answer["claimed"] == len(POLLER_JOBS)
    expected = {
        "JobsClaimed": [4.0], "JobsCompleted": [2.0], "JobsFailed": [1.0],
        "JobsRetried": [1.0], "JobsReleased": [0.0], "LeasesLost": [0.0],
    }
    assert {name: document[name] for name in expected} == expected
    durations = document["JobDurationSeconds"]
    assert len(durations) == len(POLLER_JOBS)
    assert all(0 <= seconds < 5 for seconds in durations)


def test_metrics__a_busy_invocation_still_emits_one_document_without_warnings(
        engine: Engine, database_url: str, tmp_path: Path) -> None:
    """Powertools prints a document early when a metric reaches 100 values; an invocation
    that ran hundreds of jobs must still end with one complete document (and no warning)."""
    jobs = 250
    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob(kind="noop")] * jobs)
    env = lambda_environment("jobworker-poller", database_url, BATCH_SIZE="100",
                             PYTHONWARNINGS="error::UserWarning")
    invocation = invoke("poller", {"source": "jobworker.schedule"}, env, tmp_path)
    (document,) = invocation.metric_documents
    assert document["JobsCompleted"] == [float(jobs)]
    assert len(document["JobDurationSeconds"]) == 99


def test_metrics__namespace_units_and_service_dimension(poller_run: PollerRun) -> None:
    (document,) = poller_run.invocation.metric_documents
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["service"]]
    assert document["service"] == "jobworker-poller"
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units["JobsClaimed"] == "Count"
    assert units["JobDurationSeconds"] == "Seconds"


def emitted(output: str) -> dict[str, Any]:
    (document,) = [json.loads(line) for line in output.splitlines()
                   if line.startswith('{"_aws"')]
    return dict(document)


def test_metrics__api_counts_one_enqueued_job_per_generate(
    api: LambdaClient, engine: Engine, capsys: pytest.CaptureFixture[str],
) -> None:
    body = json.loads(json.loads((ROOT / "events" / "api_create_job.json").read_text())["body"])
    capsys.readouterr()
    assert api("POST", "/jobs/generate", body).status == 202
    assert emitted(capsys.readouterr().out)["JobsEnqueued"] == [1.0]


def test_metrics__api_counts_every_job_of_a_batch(
    api: LambdaClient, engine: Engine, capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    answer = api("POST", "/jobs/batch", {"jobs": [{"kind": "noop"}] * 7})
    assert answer.status == 202
    assert emitted(capsys.readouterr().out)["JobsEnqueued"] == [7.0]


# --- Tracer -------------------------------------------------------------------------------


def test_tracer__handler_runs_in_a_lambda_handler_subsegment_annotated_with_the_service(
    poller_run: PollerRun,
) -> None:
    handler_segments = [segment for segment in poller_run.segments
                        if segment.get("name") == "## lambda_handler"]
    assert len(handler_segments) == 1, [segment.get("name") for segment in poller_run.segments]
    (segment,) = handler_segments
    assert segment["trace_id"] == TRACE_ROOT
    assert segment["parent_id"] == TRACE_PARENT  # Lambda's own segment, from _X_AMZN_TRACE_ID
    assert segment["annotations"]["Service"] == "jobworker-poller"
    assert segment["annotations"]["ColdStart"] is True
    response = segment["metadata"]["jobworker-poller"]["lambda_handler response"]
    assert response == poller_run.invocation.answer


def test_tracer__database_calls_are_subsegments_of_the_handler(poller_run: PollerRun) -> None:
    (handler,) = [segment for segment in poller_run.segments
                  if segment.get("name") == "## lambda_handler"]
    sql = [segment for segment in poller_run.segments if "sql" in segment]
    assert sql, "no SQL subsegment: the database calls are not traced"
    assert all(segment["trace_id"] == TRACE_ROOT for segment in sql)
    assert any(segment["parent_id"] == handler["id"] for segment in sql)
