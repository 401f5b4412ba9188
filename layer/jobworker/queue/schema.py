"""``jobworker migrate``: bring the schema to the newest revision, idempotently and safely."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger("jobworker.migrate")


@dataclass(frozen=True)
class MigrationLimits:
    """Limits of the migration transaction, in seconds (0: none).

    ``lock_seconds`` bounds each wait for a table lock: a migration that cannot get ``jobs``
    (a long transaction holds it) fails fast instead of queueing every query of the service
    behind its own exclusive lock request. ``statement_seconds`` bounds every statement, the
    wait for another process's migration included. ``on_backend`` is told the server process
    id of the migrating session once the transaction has begun (to stop it from another
    connection if a deadline passes).
    """

    statement_seconds: float = 600.0
    lock_seconds: float = 10.0
    on_backend: Callable[[int], None] | None = None


def head_revision() -> str:
    """The newest revision this code knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def grant_runtime_roles(connection: Connection) -> None:
    """The final step of every migration to head: the runtime roles' grants, re-applied from
    the one map (``jobworker.queue.roles``), cover every table the revisions created. It runs
    in the migration's transaction, under its advisory lock."""
    from jobworker.queue.roles import apply_runtime_grants

    apply_runtime_grants(connection)


def install_server_functions(connection: Connection) -> None:
    """(Re)define the statements that run as server functions (``SERVER_FUNCTIONS``) from
    ``queries.sql`` as this code has it; one that is already as written is left alone (its
    callers keep their cached plans). Part of every migration to head, like the grants, so
    a release that changes such a statement needs no revision of its own."""
    from jobworker.queue.sql import SERVER_FUNCTIONS

    for function in SERVER_FUNCTIONS.values():
        signature = function.signature()
        installed = connection.execute(
            text("SELECT prosrc, proconfig FROM pg_proc WHERE oid = to_regprocedure(:signature)"),
            {"signature": signature}).first()
        if installed is not None and tuple(installed) == (function.body(), function.config()):
            continue
        # DROP, not CREATE OR REPLACE: that cannot change the columns it returns. Both in
        # the migration's transaction: a caller sees the old function or the new one.
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature}")
        connection.exec_driver_sql(function.definition())
        connection.exec_driver_sql(
            f"COMMENT ON FUNCTION {signature} IS 'queries.sql''s {function.statement}, run "
            "as a function so that its plan is kept per connection (jobworker.queue.sql); "
            "made by jobworker migrate: edit queries.sql, not this.'")


def migrate(engine: Engine, revision: str = "head",
            limits: MigrationLimits | None = None) -> str | None:
    """Apply every pending migration; returns the revision the database is at afterwards.

    A database already at a revision this code does not know (newer code migrated it, and
    this older code is being rolled back to) is left alone: migrations only move forward.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    limits = limits or MigrationLimits()
    with engine.connect() as connection:
        # Everything below is one transaction (committed at the end), on one backend: its
        # limits are set first, and its process id is the one to stop at a deadline.
        backend = connection.execute(
            text("SELECT pg_backend_pid(), set_config('statement_timeout', :statement, true),"
                 " set_config('lock_timeout', '0', true)"),
            {"statement": postgres_duration(limits.statement_seconds)},
        ).scalar_one()
        if limits.on_backend is not None:
            limits.on_backend(backend)
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None:
            try:
                scripts.get_revision(current)
            except CommandError:
                log.warning("Database is at revision %s, newer than this code; leaving it",
                            current)
                return current
        config.attributes["connection"] = connection
        config.attributes["limits"] = limits
        command.upgrade(config, revision)
        if revision == "head":
            install_server_functions(connection)
            grant_runtime_roles(connection)
        connection.commit()
        return MigrationContext.configure(connection).get_current_revision()


def postgres_duration(seconds: float) -> str:
    """A limit for set_config: whole milliseconds, 0 (off) only when asked for."""
    return "0" if seconds <= 0 else f"{max(1, round(seconds * 1000))}ms"
