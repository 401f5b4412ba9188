"""``jobworker bench many-pollers``: 16 pollers at once, short invocations, every job once.

The template lets up to ``PollerReservedConcurrency`` poller invocations run together; this
scenario scales that down to one machine: ``--pollers`` processes (default 16, against 2 in the
same run, interleaved rounds) each run the real poller handler in a loop of short invocations
(``--invocation-seconds``, default 2 s) until the queue is empty. Jobs are of a kind that
records which job ran, so the report says whether every job ran exactly once (not only whether
each ended COMPLETED). Also reported: throughput (first claim to last completion, as the
database recorded them) and the p50/p99 of the claim statement as the pollers timed it.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

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
from .throughput import (
    ENQUEUE_CHUNK,
    SCHEDULE_EVENT,
    _db_now,
    _execute,
    _jobworker_env,
    _processes,
    _quiet_stdout,
    _wait_ready,
)

KIND = "bench_ran_once"
BASELINE_POLLERS = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench many-pollers",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain (default 20000)")
    parser.add_argument("--pollers", type=int, default=16, help="pollers at once (default 16)")
    parser.add_argument("--batch-size", type=int, default=1000, help="BATCH_SIZE (default 1000)")
    parser.add_argument("--invocation-seconds", type=float, default=2.0,
                        help="life of one poller invocation (default 2)")
    parser.add_argument("--log-level", default="INFO", help="POWERTOOLS_LOG_LEVEL (default INFO)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def poller_process(url: str, batch_size: int, log_level: str, invocation_seconds: float,
                   ready: Event, go: Event, stop: Event, out: Queue[Any]) -> None:
    """A warm poller container invoked again and again (as the schedule and the kick would)
    until told to stop; reports the jobs it ran and how long each claim took."""
    _quiet_stdout()
    os.environ.update(_jobworker_env(url, batch_size, log_level))
    from jobworker import kinds, queue
    from jobworker.aws import runtime
    from jobworker.dev.local import LocalContext, load_handler

    ran: list[str] = []
    ran_at: list[float] = []  # time.monotonic(): one clock for every process on the machine
    claim_ms: list[float] = []
    claims_at: list[tuple[float, float]] = []

    @kinds.job_kind(KIND)
    def ran_once(ctx: kinds.JobContext) -> None:
        ran.append(str(ctx.job_id))
        ran_at.append(time.monotonic())

    claim = queue.claim_batch

    def timed_claim(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return claim(*args, **kwargs)
        finally:
            claim_ms.append((time.perf_counter() - started) * 1000)
            claims_at.append((time.monotonic(), claim_ms[-1]))

    queue.claim_batch = timed_claim  # the poller calls queue.claim_batch
    handler = load_handler("poller")
    kinds.load_plugins()
    with runtime.get_engine().connect():
        pass
    ready.set()
    go.wait()
    invocations = 0
    while not stop.is_set():
        context = LocalContext("jobworker-poller", invocation_seconds)
        watcher = threading.Thread(target=lambda c=context: (stop.wait(), c.stop()), daemon=True)
        watcher.start()
        handler(dict(SCHEDULE_EVENT), context)
        invocations += 1
    out.put({"ran": ran, "ran_at": ran_at, "claim_ms": claim_ms, "claims_at": claims_at,
             "invocations": invocations})


def _fill(url: str, jobs: int) -> None:
    from jobworker import queue
    from jobworker.aws.engine import make_engine

    _execute(url, "TRUNCATE jobs, route_groups CASCADE")
    engine = make_engine(url)
    try:
        batch = [queue.NewJob(kind=KIND) for _ in range(min(ENQUEUE_CHUNK, jobs))]
        left = jobs
        while left > 0:
            with engine.begin() as conn:
                queue.create_jobs(conn, batch[:left], enqueue=True)
            left -= len(batch)
    finally:
        engine.dispose()
    _execute(url, "VACUUM ANALYZE jobs")


def _left(url: str) -> int:
    from .throughput import _scalar

    return int(_scalar(url, "SELECT count(*) FROM jobs WHERE progress IN ('QUEUED', 'RUNNING')"))


def drain(url: str, args: argparse.Namespace, pollers: int) -> dict[str, Any]:
    from .common import quiesce
    from .throughput import _scalar

    _fill(url, args.jobs)
    quiesce(url)
    reports: list[dict[str, Any]] = []
    with _processes(poller_process, pollers, url, args.batch_size, args.log_level,
                    args.invocation_seconds) as (procs, ready, go, stop, out):
        problem = _wait_ready(procs, ready)
        if problem:
            return {"error": problem}
        start = _db_now(url)
        go.set()
        deadline = time.monotonic() + args.timeout
        while _left(url) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for _ in procs:
            reports.append(out.get(timeout=60))
    end = _scalar(url, "SELECT max(finished_at) FROM jobs WHERE progress = 'COMPLETED'")
    completed = int(_scalar(url, "SELECT count(*) FROM jobs WHERE progress = 'COMPLETED'"))
    runs = Counter(job_id for report in reports for job_id in report["ran"])
    claims = [ms for report in reports for ms in report["claim_ms"]]
    seconds = (end - start).total_seconds() if end else None
    return {
        "jobs_per_s": args.jobs / seconds if seconds and completed == args.jobs else None,
        "completed": completed,
        "ran_once": sum(1 for count in runs.values() if count == 1),
        "ran_twice_or_more": sum(1 for count in runs.values() if count > 1),
        "never_ran": args.jobs - len(runs),
        "claim_p50_ms": percentile(claims, 50),
        "claim_p99_ms": percentile(claims, 99),
        "invocations": sum(report["invocations"] for report in reports),
    }


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    setting = server.describe()
    url = server.migrated_database("jobworker_pollers")
    counts = sorted({BASELINE_POLLERS, args.pollers})
    variants: dict[str, Callable[[], dict[str, Any]]] = {}
    for count in counts:
        def variant(count: int = count) -> dict[str, Any]:
            result = drain(url, args, count)
            rate = result.get("jobs_per_s")
            say(f"  {count} pollers: {rate:,.0f} jobs/s" if rate else f"  {count}: {result}")
            return result
        variants[str(count)] = variant
    say(f"many-pollers: {args.jobs} jobs, {counts} pollers, {args.repeat} rounds")
    results = interleaved(args.repeat, variants)

    def med(count: int, key: str) -> float | None:
        return median([result.get(key) for result in results[str(count)]])

    many, few = args.pollers, BASELINE_POLLERS
    exactly_once = all(result.get("ran_once") == args.jobs and not result.get("ran_twice_or_more")
                       for rounds in results.values() for result in rounds)
    return {
        "pollers": many,
        "baseline_pollers": few,
        "jobs_per_s": rounded(med(many, "jobs_per_s")),
        "baseline_jobs_per_s": rounded(med(few, "jobs_per_s")),
        "ratio_vs_baseline": ratio(med(many, "jobs_per_s"), med(few, "jobs_per_s")),
        "claim_p99_ms": rounded(med(many, "claim_p99_ms"), 3),
        "baseline_claim_p99_ms": rounded(med(few, "claim_p99_ms"), 3),
        "claim_p50_ms": rounded(med(many, "claim_p50_ms"), 3),
        "baseline_claim_p50_ms": rounded(med(few, "claim_p50_ms"), 3),
        "every_job_exactly_once": exactly_once,
        "per_round": results,
        "jobs": args.jobs,
        "batch_size": args.batch_size,
        "invocation_seconds": args.invocation_seconds,
        "log_level": args.log_level,
        "rounds": args.repeat,
        **setting,
    }


def print_report(report: dict[str, Any]) -> None:
    print_table(f"Drain {report['jobs']:,} jobs, invocations of {report['invocation_seconds']} s "
                f"(median of {report['rounds']} rounds)",
                ("pollers", "jobs/s", "claim p50 ms", "claim p99 ms"),
                [(report["pollers"], report["jobs_per_s"], report["claim_p50_ms"],
                  report["claim_p99_ms"]),
                 (report["baseline_pollers"], report["baseline_jobs_per_s"],
                  report["baseline_claim_p50_ms"], report["baseline_claim_p99_ms"])])
    print(f"\nevery job exactly once: {report['every_job_exactly_once']}; "
          f"ratio_vs_baseline = {report['ratio_vs_baseline']}")


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run, show=print_report)
