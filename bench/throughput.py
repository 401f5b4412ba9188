"""``jobworker bench throughput --jobs N --workers K``: drain N no-op jobs, ours against the peers.

Every system drains the same N ``noop`` jobs with K worker processes on the same server, in
interleaved rounds (medians reported):

* **jobworker**: each process is a warm poller Lambda container: it loads the real handler
  (``functions/poller/app.py`` via :func:`jobworker.dev.local.load_handler`) and is invoked once
  with a Lambda-like context; claim batch, run, complete, exactly what Lambda runs. Measured
  at the log level a deployment at volume uses (``WARNING``) and at the default ``INFO``.
* **procrastinate**: async no-op task, K ``run_worker(wait=False)`` processes.
* **PgQueuer**: no-op entrypoint, K ``QueueManager.run(mode=drain)`` processes, batch 100.
* **ceiling**: ``pgbench`` running jobworker's own ``job_claim_batch`` and
  ``job_complete_many_if_owned`` statements (from ``queries.sql``) with K clients: the most
  any Python code on top of these statements could reach.

Time runs from the start signal (all processes connected and waiting) to the last completion
as the database recorded it. Also measured: enqueue rates through the API handler (single
``POST /jobs/generate``, ``POST /jobs/batch`` of 1,000) and the library's bulk call.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import psycopg

from jobworker.aws.settings import Settings

from .common import (
    BenchServer,
    interleaved,
    median,
    print_table,
    quiesce,
    ratio,
    rounded,
    run_scenario,
    say,
)

DEPLOYMENT_LOG_LEVEL = "WARNING"  # what a deployment draining jobs at volume runs with
DEFAULT_LOG_LEVEL = "INFO"  # Powertools' default
DEFAULT_BATCH_SIZE = 1000
PGQUEUER_BATCH_SIZE = 1000  # FACTS.md: PgQueuer's best measured setting here (2026-12-02)
EQUAL_BATCHES = "10,100,1000"  # compared at equal settings, jobworker at INFO
PGQUEUER_BATCHES = "10,100,1000,5000"  # PgQueuer's sweep, to find its best
# The 'defaults' row runs what a user who changes nothing gets: the settings' BATCH_SIZE
# default (tests/test_template.py keeps the template's BatchSize default equal to it).
TEMPLATE_BATCH_SIZE = int(Settings.model_fields["batch_size"].default)
PROCRASTINATE_CONCURRENCY = 10
ENQUEUE_CHUNK = 1000
# Extended protocol, unnamed statements: planned at every execution, as the poller's own
# statements are with DB_DISABLE_PREPARED_STATEMENTS=true (the template's setting).
PGBENCH_PROTOCOL = "extended"
LAMBDA_TIMEOUT_SECONDS = 900.0
READY_TIMEOUT_SECONDS = 120.0
SCHEDULE_EVENT = {"source": "jobworker.schedule"}
SYSTEMS = ("jobworker", "jobworker_info", "procrastinate", "pgqueuer", "ceiling")

_spawn: SpawnContext = multiprocessing.get_context("spawn")


@dataclass
class Drain:
    """One measured drain; ``jobs_per_s`` is None when the system could not run."""

    jobs_per_s: float | None
    seconds: float | None = None
    note: str = ""
    enqueue_per_s: float | None = None


# --- shared plumbing -----------------------------------------------------------------------


def _quiet_stdout() -> None:
    """Send this process's stdout where a Lambda's logs go when nobody reads them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)


def _db_now(url: str) -> datetime:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def _scalar(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return None if row is None else row[0]


def _execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)



def _drain_peer(url: str, workers: int, timeout: float, jobs: int,
                target: Callable[..., None], setting: Any, finished_sql: str) -> Drain:
    """Start the peer's workers, release them together, wait, and read from the peer's own
    tables when the last job finished (``finished_sql``: latest finish time, count)."""
    quiesce(url)
    with _processes(target, workers, url, setting) as (procs, ready, go, _, _out):
        problem = _wait_ready(procs, ready)
        if problem:
            return Drain(None, note=problem)
        start = _db_now(url)
        go.set()
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(finished_sql).fetchone()
    assert row is not None
    return _drain_rate(jobs, start, row[0], int(row[1]))


