"""What of a job's worker names and error texts may leave through the API.

The row keeps the poller's owner (``poller:<Lambda request id>``); a client sees a stable,
opaque worker name instead (the same worker keeps the same name, so a timeline still reads).
Error texts are public as stored: what of a failure may leave is decided where it is recorded
(``jobworker.poller.failures``: a ``JobFailure``'s message as written, any other exception by
its type name only, its text in the poller's log; migration 0010 did the same for older rows),
so nothing here reads a text to guess what it is. A reason goes out as its first line, at most
``MAX_REASON_CHARS`` long, with the owners it names (``worker lost: lease of poller:... expired``)
in their public form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobworker.queue import Job

MAX_REASON_CHARS = 300


def public_owner(owner: str) -> str:
    """``worker-`` and a digest of the owner: tells workers apart, names no request id."""
    return "worker-" + hashlib.sha256(owner.encode()).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class PublicForm:
    """Rewrites one job's texts, knowing every owner that job has had."""

    owners: frozenset[str]

    @classmethod
    def of(cls, job: Job) -> PublicForm:
        owners = {str(entry["owner"]) for entry in job.attempt_history if entry.get("owner")}
        if job.lease_owner:
            owners.add(job.lease_owner)
        return cls(frozenset(owners))

    def owner(self, owner: str | None) -> str | None:
        return None if owner is None else public_owner(owner)

    def reason(self, error: str | None) -> str | None:
        if error is None:
            return None
        for owner in sorted(self.owners, key=len, reverse=True):
            error = error.replace(owner, public_owner(owner))
        first_line = error.splitlines()[0] if error.strip() else error
        if len(first_line) > MAX_REASON_CHARS:
            return first_line[: MAX_REASON_CHARS - 1] + "…"
        return first_line

    def attempt(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        owner, error = entry.get("owner"), entry.get("error")
        return {**entry, "owner": self.owner(str(owner)) if owner else None,
                "error": self.reason(str(error)) if error else None}
