"""What Postgres cannot store of a JSON value: a NUL character in a key or string (``text``
and ``jsonb`` refuse it), a lone UTF-16 surrogate (JSON can escape one, ``"\\ud800"``; UTF-8
cannot encode it), NaN or Infinity (Python's JSON reader and writer take them; JSON and
``jsonb`` do not). The API checks request bodies with it, the worker job results."""

from __future__ import annotations

import math
import re
from typing import Any

NUL_MESSAGE = "may not contain the NUL character (\\u0000)"
SURROGATE_MESSAGE = ("may not contain a lone UTF-16 surrogate (\\ud800 to \\udfff): it is not "
                     "a character, and UTF-8 cannot store it")
NOT_FINITE_MESSAGE = "NaN and Infinity are not JSON numbers"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
Path = tuple[str | int, ...]
Unstorable = tuple[Path, str, str]  # where, what is wrong, error type


def inspect_json(value: Any, max_depth: int | None = None) -> tuple[int, Unstorable | None]:
    """Nesting depth, and the first value Postgres could not store. Stops going deeper once
    past ``max_depth``. Iterative: a recursive walk is what deep JSON is meant to break."""
    deepest = 0
    found: Unstorable | None = None
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        depth = len(path) + 1
        if found is not None and not isinstance(item, dict | list | tuple):
            continue
        if isinstance(item, str):
            found = _unstorable_text(item, path)
        elif isinstance(item, float):
            if not math.isfinite(item):
                found = (path, NOT_FINITE_MESSAGE, "number_not_finite")
        elif isinstance(item, dict | list | tuple):
            deepest = max(deepest, depth)
            if max_depth is not None and depth > max_depth:
                return depth, found
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if found is None and isinstance(key, str):
                    found = _unstorable_text(key, (*path, key))
                stack.append((child, (*path, key)))
    return deepest, found


def _unstorable_text(text: str, path: Path) -> Unstorable | None:
    if "\x00" in text:
        return (path, NUL_MESSAGE, "string_nul")
    # isascii() is free (CPython keeps the flag): the search runs only on non-ASCII text.
    if not text.isascii() and _SURROGATE.search(text):
        return (path, SURROGATE_MESSAGE, "string_surrogate")
    return None


def dotted(root: str, path: Path) -> str:
    """``root.a.0.b``: where a value is, as the API's errors name fields."""
    return ".".join([root, *map(str, path)])
