"""Routes keep their road geometry: one line per leg, where the travel provider draws roads.

A nullable ``jsonb`` column on ``routes``: ``[[[lat, lon], ...], ...]`` (depot to the first
stop, ..., the last stop back to the depot). NULL means the map draws straight lines
(haversine, or a provider without geometry). Adding a nullable column without a default
rewrites nothing: instant on a table of any size.

NOTE for the integrator: no revision id was assigned for this; "0005_route_legs" is distinct
on purpose, so that if another branch also follows 0004 only ``down_revision`` needs changing.

Revision ID: 0005_route_legs
Revises: 0004
"""

from alembic import op

revision = "0005_route_legs"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE routes ADD COLUMN legs jsonb;
COMMENT ON COLUMN routes.legs IS 'Road geometry per leg, [[[lat, lon], ...], ...]; NULL: straight lines.';
"""

DOWNGRADE = """
ALTER TABLE routes DROP COLUMN legs;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
