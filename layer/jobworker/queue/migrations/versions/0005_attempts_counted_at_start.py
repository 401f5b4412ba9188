"""An attempt is counted when the job starts, not when it is claimed; claims get their own token.

Counting at claim charged every job of a batch an attempt when its worker died, although
only the job that was running (and, at most, the few marked to start next) ever ran: after
``max_attempts`` crashes, jobs that never ran ended FAILED. Now:

* ``lease_token`` goes up by one at every claim and is what the worker's writes are fenced
  on (with ``lease_owner``): ``attempts`` no longer moves at claim, so it can no longer tell a
  late worker from the job's new owner.
* ``attempt_started`` says the current claim's attempt has been counted: the worker marks
  jobs started (in chunks, folded into statements it sends anyway) just before it runs them.
  A lost lease on an unstarted job gives the job back with its attempts intact.

Jobs RUNNING under the old rule were counted at claim: they are marked started.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE jobs
    ADD COLUMN lease_token bigint NOT NULL DEFAULT 0,
    ADD COLUMN attempt_started boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT jobs_started_attempt_is_running
        CHECK (NOT attempt_started OR progress = 'RUNNING');
UPDATE jobs SET attempt_started = true WHERE progress = 'RUNNING';

COMMENT ON COLUMN jobs.attempts IS 'Attempts started so far, counted when the worker starts the job (attempt_started), not at claim.';
COMMENT ON COLUMN jobs.lease_token IS 'Goes up at every claim: worker writes are fenced on (lease_owner, lease_token).';
COMMENT ON COLUMN jobs.attempt_started IS 'The current claim''s attempt was counted in attempts: the worker started (or was about to start) it.';

-- A row leaving RUNNING (the seed's manual reset included) ends its claim's start too.
CREATE OR REPLACE FUNCTION jobs_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    IF NEW.progress <> 'RUNNING' THEN
        NEW.lease_owner := NULL;
        NEW.lease_expires_at := NULL;
        NEW.attempt_started := false;
    END IF;
    RETURN NEW;
END;
$$;
"""

# Back to counting at claim: a claimed job that had not started yet gets its attempt now.
DOWNGRADE = """
CREATE OR REPLACE FUNCTION jobs_before_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
UPDATE jobs SET attempts = attempts + 1 WHERE progress = 'RUNNING' AND NOT attempt_started;
ALTER TABLE jobs
    DROP CONSTRAINT jobs_started_attempt_is_running,
    DROP COLUMN attempt_started,
    DROP COLUMN lease_token;
COMMENT ON COLUMN jobs.attempts IS 'Attempts started so far, counted at claim; a release gives one back.';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
