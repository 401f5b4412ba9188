"""Random sequences of every queue operation, with time travel, checking the invariants.

Hypothesis drives create, enqueue, claim, start, heartbeat, complete, fail, release, recover,
time out, cancel, retry and the clock; after every step the rows must still make sense, every
worker-side change must have succeeded exactly when the worker really held the job, attempts
must count exactly the attempts that started, and a requested cancel must stick.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import Completion, NewJob
from jobworker.queue.errors import IllegalTransition, LeaseLost
from jobworker.queue.progress import TERMINAL, Progress

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = 30
TIMEOUT_MINUTES = 5
MAX_ATTEMPTS = 3
OWNERS = st.sampled_from(["w1", "w2", "w3"])

Token = tuple[UUID, str, int]  # (job_id, owner, lease token): what a worker holds after a claim


def queue_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    class QueueMachine(RuleBasedStateMachine):
        jobs = Bundle("jobs")
        tokens = Bundle("tokens")

        def __init__(self) -> None:
            super().__init__()
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE jobs CASCADE"))
            self.now = T0
            self.completed: set[UUID] = set()
            self.cancel_pending: set[UUID] = set()  # cancel requested while RUNNING
            self.retried: set[UUID] = set()

        # --- the current truth, from the database ---------------------------------------

        def row(self, job_id: UUID) -> queue.Job:
            with engine.connect() as conn:
                return queue.get_job(conn, job_id)

        def claim_of(self, job_id: UUID) -> tuple[int, bool]:
            """(lease_token, attempt_started): the columns the Job row type leaves out."""
            with engine.connect() as conn:
                row = conn.execute(text("SELECT lease_token, attempt_started FROM jobs"
                                        " WHERE job_id = :id"), {"id": job_id}).one()
            return row.lease_token, row.attempt_started

        def holds(self, token: Token) -> bool:
            job_id, owner, lease_token = token
            job = self.row(job_id)
            return (job.progress is Progress.RUNNING and job.lease_owner == owner
                    and self.claim_of(job_id)[0] == lease_token)

        # --- API side ------------------------------------------------------------------

        @rule(target=jobs, enqueue=st.booleans())
        def create(self, enqueue: bool) -> UUID:
            with engine.begin() as conn:
                job, _ = queue.create_job(conn, NewJob(kind="noop", max_attempts=MAX_ATTEMPTS),
                                          enqueue=enqueue, now=self.now)
            return job.job_id

        @rule(job_id=jobs)
        def enqueue(self, job_id: UUID) -> None:
            before = self.row(job_id).progress
            try:
                with engine.begin() as conn:
                    queue.enqueue_job(conn, job_id, now=self.now)
                assert before is Progress.PENDING
            except IllegalTransition:
                assert before is not Progress.PENDING

        @rule(job_id=jobs)
        def cancel(self, job_id: UUID) -> None:
            before = self.row(job_id).progress
            try:
                with engine.begin() as conn:
                    after = queue.cancel_job(conn, job_id, now=self.now)
                assert before not in TERMINAL
                expected = Progress.RUNNING if before is Progress.RUNNING else Progress.CANCELLED
                assert after.progress is expected
                if after.progress is Progress.RUNNING:
                    self.cancel_pending.add(job_id)
            except IllegalTransition:
                assert before in TERMINAL

        @rule(job_id=jobs)
        def retry(self, job_id: UUID) -> None:
            before = self.row(job_id).progress
            try:
                with engine.begin() as conn:
                    queue.retry_job(conn, job_id, now=self.now)
                assert before in (Progress.FAILED, Progress.CANCELLED)
                self.cancel_pending.discard(job_id)
                self.retried.add(job_id)
            except IllegalTransition:
                assert before not in (Progress.FAILED, Progress.CANCELLED)

        # --- worker side -----------------------------------------------------------------

        @rule(target=tokens, owner=OWNERS, limit=st.integers(1, 3), start=st.integers(0, 3))
        def claim(self, owner: str, limit: int, start: int) -> object:
            with engine.begin() as conn:
                claimed = queue.claim_batch(conn, owner=owner, limit=limit, lease_seconds=LEASE,
                                            start=start, now=self.now)
            assert [job.started for job in claimed] == [i < start for i in range(len(claimed))]
            for job in claimed:
                assert self.holds((job.job_id, owner, job.token))
                assert self.row(job.job_id).attempts == job.attempt - (not job.started)
            return multiple(*[(job.job_id, owner, job.token) for job in claimed])

        @rule(token=tokens, batched=st.booleans())
        def start(self, token: Token, batched: bool) -> None:
            """Mark a claimed job started (alone, or folded into a flush of completions)."""
            held = self.holds(token)
            already = held and self.claim_of(token[0])[1]
            cancel = self.row(token[0]).cancel_requested
            job_id, owner, lease_token = token
            with engine.begin() as conn:
                if batched:
                    flushed = queue.complete_and_start(conn, owner=owner, done=[],
                                                       start=[(job_id, lease_token)],
                                                       now=self.now)
                else:
                    flushed = queue.start_jobs(conn, owner=owner, start=[(job_id, lease_token)],
                                               now=self.now)
            if held and not already and cancel:
                assert flushed.cancelled == {job_id}
                assert self.row(job_id).progress is Progress.CANCELLED
            elif held and not already:
                assert flushed == queue.Flushed()
                assert self.claim_of(job_id)[1]
            else:
                assert flushed.not_started == {job_id}

        @rule(target=tokens, owner=OWNERS)
        def stall_then_claim_again(self, owner: str) -> object:
            """A worker stalls past its lease (a long GC pause, a frozen container), the
            sweeper takes its jobs back, and the same worker claims again: its old tokens
            must now be worthless."""
            self.now += timedelta(seconds=LEASE + 1)
            with engine.begin() as conn:
                queue.recover_orphans(conn, now=self.now)
                claimed = queue.claim_batch(conn, owner=owner, limit=3, lease_seconds=LEASE,
                                            now=self.now)
            return multiple(*[(job.job_id, owner, job.attempt) for job in claimed])

        @rule(token=tokens)
        def heartbeat(self, token: Token) -> None:
            held = self.holds(token)
            with engine.begin() as conn:
                alive = queue.extend_leases(conn, owner=token[1], held=[(token[0], token[2])],
                                            lease_seconds=LEASE, now=self.now)
            assert (token[0] in alive) == held

        def holds_started(self, token: Token) -> bool:
            """Held, and its attempt started: only such an attempt can end."""
            return self.holds(token) and self.claim_of(token[0])[1]

        @rule(token=consumes(tokens), batched=st.booleans())
        def complete(self, token: Token, batched: bool) -> None:
            held = self.holds_started(token)
            job_id, owner, lease_token = token
            with engine.begin() as conn:
                if batched:
                    lost = queue.complete_jobs(conn, owner=owner,
                                               done=[Completion(job_id, lease_token)],
                                               now=self.now)
                    succeeded = job_id not in lost
                else:
                    try:
                        queue.complete_job(conn, owner=owner, job_id=job_id, token=lease_token,
                                           now=self.now)
                        succeeded = True
                    except LeaseLost:
                        succeeded = False
            assert succeeded == held
            if succeeded:
                self.completed.add(job_id)

        @rule(token=consumes(tokens), permanent=st.booleans())
        def fail(self, token: Token, permanent: bool) -> None:
            held = self.holds_started(token)
            before = self.row(token[0])
            job_id, owner, lease_token = token
            try:
                with engine.begin() as conn:
                    progress = queue.fail_job(conn, owner=owner, job_id=job_id,
                                              token=lease_token, error="boom",
                                              permanent=permanent, now=self.now)
                assert held
                if permanent or before.attempts >= MAX_ATTEMPTS:
                    assert progress is Progress.FAILED
                elif before.cancel_requested:
                    assert progress is Progress.CANCELLED
                else:
                    assert progress is Progress.QUEUED
            except LeaseLost:
                assert not held

        @rule(token=consumes(tokens))
        def release(self, token: Token) -> None:
            held = self.holds(token)
            with engine.begin() as conn:
                released = queue.release_jobs(conn, owner=token[1], held=[(token[0], token[2])],
                                              now=self.now)
            assert (token[0] in released) == held

        @rule(token=consumes(tokens))
        def honour_cancel(self, token: Token) -> None:
            held = self.holds_started(token)
            try:
                with engine.begin() as conn:
                    queue.cancel_running_job(conn, owner=token[1], job_id=token[0],
                                             token=token[2], now=self.now)
                assert held
            except LeaseLost:
                assert not held

        # --- maintenance and time ----------------------------------------------------------

        @rule()
        def recover(self) -> None:
            with engine.begin() as conn:
                queue.recover_orphans(conn, now=self.now)

        @rule()
        def time_out(self) -> None:
            with engine.begin() as conn:
                queue.fail_timed_out(conn, timeout_minutes=TIMEOUT_MINUTES, now=self.now)

        @rule(seconds=st.sampled_from([1, 10, 31, 120, 301]))
        def travel(self, seconds: int) -> None:
            self.now += timedelta(seconds=seconds)

        # --- invariants --------------------------------------------------------------------

        @invariant()
        def rows_are_consistent(self) -> None:
            with engine.connect() as conn:
                jobs = queue.list_jobs(conn, limit=1000)
                started = dict(conn.execute(  # type: ignore[arg-type]
                    text("SELECT job_id, attempt_started FROM jobs")).all())
            for job in jobs:
                assert 0 <= job.attempts <= job.max_attempts
                running = job.progress is Progress.RUNNING
                assert (job.lease_owner is not None) == running
                assert (job.lease_expires_at is not None) == running
                assert (job.finished_at is not None) == (job.progress in TERMINAL)
                if job.progress in (Progress.PENDING, Progress.QUEUED):
                    assert job.started_at is None
                if running:
                    assert job.started_at is not None
                if job.started_at and job.finished_at:
                    assert job.started_at <= job.finished_at
                if job.job_id in self.completed:
                    assert job.progress is Progress.COMPLETED  # terminal stays terminal
                if started[job.job_id]:
                    assert running
                if job.job_id not in self.retried:  # attempts count the attempts that started
                    assert job.attempts == len(job.attempt_history) + started[job.job_id]
                if job.job_id in self.cancel_pending:  # a requested cancel sticks
                    assert job.progress is not Progress.QUEUED
                    assert job.cancel_requested or job.progress in TERMINAL

    return QueueMachine


def test_queue_state_machine__invariants_hold_for_random_histories(engine: Engine) -> None:
    machine = queue_machine(engine)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=60, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        derandomize=True,
    ))


# Whether these tests notice a broken fence is shown by `make mutants` (infra/mutants.py): it
# removes each fence condition of every fenced statement, batch ones included, from a copy of
# queries.sql, and tests/test_fences.py kills each mutant deterministically and in seconds.
