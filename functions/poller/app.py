"""Poller Lambda (the schedule and the API's kick): claims and runs jobs until its time is up."""

from jobworker.poller.handler import lambda_handler

__all__ = ["lambda_handler"]
