"""CloudFormation custom resource ``Custom::Migrations``: apply schema migrations on deploy.

Create and Update bring the schema to the newest revision (``jobworker.queue.schema``, idempotent);
Delete leaves the database alone. Whatever happens, CloudFormation gets an answer on the
pre-signed ``ResponseURL``, SUCCESS or FAILED with the reason, so a stack never waits an
hour for a response that will not come: a migration still running shortly before the Lambda's
time runs out is reported as FAILED.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()

PHYSICAL_RESOURCE_ID = "jobworker-schema"
RESPONSE_TIMEOUT_SECONDS = 15.0
# Time kept back from the Lambda's limit to send the answer.
RESPONSE_MARGIN_SECONDS = 20.0
MAX_REASON_CHARS = 1000  # CloudFormation accepts a response body of at most 4 KB


def apply_migrations() -> str | None:
    """Migrate the configured database (which creates the runtime roles) and give each role
    the password of its function's secret; returns the revision it is at afterwards."""
    from jobworker.aws.runtime import get_engine, get_settings
    from jobworker.queue.schema import migrate

    engine = get_engine()
    revision = migrate(engine)
    set_runtime_passwords(engine, get_settings().runtime_role_secrets or {})
    return revision


def set_runtime_passwords(engine: Any, role_secrets: dict[str, str]) -> None:
    """Each runtime role gets the password its secret holds (RUNTIME_ROLE_SECRETS), in one
    transaction; a secret naming another user is refused."""
    from jobworker.aws.secrets import read_secret
    from jobworker.aws.settings import ConfigError
    from jobworker.queue.roles import set_role_password

    if not role_secrets:
        return
    with engine.begin() as conn:
        for role, secret_arn in role_secrets.items():
            secret = read_secret(secret_arn)
            if secret["username"] != role:
                raise ConfigError(f"RUNTIME_ROLE_SECRETS: secret {secret_arn} is for user "
                                  f"{secret['username']!r}, not {role!r}")
            set_role_password(conn, role, secret["password"])


class DeadlineExceeded(Exception):
    pass


def run_with_deadline(work: Callable[[], str | None], seconds: float) -> str | None:
    """Run ``work`` in a thread; raise DeadlineExceeded if it has not finished in ``seconds``.

    The thread is a daemon and is abandoned on timeout: the answer to CloudFormation matters
    more than the migration, which runs in a transaction and is retried on the next deploy.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["revision"] = work()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="migrate", daemon=True)
    thread.start()
    thread.join(max(seconds, 0.0))
    if thread.is_alive():
        raise DeadlineExceeded(f"migrations did not finish within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    if "revision" not in outcome:
        raise RuntimeError("migrations stopped without a result")
    revision: str | None = outcome["revision"]
    return revision


def response_body(event: dict[str, Any], status: str, reason: str,
                  data: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "Status": status,
        "Reason": reason[:MAX_REASON_CHARS],
        "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": data or {},
    }


def put_response(url: str, body: dict[str, Any],
                 timeout: float = RESPONSE_TIMEOUT_SECONDS) -> int:
    """PUT the JSON answer to the pre-signed URL; returns the HTTP status."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise ValueError("ResponseURL must be an http(s) URL")
    payload = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=payload,
        method="PUT",
        # The URL is signed without a content type: send an empty one, not urllib's default.
        headers={"Content-Type": "", "Content-Length": str(len(payload))},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (checked)
        status: int = response.status
        return status


def handle(event: dict[str, Any], seconds_left: float) -> dict[str, Any]:
    """Do what the request asks; returns the response body (never raises)."""
    request_type = event.get("RequestType")
    if request_type == "Delete":
        return response_body(event, "SUCCESS", "schema left in place on delete")
    if request_type not in ("Create", "Update"):
        return response_body(event, "FAILED", f"unknown RequestType {request_type!r}")
    try:
        revision = run_with_deadline(apply_migrations, seconds_left - RESPONSE_MARGIN_SECONDS)
    except Exception as exc:
        logger.exception("Migrations failed")
        return response_body(event, "FAILED", f"migrations failed: {type(exc).__name__}: {exc}")
    logger.info("Migrations applied", extra={"revision": revision})
    return response_body(event, "SUCCESS", f"schema at revision {revision}",
                         {"Revision": revision or ""})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.info("Custom resource request", extra={
        "request_type": event.get("RequestType"),
        "logical_resource_id": event.get("LogicalResourceId"),
    })
    body = handle(event, context.get_remaining_time_in_millis() / 1000)
    # A failed PUT raises: Lambda retries the (asynchronous) invocation, and migrating twice
    # is harmless.
    put_response(event["ResponseURL"], body)
    return body
