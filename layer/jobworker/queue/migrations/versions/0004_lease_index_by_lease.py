"""The lease index is defined by the lease, not by ``progress``.

``jobs_running_lease_idx`` listed the rows ``WHERE progress = 'RUNNING'``. Every fenced write
(complete, fail, cancel, release, heartbeat) says ``progress = 'RUNNING'`` too, so the index
was a candidate for all of them; with statistics taken while few jobs ran, a cached generic
plan (psycopg prepares a statement after five runs when prepared statements are on) walked
every RUNNING row for each job it fenced: a batch completion of a thousand jobs became a
million comparisons. Indexed ``WHERE lease_expires_at IS NOT NULL`` it holds the RUNNING rows
(a lease exists while RUNNING: ``jobs_lease_iff_running``, and the update trigger clears it
when a job leaves RUNNING), it still serves the sweeper's "lease expired" and "running too
long" scans, which name ``lease_expires_at`` (and check ``progress`` themselves), and the
fences find their jobs by primary key whatever the statistics say.

The new index is built first, under a temporary name: the build reads the table once and
holds off writes meanwhile (reads go on), about a second per million rows; dropping the old
index and renaming the new one are instant, just before the commit.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX jobs_lease_expiry_idx ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX jobs_running_lease_idx;
ALTER INDEX jobs_lease_expiry_idx RENAME TO jobs_running_lease_idx;
COMMENT ON INDEX jobs_running_lease_idx IS 'The RUNNING jobs (the rows with a lease), by lease expiry.';
"""

DOWNGRADE = """
CREATE INDEX jobs_running_idx ON jobs (lease_expires_at) WHERE progress = 'RUNNING';
DROP INDEX jobs_running_lease_idx;
ALTER INDEX jobs_running_idx RENAME TO jobs_running_lease_idx;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
