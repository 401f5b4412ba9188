"""Query plans checked with EXPLAIN, not with timings: the queue stays fast at any table size
and whichever plan Postgres caches."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue.sql import query, raw_queries, with_parameters

# The type of each parameter, for PREPARE: some are not inferable from the statement alone.
PARAMETER_TYPES = {
    "owner": "text", "job_ids": "uuid[]", "tokens": "bigint[]", "results": "jsonb[]",
    "start_ids": "uuid[]", "start_tokens": "bigint[]",
    "now": "timestamptz", "lease_seconds": "float8", "job_id": "uuid", "token": "bigint",
    "result": "jsonb", "route_group_id": "uuid", "error": "text", "permanent": "boolean",
    "backoff_base_seconds": "float8", "backoff_cap_seconds": "float8",
    "progress": "text", "kind": "text", "limit": "integer", "before_created_at": "timestamptz",
    "before_job_id": "uuid",
}
# The statements that fence writes to RUNNING jobs on (owner, token): one job, or a batch.
SINGLE_FENCES = ["job_cancel_if_owned", "job_complete_if_owned", "job_fail_if_owned"]
BATCH_FENCES = ["job_complete_many_if_owned", "job_extend_leases", "job_release_many_if_owned"]
PLAN_MODES = ["force_custom_plan", "force_generic_plan"]
FINISHED, RUNNING = 5000, 500


# Each scan that must stay on its partial index, with the values it runs with.
LIVE_SCANS = [
    ("job_claim_batch", {"owner": "w", "limit": 100, "lease_seconds": 60, "start_count": 10,
                         "fast_kinds": ["noop"], "skip_ids": [], "durable": True},
     "jobs_queued_claim_idx"),
    ("job_recover_orphans", {}, "jobs_running_lease_idx"),
    ("job_recover_unstarted_orphans", {}, "jobs_running_lease_idx"),
    ("job_fail_timed_out", {"timeout_minutes": 30}, "jobs_running_lease_idx"),
]


def test_scans__stay_on_their_partial_index_beside_1m_finished_jobs(engine: Engine) -> None:
    """The claim and the sweeper's rules look only at live jobs, however many have ended.
    (One table of a million rows for all of them: making it is most of the test's time.)"""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (kind, progress, started_at, finished_at, attempts, created_at) "
            "SELECT 'noop', 'COMPLETED', now(), now(), 1, now() - make_interval(secs => i) "
            "FROM generate_series(1, 1000000) AS i"))
        conn.execute(text(
            "INSERT INTO jobs (kind, progress) SELECT 'noop', 'QUEUED' "
            "FROM generate_series(1, 1000)"))
        conn.execute(query("job_claim_batch"),
                     {"owner": "w", "limit": 10, "lease_seconds": 60, "start_count": 5,
                      "fast_kinds": [], "skip_ids": [], "durable": True, "now": None})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))
    wrong = {}
    for name, params, index in LIVE_SCANS:
        with engine.begin() as conn:
            plan = "\n".join(conn.execute(
                text("EXPLAIN " + str(query(name))), {**params, "now": None}).scalars())
            conn.rollback()
        if index not in plan or "Seq Scan on jobs" in plan:
            wrong[name] = f"expected {index}:\n{plan}"
    assert not wrong, wrong
    # The newest-first list: a page reads its rows off the two indexes, never the table.
    for progress in (None, "COMPLETED", "RUNNING"):
        with engine.begin() as conn:
            plan = "\n".join(conn.execute(text("EXPLAIN " + str(query("job_list"))), {
                "progress": progress, "kind": None, "limit": 50, "before_created_at": None,
                "before_job_id": None}).scalars())
        assert "Seq Scan on jobs" not in plan, plan
        if progress != "COMPLETED":  # else that part is ruled out before it runs
            assert "jobs_running_lease_idx" in plan, plan
        if progress != "RUNNING":
            assert "jobs_created_idx" in plan, plan


def analyzed_plan(conn: psycopg.Connection[Any], name: str, values: dict[str, Any]) -> Any:
    """EXPLAIN ANALYZE of ``name`` run as a prepared statement (what psycopg does when prepared
    statements are on), in a transaction that is rolled back."""
    names: list[str] = []

    def placeholder(param: str) -> str:
        if param not in names:
            names.append(param)
        return f"${names.index(param) + 1}"

    sql = with_parameters(raw_queries()[name], placeholder)
    types = ", ".join(PARAMETER_TYPES[param] for param in names)
    arguments = ", ".join(f"CAST(%s AS {PARAMETER_TYPES[param]})" for param in names)
    with conn.transaction(force_rollback=True), psycopg.ClientCursor(conn) as cursor:
        cursor.execute(f"PREPARE fenced ({types}) AS {sql}")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE fenced({arguments})",
                       [values[param] for param in names])
        row = cursor.fetchone()
    assert row is not None
    return row[0][0]["Plan"]


