"""What of a job leaves through the API: the row's shape, less what stays private, with worker
names and error texts in their public form (raw exception text and Lambda request ids stay in
the logs and the table)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.api.models import JobView
from jobworker.api.public import public_owner
from jobworker.queue import Job, NewJob

REQUEST_ID = "5a7c2f9e-0d1b-4c3a-9e8f-7b6a5d4c3b2a"  # what a Lambda request id looks like
OWNER = f"poller:{REQUEST_ID}"


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


def test_get__unexpected_exception_shows_its_type_not_its_text(api: Any, engine: Engine) -> None:
    job = running_job(engine)
    fail(engine, job, "KeyError: 'postgres://admin:hunter2@db/internal'")

    answer = api("GET", f"/jobs/{job.job_id}")

    assert answer.json["progress"] == "FAILED"
    assert answer.json["error"] == "the job raised KeyError (the details are in the poller's log)"
    (entry,) = answer.json["attempt_history"]
    assert entry["error"] == answer.json["error"]
    assert entry["owner"] == public_owner(OWNER)
    assert "hunter2" not in answer.text
    assert REQUEST_ID not in answer.text


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
    job = running_job(engine)
    fail(engine, job, "RuntimeError: connection to 10.0.3.7 refused")

    answer = api("GET", "/jobs")

    (listed,) = answer.json["jobs"]
    assert listed["error"].startswith("the job raised RuntimeError")
    assert "10.0.3.7" not in answer.text
    assert REQUEST_ID not in answer.text
