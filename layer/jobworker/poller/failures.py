"""Why an attempt failed, and whether trying again can help: the one place that decides.

Job code raises :class:`JobFailure` to say so itself. Anything else is classified by type:
a payload that fails validation, or results the database refuses (a constraint or a value
out of range), can never succeed; a lost connection may pass. A reason is short and public:
it is stored in ``jobs.error`` and the API shows it as it is. So it is decided here, where
the failure is known, what may leave: a ``JobFailure``'s message (written for the job's
client), or for any other exception its type name only; its text (which may hold a token, a
URL with a password, an address) is in the log the caller writes with the traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from jobworker.problems import describe, field_problems
from jobworker.queue.errors import JobFailure, is_database_unavailable

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.exc import DBAPIError

ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    permanent: bool


def classify(exc: BaseException) -> Failure:
    """How the exception ends its job's attempt (raised by the work or by recording it)."""
    from sqlalchemy.exc import DataError, IntegrityError

    if isinstance(exc, JobFailure):
        return Failure(short(str(exc) or type(exc).__name__), exc.permanent)
    if isinstance(exc, ValidationError):
        return Failure(short(f"invalid payload: {describe(field_problems(exc.errors()))}"),
                       permanent=True)
    if isinstance(exc, IntegrityError | DataError):
        return Failure(short(f"the database refused the job's results: {_database_says(exc)}"),
                       permanent=True)
    if is_database_unavailable(exc):
        return Failure("the database connection was lost while the outcome was recorded",
                       permanent=False)
    return Failure(unexpected(exc), permanent=False)


def unexpected(exc: BaseException) -> str:
    """The public reason of an exception nobody wrote for people: its type, not its text."""
    return f"the job raised {type(exc).__name__} (the details are in the poller's log)"


def _database_says(exc: DBAPIError) -> str:
    """Postgres's own one-line message (names the constraint), without the SQL sent."""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary) if primary else type(exc.orig).__name__


def short(text: str) -> str:
    text = text.replace("\x00", "\\x00")  # text cannot hold NUL
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"
