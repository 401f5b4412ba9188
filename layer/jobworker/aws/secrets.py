"""Database credentials from AWS Secrets Manager (the RDS secret format), cached per container.

The secret is read through Powertools Parameters (cached ``SECRET_MAX_AGE_SECONDS``). Every new
connection asks for it again, so after a password rotation fresh connections pick up the new
password within that time, without a redeploy or a cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobworker.aws.settings import ConfigError
from jobworker.queue.errors import JobworkerError

if TYPE_CHECKING:  # SQLAlchemy loads on first use: the API's error table imports this module
    from sqlalchemy.engine import URL, Engine

SECRET_MAX_AGE_SECONDS = 300
# Answers that say "not now", not "not like this": retry later, do not page about the config.
TRANSIENT_ERROR_CODES = frozenset({
    "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
    "InternalServiceError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
})


class SecretUnavailable(JobworkerError):
    """Secrets Manager did not answer this time (throttled, its own fault, unreachable)."""


def is_transient(exc: BaseException | None) -> bool:
    """True for a Secrets Manager failure that may pass: throttling, a 5xx, no connection."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as NoConnection

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_ERROR_CODES or status >= 500
    return isinstance(exc, NoConnection | HTTPClientError)


def read_secret(secret_arn: str) -> dict[str, Any]:
    """The secret as a dict with at least username and password; ConfigError otherwise."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import (
        GetParameterError,
        TransformParameterError,
    )

    try:
        secret: Any = parameters.get_secret(
            secret_arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS
        )
    except TransformParameterError:
        raise ConfigError(f"DB_SECRET_ARN: secret {secret_arn} is not JSON") from None
    except GetParameterError as exc:
        # Powertools re-raises whatever the SDK raised inside its except block: that is the
        # context of the error, and it decides between "retry later" and "misconfigured".
        if is_transient(exc.__context__):
            raise SecretUnavailable(f"cannot read secret {secret_arn} right now: "
                                    f"{exc.__context__}") from exc.__context__
        raise ConfigError(f"DB_SECRET_ARN: cannot read secret {secret_arn}: {exc}") from None
    if not isinstance(secret, dict) or "username" not in secret or "password" not in secret:
        raise ConfigError(
            f"DB_SECRET_ARN: secret {secret_arn} is not a JSON object with username and password"
        )
    return secret


def database_url_from_secret(secret_arn: str, *, host: str | None = None,
                             port: int | None = None, database: str | None = None) -> URL:
    """Build the URL from an RDS-style secret: username, password, host, port, dbname.

    ``host`` overrides the secret's host (point it at the RDS Proxy endpoint), ``port`` and
    ``database`` its port and dbname; empty values mean "use the secret's". The runtime roles'
    secrets hold only username and password: the template gives all three.
    """
    from sqlalchemy.engine import URL

    secret = read_secret(secret_arn)
    return URL.create(
        "postgresql+psycopg",
        username=secret["username"],
        password=secret["password"],
        host=host or secret.get("host"),
        port=port or int(secret.get("port", 5432)),
        database=database or secret.get("dbname") or "postgres",
        query={"sslmode": "require"},
    )


def follow_rotation(engine: Engine, secret_arn: str) -> None:
    """Give each new connection the secret's current username and password."""
    from sqlalchemy import event

    @event.listens_for(engine, "do_connect")
    def _fresh_credentials(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        secret = read_secret(secret_arn)
        cparams["user"] = secret["username"]
        cparams["password"] = secret["password"]
