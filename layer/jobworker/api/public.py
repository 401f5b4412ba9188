"""What of a job's worker names and error texts may leave through the API.

The row keeps everything an operator needs (the poller's owner is ``poller:<Lambda request
id>``; an unexpected exception is stored as ``TypeName: its text``) and the logs have the
traceback. A client sees a stable, opaque worker name (the same worker keeps the same name,
so a timeline still reads) and a short reason: a job's own failure (``JobFailure``, a message
written for people) as it is, an unexpected exception by its type name only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobworker.queue import Job

MAX_REASON_CHARS = 300
# How the poller stores an exception that is not a JobFailure: ``TypeName: text`` (the type
# name of a Python exception, possibly dotted, with no spaces) or just ``TypeName``.
_RAW_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Fault))"
                            r"(: |$)")


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
        raw = _RAW_EXCEPTION.match(error)
        if raw is not None:
            return f"the job raised {raw['type']} (the details are in the poller's log)"
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