@contextmanager
def _processes(target: Callable[..., None], count: int, *args: Any
               ) -> Iterator[tuple[list[SpawnProcess], list[Event], Event, Event, Queue[Any]]]:
    """Start ``count`` worker processes; each gets (ready, go, stop, out) after ``args``."""
    go, stop = _spawn.Event(), _spawn.Event()
    out: Queue[Any] = _spawn.Queue()
    ready = [_spawn.Event() for _ in range(count)]
    procs = [_spawn.Process(target=target, args=(*args, ready[i], go, stop, out), daemon=True)
             for i in range(count)]
    for proc in procs:
        proc.start()
    try:
        yield procs, ready, go, stop, out
    finally:
        stop.set()
        go.set()
        for proc in procs:
            proc.join(timeout=15)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


def _wait_ready(procs: list[SpawnProcess], ready: list[Event]) -> str | None:
    """None once every process is ready; else why not."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    for proc, event in zip(procs, ready, strict=True):
        while not event.wait(0.1):
            if not proc.is_alive():
                return f"worker exited with {proc.exitcode} before it was ready"
            if time.monotonic() > deadline:
                return "workers not ready in time"
    return None


def _drain_rate(jobs: int, start: datetime | None, end: datetime | None,
                done: int | None) -> Drain:
    if start is None or end is None or done != jobs:
        return Drain(None, note=f"only {done} of {jobs} jobs finished")
    seconds = (end - start).total_seconds()
    return Drain(jobs / seconds if seconds > 0 else None, seconds=seconds)


# --- jobworker ------------------------------------------------------------------------------


def _jobworker_env(url: str, batch_size: int, log_level: str) -> dict[str, str]:
    """The poller Lambda's environment (as the template sets it) for this run."""
    return {
        "DATABASE_URL": url,
        "BATCH_SIZE": str(batch_size),
        "POLL_INTERVAL": "1",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "POWERTOOLS_SERVICE_NAME": "jobworker-poller",
        "POWERTOOLS_METRICS_NAMESPACE": "jobworker",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def jobworker_process(url: str, batch_size: int, log_level: str, ready: Event, go: Event,
                      stop: Event, out: Queue[Any]) -> None:
    """One warm poller container: load the handler, connect, wait for go, run one invocation."""
    _quiet_stdout()
    os.environ.update(_jobworker_env(url, batch_size, log_level))
    from jobworker import kinds
    from jobworker.aws import runtime
    from jobworker.dev.local import LocalContext, load_handler

    handler = load_handler("poller")
    kinds.load_plugins()
    with runtime.get_engine().connect():
        pass  # a warm container already holds its pooled connection
    ready.set()
    go.wait()
    context = LocalContext("jobworker-poller", LAMBDA_TIMEOUT_SECONDS)

    def stop_when_told() -> None:
        stop.wait()
        context.stop()

    threading.Thread(target=stop_when_told, daemon=True).start()
    profile_dir = os.environ.get("JOBWORKER_BENCH_PROFILE")
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        summary = profiler.runcall(handler, dict(SCHEDULE_EVENT), context)
        profiler.dump_stats(str(Path(profile_dir) / f"poller-{os.getpid()}.prof"))
    else:
        summary = handler(dict(SCHEDULE_EVENT), context)
    out.put(summary)


@dataclass
class Jobworker:
    url: str
    jobs: int
    workers: int
    batch_size: int
    log_level: str
    timeout: float

    def fill(self) -> float:
        """Empty the queue, bulk-enqueue the jobs with the library call; returns jobs/s."""
        from jobworker import queue
        from jobworker.aws.engine import make_engine

        _execute(self.url, "TRUNCATE jobs, route_groups CASCADE")
        engine = make_engine(self.url)
        try:
            batch = [queue.NewJob(kind="noop") for _ in range(min(ENQUEUE_CHUNK, self.jobs))]
            started = time.perf_counter()
            left = self.jobs
            while left > 0:
                with engine.begin() as conn:
                    queue.create_jobs(conn, batch[:left], enqueue=True)
                left -= len(batch)
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
        _execute(self.url, "VACUUM ANALYZE jobs")
        return self.jobs / seconds

    def remaining(self) -> int:
        value = _scalar(self.url, "SELECT (SELECT count(*) FROM jobs WHERE progress = 'QUEUED')"
                                  " + (SELECT count(*) FROM jobs WHERE progress = 'RUNNING')")
        return int(value)

    def finished(self) -> tuple[datetime | None, int]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT max(finished_at), count(*) FROM jobs"
                               " WHERE progress = 'COMPLETED'").fetchone()
        assert row is not None
        return row[0], int(row[1])

    def run(self) -> Drain:
        enqueue_rate = self.fill()
        quiesce(self.url)
        with _processes(jobworker_process, self.workers, self.url, self.batch_size,
                        self.log_level) as (procs, ready, go, stop, _):
            problem = _wait_ready(procs, ready)
            if problem:
                return Drain(None, note=problem)
            start = _db_now(self.url)
            go.set()
            deadline = time.monotonic() + self.timeout
            while self.remaining() and time.monotonic() < deadline:
                if not any(proc.is_alive() for proc in procs):
                    break
                time.sleep(0.05)
            stop.set()
        end, done = self.finished()
        drain = _drain_rate(self.jobs, start, end, done)
        drain.enqueue_per_s = enqueue_rate
        return drain


