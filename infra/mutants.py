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

# The tests that stand guard over the queue's SQL, quickest to fail first: the fence table
# (tests/test_fences.py) and the queue's own tests. The Hypothesis state machine is left out:
# it is slower, and every mutant here has a deterministic test that kills it.
FENCE_TESTS = ("tests/test_fences.py", "tests/test_queue.py")
CLAIM_TESTS = ("tests/test_queue.py", "tests/test_fences.py")
RECOVERY_TESTS = (
    "tests/test_fences.py::test_recover_orphans__takes_only_expired_leases_started_or_not",
    "tests/test_queue.py", "tests/test_sweeper.py",
)
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
    tests: tuple[str, ...] = FENCE_TESTS

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


# The single-job statements that end a RUNNING job's attempt name the job and each fence
# condition on its own line; the batch ones keep owner and token in one parenthesised condition
# (see job_extend_leases). A fence condition on progress alone is not mutated: a lease (owner)
# exists iff RUNNING (a CHECK), so the owner check implies it and no test could tell them apart.
SINGLE_FENCED = ["job_cancel_if_owned", "job_complete_if_owned", "job_fail_if_owned"]
# Batch statements: (name, the alias of the rows it was sent, a short name for the table).
BATCH_FENCED = [
    ("job_complete_many_if_owned", "done", "complete_many"),
    ("job_complete_many_if_owned", "starting", "start_many"),
    ("job_extend_leases", "held", "extend_leases"),
    ("job_release_many_if_owned", "held", "release_many"),
]


def mutations() -> list[Mutation]:
    expiry = r"\n\s*AND lease_expires_at < COALESCE\(CAST\(:now AS timestamptz\), now\(\)\)"
    found = [
        Mutation("claim-skip-locked", "job_claim_batch", r"(FOR UPDATE) SKIP LOCKED", r"\1",
                 tests=CLAIM_TESTS),
        # Marking a whole batch started when one of its jobs is of a kind not known to be fast.
        Mutation("claim-fast-kinds-only", "job_claim_batch",
                 r"\n\s*AND other\.kind <> ALL\(CAST\(:fast_kinds AS text\[\]\)\)",
                 tests=("tests/test_attempts_at_start.py",)),
        # Claiming again the jobs this worker handed back for want of time (each claim would
        # take and hand back the same job until the invocation ends).
        Mutation("claim-skip-handed-back", "job_claim_batch",
                 r"\n\s*AND job_id <> ALL\(CAST\(:skip_ids AS uuid\[\]\)\)",
                 tests=("tests/test_not_enough_time.py::"
                        "test_claim__passes_over_the_jobs_it_is_asked_to_skip",)),
        # A claim that carries the poller's buffered outcomes committing without durability
        # (they could be lost to a crash after the worker was told they were written).
        Mutation("claim-durable-with-outcomes", "job_claim_batch",
                 r"CASE WHEN CAST\(:durable AS boolean\) "
                 r"THEN current_setting\('synchronous_commit'\)\s+ELSE 'off' END", "'off'",
                 tests=("tests/test_claim_durability.py::"
                        "test_a_claim_that_carries_outcomes_waits_for_durability",)),
        Mutation("recover-lease-expiry", "job_recover_orphans", expiry, tests=RECOVERY_TESTS),
        Mutation("recover_unstarted-lease-expiry", "job_recover_unstarted_orphans", expiry,
                 tests=RECOVERY_TESTS),
    ]
    for statement in SINGLE_FENCED:
        short = statement.removeprefix("job_").removesuffix("_if_owned")
        found += [
            Mutation(f"{short}-owner", statement, r"\n\s*AND lease_owner = :owner"),
            Mutation(f"{short}-token", statement, r"\n\s*AND lease_token = :token"),
            Mutation(f"{short}-started", statement, r"\n\s*AND attempt_started\b.*"),
        ]
    for statement, rows, short in BATCH_FENCED:
        found += [
            Mutation(f"{short}-owner", statement,
                     rf"(j\.progress = 'RUNNING') AND j\.lease_owner = :owner"
                     rf"( AND j\.lease_token = {rows}\.token)", r"\1\2"),
            Mutation(f"{short}-token", statement, rf" AND j\.lease_token = {rows}\.token"),
        ]
    found += [
        Mutation("complete_many-started", "job_complete_many_if_owned",
                 r"\n\s*AND j\.attempt_started\)", ")"),
        Mutation("start_many-not-started", "job_complete_many_if_owned",
                 r"\n\s*AND NOT j\.attempt_started"),
    ]
    return found


@dataclass
class Outcome:
    mutation: Mutation
    killed: bool
    killer: str
    seconds: float
    output: str


def run_tests(copy: Path, server_url: str, tests: tuple[str, ...]) -> tuple[bool, str, str]:
    """Run ``tests`` on ``copy``; (killed, the first failing test, pytest's output)."""
    env = {**os.environ, "JOBWORKER_MUTANT_SQL": str(copy), "TEST_DATABASE_URL": server_url,
           "PGOPTIONS": PGOPTIONS}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
               "-p", "tests.mutant_sql", f"--timeout={PER_TEST_TIMEOUT_SECONDS}", *tests]
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
    missing = sorted({test for mutation in chosen for test in mutation.tests
                      if not (ROOT / test.split("::")[0]).exists()})
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
            killed, killer, output = run_tests(copy, server.url, mutation.tests)
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
