"""API Lambda (API Gateway HTTP API, payload v2): the routes live in ``jobworker.api.app``."""

from jobworker.api.app import lambda_handler

__all__ = ["lambda_handler"]
