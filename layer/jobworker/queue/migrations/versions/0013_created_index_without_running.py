"""``jobs_created_idx`` leaves RUNNING jobs out: a claim and a heartbeat no longer write to it.

No update of ``jobs`` is a HOT update (``progress`` is in the partial indexes' predicates), so
every new version of a row gets an entry in every index whose predicate it meets: the claim
(QUEUED -> RUNNING) and each lease extension added one to the newest-first index, which only
``GET /jobs`` reads. Measured on the bench machine at a batch of 1,000, that entry was about a
third of the claim's own server time. RUNNING jobs are few (at most what the pollers hold), so
``job_list`` now merges the index's newest-first walk with the RUNNING jobs found by their
lease index (``jobs_running_lease_idx``) and sorted: the same pages, in the same order.

Building the index takes a SHARE lock on ``jobs``: enqueues, claims and completions wait for
it (0.74 s beside a million jobs on the bench machine), and a deploy's migration waits
at most ``MIGRATION_LOCK_TIMEOUT_SECONDS`` to get it, as for 0012.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX jobs_created_not_running_idx ON jobs (created_at DESC, job_id DESC)
    WHERE progress <> 'RUNNING';
DROP INDEX jobs_created_idx;
ALTER INDEX jobs_created_not_running_idx RENAME TO jobs_created_idx;
COMMENT ON INDEX jobs_created_idx IS
    'Newest first, RUNNING jobs left out (job_list finds those by jobs_running_lease_idx).';
"""

DOWNGRADE = """
CREATE INDEX jobs_created_all_idx ON jobs (created_at DESC, job_id DESC);
DROP INDEX jobs_created_idx;
ALTER INDEX jobs_created_all_idx RENAME TO jobs_created_idx;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
