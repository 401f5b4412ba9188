"""The API through its real entry point: API Gateway HTTP API v2 events into ``lambda_handler``.

Every test talks to the handler of functions/api/app.py with the ``api`` fixture, and checks
what the database holds with a connection of its own (``engine``): a 2xx answer is only worth
something if the row behind it is committed.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.api.models import MAX_BATCH
from jobworker.aws import kick, runtime
from jobworker.queue import NewJob
from tests.conftest import LambdaClient

DEPOT = {"lat": 52.520, "lon": 13.405}
LOCATIONS = [
    {"id": "bakery", "lat": 52.530, "lon": 13.380, "demand": 2},
    {"id": "school", "lat": 52.500, "lon": 13.420, "demand": 1},
    {"id": "clinic", "lat": 52.515, "lon": 13.450, "demand": 3},
    {"id": "market", "lat": 52.540, "lon": 13.410, "demand": 1},
]


def generate_body(**settings: Any) -> dict[str, Any]:
    """The seed's call: a depot, a few locations, and the fleet."""
    return {
        "location_group": {"depot": DEPOT, "locations": LOCATIONS},
        "settings": {"vehicles": 2, "vehicle_capacity": 5, **settings},
    }


def rows(engine: Engine, sql: str = "SELECT * FROM jobs ORDER BY job_id", **params: Any
         ) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def job_row(engine: Engine, job_id: str) -> Any:
    (row,) = rows(engine, "SELECT * FROM jobs WHERE job_id = :job_id", job_id=job_id)
    return row


def claim_only_job(engine: Engine) -> queue.ClaimedJob:
    """Claim the single QUEUED job, the way a poller would."""
    with engine.begin() as conn:
        (claimed,) = queue.claim_batch(conn, owner="test-worker", limit=10, lease_seconds=60)
    return claimed


def make_failed_job(engine: Engine) -> str:
    with engine.begin() as conn:
        queue.create_job(conn, NewJob(kind="noop"), enqueue=True)
    claimed = claim_only_job(engine)
    with engine.begin() as conn:
        queue.fail_job(conn, owner="test-worker", job_id=claimed.job_id, token=claimed.token,
                       error="boom", permanent=True)
    return str(claimed.job_id)


def make_completed_job(engine: Engine) -> str:
    with engine.begin() as conn:
        queue.create_job(conn, NewJob(kind="noop"), enqueue=True)
    claimed = claim_only_job(engine)
    with engine.begin() as conn:
        queue.complete_job(conn, owner="test-worker", job_id=claimed.job_id,
                           token=claimed.token)
    return str(claimed.job_id)


# --- POST /jobs/generate -------------------------------------------------------------------


def test_generate__queues_the_job_and_commits_it(api: Any, engine: Engine) -> None:
    answer = api("POST", "/jobs/generate", body=generate_body())

    assert answer.status == 202, answer.text
    job = answer.json
    assert job["progress"] == "QUEUED"
    assert job["kind"] == "generate_routes"
    assert job["created_at"]
    assert job["updated_at"]
    assert job["run_at"]
    assert job["started_at"] is None
    assert job["finished_at"] is None
    assert answer.headers["Location"] == f"/jobs/{job['job_id']}"
    row = job_row(engine, job["job_id"])
    assert row.progress == "QUEUED"
    assert row.kind == "generate_routes"
    assert row.payload["location_group"]["locations"] == LOCATIONS
    assert row.payload["settings"] == {"vehicles": 2, "vehicle_capacity": 5}


def test_generate__replayed_key_returns_same_job(api: Any, engine: Engine) -> None:
    headers = {"Idempotency-Key": "order-2024-0001"}
    first = api("POST", "/jobs/generate", body=generate_body(), headers=headers)
    replay = api("POST", "/jobs/generate", body=generate_body(), headers=headers)

    assert first.status == 202, first.text
    assert replay.status == 200, replay.text
    assert replay.json["job_id"] == first.json["job_id"]
    assert replay.headers["Location"] == first.headers["Location"]
    assert [row.job_id for row in rows(engine)] == [UUID(first.json["job_id"])]