# --- the API's enqueue rates ----------------------------------------------------------------


GENERATE_BODY = {
    "location_group": {"depot": {"lat": 52.37, "lon": 4.89},
                       "locations": [{"id": "a", "lat": 52.36, "lon": 4.88, "demand": 1}]},
    "settings": {"vehicles": 1, "vehicle_capacity": 10, "max_runtime_seconds": 1},
}


def api_enqueue_process(url: str, singles: int, batches: int, log_level: str,
                        ready: Event, go: Event, stop: Event, out: Queue[Any]) -> None:
    """A warm API container: time single POST /jobs/generate and POST /jobs/batch calls."""
    _quiet_stdout()
    os.environ.update(_jobworker_env(url, 10, log_level))
    os.environ["POWERTOOLS_SERVICE_NAME"] = "jobworker-api"
    from jobworker.dev.local import LocalContext, load_handler
    from jobworker.dev.server import request_to_event

    handler = load_handler("api")
    headers = {"content-type": "application/json"}
    single = json.dumps(GENERATE_BODY).encode()
    batch = json.dumps({"jobs": [{"kind": "noop"}] * ENQUEUE_CHUNK}).encode()

    def post(path: str, body: bytes) -> None:
        answer = handler(request_to_event("POST", path, headers, body),
                         LocalContext("jobworker-api", 30))
        if answer["statusCode"] != 202:
            raise RuntimeError(f"POST {path} answered {answer['statusCode']}: {answer['body']}")

    for _ in range(5):  # warm: imports, connection, prepared statements
        post("/jobs/generate", single)
    post("/jobs/batch", batch)
    ready.set()
    go.wait()
    started = time.perf_counter()
    for _ in range(singles):
        post("/jobs/generate", single)
    single_rate = singles / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(batches):
        post("/jobs/batch", batch)
    batch_rate = batches * ENQUEUE_CHUNK / (time.perf_counter() - started)
    out.put({"single": single_rate, "batch": batch_rate})


def api_enqueue(url: str, singles: int, batches: int, log_level: str) -> dict[str, float | None]:
    _execute(url, "TRUNCATE jobs, route_groups CASCADE", "VACUUM ANALYZE jobs")
    quiesce(url)
    with _processes(api_enqueue_process, 1, url, singles, batches, log_level) as (
            procs, ready, go, _, out):
        problem = _wait_ready(procs, ready)
        if problem:
            say(f"API enqueue: {problem}")
            return {"single": None, "batch": None}
        go.set()
        rates: dict[str, float | None] = out.get(timeout=600)
    _execute(url, "TRUNCATE jobs, route_groups CASCADE")
    return rates


# --- procrastinate ---------------------------------------------------------------------------


