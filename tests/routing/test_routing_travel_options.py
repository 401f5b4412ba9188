"""settings.travel options: each provider reads only what its options model validated, what
the deployment sets, or what another field of the request states."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from jobworker.routes import travel
from jobworker.routes import travel_options as t
from jobworker.routes.models import TravelSettings

# Enough deployment (and request) values for every factory to build its provider.
DEPLOYMENT: dict[str, Any] = {"data": "/nowhere", "url": "http://127.0.0.1:9",
                              "client": object(), "order": [], "durations": [], "ids": []}


class ReadRecorder(dict[str, Any]):
    """A provider's options that note every key its factory looks at."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a factory reads options by name")


@pytest.mark.parametrize("name", ["haversine", "matrix", "osrm", "osrm-http", "amazon-location"])
def test_provider_options__every_key_a_factory_reads_is_validated_or_not_the_requests(
    name: str,
) -> None:
    options = ReadRecorder(dict(DEPLOYMENT))
    travel.provider_for(name, options)
    assert options.read, "every factory reads some option"
    model = t.options_model(name)
    assert model is not None
    unchecked = options.read - set(model.model_fields) - t.DEPLOYMENT_OPTIONS
    assert unchecked <= set(t.STATED_ELSEWHERE), unchecked


def test_provider_options__every_provider_the_code_knows_has_a_model() -> None:
    assert {"haversine", "matrix", *travel._ROAD_PROVIDERS} <= set(t.known_providers())


@pytest.mark.parametrize(("name", "stated", "attributes"), [
    ("osrm", {"snap_radius_m": t.MAX_SNAP_RADIUS_M, "rows_per_call": t.MAX_ROWS_PER_CALL},
     {"snap_radius_m": t.MAX_SNAP_RADIUS_M, "rows_per_call": t.MAX_ROWS_PER_CALL}),
    ("osrm-http", {"timeout_seconds": t.MIN_TIMEOUT_SECONDS, "retries": t.MAX_RETRIES,
                   "backoff_seconds": t.MAX_BACKOFF_SECONDS, "max_table_size": t.MIN_TABLE_SIZE,
                   "max_route_points": t.MIN_ROUTE_POINTS, "snap_radius_m": t.MIN_SNAP_RADIUS_M},
     {"timeout_seconds": t.MIN_TIMEOUT_SECONDS, "retries": t.MAX_RETRIES,
      "backoff_seconds": t.MAX_BACKOFF_SECONDS, "max_table_size": t.MIN_TABLE_SIZE,
      "max_route_points": t.MIN_ROUTE_POINTS, "snap_radius_m": t.MIN_SNAP_RADIUS_M}),
    ("amazon-location", {"routing_boundary": "unbounded", "margin_m": t.MAX_MARGIN_M,
                         "geometry": False},
     {"boundary": "unbounded", "margin_m": t.MAX_MARGIN_M, "geometry": False}),
])
def test_provider_options__at_their_bounds__reach_the_provider(
    name: str, stated: dict[str, Any], attributes: dict[str, Any],
) -> None:
    options = TravelSettings.model_validate({"provider": name, **stated}).options()

    provider = travel.provider_for(name, {**DEPLOYMENT, **options})

    assert {key: getattr(provider, key) for key in attributes} == attributes


def test_travel_settings__options_are_the_validated_values_the_request_stated() -> None:
    settings = TravelSettings.model_validate({"provider": "osrm", "rows_per_call": "20"})

    assert settings.options() == {"rows_per_call": 20}


def test_travel_settings__a_registered_provider_takes_no_options_unless_it_says() -> None:
    travel.register_provider("test-roads", lambda options: travel.HaversineProvider())
    try:
        TravelSettings.model_validate({"provider": "test-roads"})
        with pytest.raises(ValidationError, match="not an option of this provider"):
            TravelSettings.model_validate({"provider": "test-roads", "snap_radius_m": 5})
    finally:
        travel._PROVIDERS.pop("test-roads")
        t._OPTIONS.pop("test-roads")
