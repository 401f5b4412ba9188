"""What a request may set under ``settings.travel`` for each travel provider, and its bounds.

Pydantic only (the API validates every request with these): a provider's module loads numpy
and its engine, so its options are described here, next to the names of every provider the
code knows. Each provider reads exactly the fields of its model and nothing else a request
sends; the bounds are what a real deployment can have, so a value that validates cannot make
a job divide by zero, overflow, or spin in a loop that never advances.

Where the data or the server is (``data``, ``url``, ``region``, ...) belongs to the deployment,
and a value the request states elsewhere (``settings.speed_kmh``, the ``matrix``) is not
stated twice: the API's up-front checks read the same field the job plans with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_SNAP_RADIUS_M = 100_000.0  # as OSRM_SNAP_RADIUS_M: a stop 100 km off the roads is an error
MIN_SNAP_RADIUS_M = 1.0  # below a metre no geocoded stop is on a road
MAX_ROWS_PER_CALL = 10_000  # more than a request has points (5,000 stops, 100 depots, ...)
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS = 0.1, 300.0  # as OSRM_HTTP_TIMEOUT_SECONDS
MAX_RETRIES = 10  # as OSRM_HTTP_RETRIES
MAX_BACKOFF_SECONDS = 60.0  # the first pause; it doubles per attempt (the deadline caps it)
MIN_TABLE_SIZE, MAX_TABLE_SIZE = 2, 100_000  # as OSRM_HTTP_MAX_TABLE_SIZE
MIN_ROUTE_POINTS, MAX_ROUTE_POINTS = 2, 100_000  # a route request has at least one leg
MAX_MARGIN_M = 200_000.0  # half the 400 km boundary diagonal: any wider is always unbounded

# Keys a request may not send: set by the deployment (a request naming a path or a URL could
# read the poller's files or reach hosts inside its network), or stated by another field that
# the API's feasibility checks read (two speeds would plan on one and check the other).
DEPLOYMENT_OPTIONS = frozenset({"data", "cache_dir", "url", "urls", "endpoint_url", "region",
                                "client"})
STATED_ELSEWHERE = {
    "speed_kmh": "settings.speed_kmh",
    "order": "matrix.order", "durations": "matrix.durations",
    "distances": "matrix.distances", "ids": "matrix.order",
}


def _refusal(key: str, value: Any, reads: list[str]) -> InitErrorDetails:
    """Why a request may not send ``key`` to a provider that reads ``reads``."""
    if key in DEPLOYMENT_OPTIONS:
        error = PydanticCustomError("deployment_option",
                                    "set by the deployment (its settings), not by a request")
    elif key in STATED_ELSEWHERE:
        error = PydanticCustomError(
            "stated_elsewhere", "give it as {field}: the API's checks and the job both read "
            "that one", {"field": STATED_ELSEWHERE[key]})
    else:
        error = PydanticCustomError(
            "unknown_option", "not an option of this provider (it reads: {reads})",
            {"reads": ", ".join(reads) or "none"})
    return InitErrorDetails(type=error, loc=(key,), input=value)


class ProviderOptions(BaseModel):
    """A provider's request options: none, unless a subclass names them. Every field is
    optional; one left out is the deployment's setting, or else the provider's default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _not_the_requests_to_set(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        reads = list(cls.model_fields)
        refused = [_refusal(str(key), value, reads) for key, value in data.items()
                   if key not in reads]
        if refused:
            # pydantic-core keeps a ValidationError's own locations (each refused key) under
            # the location being validated (settings.travel): the 422 names each key.
            raise ValidationError.from_exception_data(cls.__name__, refused)
        return data

    def stated(self) -> dict[str, Any]:
        """The options the request gave, validated (a provider's factory reads these)."""
        return self.model_dump(exclude_unset=True)


_SNAP_RADIUS: Any = Field(default=None, ge=MIN_SNAP_RADIUS_M, le=MAX_SNAP_RADIUS_M,
                          description="How far a stop may be from a road (m); default 500")


class OsrmOptions(ProviderOptions):
    """``osrm``: OSRM's engine in the poller (jobworker.routes.providers.osrm)."""

    snap_radius_m: float | None = _SNAP_RADIUS
    rows_per_call: int | None = Field(default=None, ge=1, le=MAX_ROWS_PER_CALL,
                                      description="Table rows per engine call; the deadline "
                                                  "is checked between calls")


class OsrmHttpOptions(ProviderOptions):
    """``osrm-http``: a user's OSRM server (jobworker.routes.providers.osrm_http)."""

    snap_radius_m: float | None = _SNAP_RADIUS
    timeout_seconds: float | None = Field(default=None, ge=MIN_TIMEOUT_SECONDS,
                                          le=MAX_TIMEOUT_SECONDS)
    retries: int | None = Field(default=None, ge=0, le=MAX_RETRIES)
    backoff_seconds: float | None = Field(default=None, ge=0, le=MAX_BACKOFF_SECONDS)
    max_table_size: int | None = Field(default=None, ge=MIN_TABLE_SIZE, le=MAX_TABLE_SIZE,
                                       description="At most the server's --max-table-size")
    max_route_points: int | None = Field(default=None, ge=MIN_ROUTE_POINTS, le=MAX_ROUTE_POINTS,
                                         description="At most the server's --max-viaroute-size")


class AmazonLocationOptions(ProviderOptions):
    """``amazon-location`` (jobworker.routes.providers.amazon_location)."""

    routing_boundary: Literal["auto", "unbounded"] | None = None
    margin_m: float | None = Field(default=None, ge=0, le=MAX_MARGIN_M)
    geometry: StrictBool | None = Field(default=None,
                                        description="false: straight lines on the map")


# Every provider the code knows, built in or registered (travel.register_provider), and what
# a request may set for it. haversine and matrix take nothing beyond the request's own fields.
_OPTIONS: dict[str, type[ProviderOptions]] = {
    "haversine": ProviderOptions,
    "matrix": ProviderOptions,
    "osrm": OsrmOptions,
    "osrm-http": OsrmHttpOptions,
    "amazon-location": AmazonLocationOptions,
}


def register_options(name: str, options: type[ProviderOptions]) -> None:
    _OPTIONS[name] = options


def known_providers() -> list[str]:
    return sorted(_OPTIONS)


def options_model(name: str) -> type[ProviderOptions] | None:
    """What a request may set for provider ``name``; None when no provider has that name."""
    return _OPTIONS.get(name)


def check_provider_name(name: str | None) -> str | None:
    """``name`` when the code knows a provider of that name (ValueError otherwise)."""
    if name is not None and name not in _OPTIONS:
        raise ValueError(f"unknown travel provider {name!r} (known: "
                         f"{', '.join(known_providers())})")
    return name
