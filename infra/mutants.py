"""``make mutants``: break the queue's SQL one way at a time and show the tests notice.

Each mutation removes one guard from one named statement of ``queries.sql``: ``SKIP LOCKED``
from the claim, each fence condition (owner, lease token, claim) of every statement that
writes a RUNNING job, single or batch, and the lease-expiry condition of orphan recovery. The
mutation is applied to a COPY in a temporary folder (the source file is never written); the
relevant tests then run against the copy (``-p tests.mutant_sql`` points the SQL loader at
it). A mutant is *killed* when a test fails, and the test that failed is named.

Prints a table, one line per mutant; exits 1 if any mutant survives, or if a mutation's
pattern no longer matches its statement exactly once (the SQL changed: update the mutation,
or the guard it stood for is gone). All runs share one PostgreSQL server, started here.

    make mutants                         # all of them
    python infra/mutants.py --list       # what each mutation removes
    python infra/mutants.py --only claim-skip-locked --show-output
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "layer" / "jobworker" / "queue" / "queries.sql"

# The tests that stand guard over the queue's SQL, quickest first: a mutant is usually killed
# by the deterministic tests of the queue in seconds; the state machine runs only for those
# that survive them.
TESTS = [
    "tests/test_queue.py",
    "tests/test_sweeper.py",
    "tests/test_state_machine.py::test_queue_state_machine__invariants_hold_for_random_histories",
]
# A mutant that makes a statement wait (no SKIP LOCKED) fails on a lock timeout, never hangs.
PGOPTIONS = "-c lock_timeout=5s -c statement_timeout=60s"
PER_TEST_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Mutation:
    """Remove what ``pattern`` matches (exactly once) in the statement named ``statement``."""

    name: str
    statement: str
    pattern: str
    replacement: str = ""

    def apply(self, source: str) -> str:
        start, end = statement_span(source, self.statement)
        block = source[start:end]
        found = len(re.findall(self.pattern, block))
        if found != 1:
            raise PatternGone(f"{self.name}: /{self.pattern}/ matches {found} times in "
                              f"{self.statement} (expected once)")
        return source[:start] + re.sub(self.pattern, self.replacement, block) + source[end:]


class PatternGone(Exception):
    """A mutation no longer applies to the SQL it was written for."""


def statement_span(source: str, name: str) -> tuple[int, int]:
    """Where the named block starts and ends (the next ``-- name:`` line, or the end)."""
    heading = re.search(rf"^-- name: {re.escape(name)}\s*$", source, re.MULTILINE)
    if heading is None:
        raise PatternGone(f"no statement named {name} in {QUERIES.name}")
    following = re.compile(r"^-- name: ", re.MULTILINE).search(source, heading.end())
    return heading.start(), following.start() if following else len(source)


# The single-job statements that end a RUNNING job name the job and the fence on their own
# lines; the batch ones keep the fence in one parenthesised condition (see job_extend_leases).
# A fence condition on progress alone is not mutated: a lease (owner) exists iff RUNNING (a
# CHECK), so the owner check already implies it and the mutant could not be told apart.
SINGLE_FENCED = ["job_cancel_if_owned", "job_complete_if_owned", "job_fail_if_owned"]
BATCH_FENCED = {
    "job_complete_many_if_owned": "done",
    "job_extend_leases": "held",
    "job_release_many_if_owned": "held",
}


def mutations() -> list[Mutation]:
    found = [
        Mutation("claim-skip-locked", "job_claim_batch", r"(FOR UPDATE) SKIP LOCKED", r"\1"),
        Mutation("recover-lease-expiry", "job_recover_orphans",
                 r"\n\s*AND lease_expires_at < COALESCE\(CAST\(:now AS timestamptz\), now\(\)\)"),
    ]
    for statement in SINGLE_FENCED:
        short = statement.removeprefix("job_").removesuffix("_if_owned")
        found += [
            Mutation(f"{short}-owner", statement, r"\n\s*AND lease_owner = :owner"),
            Mutation(f"{short}-attempt", statement, r"\n\s*AND attempts = :attempt"),
        ]
    for statement, rows in BATCH_FENCED.items():
        short = statement.removeprefix("job_").removesuffix("_if_owned")
        found += [
            Mutation(f"{short}-owner", statement, r" AND j\.lease_owner = :owner"),
            Mutation(f"{short}-attempt", statement, rf" AND j\.attempts = {rows}\.attempt"),
        ]
    return found


@dataclass
class Outcome:
    mutation: Mutation
    killed: bool
    killer: str
    seconds: float
    output: str


def run_tests(copy: Path, server_url: str) -> tuple[bool, str, str]:
    """Run the guard tests on ``copy``; (killed, the first failing test, pytest's output)."""
    env = {**os.environ, "JOBWORKER_MUTANT_SQL": str(copy), "TEST_DATABASE_URL": server_url,
           "PGOPTIONS": PGOPTIONS}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
               "-p", "tests.mutant_sql", f"--timeout={PER_TEST_TIMEOUT_SECONDS}", *TESTS]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    output = done.stdout + done.stderr
    if done.returncode == 0:
        return False, "", output
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return True, failed.group(1) if failed else f"pytest exit {done.returncode}", output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--list", action="store_true", help="print the mutations and stop")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this mutant (repeatable)")
    parser.add_argument("--show-output", action="store_true",
                        help="print pytest's output of every mutant")
    args = parser.parse_args(argv)
    source = QUERIES.read_text(encoding="utf-8")
    chosen = [m for m in mutations() if not args.only or m.name in args.only]
    gone: list[str] = []
    mutated: dict[str, str] = {}
    for mutation in chosen:
        try:
            mutated[mutation.name] = mutation.apply(source)
        except PatternGone as exc:
            gone.append(str(exc))
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name:28} {mutation.statement:28} drops /{mutation.pattern}/")
        return 0
    missing = [test for test in TESTS if not (ROOT / test.split("::")[0]).exists()]
    if missing:  # pytest would fail on them, and every mutant would look killed
        print(f"missing test files: {missing}", file=sys.stderr)
        return 2
    outcomes = run_all(chosen, mutated, show_output=args.show_output)
    print_table(outcomes, gone)
    survived = [outcome for outcome in outcomes if not outcome.killed]
    return 1 if survived or gone or not chosen else 0


