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
    """Split the file into {name: sql}, each without its ``--`` comments and trailing semicolon.

    The comments are for the people reading the file. Sent with every execution, they would
    cost the server's lexer and, worse, psycopg's cache of parsed queries, which holds only
    statements up to 4,096 characters: with its comments the claim was longer and psycopg
    parsed it anew, with a regular expression, at every claim."""
    parts = _NAME_LINE.split(source)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in {QUERIES_FILE.name}")
        sql = without_comments(body).strip().rstrip(";")
        queries[name] = sql.replace("{job_columns}", job_columns())
    return queries


def without_comments(sql: str) -> str:
    """``sql`` without its ``--`` comments (those outside quoted text), and without the lines
    they leave empty; every other character kept in place."""
    lines = []
    for line in sql.splitlines():
        code = line[:_comment_start(line)].rstrip()
        if code or not line.strip():  # a line that held only a comment goes
            lines.append(code)
    return "\n".join(lines)


def _comment_start(line: str) -> int:
    """Where a ``--`` comment starts in ``line`` (its length if none), skipping '...' strings
    and "..." identifiers. Dollar quoting (a function body) is refused: no statement here
    needs it, and a ``--`` inside one is not a comment."""
    quote: str | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if quote is not None:
            if char == quote:
                quote = None  # a doubled quote ('') closes and reopens: same result
        elif char in "'\"":
            quote = char
        elif char == "$":
            raise ValueError(f"dollar quoting is not supported in {QUERIES_FILE.name}: {line!r}")
        elif line.startswith("--", index):
            return index
        index += 1
    return len(line)


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
