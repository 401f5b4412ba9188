"""The row type of ``jobs``: one definition of a whole job, from which the SQL select list
(``{job_columns}`` in queries.sql) is derived, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from jobworker.queue.progress import Progress

if TYPE_CHECKING:  # SQLAlchemy loads on first use, not on import
    from sqlalchemy.engine import Row


@dataclass(frozen=True, slots=True)
class Job:
    job_id: UUID
    kind: str
    progress: Progress
    payload: dict[str, Any]
    result: Any
    error: str | None
    priority: int
    run_at: datetime
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    idempotency_key: str | None
    request_hash: str | None
    attempt_history: list[dict[str, Any]]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    route_group_id: UUID | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Job:
        values = row._asdict()
        values["progress"] = Progress(values["progress"])
        return cls(**values)


def job_select_list() -> str:
    """``Job``'s fields as SQL columns (``{job_columns}`` in queries.sql); the enum is read as
    text, which ``from_row`` turns back into a ``Progress``."""
    return ", ".join(
        f"{f.name}::text AS {f.name}" if f.type == "Progress" else f.name for f in fields(Job)
    )
