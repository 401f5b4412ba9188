"""The input of route generation: what ``POST /jobs/generate`` accepts and a job's payload holds.

Pydantic only (no numpy, no PyVRP): the API validates request bodies with these models on every
call, so importing them must stay cheap. Times are minutes from the start of the first day
(0 = midnight), up to seven days; distances come later from the coordinates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MINUTES_PER_DAY = 1440
HORIZON_MINUTES = 7 * MINUTES_PER_DAY
MAX_LOCATIONS = 5000
MAX_VEHICLES = 1000
MAX_QUANTITY = 1_000_000_000  # demand and capacity bound: totals stay far inside int64
MAX_SEED = 2**32 - 1  # PyVRP's random number generator takes a 32-bit seed

# A model config shared by every input: unknown keys are typos we want to report, and NaN or
# infinity never make sense as a coordinate, a time or a speed.
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


def _name_some(names: Iterable[str], limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, c and 7 more``: messages stay short on big inputs."""
    items = list(names)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


class TimeWindow(BaseModel):
    """When service at a location may start, in minutes from the start of the first day.

    A vehicle that arrives before ``earliest`` waits; arriving after ``latest`` is not allowed.
    """

    model_config = _STRICT

    earliest: float = Field(
        default=0,
        ge=0,
        le=HORIZON_MINUTES,
        description="Service starts no earlier (minutes from 00:00)",
    )
    latest: float = Field(
        default=HORIZON_MINUTES,
        ge=0,
        le=HORIZON_MINUTES,
        description="Service starts no later (minutes from 00:00; at most 7 days = 10080)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.earliest > self.latest:
            raise ValueError(
                f"time window closes before it opens: earliest {self.earliest:g} > "
                f"latest {self.latest:g}"
            )
        return self


class Depot(BaseModel):
    """Where every vehicle starts and ends its route."""

    model_config = _STRICT

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees (WGS 84)")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees (WGS 84)")


