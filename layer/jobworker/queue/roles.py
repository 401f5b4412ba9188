"""Runtime roles: what each function may do in the database, kept in one place.

Migrations run as the owner (the master user); the functions connect as these roles, which
own nothing, so they cannot run DDL, ``TRUNCATE`` or touch another schema: they get
``USAGE`` on jobworker's schema and exactly the table privileges listed here.

The API updates jobs as well as inserting and reading them (cancel, retry and enqueue are
updates). The poller claims and updates jobs and writes route plans. The sweeper updates
(time-outs, orphans) and deletes (pruning) jobs, and prunes route groups.

A migration that adds a table adds it to ``RUNTIME_GRANTS``: ``migrate()`` re-applies this
map after every upgrade (and ``tests/test_roles.py`` fails for a table nobody is granted),
so the grants always match the code, whatever revision added which table.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import b64encode

from sqlalchemy import text
from sqlalchemy.engine import Connection

ROUTE_TABLES = ("route_groups", "routes", "route_stops", "route_unassigned")

RUNTIME_GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "jobworker_api": {
        "jobs": ("SELECT", "INSERT", "UPDATE"),
        **dict.fromkeys(ROUTE_TABLES, ("SELECT",)),
    },
    "jobworker_poller": {
        "jobs": ("SELECT", "UPDATE"),
        **dict.fromkeys(ROUTE_TABLES, ("SELECT", "INSERT")),
    },
    "jobworker_sweeper": {
        "jobs": ("SELECT", "UPDATE", "DELETE"),
        # Route groups past their retention (their routes and stops go by ON DELETE CASCADE);
        # UPDATE only because the prune locks its batch FOR UPDATE, which Postgres requires.
        "route_groups": ("SELECT", "UPDATE", "DELETE"),
    },
}

# Tables no runtime role may see.
OWNER_ONLY_TABLES = ("alembic_version",)

ROLE_ATTRIBUTES = ("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
                   " NOINHERIT")


def ensure_role(connection: Connection, role: str) -> None:
    """Create the role, or bring an existing one back to these attributes."""
    exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"),
                                {"role": role}).first()
    verb = "ALTER" if exists else "CREATE"
    connection.execute(text(f'{verb} ROLE "{role}" {ROLE_ATTRIBUTES}'))


def apply_runtime_grants(connection: Connection) -> None:
    """Create or update the roles, take back every table privilege they hold in the schema
    and grant the map's (for the tables that exist): idempotent, one transaction."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    for role, tables in RUNTIME_GRANTS.items():
        ensure_role(connection, role)
        connection.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"'))
        connection.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM "{role}"'))
        for table, privileges in tables.items():
            if connection.execute(text("SELECT to_regclass(:table)"),
                                  {"table": f'"{schema}"."{table}"'}).scalar() is not None:
                connection.execute(text(
                    f'GRANT {", ".join(privileges)} ON "{schema}"."{table}" TO "{role}"'))


def drop_runtime_roles(connection: Connection) -> None:
    """Take back what ``apply_runtime_grants`` gave in this database; drop a role once no
    database holds a privilege of it any more (roles are shared by the whole cluster)."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    for role in RUNTIME_GRANTS:
        if connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"),
                              {"role": role}).first() is None:
            continue
        connection.execute(text(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM "{role}"'))
        connection.execute(text(f'REVOKE USAGE ON SCHEMA "{schema}" FROM "{role}"'))
        connection.execute(text(f'REVOKE CONNECT ON DATABASE "{database}" FROM "{role}"'))
        still_used = connection.execute(text(
            "SELECT 1 FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass"
            " AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = :role)"),
            {"role": role}).first()
        if still_used is None:
            connection.execute(text(f'DROP ROLE "{role}"'))


def scram_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for ``password`` (RFC 5802/7677): setting
    it instead of the password keeps the password out of any statement log."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return (f"SCRAM-SHA-256${iterations}:{b64encode(salt).decode()}"
            f"${b64encode(stored_key).decode()}:{b64encode(server_key).decode()}")


def set_role_password(connection: Connection, role: str, password: str) -> None:
    """Give a runtime role the password its function's secret holds."""
    if role not in RUNTIME_GRANTS:
        raise ValueError(f"{role!r} is not a runtime role ({', '.join(RUNTIME_GRANTS)})")
    verifier = scram_verifier(password)  # base64, digits, "$" and ":" only: safe to inline
    # (not through text(): its ":name" parameters would eat the verifier's colons)
    connection.exec_driver_sql(f"ALTER ROLE \"{role}\" PASSWORD '{verifier}'")
