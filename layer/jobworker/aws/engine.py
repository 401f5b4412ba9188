"""One SQLAlchemy engine per process, sized for Lambda, over psycopg 3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine, make_url

if TYPE_CHECKING:
    from jobworker.aws.timeouts import SessionTimeouts


def sqlalchemy_url(url: str | URL) -> URL:
    """Accept the URLs users have (``postgresql://``, ``postgres://``); pin the psycopg 3 driver."""
    if isinstance(url, str):
        url = url.replace("postgres://", "postgresql://", 1)
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.password == "":
        parsed = parsed.set(password=None)
    return parsed


def libpq_url(url: str | URL) -> str:
    """The same address as a plain libpq URL (for psql, pgbench and other non-SQLAlchemy tools)."""
    return sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str | URL, *, disable_prepared_statements: bool = False,
                pool_size: int = 2, max_overflow: int = 0,
                timeouts: SessionTimeouts | None = None, **engine_args: Any) -> Engine:
    """Create the process's engine.

    A Lambda container handles one event at a time: one connection for the work, reused
    across invocations, and one for the poller's heartbeat thread (opened only when a poller
    first needs it; the API never does). ``pool_pre_ping`` re-opens a
    connection that died while the container was frozen or the database restarted.
    ``disable_prepared_statements`` turns off psycopg's automatic server-side prepares, which
    RDS Proxy and PgBouncer (transaction mode) cannot share across clients. ``timeouts``
    become connection options (statement, lock and idle limits, TCP keepalives).
    """
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if disable_prepared_statements:
        connect_args["prepare_threshold"] = None
    if timeouts is not None:
        connect_args.update(timeouts.connect_args())
    return create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
        **engine_args,
    )
