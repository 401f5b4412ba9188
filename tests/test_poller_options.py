"""The poller's options come from the settings, whose defaults are defined once."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.settings import ConfigError, Settings, load_settings
from jobworker.poller.options import PollerOptions


def test_options__from_settings_carries_every_knob() -> None:
    settings = load_settings({"BATCH_SIZE": "7", "LEASE_SECONDS": "12", "POLL_INTERVAL": "2",
                              "JOB_TIMEOUT_MINUTES": "3", "BACKOFF_BASE_SECONDS": "1",
                              "BACKOFF_CAP_SECONDS": "9", "POLLER_IDLE_EXIT_SECONDS": "4"})
    options = PollerOptions.from_settings(settings, owner="poller:abc")
    assert asdict(options) == {
        "owner": "poller:abc", "batch_size": 7, "lease_seconds": 12.0, "poll_interval": 2.0,
        "job_timeout_seconds": 180, "backoff_base_seconds": 1.0, "backoff_cap_seconds": 9.0,
        "min_start_seconds": 0.05, "idle_exit_seconds": 4.0}


def test_options__defaults_are_the_settings_defaults() -> None:
    assert PollerOptions(owner="x") == PollerOptions.from_settings(load_settings({}), owner="x")


def test_defaults__the_queue_settings_and_schema_agree(engine: Engine) -> None:
    """max_attempts and the backoff are the queue's constants; migration 0001 wrote the
    same max_attempts into the schema as the column default."""
    fields = Settings.model_fields
    assert fields["max_attempts"].default == queue.DEFAULT_MAX_ATTEMPTS
    assert fields["backoff_base_seconds"].default == queue.DEFAULT_BACKOFF_BASE_SECONDS
    assert fields["backoff_cap_seconds"].default == queue.DEFAULT_BACKOFF_CAP_SECONDS
    assert queue.NewJob().max_attempts == queue.DEFAULT_MAX_ATTEMPTS
    with engine.connect() as conn:
        schema_default = conn.execute(text(
            "SELECT column_default FROM information_schema.columns"
            " WHERE table_name = 'jobs' AND column_name = 'max_attempts'")).scalar_one()
    assert int(schema_default) == queue.DEFAULT_MAX_ATTEMPTS


@pytest.mark.parametrize("size", ["0", "1"])
def test_settings__a_pool_too_small_for_the_heartbeat_is_refused(size: str) -> None:
    with pytest.raises(ConfigError, match=r"DB_POOL_SIZE: .*at least 2: the poller's heartbeat"):
        load_settings({"DB_POOL_SIZE": size})


def test_settings__a_pool_of_two_is_enough() -> None:
    assert load_settings({"DB_POOL_SIZE": "2"}).db_pool_size == 2
