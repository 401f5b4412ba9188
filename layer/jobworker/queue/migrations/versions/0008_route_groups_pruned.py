"""Route groups can be pruned by their own retention without scanning ``jobs``.

Deleting a route group makes Postgres clear ``jobs.route_group_id`` where it points at the
group (``ON DELETE SET NULL``); with no index on that column each deleted group cost a scan of
the whole ``jobs`` table (about 190 groups/s beside 100k jobs, and a statement timeout beside
1M). The index is partial: only jobs that produced routes have an entry, so the claim and the
completion of every other job write nothing more. The sweeper finds expired groups oldest
first along ``route_groups_created_idx``, whatever share of the table is younger.

Revision ID: 0008
Revises: 0006
"""

from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX jobs_route_group_idx ON jobs (route_group_id) WHERE route_group_id IS NOT NULL;
CREATE INDEX route_groups_created_idx ON route_groups (created_at);
"""

DOWNGRADE = """
DROP INDEX route_groups_created_idx;
DROP INDEX jobs_route_group_idx;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
