"""``jobworker bench enqueue``: one job per transaction, ours against PgQueuer, and where the
time goes.

Each variant enqueues ``--jobs`` no-op jobs one call at a time, in interleaved rounds
(medians reported), on the same server:

* ``library``: what the API's single enqueue runs, ``queue.create_job(conn, NewJob(...),
  enqueue=True, commit=True)``: the insert is its own transaction (one round trip).
* ``library_transaction``: the same insert inside ``engine.begin()`` through SQLAlchemy
  (BEGIN, INSERT ... RETURNING, COMMIT: three round trips), as before ``commit=True``.
* ``api``: ``POST /jobs/generate`` through the API Lambda's handler, warm, in its own process
  (validation, the request fingerprint, the insert, the answer), at INFO.
* ``psycopg_insert``: the floor for a single-row insert from Python: psycopg, autocommit, a
  minimal ``INSERT INTO jobs ... RETURNING job_id`` (one round trip and one commit).
* ``pgqueuer``: ``Queries.enqueue("noop", None)`` on asyncpg (autocommit, one statement).

The differences say where a single enqueue spends its time: the round trip and the commit
(``psycopg_insert``), the two extra round trips of an explicit transaction plus SQLAlchemy's
statement and row handling (``library_transaction`` minus ``library``), and the HTTP edge
(``api`` minus ``library``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import time
from collections.abc import Callable
from typing import Any

import psycopg

from .common import (
    BenchServer,
    interleaved,
    median,
    print_table,
    ratio,
    rounded,
    run_scenario,
    say,
)

VARIANTS = ("library", "library_transaction", "api", "psycopg_insert", "pgqueuer")
MINIMAL_INSERT = ("INSERT INTO jobs (kind, progress, payload) VALUES ('noop', 'QUEUED', '{}')"
                  " RETURNING job_id")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench enqueue",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="enqueues per variant and round")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def _library(url: str, jobs: int, transaction: bool) -> float:
    from jobworker import queue
    from jobworker.aws.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.rollback()
            started = time.perf_counter()
            for _ in range(jobs):
                if transaction:
                    with conn.begin():
                        queue.create_job(conn, queue.NewJob(kind="noop"), enqueue=True)
                else:
                    queue.create_job(conn, queue.NewJob(kind="noop"), enqueue=True, commit=True)
            return jobs / (time.perf_counter() - started)
    finally:
        engine.dispose()


def _api(url: str, jobs: int) -> float | None:
    from .throughput import api_enqueue

    return api_enqueue(url, jobs, 0, "INFO")["single"]


def _psycopg_insert(url: str, jobs: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for _ in range(jobs):
            conn.execute(MINIMAL_INSERT).fetchone()
        return jobs / (time.perf_counter() - started)


def _pgqueuer(url: str, jobs: int) -> float | None:
    try:
        asyncpg: Any = importlib.import_module("asyncpg")  # untyped
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries
    except ImportError:
        return None

    async def main() -> float:
        connection = await asyncpg.connect(url)
        try:
            queries = Queries(AsyncpgDriver(connection))
            if not await connection.fetchval("SELECT to_regclass('pgqueuer') IS NOT NULL"):
                await queries.install()
            started = time.perf_counter()
            for _ in range(jobs):
                await queries.enqueue("noop", None)
            return jobs / (time.perf_counter() - started)
        finally:
            await connection.close()

    return asyncio.run(main())


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    setting = server.describe()
    jw_url = server.migrated_database("jobworker_enqueue")
    pgq_url = server.create_database("pgqueuer_enqueue")
    variants: dict[str, Callable[[], float | None]] = {
        "library": lambda: _library(jw_url, args.jobs, transaction=False),
        "library_transaction": lambda: _library(jw_url, args.jobs, transaction=True),
        "api": lambda: _api(jw_url, args.jobs),
        "psycopg_insert": lambda: _psycopg_insert(jw_url, args.jobs),
        "pgqueuer": lambda: _pgqueuer(pgq_url, args.jobs),
    }

    def announced(name: str, variant: Callable[[], float | None]) -> Callable[[], float | None]:
        def call() -> float | None:
            rate = variant()
            say(f"  {name}: {rate:,.0f} jobs/s" if rate else f"  {name}: n/a")
            return rate
        return call

    say(f"enqueue: {args.jobs} single enqueues per variant, {args.repeat} rounds")
    results = interleaved(args.repeat, {name: announced(name, fn) for name, fn in variants.items()})
    rates = {name: median(values) for name, values in results.items()}
    per_call_us = {name: rounded(1e6 / rate) if rate else None for name, rate in rates.items()}
    return {
        **{f"{name}_per_s": rounded(rate) for name, rate in rates.items()},
        "library_single_vs_pgqueuer": ratio(rates["library"], rates["pgqueuer"]),
        "api_single_vs_pgqueuer": ratio(rates["api"], rates["pgqueuer"]),
        "library_transaction_vs_pgqueuer": ratio(rates["library_transaction"],
                                                 rates["pgqueuer"]),
        "per_call_us": per_call_us,
        "jobs": args.jobs,
        "rounds": args.repeat,
        "per_round_per_s": {name: [rounded(value) for value in values]
                            for name, values in results.items()},
        **setting,
    }


def print_report(report: dict[str, Any]) -> None:
    us = report["per_call_us"]
    print_table(f"Single enqueue, one job per call (median of {report['rounds']} rounds)",
                ("path", "jobs/s", "us per call"),
                [(name, report[f"{name}_per_s"], us[name]) for name in VARIANTS])
    print(f"\nlibrary_single_vs_pgqueuer = {report['library_single_vs_pgqueuer']}, "
          f"api_single_vs_pgqueuer = {report['api_single_vs_pgqueuer']}, "
          f"library_transaction_vs_pgqueuer = {report['library_transaction_vs_pgqueuer']}")


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run, show=print_report)