def test_generate__replayed_key_with_keys_reordered_is_the_same_request(
        api: Any, engine: Engine) -> None:
    headers = {"Idempotency-Key": "order-2024-0002"}
    body = generate_body()
    reordered = {"settings": body["settings"], "location_group": body["location_group"]}
    first = api("POST", "/jobs/generate", body=body, headers=headers)
    replay = api("POST", "/jobs/generate", body=reordered, headers=headers)

    assert (first.status, replay.status) == (202, 200), replay.text
    assert replay.json["job_id"] == first.json["job_id"]
    assert len(rows(engine)) == 1


def test_generate__reused_key_with_other_body_is_refused(api: Any, engine: Engine) -> None:
    headers = {"Idempotency-Key": "order-2024-0003"}
    first = api("POST", "/jobs/generate", body=generate_body(), headers=headers)
    before = rows(engine)

    other = api("POST", "/jobs/generate", body=generate_body(vehicles=3), headers=headers)

    assert first.status == 202
    assert other.status == 422, other.text
    assert other.json["error"]["code"] == "idempotency_key_reused"
    assert first.json["job_id"] in other.text
    assert rows(engine) == before


def test_generate__two_blank_keys_are_refused_not_shared(api: Any, engine: Engine) -> None:
    """A blank key would match every other blank key: the second caller would get the first
    caller's job and lose its own body. Both are refused, saying why; nothing is stored."""
    first = api("POST", "/jobs/generate", body=generate_body(), headers={"Idempotency-Key": ""})
    second = api("POST", "/jobs/generate", body=generate_body(vehicles=3),
                 headers={"Idempotency-Key": ""})

    for answer in (first, second):
        assert answer.status == 422, answer.text
        (detail,) = answer.json["error"]["details"]
        assert detail["field"] == "header.idempotency-key"
        assert "blank" in detail["message"]
    assert rows(engine) == []


@pytest.mark.parametrize(("path", "body"), [
    ("/jobs/generate", generate_body()),
    ("/jobs", {"kind": "noop", "payload": {"n": 1}}),
])
def test_create__a_key_is_always_stored_with_the_request_hash(
        api: Any, engine: Engine, path: str, body: dict[str, Any]) -> None:
    answer = api("POST", path, body=body, headers={"Idempotency-Key": f"key-for{path}"})

    assert answer.status in (201, 202), answer.text
    row = job_row(engine, answer.json["job_id"])
    assert row.idempotency_key == f"key-for{path}"
    assert row.request_hash is not None
    assert len(row.request_hash) == 64


def test_create__reused_key_with_other_body_is_refused(api: Any, engine: Engine) -> None:
    headers = {"Idempotency-Key": "pending-0001"}
    first = api("POST", "/jobs", body={"kind": "noop", "payload": {"n": 1}}, headers=headers)
    other = api("POST", "/jobs", body={"kind": "noop", "payload": {"n": 2}}, headers=headers)

    assert first.status == 201, first.text
    assert other.status == 422, other.text
    assert other.json["error"]["code"] == "idempotency_key_reused"
    assert [str(row.job_id) for row in rows(engine)] == [first.json["job_id"]]


# --- the two-step flow and the state changes -----------------------------------------------


def test_create__job_stays_pending_until_enqueued(api: Any, engine: Engine) -> None:
    created = api("POST", "/jobs", body={"kind": "generate_routes", "payload": generate_body()})

    assert created.status == 201, created.text
    job_id = created.json["job_id"]
    assert created.json["progress"] == "PENDING"
    assert created.headers["Location"] == f"/jobs/{job_id}"
    assert job_row(engine, job_id).progress == "PENDING"

    enqueued = api("POST", f"/jobs/{job_id}/enqueue")

    assert enqueued.status == 200, enqueued.text
    assert enqueued.json["progress"] == "QUEUED"
    assert job_row(engine, job_id).progress == "QUEUED"


def test_create__replayed_key_returns_same_pending_job(api: Any, engine: Engine) -> None:
    headers = {"Idempotency-Key": "pending-0001"}
    body = {"kind": "simulate", "payload": {"seconds": 0.01}}
    first = api("POST", "/jobs", body=body, headers=headers)
    replay = api("POST", "/jobs", body=body, headers=headers)
    other = api("POST", "/jobs", body={**body, "priority": 5}, headers=headers)

    assert (first.status, replay.status, other.status) == (201, 200, 422), other.text
    assert replay.json["job_id"] == first.json["job_id"]
    assert other.json["error"]["code"] == "idempotency_key_reused"
    assert len(rows(engine)) == 1