def nodes(plan: Any) -> list[Any]:
    """Every node of the plan, depth first."""
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def rows_removed(plan: Any) -> int:
    """Rows the plan's nodes looked at and threw away."""
    return sum(int(node.get("Rows Removed by Filter", 0))
               + int(node.get("Rows Removed by Join Filter", 0)) for node in nodes(plan))


@pytest.fixture
def held_jobs(engine: Engine) -> dict[str, Any]:
    """RUNNING jobs held by "w", with statistics taken before any ran (the worst case: they
    say almost nothing is RUNNING); returns values for every fence parameter. Half of them
    are started (the ids the batch statements complete, extend or release), half not (the
    ids a flush marks started)."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (kind, progress, started_at, finished_at, attempts) "
            f"SELECT 'noop', 'COMPLETED', now(), now(), 1 FROM generate_series(1, {FINISHED})"))
        conn.execute(text(
            "INSERT INTO jobs (kind, progress) SELECT 'noop', 'QUEUED' "
            f"FROM generate_series(1, {RUNNING})"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))
    with engine.begin() as conn:
        held = queue.claim_batch(conn, owner="w", limit=RUNNING, lease_seconds=60,
                                 start=RUNNING // 2)
    started = [job for job in held if job.started]
    unstarted = [job for job in held if not job.started]
    assert len(started) == len(unstarted) == RUNNING // 2
    return {
        "owner": "w", "job_ids": [job.job_id for job in started],
        "tokens": [job.token for job in started], "results": [None] * len(started),
        "start_ids": [job.job_id for job in unstarted],
        "start_tokens": [job.token for job in unstarted],
        "now": None, "lease_seconds": 60, "job_id": started[0].job_id,
        "token": started[0].token, "result": None, "route_group_id": None, "error": "x",
        "permanent": False, "backoff_base_seconds": 5, "backoff_cap_seconds": 300,
    }


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("name", BATCH_FENCES)
def test_batch_fences__look_at_each_job_once_even_with_stale_statistics(
        database_url: str, held_jobs: dict[str, Any], name: str, mode: str) -> None:
    """A plan that filters jobs by progress before matching the batch trusts statistics that
    say almost nothing is RUNNING; it then compares every RUNNING row with every id in the
    batch (a thousand completions: a million comparisons). The fence must be checked on the
    row each id finds, never used to pick the rows."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        plan = analyzed_plan(conn, name, held_jobs)
    scans = [node for node in nodes(plan) if node.get("Relation Name") == "jobs"]
    assert scans, plan
    for scan in scans:
        if "progress" in scan.get("Filter", ""):  # only on the row an id found
            assert "job_id" in scan.get("Index Cond", ""), plan
    assert rows_removed(plan) <= FINISHED + RUNNING, plan


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("name", SINGLE_FENCES)
def test_single_fences__find_the_job_by_primary_key_even_with_stale_statistics(
        database_url: str, held_jobs: dict[str, Any], name: str, mode: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        plan = analyzed_plan(conn, name, held_jobs)
    assert {node.get("Index Name") for node in nodes(plan) if "Index Name" in node} == {
        "jobs_pkey"}, plan
    assert rows_removed(plan) == 0, plan


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("progress", [None, "COMPLETED"])
def test_job_list__a_page_reads_about_a_page_of_rows_whichever_plan_is_cached(
        database_url: str, held_jobs: dict[str, Any], mode: str, progress: str | None) -> None:
    """GET /jobs merges two index walks (migration 0013); prepared, as psycopg prepares a
    statement it sees often, neither plan may read the table or sort more than the RUNNING
    jobs (statistics taken before any ran). (Asked for RUNNING jobs alone, a table this small
    is rightly scanned; beside a million jobs the lease index is used: the test above.)"""
    values = {"progress": progress, "kind": None, "limit": 50, "before_created_at": None,
              "before_job_id": None}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        plan = analyzed_plan(conn, "job_list", values)
    assert not [node for node in nodes(plan) if node["Node Type"] == "Seq Scan"], plan
    read = sum(int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1))
               for node in nodes(plan) if node.get("Relation Name") == "jobs")
    assert read <= 50 + RUNNING, plan
    assert rows_removed(plan) <= RUNNING, plan
