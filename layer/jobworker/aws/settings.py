"""Settings from environment variables, validated once per process (once per Lambda cold start).

The seed's knobs keep their names: ``POLL_INTERVAL``, ``JOB_TIMEOUT_MINUTES`` and
``ENABLE_ORPHAN_RECOVERY``. A bad value stops the process with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Json,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from jobworker.problems import field_problems
from jobworker.queue import (
    DEFAULT_BACKOFF_BASE_SECONDS,
    DEFAULT_BACKOFF_CAP_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
)
from jobworker.queue.errors import JobworkerError

# The poller holds one connection for its work and its heartbeat thread another: with one,
# the heartbeat waits for the work's connection and leases expire under a healthy worker.
MIN_DB_POOL_SIZE = 2


class ConfigError(JobworkerError):
    """An environment variable has a value the service cannot run with."""


class Settings(BaseModel):
    """Every field is read from the environment variable of the same name, upper-cased."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The seed's knobs.
    poll_interval: float = Field(
        5.0, gt=0, le=300, description="Longest wait between polls when idle"
    )
    job_timeout_minutes: int = Field(30, ge=1, le=24 * 60)
    enable_orphan_recovery: bool = True

    # Queue behaviour.
    batch_size: int = Field(1000, ge=1, le=5000, description="Most jobs one claim takes")
    lease_seconds: float = Field(60.0, ge=1, le=3600)
    max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    backoff_base_seconds: float = Field(DEFAULT_BACKOFF_BASE_SECONDS, ge=0, le=3600)
    backoff_cap_seconds: float = Field(DEFAULT_BACKOFF_CAP_SECONDS, ge=0, le=86400)
    retention_days: int = Field(
        14, ge=1, le=3650, description="Finished jobs older than this are pruned"
    )
    route_retention_days: int = Field(
        90, ge=1, le=3650,
        description="Route groups older than this are pruned once their job has been",
    )
    poller_idle_exit_seconds: float = Field(
        0.0, ge=0, le=900, description="End an invocation after this long without work; 0: never"
    )
    safety_margin_seconds: float = Field(
        10.0, ge=0, le=300, description="Most time kept back from the Lambda's limit"
    )

    # Database.
    database_url: SecretStr | None = None
    db_secret_arn: str | None = None
    db_host: str | None = Field(None, description="Overrides the secret's host, e.g. the RDS Proxy")
    db_port: int | None = Field(None, ge=1, le=65535, description="Overrides the secret's port")
    db_name: str | None = None
    # Off by default: behind RDS Proxy or PgBouncer (transaction mode) they cannot be shared.
    # With a direct connection they may be turned on: every statement's cached generic plan
    # is checked in tests (tests/test_query_plans.py).
    db_disable_prepared_statements: bool = True
    db_pool_size: int = Field(
        MIN_DB_POOL_SIZE, le=50, description="Connections per process: the work, plus the heartbeat"
    )
    # Limits on database work, set per role when a connection opens (jobworker.aws.timeouts);
    # 0 turns one off. A lock wait or a half-open connection never eats a whole invocation.
    db_statement_timeout_seconds: float = Field(
        30.0, ge=0, le=900, description="Longest statement of the poller and the sweeper"
    )
    db_api_statement_timeout_seconds: float = Field(
        10.0, ge=0, le=28, description="Longest statement of the API (API Gateway waits 29 s)"
    )
    db_lock_timeout_seconds: float = Field(
        5.0, ge=0, le=900, description="Longest wait for a lock (API, poller, sweeper)"
    )
    db_idle_in_transaction_timeout_seconds: float = Field(
        60.0, ge=0, le=3600, description="A session idle inside a transaction this long is ended"
    )
    db_keepalives_idle_seconds: int = Field(
        30, ge=1, le=3600, description="TCP keepalives start after this long without traffic"
    )
    migration_lock_timeout_seconds: float = Field(
        10.0, ge=0, le=900, description="Longest wait of a migration for a lock on a table"
    )
    migration_statement_timeout_seconds: float = Field(
        600.0, ge=0, le=3600, description="Longest statement of a migration"
    )
    # TLS (libpq's sslmode): the template asks for verify-full; unset leaves the URL's own.
    db_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca",
                        "verify-full"] | None = None
    db_sslrootcert: str | None = Field(
        None, description="CA bundle that signs the server's certificate; default: the "
                          "bundle the layer ships (jobworker/aws/certs/rds-ca-bundle.pem)")
    # Migration function only: {"role": "secret ARN"} of the runtime roles whose passwords
    # it sets (each function connects with its own secret).
    runtime_role_secrets: Json[dict[str, str]] | None = None

    # API.
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=6 * 1024 * 1024)
    poller_function_name: str | None = Field(None, description="Poller to kick after an enqueue")
    tile_url: str | None = Field(
        None, max_length=500, pattern=r"^$|^https://[^\s]*\{z\}[^\s]*\{x\}[^\s]*\{y\}[^\s]*$",
        description="Map tiles for the dashboard, e.g. https://tile.example/{z}/{x}/{y}.png;"
        " none: plain background")
    poller_memory_mb: int = Field(1769, ge=128, le=10240,
                                  description="The poller's memory: route jobs larger are refused")

    @field_validator("db_pool_size")
    @classmethod
    def _pool_holds_the_heartbeat(cls, value: int) -> int:
        if value < MIN_DB_POOL_SIZE:
            raise ValueError(
                f"must be at least {MIN_DB_POOL_SIZE}: the poller's heartbeat needs a connection"
                " of its own beside the one its jobs use, or leases expire while jobs run")
        return value

    # Travel times (route jobs). TRAVEL_PROVIDER is used when a request names none.
    travel_provider: str = Field(
        "haversine", pattern=r"^[a-z][a-z0-9-]{0,39}$",
        description="haversine, osrm, osrm-http or amazon-location",
    )
    osrm_data: str | None = Field(
        None, description="OSRM datasets: a folder (local, EFS mount) or s3://bucket/prefix"
    )
    osrm_cache_dir: str = Field(
        "/tmp/jobworker-osrm", description="Where datasets from S3 are copied"  # noqa: S108
    )
    osrm_snap_radius_m: float = Field(500.0, gt=0, le=100_000)
    osrm_http_url: str | None = Field(
        None, description="A user's OSRM server: URL, or car=URL,bicycle=URL"
    )
    osrm_http_timeout_seconds: float = Field(10.0, gt=0, le=300)
    osrm_http_retries: int = Field(2, ge=0, le=10)
    osrm_http_max_table_size: int = Field(100, ge=2, le=100_000)
    location_routing_boundary: str = Field("auto", pattern="^(auto|unbounded)$")
    location_region: str | None = None
    location_endpoint_url: str | None = None

    def travel_options(self, provider: str) -> dict[str, Any]:
        """The deployment's options for a travel provider (requests may add safe ones)."""
        options: dict[str, dict[str, Any]] = {
            "osrm": {"data": self.osrm_data, "cache_dir": self.osrm_cache_dir,
                     "snap_radius_m": self.osrm_snap_radius_m},
            "osrm-http": {"url": self.osrm_http_url,
                          "timeout_seconds": self.osrm_http_timeout_seconds,
                          "retries": self.osrm_http_retries,
                          "max_table_size": self.osrm_http_max_table_size,
                          "snap_radius_m": self.osrm_snap_radius_m},
            "amazon-location": {"routing_boundary": self.location_routing_boundary,
                                "region": self.location_region,
                                "endpoint_url": self.location_endpoint_url},
        }
        return {k: v for k, v in options.get(provider, {}).items() if v is not None}

    @model_validator(mode="after")
    def _backoff_is_ordered(self) -> Settings:
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise ValueError("BACKOFF_CAP_SECONDS must be >= BACKOFF_BASE_SECONDS")
        return self


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the environment; raise ConfigError naming every bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {
        name: environ[name.upper()] for name in Settings.model_fields if name.upper() in environ
    }
    values.update(overrides)
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for problem in field_problems(exc.errors(), separator="_"):
            shown = "" if isinstance(problem.input, dict) else f" (got {problem.input!r})"
            problems.append(f"{problem.field.upper() or 'settings'}: {problem.message}{shown}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