def procrastinate_process(url: str, concurrency: int, ready: Event, go: Event, stop: Event,
                          out: Queue[Any]) -> None:
    import asyncio

    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=url, min_size=concurrency + 2, max_size=concurrency + 2))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    async def main() -> None:
        async with app.open_async():
            ready.set()
            await asyncio.to_thread(go.wait)
            await app.run_worker_async(concurrency=concurrency, wait=False,
                                       install_signal_handlers=False,
                                       fetch_job_polling_interval=0.1)

    asyncio.run(main())
    out.put(time.time())


@dataclass
class Procrastinate:
    url: str
    jobs: int
    workers: int
    timeout: float
    installed: bool = False

    def fill(self) -> None:
        import procrastinate

        app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=self.url))
        with app.open():
            if not self.installed:
                app.schema_manager.apply_schema()
                self.installed = True
            _execute(self.url, "TRUNCATE procrastinate_jobs, procrastinate_events,"
                               " procrastinate_periodic_defers RESTART IDENTITY CASCADE")
            deferrer = app.configure_task(name="noop")
            left = self.jobs
            while left > 0:
                count = min(ENQUEUE_CHUNK, left)
                deferrer.batch_defer(*({} for _ in range(count)))
                left -= count
        _execute(self.url, "VACUUM ANALYZE procrastinate_jobs",
                 "VACUUM ANALYZE procrastinate_events")

    def run(self) -> Drain:
        try:
            self.fill()
        except Exception as exc:
            return Drain(None, note=f"procrastinate unavailable: {type(exc).__name__}: {exc}")
        return _drain_peer(self.url, self.workers, self.timeout, self.jobs,
                           procrastinate_process, PROCRASTINATE_CONCURRENCY,
                           "SELECT max(at), count(*) FROM procrastinate_events"
                           " WHERE type = 'succeeded'")


# --- PgQueuer -------------------------------------------------------------------------------


def pgqueuer_process(url: str, batch_size: int, ready: Event, go: Event, stop: Event,
                     out: Queue[Any]) -> None:
    import asyncio
    from datetime import timedelta

    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    async def main() -> None:
        qm = QueueManager(Queries(await _pgqueuer_driver(url)))

        @qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            return None

        ready.set()
        await asyncio.to_thread(go.wait)
        await qm.run(batch_size=batch_size, mode=QueueExecutionMode.drain,
                     dequeue_timeout=timedelta(seconds=1))

    asyncio.run(main())
    out.put(time.time())


async def _pgqueuer_driver(url: str) -> Any:
    """asyncpg (PgQueuer's documented default) when installed, else psycopg's async driver."""
    try:
        asyncpg = importlib.import_module("asyncpg")
        from pgqueuer.db import AsyncpgDriver

        return AsyncpgDriver(await asyncpg.connect(url))
    except ImportError:
        from pgqueuer.db import PsycopgDriver

        return PsycopgDriver(await psycopg.AsyncConnection.connect(url, autocommit=True))


def pgqueuer_driver_name() -> str:
    try:
        importlib.import_module("asyncpg")
    except ImportError:
        return "psycopg"
    return "asyncpg"


@dataclass
class PgQueuer:
    url: str
    jobs: int
    workers: int
    timeout: float
    batch_size: int = PGQUEUER_BATCH_SIZE
    installed: bool = False

    async def _fill(self) -> None:
        from pgqueuer.queries import Queries

        driver = await _pgqueuer_driver(self.url)
        queries = Queries(driver)
        if not _scalar(self.url, "SELECT to_regclass('pgqueuer') IS NOT NULL"):
            await queries.install()  # once per database (the sweep's variants share one)
        _execute(self.url, "TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")
        left = self.jobs
        while left > 0:
            count = min(ENQUEUE_CHUNK, left)
            await queries.enqueue(["noop"] * count, [None] * count, [0] * count)
            left -= count
        close = getattr(getattr(driver, "connection", None), "close", None)
        if close is not None:
            await close()
        _execute(self.url, "VACUUM ANALYZE pgqueuer", "VACUUM ANALYZE pgqueuer_log")

    def run(self) -> Drain:
        import asyncio

        try:
            asyncio.run(self._fill())
        except Exception as exc:
            return Drain(None, note=f"PgQueuer unavailable: {type(exc).__name__}: {exc}")
        return _drain_peer(self.url, self.workers, self.timeout, self.jobs,
                           pgqueuer_process, self.batch_size,
                           "SELECT max(created), count(*) FROM pgqueuer_log"
                           " WHERE status = 'successful'")


