"""What of a job leaves through the API: the row's shape, less what stays private, with worker
names and error texts in their public form (raw exception text and Lambda request ids stay in
the logs and the table)."""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.api.models import JobView
from jobworker.api.public import public_owner
from jobworker.aws import runtime
from jobworker.aws.engine import make_engine
from jobworker.kinds import JobContext, job_kind
from jobworker.poller.clock import Budget
from jobworker.poller.heartbeat import Heartbeat
from jobworker.poller.loop import PollerOptions, run_poller
from jobworker.queue import Job, NewJob
from jobworker.queue.errors import PermanentJobError
from jobworker.queue.schema import migrate
from tests.fake_clock import FakeClock

REQUEST_ID = "5a7c2f9e-0d1b-4c3a-9e8f-7b6a5d4c3b2a"  # what a Lambda request id looks like
OWNER = f"poller:{REQUEST_ID}"
SECRET = "sk_live_123"


class Timeout(Exception):
    """An exception whose type name ends in none of Error, Exception, Exit, Interrupt, Fault."""


RAISED = {
    "timeout": lambda: Timeout(f"token={SECRET} while calling https://maps.example/v1"),
    "remote_disconnected": lambda: http.client.RemoteDisconnected(
        f"Remote end closed connection without response (Authorization: Bearer {SECRET})"),
    "runtime_error": lambda: RuntimeError(f"connection to 10.0.3.7 refused ({SECRET})"),
    # A kind's own message, written for the job's client, even one that reads like a type.
    "job_failure": lambda: PermanentJobError("KeyError: no depot named 'north' in this request"),
}


@job_kind("raises")
def raises(ctx: JobContext) -> None:
    raise RAISED[ctx.payload["what"]]()


def failed_through_the_poller(engine: Engine, what: str) -> UUID:
    """A job of kind ``raises`` run by one poller invocation (fake clock): it ends FAILED."""
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="raises", payload={"what": what})],
                                      max_attempts=1)
    options = PollerOptions(owner=OWNER, batch_size=10, lease_seconds=30, poll_interval=0.2,
                            idle_exit_seconds=0.1)
    heartbeat = Heartbeat(engine, owner=OWNER, lease_seconds=30, background=False)
    assert run_poller(engine, options, Budget.seconds(FakeClock(), 5),
                      heartbeat=heartbeat).failed == 1
    return job_id


def test_job_view__shows_every_field_of_the_row_but_the_private_ones() -> None:
    """One shape: a column added to Job shows in the API, or is listed as private."""
    row_fields = {field.name for field in dataclasses.fields(Job)}
    assert row_fields - JobView.HIDDEN <= set(JobView.model_fields)
    assert row_fields >= JobView.HIDDEN
    assert not JobView.HIDDEN & set(JobView.model_fields)


def running_job(engine: Engine, **new: Any) -> queue.ClaimedJob:
    with engine.begin() as conn:
        queue.create_job(conn, NewJob(kind="noop", **new), enqueue=True)
        (claimed,) = queue.claim_batch(conn, owner=OWNER, limit=1, lease_seconds=60)
    return claimed


def fail(engine: Engine, job: queue.ClaimedJob, error: str) -> None:
    with engine.begin() as conn:
        queue.fail_job(conn, owner=OWNER, job_id=job.job_id, token=job.token, error=error,
                       permanent=True)


def test_get__running_job_names_its_worker_without_the_request_id(
        api: Any, engine: Engine) -> None:
    job = running_job(engine)

    answer = api("GET", f"/jobs/{job.job_id}")

    assert answer.status == 200, answer.text
    assert answer.json["lease_owner"] == public_owner(OWNER)
    assert answer.json["lease_expires_at"] is not None
    assert REQUEST_ID not in answer.text


@pytest.mark.parametrize(("what", "type_name"), [
    ("timeout", "Timeout"), ("remote_disconnected", "RemoteDisconnected"),
    ("runtime_error", "RuntimeError")])
def test_get__an_unexpected_exception_shows_its_type_and_its_text_is_only_logged(
        api: Any, engine: Engine, caplog: pytest.LogCaptureFixture, what: str,
        type_name: str) -> None:
    caplog.set_level(logging.ERROR, logger="jobworker")
    job_id = failed_through_the_poller(engine, what)

    answer = api("GET", f"/jobs/{job_id}")

    reason = f"the job raised {type_name} (the details are in the poller's log)"
    assert (answer.json["progress"], answer.json["error"]) == ("FAILED", reason)
    (entry,) = answer.json["attempt_history"]
    assert (entry["error"], entry["owner"]) == (reason, public_owner(OWNER))
    assert SECRET not in answer.text
    assert REQUEST_ID not in answer.text
    with engine.connect() as conn:
        assert SECRET not in json.dumps(conn.execute(text(
            "SELECT error, attempt_history FROM jobs WHERE job_id = :job_id"),
            {"job_id": job_id}).one()._asdict(), default=str)
    logged = [record for record in caplog.records if record.getMessage() == "Job raised"]
    assert SECRET in logged[0].exc_text  # type: ignore[operator]


