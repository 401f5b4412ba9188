"""``jobworker bench prune``: can the sweeper delete finished jobs faster than the queue makes them?

One database with ``--rows`` COMPLETED jobs that finished 30 days ago (``INSERT ... SELECT
generate_series``, then ``VACUUM ANALYZE``), ``--route-groups`` of them with a route group of
``--stops`` stops made 100 days ago, and 1,000 QUEUED jobs beside them. Then one sweep runs
through the sweeper's own entry (``jobworker.sweeper.sweep``, its batches, its engine role),
with no deadline, first for the jobs, then (a second pass) for their route groups; each
pass's time gives its rows per second. The queue's best measured throughput on this VM is
about 40k jobs/s: pruning keeps up when its rate is above that.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

from sqlalchemy import text

from .common import BenchServer, print_table, rounded, run_scenario, say

INSERT_FINISHED = """
INSERT INTO jobs (kind, progress, payload, attempts, attempt_history,
                  run_at, created_at, started_at, finished_at, updated_at)
SELECT 'noop', 'COMPLETED', '{}'::jsonb, 1,
       jsonb_build_array(jsonb_build_object('attempt', 1, 'outcome', 'completed')),
       t, t, t, t + interval '1 second', t + interval '1 second'
  FROM (SELECT now() - interval '30 days' + g * interval '1 millisecond' AS t
          FROM generate_series(1, :count) AS g) AS s
"""

INSERT_QUEUED = """
INSERT INTO jobs (kind, progress, payload) SELECT 'noop', 'QUEUED', '{}'::jsonb
  FROM generate_series(1, 1000)
"""

# Route groups made by the first :groups finished jobs, each with one route of :stops stops.
INSERT_ROUTE_GROUPS = """
WITH made AS (
    INSERT INTO route_groups (job_id, created_at, depot_lat, depot_lon, total_distance_km,
                              total_duration_minutes, vehicles_used, locations_served, solver)
    SELECT job_id, now() - interval '100 days', 0, 0, 1, 1, 1, :stops, '{}'::jsonb
      FROM jobs WHERE progress = 'COMPLETED' ORDER BY finished_at LIMIT :groups
    RETURNING route_group_id, job_id
), linked AS (
    UPDATE jobs SET route_group_id = made.route_group_id FROM made
     WHERE jobs.job_id = made.job_id RETURNING made.route_group_id
), routed AS (
    INSERT INTO routes SELECT route_group_id, 1, 1, 1, 1, 0, 1, 0 FROM linked
    RETURNING route_group_id
)
INSERT INTO route_stops
SELECT route_group_id, 1, s, 'loc' || s, 0, 0, 0, 0, 0, 1, s, 0.1
  FROM routed, generate_series(1, :stops) AS s
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench prune",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="finished jobs to prune (default 1,000,000)")
    parser.add_argument("--route-groups", type=int, default=10_000,
                        help="of those, jobs with a route group (default 10,000)")
    parser.add_argument("--stops", type=int, default=20, help="stops per route group")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    from jobworker.aws.engine import make_engine
    from jobworker.aws.settings import load_settings
    from jobworker.aws.timeouts import for_role
    from jobworker.sweeper.sweep import PRUNE_BATCH, ROUTE_GROUP_PRUNE_BATCH, sweep

    url = server.migrated_database("jobworker_prune")
    say(f"prune: {args.rows:,} finished jobs, {args.route_groups:,} route groups ...")
    filler = make_engine(url)  # no limits: the fill is one long statement
    with filler.begin() as conn:
        conn.execute(text(INSERT_FINISHED), {"count": args.rows})
        conn.execute(text(INSERT_QUEUED))
        conn.execute(text(INSERT_ROUTE_GROUPS), {"groups": args.route_groups, "stops": args.stops})
    with filler.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    filler.dispose()
    engine = make_engine(url, timeouts=for_role("sweeper", load_settings({})))
    try:
        setting = server.describe()
        rules = partial(sweep, engine, job_timeout_minutes=30, enable_orphan_recovery=True,
                        retention_days=14)
        # First the jobs (the route groups are younger than 3650 days), then the route groups.
        started = time.perf_counter()
        jobs = rules(route_retention_days=3650)
        jobs_seconds = time.perf_counter() - started
        started = time.perf_counter()
        groups = rules(route_retention_days=90)
        groups_seconds = time.perf_counter() - started
        with engine.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    finally:
        engine.dispose()
    report: dict[str, Any] = {
        "pruned_jobs": jobs.pruned,
        "job_batches": jobs.prune_batches,
        "jobs_seconds": rounded(jobs_seconds, 2),
        "jobs_per_second": rounded(jobs.pruned / jobs_seconds, 0),
        "pruned_route_groups": groups.pruned_route_groups,
        "route_groups_seconds": rounded(groups_seconds, 2),
        "route_groups_per_second": rounded(groups.pruned_route_groups / groups_seconds, 0),
        "jobs_left": left,
        "job_batch": PRUNE_BATCH,
        "route_group_batch": ROUTE_GROUP_PRUNE_BATCH,
        "stops_per_group": args.stops,
        **setting,
    }
    print_table("One sweep over a backlog of finished jobs, then one over their route groups",
                ("what", "pruned", "seconds", "per second"),
                [("jobs", f"{jobs.pruned:,}", report["jobs_seconds"], report["jobs_per_second"]),
                 (f"route groups ({args.stops} stops each)", f"{groups.pruned_route_groups:,}",
                  report["route_groups_seconds"], report["route_groups_per_second"])])
    return report


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run)
