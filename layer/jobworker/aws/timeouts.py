"""How long a database connection may wait, per role of the process that holds it.

Without limits one lock wait or one half-open connection can eat a whole invocation, the
heartbeat's included. Each role gets its limits at connect time, as libpq connection options
(``options=-c statement_timeout=...`` and TCP keepalives): they are part of the startup
packet, so no ``SET`` is ever sent (a session ``SET`` would pin the connection to its backend
behind RDS Proxy). Where one transaction needs a tighter limit than its connection's (the
heartbeat's beat, a migration with a deadline), ``set_local`` sets it with ``SET LOCAL``-like
``set_config(..., true)``, which lasts until the end of that transaction only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from jobworker.aws.settings import Settings

Role = Literal["api", "poller", "sweeper", "migration"]
ROLES: tuple[Role, ...] = ("api", "poller", "sweeper", "migration")

# TCP keepalives: a peer that vanished (a NAT that dropped the flow, a failed-over database)
# is noticed after idle + interval * count seconds instead of the kernel's two hours.
KEEPALIVES_INTERVAL_SECONDS = 10
KEEPALIVES_COUNT = 3


@dataclass(frozen=True)
class SessionTimeouts:
    """Postgres limits in seconds; 0 turns one off (as in Postgres itself)."""

    statement_seconds: float
    lock_seconds: float
    idle_in_transaction_seconds: float
    keepalives_idle_seconds: int

    def connect_args(self) -> dict[str, Any]:
        """libpq connection parameters that set these limits when the connection opens."""
        options = " ".join(
            f"-c {name}={_milliseconds(seconds)}"
            for name, seconds in (
                ("statement_timeout", self.statement_seconds),
                ("lock_timeout", self.lock_seconds),
                ("idle_in_transaction_session_timeout", self.idle_in_transaction_seconds),
            )
        )
        return {
            "options": options,
            "keepalives": 1,
            "keepalives_idle": self.keepalives_idle_seconds,
            "keepalives_interval": KEEPALIVES_INTERVAL_SECONDS,
            "keepalives_count": KEEPALIVES_COUNT,
            # Data sent but never acknowledged (the peer is gone mid-request) fails the
            # connection after this long, even while a statement is running.
            "tcp_user_timeout": _milliseconds(
                self.keepalives_idle_seconds
                + KEEPALIVES_INTERVAL_SECONDS * KEEPALIVES_COUNT),
        }


def for_role(role: Role, config: Settings) -> SessionTimeouts:
    """The limits of one role: the API answers within API Gateway's 29 s, the background
    functions get longer statements, migrations take their own lock and statement limits."""
    statement = {
        "api": config.db_api_statement_timeout_seconds,
        "poller": config.db_statement_timeout_seconds,
        "sweeper": config.db_statement_timeout_seconds,
        "migration": config.migration_statement_timeout_seconds,
    }[role]
    lock = config.migration_lock_timeout_seconds if role == "migration" else (
        config.db_lock_timeout_seconds)
    return SessionTimeouts(
        statement_seconds=statement,
        lock_seconds=lock,
        idle_in_transaction_seconds=config.db_idle_in_transaction_timeout_seconds,
        keepalives_idle_seconds=config.db_keepalives_idle_seconds,
    )


def set_local(conn: Connection, *, statement_seconds: float, lock_seconds: float) -> None:
    """Tighter limits for the current transaction only (it must have begun): one round trip."""
    from sqlalchemy import text

    conn.execute(
        text("SELECT set_config('statement_timeout', :statement, true),"
             " set_config('lock_timeout', :lock, true)"),
        {"statement": f"{_milliseconds(statement_seconds)}ms",
         "lock": f"{_milliseconds(lock_seconds)}ms"},
    )


def _milliseconds(seconds: float) -> int:
    """Postgres takes whole milliseconds; a positive limit never rounds down to 0 (= off)."""
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))
