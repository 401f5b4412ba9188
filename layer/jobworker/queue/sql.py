"""Loads ``queries.sql``: named blocks of SQL, each starting with a ``-- name: <name>`` line."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ServerFunction:
    """A statement of ``queries.sql`` that the database runs as a PL/pgSQL function.

    PL/pgSQL keeps the plans of its statements for the life of the server connection, so a
    statement run as a function is parsed and planned once per connection instead of at
    every execution, the way a prepared statement is, and it still works behind RDS Proxy
    and PgBouncer, which cannot share the client's prepared statements (and which
    ``DB_DISABLE_PREPARED_STATEMENTS`` therefore turns off). The function is made from the
    statement's text in ``queries.sql`` (its ``:name`` parameters become ``p_name``), so
    the file stays the one copy of the SQL: ``migrate()`` installs it at every migration to
    head, and whatever the file says is what runs."""

    statement: str  # its name in queries.sql
    name: str  # the function's name in the database
    parameters: tuple[tuple[str, str], ...]  # (parameter, SQL type), in call order
    returns: str  # the columns of RETURNS TABLE (...), as the statement returns them
    # Set while the function runs. PL/pgSQL's plan cache, like a prepared statement's, plans
    # anew at every call (a "custom" plan) unless the plan made without the parameters'
    # values looks as cheap; for these statements it never does (the planner cannot know
    # :limit or how long the arrays are), so without this setting the plan kept per
    # connection was never used: the claim at batch 10 spent more of the server's time
    # planning than running. The generic plan is the one tests/test_query_plans.py checks.
    settings: tuple[tuple[str, str], ...] = (("plan_cache_mode", "force_generic_plan"),)

    def body(self) -> str:
        sql = with_parameters(raw_queries()[self.statement], lambda name: f"p_{name}")
        # Unqualified names that are also result columns (job_id, kind...) are the table's.
        return f"\n#variable_conflict use_column\nBEGIN\nRETURN QUERY\n{sql};\nEND\n"

    def signature(self) -> str:
        return f"{self.name}({', '.join(kind for _, kind in self.parameters)})"

    def definition(self) -> str:
        parameters = ", ".join(f"p_{name} {kind}" for name, kind in self.parameters)
        settings = "".join(f"SET {name} = {value}\n" for name, value in self.settings)
        return (f"CREATE FUNCTION {self.name}({parameters})\n"
                f"RETURNS TABLE ({self.returns})\nLANGUAGE plpgsql VOLATILE\n{settings}"
                f"AS $jobworker${self.body()}$jobworker$")

    def config(self) -> list[str]:
        """The settings as ``pg_proc.proconfig`` lists them once defined."""
        return [f"{name}={value}" for name, value in self.settings]

    def call(self) -> str:
        """The call, for a psycopg cursor, every parameter in binary and cast to its type
        (an empty list has no type of its own to choose the function by)."""
        arguments = ", ".join(f"CAST(%({name})b AS {kind})" for name, kind in self.parameters)
        return f"SELECT * FROM {self.name}({arguments})"


SERVER_FUNCTIONS = {
    "job_claim_batch": ServerFunction(
        statement="job_claim_batch",
        name="jobs_claim_batch",
        parameters=(("owner", "text"), ("limit", "integer"), ("lease_seconds", "float8"),
                    ("start_count", "integer"), ("fast_kinds", "text[]"),
                    ("skip_ids", "uuid[]"), ("durable", "boolean"), ("now", "timestamptz")),
        returns=("job_id uuid, kind text, payload text, attempt integer, max_attempts integer,"
                 " lease_token bigint, attempt_started boolean, priority smallint,"
                 " run_at timestamptz"),
    ),
    "job_complete_many_if_owned": ServerFunction(
        statement="job_complete_many_if_owned",
        name="jobs_complete_many",
        parameters=(("owner", "text"), ("job_ids", "uuid[]"), ("tokens", "bigint[]"),
                    ("results", "jsonb[]"), ("start_ids", "uuid[]"),
                    ("start_tokens", "bigint[]"), ("now", "timestamptz")),
        returns="job_id uuid, refused text",
    ),
}
