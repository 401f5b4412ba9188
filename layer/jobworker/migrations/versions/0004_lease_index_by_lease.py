"""The lease index is defined by the lease, not by ``progress``.

``jobs_running_lease_idx`` listed the rows ``WHERE progress = 'RUNNING'``. Every fenced write
(complete, fail, cancel, release, heartbeat) says ``progress = 'RUNNING'`` too, so the index
was a candidate for all of them; with statistics taken while few jobs ran, a cached generic
plan (psycopg prepares a statement after five runs when prepared statements are on) walked
every RUNNING row for each job it fenced: a batch completion of a thousand jobs became a
million comparisons. Indexed ``WHERE lease_expires_at IS NOT NULL`` it holds the same rows
(the ``jobs_lease_iff_running`` constraint), it still serves the sweeper's "lease expired"
and "running too long" scans, which name ``lease_expires_at``, and the fences find their jobs
by primary key whatever the statistics say.

Rebuilding reads the table once while holding off writes: on a million rows, about a second.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
DROP INDEX jobs_running_lease_idx;
CREATE INDEX jobs_running_lease_idx ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
COMMENT ON INDEX jobs_running_lease_idx IS
    'The RUNNING jobs (a lease exists exactly while RUNNING), by lease expiry.';
"""

DOWNGRADE = """
DROP INDEX jobs_running_lease_idx;
CREATE INDEX jobs_running_lease_idx ON jobs (lease_expires_at) WHERE progress = 'RUNNING';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
