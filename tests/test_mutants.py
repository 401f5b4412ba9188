"""``make mutants`` stays in step with the SQL: every mutation still finds, exactly once, the
guard it removes (the full run, with the tests on each mutant, is ``make mutants``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from jobworker.queue.sql import parse_queries

RUNNER = Path(__file__).resolve().parents[1] / "infra" / "mutants.py"


def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jobworker_mutants", RUNNER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


MUTANTS = runner()


@pytest.mark.parametrize("mutation", MUTANTS.mutations(), ids=lambda m: m.name)
def test_mutation__applies_once_and_changes_only_its_statement(mutation: object) -> None:
    source = MUTANTS.QUERIES.read_text(encoding="utf-8")
    mutated = mutation.apply(source)  # type: ignore[attr-defined]
    before, after = parse_queries(source), parse_queries(mutated)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {mutation.statement}  # type: ignore[attr-defined]


def test_mutation__a_pattern_that_no_longer_matches_is_an_error() -> None:
    gone = MUTANTS.Mutation("gone", "job_claim_batch", r"NOWAIT")
    with pytest.raises(MUTANTS.PatternGone, match="matches 0 times"):
        gone.apply(MUTANTS.QUERIES.read_text(encoding="utf-8"))