# --- the SQL ceiling: pgbench with jobworker's own statements ------------------------------

def pgbench_sql(sql: str, replacements: dict[str, str]) -> str:
    """A queries.sql statement for pgbench: comments dropped, ``:params`` replaced."""
    from jobworker.queue.sql import with_parameters

    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))

    def replace(name: str) -> str:
        if name not in replacements:
            raise KeyError(f"no pgbench value for :{name}")
        return replacements[name]

    return with_parameters(body, replace)


def ceiling_script(batch_size: int, lease_seconds: float = 60.0) -> str:
    """One pgbench transaction = jobworker's claim statement, then its completion statement,
    each in its own transaction (as the poller runs them); NULL ``:now`` = database clock."""
    from jobworker.queue.sql import raw_queries

    queries = raw_queries()
    common = {"now": "NULL", "owner": "('pgbench-' || CAST(:client_id AS text))"}
    claim = pgbench_sql(queries["job_claim_batch"],
                        {**common, "limit": ":limit", "lease_seconds": ":lease_seconds",
                         "start_count": ":limit", "fast_kinds": "'{}'",
                         "skip_ids": "'{}'", "durable": "false"})  # a claim alone
    complete = pgbench_sql(queries["job_complete_many_if_owned"],
                           {**common, "job_ids": ":job_ids", "tokens": ":tokens",
                            "results": ":results", "start_ids": "'{}'",
                            "start_tokens": "'{}'"})
    return "\n".join([
        f"\\set limit {batch_size}",
        f"\\set lease_seconds {lease_seconds:g}",
        "WITH claimed AS (",
        claim,
        ")",
        "SELECT COALESCE(array_agg(job_id), '{}')::text AS job_ids,",
        "       COALESCE(array_agg(lease_token), '{}')::text AS tokens,",
        "       array_fill(NULL::jsonb, ARRAY[count(*)::int])::text AS results",
        "  FROM claimed",
        "\\gset",
        complete + ";",
        "",
    ])


@dataclass
class Ceiling:
    """pgbench draining what ``filler`` (jobworker's own setup: same jobs, clients, batch)
    enqueued, with jobworker's statements."""

    filler: Jobworker
    pgbench: Path

    def run(self) -> Drain:
        jw = self.filler
        if not self.pgbench.exists():
            return Drain(None, note=f"no pgbench at {self.pgbench}")
        jw.fill()
        quiesce(jw.url)
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            script.write(ceiling_script(jw.batch_size))
        try:
            per_client = math.ceil(jw.jobs / (jw.batch_size * jw.workers)) + 2
            deadline = time.monotonic() + jw.timeout
            while jw.remaining() and time.monotonic() < deadline:
                done = subprocess.run(
                    [str(self.pgbench), "--no-vacuum", f"--protocol={PGBENCH_PROTOCOL}",
                     f"--client={jw.workers}", f"--jobs={jw.workers}",
                     f"--transactions={per_client}", f"--file={script.name}", jw.url],
                    capture_output=True, text=True, timeout=jw.timeout, check=False)
                if done.returncode != 0:
                    return Drain(None, note=f"pgbench failed: {done.stderr.strip()[-300:]}")
        finally:
            os.unlink(script.name)
        with psycopg.connect(jw.url, autocommit=True) as conn:
            row = conn.execute("SELECT min(started_at), max(finished_at), count(*) FROM jobs"
                               " WHERE progress = 'COMPLETED'").fetchone()
        assert row is not None
        return _drain_rate(jw.jobs, row[0], row[1], int(row[2]))


