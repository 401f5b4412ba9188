"""The pooler lane is no pass-through: behind PgBouncer in transaction mode, the session-state
mistakes that RDS Proxy punishes (it pins, or shares, a server connection) misbehave.

A PgBouncer with one server connection per pool serves two clients, so whatever one client
leaves on its server session, the other finds there. The same steps on direct connections
show the behaviour the code would wrongly rely on.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from jobworker.aws.engine import libpq_url
from jobworker.dev.localdb import LocalPostgres
from tests.conftest import require_tool
from tests.pgbouncer import PgBouncer, pgbouncer_binary


@pytest.fixture(scope="module")
def one_server_connection(pg_server: LocalPostgres) -> Iterator[PgBouncer]:
    require_tool(pgbouncer_binary(), "pgbouncer is not installed (apt-get install pgbouncer)")
    run_as = pg_server.handle.system_user if pg_server.handle is not None else "postgres"
    with PgBouncer(pg_server.url, run_as=run_as, pool_size=1) as bouncer:
        yield bouncer


def two_clients(url: str, prepare_threshold: int | None = None
                ) -> tuple[psycopg.Connection, psycopg.Connection]:
    def connect() -> psycopg.Connection:
        conn = psycopg.connect(url, autocommit=True)
        conn.prepare_threshold = prepare_threshold
        return conn

    return connect(), connect()


def direct(pg_server: LocalPostgres) -> str:
    return libpq_url(pg_server.url)


def pooled(bouncer: PgBouncer) -> str:
    return bouncer.url_for("postgres")


def statement_timeout_seen_by_the_other(url: str) -> str:
    first, second = two_clients(url)
    with first, second:
        first.execute("SET statement_timeout = '1234ms'")
        row = second.execute("SHOW statement_timeout").fetchone()
        first.execute("RESET statement_timeout")
    assert row is not None
    return str(row[0])


def test_session_set__leaks_to_another_client_through_the_pooler(
    pg_server: LocalPostgres, one_server_connection: PgBouncer,
) -> None:
    assert statement_timeout_seen_by_the_other(direct(pg_server)) == "0"
    assert statement_timeout_seen_by_the_other(pooled(one_server_connection)) == "1234ms"


def other_client_can_take_the_lock(url: str) -> bool:
    first, second = two_clients(url)
    with first, second:
        assert first.execute("SELECT pg_advisory_lock(4242)").fetchone() is not None
        row = second.execute("SELECT pg_try_advisory_lock(4242)").fetchone()
        first.execute("SELECT pg_advisory_unlock_all()")
        second.execute("SELECT pg_advisory_unlock_all()")
    assert row is not None
    return bool(row[0])


def test_session_advisory_lock__excludes_no_one_through_the_pooler(
    pg_server: LocalPostgres, one_server_connection: PgBouncer,
) -> None:
    assert other_client_can_take_the_lock(direct(pg_server)) is False
    assert other_client_can_take_the_lock(pooled(one_server_connection)) is True


def run_prepared_by_both(url: str, prepare_threshold: int | None) -> None:
    """Each client runs its own statement, prepared server-side at first use when
    ``prepare_threshold`` is 0 (psycopg names them _pg3_0, _pg3_1, ... per connection)."""
    first, second = two_clients(url, prepare_threshold)
    with first, second:
        assert first.execute("SELECT 1").fetchone() == (1,)
        assert second.execute("SELECT 2").fetchone() == (2,)
        assert first.execute("SELECT 1").fetchone() == (1,)


def test_prepared_statements__collide_through_the_pooler_unless_turned_off(
    pg_server: LocalPostgres, one_server_connection: PgBouncer,
) -> None:
    run_prepared_by_both(direct(pg_server), prepare_threshold=0)
    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        run_prepared_by_both(pooled(one_server_connection), prepare_threshold=0)
    # What DB_DISABLE_PREPARED_STATEMENTS does (prepare_threshold=None): no server-side state.
    run_prepared_by_both(pooled(one_server_connection), prepare_threshold=None)
