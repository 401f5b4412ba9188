"""The states a job moves through; mirrors the Postgres enum ``progressenum``."""

from enum import StrEnum


class Progress(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Progress.COMPLETED, Progress.FAILED, Progress.CANCELLED})
