"""A real PgBouncer in transaction pooling mode, in front of the tests' Postgres.

It stands in for RDS Proxy, which cannot run here: a server connection serves a client for one
transaction at a time, so anything that leans on session state (a ``SET``, a session advisory
lock, a server-side prepared statement) leaks between clients or breaks. Debian's ``pgbouncer``
refuses to run as root; as root it runs as the user that owns the embedded server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url

from jobworker.aws.engine import libpq_url

# Debian installs it under /usr/sbin, which is not on a normal user's PATH.
SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"
START_TIMEOUT_SECONDS = 10.0


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer", path=SEARCH_PATH)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PgBouncer:
    """One pgbouncer process; ``url_for(database)`` is how a client reaches a database."""

    def __init__(self, server_url: str, *, run_as: str | None = None, pool_size: int = 20,
                 users: tuple[str, ...] = ()) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.binary = binary
        self.server = make_url(libpq_url(server_url))
        self.run_as = run_as if os.geteuid() == 0 else None
        self.pool_size = pool_size
        self.users = ("postgres", *users)
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="jobworker-pgbouncer-"))
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        host = self.server.query.get("host") or self.server.host or "127.0.0.1"
        port = self.server.port or 5432
        return "\n".join([
            "[databases]",
            # Any database name the client asks for, on the tests' server, as the client's user.
            f"* = host={host} port={port}",
            "[pgbouncer]",
            "pool_mode = transaction",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            f"unix_socket_dir = {self.folder}",
            "auth_type = trust",
            f"auth_file = {self.folder / 'users.txt'}",
            f"default_pool_size = {self.pool_size}",
            "max_client_conn = 500",
            # An outage must fail fast, as RDS Proxy's borrow timeout does, and a restarted
            # server must be retried at once (the defaults wait 120 s and 15 s).
            "query_wait_timeout = 3",
            "server_login_retry = 0",
            "server_connect_timeout = 5",
            "ignore_startup_parameters = extra_float_digits,options",
            f"logfile = {self.folder / 'pgbouncer.log'}",
            "",
        ])

    def start(self) -> PgBouncer:
        (self.folder / "users.txt").write_text("".join(f'"{user}" ""\n' for user in self.users))
        (self.folder / "pgbouncer.ini").write_text(self.config())
        self.folder.chmod(0o755)
        if self.run_as:
            shutil.chown(self.folder, self.run_as)
        self.process = subprocess.Popen(
            [self.binary, str(self.folder / "pgbouncer.ini")],
            user=self.run_as, group=self.run_as, extra_groups=[] if self.run_as else None,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen within {START_TIMEOUT_SECONDS} s")

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def url_for(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
