"""Queue operations on real Postgres: every transition, every refusal, and the fence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from jobworker import queue
from jobworker.queue import Completion, NewJob
from jobworker.queue.errors import IdempotencyConflict, IllegalTransition, JobNotFound, LeaseLost
from jobworker.queue.progress import Progress

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def queued(conn: Connection, count: int = 1, **fields: object) -> list[UUID]:
    """QUEUED jobs created now (T0 lies in the future, so tests claiming at T0 can take them)."""
    return queue.create_jobs(conn, [NewJob(**fields) for _ in range(count)])  # type: ignore[arg-type]


def claim_one(conn: Connection, owner: str = "w1", now: datetime = T0,
              lease_seconds: float = 30) -> queue.ClaimedJob:
    (job,) = queue.claim_batch(conn, owner=owner, limit=1, lease_seconds=lease_seconds, now=now)
    return job


def progress_of(conn: Connection, job_id: UUID) -> Progress:
    return queue.get_job(conn, job_id).progress


# --- create / enqueue -----------------------------------------------------------------------


def test_create__pending_by_default_then_enqueue(engine: Engine) -> None:
    with engine.begin() as conn:
        job, created = queue.create_job(conn, NewJob(kind="noop", payload={"a": 1}))
        assert created
        assert job.progress is Progress.PENDING
        assert job.payload == {"a": 1}
        assert queue.claim_batch(conn, owner="w", limit=10, lease_seconds=30) == []
        enqueued = queue.enqueue_job(conn, job.job_id)
    assert enqueued.progress is Progress.QUEUED


def test_create__and_enqueue_in_one_call(engine: Engine) -> None:
    with engine.begin() as conn:
        job, _ = queue.create_job(conn, NewJob(), enqueue=True)
    assert job.progress is Progress.QUEUED
    assert job.kind == "generate_routes"


def test_enqueue__refused_unless_pending(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        with pytest.raises(IllegalTransition, match="it is QUEUED"):
            queue.enqueue_job(conn, job_id)


def test_enqueue__unknown_job(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(JobNotFound):
        queue.enqueue_job(conn, uuid4())


def test_create__same_idempotency_key_same_body_returns_the_first_job(engine: Engine) -> None:
    new = NewJob(payload={"x": 1}, idempotency_key="k1", request_hash="h1")
    with engine.begin() as conn:
        first, created_first = queue.create_job(conn, new, enqueue=True)
        again, created_again = queue.create_job(conn, new, enqueue=True)
        count = conn.execute(text("SELECT count(*) FROM jobs")).scalar_one()
    assert (created_first, created_again) == (True, False)
    assert again.job_id == first.job_id
    assert count == 1


def test_create__same_idempotency_key_other_body_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        queue.create_job(conn, NewJob(idempotency_key="k1", request_hash="h1"))
        with pytest.raises(IdempotencyConflict):
            queue.create_job(conn, NewJob(idempotency_key="k1", request_hash="h2"))


def test_create__with_commit__one_statement_committed_and_the_same_job_as_in_a_transaction(
        engine: Engine) -> None:
    new = NewJob(kind="noop", payload={"x": [1, "é"]}, priority=3, max_attempts=4,
                 idempotency_key="k1", request_hash="h1")
    with engine.connect() as conn:
        job, created = queue.create_job(conn, new, enqueue=True, commit=True, now=T0)
        assert created
        assert not conn.in_transaction()
        with engine.connect() as other:  # committed before create_job returned
            assert queue.get_job(other, job.job_id) == job
        again, created_again = queue.create_job(conn, new, enqueue=True, commit=True)
        assert (again, created_again) == (job, False)
        with pytest.raises(IdempotencyConflict):
            queue.create_job(conn, NewJob(idempotency_key="k1", request_hash="h2"), commit=True)
    assert (job.progress, job.payload, job.priority, job.max_attempts, job.run_at) == (
        Progress.QUEUED, {"x": [1, "é"]}, 3, 4, T0)


def test_binary_statements__a_refused_statement_or_a_reconnect_leaves_the_next_one_working(
        engine: Engine) -> None:
    # Binary statements run on a cursor kept with the database connection (made once, not
    # per statement): after a statement the server refused, and after the connection was
    # replaced, the next statement must run on a cursor of the connection it is sent on.
    with engine.connect() as conn:
        first, _ = queue.create_job(conn, NewJob(kind="noop"), enqueue=True, commit=True)
        with pytest.raises(IntegrityError, match="jobs_max_attempts_positive"):
            queue.create_job(conn, NewJob(kind="noop", max_attempts=0), commit=True)
        second, _ = queue.create_job(conn, NewJob(kind="noop"), enqueue=True, commit=True)
        conn.invalidate()  # as after a failover: a new server connection on next use
        conn.rollback()
        third, _ = queue.create_job(conn, NewJob(kind="noop"), enqueue=True, commit=True)
        kept = conn.connection.info["jobworker.binary_cursor"]
        assert kept.connection is conn.connection.driver_connection
    with engine.connect() as other:
        assert [queue.get_job(other, job.job_id).progress for job in (first, second, third)] \
            == [Progress.QUEUED] * 3


def test_create_jobs__bulk_insert_keeps_order_and_fields(engine: Engine) -> None:
    jobs = [NewJob(kind="noop", payload={"i": i}, priority=i % 3) for i in range(500)]
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, jobs)
        rows = {row.job_id: row for row in conn.execute(
            text("SELECT job_id, payload, priority, progress::text AS p FROM jobs"))}
    assert len(ids) == len(set(ids)) == 500
    for job_id, job in zip(ids, jobs, strict=True):
        assert rows[job_id].payload == job.payload
        assert rows[job_id].priority == job.priority
        assert rows[job_id].p == "QUEUED"


# --- claim ----------------------------------------------------------------------------------


def test_claim__takes_a_lease_and_counts_the_attempt(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        job = claim_one(conn, now=at(1), lease_seconds=30)
        row = queue.get_job(conn, job_id)
    assert job.job_id == job_id
    assert job.attempt == 1
    assert row.progress is Progress.RUNNING
    assert row.lease_owner == "w1"
    assert row.lease_expires_at == at(31)
    assert row.started_at == at(1)


def test_claim__priority_then_run_at_order(engine: Engine) -> None:
    with engine.begin() as conn:
        late = queue.create_job(conn, NewJob(run_at=at(-10)), enqueue=True, now=T0)[0]
        early = queue.create_job(conn, NewJob(run_at=at(-20)), enqueue=True, now=T0)[0]
        urgent = queue.create_job(conn, NewJob(priority=-1, run_at=at(-1)), enqueue=True,
                                  now=T0)[0]
        claimed = queue.claim_batch(conn, owner="w", limit=3, lease_seconds=30, now=T0)
    assert [job.job_id for job in claimed] == [urgent.job_id, early.job_id, late.job_id]


def test_claim__skips_jobs_whose_run_at_is_in_the_future(engine: Engine) -> None:
    with engine.begin() as conn:
        queue.create_job(conn, NewJob(run_at=at(60)), enqueue=True, now=T0)
        assert queue.claim_batch(conn, owner="w", limit=5, lease_seconds=30, now=T0) == []
        assert len(queue.claim_batch(conn, owner="w", limit=5, lease_seconds=30,
                                     now=at(61))) == 1


def test_claim__skips_locked_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        queued(conn, 10)
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        taken_first = queue.claim_batch(first, owner="a", limit=6, lease_seconds=30, now=T0)
        second.begin()
        taken_second = queue.claim_batch(second, owner="b", limit=6, lease_seconds=30, now=T0)
        first.commit()
        second.commit()
    ids_first = {job.job_id for job in taken_first}
    ids_second = {job.job_id for job in taken_second}
    assert len(ids_first) == 6
    assert len(ids_second) == 4
    assert not ids_first & ids_second


def test_claim__ignores_pending_running_and_finished_jobs(engine: Engine) -> None:
    with engine.begin() as conn:
        queue.create_job(conn, NewJob())  # PENDING
        queued(conn, 1)
        claim_one(conn)  # RUNNING now
        assert queue.claim_batch(conn, owner="w2", limit=5, lease_seconds=30) == []


# --- heartbeat ------------------------------------------------------------------------------


def test_extend_leases__pushes_expiry_and_reports_cancel_requests(engine: Engine) -> None:
    with engine.begin() as conn:
        a, b = queued(conn, 2)
        claimed = queue.claim_batch(conn, owner="w", limit=2, lease_seconds=30, now=T0)
        queue.cancel_job(conn, b)
        alive = queue.extend_leases(conn, owner="w", held=[(j.job_id, j.token) for j in claimed],
                                    lease_seconds=30, now=at(20))
        assert alive == {a: False, b: True}
        assert queue.get_job(conn, a).lease_expires_at == at(50)


def test_extend_leases__other_owner_or_attempt_gets_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        queued(conn)
        job = claim_one(conn)
        assert queue.extend_leases(conn, owner="intruder", held=[(job.job_id, job.token)],
                                   lease_seconds=30) == {}
        assert queue.extend_leases(conn, owner="w1", held=[(job.job_id, job.token + 1)],
                                   lease_seconds=30) == {}


# --- complete / fail / release / cancel (fenced) ------------------------------------------


def test_complete__stores_result_and_history(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        job = claim_one(conn, now=at(1))
        queue.complete_job(conn, owner="w1", job_id=job_id, token=job.token,
                           result={"ok": True}, now=at(5))
        row = queue.get_job(conn, job_id)
    assert row.progress is Progress.COMPLETED
    assert row.result == {"ok": True}
    assert row.finished_at == at(5)
    assert (row.lease_owner, row.lease_expires_at) == (None, None)
    assert [entry["outcome"] for entry in row.attempt_history] == ["completed"]


def test_complete_jobs__batch_writes_the_history_entry_every_other_ending_writes(
        engine: Engine) -> None:
    """The batch completion builds its attempt_history entry itself (for speed); it must be
    the entry jobs_attempt_entry makes for the same attempt, as the single completion's is."""
    with engine.begin() as conn:
        queued(conn, 2)
        batch, single = queue.claim_batch(conn, owner="w1", limit=2, lease_seconds=30,
                                          now=at(1))
        queue.complete_jobs(conn, owner="w1", done=[queue.Completion(batch.job_id, batch.token)],
                            now=at(5))
        queue.complete_job(conn, owner="w1", job_id=single.job_id, token=single.token,
                           now=at(5))
        rows = conn.execute(text(
            "SELECT job_id, attempt_history, jobs_attempt_entry(attempts, 'w1', 'completed',"
            " NULL, started_at, finished_at) AS expected FROM jobs")).all()
    entries = {row.job_id: row.attempt_history for row in rows}
    assert all(row.attempt_history == row.expected for row in rows), rows
    assert entries[batch.job_id][0] == {"attempt": 1, "owner": "w1", "outcome": "completed",
                                        "started_at": at(1).isoformat(),
                                        "ended_at": at(5).isoformat()}
    assert entries[batch.job_id] == entries[single.job_id]


