"""The template's CloudWatch dashboard and Logs Insights saved queries, checked against what the
handlers really emit: the metrics against the code, the queries against log lines captured from
real poller and sweeper invocations (each in its own process, as Lambda runs them)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob
from tests.test_observability import invoke, lambda_environment
from tests.test_template import ROOT, resources, string_constants, template

BUILTIN_FIELD = re.compile(r"^@\w+$")
PLACEHOLDER_JOB_ID = "00000000-0000-0000-0000-000000000000"


def dashboard_body() -> dict[str, Any]:
    """The dashboard JSON with every ${...} of its Fn::Sub replaced by the name it stands for."""
    (dashboard,) = resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    parameters = template()["Parameters"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(parameters[name]["Default"]) if name in parameters else name

    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([\w:.]+)\}", value, body))
    return parsed


def dashboard_metrics() -> list[list[Any]]:
    """[namespace, metric, dimension, value, ...] of every metric row (expressions left out)."""
    rows = []
    for widget in dashboard_body()["widgets"]:
        for row in widget["properties"]["metrics"]:
            names = [item for item in row if isinstance(item, str)]
            if names:
                rows.append(names)
    return rows


def emitted_names() -> set[str]:
    return set().union(*(string_constants(path)
                         for path in (ROOT / "layer" / "jobworker").rglob("*.py")))


def test_dashboard__our_metrics_are_ones_the_handlers_emit_with_their_dimension() -> None:
    namespace = template()["Parameters"]["MetricsNamespace"]["Default"]
    service = template()["Parameters"]["ServiceName"]["Default"]
    ours = [row for row in dashboard_metrics() if row[0] == namespace]
    assert ours
    for row in ours:
        assert row[1] in emitted_names(), row
        assert row[2:] == ["service", service], row


def test_dashboard__shows_what_an_operator_watches() -> None:
    metrics = {(row[0], row[1]) for row in dashboard_metrics()}
    namespace = template()["Parameters"]["MetricsNamespace"]["Default"]
    for name in ("QueueDepth", "OldestQueuedAgeSeconds", "JobsCompleted", "JobsFailed",
                 "JobDurationSeconds"):
        assert (namespace, name) in metrics, name
    lambda_rows = [row for row in dashboard_metrics() if row[0] == "AWS/Lambda"]
    for metric in ("Errors", "Throttles"):
        watched = {row[3] for row in lambda_rows if row[1] == metric}
        assert watched == {"ApiFunction", "PollerFunction", "SweeperFunction"}, metric
    expressions = json.dumps(dashboard_body())
    assert "DatabaseConnections" in expressions
    assert "ClientConnections" in expressions


# --- Logs Insights ---------------------------------------------------------------------------


def saved_queries() -> dict[str, str]:
    return {name: res["Properties"]["QueryString"]
            for name, res in resources("AWS::Logs::QueryDefinition").items()}


def named_fields(query: str) -> set[str]:
    """Log fields a query reads: its ``fields`` list, comparisons, ispresent() and like."""
    found: set[str] = set()
    for line in query.splitlines():
        command = line.strip().lstrip("|").strip()
        if command.startswith("fields "):
            found |= {name.strip() for name in command.removeprefix("fields ").split(",")}
        found |= set(re.findall(r"ispresent\((\w+)\)", command))
        found |= set(re.findall(r"(\w+)\s*(?:=|like)\s*[\"/]", command))
    return {name for name in found if not BUILTIN_FIELD.match(name)}


def patterns(query: str) -> list[str]:
    return re.findall(r"like /([^/]+)/", query)


@pytest.fixture(scope="module")
def captured_logs(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Log lines of a poller run (a job that completes, one that fails for good, one that will be
    retried) and of a sweeper pass that takes back a job whose lease ran out."""
    from sqlalchemy import text

    from jobworker.aws.engine import make_engine

    engine: Engine = make_engine(database_url)
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs, route_groups CASCADE"))
        orphan, _ = queue.create_job(conn, NewJob(kind="noop"), enqueue=True, now=long_ago)
        queue.claim_batch(conn, owner="gone", limit=1, lease_seconds=1, now=long_ago)
        failing = queue.create_jobs(conn, [
            NewJob(kind="noop"),
            NewJob(kind="simulate", payload={"seconds": 0, "fail": "permanent"}),
            NewJob(kind="simulate", payload={"seconds": 0, "fail": "transient"}),
        ])
    engine.dispose()
    folder: Path = tmp_path_factory.mktemp("logs")
    sweeper = invoke("sweeper", {"source": "jobworker.schedule"},
                     lambda_environment("jobworker-sweeper", database_url), folder)
    poller = invoke("poller", {"source": "jobworker.schedule"},
                    lambda_environment("jobworker-poller", database_url), folder)
    return {"lines": sweeper.logs + poller.logs, "failed_job": str(failing[1]),
            "orphan": str(orphan.job_id)}


def test_queries__exist_for_the_seeds_greps() -> None:
    assert set(saved_queries()) == {"JobStoryQuery", "JobFailuresQuery", "LostLeasesQuery"}


@pytest.mark.parametrize("name", sorted(saved_queries()))
def test_query__names_only_fields_the_logs_carry(name: str, captured_logs: dict[str, Any]) -> None:
    carried = set().union(*(line.keys() for line in captured_logs["lines"]))
    missing = named_fields(saved_queries()[name]) - carried
    assert not missing, f"{name} reads {sorted(missing)}, which no log line has"


@pytest.mark.parametrize("name", ["JobFailuresQuery", "LostLeasesQuery"])
def test_query__patterns_match_real_messages(name: str, captured_logs: dict[str, Any]) -> None:
    messages = [line["message"] for line in captured_logs["lines"]]
    for pattern in patterns(saved_queries()[name]):
        assert any(re.search(pattern, message) for message in messages), (pattern, messages)


def test_failures_query__its_filter_finds_the_failed_job_with_its_reason(
        captured_logs: dict[str, Any]) -> None:
    query = saved_queries()["JobFailuresQuery"]
    assert 'level = "ERROR"' in query
    (pattern,) = patterns(query)
    selected = [line for line in captured_logs["lines"] if "job_id" in line and (
        line["level"] == "ERROR" or re.search(pattern, line["message"]))]
    reasons = {line["job_id"]: line.get("error") for line in selected}
    assert reasons.get(captured_logs["failed_job"])  # the permanent failure, with why
    assert len(reasons) >= 2  # and the transient one that will be retried


def test_lost_leases_query__finds_the_recovered_orphan(captured_logs: dict[str, Any]) -> None:
    (pattern,) = patterns(saved_queries()["LostLeasesQuery"])
    found = {line.get("job_id") for line in captured_logs["lines"]
             if re.search(pattern, line["message"])}
    assert captured_logs["orphan"] in found


def test_story_query__one_job_id_gives_its_whole_life(captured_logs: dict[str, Any]) -> None:
    query = saved_queries()["JobStoryQuery"]
    assert f'job_id = "{PLACEHOLDER_JOB_ID}"' in query  # the one thing to edit
    story = [line["message"] for line in captured_logs["lines"]
             if line.get("job_id") == captured_logs["failed_job"]]
    assert any(message.startswith("Found job") for message in story), story
    assert any(message.startswith("Starting job") for message in story), story
    assert any(message.endswith("failed") for message in story), story
