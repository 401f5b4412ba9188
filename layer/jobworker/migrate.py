"""``jobworker migrate``: bring the schema to the newest revision, idempotently and safely."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Apply every pending migration; returns the revision the database is at afterwards."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
        return MigrationContext.configure(connection).get_current_revision()
