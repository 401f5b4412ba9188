"""What a user who changes nothing runs: the template's defaults are the settings' defaults."""

from __future__ import annotations

from pathlib import Path

from jobworker.aws.settings import Settings
from jobworker.poller.estimate import CLAIM_HORIZON_SECONDS, DurationEstimate

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


def _template_default(parameter: str) -> str:
    lines = TEMPLATE.read_text().splitlines()
    start = lines.index(f"  {parameter}:")
    for line in lines[start + 1:]:
        if line.strip().startswith("Default:"):
            return line.split(":", 1)[1].strip().strip('"')
    raise AssertionError(f"{parameter} has no default")


def test_template_batch_size_default__is_the_settings_default() -> None:
    assert int(_template_default("BatchSize")) == Settings.model_fields["batch_size"].default


def test_claim_limit__claims_a_batch_of_short_jobs_and_one_long_job_at_a_time() -> None:
    short, long = DurationEstimate(), DurationEstimate()
    short.record("noop", 0.0001)
    long.record("generate_routes", 10.0)

    assert short.claim_limit(seconds_left=100.0, batch_size=1000) == 1000
    assert long.claim_limit(seconds_left=100.0, batch_size=1000) == 1
    assert short.claim_limit(seconds_left=0.01, batch_size=1000) == 100  # what fits in time
    assert CLAIM_HORIZON_SECONDS <= 1.0
