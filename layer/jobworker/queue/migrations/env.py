"""Alembic environment: applies jobworker's migrations to the connection ``jobworker migrate`` made.

All migrations run in one transaction that first takes a transaction-level advisory lock, so
two processes migrating at once queue up instead of racing: the second one waits, then finds
the schema at head and does nothing.
"""

from alembic import context
from sqlalchemy import text

MIGRATION_LOCK_KEY = 7_420_315_001  # any constant shared by every migrating process

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True, transaction_per_migration=False)
with context.begin_transaction():
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    context.run_migrations()