def test_enqueue__twice_is_an_illegal_transition(api: Any, engine: Engine) -> None:
    job_id = api("POST", "/jobs", body={"kind": "noop"}).json["job_id"]
    assert api("POST", f"/jobs/{job_id}/enqueue").status == 200
    before = rows(engine)

    again = api("POST", f"/jobs/{job_id}/enqueue")

    assert again.status == 409, again.text
    assert again.json["error"]["code"] == "illegal_transition"
    assert again.json["error"]["details"][0]["current_progress"] == "QUEUED"
    assert rows(engine) == before


def test_get__returns_the_job(api: Any) -> None:
    job_id = api("POST", "/jobs/generate", body=generate_body()).json["job_id"]

    answer = api("GET", f"/jobs/{job_id}")

    assert answer.status == 200, answer.text
    assert answer.json["job_id"] == job_id
    assert answer.json["progress"] == "QUEUED"
    assert answer.json["links"] == {"self": f"/jobs/{job_id}", "routes": f"/jobs/{job_id}/routes"}


def test_cancel__queued_job_is_cancelled_and_cannot_be_cancelled_again(
        api: Any, engine: Engine) -> None:
    job_id = api("POST", "/jobs/generate", body=generate_body()).json["job_id"]

    cancelled = api("POST", f"/jobs/{job_id}/cancel")

    assert cancelled.status == 200, cancelled.text
    assert cancelled.json["progress"] == "CANCELLED"
    assert cancelled.json["finished_at"] is not None
    assert job_row(engine, job_id).progress == "CANCELLED"

    before = rows(engine)
    again = api("POST", f"/jobs/{job_id}/cancel")

    assert again.status == 409, again.text
    assert again.json["error"]["code"] == "illegal_transition"
    assert rows(engine) == before


def test_cancel__completed_job_is_refused(api: Any, engine: Engine) -> None:
    job_id = make_completed_job(engine)
    before = rows(engine)

    answer = api("POST", f"/jobs/{job_id}/cancel")

    assert answer.status == 409, answer.text
    assert answer.json["error"]["code"] == "illegal_transition"
    assert answer.json["error"]["details"][0]["current_progress"] == "COMPLETED"
    assert rows(engine) == before


def test_cancel__running_job_is_asked_to_stop(api: Any, engine: Engine) -> None:
    api("POST", "/jobs/batch", body={"jobs": [{"kind": "noop"}]})
    claimed = claim_only_job(engine)

    answer = api("POST", f"/jobs/{claimed.job_id}/cancel")

    assert answer.status == 200, answer.text
    assert answer.json["progress"] == "RUNNING"
    assert answer.json["cancel_requested"] is True


def test_retry__failed_job_is_queued_with_fresh_attempts(api: Any, engine: Engine) -> None:
    job_id = make_failed_job(engine)
    assert job_row(engine, job_id).attempts == 1

    answer = api("POST", f"/jobs/{job_id}/retry")

    assert answer.status == 200, answer.text
    assert answer.json["progress"] == "QUEUED"
    assert answer.json["attempts"] == 0
    assert answer.json["error"] is None
    row = job_row(engine, job_id)
    assert (row.progress, row.attempts, row.finished_at) == ("QUEUED", 0, None)


def test_retry__queued_job_is_refused(api: Any, engine: Engine) -> None:
    job_id = api("POST", "/jobs/generate", body=generate_body()).json["job_id"]
    before = rows(engine)

    answer = api("POST", f"/jobs/{job_id}/retry")

    assert answer.status == 409, answer.text
    assert answer.json["error"]["code"] == "illegal_transition"
    assert rows(engine) == before


# --- listing and stats ---------------------------------------------------------------------


