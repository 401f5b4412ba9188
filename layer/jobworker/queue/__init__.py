"""The queue core: the ``jobs`` table, its states, and every read and fenced write of it.

Knows nothing of HTTP, AWS or route generation. ``jobs.py`` has one function per operation,
``queries.sql`` (loaded by ``sql.py``) all of their SQL, ``errors.py`` the typed refusals,
``schema.py`` and ``migrations/`` the table itself. The operations are re-exported here, so
``from jobworker import queue; queue.claim_batch(...)`` reads as what it does.
"""

from jobworker.queue.jobs import (
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_CAP_SECONDS,
    DEFAULT_KIND,
    DEFAULT_MAX_ATTEMPTS,
    ClaimedJob,
    Completion,
    FinishedMinute,
    Flushed,
    Held,
    NewJob,
    Pruned,
    QueueStats,
    Recovered,
    StuckJob,
    cancel_job,
    cancel_running_job,
    claim_batch,
    complete_and_start,
    complete_job,
    complete_jobs,
    create_job,
    create_jobs,
    enqueue_job,
    extend_leases,
    fail_job,
    fail_timed_out,
    finished_per_minute,
    get_job,
    list_jobs,
    list_stuck,
    prune_finished,
    prune_finished_batch,
    prune_route_groups,
    queue_stats,
    queued_summary,
    recover_orphans,
    release_jobs,
    requeue_by_hand,
    result_json,
    retry_job,
    start_jobs,
)
from jobworker.queue.rows import Job

__all__ = [
    "DEFAULT_BACKOFF_BASE_SECONDS", "DEFAULT_BACKOFF_CAP_SECONDS", "DEFAULT_KIND",
    "DEFAULT_MAX_ATTEMPTS", "ClaimedJob", "Completion", "FinishedMinute", "Flushed", "Held", "Job",
    "NewJob", "Pruned", "QueueStats", "Recovered", "StuckJob", "cancel_job", "cancel_running_job",
    "claim_batch", "complete_and_start", "complete_job", "complete_jobs", "create_job",
    "create_jobs", "enqueue_job", "extend_leases", "fail_job", "fail_timed_out",
    "finished_per_minute", "get_job", "list_jobs", "list_stuck", "prune_finished",
    "prune_finished_batch", "prune_route_groups", "queue_stats", "queued_summary",
    "recover_orphans", "release_jobs", "requeue_by_hand", "result_json", "retry_job", "start_jobs",
]
