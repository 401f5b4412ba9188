"""pytest plugin for ``make mutants``: the queue runs on a mutated COPY of ``queries.sql``.

Loaded with ``-p tests.mutant_sql`` by ``infra/mutants.py``, which names the copy in
``JOBWORKER_MUTANT_SQL``. The source file is never touched: the loader is pointed at the copy
before any statement is read, and its caches are emptied so nothing of the original stays.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MUTANT_SQL = "JOBWORKER_MUTANT_SQL"


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(MUTANT_SQL)
    if not path:
        raise pytest.UsageError(f"tests.mutant_sql needs {MUTANT_SQL}: the mutated copy's path")
    from jobworker.queue import sql

    sql.QUERIES_FILE = Path(path)
    for cached in (sql.raw_queries, sql.query, sql.binary_statement):
        cached.cache_clear()
