"""One SQLAlchemy engine per process, sized for Lambda, over psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url

from jobworker.aws.settings import ConfigError
from jobworker.queue.errors import UNAVAILABLE_SQLSTATES

# The layer ships the CA bundle here (see certs/README.md: it is the RDS bundle the user
# downloads; nothing fetches it at run time).
PACKAGED_CA_BUNDLE = Path(__file__).parent / "certs" / "rds-ca-bundle.pem"
VERIFYING_SSLMODES = ("verify-ca", "verify-full")

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
                timeouts: SessionTimeouts | None = None,
                tls: dict[str, Any] | None = None, **engine_args: Any) -> Engine:
    """Create the process's engine.

    A Lambda container handles one event at a time: one connection for the work, reused
    across invocations, and one for the poller's heartbeat thread (opened only when a poller
    first needs it; the API never does). ``pool_pre_ping`` re-opens a
    connection that died while the container was frozen or the database restarted.
    ``disable_prepared_statements`` turns off psycopg's automatic server-side prepares, which
    RDS Proxy and PgBouncer (transaction mode) cannot share across clients. ``timeouts``
    become connection options (statement, lock and idle limits, TCP keepalives). ``tls`` is
    what ``tls_connect_args`` returned.
    """
    connect_args: dict[str, Any] = {"connect_timeout": 5, **(tls or {})}
    if disable_prepared_statements:
        connect_args["prepare_threshold"] = None
    if timeouts is not None:
        connect_args.update(timeouts.connect_args())
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
        **engine_args,
    )
    drop_stale_connections(engine)
    return engine


def connection_is_stale(exc: BaseException | None) -> bool:
    """True when the error says the connection it came on should not be used again: its
    server turned read-only (only a new connection reaches the new writer after a
    failover) or is ending the session."""
    return getattr(exc, "sqlstate", None) in UNAVAILABLE_SQLSTATES


def drop_stale_connections(engine: Engine) -> None:
    """Treat stale-connection errors as disconnects: SQLAlchemy then closes the connection
    and every other one pooled before it (``pool_pre_ping`` cannot see a read-only server:
    its ping succeeds), and the error reports ``connection_invalidated``."""

    @event.listens_for(engine, "handle_error")
    def _drop_if_stale(context: ExceptionContext) -> None:
        if connection_is_stale(context.original_exception):
            context.is_disconnect = True


def tls_connect_args(sslmode: str | None, sslrootcert: str | None) -> dict[str, Any]:
    """libpq's TLS options for ``sslmode``; a verifying mode needs a CA bundle that exists
    (``sslrootcert``, or the packaged one), or the process refuses to start: verifying
    against nothing would fail every connection, and falling back to ``require`` would
    silently trust any server."""
    if sslmode is None:
        return {}
    if sslmode not in VERIFYING_SSLMODES:
        return {"sslmode": sslmode}
    bundle = Path(sslrootcert) if sslrootcert else PACKAGED_CA_BUNDLE
    if not bundle.is_file() or bundle.stat().st_size == 0:
        raise ConfigError(
            f"DB_SSLMODE={sslmode} needs a CA bundle, and {bundle} is missing or empty: set "
            "DB_SSLROOTCERT, or put the RDS bundle (https://truststore.pki.rds.amazonaws.com/"
            "global/global-bundle.pem) at jobworker/aws/certs/rds-ca-bundle.pem before "
            "building the layer"
        )
    return {"sslmode": sslmode, "sslrootcert": str(bundle)}