def test_complete_jobs__batch_completes_only_what_the_owner_still_holds(engine: Engine) -> None:
    with engine.begin() as conn:
        queued(conn, 3)
        a, b, c = queue.claim_batch(conn, owner="w", limit=3, lease_seconds=30)
        lost = queue.complete_jobs(conn, owner="w", done=[
            Completion(a.job_id, a.token, {"n": 1}),
            Completion(b.job_id, b.token + 1),  # stale attempt: fenced off
            Completion(c.job_id, c.token, ["x", None]),
        ])
        assert lost == {b.job_id}
        assert progress_of(conn, a.job_id) is Progress.COMPLETED
        assert progress_of(conn, b.job_id) is Progress.RUNNING
        assert progress_of(conn, c.job_id) is Progress.COMPLETED
        assert queue.get_job(conn, c.job_id).result == ["x", None]
        assert queue.get_job(conn, a.job_id).result == {"n": 1}


def test_fence__late_complete_after_recovery_and_reclaim_changes_nothing(engine: Engine) -> None:
    """The first worker stalls past its lease; the sweeper recovers the job; a second worker
    claims it. The first worker's late completion must not touch the second one's job."""
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        first = claim_one(conn, owner="first", now=T0, lease_seconds=10)
        recovered = queue.recover_orphans(conn, now=at(11))
        assert recovered.requeued == [job_id]
        second = claim_one(conn, owner="second", now=at(12))
        assert second.attempt == first.attempt + 1
        before = queue.get_job(conn, job_id)
        with pytest.raises(LeaseLost):
            queue.complete_job(conn, owner="first", job_id=job_id, token=first.token,
                               result={"from": "first"}, now=at(13))
        with pytest.raises(LeaseLost):
            queue.fail_job(conn, owner="first", job_id=job_id, token=first.token,
                           error="late", permanent=True, now=at(13))
        assert queue.complete_jobs(conn, owner="first",
                                   done=[Completion(job_id, first.token)]) == {job_id}
        assert queue.get_job(conn, job_id) == before
        queue.complete_job(conn, owner="second", job_id=job_id, token=second.token,
                           now=at(14))
        assert progress_of(conn, job_id) is Progress.COMPLETED


