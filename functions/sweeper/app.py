"""Sweeper Lambda (its own schedule): time-outs, orphans, pruning and the queue's depth."""

from jobworker.sweeper.handler import lambda_handler

__all__ = ["lambda_handler"]