def read_all_pages(api: Any, query: str) -> list[list[str]]:
    """Follow next_cursor to the end; returns the job ids of each page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        path = f"/jobs?{query}" + (f"&cursor={cursor}" if cursor else "")
        answer = api("GET", path)
        assert answer.status == 200, answer.text
        pages.append([job["job_id"] for job in answer.json["jobs"]])
        cursor = answer.json["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 10, "pagination does not end"


def test_list__pages_newest_first_cover_every_job_once(api: Any) -> None:
    created = [api("POST", "/jobs", body={"kind": "noop"}).json["job_id"] for _ in range(7)]

    pages = read_all_pages(api, "limit=3")

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [job_id for page in pages for job_id in page] == created[::-1]


def test_list__pages_jobs_created_in_one_transaction(api: Any) -> None:
    """A batch shares one created_at: the cursor must break the tie on job_id."""
    answer = api("POST", "/jobs/batch", body={"jobs": [{"kind": "noop"}] * 8})

    pages = read_all_pages(api, "limit=3")

    listed = [job_id for page in pages for job_id in page]
    assert [len(page) for page in pages] == [3, 3, 2]
    assert Counter(listed) == Counter(answer.json["job_ids"])


def test_list__filters_by_progress(api: Any) -> None:
    pending = {api("POST", "/jobs", body={"kind": "noop"}).json["job_id"] for _ in range(2)}
    queued = set(api("POST", "/jobs/batch", body={"jobs": [{"kind": "noop"}] * 3}
                     ).json["job_ids"])

    only_pending = api("GET", "/jobs?progress=PENDING")
    only_queued = api("GET", "/jobs?progress=QUEUED&limit=2")

    assert {job["job_id"] for job in only_pending.json["jobs"]} == pending
    assert {job["progress"] for job in only_queued.json["jobs"]} == {"QUEUED"}
    assert {i for page in read_all_pages(api, "progress=QUEUED&limit=2") for i in page} == queued
    assert api("GET", "/jobs?progress=FAILED").json == {"jobs": [], "next_cursor": None}


def test_list__filters_by_kind(api: Any) -> None:
    api("POST", "/jobs", body={"kind": "noop"})
    simulate = api("POST", "/jobs", body={"kind": "simulate", "payload": {"seconds": 0.01}})

    answer = api("GET", "/jobs?kind=simulate")

    assert [job["job_id"] for job in answer.json["jobs"]] == [simulate.json["job_id"]]


def test_list__bad_cursor_is_refused(api: Any) -> None:
    answer = api("GET", "/jobs?cursor=bm90LWEtY3Vyc29y")

    assert answer.status == 422, answer.text
    assert answer.json["error"]["details"] == [{
        "field": "query.cursor", "message": "cursor is not one this API returned",
        "type": "invalid_cursor"}]


def test_stats__counts_jobs_by_progress(api: Any, engine: Engine) -> None:
    api("POST", "/jobs", body={"kind": "noop"})
    api("POST", "/jobs/batch", body={"jobs": [{"kind": "noop"}] * 2})
    cancelled = api("POST", "/jobs/generate", body=generate_body()).json["job_id"]
    api("POST", f"/jobs/{cancelled}/cancel")

    answer = api("GET", "/jobs/stats")

    assert answer.status == 200, answer.text
    assert answer.json["counts"] == {"PENDING": 1, "QUEUED": 2, "RUNNING": 0,
                                     "COMPLETED": 0, "FAILED": 0, "CANCELLED": 1}
    assert answer.json["queue_depth"] == 2
    assert answer.json["oldest_queued_age_seconds"] >= 0


def test_stats__empty_queue_has_no_oldest_age(api: Any) -> None:
    answer = api("GET", "/jobs/stats")

    assert answer.json["queue_depth"] == 0
    assert answer.json["oldest_queued_age_seconds"] is None


# --- batch and kinds -----------------------------------------------------------------------


def test_batch__queues_a_thousand_jobs_in_one_call(api: Any, engine: Engine) -> None:
    jobs = [{"kind": "simulate", "payload": {"seconds": 0.01}}] * MAX_BATCH

    answer = api("POST", "/jobs/batch", body={"jobs": jobs})

    assert answer.status == 202, answer.text
    assert answer.json["count"] == MAX_BATCH
    stored = rows(engine, "SELECT job_id, progress, kind FROM jobs")
    assert {str(row.job_id) for row in stored} == set(answer.json["job_ids"])
    assert len(answer.json["job_ids"]) == MAX_BATCH
    assert {(row.progress, row.kind) for row in stored} == {("QUEUED", "simulate")}


def test_batch__every_field_of_every_item_is_stored(api: Any, engine: Engine) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    items = [{"kind": "noop", "payload": {"n": 1}, "priority": 7, "max_attempts": 9,
              "run_at": later.isoformat()},
             {"kind": "noop"}]

    answer = api("POST", "/jobs/batch", body={"jobs": items})

    assert answer.status == 202, answer.text
    first, second = (job_row(engine, job_id) for job_id in answer.json["job_ids"])
    assert (first.payload, first.priority, first.max_attempts, first.run_at) == (
        {"n": 1}, 7, 9, later)
    assert (second.priority, second.max_attempts) == (0, runtime.get_settings().max_attempts)
    assert second.run_at < later


def test_batch__job_to_run_later_is_not_claimed_before_its_run_at(
        api: Any, engine: Engine) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    answer = api("POST", "/jobs/batch", body={"jobs": [{"kind": "noop",
                                                        "run_at": later.isoformat()}]})
    assert answer.status == 202, answer.text
    (job_id,) = answer.json["job_ids"]

    with engine.begin() as conn:
        early = queue.claim_batch(conn, owner="w", limit=10, lease_seconds=60,
                                  now=later - timedelta(seconds=1))
    with engine.begin() as conn:
        due = queue.claim_batch(conn, owner="w", limit=10, lease_seconds=60, now=later)

    assert early == []
    assert [str(job.job_id) for job in due] == [job_id]


def test_batch__one_job_too_many_is_refused_whole(api: Any, engine: Engine) -> None:
    answer = api("POST", "/jobs/batch", body={"jobs": [{"kind": "noop"}] * (MAX_BATCH + 1)})

    assert answer.status == 422, answer.text
    assert answer.json["error"]["details"][0]["field"] == "body.jobs"
    assert rows(engine) == []


def test_create__simulate_job_with_valid_payload(api: Any, engine: Engine) -> None:
    answer = api("POST", "/jobs", body={"kind": "simulate", "payload": {"seconds": 0.01}})

    assert answer.status == 201, answer.text
    assert answer.json["kind"] == "simulate"
    assert job_row(engine, answer.json["job_id"]).payload == {"seconds": 0.01}
    assert "routes" not in answer.json["links"]


def test_create__unknown_kind_is_refused_by_name(api: Any, engine: Engine) -> None:
    answer = api("POST", "/jobs", body={"kind": "make_coffee"})

    assert answer.status == 422, answer.text
    assert "make_coffee" in answer.json["error"]["details"][0]["message"]
    assert rows(engine) == []


def test_create__simulate_payload_is_validated(api: Any, engine: Engine) -> None:
    answer = api("POST", "/jobs", body={"kind": "simulate", "payload": {"seconds": -1}})

    assert answer.status == 422, answer.text
    assert "seconds" in answer.json["error"]["details"][0]["message"]
    assert rows(engine) == []


# --- health and documentation --------------------------------------------------------------


def test_health__reports_the_database_ok(api: Any) -> None:
    answer = api("GET", "/health")

    assert answer.status == 200, answer.text
    assert answer.json == {"status": "ok", "database": "ok"}


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def test_openapi__is_an_openapi_3_1_document_of_every_route(api: Any) -> None:
    answer = api("GET", "/openapi.json")

    assert answer.status == 200, answer.text
    doc = answer.json
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert operations >= {
        ("/jobs/generate", "post"), ("/jobs", "post"), ("/jobs", "get"),
        ("/jobs/batch", "post"), ("/jobs/stats", "get"), ("/jobs/{job_id}", "get"),
        ("/jobs/{job_id}/enqueue", "post"), ("/jobs/{job_id}/cancel", "post"),
        ("/jobs/{job_id}/retry", "post"), ("/jobs/{job_id}/routes", "get"),
        ("/health", "get"),
    }
    for path, method in operations:
        assert doc["paths"][path][method]["responses"], (path, method)
    schemas = doc["components"]["schemas"]
    for ref in refs_in(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    generate = doc["paths"]["/jobs/generate"]["post"]["requestBody"]["content"]
    assert "application/json" in generate


def test_docs__serves_swagger_ui(api: Any) -> None:
    answer = api("GET", "/docs")

    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<html" in answer.text.lower()
    assert "swagger" in answer.text.lower()


# --- end to end: the API, the poller, the routes -------------------------------------------


@pytest.fixture
def completed_route_job(poller_ends_when_idle: None, api: Any, handlers: dict[str, Any]) -> str:
    """A generate_routes job taken through one real poller invocation (the idle exit set
    before the handlers read their settings)."""
    job_id: str = api("POST", "/jobs/generate",
                      body=generate_body(max_runtime_seconds=1, seed=7)).json["job_id"]

    summary = handlers["poller"](10)

    assert (summary["claimed"], summary["completed"], summary["failed"]) == (1, 1, 0), summary
    return job_id


def test_end_to_end__generate_then_poll_completes_the_job(
        api: Any, completed_route_job: str) -> None:
    answer = api("GET", f"/jobs/{completed_route_job}")

    job = answer.json
    assert job["progress"] == "COMPLETED"
    assert job["started_at"] is not None
    assert job["finished_at"] is not None
    assert job["started_at"] <= job["finished_at"]
    assert job["route_group_id"] is not None
    assert job["attempts"] == 1


def test_end_to_end__routes_visit_every_location_once(api: Any, completed_route_job: str) -> None:
    answer = api("GET", f"/jobs/{completed_route_job}/routes")

    assert answer.status == 200, answer.text
    plan = answer.json
    assert plan["job_id"] == completed_route_job
    visited = [stop["location_id"] for route in plan["routes"] for stop in route["stops"]]
    assert sorted(visited) == sorted(location["id"] for location in LOCATIONS)
    assert all(route["load"] <= 5 for route in plan["routes"])
    assert plan["locations_served"] == len(LOCATIONS)


def test_end_to_end__routes_as_geojson(api: Any, completed_route_job: str) -> None:
    answer = api("GET", f"/jobs/{completed_route_job}/routes?format=geojson")

    assert answer.status == 200, answer.text
    collection = answer.json
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert all(feature["type"] == "Feature" for feature in features)
    stops = [f["properties"]["location_id"] for f in features
             if f["geometry"]["type"] == "Point" and "location_id" in f["properties"]]
    assert sorted(stops) == sorted(location["id"] for location in LOCATIONS)
    lines = [f for f in features if f["geometry"]["type"] == "LineString"]
    assert lines
    depot_position = [DEPOT["lon"], DEPOT["lat"]]  # GeoJSON is [lon, lat]
    assert all(line["geometry"]["coordinates"][0] == depot_position for line in lines)


# --- the kick: an enqueue wakes the poller Lambda at once ----------------------------------


class FrozenClock:
    """Stands in for ``time`` in jobworker.aws.kick: the debounce sees only the time we set."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def lambda_invokes(app_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto Lambda with a poller function; yields a spy on the kick's real client."""
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POLLER_FUNCTION_NAME", "jobworker-poller")
    runtime.reset()
    clock = FrozenClock()
    monkeypatch.setattr(kick, "time", clock)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        role = boto3.client("iam").create_role(
            RoleName="poller-role", AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                               "Principal": {"Service": "lambda.amazonaws.com"}}],
            }))["Role"]["Arn"]
        kick._lambda_client.cache_clear()
        client = kick._lambda_client()
        client.create_function(
            FunctionName="jobworker-poller", Runtime="python3.12", Role=role,
            Handler="app.lambda_handler", Code={"ZipFile": b"not run by moto"},
        )
        kick.reset_debounce()
        spy = SimpleNamespace(clock=clock, answers=[])
        real_invoke = client.invoke

        def invoke_and_record(**kwargs: Any) -> Any:
            answer = real_invoke(**kwargs)
            spy.answers.append(answer)
            return answer

        with patch.object(client, "invoke", wraps=invoke_and_record) as invoke:
            spy.invoke = invoke
            yield spy
        kick._lambda_client.cache_clear()


