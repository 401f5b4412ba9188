"""Settings from environment variables, validated once per process (once per Lambda cold start).

The seed's knobs keep their names: ``POLL_INTERVAL``, ``JOB_TIMEOUT_MINUTES`` and
``ENABLE_ORPHAN_RECOVERY``. A bad value stops the process with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from jobworker.queue.errors import JobworkerError
from jobworker.queue.problems import field_problems


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
    batch_size: int = Field(10, ge=1, le=5000, description="Most jobs one claim takes")
    lease_seconds: float = Field(60.0, ge=1, le=3600)
    max_attempts: int = Field(3, ge=1, le=100)
    backoff_base_seconds: float = Field(5.0, ge=0, le=3600)
    backoff_cap_seconds: float = Field(300.0, ge=0, le=86400)
    retention_days: int = Field(
        14, ge=1, le=3650, description="Finished jobs older than this are pruned"
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
    db_name: str | None = None
    # Off by default: behind RDS Proxy or PgBouncer (transaction mode) they cannot be shared.
    # With a direct connection they may be turned on: every statement's cached generic plan
    # is checked in tests (tests/test_query_plans.py).
    db_disable_prepared_statements: bool = True
    db_pool_size: int = Field(
        2, ge=1, le=50, description="Connections per process: the work, plus the heartbeat"
    )

    # API.
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024, le=6 * 1024 * 1024)
    poller_function_name: str | None = Field(None, description="Poller to kick after an enqueue")
    tile_url: str | None = Field(
        None, max_length=500, pattern=r"^$|^https://[^\s]*\{z\}[^\s]*\{x\}[^\s]*\{y\}[^\s]*$",
        description="Map tiles for the dashboard, e.g. https://tile.example/{z}/{x}/{y}.png;"
        " none: plain background")

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
