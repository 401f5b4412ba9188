"""Database work has limits: every role's connections open with a statement limit, a lock
limit, an idle-in-transaction limit and TCP keepalives, and a long wait is cut off instead of
eating the invocation. Checked on the server (``SHOW``), through the engines the handlers use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from jobworker import queue
from jobworker.aws import runtime
from jobworker.aws.timeouts import ROLES, Role
from jobworker.queue import NewJob

SHOWN = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


def server_settings(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {name: conn.execute(text(f"SHOW {name}")).scalar_one() for name in SHOWN}


@pytest.mark.parametrize(("role", "statement", "lock"), [
    ("api", "10s", "5s"), ("poller", "30s", "5s"), ("sweeper", "30s", "5s"),
    ("migration", "10min", "10s"),
])
def test_each_role_opens_its_connections_with_its_limits(
        app_env: None, role: Role, statement: str, lock: str) -> None:
    assert server_settings(runtime.get_engine(role)) == {
        "statement_timeout": statement, "lock_timeout": lock,
        "idle_in_transaction_session_timeout": "1min",
    }


def test_limits_come_from_the_settings(app_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "0")  # 0: no limit, as in Postgres
    monkeypatch.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "90")
    runtime.reset()
    assert server_settings(runtime.get_engine("poller")) == {
        "statement_timeout": "12500ms", "lock_timeout": "0",
        "idle_in_transaction_session_timeout": "90s",
    }


def test_connections_ask_for_tcp_keepalives(app_env: None) -> None:
    """Keepalives are a client-side libpq setting (a Unix socket ignores them): check the
    parameters the connection was opened with."""
    for role in ROLES:
        with runtime.get_engine(role).connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            parameters = raw.info.get_parameters()
        assert parameters["keepalives"] == "1"
        assert parameters["keepalives_idle"] == "30"
        assert int(parameters["tcp_user_timeout"]) > 0


@pytest.fixture
def row_locked(engine: Engine, database_url: str) -> Iterator[Any]:
    """A job RUNNING for owner "w" (lease token 1) whose row another session holds locked."""
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob(kind="noop")])
        conn.execute(text(
            "UPDATE jobs SET progress = 'RUNNING', attempts = 1, lease_owner = 'w', "
            "lease_token = 1, started_at = now(), lease_expires_at = now() + interval '1 minute' "
            "WHERE job_id = :id"), {"id": job_id})
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM jobs WHERE job_id = %s FOR UPDATE", [job_id])
        yield job_id
        holder.rollback()


def test_a_blocked_update_fails_with_a_lock_timeout_instead_of_hanging(
        app_env: None, row_locked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "0.2")
    runtime.reset()
    with pytest.raises(DBAPIError) as caught, runtime.get_engine("api").begin() as conn:
        queue.cancel_job(conn, row_locked)
    assert isinstance(caught.value.orig, psycopg.errors.LockNotAvailable)


def test_a_long_statement_is_cancelled_at_the_role_limit(
        app_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_API_STATEMENT_TIMEOUT_SECONDS", "0.2")
    runtime.reset()
    with pytest.raises(DBAPIError) as caught, runtime.get_engine("api").connect() as conn:
        conn.execute(text("SELECT pg_sleep(30)"))
    assert isinstance(caught.value.orig, psycopg.errors.QueryCanceled)


def test_a_session_left_idle_in_its_transaction_is_ended(
        app_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "0.2")
    runtime.reset()
    with runtime.get_engine("sweeper").connect() as conn:
        conn.execute(text("SELECT 1"))  # the transaction has begun, and then nothing comes
        time.sleep(1.0)
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text("SELECT 1"))
    assert isinstance(caught.value.orig, psycopg.errors.IdleInTransactionSessionTimeout)


def test_heartbeat__a_beat_blocked_on_a_row_lock_gives_up_within_its_interval(
        app_env: None, row_locked: Any) -> None:
    """The heartbeat shares the poller's engine but limits its own transaction (SET LOCAL):
    a beat stuck behind a lock fails and the next one tries again, long before the lease
    (three intervals) runs out."""
    from jobworker.poller.heartbeat import Heartbeat

    engine = runtime.get_engine("poller")
    heartbeat = Heartbeat(engine, owner="w", lease_seconds=6, interval=2)
    heartbeat.hold_all([(row_locked, 1)])
    with pytest.raises(DBAPIError) as caught:
        heartbeat.beat()
    assert isinstance(caught.value.orig, psycopg.errors.LockNotAvailable)
    with engine.begin() as conn:  # the limit was the beat's alone
        assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "5s"