def test_kick__generate_invokes_the_poller_asynchronously(api: Any, lambda_invokes: Any) -> None:
    answer = api("POST", "/jobs/generate", body=generate_body())

    assert answer.status == 202, answer.text
    lambda_invokes.invoke.assert_called_once()
    call = lambda_invokes.invoke.call_args.kwargs
    assert call["FunctionName"] == "jobworker-poller"
    assert call["InvocationType"] == "Event"
    assert [answer["StatusCode"] for answer in lambda_invokes.answers] == [202]


def test_kick__two_enqueues_within_a_second_kick_once(api: Any, lambda_invokes: Any) -> None:
    first = api("POST", "/jobs/generate", body=generate_body())
    lambda_invokes.clock.now += 0.5
    second = api("POST", "/jobs/generate", body=generate_body())

    assert (first.status, second.status) == (202, 202)
    assert lambda_invokes.invoke.call_count == 1


def test_kick__next_enqueue_after_a_second_kicks_again(api: Any, lambda_invokes: Any) -> None:
    api("POST", "/jobs/generate", body=generate_body())
    lambda_invokes.clock.now += 1.0
    api("POST", "/jobs/generate", body=generate_body())

    assert lambda_invokes.invoke.call_count == 2


def test_kick__idempotent_replay_does_not_kick(api: Any, lambda_invokes: Any) -> None:
    headers = {"Idempotency-Key": "kick-once"}
    api("POST", "/jobs/generate", body=generate_body(), headers=headers)
    lambda_invokes.clock.now += 5
    replay = api("POST", "/jobs/generate", body=generate_body(), headers=headers)

    assert replay.status == 200
    assert lambda_invokes.invoke.call_count == 1


