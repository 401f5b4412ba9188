"""queries.sql as the server and psycopg see it: the statements without their comments, each
short enough for psycopg's cache of parsed queries."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import _queries

from jobworker.queue.sql import QUERIES_FILE, binary_statement, parse_queries, raw_queries


def test_statements_are_sent_without_the_files_comments() -> None:
    source = QUERIES_FILE.read_text(encoding="utf-8")
    assert source.count("\n--") > 50  # the file is commented...
    for name, sql in raw_queries().items():
        assert "--" not in sql, name  # ...what is sent is not
        assert sql == sql.strip(), name
        assert not sql.endswith(";"), name


def test_every_statement_fits_psycopgs_cache_of_parsed_queries() -> None:
    # Longer ones are parsed again, with a regular expression, at every execution: for the
    # claim that cost more than its round trip.
    limit = _queries.MAX_CACHED_STATEMENT_LENGTH
    too_long = {name: len(binary_statement(name).encode()) for name in raw_queries()
                if len(binary_statement(name).encode()) > limit}
    assert too_long == {}


def test_the_claim_is_parsed_once_by_psycopg_then_taken_from_its_cache() -> None:
    _queries._query2pg.cache_clear()
    params = {"owner": "w", "limit": 1, "lease_seconds": 1.0, "start_count": 1,
              "fast_kinds": [], "skip_ids": [], "durable": False, "now": None}
    for _ in range(3):  # what cursor.execute does with the statement, each claim
        _queries.PostgresQuery(psycopg.adapt.Transformer()).convert(
            binary_statement("job_claim_batch"), params)
    cached = _queries._query2pg.cache_info()
    assert (cached.misses, cached.hits) == (1, 2)


def test_comments_inside_quoted_text_are_text() -> None:
    source = """-- name: a
SELECT '-- not a comment' AS "a--b", 'it''s -- text' -- a comment
  -- a line of comment
  FROM t;
"""
    assert parse_queries(source)["a"] == (
        """SELECT '-- not a comment' AS "a--b", 'it''s -- text'\n  FROM t""")


def test_dollar_quoting_is_refused_rather_than_cut() -> None:
    with pytest.raises(ValueError, match="dollar quoting"):
        parse_queries("-- name: a\nSELECT $$ -- $$;\n")
