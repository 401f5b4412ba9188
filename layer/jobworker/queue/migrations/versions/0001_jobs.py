"""The jobs table: the queue itself.

Revision ID: 0001
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TYPE progressenum AS ENUM ('PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE jobs (
    job_id           uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    kind             text         NOT NULL DEFAULT 'generate_routes',
    progress         progressenum NOT NULL DEFAULT 'PENDING',
    payload          jsonb        NOT NULL DEFAULT '{}'::jsonb,
    result           jsonb,
    error            text,
    priority         smallint     NOT NULL DEFAULT 0,
    run_at           timestamptz  NOT NULL DEFAULT now(),
    attempts         integer      NOT NULL DEFAULT 0,
    max_attempts     integer      NOT NULL DEFAULT 3,
    lease_owner      text,
    lease_expires_at timestamptz,
    cancel_requested boolean      NOT NULL DEFAULT false,
    idempotency_key  text,
    request_hash     text,
    attempt_history  jsonb        NOT NULL DEFAULT '[]'::jsonb,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    route_group_id   uuid,

    CONSTRAINT jobs_lease_iff_running
        CHECK ((progress = 'RUNNING') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT jobs_started_when_running
        CHECK (progress <> 'RUNNING' OR started_at IS NOT NULL),
    CONSTRAINT jobs_finished_iff_terminal
        CHECK ((progress IN ('COMPLETED', 'FAILED', 'CANCELLED')) = (finished_at IS NOT NULL)),
    CONSTRAINT jobs_attempts_within_max CHECK (attempts BETWEEN 0 AND max_attempts),
    CONSTRAINT jobs_max_attempts_positive CHECK (max_attempts >= 1),
    CONSTRAINT jobs_kind_not_blank CHECK (kind <> ''),
    CONSTRAINT jobs_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT jobs_attempt_history_is_array CHECK (jsonb_typeof(attempt_history) = 'array')
);

COMMENT ON TABLE jobs IS 'The queue: one row per job; progress is its state.';
COMMENT ON COLUMN jobs.priority IS 'Lower runs first; ties go to the earliest run_at.';
COMMENT ON COLUMN jobs.run_at IS 'Not before: a QUEUED job is claimable from this time on (retry backoff moves it).';
COMMENT ON COLUMN jobs.attempts IS 'Attempts started so far, counted at claim; a release gives one back.';
COMMENT ON COLUMN jobs.lease_owner IS 'The worker that holds a RUNNING job; completion and failure must name it.';
COMMENT ON COLUMN jobs.lease_expires_at IS 'Heartbeats push this forward; past it, the sweeper may take the job back.';
COMMENT ON COLUMN jobs.cancel_requested IS 'Set by a cancel of a RUNNING job; the worker stops at its next heartbeat.';
COMMENT ON COLUMN jobs.request_hash IS 'Hash of the request that created the job under idempotency_key.';
COMMENT ON COLUMN jobs.attempt_history IS 'One object per ended attempt: attempt, owner, outcome, error, started_at, ended_at.';

-- Claiming walks this index in claim order and never sees finished rows.
CREATE INDEX jobs_queued_claim_idx ON jobs (priority, run_at) WHERE progress = 'QUEUED';
-- Orphan recovery and the timeout rule look only at RUNNING rows.
CREATE INDEX jobs_running_lease_idx ON jobs (lease_expires_at) WHERE progress = 'RUNNING';
CREATE INDEX jobs_running_started_idx ON jobs (started_at) WHERE progress = 'RUNNING';
CREATE UNIQUE INDEX jobs_idempotency_key_uq ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, job_id DESC);
CREATE INDEX jobs_progress_created_idx ON jobs (progress, created_at DESC, job_id DESC);
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- updated_at moves on every update, whoever runs it (raw SQL included), unless the statement
-- sets it itself. A row leaving RUNNING drops its lease, so the seed's manual reset
-- (UPDATE jobs SET progress = 'QUEUED', started_at = NULL WHERE ...) works as written.
CREATE FUNCTION jobs_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    IF NEW.progress <> 'RUNNING' THEN
        NEW.lease_owner := NULL;
        NEW.lease_expires_at := NULL;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER jobs_before_update BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_before_update();
"""

DOWNGRADE = """
DROP TABLE jobs;
DROP FUNCTION jobs_before_update();
DROP TYPE progressenum;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
