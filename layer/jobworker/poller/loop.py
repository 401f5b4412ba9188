"""The poller's loop: claim batches, run each job before the deadline, hand back the rest.

One call to :func:`run_poller` is one Lambda invocation: it polls at once after any batch
and, while it finds nothing, after waits that grow from a tenth of a second to
``poll_interval``, until its budget runs out; it never starts a job it cannot finish in time,
hands unstarted jobs back, and returns a summary of what it did. Time comes from the budget's
clock (real time in Lambda, a fake one in tests); recording is in ``outcomes.py``.

A job's attempt is counted when it starts. Starts are marked in chunks, folded into
statements the poller sends anyway: the claim marks the first job of its batch (all of them
when every job claimed is of a kind seen to run so fast that the whole batch takes at most
``START_CHUNK_SECONDS``), and each flush of completions marks the next ones, as many jobs of
known kinds as are expected to run within ``START_CHUNK_SECONDS`` (only the next one when
its kind is new). A batch of fast jobs costs no statement beyond its claim and its
completions. The trade-off: a worker killed mid-batch costs an attempt to the jobs it had
marked (the one running and, for fast jobs, those due within that time), never to the rest.

A job whose kind estimates a setup (``SetupTime``: work that cannot be cut short, such as a
route job's matrices) starts only when that setup fits the time left; the job's own
``NotEnoughTime`` says the same from inside. Such a job is handed back at once, unstarted
(its attempt, if marked, given back; its run_at kept, so the next poller with a fresh budget
takes it first), and this invocation, whose time only shrinks, does not claim it again. When
even a fresh invocation cannot fit it (this one had done nothing yet, or the setup is longer
than the whole budget or the job timeout), no poller ever will: it ends FAILED saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import jobworker.routes.job  # noqa: F401  (registers generate_routes, the default kind)
from jobworker import queue
from jobworker.aws.logs import LineKeys, joined_keys, line_keys, log_each
from jobworker.kinds import (
    JobContext,
    JobHandler,
    JobOutcome,
    NotEnoughTime,
    SetupEstimate,
    SetupTime,
    handler_for,
    kind_spec,
)
from jobworker.poller.clock import Budget
from jobworker.poller.estimate import DurationEstimate
from jobworker.poller.failures import Failure, classify
from jobworker.poller.heartbeat import Heartbeat, LeaseFlags
from jobworker.poller.options import PollerOptions
from jobworker.poller.outcomes import Ended, Ledger, PollSummary, about
from jobworker.queue.errors import (
    JobCancelled,
    JobFailure,
    LeaseLostDuringWork,
    PermanentJobError,
    is_database_unavailable,
)

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Budget", "PollSummary", "Poller", "PollerOptions", "run_poller"]

log = logging.getLogger("jobworker.worker")

NO_OUTCOME = JobOutcome()  # what a handler that returns None leaves behind
COMPLETION_FLUSH_SECONDS = 0.5  # buffered completions are written at least this often
FLUSH_JOBS = 1000  # and at the next claim once this many are buffered
START_CHUNK_SECONDS = COMPLETION_FLUSH_SECONDS  # jobs marked started at once: this much work
# The claim marks only the first job started: it cannot see kinds, and a batch of fast jobs
# with one slow job in front would have them all marked while the slow one runs.
CLAIM_STARTS = 1
SHORT_JOB_SECONDS = 0.001  # "Starting job" lines of such jobs are printed together
FIRST_IDLE_WAIT_SECONDS = 0.1  # after work; then 0.2, 0.4, ... up to poll_interval
T = TypeVar("T")


class Poller:
    def __init__(self, engine: Engine, options: PollerOptions, budget: Budget,
                 heartbeat: Heartbeat) -> None:
        self.engine = engine
        self.options = options
        self.budget = budget
        self.clock = budget.clock
        self.heartbeat = heartbeat
        self.summary = PollSummary()
        self.estimate = DurationEstimate()
        self.pending: list[queue.Completion] = []
        self.pending_keys: list[LineKeys | None] = []  # their lines' keys (None: not logged)
        self.pending_since = 0.0
        self.idle_since: float | None = None
        self.next_wait = FIRST_IDLE_WAIT_SECONDS
        self.handlers: dict[str, JobHandler] = {}
        self.marked: set[UUID] = set()  # of this batch: started (attempt counted)
        self.refused: set[UUID] = set()  # of this batch: a start refused (cancelled, lost)
        self.setups: dict[str, SetupEstimate | None] = {}  # by kind
        self.payloads: dict[UUID, dict[str, Any]] = {}  # decoded for a setup estimate
        self.handed_back: set[UUID] = set()  # too little time left for their setup
        # The most a job can have in any invocation: this one's whole budget, at most the
        # job timeout. Until it runs or waits, this invocation is as fresh as any will be.
        self.fullest = min(options.job_timeout_seconds, budget.left())
        self.fresh = True

    def run(self) -> PollSummary:
        opts = self.options
        with self.engine.connect() as conn:
            ledger = Ledger(conn, opts, self.summary)
            try:
                while self.budget.left() > max(opts.min_start_seconds, self.estimate.typical()):
                    limit = self.estimate.claim_limit(self.budget.left(), opts.batch_size)
                    log.debug("Worker loop",
                              extra={"poll": self.summary.polls + 1, "limit": limit})
                    jobs = self._claim(conn, ledger, limit)
                    self.summary.polls += 1
                    self.summary.claimed += len(jobs)
                    if jobs:
                        self.idle_since = None
                        if not self._run_batch(conn, ledger, jobs):
                            break  # out of time: what was left is released
                    if not jobs and not self._idle_wait():
                        break
            finally:
                self._flush(ledger)  # what the last batch left buffered
        return self.summary

    def _claim(self, conn: Connection, ledger: Ledger, limit: int) -> list[queue.ClaimedJob]:
        """The next batch; buffered completions, when due, are written in the same
        transaction (one commit for both, and the claim comes right after the batch)."""
        def claim(commit: bool = False) -> list[queue.ClaimedJob]:
            return queue.claim_batch(
                conn, owner=self.options.owner, limit=limit,
                lease_seconds=self.options.lease_seconds, start=CLAIM_STARTS,
                fast_kinds=self.estimate.kinds_within(START_CHUNK_SECONDS / limit),
                skip=self.handed_back, commit=commit)

        if self.pending and self._flush_due():
            jobs = self._flush(ledger, then=claim)
            if jobs is not None:
                return jobs
        jobs = claim(commit=True)  # one statement, one round trip
        if not jobs:
            self._flush(ledger)  # nothing to run: write them before waiting
        return jobs

    def _flush_due(self) -> bool:
        """Buffered completions are written with the next claim once there are
        ``FLUSH_JOBS`` of them or the first has waited ``COMPLETION_FLUSH_SECONDS``: small
        batches share one completion statement instead of each paying for its own."""
        return (len(self.pending) >= FLUSH_JOBS
                or self.clock.now() - self.pending_since >= COMPLETION_FLUSH_SECONDS)

    def _idle_wait(self) -> bool:
        """Wait before the next poll, if there is time for one after the wait (and, with
        ``idle_exit_seconds``, if the poller has not been idle that long already).

        The waits start short after work and double up to ``poll_interval``: a job enqueued
        just after a burst (whose kick the API's debounce held back) is picked up in a
        fraction of a second, and an idle queue is still polled every ``poll_interval``.
        """
        opts = self.options
        now = self.clock.now()
        if self.idle_since is None:
            self.idle_since, self.next_wait = now, FIRST_IDLE_WAIT_SECONDS
        wait = min(self.next_wait, opts.poll_interval)
        self.next_wait = wait * 2
        if opts.idle_exit_seconds:
            idle_left = opts.idle_exit_seconds - (now - self.idle_since)
            if idle_left <= 1e-6:  # not a float's rounding away from the end: the end
                return False
            wait = min(wait, idle_left)  # the last poll comes when idle_exit_seconds is up
        if self.budget.left() <= wait + opts.min_start_seconds:
            return False
        self.budget.sleep(wait)
        self.fresh = False
        return True

    def _run_batch(self, conn: Connection, ledger: Ledger,
                   jobs: list[queue.ClaimedJob]) -> bool:
        """Run the batch in order; False if time ran out before every job could start."""
        heartbeat = self.heartbeat
        flags = heartbeat.hold_all((job.job_id, job.token) for job in jobs)
        self.marked = {job.job_id for job in jobs if job.started}
        self.refused = set()
        ran: set[UUID] = set()
        # The keys of each job's lines, encoded once for its "Found job" and "Starting job".
        abouts = [line_keys(about(job)) for job in jobs] if log.isEnabledFor(logging.INFO) \
            else []
        if abouts:  # a thousand lines: formatted and written at once
            log_each(log, logging.INFO, [("Found job", keys) for keys in abouts])
        in_time = False  # True once every job of the batch had its turn
        announced_until = 0  # jobs[:announced_until] had their "Starting job" line printed
        try:
            for index, (job, job_flags) in enumerate(zip(jobs, flags, strict=True)):
                if job.job_id in self.refused:
                    continue
                expected = self.estimate.expected(job.kind)
                time_left = self.budget.left()
                if time_left < max(self.options.min_start_seconds, expected):
                    break
                no_room = self._no_room(self._setup(job), time_left)
                if no_room is not None and no_room.how == "handed_back":
                    self._hand_back(conn, job, no_room)
                    continue
                if job.job_id not in self.marked:
                    self._flush(ledger, start=self._next_chunk(jobs, index, time_left))
                    if job.job_id in self.refused:
                        continue
                elif self.pending and (expected == 0.0 or expected > COMPLETION_FLUSH_SECONDS):
                    self._flush(ledger)  # finished jobs don't wait behind one that may take long
                ran.add(job.job_id)
                deadline = self.clock.now() + min(self.options.job_timeout_seconds, time_left)
                if index >= announced_until and abouts:
                    announced_until = index + self._announce_short_run(
                        jobs[index:], abouts[index:], time_left, deadline - self.clock.now())
                ended = no_room or self._execute(job, job_flags, deadline,
                                                 announced=index < announced_until)
                self._record(ledger, job, ended, abouts[index] if abouts else None)
            else:
                in_time = True
        finally:
            self.payloads.clear()  # those of jobs it never ran
            if not in_time:  # else the next claim writes them (see _claim)
                self._flush(ledger)
            # Only this batch's: completions buffered from earlier batches stay held.
            self._release(conn, heartbeat.held_of(job.job_id for job in jobs
                                                  if job.job_id not in ran))
        return in_time

    def _next_chunk(self, jobs: list[queue.ClaimedJob], index: int,
                    time_left: float) -> list[queue.Held]:
        """The jobs to mark started from ``index`` on: the next one, and after it those of
        known kinds expected to run within START_CHUNK_SECONDS (and the time left)."""
        chunk = [(jobs[index].job_id, jobs[index].token)]
        total = self.estimate.expected(jobs[index].kind)
        horizon = min(START_CHUNK_SECONDS, time_left)
        for job in jobs[index + 1:]:
            if not self.estimate.known(job.kind):
                break
            total += self.estimate.expected(job.kind)
            if total > horizon:
                break
            if job.job_id not in self.marked and job.job_id not in self.refused:
                chunk.append((job.job_id, job.token))
        return chunk

    def _announce_short_run(self, jobs: list[queue.ClaimedJob], abouts: list[LineKeys],
                            time_left: float, deadline_seconds: float) -> int:
        """Print the "Starting job" lines of the run of jobs at the head of ``jobs`` that are
        marked started and known to take under ``SHORT_JOB_SECONDS``, in one write just
        before the first starts (each line still comes before its job starts; one record per
        no-op job would cost more than the job). Only jobs sure to start in time are
        announced (a lease lost or a cancel arriving in the microseconds between the line and
        the start still ends the job unstarted, as for any job); returns how many."""
        run: list[tuple[str, LineKeys]] = []
        budget = time_left - self.options.min_start_seconds
        deadline = line_keys({"deadline_seconds": round(deadline_seconds, 3)})
        for job, keys in zip(jobs, abouts, strict=True):
            expected = self.estimate.expected(job.kind)
            if (job.job_id not in self.marked or job.job_id in self.refused
                    or not 0.0 < expected < SHORT_JOB_SECONDS or budget < expected):
                break
            budget -= expected
            run.append(("Starting job", joined_keys(keys, deadline)))
        log_each(log, logging.INFO, run)
        return len(run)

    def _setup(self, job: queue.ClaimedJob) -> SetupTime | None:
        """The setup its kind estimates for the job (None: the kind estimates none). The
        payload decoded for it is handed to the job, which then need not decode it again."""
        if job.kind not in self.setups:
            try:
                self.setups[job.kind] = kind_spec(job.kind).setup
            except Exception:  # an unknown kind: its handler lookup fails the job
                self.setups[job.kind] = None
        estimate = self.setups[job.kind]
        if estimate is None:
            return None
        try:
            payload = self.payloads[job.job_id] = job.payload
            return estimate(payload)
        except Exception:  # one job's estimate never ends the invocation; its work decides
            log.warning("Setup estimate failed; the job starts without one", exc_info=True,
                        extra=about(job))
            return None

    def _no_room(self, setup: SetupTime | None, time_left: float) -> Ended | None:
        """None when ``setup`` fits the time this job would have; else how the job ends here:
        handed back when a fresher invocation can fit it, failed when none ever can."""
        room = min(time_left, self.options.job_timeout_seconds)
        if setup is None or setup.seconds <= room:
            return None
        if self.fresh or setup.seconds > self.fullest:
            most = room if self.fresh else self.fullest
            return Ended("failed", failure=Failure(
                f"{setup.what} takes about {setup.seconds:.1f} s, more than any poller "
                f"invocation has for it ({most:.1f} s): it can never run here; send a smaller "
                "job, or give the poller more time (PollerTimeoutSeconds, JOB_TIMEOUT_MINUTES)",
                permanent=True))
        return Ended("handed_back", failure=Failure(
            f"{time_left:.1f} s left, {setup.what} takes about {setup.seconds:.1f} s",
            permanent=False))

    def _hand_back(self, conn: Connection, job: queue.ClaimedJob, ended: Ended) -> None:
        """Back to the queue unstarted, now, in its place (run_at kept), its attempt given
        back if it was marked: for a poller with the time. Fenced like every release (a job
        no longer held is left alone); this invocation does not claim it again."""
        self.handed_back.add(job.job_id)
        self.payloads.pop(job.job_id, None)
        log.info("Handed back job: not enough time left for its setup",
                 extra={**about(job), "reason": ended.failure.reason if ended.failure else None})
        self._release(conn, [(job.job_id, job.token)])

    def _handler(self, kind: str) -> JobHandler:
        handler = self.handlers.get(kind)
        if handler is None:
            handler = self.handlers[kind] = handler_for(kind)  # unknown kind: raises
        return handler

    def _execute(self, job: queue.ClaimedJob, flags: LeaseFlags, deadline: float,
                 announced: bool = False) -> Ended:
        if flags.lease_lost:
            return Ended("lost")
        if flags.cancel_requested:  # checked before it starts: a kind need not checkpoint
            return Ended("cancelled")
        ctx = JobContext(
            job_id=job.job_id, kind=job.kind, payload=self.payloads.pop(job.job_id, None),
            payload_json=job.payload_json, attempt=job.attempt, max_attempts=job.max_attempts,
            deadline=deadline, signals=flags, clock=self.clock,
        )
        if not announced and log.isEnabledFor(logging.INFO):
            log.info("Starting job",
                     extra={**about(job), "deadline_seconds": round(ctx.time_left(), 3)})
        started = self.clock.now()
        try:
            outcome = self._handler(job.kind)(ctx) or NO_OUTCOME
            _check_result(outcome)
            ended = Ended("completed", outcome=outcome)
        except JobCancelled:
            ended = Ended("cancelled")
        except LeaseLostDuringWork:
            ended = Ended("lost")
        except NotEnoughTime as exc:  # it did nothing: no duration to learn from
            ended = (self._no_room(exc.setup, exc.left_seconds)  # judged as fresh as it was
                     or Ended("handed_back", failure=Failure(str(exc), permanent=False)))
            self.fresh = False
            return ended
        except Exception as exc:  # one job's crash never ends the invocation
            if not isinstance(exc, JobFailure):
                log.exception("Job raised", extra=about(job))
            ended = Ended("failed", failure=classify(exc))
        self.fresh = False
        seconds = self.clock.now() - started
        self.estimate.record(job.kind, seconds)
        self.summary.job_seconds.append(seconds)
        return ended

    def _record(self, ledger: Ledger, job: queue.ClaimedJob, ended: Ended,
                keys: LineKeys | None = None) -> None:
        if ended.how == "handed_back":
            self._hand_back(ledger.conn, job, ended)
            return
        outcome = ended.outcome
        if ended.how == "completed" and outcome is not None and outcome.persist is None:
            if not self.pending:
                self.pending_since = self.clock.now()
            self.pending.append(queue.Completion(job.job_id, job.token, outcome.result))
            self.pending_keys.append(keys)
            if self.clock.now() - self.pending_since >= COMPLETION_FLUSH_SECONDS:
                self._flush(ledger)
            return
        try:
            ledger.record(job, ended)
        finally:
            self.heartbeat.drop(job.job_id)

    def _flush(self, ledger: Ledger, start: list[queue.Held] | None = None,
               then: Callable[[], T] | None = None) -> T | None:
        """Write buffered completions (and mark ``start`` started) in one fenced statement;
        ``then`` runs in its transaction (see Ledger.flush)."""
        start = start or []
        if not self.pending and not start:
            return None
        done, self.pending = self.pending, []
        keys, self.pending_keys = self.pending_keys, []
        try:
            flushed, after = ledger.flush(done, start, then, keys)
        finally:
            self.heartbeat.drop_all(item.job_id for item in done)
        refused = flushed.not_started | flushed.cancelled
        self.refused |= refused
        self.heartbeat.drop_all(refused)
        self.marked.update(job_id for job_id, _ in start if job_id not in refused)
        return after

    def _release(self, conn: Connection, unstarted: list[queue.Held]) -> None:
        """Hand back the jobs of the batch it never ran (attempts intact)."""
        if not unstarted:
            return
        with conn.begin():
            released = queue.release_jobs(conn, owner=self.options.owner, held=unstarted)
        self.heartbeat.drop_all(job_id for job_id, _ in unstarted)
        self.summary.released += len(released)
        log.info("Released jobs it could not start in time", extra={"released": len(released)})


def run_poller(engine: Engine, options: PollerOptions, budget: Budget, *,
               heartbeat: Heartbeat | None = None) -> PollSummary:
    """One invocation's worth of polling; see the module docstring. ``heartbeat`` defaults
    to one with its own thread; tests pass one they beat on their own clock."""
    log.info("Job worker starting", extra={"options": asdict(options)})
    if heartbeat is None:
        heartbeat = Heartbeat(engine, owner=options.owner, lease_seconds=options.lease_seconds)
    poller = Poller(engine, options, budget, heartbeat)
    try:
        with heartbeat:
            return poller.run()
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        # Nothing is lost: held leases expire and the sweeper queues those jobs again.
        log.error("Database unavailable; ending this invocation", exc_info=True)
        poller.summary.error = f"database unavailable: {type(exc).__name__}"
        return poller.summary


def _check_result(outcome: JobOutcome) -> None:
    """A result the database cannot store fails its job here, alone, and for good; written
    with a batch of completions it would fail them all, and the attempt would run again."""
    if outcome.result is not None:
        try:
            queue.result_json(outcome.result)
        except ValueError as exc:
            raise PermanentJobError(str(exc)) from None
