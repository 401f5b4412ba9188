"""Database credentials from a Secrets Manager secret (RDS format), as the functions get them in
AWS: DB_SECRET_ARN names the secret, DB_HOST (the RDS Proxy) and DB_NAME override its values.

Secrets Manager is moto's, in-process; the database is the session's real one. The embedded
server listens on a Unix socket only, so the secret's ``host`` is the socket folder (libpq
takes a directory as host). secrets.py adds ``sslmode=require``; libpq ignores sslmode on Unix
sockets (checked by the end-to-end tests passing), so the URL is the one AWS would get.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws
from sqlalchemy.engine import make_url

from jobworker.aws import runtime
from jobworker.aws.settings import ConfigError, load_settings
from tests.conftest import LambdaClient

PASSWORD = "s3cret-password-never-shown"  # the embedded server trusts local users: unused


class SecretsManager:
    """moto's Secrets Manager, and a count of the calls the code makes to AWS."""

    def __init__(self, client: Any, calls: Counter[str]) -> None:
        self.client = client
        self.calls = calls

    def store(self, value: dict[str, Any] | str) -> str:
        """Create a secret; returns its ARN."""
        text = value if isinstance(value, str) else json.dumps(value)
        created = self.client.create_secret(Name=f"jobworker/db-{uuid.uuid4().hex[:8]}",
                                            SecretString=text)
        return str(created["ARN"])


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsManager]:
    from aws_lambda_powertools.utilities import parameters

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    calls: Counter[str] = Counter()
    make_api_call = BaseClient._make_api_call

    def counting(client: BaseClient, operation: str, params: Any) -> Any:
        calls[operation] += 1
        return make_api_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    parameters.clear_caches()  # Powertools keeps fetched secrets per process
    with mock_aws():
        manager = SecretsManager(boto3.client("secretsmanager"), calls)
        yield manager
    parameters.clear_caches()


@pytest.fixture
def database(database_url: str) -> dict[str, Any]:
    """The session's test database, as the fields of an RDS secret."""
    url = make_url(database_url)
    host = url.host or url.query.get("host")
    if not isinstance(host, str) or not host.startswith("/"):
        pytest.skip("sslmode=require (set by secrets.py) needs TLS on a TCP server; these tests"
                    " use the embedded server's Unix socket, where libpq ignores sslmode")
    return {"engine": "postgres", "username": url.username or "postgres",
            "password": url.password or PASSWORD, "host": host, "port": url.port or 5432,
            "dbname": url.database}


@pytest.fixture
def secret_env(api: LambdaClient, monkeypatch: pytest.MonkeyPatch,
               secretsmanager: SecretsManager) -> Any:
    """Configure the handler like the template does: DB_SECRET_ARN, no DATABASE_URL."""

    def configure(secret_arn: str, **overrides: str) -> None:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        for name in ("DB_HOST", "DB_PORT", "DB_NAME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DB_SECRET_ARN", secret_arn)
        for name, value in overrides.items():
            monkeypatch.setenv(name, value)
        runtime.reset()

    return configure


def engine_url() -> Any:
    return runtime.get_engine().url


