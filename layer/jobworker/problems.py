"""Where a value is wrong and why: the one reading of pydantic's validation errors.

The API answers with one detail per problem, the settings name the environment variable, and
job kinds and the poller put the one-line description in a failure reason. Every caller reads
pydantic's error dicts through :func:`field_problems`, so a message reads the same wherever
it shows. Stdlib only and outside every room, so that each room (route generation's core
included, which may not import the queue) can use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VALUE_ERROR_PREFIX = "Value error, "  # pydantic's prefix for a validator's ValueError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str  # dotted path, e.g. ``body.settings.vehicles``
    message: str
    type: str
    input: Any = dataclasses.field(default=None, repr=False, compare=False)

    def as_detail(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "type": self.type}


class ProblemsBelow(ValueError):
    """Raised by a validator that checks several fields together (a request's cross-field
    rules): each problem keeps its own path below the validated object, so the API answers
    one detail per field instead of one joined message at the object."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = list(problems)  # (dotted path below the object, message)
        super().__init__("; ".join(f"{path}: {message}" if path else message
                                   for path, message in self.problems))


# pydantic names each branch of a union in an error's path ("constrained-int",
# "list[VehicleType]", "function-after[...]"): schema words, not fields a client sent.
_BRANCH_WORDS = frozenset({"int", "float", "str", "bool", "list", "dict", "none", "bytes"})
_BRANCH_PREFIXES = ("constrained-", "function-", "lax-or-strict", "json-or-python", "nullable",
                    "tagged-union", "literal[", "is-instance[")


def _is_union_branch(part: object) -> bool:
    if not isinstance(part, str):
        return False
    return "[" in part or part in _BRANCH_WORDS or part.startswith(_BRANCH_PREFIXES)


def field_problems(errors: Iterable[Mapping[str, Any]], *, separator: str = ".",
                   root: str | None = None) -> list[FieldProblem]:
    """pydantic's ``errors()`` as problems; ``root`` is put in front of every path. A field
    that may take several shapes (a number or a list) is named once, without the branch."""
    problems = []
    for error in errors:
        parts = [str(part) for part in error.get("loc", ()) if not _is_union_branch(part)]
        if root is not None:
            parts.insert(0, root)
        kind = str(error.get("type", "invalid"))
        below = (error.get("ctx") or {}).get("error")
        if isinstance(below, ProblemsBelow):
            problems += [FieldProblem(separator.join([*parts, *filter(None, path.split("."))]),
                                      message, kind) for path, message in below.problems]
            continue
        problems.append(FieldProblem(separator.join(parts), _message(error), kind,
                                     error.get("input")))
    return problems


def describe(problems: Sequence[FieldProblem], limit: int = 5) -> str:
    """One line a person can read: ``where: what`` for the first ``limit`` problems."""
    parts = [f"{p.field}: {p.message}" if p.field else p.message for p in problems[:limit]]
    if len(problems) > limit:
        parts.append(f"and {len(problems) - limit} more")
    return "; ".join(parts)


def _message(error: Mapping[str, Any]) -> str:
    if error.get("msg"):
        return str(error["msg"]).removeprefix(VALUE_ERROR_PREFIX)
    context = error.get("ctx") or {}
    if "error" in context:
        return str(context["error"]).removeprefix(VALUE_ERROR_PREFIX)
    return str(error.get("type", "invalid")).replace("_", " ")
