"""Database credentials from AWS Secrets Manager (the RDS secret format), cached per container."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL

SECRET_MAX_AGE_SECONDS = 300


def database_url_from_secret(secret_arn: str, *, host: str | None = None,
                             database: str | None = None) -> URL:
    """Build the URL from an RDS-style secret: username, password, host, port, dbname.

    ``host`` overrides the secret's host (point it at the RDS Proxy endpoint).
    """
    from aws_lambda_powertools.utilities import parameters

    secret: Any = parameters.get_secret(
        secret_arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS
    )
    if not isinstance(secret, dict) or "username" not in secret or "password" not in secret:
        raise ValueError(f"secret {secret_arn} is not a JSON object with username and password")
    return URL.create(
        "postgresql+psycopg",
        username=secret["username"],
        password=secret["password"],
        host=host or secret.get("host"),
        port=int(secret.get("port", 5432)),
        database=database or secret.get("dbname") or "postgres",
        query={"sslmode": "require"},
    )
