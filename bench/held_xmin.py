"""``jobworker bench held-xmin``: ``sustained`` with a REPEATABLE READ transaction held open
mid-run (60 s by default); see :mod:`bench.sustained`."""

from __future__ import annotations

from .sustained import main_held_xmin as main

__all__ = ["main"]
