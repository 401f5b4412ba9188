"""Alembic environment: applies jobworker's migrations to the connection ``jobworker migrate`` made.

All migrations run in one transaction that first takes a transaction-level advisory lock, so
two processes migrating at once queue up instead of racing: the second one waits (as long as
the statement limit ``jobworker.queue.schema.migrate`` set allows), then finds the schema at
head and does nothing. Once the lock is held, every table lock a migration waits for is
bounded by the lock limit, set with ``set_config(..., true)`` (until the transaction ends).
"""

from alembic import context
from sqlalchemy import text

from jobworker.queue.schema import MigrationLimits, postgres_duration

MIGRATION_LOCK_KEY = 7_420_315_001  # any constant shared by every migrating process

connection = context.config.attributes["connection"]
limits: MigrationLimits = context.config.attributes.get("limits") or MigrationLimits()
context.configure(connection=connection, transactional_ddl=True, transaction_per_migration=False)
with context.begin_transaction():
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.execute(text("SELECT set_config('lock_timeout', :lock, true)"),
                       {"lock": postgres_duration(limits.lock_seconds)})
    context.run_migrations()