def test_secret__alone_is_enough_for_the_api_to_reach_the_database(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    secret_env(secretsmanager.store(database))
    answer = api("GET", "/health")
    assert answer.status == 200, answer.text
    assert answer.json == {"status": "ok", "database": "ok"}
    assert api("GET", "/jobs/stats").status == 200  # the migrated test database, not another


def test_secret__url_is_built_from_every_field_and_requires_tls(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
) -> None:
    secret_env(secretsmanager.store({"username": "app", "password": PASSWORD,
                                     "host": "db.cluster.internal", "port": 6543,
                                     "dbname": "queue"}))
    url = engine_url()
    assert (url.drivername, url.username, url.password) == ("postgresql+psycopg", "app", PASSWORD)
    assert (url.host, url.port, url.database) == ("db.cluster.internal", 6543, "queue")
    assert url.query["sslmode"] == "require"


def test_secret__host_override_points_at_the_proxy(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    unreachable = {**database, "host": "/nonexistent/jobworker-secret-host"}
    secret_env(secretsmanager.store(unreachable), DB_HOST=database["host"])
    assert api("GET", "/health").status == 200
    assert engine_url().host == database["host"]


def test_secret__dbname_override_picks_the_database(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    elsewhere = {**database, "dbname": "jobworker_no_such_database"}
    secret_env(secretsmanager.store(elsewhere), DB_NAME=database["dbname"])
    assert api("GET", "/jobs/stats").status == 200
    assert engine_url().database == database["dbname"]


def test_secret__empty_overrides_mean_the_secrets_own_values(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    """The template sets DB_HOST and DB_NAME to "" when no proxy or name is given."""
    secret_env(secretsmanager.store(database), DB_HOST="", DB_NAME="")
    assert api("GET", "/jobs/stats").status == 200
    url = engine_url()
    assert (url.host, url.database) == (database["host"], database["dbname"])


def test_secret__of_a_runtime_role__host_port_and_name_come_from_the_environment(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    """A runtime role's secret holds a username and password only (template.yaml's
    ApiDbSecret); DB_HOST, DB_PORT and DB_NAME say where, as the template sets them."""
    credentials = {key: database[key] for key in ("username", "password")}
    secret_env(secretsmanager.store(credentials), DB_HOST=str(database["host"]),
               DB_PORT=str(database["port"]), DB_NAME=database["dbname"])
    assert api("GET", "/jobs/stats").status == 200
    url = engine_url()
    assert (url.host, url.port, url.database) == (
        database["host"], int(database["port"]), database["dbname"])


def test_secret__missing_dbname_defaults_to_postgres(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    without = {key: value for key, value in database.items() if key != "dbname"}
    secret_env(secretsmanager.store(without))
    assert api("GET", "/health").status == 200
    assert engine_url().database == "postgres"


def test_secret__fetched_once_and_reused_across_invocations(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    secret_env(secretsmanager.store(database))
    for _ in range(3):
        assert api("GET", "/health").status == 200
    assert secretsmanager.calls["GetSecretValue"] == 1


def test_secret__rebuilt_engine_within_max_age_reads_the_cached_secret(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
    database: dict[str, Any],
) -> None:
    secret_env(secretsmanager.store(database))
    assert api("GET", "/health").status == 200
    runtime.reset()  # a new engine, as after settings change; Powertools' cache stays
    assert api("GET", "/health").status == 200
    assert secretsmanager.calls["GetSecretValue"] == 1


MALFORMED = {
    "not-json": "postgres://app:" + PASSWORD + "@db.internal/queue",
    "no-username": json.dumps({"password": PASSWORD, "host": "db.internal"}),
    "no-password": json.dumps({"username": "app", "host": "db.internal", "dbname": PASSWORD}),
    "json-list": json.dumps(["app", PASSWORD, "db.internal"]),
}


@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
def test_secret__malformed_answers_500_without_the_secret_value(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any, value: str,
) -> None:
    secret_env(secretsmanager.store(value))
    answer = api("GET", "/health")
    assert answer.status == 500
    assert set(answer.json) == {"error"}
    assert PASSWORD not in answer.text
    assert "db.internal" not in answer.text
    assert "Traceback" not in answer.text


@pytest.mark.parametrize("name", ["not-json", "no-username"])
def test_secret__malformed_is_reported_as_misconfigured(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any, name: str,
) -> None:
    """A secret the code cannot use is a deployment mistake, like a bad variable: the API
    has a ``misconfigured`` answer for that (ConfigError), not ``internal_error``."""
    secret_env(secretsmanager.store(MALFORMED[name]))
    answer = api("GET", "/health")
    assert (answer.status, answer.json["error"]["code"]) == (500, "misconfigured")


def test_secret__that_does_not_exist_is_reported_as_misconfigured(
    api: LambdaClient, secretsmanager: SecretsManager, secret_env: Any,
) -> None:
    secret_env("arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobworker/nothing-AbCdEf")
    answer = api("GET", "/health")
    assert (answer.status, answer.json["error"]["code"]) == (500, "misconfigured")


def test_config__no_database_configured_names_both_variables() -> None:
    with pytest.raises(ConfigError) as raised:
        runtime.database_url(load_settings({}))
    assert "DATABASE_URL" in str(raised.value)
    assert "DB_SECRET_ARN" in str(raised.value)


def test_config__empty_secret_arn_counts_as_not_configured() -> None:
    with pytest.raises(ConfigError, match="DB_SECRET_ARN"):
        runtime.database_url(load_settings({"DB_SECRET_ARN": ""}))


def test_config__no_database_configured_answers_500_misconfigured(
    api: LambdaClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    runtime.reset()
    answer = api("GET", "/health")
    assert answer.status == 500
    assert answer.json["error"]["code"] == "misconfigured"


@pytest.fixture
def stubbed_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Powertools' secrets provider on a client whose answers botocore's Stubber gives."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    parameters.clear_caches()
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    monkeypatch.setitem(base.DEFAULT_PROVIDERS, "secrets",
                        parameters.SecretsProvider(boto3_client=client))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name in ("DB_HOST", "DB_PORT", "DB_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_SECRET_ARN", ARN)
    runtime.reset()
    with Stubber(client) as stubber:
        yield stubber
    parameters.clear_caches()


ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jobworker/db-AbCdEf"


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServiceError"])
def test_secret__throttled_is_503_with_retry_after_then_recovers(
    api: LambdaClient, stubbed_secrets: Any, database: dict[str, Any], code: str,
) -> None:
    """Secrets Manager saying "not now" is an outage to wait out, not a deployment mistake."""
    stubbed_secrets.add_client_error("get_secret_value", service_error_code=code,
                                     service_message="Rate exceeded", http_status_code=400)
    throttled = api("GET", "/health")
    stubbed_secrets.add_response("get_secret_value", {
        "ARN": ARN, "Name": "jobworker/db", "SecretString": json.dumps(database)})
    recovered = api("GET", "/health")

    assert throttled.status == 503, throttled.text
    assert throttled.json["error"]["code"] == "secret_unavailable"
    assert throttled.headers["Retry-After"].isdigit()
    assert "Rate exceeded" not in throttled.text
    assert recovered.status == 200, recovered.text


def test_secret__access_denied_stays_misconfigured(
    api: LambdaClient, stubbed_secrets: Any,
) -> None:
    stubbed_secrets.add_client_error("get_secret_value", service_error_code="AccessDeniedException",
                                     http_status_code=400)
    answer = api("GET", "/health")
    assert (answer.status, answer.json["error"]["code"]) == (500, "misconfigured")
