"""``jobworker bench sustained``: a fixed offered load for minutes, with the sweeper pruning.

The library enqueues no-op jobs at ``--rate`` jobs/s (default: 70% of a drain measured first,
``--rate-fraction``) for ``--minutes`` (default 5) while ``--pollers`` poller processes
(default 2, the real handler in a loop of invocations) drain them, and the sweeper runs every
``--sweep-seconds`` (default 60) with pruning on and a retention of ``--retention-seconds``
(default 60; the sweep's own pass runs as deployed, and finished jobs older than the retention
are pruned through ``queue.prune_finished`` given a clock shifted by the difference, since the
deployed knob counts whole days). Reported per minute: throughput, enqueue-to-complete p50 and
p99, claim statement p99 (as the pollers timed it), dead tuples and the sizes of ``jobs`` and
its indexes.

``--hold-xmin-seconds N`` (``jobworker bench held-xmin``) also holds a REPEATABLE READ
transaction open for N seconds in the middle of the run (an analytics query that keeps the
xmin horizon back, so vacuum cannot remove the dead rows behind it), and reports throughput and
claim p99 before, during and after the hold.
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import timedelta
from typing import Any

import psycopg

from .common import (
    BenchServer,
    percentile,
    print_table,
    quiesce,
    ratio,
    rounded,
    run_scenario,
    say,
)
from .many_pollers import KIND, poller_process
from .throughput import _execute, _processes, _wait_ready

MINUTE = 60.0


def _parser(prog: str = "jobworker bench sustained", hold: float = 0.0) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog,
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0, help="run length (default 5)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered jobs/s (default: --rate-fraction of a measured drain)")
    parser.add_argument("--rate-fraction", type=float, default=0.7,
                        help="offered load as a fraction of the drain rate (default 0.7)")
    parser.add_argument("--pollers", type=int, default=2, help="poller processes (default 2)")
    parser.add_argument("--batch-size", type=int, default=1000, help="BATCH_SIZE (default 1000)")
    parser.add_argument("--invocation-seconds", type=float, default=60.0,
                        help="life of one poller invocation (default 60)")
    parser.add_argument("--log-level", default="INFO", help="POWERTOOLS_LOG_LEVEL (default INFO)")
    parser.add_argument("--sweep-seconds", type=float, default=60.0,
                        help="sweeper period (default 60)")
    parser.add_argument("--retention-seconds", type=float, default=60.0,
                        help="finished jobs older than this are pruned (default 60)")
    parser.add_argument("--bucket-seconds", type=float, default=MINUTE,
                        help="report period (default 60)")
    parser.add_argument("--hold-xmin-seconds", type=float, default=hold,
                        help=f"hold a REPEATABLE READ transaction this long mid-run "
                             f"(default {hold:g})")
    parser.add_argument("--peer", choices=("pgqueuer", "none"), default="pgqueuer",
                        help="with a hold: run PgQueuer through the same load and hold after "
                             "jobworker (default pgqueuer)")
    parser.add_argument("--autovacuum-naptime", metavar="SECONDS", type=int, default=None,
                        help="the server's autovacuum_naptime for the run (default: as the "
                             "server has it; the template's database uses 10)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def _enqueue_at_rate(url: str, rate: float, seconds: float, stop: threading.Event) -> int:
    """Enqueue ``rate`` jobs/s through the library, in small bulk calls every 50 ms."""
    from jobworker import queue
    from jobworker.aws.engine import make_engine

    engine = make_engine(url)
    sent, started = 0, time.monotonic()
    try:
        while not stop.is_set() and (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - sent
            if due > 0:
                with engine.begin() as conn:
                    queue.create_jobs(conn, [queue.NewJob(kind=KIND)] * due, enqueue=True)
                sent += due
            time.sleep(0.05)
    finally:
        engine.dispose()
    return sent


def _sweep_loop(url: str, period: float, retention: float, stop: threading.Event,
                pruned: list[int]) -> None:
    """The sweeper every ``period``: its deployed pass, then pruning at ``retention``."""
    from jobworker import queue
    from jobworker.aws.engine import make_engine
    from jobworker.aws.settings import Settings
    from jobworker.sweeper.sweep import PRUNE_BATCH, sweep

    engine = make_engine(url)
    try:
        while not stop.wait(period):
            sweep(engine, job_timeout_minutes=30, enable_orphan_recovery=True, retention_days=1,
                  route_retention_days=Settings.model_fields["route_retention_days"].default)
            with engine.begin() as conn:
                now = conn.exec_driver_sql("SELECT now()").scalar_one()
            shifted = now + timedelta(days=1) - timedelta(seconds=retention)
            while True:
                with engine.begin() as conn:
                    count = queue.prune_finished(conn, retention_days=1, limit=PRUNE_BATCH,
                                                 now=shifted)
                pruned.append(count)
                if count < PRUNE_BATCH:
                    break
    finally:
        engine.dispose()


def _hold_xmin(url: str, at: float, seconds: float, stop: threading.Event,
               window: list[float], table: str = "jobs") -> None:
    if stop.wait(at):
        return
    with psycopg.connect(url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # the snapshot is taken here
        window.append(time.monotonic())
        stop.wait(seconds)
        window.append(time.monotonic())
        conn.rollback()


def _table_stats(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_dead_tup, n_live_tup, pg_relation_size('jobs'), pg_indexes_size('jobs')"
            "  FROM pg_stat_user_tables WHERE relname = 'jobs'").fetchone()
    assert row is not None
    return {"dead_tuples": row[0], "live_tuples": row[1], "jobs_bytes": row[2],
            "indexes_bytes": row[3]}


def _finished_since(url: str, since: float, until: float, origin: float,
                    origin_db: Any) -> dict[str, Any]:
    """Jobs finished in [since, until) (monotonic seconds, mapped to the database clock)."""
    start = origin_db + timedelta(seconds=since - origin)
    end = origin_db + timedelta(seconds=until - origin)
    with psycopg.connect(url, autocommit=True) as conn:
        lags = [row[0] for row in conn.execute(
            "SELECT EXTRACT(EPOCH FROM finished_at - created_at)::float8 FROM jobs"
            " WHERE progress = 'COMPLETED' AND finished_at >= %s AND finished_at < %s",
            (start, end))]
    return {"jobs_per_s": len(lags) / (until - since),
            "lag_p50_s": percentile(lags, 50), "lag_p99_s": percentile(lags, 99)}


def _drain_rate(url: str, args: argparse.Namespace) -> float:
    """jobs/s the pollers drain a full queue at, to set the offered load from."""
    from .many_pollers import drain

    probe = argparse.Namespace(jobs=5000, batch_size=args.batch_size, log_level=args.log_level,
                               invocation_seconds=args.invocation_seconds, timeout=300.0)
    result = drain(url, probe, args.pollers)
    rate = result.get("jobs_per_s")
    if not rate:
        raise RuntimeError(f"could not measure the drain rate: {result}")
    return float(rate)


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    naptime = None if args.autovacuum_naptime is None else f"{args.autovacuum_naptime}s"
    with server.server_setting("autovacuum_naptime", naptime):
        return _run(args, server)


def _run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    setting = server.describe()
    url = server.migrated_database("jobworker_sustained")
    drain_rate = None
    rate = args.rate
    if not rate:
        drain_rate = _drain_rate(url, args)
        rate = drain_rate * args.rate_fraction
    _execute(url, "TRUNCATE jobs, route_groups CASCADE", "VACUUM ANALYZE jobs")
    quiesce(url)
    seconds = args.minutes * MINUTE
    say(f"sustained: {rate:,.0f} jobs/s offered for {seconds:.0f} s, {args.pollers} pollers"
        + (f", xmin held {args.hold_xmin_seconds:g} s mid-run" if args.hold_xmin_seconds else ""))
    stop = threading.Event()
    pruned: list[int] = []
    window: list[float] = []
    buckets: list[dict[str, Any]] = []
    claims: list[tuple[float, float]] = []
    ran_at: list[float] = []
    with _processes(poller_process, args.pollers, url, args.batch_size, args.log_level,
                    args.invocation_seconds) as (procs, ready, go, poller_stop, out):
        problem = _wait_ready(procs, ready)
        if problem:
            return {"error": problem}
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        origin, origin_db = time.monotonic(), row[0]
        go.set()
        sent: list[int] = []
        threads = [
            threading.Thread(target=lambda: sent.append(
                _enqueue_at_rate(url, rate, seconds, stop)), daemon=True),
            threading.Thread(target=_sweep_loop, daemon=True,
                             args=(url, args.sweep_seconds, args.retention_seconds, stop,
                                   pruned)),
        ]
        if args.hold_xmin_seconds:
            at = max(0.0, (seconds - args.hold_xmin_seconds) / 2)
            threads.append(threading.Thread(target=_hold_xmin, daemon=True,
                                            args=(url, at, args.hold_xmin_seconds, stop,
                                                  window)))
        for thread in threads:
            thread.start()
        edge = origin
        while edge + args.bucket_seconds <= origin + seconds + 1e-6:
            time.sleep(max(0.0, edge + args.bucket_seconds - time.monotonic()))
            bucket = {"start_s": round(edge - origin, 1),
                      **_finished_since(url, edge, edge + args.bucket_seconds, origin,
                                        origin_db),
                      **_table_stats(url)}
            buckets.append(bucket)
            say(f"  {bucket['start_s']:>6.0f} s: {bucket['jobs_per_s']:,.0f} jobs/s, "
                f"lag p99 {bucket['lag_p99_s']}, dead {bucket['dead_tuples']}, "
                f"jobs {bucket['jobs_bytes'] // 1024} KiB")
            edge += args.bucket_seconds
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        poller_stop.set()
        for _ in procs:
            report = out.get(timeout=120)
            claims.extend(report.get("claims_at", []))
            ran_at.extend(report.get("ran_at", []))
    for bucket in buckets:
        start = origin + bucket["start_s"]
        in_bucket = [ms for at, ms in claims if start <= at < start + args.bucket_seconds]
        bucket["claim_p99_ms"] = rounded(percentile(in_bucket, 99), 3)
    report = _report(args, rate, drain_rate, buckets, sum(sent), sum(pruned), setting)
    if args.hold_xmin_seconds:
        report.update(_held_phases(args, window, claims, ran_at))
        report["peer"] = _peer_held(server, args, rate)
    return report


def _peer_held(server: BenchServer, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """PgQueuer through the same offered load and the same hold, in the same run."""
    if args.peer == "none":
        return {"skipped": "--peer none"}
    try:
        import pgqueuer  # noqa: F401
    except ImportError:
        return {"skipped": "pgqueuer is not installed (pip install -e '.[bench]')"}
    from .peer_sustained import run_peer

    quiesce(server.url)
    ran = run_peer(server, args, rate, _hold_xmin)
    if "error" in ran:
        return {"error": ran["error"]}
    return {"name": "pgqueuer", "enqueued": ran["enqueued"],
            **_held_phases(args, ran["window"], ran["claims"], ran["ran_at"])}


def _report(args: argparse.Namespace, rate: float, drain_rate: float | None,
            buckets: list[dict[str, Any]], sent: int, pruned: int,
            setting: dict[str, Any]) -> dict[str, Any]:
    first, last = (buckets[0], buckets[-1]) if buckets else ({}, {})
    report: dict[str, Any] = {
        "offered_jobs_per_s": rounded(rate),
        "drain_jobs_per_s": rounded(drain_rate),
        "enqueued": sent,
        "pruned": pruned,
        "per_minute": buckets,
        "last_vs_first_jobs_per_s": ratio(last.get("jobs_per_s"), first.get("jobs_per_s")),
        "last_vs_first_lag_p99": ratio(last.get("lag_p99_s"), first.get("lag_p99_s")),
        "last_vs_first_claim_p99": ratio(last.get("claim_p99_ms"), first.get("claim_p99_ms")),
        "last_vs_first_jobs_bytes": ratio(last.get("jobs_bytes"), first.get("jobs_bytes")),
        "minutes": args.minutes,
        "pollers": args.pollers,
        "batch_size": args.batch_size,
        "log_level": args.log_level,
        "retention_seconds": args.retention_seconds,
        "sweep_seconds": args.sweep_seconds,
        **setting,
    }
    return report


def _held_phases(args: argparse.Namespace, window: list[float],
                 claims: list[tuple[float, float]], ran_at: list[float]) -> dict[str, Any]:
    """Throughput (jobs run, as the pollers timed them) and claim p99 in the minute before
    the hold, during it, and in the minute right after."""
    if len(window) != 2:
        return {"hold_error": "the REPEATABLE READ transaction did not run"}
    held_from, held_to = window
    span = min(MINUTE, held_to - held_from)  # a minute each side (less in a short run)
    phases = {"before": (held_from - span, held_from), "during": (held_from, held_to),
              "after": (held_to, held_to + span)}
    out: dict[str, Any] = {"hold_xmin_seconds": args.hold_xmin_seconds}
    for name, (start, end) in phases.items():
        in_phase = [ms for at, ms in claims if start <= at < end]
        out[f"claim_p99_ms_{name}"] = rounded(percentile(in_phase, 99), 3)
        out[f"jobs_per_s_{name}"] = rounded(
            sum(1 for at in ran_at if start <= at < end) / (end - start))
    out["during_vs_before"] = ratio(out["jobs_per_s_during"], out["jobs_per_s_before"])
    out["after_vs_before"] = ratio(out["jobs_per_s_after"], out["jobs_per_s_before"])
    return out


def print_report(report: dict[str, Any]) -> None:
    print_table(f"Sustained {report['offered_jobs_per_s']} jobs/s for {report['minutes']} min "
                f"({report['pollers']} pollers, pruning at {report['retention_seconds']} s)",
                ("from s", "jobs/s", "lag p50 s", "lag p99 s", "claim p99 ms", "dead tuples",
                 "jobs KiB", "indexes KiB"),
                [(b["start_s"], b["jobs_per_s"], b["lag_p50_s"], b["lag_p99_s"],
                  b["claim_p99_ms"], b["dead_tuples"], b["jobs_bytes"] // 1024,
                  b["indexes_bytes"] // 1024) for b in report["per_minute"]])
    print(f"\nlast vs first minute: jobs/s {report['last_vs_first_jobs_per_s']}, lag p99 "
          f"{report['last_vs_first_lag_p99']}, claim p99 {report['last_vs_first_claim_p99']}, "
          f"jobs size {report['last_vs_first_jobs_bytes']}; pruned {report['pruned']}")
    if "hold_xmin_seconds" in report:
        for name, held in (("jobworker", report), ("PgQueuer", report.get("peer") or {})):
            if "jobs_per_s_before" not in held:
                print(f"{name}: {held}")
                continue
            print(f"{name}: jobs/s before / during / after the hold: "
                  f"{held.get('jobs_per_s_before')} / {held.get('jobs_per_s_during')} / "
                  f"{held.get('jobs_per_s_after')}; claim p99 ms "
                  f"{held.get('claim_p99_ms_before')} / {held.get('claim_p99_ms_during')} / "
                  f"{held.get('claim_p99_ms_after')}")


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run, show=print_report)


def main_held_xmin(argv: list[str]) -> int:
    args = _parser("jobworker bench held-xmin", hold=60.0).parse_args(argv)
    return run_scenario(args, run, show=print_report)
