"""Job kinds used by the resilience tests, loaded by workers through JOBWORKER_PLUGINS.

``ledgered_simulate`` sleeps like ``simulate`` and records its work in ``work_ledger`` inside
the transaction that completes the job: only the lease owner's completion can commit it, so
the ledger shows how many times each job's work really took effect.

``crash`` kills the worker process outright, every time: a poison job.
"""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.engine import Connection

from jobworker.kinds import JobContext, JobOutcome, job_kind

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS work_ledger (
    job_id       uuid        NOT NULL,
    attempt      integer     NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


@job_kind("ledgered_simulate")
def ledgered_simulate(ctx: JobContext) -> JobOutcome:
    ctx.wait(float(ctx.payload.get("seconds", 0.05)))

    def record(conn: Connection) -> None:  # returns no route group
        conn.execute(text("INSERT INTO work_ledger (job_id, attempt) VALUES (:id, :attempt)"),
                     {"id": ctx.job_id, "attempt": ctx.attempt})

    return JobOutcome(result={"done": True}, persist=record)


@job_kind("crash")
def crash(ctx: JobContext) -> JobOutcome:
    os._exit(137)
