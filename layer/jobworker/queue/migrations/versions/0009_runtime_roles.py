"""Runtime roles: jobworker_api, jobworker_poller and jobworker_sweeper, each with exactly the
privileges its function needs (``jobworker.queue.roles``), none owning anything.

Roles belong to the cluster, grants to this database: the upgrade creates or updates the
roles and grants on the tables that exist; ``migrate()`` re-applies the same map after every
upgrade, so tables added by later revisions are covered as soon as the map names them. The
downgrade takes this database's grants back and drops a role no other database still uses.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from jobworker.queue.roles import apply_runtime_grants, drop_runtime_roles

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_runtime_grants(op.get_bind())


def downgrade() -> None:
    drop_runtime_roles(op.get_bind())
