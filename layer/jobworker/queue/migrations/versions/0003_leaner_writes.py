"""Leaner writes on the hot path: fewer indexes to maintain, and the trigger runs only when the
statement did not set updated_at itself.

Every claim and completion writes a new row version that every index on ``jobs`` must point
at (a state change can never be a HOT update: ``progress`` is in the partial indexes'
predicates). Two indexes paid that price for rare reads:

* ``jobs_progress_created_idx`` served ``GET /jobs?progress=``; the newest-first index with a
  filter serves it, and a filtered page stops as soon as it has ``limit`` rows.
* ``jobs_running_started_idx`` served the timeout rule; RUNNING rows are few (at most the
  pollers' batches) and ``jobs_running_lease_idx`` already lists exactly those.

jobworker's own statements set ``updated_at``; the trigger now fires only for statements that
don't (raw SQL, the seed's manual reset), so the common path skips a PL/pgSQL call per row.

``jobs_attempt_entry`` builds one ``attempt_history`` entry; a plain SQL function, so Postgres
inlines it, and the six statements that end an attempt say the same thing the same way.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
DROP INDEX jobs_progress_created_idx;
DROP INDEX jobs_running_started_idx;

DROP TRIGGER jobs_before_update ON jobs;
CREATE TRIGGER jobs_before_update BEFORE UPDATE ON jobs
    FOR EACH ROW
    WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION jobs_before_update();

CREATE FUNCTION jobs_attempt_entry(attempt integer, owner text, outcome text, error text,
                                   started_at timestamptz, ended_at timestamptz)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
        'attempt', attempt, 'owner', owner, 'outcome', outcome, 'error', error,
        'started_at', started_at, 'ended_at', ended_at)))
$$;
COMMENT ON FUNCTION jobs_attempt_entry IS 'One attempt_history entry (a one-element array to append).';
"""

DOWNGRADE = """
DROP FUNCTION jobs_attempt_entry;
DROP TRIGGER jobs_before_update ON jobs;
CREATE TRIGGER jobs_before_update BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_before_update();
CREATE INDEX jobs_running_started_idx ON jobs (started_at) WHERE progress = 'RUNNING';
CREATE INDEX jobs_progress_created_idx ON jobs (progress, created_at DESC, job_id DESC);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
