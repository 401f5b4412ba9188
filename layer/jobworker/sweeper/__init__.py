"""The sweeper: one bounded maintenance pass (time-outs, orphans, pruning, queue depth)."""

from jobworker.sweeper.sweep import SweepSummary, sweep

__all__ = ["SweepSummary", "sweep"]
