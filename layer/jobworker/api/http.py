"""HTTP concerns of the API Lambda: the error envelope, the one table from error to status,
and the request guard.

Every error body has the same shape::

    {"error": {"code": "not_found", "message": "job ... does not exist", "details": [...]}}

Whatever goes wrong, the route raises and :func:`problem_for` looks the error up in
``RULES``; the guard (which runs before routing) raises the same errors, so a refused
request reads the same whether the guard, validation or a use case refused it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from jobworker.aws.secrets import SecretUnavailable
from jobworker.aws.settings import ConfigError
from jobworker.problems import FieldProblem, field_problems
from jobworker.queue.errors import (
    IdempotencyConflict,
    IllegalTransition,
    JobNotFound,
    JobworkerError,
    RoutesNotAvailable,
    is_database_unavailable,
)
from jobworker.queue.storable import dotted, inspect_json

log = logging.getLogger("jobworker.http")

MAX_JSON_DEPTH = 32
RETRY_AFTER_SECONDS = 5
JSON_CONTENT_TYPES = ("application/json", "application/problem+json")


# --- errors the edge raises ---------------------------------------------------------------


class RequestRefused(JobworkerError):
    """The request itself is unusable (what it is decides the status, in ``RULES``)."""


class BodyTooLarge(RequestRefused):
    pass


class UnsupportedMediaType(RequestRefused):
    pass


class MalformedBody(RequestRefused):
    """Not JSON, not base64: ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidRequest(RequestRefused):
    """One or more fields of the request are wrong; each problem names its field."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("invalid request: " + ", ".join(p.field for p in self.problems))

    @classmethod
    def of_field(cls, where: str, message: str, kind: str) -> InvalidRequest:
        return cls([FieldProblem(where, message, kind)])


class InvalidCursor(InvalidRequest):
    """``?cursor=`` is not one this API handed out."""

    def __init__(self) -> None:
        super().__init__([FieldProblem("query.cursor", "cursor is not one this API returned",
                                       "invalid_cursor")])


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """An error as it goes out: status, code, message, details and headers."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> str:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return json.dumps({"error": error})

    def response(self) -> Response[str]:
        return Response(status_code=self.status, content_type=content_types.APPLICATION_JSON,
                        body=self.body(), headers=dict(self.headers))

    def gateway(self) -> dict[str, Any]:
        """The answer in API Gateway's format, for refusals made before routing."""
        return {"statusCode": self.status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON, **self.headers},
                "body": self.body(), "isBase64Encoded": False}


Details = Callable[[Any], list[dict[str, Any]]]
RETRY_LATER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@dataclass(frozen=True, slots=True)
class Rule:
    status: int
    code: str | Callable[[Any], str]
    message: str | Callable[[Any], str] = str  # a fixed text hides what the error says
    details: Details = lambda exc: []
    headers: Mapping[str, str] = field(default_factory=dict)
    log: str | None = None  # logged at ERROR with the traceback: ours to look at

    def problem(self, exc: BaseException) -> Problem:
        code = self.code if isinstance(self.code, str) else self.code(exc)
        message = self.message if isinstance(self.message, str) else self.message(exc)
        if self.log:
            log.error(self.log, exc_info=exc)
        return Problem(self.status, code, message, self.details(exc), dict(self.headers))


def _is_data_error(exc: BaseException) -> bool:
    """Postgres refused a value (out of range, bad encoding): the input's fault, not ours."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # loaded on first use, not by this module
    return sa_exc is not None and isinstance(exc, sa_exc.DataError)


RULES: dict[type[BaseException], Rule] = {
    JobNotFound: Rule(404, "not_found"),
    IllegalTransition: Rule(409, "illegal_transition", details=lambda exc: [
        {"current_progress": exc.current.value, "action": exc.action}]),
    RoutesNotAvailable: Rule(409, "routes_not_available", details=lambda exc: [
        {"current_progress": exc.current.value}]),
    IdempotencyConflict: Rule(422, "idempotency_key_reused", details=lambda exc: [
        {"job_id": str(exc.job_id)}]),
    InvalidRequest: Rule(422, "validation_error", details=lambda exc: [
        problem.as_detail() for problem in exc.problems]),
    MalformedBody: Rule(400, lambda exc: exc.code),
    BodyTooLarge: Rule(413, "body_too_large"),
    UnsupportedMediaType: Rule(415, "unsupported_media_type"),
    SecretUnavailable: Rule(503, "secret_unavailable", "the database credentials cannot be "
                            "read right now; retry shortly", headers=RETRY_LATER,
                            log="Secret unavailable"),
    ConfigError: Rule(500, "misconfigured", "the service is misconfigured",
                      log="Configuration error"),
}
# Errors of libraries this module does not import (SQLAlchemy loads on first use), by test.
RULES_BY_TEST: list[tuple[Callable[[BaseException], bool], Rule]] = [
    (_is_data_error, Rule(422, "invalid_data", "a value in the request cannot be stored")),
    (is_database_unavailable, Rule(503, "database_unavailable", "the database cannot be "
                                   "reached right now; retry shortly", headers=RETRY_LATER,
                                   log="Database unavailable")),
]
INTERNAL = Rule(500, "internal_error", "unexpected error; it has been logged",
                log="Unhandled error")
NO_ROUTE = Problem(404, "not_found", "no such route; see /docs")


def problem_for(exc: BaseException) -> Problem:
    """The one place where errors become HTTP statuses."""
    for cls in type(exc).__mro__:
        if cls in RULES:
            return RULES[cls].problem(exc)
    for applies, rule in RULES_BY_TEST:
        if applies(exc):
            return rule.problem(exc)
    return INTERNAL.problem(exc)


def invalid_request(errors: Iterable[Mapping[str, Any]]) -> RequestRefused:
    """Powertools' validation errors: unparsable JSON, or the fields that are wrong."""
    errors = list(errors)
    if any(error.get("type") == "json_invalid" for error in errors):
        return MalformedBody("malformed_json", "request body is not valid JSON")
    return InvalidRequest(field_problems(errors))


# --- the guard ----------------------------------------------------------------------------


def guard_request(event: Mapping[str, Any], max_body_bytes: int) -> None:
    """Refuse, before routing, what must never reach validation: an oversized body (413), a
    body that is not JSON (415), unparsable or absurdly nested JSON (400), a value Postgres
    cannot store (422). Raises a :class:`RequestRefused`."""
    body = event.get("body")
    if not body:
        return
    raw: bytes | str = body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("malformed_body", "body is not valid base64") from None
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode())
    if size > max_body_bytes:
        raise BodyTooLarge(f"request body is {size} bytes; the limit is {max_body_bytes}")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in JSON_CONTENT_TYPES:
        raise UnsupportedMediaType(f"send the body as application/json, not {content_type!r}")
    too_deep = MalformedBody("json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        parsed = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("malformed_json", "request body is not valid JSON") from None
    depth, unstorable = inspect_json(parsed, MAX_JSON_DEPTH)
    if depth > MAX_JSON_DEPTH:
        raise too_deep
    if unstorable is not None:
        path, message, kind = unstorable
        raise InvalidRequest.of_field(dotted("body", path), message, kind)
