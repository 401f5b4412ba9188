"""The schema: migrations apply idempotently and concurrently, and the seed's SQL works verbatim."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from jobworker import queue
from jobworker.aws.engine import libpq_url, make_engine
from jobworker.queue import sql as sql_module
from jobworker.queue.schema import head_revision, install_server_functions, migrate
from jobworker.queue.sql import SERVER_FUNCTIONS, raw_queries, with_parameters

SEED_INSERT = (
    "INSERT INTO jobs (job_id, progress, created_at) "
    "VALUES (gen_random_uuid(), 'QUEUED', NOW()) RETURNING job_id;"
)
SEED_COUNT_BY_PROGRESS = "SELECT progress, COUNT(*) as count FROM jobs GROUP BY progress;"
SEED_STUCK_JOBS = """SELECT job_id, progress, started_at,
   EXTRACT(EPOCH FROM (NOW() - started_at))/60 as minutes_running
   FROM jobs
   WHERE progress = 'RUNNING'
   AND started_at < NOW() - INTERVAL '30 minutes';"""
SEED_MANUAL_RESET = (
    "UPDATE jobs SET progress = 'QUEUED', started_at = NULL "
    "WHERE progress = 'RUNNING' AND job_id = %s"
)


def test_migrate__twice_on_empty_database_is_idempotent(empty_database_url: str,
                                                        through_pooler: bool) -> None:
    engine = make_engine(empty_database_url, disable_prepared_statements=through_pooler)
    try:
        assert migrate(engine) == head_revision()
        assert migrate(engine) == head_revision()
        with engine.connect() as conn:
            tables = set(conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        assert {"jobs", "route_groups", "routes", "route_stops", "alembic_version"} <= tables
    finally:
        engine.dispose()


def test_migrate__two_processes_at_once_both_succeed(empty_database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": empty_database_url}
    command = [sys.executable, "-m", "jobworker.dev.cli", "migrate"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(*run.communicate(timeout=120), run.returncode) for run in runs]
    for stdout, stderr, code in results:
        assert code == 0, stderr
        assert f'"schema_revision": "{head_revision()}"' in stdout
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def test_seed_sql__enum_lists_the_five_states_first(engine: Engine, database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        values = [row[0] for row in
                  conn.execute("SELECT unnest(enum_range(NULL::progressenum));")]
    assert values[:5] == ["PENDING", "QUEUED", "RUNNING", "COMPLETED", "FAILED"]


def test_seed_sql__insert_count_stuck_and_manual_reset(engine: Engine, database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        job_id = conn.execute(SEED_INSERT).fetchone()[0]  # type: ignore[index]
        assert conn.execute(SEED_COUNT_BY_PROGRESS).fetchall() == [("QUEUED", 1)]
        # A worker claims it and then appears stuck for 45 minutes.
        conn.execute("UPDATE jobs SET progress = 'RUNNING', started_at = now() - interval "
                     "'45 minutes', lease_owner = 'w', lease_expires_at = now() WHERE job_id = %s",
                     (job_id,))
        stuck = conn.execute(SEED_STUCK_JOBS).fetchall()
        assert [row[0] for row in stuck] == [job_id]
        assert stuck[0][3] == pytest.approx(45, abs=1)
        conn.execute(SEED_MANUAL_RESET, (job_id,))
        row = conn.execute("SELECT progress, started_at, lease_owner FROM jobs WHERE job_id = %s",
                           (job_id,)).fetchone()
    assert row == ("QUEUED", None, None)


def test_updated_at__moves_on_a_raw_sql_update(engine: Engine) -> None:
    with engine.begin() as conn:
        job_id = conn.execute(text(SEED_INSERT)).scalar_one()
        before = conn.execute(text("SELECT updated_at FROM jobs WHERE job_id = :id"),
                              {"id": job_id}).scalar_one()
    with engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET priority = 5 WHERE job_id = :id"), {"id": job_id})
        after = conn.execute(text("SELECT updated_at FROM jobs WHERE job_id = :id"),
                             {"id": job_id}).scalar_one()
    assert after > before


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE jobs SET progress = 'RUNNING'", "jobs_lease_iff_running"),
        ("UPDATE jobs SET progress = 'COMPLETED'", "jobs_finished_iff_terminal"),
        ("UPDATE jobs SET attempts = 4", "jobs_attempts_within_max"),
        ("UPDATE jobs SET payload = '[]'", "jobs_payload_is_object"),
        ("UPDATE jobs SET kind = ''", "jobs_kind_not_blank"),
    ],
)
def test_schema__refuses_rows_that_break_invariants(engine: Engine, statement: str,
                                                     constraint: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(SEED_INSERT))
    with pytest.raises(Exception, match=constraint), engine.begin() as conn:
        conn.execute(text(statement))


def test_migrate__database_ahead_of_the_code_is_left_alone(empty_database_url: str,
                                                           through_pooler: bool) -> None:
    """A deploy rolled back after migrating: the older code must not fail on the newer schema."""
    engine = make_engine(empty_database_url, disable_prepared_statements=through_pooler)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        assert migrate(engine) == "9999"
    finally:
        engine.dispose()


SCHEMA_QUERIES = {
    "columns": "SELECT table_name || '.' || column_name || ' ' || data_type || ' '"
               " || COALESCE(column_default, '') || ' ' || is_nullable"
               " FROM information_schema.columns WHERE table_schema = 'public'",
    "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)"
                   " FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    "functions": "SELECT pg_get_functiondef(oid) FROM pg_proc"
                 " WHERE pronamespace = 'public'::regnamespace",
    "triggers": "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "types": "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace"
             " AND typtype = 'e'",
    "grants": "SELECT grantee || ' ' || table_name || ' ' || privilege_type"
              " FROM information_schema.role_table_grants WHERE table_schema = 'public'",
    "roles": "SELECT rolname FROM pg_roles WHERE rolname LIKE 'jobworker%'",
    # A table's storage options (how autovacuum treats it) are part of what a revision sets.
    "storage": "SELECT relname || ' ' || array_to_string(reloptions, ',') FROM pg_class"
               " WHERE relnamespace = 'public'::regnamespace AND reloptions IS NOT NULL",
    # A column's comment is its contract (what jobs.error may hold, say): part of the schema.
    "comments": "SELECT c.relname || COALESCE('.' || a.attname, '') || ': ' || d.description"
                " FROM pg_description AS d"
                " JOIN pg_class AS c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass"
                " LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = d.objsubid"
                " AND d.objsubid > 0"
                " WHERE c.relnamespace = 'public'::regnamespace",
}


def schema_of(connection: Connection) -> dict[str, set[str]]:
    return {part: set(connection.execute(text(sql)).scalars())
            for part, sql in SCHEMA_QUERIES.items()}


def test_migrations__each_downgrade_restores_the_schema_its_upgrade_found(
        empty_database_url: str, through_pooler: bool) -> None:
    """One revision at a time: up, then down again, and the tables, columns, indexes,
    constraints, functions, triggers, types and comments are what they were before."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from jobworker.queue.schema import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    revisions = [script.revision for script in
                 reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]
    engine = make_engine(empty_database_url, disable_prepared_statements=through_pooler)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            for before, revision in zip(["base", *revisions], revisions, strict=False):
                command.upgrade(config, before)
                connection.commit()
                found = schema_of(connection)
                command.upgrade(config, revision)
                connection.commit()
                assert schema_of(connection) != found, f"{revision} changed nothing"
                command.downgrade(config, before)
                connection.commit()
                assert schema_of(connection) == found, f"downgrade of {revision}"
        assert migrate(engine) == head_revision()
    finally:
        engine.dispose()


