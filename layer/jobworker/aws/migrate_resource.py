"""CloudFormation custom resource ``Custom::Migrations``: apply schema migrations on deploy.

Create and Update bring the schema to the newest revision (``jobworker.queue.schema``, idempotent);
Delete leaves the database alone. Whatever happens, CloudFormation gets an answer on the
pre-signed ``ResponseURL``, SUCCESS or FAILED with the reason, so a stack never waits an
hour for a response that will not come: a migration still running shortly before the Lambda's
time runs out is reported as FAILED, after its transaction has been stopped (nothing of it
stays locked).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jobworker.aws.settings import Settings

logger = Logger()

PHYSICAL_RESOURCE_ID = "jobworker-schema"
RESPONSE_TIMEOUT_SECONDS = 15.0
# Time kept back from the Lambda's limit to send the answer.
RESPONSE_MARGIN_SECONDS = 20.0
MAX_REASON_CHARS = 1000  # CloudFormation accepts a response body of at most 4 KB
# How long a cancelled (then terminated) migration gets to roll back and let go of its locks.
STOP_GRACE_SECONDS = 2.0


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


class MigrationRun:
    """One migration in a thread, bounded by a deadline that the database enforces too.

    The migration's transaction gets a statement limit that ends at the deadline, so even a
    frozen or killed Lambda leaves nothing locked for long. When the deadline passes while it
    still runs (waiting for a lock, say), a second connection cancels its backend, and
    terminates it if the cancel is not enough (a backend idle in its transaction between two
    statements ignores a cancel): the transaction rolls back and its locks, the advisory one
    included, are released before CloudFormation is told FAILED.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = max(seconds, 0.0)
        self.clock = clock
        self.backend: int | None = None
        self.outcome: dict[str, Any] = {}

    def run(self) -> str | None:
        from jobworker.aws.runtime import get_engine, get_settings

        config = get_settings()
        engine = get_engine("migration")
        deadline = self.clock() + self.seconds
        thread = threading.Thread(target=self._migrate, args=(engine, config, deadline),
                                  name="migrate", daemon=True)
        thread.start()
        thread.join(self.seconds)
        if thread.is_alive():
            self._stop(engine, thread)
            raise DeadlineExceeded(
                f"migrations did not finish within {self.seconds:.0f} s; their transaction "
                "was rolled back and the next deploy tries again")
        if "error" in self.outcome:
            raise self.outcome["error"]
        if "revision" not in self.outcome:
            raise RuntimeError("migrations stopped without a result")
        revision: str | None = self.outcome["revision"]
        return revision

    def _migrate(self, engine: Engine, config: Settings, deadline: float) -> None:
        from jobworker.queue.schema import MigrationLimits, migrate

        def on_backend(pid: int) -> None:
            self.backend = pid

        # The database's own limit comes just after the deadline: the cancel below acts
        # first, and the limit still ends the transaction if this process dies before it.
        left = max(deadline - self.clock(), 0.0) + STOP_GRACE_SECONDS
        statement = config.migration_statement_timeout_seconds
        limits = MigrationLimits(
            statement_seconds=min(statement, left) if statement > 0 else left,
            lock_seconds=config.migration_lock_timeout_seconds,
            on_backend=on_backend,
        )
        try:
            revision = migrate(engine, limits=limits)  # creates the runtime roles
            set_runtime_passwords(engine, config.runtime_role_secrets or {})
            self.outcome["revision"] = revision
        except Exception as exc:
            self.outcome["error"] = exc

    def _stop(self, engine: Engine, thread: threading.Thread) -> None:
        """Cancel the migration's backend, then terminate it if the cancel did not end it."""
        from sqlalchemy import text

        if self.backend is None:
            return  # not connected yet: nothing of it holds a lock (its connect times out)
        for signal in ("pg_cancel_backend", "pg_terminate_backend"):
            try:
                with engine.connect() as conn:
                    conn.execute(text(f"SELECT {signal}(:pid)"), {"pid": self.backend})
                    conn.commit()
            except Exception:
                logger.exception("Could not stop the migration's backend",
                                 extra={"backend": self.backend, "call": signal})
            thread.join(STOP_GRACE_SECONDS)
            if not thread.is_alive():
                logger.warning("Migration stopped at its deadline",
                               extra={"backend": self.backend, "call": signal})
                return


def apply_migrations(seconds: float) -> str | None:
    """Migrate the configured database within ``seconds``; returns the revision it is at."""
    return MigrationRun(seconds).run()


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
        revision = apply_migrations(seconds_left - RESPONSE_MARGIN_SECONDS)
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
