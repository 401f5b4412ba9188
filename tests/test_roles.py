"""Least privilege: each function's runtime role does its whole job through the real handlers,
and is refused DDL, TRUNCATE, other schemas and the other functions' writes."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from jobworker import queue
from jobworker.aws import runtime
from jobworker.aws.engine import libpq_url
from jobworker.queue import NewJob
from jobworker.queue.roles import OWNER_ONLY_TABLES, RUNTIME_GRANTS, scram_verifier
from jobworker.queue.schema import migrate
from tests.conftest import LambdaClient
from tests.test_route_jobs import request

API, POLLER, SWEEPER = "jobworker_api", "jobworker_poller", "jobworker_sweeper"


def as_role(database_url: str, role: str) -> str:
    return libpq_url(make_url(libpq_url(database_url)).set(username=role, password=None))


class Functions:
    """The handlers, each connecting as its own runtime role (as the template deploys them)."""

    def __init__(self, database_url: str, api: LambdaClient, handlers: dict[str, Any],
                 monkeypatch: pytest.MonkeyPatch) -> None:
        self.database_url = database_url
        self.api_client = api
        self.handlers = handlers
        self.monkeypatch = monkeypatch

    def _become(self, role: str) -> None:
        self.monkeypatch.setenv("DATABASE_URL", as_role(self.database_url, role))
        runtime.reset()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        self._become(API)
        return self.api_client(method, path, body)

    def poller(self, seconds: float) -> dict[str, Any]:
        self._become(POLLER)
        summary: dict[str, Any] = self.handlers["poller"](seconds)
        return summary

    def sweeper(self) -> dict[str, Any]:
        self._become(SWEEPER)
        summary: dict[str, Any] = self.handlers["sweeper"]()
        return summary


@pytest.fixture
def functions(database_url: str, api: LambdaClient, handlers: dict[str, Any],
              monkeypatch: pytest.MonkeyPatch) -> Functions:
    return Functions(database_url, api, handlers, monkeypatch)


def test_roles__each_function_does_its_work_as_its_own_role(
    functions: Functions, engine: Engine,
) -> None:
    job_id = functions.api("POST", "/jobs/generate", request(8, max_runtime_seconds=1)
                           ).json["job_id"]
    other = functions.api("POST", "/jobs", {"kind": "noop"}).json  # stays PENDING
    assert functions.api("POST", f"/jobs/{other['job_id']}/cancel").status == 200

    summary = functions.poller(8)
    assert (summary["error"], summary["completed"]) == (None, 1)
    routes = functions.api("GET", f"/jobs/{job_id}/routes")
    assert routes.status == 200, routes.text
    assert sum(len(route["stops"]) for route in routes.json["routes"]) == 8

    with engine.begin() as conn:  # an orphan, and a job finished long ago
        (orphan,) = queue.create_jobs(conn, [NewJob(kind="noop")])
        conn.execute(text(
            "UPDATE jobs SET progress = 'RUNNING', attempts = 1, started_at = now(),"
            " lease_owner = 'gone', lease_expires_at = now() - interval '1 minute'"
            " WHERE job_id = :id"), {"id": orphan})
        conn.execute(text("UPDATE jobs SET finished_at = now() - interval '400 days'"
                          " WHERE job_id = :id"), {"id": other["job_id"]})
        # The route job's plan, long expired, and its job already gone.
        conn.execute(text("UPDATE route_groups SET created_at = now() - interval '4000 days',"
                          " job_id = gen_random_uuid()"))
    swept = functions.sweeper()
    assert (swept["error"], swept["recovered"], swept["pruned"]) == (None, 1, 1)
    assert swept["pruned_route_groups"] == 1


REFUSED_TO_ALL = [
    "DROP TABLE jobs",
    "TRUNCATE jobs",
    "ALTER TABLE jobs ADD COLUMN extra integer",
    "CREATE TABLE intruder (x integer)",
    "CREATE SCHEMA intruder",
    "SELECT * FROM alembic_version",
    "CREATE INDEX intruder_idx ON jobs (kind)",
    "DROP TYPE progressenum CASCADE",
    "ALTER TABLE jobs DISABLE TRIGGER jobs_before_update",
]
REFUSED_TO_ONE = {
    API: ["DELETE FROM jobs", "INSERT INTO route_groups (depot_lat, depot_lon,"
          " total_distance_km, total_duration_minutes, vehicles_used, locations_served,"
          " solver) VALUES (0, 0, 0, 0, 0, 0, '{}')", "DELETE FROM route_groups"],
    POLLER: ["DELETE FROM jobs", "INSERT INTO jobs DEFAULT VALUES", "DELETE FROM route_stops"],
    SWEEPER: ["INSERT INTO jobs DEFAULT VALUES", "SELECT * FROM route_stops",
              "DELETE FROM routes", "INSERT INTO route_groups DEFAULT VALUES"],
}
CASES = [(role, sql) for role in RUNTIME_GRANTS for sql in REFUSED_TO_ALL + REFUSED_TO_ONE[role]]


@pytest.mark.parametrize(("role", "statement"), CASES)
def test_roles__refuse_what_the_function_must_not_do(
    engine: Engine, database_url: str, role: str, statement: str,
) -> None:
    with psycopg.connect(as_role(database_url, role)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        conn.rollback()
        assert conn.execute("SELECT to_regclass('jobs') IS NOT NULL").fetchone() == (True,)


def test_roles__other_schemas_are_out_of_reach(engine: Engine, database_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS private"))
        conn.execute(text("CREATE TABLE IF NOT EXISTS private.secrets (x integer)"))
    try:
        for role in RUNTIME_GRANTS:
            with psycopg.connect(as_role(database_url, role)) as conn, \
                    pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM private.secrets")
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA private CASCADE"))


def test_roles__every_table_is_granted_to_some_role(engine: Engine) -> None:
    """A migration that adds a table must add it to RUNTIME_GRANTS, or no function can use it."""
    with engine.connect() as conn:
        tables = set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    granted = {table for tables_of in RUNTIME_GRANTS.values() for table in tables_of}
    assert tables - set(OWNER_ONLY_TABLES) - {"work_ledger"} <= granted
    assert granted <= tables, "the map names a table no migration created"


def test_roles__migrating_again_puts_back_a_privilege_taken_away_and_takes_an_extra_one(
        engine: Engine, database_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"REVOKE INSERT ON jobs FROM {API}"))
        conn.execute(text(f"GRANT DELETE ON jobs TO {API}"))
    migrate(engine)
    with engine.connect() as conn:
        privileges = set(conn.execute(text(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = :role AND table_name = 'jobs'"), {"role": API}).scalars())
    assert privileges == set(RUNTIME_GRANTS[API]["jobs"])


def test_scram_verifier__matches_the_rfc_7677_example() -> None:
    """RFC 7677's example user: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096
    iterations; its ServerSignature verifies only against the right ServerKey."""
    import base64
    import hashlib
    import hmac

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt=salt)
    server_key = base64.b64decode(verifier.rsplit(":", 1)[1])
    auth_message = (
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    signature = hmac.digest(server_key, auth_message.encode(), hashlib.sha256)
    assert base64.b64encode(signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert verifier.startswith("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$")


def test_migration_function__sets_each_role_the_password_of_its_secret(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import boto3
    from moto import mock_aws

    from jobworker.aws.migrate_resource import set_runtime_passwords
    from jobworker.aws.settings import ConfigError

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("secretsmanager")
        arns = {role: client.create_secret(Name=role, SecretString=json.dumps(
            {"username": role, "password": f"pw-of-{role}"}))["ARN"] for role in RUNTIME_GRANTS}
        set_runtime_passwords(engine, arns)
        with engine.connect() as conn:
            stored = dict(conn.execute(text(  # type: ignore[arg-type]
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(:roles)"),
                {"roles": list(RUNTIME_GRANTS)}).all())
        assert set(stored) == set(RUNTIME_GRANTS)
        assert all(value.startswith("SCRAM-SHA-256$4096:") for value in stored.values())
        with pytest.raises(ConfigError, match="not 'jobworker_poller'"):
            set_runtime_passwords(engine, {POLLER: arns[API]})
        with engine.begin() as conn:
            for role in RUNTIME_GRANTS:
                conn.execute(text(f'ALTER ROLE "{role}" PASSWORD NULL'))
