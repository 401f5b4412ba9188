"""What one poller invocation is asked to do; its defaults are the settings' defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobworker.aws.settings import Settings


def _default(name: str) -> Any:
    """The default of a setting, defined once, in ``Settings``."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class PollerOptions:
    owner: str
    batch_size: int = _default("batch_size")
    lease_seconds: float = _default("lease_seconds")
    poll_interval: float = _default("poll_interval")
    job_timeout_seconds: float = _default("job_timeout_minutes") * 60
    backoff_base_seconds: float = _default("backoff_base_seconds")
    backoff_cap_seconds: float = _default("backoff_cap_seconds")
    min_start_seconds: float = 0.05
    idle_exit_seconds: float = _default("poller_idle_exit_seconds")  # 0: until the budget ends

    @classmethod
    def from_settings(cls, settings: Settings, *, owner: str) -> PollerOptions:
        return cls(
            owner=owner,
            batch_size=settings.batch_size,
            lease_seconds=settings.lease_seconds,
            poll_interval=settings.poll_interval,
            job_timeout_seconds=settings.job_timeout_minutes * 60,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_cap_seconds=settings.backoff_cap_seconds,
            idle_exit_seconds=settings.poller_idle_exit_seconds,
        )
