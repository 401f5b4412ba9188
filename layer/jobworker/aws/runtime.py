"""Per-process state of a handler: settings and the engine, built on first use, then reused.

A Lambda container keeps these across invocations (one connection, reused); nothing here runs
at import time, so a cold start only pays for what an invocation actually touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobworker.aws.settings import ConfigError, Settings, settings
from jobworker.aws.timeouts import Role, for_role

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import URL, Engine


def get_settings() -> Settings:
    return settings()


def database_url(config: Settings) -> str | URL:
    if config.database_url is not None:
        return config.database_url.get_secret_value()
    if config.db_secret_arn:
        from jobworker.aws.secrets import database_url_from_secret

        return database_url_from_secret(
            config.db_secret_arn, host=config.db_host, port=config.db_port,
            database=config.db_name)
    raise ConfigError("no database configured: set DATABASE_URL, or DB_SECRET_ARN in AWS")


_engines: dict[Role, Engine] = {}


def get_engine(role: Role = "api") -> Engine:
    """The engine of one role of the process (a Lambda function has one role; the dev server
    runs them all, each with its own pool), its connections opened with the role's limits."""
    engine = _engines.get(role)
    if engine is None:
        engine = _engines.setdefault(role, _make_engine(role))
    return engine


def _make_engine(role: Role) -> Engine:
    from jobworker.aws.engine import make_engine, tls_connect_args

    config = get_settings()
    engine = make_engine(
        database_url(config),
        disable_prepared_statements=config.db_disable_prepared_statements,
        # A migration keeps a second connection free to stop its own backend at the deadline.
        pool_size=max(config.db_pool_size, 2) if role == "migration" else config.db_pool_size,
        max_overflow=0,
        timeouts=for_role(role, config),
        tls=tls_connect_args(config.db_sslmode, config.db_sslrootcert),
    )
    if config.database_url is None and config.db_secret_arn:
        from jobworker.aws.secrets import follow_rotation

        follow_rotation(engine, config.db_secret_arn)
    return engine


def drop_connections() -> None:
    """Close the pooled connections (after the database was unavailable: a pooled connection
    may sit on a server that a failover made read-only); the next use opens new ones."""
    for engine in _engines.values():
        engine.dispose()


def reset() -> None:
    """Forget settings and engine (tests change the environment between cases)."""
    from jobworker.aws.settings import settings as cached_settings

    while _engines:
        _engines.popitem()[1].dispose()
    cached_settings.cache_clear()
