"""Admission: whichever way a job enters, the API refuses (422, naming the field) a job the
deployment's poller could never run, and stores nothing; the same job fits a larger poller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker.aws import runtime
from tests.conftest import ApiAnswer, LambdaClient
from tests.test_route_jobs import request

STOPS = 3000  # about 640 MB at its peak: more than 512 MB, well within the default 1,769


def too_big() -> dict[str, Any]:
    return request(STOPS, vehicles=500, capacity=100)


Entry = Callable[[LambdaClient, dict[str, Any]], ApiAnswer]
ENTRIES: dict[str, tuple[Entry, str]] = {
    "generate": (lambda api, payload: api("POST", "/jobs/generate", payload),
                 "body.location_group.locations"),
    "create": (lambda api, payload: api("POST", "/jobs", {"kind": "generate_routes",
                                                           "payload": payload}),
               "body.payload.location_group.locations"),
    "batch": (lambda api, payload: api("POST", "/jobs/batch", {"jobs": [
        {"kind": "noop"}, {"kind": "generate_routes", "payload": payload}]}),
              "body.jobs.1.payload.location_group.locations"),
}


def small_poller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLLER_MEMORY_MB", "512")
    runtime.reset()


def job_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_admission__a_job_too_large_for_the_poller_is_refused_at_every_entry(
        api: LambdaClient, engine: Engine, monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    send, field = ENTRIES[entry]
    small_poller(monkeypatch)

    answer = send(api, too_big())

    assert answer.status == 422, answer.text
    (detail,) = answer.json["error"]["details"]
    assert (detail["field"], detail["type"]) == (field, "too_large_for_poller")
    assert "more than the poller's 512 MB" in detail["message"]
    assert job_count(engine) == 0


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_admission__the_same_job_is_accepted_by_a_poller_with_the_memory(
        api: LambdaClient, engine: Engine, entry: str) -> None:
    send, _ = ENTRIES[entry]

    answer = send(api, too_big())

    assert answer.status in (201, 202), answer.text
    assert job_count(engine) == (2 if entry == "batch" else 1)


def test_admission__a_batch_names_every_item_it_refuses(
        api: LambdaClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    small_poller(monkeypatch)
    item = {"kind": "generate_routes", "payload": too_big()}

    answer = api("POST", "/jobs/batch", {"jobs": [item, {"kind": "noop"}, item]})

    assert answer.status == 422, answer.text
    assert [detail["field"] for detail in answer.json["error"]["details"]] == [
        "body.jobs.0.payload.location_group.locations",
        "body.jobs.2.payload.location_group.locations"]
    assert job_count(engine) == 0