def _autovacuum_options(conn: Any, table: str) -> dict[str, float]:
    options = conn.execute(text("SELECT reloptions FROM pg_class WHERE oid = to_regclass(:t)"),
                           {"t": table}).scalar() or []
    return {name: float(value) for name, value in (option.split("=") for option in options)
            if name.startswith("autovacuum_")}


def test_migrate__jobs_is_vacuumed_sooner_and_faster_than_postgres_defaults(
        engine: Engine) -> None:
    """The queue's table turns over all the time: its vacuum must start at a small share of
    dead rows and run at a cost limit above the server's default, and be analyzed often."""
    with engine.connect() as conn:
        options = _autovacuum_options(conn, "jobs")
        defaults = {name: float(conn.execute(text("SELECT current_setting(:n)"),
                                             {"n": name}).scalar() or 0)
                    for name in ("autovacuum_vacuum_scale_factor",
                                 "autovacuum_analyze_scale_factor",
                                 "autovacuum_vacuum_insert_scale_factor")}
        server_cost_limit = float(conn.execute(text(
            "SELECT CASE WHEN current_setting('autovacuum_vacuum_cost_limit') = '-1'"
            " THEN current_setting('vacuum_cost_limit')"
            " ELSE current_setting('autovacuum_vacuum_cost_limit') END")).scalar() or 0)
    for name, default in defaults.items():
        assert options[name] < default, name
    assert options["autovacuum_vacuum_cost_limit"] > server_cost_limit
    # Vacuum once 2% (plus a floor of rows) is dead: at a million rows, after 25,000, not 200,000.
    assert (options["autovacuum_vacuum_threshold"]
            + options["autovacuum_vacuum_scale_factor"] * 1_000_000) <= 25_000


def _installed(conn: Any, statement: str) -> tuple[int, str, list[str] | None] | None:
    """The server function of ``statement`` as the database has it: oid, body, settings."""
    row = conn.execute(text("SELECT oid, prosrc, proconfig FROM pg_proc WHERE oid = "
                            "to_regprocedure(:signature)"),
                       {"signature": SERVER_FUNCTIONS[statement].signature()}).first()
    return None if row is None else (row[0], row[1], row[2])