def test_get__a_jobs_own_failure_is_shown_as_written_even_one_that_reads_like_an_exception(
        api: Any, engine: Engine) -> None:
    job_id = failed_through_the_poller(engine, "job_failure")

    answer = api("GET", f"/jobs/{job_id}")

    assert answer.json["error"] == "KeyError: no depot named 'north' in this request"
    assert answer.json["attempt_history"][0]["error"] == answer.json["error"]


CANCELLED_AFTER = "cancelled on request after a failed attempt: "  # job_fail_if_owned's prefix
OLD_ROWS = {  # error texts as the poller stored them before 0010, and what the API shows
    "KeyError: 'postgres://admin:hunter2@db/internal'":
        "the job raised KeyError (the details are in the poller's log)",
    f"Timeout: token={SECRET}\nsecond line":
        "the job raised Timeout (the details are in the poller's log)",
    "RemoteDisconnected: Remote end closed connection without response":
        "the job raised RemoteDisconnected (the details are in the poller's log)",
    f"cancelled on request after a failed attempt: Timeout: token={SECRET}":
        "cancelled on request after a failed attempt: the job raised Timeout (the details are "
        "in the poller's log)",
    "TransientJobError": "the job raised TransientJobError (the details are in the poller's log)",
    "invalid route request: settings.vehicles: must be at least 1":
        "invalid route request: settings.vehicles: must be at least 1",
    "simulated transient failure": "simulated transient failure",
}


def test_get__rows_failed_before_0010_show_an_exception_by_its_type_only(
        api: Any, empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows a poller wrote before errors were made public where they are recorded: 0010
    rewrites their raw exception texts (error and attempt_history) once, the API shows
    what the row holds."""
    engine = make_engine(empty_database_url)
    try:
        migrate(engine, "0009")
        with engine.begin() as conn:
            ids = {error: conn.execute(text(
                "INSERT INTO jobs (kind, progress, error, attempts, attempt_history, started_at,"
                " finished_at) VALUES ('noop', 'FAILED', :error, 1,"
                " jobs_attempt_entry(1, :owner, 'failed', :attempt_error, now(), now()), now(),"
                " now()) RETURNING job_id"),
                {"error": error, "attempt_error": error.removeprefix(CANCELLED_AFTER),
                 "owner": OWNER}).scalar_one()
                for error in OLD_ROWS}
        migrate(engine)
    finally:
        engine.dispose()
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    runtime.reset()

    shown = {error: api("GET", f"/jobs/{job_id}").json for error, job_id in ids.items()}

    assert {error: job["error"] for error, job in shown.items()} == OLD_ROWS
    assert {error: job["attempt_history"][0]["error"] for error, job in shown.items()} == {
        error: reason.removeprefix(CANCELLED_AFTER) for error, reason in OLD_ROWS.items()}
    answers = json.dumps(list(shown.values()))
    assert "hunter2" not in answers
    assert SECRET not in answers


def test_get__a_jobs_own_failure_reason_is_shown_as_written(api: Any, engine: Engine) -> None:
    job = running_job(engine)
    fail(engine, job, "invalid route request: settings.vehicles: must be at least 1")

    answer = api("GET", f"/jobs/{job.job_id}")

    assert answer.json["error"] == "invalid route request: settings.vehicles: must be at least 1"


def test_get__lost_lease_reason_names_the_worker_by_its_public_name(
        api: Any, engine: Engine) -> None:
    job = running_job(engine)
    with engine.begin() as conn:
        expired = queue.get_job(conn, job.job_id).lease_expires_at
        assert expired is not None
        queue.recover_orphans(conn, now=expired + timedelta(seconds=1))

    answer = api("GET", f"/jobs/{job.job_id}")

    assert answer.json["progress"] == "QUEUED"
    assert answer.json["error"].startswith(f"worker lost: lease of {public_owner(OWNER)} expired")
    (entry,) = answer.json["attempt_history"]
    assert (entry["outcome"], entry["owner"]) == ("lease_expired", public_owner(OWNER))
    assert REQUEST_ID not in answer.text


def test_list__shows_the_public_forms_too(api: Any, engine: Engine) -> None:
    failed_through_the_poller(engine, "runtime_error")

    answer = api("GET", "/jobs")

    (listed,) = answer.json["jobs"]
    assert listed["error"].startswith("the job raised RuntimeError")
    assert "10.0.3.7" not in answer.text
    assert REQUEST_ID not in answer.text
