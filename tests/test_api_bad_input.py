"""Bad input, table-driven: every API error gets its documented status and changes nothing.

Each case goes through the real ``lambda_handler`` (an API Gateway HTTP API v2 event) and must
answer with the stable envelope ``{"error": {"code", "message", "details"?}}``: no stack
trace, no 500, and for a 422 the details name the fields at fault. The database is compared
row by row before and after. A few strings that look like SQL are legal data; those are
accepted and stored verbatim, and the table is still there afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws import runtime
from jobworker.queue import NewJob
from jobworker.routes.models import MAX_LOCATIONS
from tests.conftest import ApiAnswer

SQL = "'; DROP TABLE jobs; --"
MISSING_ID = "0b6f6d2e-6a1e-4c53-9d39-3c1f4f1f0c8e"
NOT_AN_ID = "not-a-uuid"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
UNREACHABLE_DATABASE = "postgresql://postgres@/postgres?host=/tmp/nonexistent-jobworker-socket"


def location(location_id: str, lat: float = 52.52, lon: float = 13.40, **extra: Any
             ) -> dict[str, Any]:
    return {"id": location_id, "lat": lat, "lon": lon, **extra}


def generate_body(locations: list[dict[str, Any]] | None = None, **settings: Any
                  ) -> dict[str, Any]:
    return {
        "location_group": {
            "depot": {"lat": 52.5, "lon": 13.4},
            "locations": [location("bakery"), location("school", 52.51, 13.41)]
            if locations is None else locations,
        },
        "settings": {"vehicles": 2, "vehicle_capacity": 5, **settings},
    }


def with_settings(**settings: Any) -> dict[str, Any]:
    """A body whose settings are exactly ``settings`` (to test missing and wrong ones)."""
    body = generate_body()
    body["settings"] = settings
    return body


def without(key: str) -> dict[str, Any]:
    body = generate_body()
    del body[key]
    return body


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def oversized_generate_body(size: int) -> bytes:
    """Valid JSON, larger than ``size`` bytes."""
    body = generate_body()
    body["padding"] = "x" * size
    return json.dumps(body).encode()


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # may name seeded jobs: {queued}, {completed}
    status: int
    code: str
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fields: tuple[str, ...] = ()  # a 422 must name each (exactly, or a field inside it)
    says: str = ""  # the error message or a detail message contains this
    env: dict[str, str] = field(default_factory=dict)
    event_change: Callable[[dict[str, Any]], None] | None = None  # edit the raw event


def invalid_base64(event: dict[str, Any]) -> None:
    event["body"] = "this is not base64!"
    event["isBase64Encoded"] = True


def case(case_id: str, *args: Any, **kwargs: Any) -> Any:
    return pytest.param(Case(*args, **kwargs), id=case_id)


GENERATE = "/jobs/generate"
BIG_BODY_LIMIT = {"MAX_BODY_BYTES": str(6 * 1024 * 1024)}

CASES = [
    # Bodies that are not JSON, or JSON nobody should parse.
    case("malformed_json", "POST", GENERATE, 400, "malformed_json",
         raw=b'{"location_group": {"depot": '),
    case("body_not_utf8", "POST", GENERATE, 400, "malformed_json", raw=b"\xff\xfe{}"),
    case("invalid_base64_body", "POST", GENERATE, 400, "malformed_body", raw=b"{}",
         event_change=invalid_base64),
    case("json_10000_open_brackets", "POST", GENERATE, 400, "json_too_deep",
         raw=b"[" * 10_000),
    case("json_10000_levels_balanced", "POST", GENERATE, 400, "json_too_deep",
         raw=nested(10_000)),
    case("json_deep_inside_a_valid_body", "POST", "/jobs", 400, "json_too_deep",
         raw=json.dumps({"kind": "noop", "payload": {"x": json.loads(nested(40))}}).encode()),
    case("content_type_text_plain", "POST", GENERATE, 415, "unsupported_media_type",
         raw=json.dumps(generate_body()).encode(), headers={"content-type": "text/plain"}),
    case("content_type_form", "POST", "/jobs", 415, "unsupported_media_type",
         raw=b"kind=noop", headers={"content-type": "application/x-www-form-urlencoded"}),
    case("body_over_default_limit", "POST", GENERATE, 413, "body_too_large",
         raw=oversized_generate_body(DEFAULT_MAX_BODY_BYTES), says=str(DEFAULT_MAX_BODY_BYTES)),
    case("body_over_configured_limit", "POST", GENERATE, 413, "body_too_large",
         raw=oversized_generate_body(2048), env={"MAX_BODY_BYTES": "1024"}, says="1024"),
    # POST /jobs/generate: validation names the field.
    case("generate_empty_body", "POST", GENERATE, 422, "validation_error", fields=("body",)),
    case("generate_json_null", "POST", GENERATE, 422, "validation_error", raw=b"null",
         fields=("body",)),
    case("generate_json_array", "POST", GENERATE, 422, "validation_error", raw=b"[]",
         fields=("body",)),
    case("vehicles_is_a_string", "POST", GENERATE, 422, "validation_error",
         body=with_settings(vehicles="two", vehicle_capacity=5),
         fields=("body.settings.vehicles",)),
    case("vehicles_zero", "POST", GENERATE, 422, "validation_error",
         body=generate_body(vehicles=0), fields=("body.settings.vehicles",)),
    case("capacity_missing", "POST", GENERATE, 422, "validation_error",
         # required only with a count of vehicles (not with vehicle types): the settings say so
         body=with_settings(vehicles=2), fields=("body.settings",), says="vehicle_capacity"),
    case("location_group_missing", "POST", GENERATE, 422, "validation_error",
         body=without("location_group"), fields=("body.location_group",)),
    case("settings_missing", "POST", GENERATE, 422, "validation_error",
         body=without("settings"), fields=("body.settings",)),
    case("unknown_top_level_field", "POST", GENERATE, 422, "validation_error",
         body={**generate_body(), "priority_boost": 1}, fields=("body.priority_boost",)),
    case("unknown_location_field", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location("bakery", colour="red")]),
         fields=("body.location_group.locations.0.colour",)),
    case("depot_latitude_above_90", "POST", GENERATE, 422, "validation_error",
         body={**generate_body(), "location_group": {"depot": {"lat": 91, "lon": 13.4},
                                                     "locations": []}},
         fields=("body.location_group.depot.lat",)),
    case("location_longitude_below_minus_180", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location("bakery"), location("school", 52.5, -181)]),
         fields=("body.location_group.locations.1.lon",)),
    case("latitude_nan", "POST", GENERATE, 422, "validation_error",
         raw=json.dumps(generate_body([location("bakery", float("nan"))])).encode(),
         fields=("body.location_group.locations.0.lat",)),
    case("duplicate_location_ids", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location("bakery"), location("bakery", 52.6, 13.5)]),
         fields=("body.location_group",), says="duplicate location ids: bakery"),
    case("too_many_locations", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location(f"loc-{i}", demand=0) for i in range(MAX_LOCATIONS + 1)]),
         env=BIG_BODY_LIMIT, fields=("body.location_group.locations",), says=str(MAX_LOCATIONS)),
    case("demand_above_fleet_capacity", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location(f"loc-{i}", demand=4) for i in range(3)],
                            vehicles=2, vehicle_capacity=5),
         fields=("body",), says="total demand 12 exceeds the fleet capacity of 10"),
    case("demand_above_one_vehicle", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location("piano", demand=6)], vehicles=2, vehicle_capacity=5),
         fields=("body",), says="piano (6)"),
    case("time_window_closes_before_it_opens", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location("bakery", time_window={"earliest": 600, "latest": 480})]),
         fields=("body.location_group.locations.0.time_window",), says="closes before"),
    # Idempotency-Key.
    case("idempotency_key_reused_for_other_body", "POST", GENERATE, 422,
         "idempotency_key_reused", body=generate_body(), headers={"idempotency-key": "taken"},
         says="taken"),
    case("idempotency_key_too_long", "POST", GENERATE, 422, "validation_error",
         body=generate_body(), headers={"idempotency-key": "k" * 201},
         fields=("header.idempotency-key",)),
    case("idempotency_key_blank", "POST", GENERATE, 422, "validation_error",
         body=generate_body(), headers={"idempotency-key": ""},
         fields=("header.idempotency-key",), says="blank"),
    case("idempotency_key_blank_on_create", "POST", "/jobs", 422, "validation_error",
         body={"kind": "noop"}, headers={"idempotency-key": ""},
         fields=("header.idempotency-key",), says="blank"),
    case("idempotency_key_only_spaces", "POST", GENERATE, 422, "validation_error",
         body=generate_body(), headers={"idempotency-key": "   "},
         fields=("header.idempotency-key",)),
    case("idempotency_key_not_ascii", "POST", GENERATE, 422, "validation_error",
         body=generate_body(), headers={"idempotency-key": "commande-été"},
         fields=("header.idempotency-key",)),
    case("idempotency_key_control_character", "POST", GENERATE, 422, "validation_error",
         body=generate_body(), headers={"idempotency-key": "key\tnext"},
         fields=("header.idempotency-key",)),
    # POST /jobs and /jobs/batch.
    case("unknown_kind", "POST", "/jobs", 422, "validation_error", body={"kind": "make_coffee"},
         fields=("body",), says="make_coffee"),
    case("simulate_negative_seconds", "POST", "/jobs", 422, "validation_error",
         body={"kind": "simulate", "payload": {"seconds": -1}}, fields=("body",),
         says="seconds"),
    case("priority_out_of_range", "POST", "/jobs", 422, "validation_error",
         body={"kind": "noop", "priority": 5000}, fields=("body.priority",)),
    case("run_at_without_timezone", "POST", "/jobs", 422, "validation_error",
         body={"kind": "noop", "run_at": "2030-01-01T08:00:00"}, fields=("body.run_at",)),
    # Aware datetimes at the edge of Python's range that PostgreSQL stores outside it.
    case("run_at_after_year_9999_in_utc", "POST", "/jobs", 422, "validation_error",
         body={"kind": "noop", "run_at": "9999-12-31T23:59:59-14:00"}, fields=("body.run_at",)),
    case("run_at_before_year_1_in_utc", "POST", "/jobs", 422, "validation_error",
         body={"kind": "noop", "run_at": "0001-01-01T00:00:00+14:00"}, fields=("body.run_at",)),
    case("batch_empty", "POST", "/jobs/batch", 422, "validation_error", body={"jobs": []},
         fields=("body.jobs",)),
    case("batch_of_1001", "POST", "/jobs/batch", 422, "validation_error",
         body={"jobs": [{"kind": "noop"}] * 1001}, fields=("body.jobs",), says="1000"),
    case("batch_with_one_unknown_kind", "POST", "/jobs/batch", 422, "validation_error",
         body={"jobs": [{"kind": "noop"}, {"kind": "make_coffee"}]}, fields=("body.jobs.1",),
         says="make_coffee"),
    # Ids in the path: malformed -> 422, unknown -> 404.
    *(case(f"non_uuid_id_{name}", method, path.format(id=NOT_AN_ID), 422, "validation_error",
           fields=("path.job_id",))
      for name, method, path in [("get", "GET", "/jobs/{id}"),
                                 ("enqueue", "POST", "/jobs/{id}/enqueue"),
                                 ("cancel", "POST", "/jobs/{id}/cancel"),
                                 ("retry", "POST", "/jobs/{id}/retry"),
                                 ("routes", "GET", "/jobs/{id}/routes")]),
    *(case(f"unknown_id_{name}", method, path.format(id=MISSING_ID), 404, "not_found",
           says=MISSING_ID)
      for name, method, path in [("get", "GET", "/jobs/{id}"),
                                 ("enqueue", "POST", "/jobs/{id}/enqueue"),
                                 ("cancel", "POST", "/jobs/{id}/cancel"),
                                 ("retry", "POST", "/jobs/{id}/retry"),
                                 ("routes", "GET", "/jobs/{id}/routes")]),
    # State changes the job's progress does not allow.
    case("enqueue_queued_job", "POST", "/jobs/{queued}/enqueue", 409, "illegal_transition"),
    case("cancel_completed_job", "POST", "/jobs/{completed}/cancel", 409, "illegal_transition"),
    case("retry_queued_job", "POST", "/jobs/{queued}/retry", 409, "illegal_transition"),
    case("retry_completed_job", "POST", "/jobs/{completed}/retry", 409, "illegal_transition"),
    case("routes_of_queued_job", "GET", "/jobs/{queued}/routes", 409, "routes_not_available"),
    # Query strings.
    case("limit_zero", "GET", "/jobs?limit=0", 422, "validation_error", fields=("query.limit",)),
    case("limit_10000", "GET", "/jobs?limit=10000", 422, "validation_error",
         fields=("query.limit",)),
    case("limit_not_a_number", "GET", "/jobs?limit=ten", 422, "validation_error",
         fields=("query.limit",)),
    case("progress_not_a_state", "GET", "/jobs?progress=DONE", 422, "validation_error",
         fields=("query.progress",)),
    case("routes_format_xml", "GET", "/jobs/{queued}/routes?format=xml", 422,
         "validation_error", fields=("query.format",)),
    # SQL-looking strings where they are not legal data.
    case("sql_as_progress", "GET", f"/jobs?progress={quote(SQL)}", 422, "validation_error",
         fields=("query.progress",)),
    case("sql_as_cursor", "GET", f"/jobs?cursor={quote(SQL)}", 422, "validation_error",
         fields=("query.cursor",)),
    case("sql_as_job_id", "GET", f"/jobs/{quote(SQL, safe='')}", 422, "validation_error",
         fields=("path.job_id",)),
    # Routes that do not exist.
    case("unknown_route", "GET", "/nope", 404, "not_found"),
    case("unknown_route_trailing_slash", "GET", "/jobs/stats/", 404, "not_found"),
    case("unknown_method_on_job", "DELETE", "/jobs/{queued}", 404, "not_found"),
    # NUL characters: JSON and URLs can carry them, PostgreSQL text and jsonb cannot.
    case("nul_in_location_id", "POST", GENERATE, 422, "validation_error",
         body=generate_body([location("bak\u0000ery")]), fields=("body",)),
    case("nul_in_job_payload", "POST", "/jobs", 422, "validation_error",
         body={"kind": "noop", "payload": {"note": "a\u0000b"}}, fields=("body",)),
    # A lone UTF-16 surrogate: JSON can escape one, UTF-8 (and so PostgreSQL) cannot hold it.
    case("lone_surrogate_in_job_payload", "POST", "/jobs", 422, "validation_error",
         raw=b'{"kind": "noop", "payload": {"notes": ["ok", "\\ud800"]}}',
         fields=("body.payload.notes.1",), says="surrogate"),
    case("lone_surrogate_in_a_key_of_a_batch_payload", "POST", "/jobs/batch", 422,
         "validation_error", raw=b'{"jobs": [{"kind": "noop", "payload": {"\\udfff": 1}}]}',
         fields=("body.jobs.0.payload",), says="surrogate"),
    # NaN and Infinity: Python's JSON reader takes them, JSON and jsonb do not.
    case("nan_in_job_payload", "POST", "/jobs", 422, "validation_error",
         raw=b'{"kind": "noop", "payload": {"ratio": NaN}}', fields=("body.payload.ratio",),
         says="NaN and Infinity are not JSON numbers"),
    case("infinity_in_batch_payload", "POST", "/jobs/batch", 422, "validation_error",
         raw=b'{"jobs": [{"kind": "noop", "payload": {"ratio": -Infinity}}]}',
         fields=("body.jobs.0.payload.ratio",)),
    case("nul_in_kind_filter", "GET", "/jobs?kind=no%00op", 422, "validation_error",
         fields=("query.kind",)),
    case("nul_in_idempotency_key", "POST", GENERATE, 422, "validation_error",
         body=generate_body(), headers={"idempotency-key": "key\u0000"},
         fields=("header.idempotency-key",)),
]


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def seeded(engine: Engine) -> dict[str, str]:
    """A few jobs so that "unchanged" means something: one COMPLETED, one QUEUED, one PENDING,
    and a QUEUED one created with Idempotency-Key "taken"."""
    with engine.begin() as conn:
        queue.create_job(conn, NewJob(kind="noop"), enqueue=True)
        (claimed,) = queue.claim_batch(conn, owner="seed", limit=5, lease_seconds=60)
        queue.complete_job(conn, owner="seed", job_id=claimed.job_id, token=claimed.token)
        queued, _ = queue.create_job(conn, NewJob(payload=generate_body()), enqueue=True)
        queue.create_job(conn, NewJob(kind="noop"))
        queue.create_job(conn, NewJob(kind="noop", idempotency_key="taken",
                                      request_hash="a-different-request"), enqueue=True)
    return {"completed": str(claimed.job_id), "queued": str(queued.job_id)}


def snapshot(engine: Engine) -> tuple[list[Any], list[Any]]:
    """Every row of jobs and route_groups, and that the tables still exist."""
    with engine.connect() as conn:
        jobs = conn.execute(text("SELECT * FROM jobs ORDER BY job_id")).all()
        groups = conn.execute(text("SELECT * FROM route_groups ORDER BY route_group_id")).all()
    return list(jobs), list(groups)


def send(api: Any, case: Case, seeded: dict[str, str]) -> ApiAnswer:
    path = case.path.format(**seeded)
    if case.event_change is None:
        answer = api(case.method, path, body=case.body, headers=case.headers, raw=case.raw)
        return ApiAnswer(answer.status, answer.headers, answer.text)
    from jobworker.dev.local import LocalContext
    from jobworker.dev.server import request_to_event

    event = request_to_event(case.method, path, {"content-type": "application/json"},
                             case.raw or b"")
    case.event_change(event)
    raw = api.handler(event, LocalContext("jobworker-api", 30))
    return ApiAnswer(raw["statusCode"], raw.get("headers") or {}, raw.get("body") or "")


def assert_error_envelope(answer: ApiAnswer, status: int, code: str) -> dict[str, Any]:
    """The documented status, the stable shape, and nothing of the inside leaking out."""
    assert answer.status == status, answer.text
    assert answer.headers.get("Content-Type", "").startswith("application/json")
    body = answer.json
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    for leak in ("Traceback", 'File "', "psycopg", "sqlalchemy", "RecursionError"):
        assert leak not in answer.text, answer.text
    return error


def assert_names_fields(error: dict[str, Any], fields: tuple[str, ...]) -> None:
    named = [detail.get("field", "") for detail in error.get("details", [])]
    for expected in fields:
        assert any(name == expected or name.startswith(f"{expected}.") for name in named), (
            f"{expected!r} not named in {named}"
        )


# --- the table-driven test -----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_bad_request__documented_error_and_nothing_changes(
        api: Any, engine: Engine, seeded: dict[str, str], case: Case,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    before = snapshot(engine)

    answer = send(api, case, seeded)

    error = assert_error_envelope(answer, case.status, case.code)
    if case.status == 422 and case.code == "validation_error":
        assert error["details"], error
        assert_names_fields(error, case.fields)
    if case.says:
        told = error["message"] + json.dumps(error.get("details", []))
        assert case.says in told, error
    assert snapshot(engine) == before


def test_cases__every_case_id_is_unique() -> None:
    ids = [param.id for param in CASES]
    assert len(ids) == len(set(ids))


# --- SQL-looking strings that are legal data -----------------------------------------------


def test_sql_like_location_id__is_stored_verbatim(api: Any, engine: Engine) -> None:
    answer = api("POST", GENERATE, body=generate_body([location(SQL)]))

    assert answer.status == 202, answer.text
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT payload #>> '{location_group,locations,0,id}' FROM jobs "
                 "WHERE job_id = :job_id"), {"job_id": answer.json["job_id"]}).scalar_one()
        tables = conn.execute(text("SELECT to_regclass('jobs') IS NOT NULL")).scalar_one()
    assert stored == SQL
    assert tables is True
    assert api("GET", f"/jobs/{answer.json['job_id']}").status == 200


def test_sql_like_idempotency_key__is_stored_verbatim_and_replays(
        api: Any, engine: Engine) -> None:
    first = api("POST", GENERATE, body=generate_body(), headers={"idempotency-key": SQL})
    replay = api("POST", GENERATE, body=generate_body(), headers={"idempotency-key": SQL})

    assert (first.status, replay.status) == (202, 200), replay.text
    assert replay.json["job_id"] == first.json["job_id"]
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT idempotency_key FROM jobs")).scalars().all()
    assert keys == [SQL]


def test_sql_like_kind_filter__matches_nothing_and_changes_nothing(
        api: Any, engine: Engine, seeded: dict[str, str]) -> None:
    before = snapshot(engine)

    answer = api("GET", f"/jobs?kind={quote(SQL)}")

    assert answer.status == 200, answer.text
    assert answer.json == {"jobs": [], "next_cursor": None}
    assert snapshot(engine) == before


# --- the database is unreachable -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health", None),
        ("GET", "/jobs", None),
        ("GET", "/jobs/stats", None),
        ("GET", f"/jobs/{MISSING_ID}", None),
        ("POST", f"/jobs/{MISSING_ID}/cancel", None),
        ("POST", GENERATE, generate_body()),
        ("POST", "/jobs/batch", {"jobs": [{"kind": "noop"}]}),
    ],
    ids=["health", "list", "stats", "get", "cancel", "generate", "batch"],
)
def test_database_unreachable__503_with_retry_after_then_recovers(
        api: Any, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch,
        method: str, path: str, body: Any) -> None:
    before = snapshot(engine)
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_DATABASE)
    runtime.reset()

    down = api(method, path, body=body)

    error = assert_error_envelope(ApiAnswer(down.status, down.headers, down.text), 503,
                                  "database_unavailable")
    assert "nonexistent-jobworker-socket" not in error["message"]
    assert int(down.headers["Retry-After"]) > 0
    assert snapshot(engine) == before

    monkeypatch.setenv("DATABASE_URL", database_url)
    runtime.reset()

    assert api("GET", "/health").status == 200