# --- the scenario ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench throughput",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain (default 20000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"jobworker's BATCH_SIZE for the headline rows and the ceiling's "
                             f"claim size (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--batches", default=EQUAL_BATCHES,
                        help="batch sizes at which jobworker (at INFO, with its per-job lines) "
                             f"and PgQueuer are compared (default {EQUAL_BATCHES}; '' for none)")
    parser.add_argument("--pgqueuer-batches", default=PGQUEUER_BATCHES,
                        help=f"PgQueuer batch sizes swept for its best "
                             f"(default {PGQUEUER_BATCHES})")
    parser.add_argument("--template-batch-size", type=int, default=TEMPLATE_BATCH_SIZE,
                        help="BATCH_SIZE of the 'defaults' row: the template's default "
                             f"(default {TEMPLATE_BATCH_SIZE})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--api-singles", type=int, default=300,
                        help="single POST /jobs/generate calls timed per round (default 300)")
    parser.add_argument("--api-batches", type=int, default=5,
                        help="POST /jobs/batch calls of 1,000 jobs timed per round (default 5)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up on one drain after this many seconds (default 600)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def _peer_problem(module: str) -> str | None:
    try:
        __import__(module)
    except Exception as exc:
        return f"{module} not installed ({type(exc).__name__}); pip install -e '.[bench]'"
    return None


def _sizes(text: str) -> list[int]:
    return sorted({int(part) for part in text.split(",") if part.strip()})


@dataclass(frozen=True)
class Plan:
    """Which drains one round runs: name -> what it measures."""

    jobworker_info: list[int]  # INFO (the template's log level), per batch size
    jobworker_warning: list[int]  # WARNING, per batch size
    pgqueuer: list[int]
    template_batch_size: int


def _plan(args: argparse.Namespace, wanted: list[str]) -> Plan:
    equal = _sizes(args.batches)
    info = sorted({*equal, args.batch_size, args.template_batch_size}) \
        if "jobworker_info" in wanted else []
    warning = sorted({*equal, args.batch_size}) if "jobworker" in wanted else []
    pgq = sorted({*equal, *_sizes(args.pgqueuer_batches)}) if "pgqueuer" in wanted else []
    return Plan(info, warning, pgq, args.template_batch_size)


def run(args: argparse.Namespace, server: BenchServer) -> dict[str, Any]:
    wanted = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = set(wanted) - set(SYSTEMS)
    if unknown:
        raise SystemExit(f"unknown systems: {', '.join(sorted(unknown))}")
    plan = _plan(args, wanted)
    setting = server.describe()  # load average as the run starts
    jw_url = server.migrated_database("jobworker_bench")
    notes: dict[str, str] = {}
    variants: dict[str, Callable[[], Drain]] = {}
    common = (args.jobs, args.workers)
    for size in plan.jobworker_warning:
        variants[f"jobworker@{size}"] = Jobworker(jw_url, *common, size, DEPLOYMENT_LOG_LEVEL,
                                                  args.timeout).run
    for size in plan.jobworker_info:
        variants[f"jobworker_info@{size}"] = Jobworker(jw_url, *common, size,
                                                       DEFAULT_LOG_LEVEL, args.timeout).run
    if "procrastinate" in wanted:
        problem = _peer_problem("procrastinate")
        if problem:
            notes["procrastinate"] = problem
        else:
            variants["procrastinate"] = Procrastinate(
                server.create_database("procrastinate_bench"), *common, args.timeout).run
    if plan.pgqueuer:
        problem = _peer_problem("pgqueuer")
        if problem:
            notes["pgqueuer"] = problem
        else:
            pgq_url = server.create_database("pgqueuer_bench")
            for size in plan.pgqueuer:
                variants[f"pgqueuer@{size}"] = PgQueuer(pgq_url, *common, args.timeout,
                                                        batch_size=size).run
    if "ceiling" in wanted:
        filler = Jobworker(jw_url, *common, args.batch_size, DEPLOYMENT_LOG_LEVEL, args.timeout)
        variants["ceiling"] = Ceiling(filler, server.bin_dir / "pgbench").run
    api_runs: list[dict[str, float | None]] = []
    if args.api_singles > 0 or args.api_batches > 0:

        def api_round() -> Drain:
            api_runs.append(api_enqueue(jw_url, args.api_singles, args.api_batches,
                                        DEFAULT_LOG_LEVEL))
            return Drain(None)

        variants["api_enqueue"] = api_round

    def announced(name: str, variant: Callable[[], Drain]) -> Callable[[], Drain]:
        def call() -> Drain:
            drain = variant()
            rate = f"{drain.jobs_per_s:,.0f} jobs/s" if drain.jobs_per_s else drain.note or "-"
            say(f"  {name}: {rate}")
            return drain
        return call

    say(f"throughput: {args.jobs} jobs, {args.workers} workers, {args.repeat} rounds, "
        f"{len(variants)} variants per round")
    results = interleaved(args.repeat, {name: announced(name, fn) for name, fn in variants.items()})
    rates = {name: median([drain.jobs_per_s for drain in drains])
             for name, drains in results.items() if name != "api_enqueue"}
    for name, drains in results.items():
        failed = [drain.note for drain in drains if drain.jobs_per_s is None and drain.note]
        if failed:
            notes[name] = failed[0]
    library_rates = [drain.enqueue_per_s for name, drains in results.items()
                     if name.startswith("jobworker") for drain in drains]
    return {**_summary(args, plan, rates, api_runs if "api_enqueue" in variants else None),
            "enqueue_library_bulk_per_s": rounded(median(library_rates)),
            "per_round_jobs_per_s": {name: [rounded(drain.jobs_per_s) for drain in drains]
                                     for name, drains in results.items()
                                     if name != "api_enqueue"},
            "notes": notes, **setting}


def _best(rates: dict[str, float | None], prefix: str) -> tuple[int | None, float | None]:
    """(batch size, rate) of the fastest variant named ``prefix@size``."""
    found = [(rate, int(name.split("@")[1])) for name, rate in rates.items()
             if name.startswith(prefix + "@") and rate]
    if not found:
        return None, None
    rate, size = max(found)
    return size, rate


def _summary(args: argparse.Namespace, plan: Plan, rates: dict[str, float | None],
             api_runs: list[dict[str, float | None]] | None) -> dict[str, Any]:
    at = args.batch_size
    ours, info = rates.get(f"jobworker@{at}"), rates.get(f"jobworker_info@{at}")
    pgq_best_size, pgq_best = _best(rates, "pgqueuer")
    jw_best_size, jw_best = _best(rates, "jobworker_info")
    _, jw_best_any = _best({**rates, **{k.replace("jobworker@", "jobworker_info@"): v
                                        for k, v in rates.items() if k.startswith("jobworker@")}},
                           "jobworker_info")
    defaults = rates.get(f"jobworker_info@{plan.template_batch_size}")
    peers = [rate for rate in (rates.get("procrastinate"), pgq_best) if rate]
    equal = _sizes(args.batches)
    return {
        "jobworker_jobs_per_s": rounded(ours),
        "jobworker_info_jobs_per_s": rounded(info),
        "procrastinate_jobs_per_s": rounded(rates.get("procrastinate")),
        "pgqueuer_jobs_per_s": rounded(pgq_best),
        "pgqueuer_best_batch_size": pgq_best_size,
        "ceiling_jobs_per_s": rounded(rates.get("ceiling")),
        "ratio_vs_best_peer": ratio(ours, max(peers) if peers else None),
        "ratio_vs_ceiling": ratio(ours, rates.get("ceiling")),
        "info_vs_warning": ratio(info, ours),
        "equal_batch": {str(size): {
            "jobworker_info_jobs_per_s": rounded(rates.get(f"jobworker_info@{size}")),
            "jobworker_warning_jobs_per_s": rounded(rates.get(f"jobworker@{size}")),
            "pgqueuer_jobs_per_s": rounded(rates.get(f"pgqueuer@{size}")),
        } for size in equal},
        "ratio_vs_peer_at_equal_batch": {
            str(size): ratio(rates.get(f"jobworker_info@{size}"), rates.get(f"pgqueuer@{size}"))
            for size in equal},
        "info_vs_warning_at_batch": {
            str(size): ratio(rates.get(f"jobworker_info@{size}"), rates.get(f"jobworker@{size}"))
            for size in equal},
        "pgqueuer_sweep_jobs_per_s": {str(size): rounded(rates.get(f"pgqueuer@{size}"))
                                      for size in plan.pgqueuer},
        "jobworker_best_info_batch_size": jw_best_size,
        "jobworker_best_info_jobs_per_s": rounded(jw_best),
        "ratio_best_vs_best": ratio(jw_best_any, pgq_best),
        "ratio_best_info_vs_best": ratio(jw_best, pgq_best),
        "template_batch_size": plan.template_batch_size,
        "defaults_jobs_per_s": rounded(defaults),
        "defaults_vs_best": ratio(defaults, jw_best_any),
        "enqueue_api_single_per_s": rounded(median(
            [run["single"] for run in api_runs])) if api_runs is not None else None,
        "enqueue_api_batch_per_s": rounded(median(
            [run["batch"] for run in api_runs])) if api_runs is not None else None,
        "jobworker_log_level": DEPLOYMENT_LOG_LEVEL,
        "jobs": args.jobs,
        "workers": args.workers,
        "batch_size": at,
        "rounds": args.repeat,
        "pgqueuer_batch_size": pgq_best_size,
        "pgqueuer_driver": pgqueuer_driver_name(),
        "procrastinate_concurrency": PROCRASTINATE_CONCURRENCY,
        "ceiling_pgbench_protocol": PGBENCH_PROTOCOL,
    }


def print_report(report: dict[str, Any]) -> None:
    ours = report["jobworker_jobs_per_s"]
    rows = [
        (f"jobworker (poller handler, BATCH_SIZE={report['batch_size']}, "
         f"log {report['jobworker_log_level']})", ours, 1.0 if ours else None),
        ("jobworker, default log level INFO", report["jobworker_info_jobs_per_s"],
         ratio(report["jobworker_info_jobs_per_s"], ours)),
        (f"procrastinate (async no-op, concurrency {report['procrastinate_concurrency']})",
         report["procrastinate_jobs_per_s"], ratio(report["procrastinate_jobs_per_s"], ours)),
        (f"PgQueuer ({report['pgqueuer_driver']}, its best batch "
         f"{report['pgqueuer_best_batch_size']})",
         report["pgqueuer_jobs_per_s"], ratio(report["pgqueuer_jobs_per_s"], ours)),
        ("ceiling: pgbench, jobworker's claim + complete SQL", report["ceiling_jobs_per_s"],
         ratio(report["ceiling_jobs_per_s"], ours)),
    ]
    print_table(f"Drain {report['jobs']:,} no-op jobs with {report['workers']} processes "
                f"(median of {report['rounds']} interleaved rounds; "
                f"{report['server']} {report['server_version']})",
                ("system", "jobs/s", "vs jobworker"), rows)
    print_table("Equal batch size (jobworker at INFO with its per-job lines)",
                ("batch", "jobworker INFO", "jobworker WARNING", "PgQueuer", "ratio"),
                [(size, row["jobworker_info_jobs_per_s"], row["jobworker_warning_jobs_per_s"],
                  row["pgqueuer_jobs_per_s"], report["ratio_vs_peer_at_equal_batch"][size])
                 for size, row in report["equal_batch"].items()])
    print_table("PgQueuer's batch size sweep", ("batch", "jobs/s"),
                list(report["pgqueuer_sweep_jobs_per_s"].items()))
    print_table("Enqueue", ("path", "jobs/s"), [
        ("API handler, single POST /jobs/generate", report["enqueue_api_single_per_s"]),
        ("API handler, POST /jobs/batch (1,000 per request)", report["enqueue_api_batch_per_s"]),
        ("library queue.create_jobs (1,000 per call)", report["enqueue_library_bulk_per_s"]),
    ])
    print(f"\nratio_vs_best_peer = {report['ratio_vs_best_peer']}, "
          f"ratio_best_vs_best = {report['ratio_best_vs_best']}, "
          f"defaults (BATCH_SIZE={report['template_batch_size']}, INFO) vs best = "
          f"{report['defaults_vs_best']}, ratio_vs_ceiling = {report['ratio_vs_ceiling']}")
    for name, note in report["notes"].items():
        print(f"note: {name}: {note}")


def main(argv: list[str]) -> int:
    return run_scenario(_parser().parse_args(argv), run, show=print_report)