class Location(BaseModel):
    """A place to visit once.

    The time window is written ``"time_window": {"earliest": 480, "latest": 720}``; as a
    shorthand, ``"earliest"`` and ``"latest"`` may be given on the location itself (either
    one alone leaves the other side open). Output always uses ``time_window``.
    """

    model_config = _STRICT

    id: str = Field(min_length=1, max_length=128, description="Unique within the request")
    lat: float = Field(ge=-90, le=90, description="Latitude in degrees (WGS 84)")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees (WGS 84)")
    demand: int = Field(
        default=1,
        ge=0,
        le=MAX_QUANTITY,
        description="Load it takes on a vehicle, in capacity units",
    )
    service_minutes: float = Field(
        default=0,
        ge=0,
        le=MINUTES_PER_DAY,
        description="Time spent at the location (at most a day)",
    )
    time_window: TimeWindow | None = Field(
        default=None, description="When service may start; none means any time"
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_flat_time_window(cls, data: Any) -> Any:
        """Accept ``earliest``/``latest`` on the location as a shorthand for ``time_window``."""
        if not isinstance(data, Mapping) or not {"earliest", "latest"} & data.keys():
            return data
        if data.get("time_window") is not None:
            raise ValueError("give the time window as time_window or as earliest/latest, not both")
        folded = dict(data)
        folded["time_window"] = {
            key: folded.pop(key) for key in ("earliest", "latest") if key in folded
        }
        return folded


class LocationGroup(BaseModel):
    """A depot and the locations its vehicles serve."""

    model_config = _STRICT

    depot: Depot
    locations: list[Location] = Field(
        default_factory=list,
        max_length=MAX_LOCATIONS,
        description=f"At most {MAX_LOCATIONS} locations with distinct ids",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        counts = Counter(location.id for location in self.locations)
        duplicates = [location_id for location_id, n in counts.items() if n > 1]
        if duplicates:
            raise ValueError(f"duplicate location ids: {_name_some(duplicates)}")
        return self


# Provider options a request may not set: where the data or the server is belongs to the
# deployment (a request naming a path or a URL could read the poller's files or reach hosts
# inside its network).
DEPLOYMENT_TRAVEL_OPTIONS = frozenset(
    {"data", "cache_dir", "url", "endpoint_url", "region", "client", "urls"}
)


class TravelSettings(BaseModel):
    """Where travel times come from; keys besides these are options of the provider."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    provider: str = Field(
        default="haversine",
        pattern=r"^[a-z][a-z0-9-]{0,39}$",
        description="haversine (straight lines at speed_kmh), matrix, osrm, osrm-http or "
        "amazon-location; which road providers work depends on the deployment",
    )
    fallback: Literal["haversine"] | None = Field(
        default=None,
        description="If the provider fails, plan on straight-line distances instead of "
        "failing the job (the result says so)",
    )
    profile: str = Field(
        default="car",
        pattern=r"^[a-z][a-z0-9_-]{0,39}$",
        description="Vehicle profile: car, bicycle, foot, or truck where the provider has one",
    )

    @model_validator(mode="after")
    def _no_deployment_options(self) -> Self:
        extras = self.model_extra or {}
        refused = sorted(DEPLOYMENT_TRAVEL_OPTIONS & extras.keys())
        if refused:
            raise ValueError(
                f"{', '.join(refused)}: set by the deployment (its settings), not by a request"
            )
        return self

    def provider_options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RoutingSettings(BaseModel):
    """The fleet, its limits, and how long the solver may search."""

    model_config = _STRICT

    vehicles: int = Field(ge=1, le=MAX_VEHICLES, description="Number of identical vehicles")
    vehicle_capacity: int = Field(
        ge=1, le=MAX_QUANTITY, description="Load one vehicle carries, in demand units"
    )
    max_route_minutes: float | None = Field(
        default=None,
        gt=0,
        le=HORIZON_MINUTES,
        description="Longest a route may take, depot to depot, waiting included; none = no limit",
    )
    speed_kmh: float = Field(
        default=40,
        gt=0,
        le=200,
        description="Average travel speed on straight-line (haversine) distance",
    )
    max_runtime_seconds: float = Field(
        default=30,
        gt=0,
        le=900,
        description="Search time budget; the job's deadline may cut it shorter",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SEED,
        description="Fix the solver's random seed for repeatable plans",
    )
    travel: TravelSettings | None = Field(
        default=None,
        description="Travel times on roads: provider, fallback, profile; none = the "
        "deployment's default provider (haversine unless configured)",
    )


class GenerateRoutesRequest(BaseModel):
    """Body of ``POST /jobs/generate`` and payload of a ``generate_routes`` job."""

    model_config = _STRICT

    location_group: LocationGroup
    settings: RoutingSettings

    @model_validator(mode="after")
    def _fleet_can_carry_demand(self) -> Self:
        capacity = self.settings.vehicle_capacity
        vehicles = self.settings.vehicles
        problems = []
        total = sum(loc.demand for loc in self.location_group.locations)
        if total > vehicles * capacity:
            fleet = f"{vehicles} vehicle{'s' if vehicles != 1 else ''} x {capacity}"
            problems.append(
                f"total demand {total} exceeds the fleet capacity of {vehicles * capacity} "
                f"({fleet}): add vehicles or capacity"
            )
        heavy = [loc for loc in self.location_group.locations if loc.demand > capacity]
        if heavy:
            problems.append(
                f"demand above the vehicle capacity of {capacity} at: "
                + _name_some(f"{loc.id} ({loc.demand})" for loc in heavy)
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> GenerateRoutesRequest:
        """Parse a job payload; an empty one (the seed's raw-SQL insert) means no locations.

        Raises :class:`pydantic.ValidationError` for anything else that does not validate.
        """
        if not payload:
            return cls(
                location_group=LocationGroup(depot=Depot(lat=0, lon=0), locations=[]),
                settings=RoutingSettings(vehicles=1, vehicle_capacity=1),
            )
        return cls.model_validate(payload)


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """One line a dispatcher can read: ``where: what`` for the first few errors."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
