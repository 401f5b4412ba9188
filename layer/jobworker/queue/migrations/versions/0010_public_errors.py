"""``jobs.error`` (and each attempt's error) holds only what the job's client may read.

What is public is now decided where a failure is recorded: a ``JobFailure``'s message is
written for people and stored as it is; any other exception is logged in full by the poller
and stored as ``the job raised <Type> (the details are in the poller's log)``. The API shows
what the row holds and no longer guesses from the text.

Rows failed before this revision hold an unexpected exception as the poller wrote it:
``<Type>: <its text>`` (or ``<Type>`` alone), possibly after job_fail_if_owned's prefix
``cancelled on request after a failed attempt: ``. This revision rewrites those once, in
``error`` and in ``attempt_history``, to the form the poller now stores. The rule is the old
writer's format, a Python type name right at the start followed by ": " or nothing: no text
written for people by jobworker has that shape (theirs start with words: "invalid route
request: ...", "worker lost: ..."), and one that did would only be shown shorter. The
texts rewritten are not restored by the downgrade: they are in the poller's logs.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# \1: the prefix a cancel adds (or nothing), \2: the type name, \3: the text, dropped.
RAW_EXCEPTION = r"^(cancelled on request after a failed attempt: )?([A-Za-z_][A-Za-z0-9_]*)(: .*)?$"
PUBLIC_FORM = r"\1the job raised \2 (the details are in the poller's log)"


def public(text: str) -> str:
    """SQL for ``text`` in its public form (unchanged unless it is a raw exception)."""
    return f"regexp_replace({text}, '{RAW_EXCEPTION}', $public${PUBLIC_FORM}$public$)"


UPGRADE = f"""
UPDATE jobs
   SET error = {public("error")},
       attempt_history = (
           SELECT COALESCE(jsonb_agg(
                      CASE WHEN jsonb_typeof(entry -> 'error') = 'string'
                           THEN jsonb_set(entry, '{{error}}', to_jsonb({public("entry ->> 'error'")}))
                           ELSE entry END
                      ORDER BY position), '[]'::jsonb)
             FROM jsonb_array_elements(attempt_history) WITH ORDINALITY AS history(entry, position))
 WHERE error ~ '{RAW_EXCEPTION}'
    OR EXISTS (SELECT FROM jsonb_array_elements(attempt_history) AS history(entry)
                WHERE entry ->> 'error' ~ '{RAW_EXCEPTION}');

COMMENT ON COLUMN jobs.error IS 'Why the job failed or was cancelled, in words its client may read (the API shows it as it is): a job''s own failure as it wrote it; any other exception by its type name only (its text is in the poller''s log). Each attempt_history entry''s error likewise.';
"""

DOWNGRADE = """
COMMENT ON COLUMN jobs.error IS NULL;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