def test_kick__pending_job_kicks_on_enqueue_not_on_create(api: Any, lambda_invokes: Any) -> None:
    job_id = api("POST", "/jobs", body={"kind": "noop"}).json["job_id"]
    assert lambda_invokes.invoke.call_count == 0

    api("POST", f"/jobs/{job_id}/enqueue")

    assert lambda_invokes.invoke.call_count == 1


def test_kick__failure_does_not_fail_the_request(
        api: Any, engine: Engine, lambda_invokes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's Lambda without Docker answers any invoke, even of a missing function: make the
    # real client raise what AWS raises for one.
    from botocore.exceptions import ClientError

    monkeypatch.setenv("POLLER_FUNCTION_NAME", "no-such-function")
    runtime.reset()
    lambda_invokes.invoke.side_effect = ClientError(
        {"Error": {"Code": "ResourceNotFoundException",
                   "Message": "Function not found: no-such-function"}}, "Invoke")

    answer = api("POST", "/jobs/generate", body=generate_body())

    assert answer.status == 202, answer.text
    lambda_invokes.invoke.assert_called_once()
    assert lambda_invokes.invoke.call_args.kwargs["FunctionName"] == "no-such-function"
    assert job_row(engine, answer.json["job_id"]).progress == "QUEUED"


def test_a_large_request_is_not_spelled_out_for_a_debug_line_on_every_call(
        api: LambdaClient, caplog: pytest.LogCaptureFixture) -> None:
    """Powertools' resolver builds "Calling API Route Handler: {route_args}" with an f-string
    on every request, printed or not; the request models keep that text a summary instead of
    the whole body (1,500 stops: pydantic's repr runs to hundreds of kilobytes)."""
    from tests.test_route_jobs import request as route_request

    body = route_request(1500, vehicles=50, capacity=100)
    with caplog.at_level(logging.DEBUG, logger="aws_lambda_powertools.event_handler"):
        generated = api("POST", "/jobs/generate", body)
        created = api("POST", "/jobs", {"kind": "generate_routes", "payload": body})
        batched = api("POST", "/jobs/batch",
                      {"jobs": [{"kind": "generate_routes", "payload": body}] * 3})
    assert (generated.status, created.status, batched.status) == (202, 201, 202)
    lines = [record.getMessage() for record in caplog.records
             if record.getMessage().startswith("Calling API Route Handler")]
    assert len(lines) == 3
    assert max(len(line) for line in lines) < 300, lines
    assert "1500 locations" in lines[0]
