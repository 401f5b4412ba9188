"""Loads ``queries.sql``: named blocks of SQL, each starting with a ``-- name: <name>`` line."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import TextClause

QUERIES_FILE = Path(__file__).with_name("queries.sql")

_NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")  # :name, not the second colon of ::type


def parse_queries(source: str) -> dict[str, str]:
    """Split the file into {name: sql}; comment lines stay, the trailing semicolon goes."""
    parts = _NAME_LINE.split(source)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {QUERIES_FILE.name}")
        queries[name] = body.strip().rstrip(";").replace("{job_columns}", job_columns())
    return queries


@cache
def job_columns() -> str:
    """The select list of a whole job: the fields of ``Job``, in its order (its only copy)."""
    from jobworker.queue.rows import job_select_list

    return job_select_list()


@cache
def raw_queries() -> dict[str, str]:
    return parse_queries(QUERIES_FILE.read_text(encoding="utf-8"))


@cache
def query(name: str) -> TextClause:
    """The named statement, ready for ``connection.execute(query(name), params)``."""
    from sqlalchemy import text

    return text(raw_queries()[name])


@cache
def binary_statement(name: str) -> str:
    """The named statement for a psycopg cursor, every ``:param`` sent in binary format.

    For the few statements that move a batch: a thousand UUIDs and integers dump and load in
    C this way, where text format quotes and scans every element.
    """
    return with_parameters(raw_queries()[name].replace("%", "%%"), lambda name: f"%({name})b")


def with_parameters(sql: str, placeholder: Callable[[str], str]) -> str:
    """``sql`` with each ``:name`` parameter replaced by ``placeholder(name)`` (for drivers and
    tools that spell parameters otherwise: psycopg, PREPARE, pgbench)."""
    return _PARAMETER.sub(lambda match: placeholder(match.group(1)), sql)
