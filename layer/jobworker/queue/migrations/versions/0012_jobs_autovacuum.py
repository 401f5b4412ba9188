"""``jobs`` is vacuumed as the hot queue it is, not as a table of Postgres' defaults.

Every job leaves dead row versions behind: its claim and its completion each write a new
version of the row (never a HOT update: ``progress`` is in the partial indexes' predicates),
and pruning deletes it. With the defaults a table is vacuumed once a fifth of it is dead
(``autovacuum_vacuum_scale_factor`` 0.2), at a cost limit that lets a worker clean about
200 pages per cost round. On a queue that drains thousands of jobs a second, dead versions
then pile up between vacuums by the million, and every claim walks the dead index entries
and heap pages left behind: in ``jobworker bench sustained`` at 6,000 jobs/s for 4 minutes,
the claim's p99 grew 1.58x between the first minute and the last, and the table 1.97x.

Here ``jobs`` is vacuumed once 2% of it (plus 5,000 rows) is dead, and analyzed once 5% has
changed, so the planner's view of the small live part stays current; its vacuum runs at ten
times the default cost limit with a 1 ms pause. In the same bench the claim's p99 grew 1.47x
and the table 1.66x (README, Benchmarks). ``autovacuum_naptime`` (how often each database is
looked at) is a server setting, not a table's: the template sets it for the database it
creates.

Setting these options takes a SHARE UPDATE EXCLUSIVE lock: claims, completions and enqueues
go on while it runs. A vacuum of ``jobs`` holds the same lock; autovacuum gives way to a lock
request (Postgres cancels it), but a manual VACUUM or an anti-wraparound one does not: then
the migration stops at its lock timeout (``MIGRATION_LOCK_TIMEOUT_SECONDS``), nothing is
changed, and the deploy can simply be run again. An operator's own values can be set the same
way afterwards (``ALTER TABLE jobs SET (...)``); later migrations leave them alone.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

AUTOVACUUM_OF_JOBS = {
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_threshold": "5000",
    "autovacuum_vacuum_insert_scale_factor": "0.05",
    "autovacuum_analyze_scale_factor": "0.05",
    "autovacuum_vacuum_cost_limit": "2000",
    "autovacuum_vacuum_cost_delay": "1",
}


def upgrade() -> None:
    options = ", ".join(f"{name} = {value}" for name, value in AUTOVACUUM_OF_JOBS.items())
    op.execute(f"ALTER TABLE jobs SET ({options})")


def downgrade() -> None:
    op.execute(f"ALTER TABLE jobs RESET ({', '.join(AUTOVACUUM_OF_JOBS)})")