def test_fence__other_owner_with_the_same_attempt_number_is_refused(engine: Engine) -> None:
    """Timed out, retried (attempts start again at 0), claimed by someone else: the attempt
    numbers match, so only the owner check keeps the first worker out."""
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        first = claim_one(conn, owner="first", now=T0, lease_seconds=3600)
        assert queue.fail_timed_out(conn, timeout_minutes=30, now=at(31 * 60)) == [job_id]
        queue.retry_job(conn, job_id, now=at(32 * 60))
        second = claim_one(conn, owner="second", now=at(33 * 60))
        assert second.attempt == first.attempt
        with pytest.raises(LeaseLost):
            queue.complete_job(conn, owner="first", job_id=job_id, token=first.token)
        assert queue.extend_leases(conn, owner="first", held=[(job_id, first.token)],
                                   lease_seconds=30) == {}
        assert queue.get_job(conn, job_id).lease_owner == "second"


def test_fence__same_owner_with_stale_attempt_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        first = claim_one(conn, owner="w", now=T0, lease_seconds=10)
        queue.recover_orphans(conn, now=at(11))
        claim_one(conn, owner="w", now=at(12))
        with pytest.raises(LeaseLost):
            queue.complete_job(conn, owner="w", job_id=job_id, token=first.token)


def test_fail__transient_requeues_with_backoff_until_attempts_run_out(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob()], max_attempts=2, now=T0)
        job = claim_one(conn, now=T0)
        progress = queue.fail_job(conn, owner="w1", job_id=job_id, token=job.token,
                                  error="db hiccup", permanent=False, backoff_base_seconds=10,
                                  backoff_cap_seconds=100, now=at(1))
        row = queue.get_job(conn, job_id)
        assert progress is Progress.QUEUED
        assert at(1) + timedelta(seconds=5) <= row.run_at <= at(1) + timedelta(seconds=10)
        assert row.started_at is None
        assert row.error == "db hiccup"
        job = claim_one(conn, now=at(60))
        progress = queue.fail_job(conn, owner="w1", job_id=job_id, token=job.token,
                                  error="db hiccup again", permanent=False, now=at(61))
        row = queue.get_job(conn, job_id)
    assert progress is Progress.FAILED
    assert row.finished_at == at(61)
    assert row.error == "db hiccup again"
    assert [entry["outcome"] for entry in row.attempt_history] == ["error", "error"]
    assert [entry["error"] for entry in row.attempt_history] == ["db hiccup", "db hiccup again"]


