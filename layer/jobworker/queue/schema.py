"""``jobworker migrate``: bring the schema to the newest revision, idempotently and safely."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger("jobworker.migrate")


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


def migrate(engine: Engine, revision: str = "head") -> str | None:
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
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None:
            try:
                scripts.get_revision(current)
            except CommandError:
                log.warning("Database is at revision %s, newer than this code; leaving it",
                            current)
                return current
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if revision == "head":
            grant_runtime_roles(connection)
        connection.commit()
        return MigrationContext.configure(connection).get_current_revision()
