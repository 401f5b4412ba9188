"""``jobworker bench claim-latency``: does a big history of finished jobs slow the claim?

Three databases on one server, each with 1,000 QUEUED jobs beside 10k, 100k and 1M COMPLETED
ones (inserted with ``INSERT ... SELECT generate_series``, then ``VACUUM ANALYZE``). One
measurement is one ``queue.claim_batch`` (limit = the batch size) through jobworker's engine,
inside a transaction that is rolled back, so every claim sees the same state. The three sizes
are measured in interleaved rounds; medians are reported. The claim's plan at 1M is printed
with ``EXPLAIN (ANALYZE, BUFFERS)``.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .common import (
    BenchServer,
    interleaved,
    median,
    percentile,
    print_table,
    ratio,
    rounded,
    run_scenario,
    say,
)

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
QUEUED_JOBS = 1000
PARTIAL_INDEX = "jobs_queued_claim_idx"

INSERT_FINISHED = """
INSERT INTO jobs (kind, progress, payload, result, attempts, attempt_history,
                  run_at, created_at, started_at, finished_at, updated_at)
SELECT 'noop', 'COMPLETED', '{}'::jsonb, NULL, 1,
       jsonb_build_array(jsonb_build_object('attempt', 1, 'outcome', 'completed')),
       t, t, t, t + interval '1 second', t + interval '1 second'
  FROM (SELECT now() - interval '1 day' + g * interval '1 millisecond' AS t
          FROM generate_series(1, :count) AS g) AS s
"""

INSERT_QUEUED = """
INSERT INTO jobs (kind, progress, payload, run_at)
SELECT 'noop', 'QUEUED', '{}'::jsonb, now() - interval '1 hour' + g * interval '1 millisecond'
  FROM generate_series(1, :count) AS g
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench claim-latency",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--batch-size", type=int, default=100,
                        help="claim limit (default 100)")
    parser.add_argument("--claims", type=int, default=200,
                        help="claims timed per size and round (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the finished-row counts (e.g. 0.01 for a smoke run; "
                             "the JSON keys keep their names and finished_rows says what ran)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def _fill(server: BenchServer, finished: int) -> Engine:
    from jobworker.aws.engine import make_engine

    url = server.migrated_database("jobworker_claim")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(INSERT_FINISHED), {"count": finished})
        conn.execute(text(INSERT_QUEUED), {"count": QUEUED_JOBS})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE jobs"))
    return engine


def time_claims(engine: Engine, claims: int, batch_size: int) -> float:
    """Median milliseconds of one claim, each in a transaction rolled back afterwards."""
    from jobworker import queue

    samples: list[float] = []
    with engine.connect() as conn:
        for index in range(claims + 10):
            transaction = conn.begin()
            started = time.perf_counter()
            claimed = queue.claim_batch(conn, owner="bench", limit=batch_size, lease_seconds=60)
            elapsed = time.perf_counter() - started
            transaction.rollback()
            if len(claimed) != min(batch_size, QUEUED_JOBS):
                raise RuntimeError(f"claimed {len(claimed)} jobs, expected {batch_size}")
            if index >= 10:  # the first ones warm the cache and psycopg's prepared statement
                samples.append(elapsed * 1000)
    value = median(samples)
    assert value is not None
    return value


def explain_claim(engine: Engine, batch_size: int) -> list[str]:
    from jobworker.queue.sql import raw_queries

    params = {"owner": "bench", "limit": batch_size, "lease_seconds": 60, "start_count": 1,
              "fast_kinds": [], "skip_ids": [], "durable": True, "now": None}
    with engine.connect() as conn:
        transaction = conn.begin()
        rows = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + raw_queries()["job_claim_batch"]),
                            params).all()
        transaction.rollback()
    return [str(row[0]) for row in rows]


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    sizes = {name: max(1, int(count * args.scale)) for name, count in SIZES.items()}
    setting = server.describe()  # load average as the run starts
    engines: dict[str, Engine] = {}
    try:
        for name, count in sizes.items():
            say(f"claim-latency: {QUEUED_JOBS} QUEUED beside {count:,} COMPLETED jobs ...")
            engines[name] = _fill(server, count)
        results = interleaved(args.repeat, {
            name: partial(time_claims, engine, args.claims, args.batch_size)
            for name, engine in engines.items()
        })
        plan = explain_claim(engines["1m"], args.batch_size)
    finally:
        for engine in engines.values():
            engine.dispose()
    claim_ms = {name: median(values) for name, values in results.items()}
    report: dict[str, Any] = {
        "claim_ms_10k": rounded(claim_ms["10k"], 3),
        "claim_ms_100k": rounded(claim_ms["100k"], 3),
        "claim_ms_1m": rounded(claim_ms["1m"], 3),
        "ratio_1m_vs_10k": ratio(claim_ms["1m"], claim_ms["10k"]),
        "plan_uses_partial_index": any(PARTIAL_INDEX in line for line in plan),
        "batch_size": args.batch_size,
        "queued_jobs": QUEUED_JOBS,
        "finished_rows": sizes,
        "claims_per_round": args.claims,
        "rounds": args.repeat,
        "per_round_ms": {name: [rounded(value, 3) for value in values]
                         for name, values in results.items()},
        "p90_of_round_medians_ms": {name: rounded(percentile(values, 90), 3)
                                    for name, values in results.items()},
        **setting,
    }
    print_report(report, plan)
    return report


def print_report(report: dict[str, Any], plan: list[str]) -> None:
    rows = [(f"{report['finished_rows'][name]:,}", report[f"claim_ms_{name}"],
             ratio(report[f"claim_ms_{name}"], report["claim_ms_10k"])) for name in SIZES]
    print_table(f"One claim of {report['batch_size']} with {report['queued_jobs']:,} QUEUED jobs "
                f"(median ms over {report['rounds']} interleaved rounds of "
                f"{report['claims_per_round']} claims)",
                ("finished rows", "claim ms", "vs 10k"), rows)
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) job_claim_batch at {report['finished_rows']['1m']:,} "
          "finished rows:")
    for line in plan:
        print(f"  {line}")
    print(f"\nratio_1m_vs_10k = {report['ratio_1m_vs_10k']}; plan on {PARTIAL_INDEX}: "
          f"{report['plan_uses_partial_index']}")


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run)
