"""PgQueuer under the load ``jobworker bench held-xmin`` gives jobworker, in the same run.

The same offered rate (enqueued through PgQueuer's ``Queries.enqueue`` in small batches every
50 ms), the same number of worker processes (``QueueManager.run`` in its continuous mode, its
batch size equal to jobworker's ``BATCH_SIZE``), the same REPEATABLE READ transaction held
open in the middle of the run on PgQueuer's database. Each worker times its dequeue statement
(``Queries.dequeue``) as jobworker's pollers time their claim, and records when each job ran;
the phases before, during and after the hold are cut as for jobworker.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from datetime import timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from .common import say
from .throughput import (
    _execute,
    _pgqueuer_driver,
    _processes,
    _quiet_stdout,
    _scalar,
    _wait_ready,
)

ENQUEUE_EVERY_SECONDS = 0.05


def pgqueuer_worker(url: str, batch_size: int, ready: Event, go: Event, stop: Event,
                    out: Queue[Any]) -> None:
    """A PgQueuer worker running until told to stop; reports its dequeue timings and runs."""
    _quiet_stdout()
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries

    ran_at: list[float] = []
    claims_at: list[tuple[float, float]] = []
    dequeue = Queries.dequeue

    async def timed_dequeue(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await dequeue(self, *args, **kwargs)
        finally:
            claims_at.append((time.monotonic(), (time.perf_counter() - started) * 1000))

    Queries.dequeue = timed_dequeue  # type: ignore[method-assign, unused-ignore]

    async def main() -> None:
        manager = QueueManager(Queries(await _pgqueuer_driver(url)))

        @manager.entrypoint("noop")
        async def noop(job: Any) -> None:
            ran_at.append(time.monotonic())

        ready.set()
        await asyncio.to_thread(go.wait)

        async def stop_when_told() -> None:
            await asyncio.to_thread(stop.wait)
            manager.shutdown.set()

        stopper = asyncio.create_task(stop_when_told())
        await manager.run(batch_size=batch_size, dequeue_timeout=timedelta(seconds=1))
        await stopper

    asyncio.run(main())
    out.put({"ran_at": ran_at, "claims_at": claims_at})


def _enqueue_at_rate(url: str, rate: float, seconds: float, stop: threading.Event) -> int:
    from pgqueuer.queries import Queries

    async def main() -> int:
        queries = Queries(await _pgqueuer_driver(url))
        sent, started = 0, time.monotonic()
        while not stop.is_set() and (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - sent
            if due > 0:
                await queries.enqueue(["noop"] * due, [None] * due, [0] * due)
                sent += due
            await asyncio.sleep(ENQUEUE_EVERY_SECONDS)
        return sent

    return asyncio.run(main())


def pgqueuer_database(server: Any) -> str:
    """PgQueuer's own database on the bench server, its schema installed."""
    from pgqueuer.queries import Queries

    url: str = server.create_database("pgqueuer_sustained")

    async def install() -> None:
        await Queries(await _pgqueuer_driver(url)).install()

    if not _scalar(url, "SELECT to_regclass('pgqueuer') IS NOT NULL"):
        asyncio.run(install())
    return url


def run_peer(server: Any, args: argparse.Namespace, rate: float,
             hold_xmin: Any) -> dict[str, Any]:
    """PgQueuer's run: what happened, as (window, claims, ran_at) for the phase cutter."""
    url = pgqueuer_database(server)
    _execute(url, "TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics",
             "VACUUM ANALYZE pgqueuer")
    seconds = args.minutes * 60.0
    say(f"PgQueuer: {rate:,.0f} jobs/s offered for {seconds:.0f} s, {args.pollers} workers, "
        f"xmin held {args.hold_xmin_seconds:g} s mid-run")
    stop = threading.Event()
    window: list[float] = []
    claims: list[tuple[float, float]] = []
    ran_at: list[float] = []
    sent: list[int] = []
    with _processes(pgqueuer_worker, args.pollers, url, args.batch_size) as (
            procs, ready, go, workers_stop, out):
        problem = _wait_ready(procs, ready)
        if problem:
            return {"error": problem}
        go.set()
        at = max(0.0, (seconds - args.hold_xmin_seconds) / 2)
        threads = [
            threading.Thread(target=lambda: sent.append(_enqueue_at_rate(url, rate, seconds,
                                                                         stop)), daemon=True),
            threading.Thread(target=hold_xmin, daemon=True,
                             args=(url, at, args.hold_xmin_seconds, stop, window, "pgqueuer")),
        ]
        for thread in threads:
            thread.start()
        threads[0].join(timeout=seconds + 120)
        stop.set()
        threads[1].join(timeout=120)
        workers_stop.set()
        for _ in procs:
            report = out.get(timeout=120)
            claims.extend(report["claims_at"])
            ran_at.extend(report["ran_at"])
    return {"window": window, "claims": claims, "ran_at": ran_at, "enqueued": sum(sent)}