def test_fail__permanent_fails_at_once(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        job = claim_one(conn)
        progress = queue.fail_job(conn, owner="w1", job_id=job_id, token=job.token,
                                  error="payload can never be valid", permanent=True)
    assert progress is Progress.FAILED


def test_release__gives_the_attempt_back(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queued(conn)
        job = claim_one(conn)
        assert queue.release_jobs(conn, owner="w1", held=[(job_id, job.token)]) == {job_id}
        row = queue.get_job(conn, job_id)
        assert (row.progress, row.attempts, row.started_at, row.lease_owner) == (
            Progress.QUEUED, 0, None, None)
        assert queue.release_jobs(conn, owner="w1", held=[(job_id, job.token)]) == set()


def test_cancel__queued_and_pending_at_once_running_on_request(engine: Engine) -> None:
    with engine.begin() as conn:
        pending = queue.create_job(conn, NewJob())[0].job_id
        queued(conn, 1)
        running = claim_one(conn)
        (waiting,) = queued(conn, 1)
        assert queue.cancel_job(conn, pending).progress is Progress.CANCELLED
        assert queue.cancel_job(conn, waiting).progress is Progress.CANCELLED
        asked = queue.cancel_job(conn, running.job_id)
        assert (asked.progress, asked.cancel_requested) == (Progress.RUNNING, True)
        queue.cancel_running_job(conn, owner="w1", job_id=running.job_id,
                                 token=running.token)
        row = queue.get_job(conn, running.job_id)
    assert row.progress is Progress.CANCELLED
    assert row.attempt_history[-1]["outcome"] == "cancelled"


@pytest.mark.parametrize("terminal", ["COMPLETED", "FAILED", "CANCELLED"])
def test_cancel__terminal_jobs_are_refused(engine: Engine, terminal: str) -> None:
    with engine.begin() as conn:
        job_id = finished_job(conn, Progress(terminal))
        with pytest.raises(IllegalTransition, match=f"it is {terminal}"):
            queue.cancel_job(conn, job_id)


def finished_job(conn: Connection, progress: Progress) -> UUID:
    (job_id,) = queued(conn)
    job = claim_one(conn)
    if progress is Progress.COMPLETED:
        queue.complete_job(conn, owner="w1", job_id=job_id, token=job.token)
    elif progress is Progress.FAILED:
        queue.fail_job(conn, owner="w1", job_id=job_id, token=job.token, error="x",
                       permanent=True)
    else:
        queue.cancel_job(conn, job_id)
        queue.cancel_running_job(conn, owner="w1", job_id=job_id, token=job.token)
    return job_id


@pytest.mark.parametrize("terminal", ["FAILED", "CANCELLED"])
def test_retry__failed_or_cancelled_back_to_queued_with_fresh_attempts(engine: Engine,
                                                                       terminal: str) -> None:
    with engine.begin() as conn:
        job_id = finished_job(conn, Progress(terminal))
        row = queue.retry_job(conn, job_id)
    assert (row.progress, row.attempts, row.finished_at, row.error) == (
        Progress.QUEUED, 0, None, None)
    assert len(row.attempt_history) == 1  # the history of the earlier attempt is kept


@pytest.mark.parametrize("progress", ["PENDING", "QUEUED", "RUNNING", "COMPLETED"])
def test_retry__refused_unless_failed_or_cancelled(engine: Engine, progress: str) -> None:
    with engine.begin() as conn:
        if progress == "PENDING":
            job_id = queue.create_job(conn, NewJob())[0].job_id
        elif progress == "QUEUED":
            (job_id,) = queued(conn)
        elif progress == "RUNNING":
            (job_id,) = queued(conn)
            claim_one(conn)
        else:
            job_id = finished_job(conn, Progress.COMPLETED)
        with pytest.raises(IllegalTransition):
            queue.retry_job(conn, job_id)


@pytest.mark.parametrize("action", [queue.cancel_job, queue.retry_job, queue.enqueue_job,
                                    queue.get_job])
def test_unknown_job__not_found(engine: Engine, action: object) -> None:
    with engine.begin() as conn, pytest.raises(JobNotFound):
        action(conn, uuid4())  # type: ignore[operator]


# --- maintenance ----------------------------------------------------------------------------


def test_recover_orphans__only_expired_leases(engine: Engine) -> None:
    with engine.begin() as conn:
        queued(conn, 2)
        short = claim_one(conn, owner="dead", now=T0, lease_seconds=10)
        alive = claim_one(conn, owner="alive", now=T0, lease_seconds=100)
        recovered = queue.recover_orphans(conn, now=at(50))
        assert recovered.requeued == [short.job_id]
        assert progress_of(conn, alive.job_id) is Progress.RUNNING
        row = queue.get_job(conn, short.job_id)
    assert "lease of dead expired" in (row.error or "")
    assert row.attempt_history[-1]["outcome"] == "lease_expired"


def test_recover_orphans__last_attempt_fails_the_job(engine: Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = queue.create_jobs(conn, [NewJob()], max_attempts=1, now=T0)
        claim_one(conn, owner="dead", now=T0, lease_seconds=10)
        recovered = queue.recover_orphans(conn, now=at(11))
        row = queue.get_job(conn, job_id)
    assert recovered.failed == [job_id]
    assert row.progress is Progress.FAILED
    assert "attempt 1 of 1" in (row.error or "")


def test_fail_timed_out__running_longer_than_the_timeout(engine: Engine) -> None:
    with engine.begin() as conn:
        queued(conn, 2)
        old = claim_one(conn, now=T0, lease_seconds=3600)
        fresh = claim_one(conn, now=at(29 * 60), lease_seconds=3600)
        timed_out = queue.fail_timed_out(conn, timeout_minutes=30, now=at(31 * 60))
        row = queue.get_job(conn, old.job_id)
        assert progress_of(conn, fresh.job_id) is Progress.RUNNING
    assert timed_out == [old.job_id]
    assert row.progress is Progress.FAILED
    assert row.error == "timed out: RUNNING for longer than job_timeout_minutes (30 min)"


def test_prune__terminal_jobs_older_than_retention(engine: Engine) -> None:
    with engine.begin() as conn:
        old = finished_job(conn, Progress.COMPLETED)
        conn.execute(text("UPDATE jobs SET finished_at = now() - interval '15 days' "
                          "WHERE job_id = :id"), {"id": old})
        recent = finished_job(conn, Progress.FAILED)
        (waiting,) = queued(conn)
        assert queue.prune_finished(conn, retention_days=14) == 1
        remaining = set(conn.execute(text("SELECT job_id FROM jobs")).scalars())
    assert remaining == {recent, waiting}


def test_stats__counts_and_oldest_queued_age(engine: Engine) -> None:
    with engine.begin() as conn:
        queue.create_jobs(conn, [NewJob()] * 3, now=T0)
        queue.create_job(conn, NewJob())
        claim_one(conn, now=T0)
        stats = queue.queue_stats(conn, now=at(90))
    assert stats.counts[Progress.QUEUED] == 2
    assert stats.counts[Progress.RUNNING] == 1
    assert stats.counts[Progress.PENDING] == 1
    assert stats.oldest_queued_age_seconds == pytest.approx(90)


def test_list__newest_first_with_keyset_pages_and_filters(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = [queue.create_job(conn, NewJob(kind="noop"), enqueue=True, now=at(i))[0].job_id
               for i in range(5)]
        queue.create_job(conn, NewJob(kind="simulate"), now=at(10))
        first = queue.list_jobs(conn, kind="noop", limit=2)
        last = first[-1]
        second = queue.list_jobs(conn, kind="noop", limit=2, before=(last.created_at, last.job_id))
        pending = queue.list_jobs(conn, progress=Progress.PENDING)
    assert [job.job_id for job in first + second] == ids[::-1][:4]
    assert [job.kind for job in pending] == ["simulate"]


@pytest.mark.parametrize("progress", [None, Progress.RUNNING, Progress.QUEUED,
                                      Progress.COMPLETED])
def test_list__running_jobs_take_their_place_among_the_others_page_after_page(
        engine: Engine, progress: Progress | None) -> None:
    """RUNNING jobs are listed from another index than the rest (migration 0013): the pages
    still hold every job once, newest first, whatever mix of states they cross."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs CASCADE"))
        ids = [queue.create_job(conn, NewJob(kind="noop"), enqueue=True, now=at(i))[0].job_id
               for i in range(12)]
        # Claimed in claim order (oldest first): some end COMPLETED, some stay RUNNING.
        claimed = queue.claim_batch(conn, owner="w", limit=8, lease_seconds=60, now=at(20))
        queue.complete_jobs(conn, owner="w", now=at(21), done=[
            queue.Completion(job.job_id, job.token) for job in claimed[::3]])
        states = {job.job_id: job.progress for job in queue.list_jobs(conn, limit=100)}
        pages, before = [], None
        while True:
            page = queue.list_jobs(conn, progress=progress, limit=3, before=before)
            if not page:
                break
            pages.append(page)
            before = (page[-1].created_at, page[-1].job_id)
    assert {Progress.RUNNING, Progress.QUEUED, Progress.COMPLETED} <= set(states.values())
    wanted = [job_id for job_id in ids[::-1] if progress is None or states[job_id] is progress]
    assert [job.job_id for page in pages for job in page] == wanted
    assert all(len(page) == 3 for page in pages[:-1])
    if progress is None:
        assert len(states) == len(ids)


def test_claim_and_complete__without_begin_behave_like_execute(engine: Engine) -> None:
    """The batch statements run on the driver's cursor; called on a connection with no
    transaction begun, they still start one, so commit() keeps their work (and a close
    without it rolls it back), as with conn.execute."""
    with engine.begin() as conn:
        queued(conn, 2)
    with engine.connect() as conn:
        first = queue.claim_batch(conn, owner="w", limit=1, lease_seconds=30)
    with engine.connect() as conn:  # closed without commit: the claim was rolled back
        assert len(queue.claim_batch(conn, owner="w", limit=5, lease_seconds=30)) == 2
        conn.commit()
    with engine.connect() as conn:
        assert queue.complete_jobs(conn, owner="w",
                                   done=[Completion(first[0].job_id, first[0].token)]) == set()
        conn.commit()
    with engine.connect() as conn:
        assert progress_of(conn, first[0].job_id) is Progress.COMPLETED


def test_claim__database_errors_arrive_as_sqlalchemy_errors(engine: Engine) -> None:
    from sqlalchemy.exc import DBAPIError

    with engine.begin() as conn:  # a job to claim: a cached plan computes the lease per row
        queue.create_job(conn, queue.NewJob(kind="noop"), enqueue=True)
    with pytest.raises(DBAPIError, match="interval out of range"), engine.begin() as conn:
        queue.claim_batch(conn, owner="w", limit=1, lease_seconds=1e300)