@pytest.mark.parametrize("statement", sorted(SERVER_FUNCTIONS))
def test_migrate__a_server_function_is_made_from_queries_sql_and_keeps_its_generic_plan(
        empty_database_url: str, through_pooler: bool, monkeypatch: pytest.MonkeyPatch,
        statement: str) -> None:
    engine = make_engine(empty_database_url, disable_prepared_statements=through_pooler)
    function = SERVER_FUNCTIONS[statement]
    try:
        migrate(engine)
        with engine.connect() as conn:
            first = _installed(conn, statement)
        assert first is not None
        assert with_parameters(raw_queries()[statement], lambda n: f"p_{n}") in first[1]
        # Without it the plan "kept per connection" is made again at every call.
        assert first[2] == ["plan_cache_mode=force_generic_plan"]

        migrate(engine)  # unchanged: left alone (its callers keep their cached plans)
        with engine.connect() as conn:
            assert _installed(conn, statement) == first

        # As a release before the setting left it: the next migration to head puts it on.
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER FUNCTION {function.signature()} RESET ALL")
        assert migrate(engine) == head_revision()
        with engine.connect() as conn:
            reset = _installed(conn, statement)
        assert reset is not None
        assert reset[1:] == first[1:]

        # A release whose queries.sql changes the statement: the next migration to head
        # redefines it, with no revision of its own.
        marker = "-- changed by a later release"
        changed = {**raw_queries(), statement: marker + "\n" + raw_queries()[statement]}
        monkeypatch.setattr(sql_module, "raw_queries", lambda: changed)
        assert migrate(engine) == head_revision()
        with engine.connect() as conn:
            redefined = _installed(conn, statement)
        assert redefined is not None
        assert marker in redefined[1]
    finally:
        engine.dispose()


def _claim_one(conn: Connection) -> None:
    queue.claim_batch(conn, owner="w", limit=1, lease_seconds=60)


def _complete_one(conn: Connection) -> None:
    queue.complete_jobs(conn, owner="w", done=[queue.Completion(uuid.uuid4(), 1, None)])


CALLERS = {"job_claim_batch": _claim_one, "job_complete_many_if_owned": _complete_one}


@pytest.mark.parametrize("statement", sorted(CALLERS))
def test_batch_statements__call_the_function_whose_plan_the_connection_keeps(
        engine: Engine, statement: str) -> None:
    # What the poller sends is the call, not the statement: drop the function and the call
    # has nothing to run. (Then put it back for the other tests on this database.)
    assert set(CALLERS) == set(SERVER_FUNCTIONS)
    function = SERVER_FUNCTIONS[statement]
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP FUNCTION {function.signature()}")
            with pytest.raises(DBAPIError, match=function.name):
                CALLERS[statement](conn)
            conn.rollback()
    finally:
        with engine.begin() as conn:
            install_server_functions(conn)
    with engine.begin() as conn:
        CALLERS[statement](conn)  # back, and answering


def test_migrate__a_vacuum_holding_jobs_makes_0012_wait_its_lock_limit_and_change_nothing(
        empty_database_url: str, through_pooler: bool) -> None:
    """0012 needs the lock a vacuum holds (SHARE UPDATE EXCLUSIVE): while another session
    holds it, the migration gives up at its lock limit with the database as it found it, and
    the next deploy's migration succeeds."""
    from sqlalchemy.exc import OperationalError

    from jobworker.queue.schema import MigrationLimits

    engine = make_engine(empty_database_url, disable_prepared_statements=through_pooler)
    try:
        migrate(engine, "0011")
        with engine.connect() as vacuum_like:
            vacuum_like.execute(text("LOCK TABLE jobs IN SHARE UPDATE EXCLUSIVE MODE"))
            with pytest.raises(OperationalError, match="lock timeout"):
                migrate(engine, limits=MigrationLimits(lock_seconds=0.3))
            vacuum_like.rollback()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0011"
            assert _autovacuum_options(conn, "jobs") == {}
        assert migrate(engine) == head_revision()
        with engine.connect() as conn:
            assert _autovacuum_options(conn, "jobs")
    finally:
        engine.dispose()


def test_migrate__the_newest_first_index_leaves_running_jobs_out(engine: Engine) -> None:
    """0013: a claim and a heartbeat write no entry to it (the RUNNING version is left out);
    the listing that reads it is checked in test_queue.py and test_query_plans.py."""
    with engine.connect() as conn:
        definition = conn.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_created_idx'")).scalar()
    assert definition is not None
    assert definition.endswith(
        "(created_at DESC, job_id DESC) WHERE (progress <> 'RUNNING'::progressenum)")
