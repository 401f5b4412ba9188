"""HTTP concerns of the API Lambda: the error envelope, exception -> status, and a request guard.

Every error body has the same shape::

    {"error": {"code": "not_found", "message": "job ... does not exist", "details": [...]}}
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from jobworker.aws.settings import ConfigError
from jobworker.queue.errors import (
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    RoutesNotAvailable,
    is_database_unavailable,
)
from jobworker.queue.storable import dotted, inspect_json

log = logging.getLogger("jobworker.http")

MAX_JSON_DEPTH = 32
RETRY_AFTER_SECONDS = 5
JSON_CONTENT_TYPES = ("application/json", "application/problem+json")


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str,
                   details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(code, message, details)),
        headers=headers,
    )


def response_for_exception(exc: Exception) -> Response[str]:
    """The one place where exceptions become HTTP statuses."""
    if isinstance(exc, JobNotFound):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, IllegalTransition):
        return error_response(409, "illegal_transition", str(exc),
                              [{"current_progress": exc.current.value, "action": exc.action}])
    if isinstance(exc, RoutesNotAvailable):
        return error_response(409, "routes_not_available", str(exc),
                              [{"current_progress": exc.current.value}])
    if isinstance(exc, IdempotencyConflict):
        return error_response(422, "idempotency_key_reused", str(exc),
                              [{"job_id": str(exc.job_id)}])
    if _is_data_error(exc):
        return error_response(422, "invalid_data", "a value in the request cannot be stored")
    if is_database_unavailable(exc):
        log.error("Database unavailable", exc_info=exc)
        return error_response(503, "database_unavailable",
                              "the database cannot be reached right now; retry shortly",
                              headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, ConfigError):
        log.error("Configuration error", exc_info=exc)
        return error_response(500, "misconfigured", "the service is misconfigured")
    log.exception("Unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "unexpected error; it has been logged")


def validation_response(errors: Any) -> Response[str]:
    """Powertools' validation errors -> 400 for unparsable JSON, else 422 naming the fields."""
    errors = list(errors)
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(400, "malformed_json", "request body is not valid JSON")
    details = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": _message_of(error),
            "type": error.get("type"),
        }
        for error in errors
    ]
    fields = ", ".join(detail["field"] for detail in details)
    return error_response(422, "validation_error", f"invalid request: {fields}", details)


def _is_data_error(exc: Exception) -> bool:
    """Postgres refused a value (out of range, bad encoding): the input's fault, not ours."""
    import sys

    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.DataError)


def _message_of(error: dict[str, Any]) -> str:
    if error.get("msg"):
        return str(error["msg"]).removeprefix("Value error, ")
    ctx = error.get("ctx") or {}
    if "error" in ctx:
        return str(ctx["error"]).removeprefix("Value error, ")
    return str(error.get("type", "invalid")).replace("_", " ")


def guard_request(event: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse, before routing, what must never reach validation: an oversized body (413), a
    body that is not JSON (415), unparsable or absurdly nested JSON (400). Returns an API
    Gateway response, or None to go on."""
    from jobworker.aws.runtime import get_settings

    try:
        max_body_bytes = get_settings().max_body_bytes
    except ConfigError:
        log.exception("Configuration error")
        return _raw_error(500, "misconfigured", "the service is misconfigured")
    body = event.get("body")
    if not body:
        return None
    raw: bytes | str = body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _raw_error(400, "malformed_body", "body is not valid base64")
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode())
    if size > max_body_bytes:
        return _raw_error(413, "body_too_large",
                          f"request body is {size} bytes; the limit is {max_body_bytes}")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in JSON_CONTENT_TYPES:
        return _raw_error(415, "unsupported_media_type",
                          f"send the body as application/json, not {content_type!r}")
    try:
        parsed = json.loads(raw)
    except RecursionError:
        return _raw_error(400, "json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    except (ValueError, UnicodeDecodeError):
        return _raw_error(400, "malformed_json", "request body is not valid JSON")
    depth, unstorable = inspect_json(parsed, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        return _raw_error(400, "json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if unstorable is not None:
        path, message, kind = unstorable
        field = dotted("body", path)
        return _raw_error(422, "validation_error", f"invalid request: {field}",
                          [{"field": field, "message": message, "type": kind}])
    return None


def _raw_error(status: int, code: str, message: str,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error_body(code, message, details)),
        "isBase64Encoded": False,
    }