def run_all(chosen: list[Mutation], mutated: dict[str, str], *,
            show_output: bool) -> list[Outcome]:
    sys.path.insert(0, str(ROOT / "layer"))
    from jobworker.dev.localdb import throwaway_postgres

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="jobworker-mutants-") as folder, \
            throwaway_postgres(explicit_url=os.environ.get("TEST_DATABASE_URL"),
                               want_docker=False) as server:
        for mutation in chosen:
            if mutation.name not in mutated:
                continue
            copy = Path(folder) / f"{mutation.name}.sql"
            copy.write_text(mutated[mutation.name], encoding="utf-8")
            started = time.monotonic()
            killed, killer, output = run_tests(copy, server.url)
            outcome = Outcome(mutation, killed, killer, time.monotonic() - started, output)
            outcomes.append(outcome)
            print(f"{mutation.name}: {'killed by ' + killer if killed else 'SURVIVED'} "
                  f"({outcome.seconds:.0f} s)", file=sys.stderr, flush=True)
            if show_output or not killed:
                print(output[-3000:], file=sys.stderr)
    return outcomes


def print_table(outcomes: list[Outcome], gone: list[str]) -> None:
    width = max([len(o.mutation.name) for o in outcomes] + [6])
    print(f"\n{'mutant':{width}}  {'result':8}  {'seconds':>7}  killed by")
    print(f"{'-' * width}  --------  -------  ---------")
    for o in outcomes:
        print(f"{o.mutation.name:{width}}  {'killed' if o.killed else 'SURVIVED':8}  "
              f"{o.seconds:7.0f}  {o.killer}")
    for problem in gone:
        print(f"PATTERN GONE: {problem}")
    killed = sum(o.killed for o in outcomes)
    print(f"\n{killed} of {len(outcomes)} mutants killed; {len(gone)} patterns no longer match")


if __name__ == "__main__":
    sys.exit(main())
