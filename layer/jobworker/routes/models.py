"""The input of route generation: what ``POST /jobs/generate`` accepts and a job's payload holds.

Pydantic only (no numpy, no PyVRP): the API validates request bodies with these models on every
call, so importing them must stay cheap. Times are minutes from the start of the first day
(0 = midnight), up to seven days; distances are kilometres.

Two shapes of the same request are accepted. Today's: one ``depot``, ``settings.vehicles`` a
number of identical vehicles of ``vehicle_capacity``. A fleet's: ``depots`` with ids,
``settings.vehicles`` a list of vehicle types (their own capacity per load dimension, start and
end, shift, limits, costs, skills, travel profile), stops with several time windows, pickups,
skills and a penalty for leaving them out, and optionally the customer's own travel ``matrix``.
:meth:`GenerateRoutesRequest.fleet` reads both as one list of :class:`VehicleType`.

Every number has a range a real fleet can have; the solver's integer scaling is sized from
these ranges (``jobworker.routes.solver``), so nothing that validates can overflow it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from jobworker.problems import ProblemsBelow, describe, field_problems
from jobworker.routes.travel_options import check_provider_name, options_model

MINUTES_PER_DAY = 1440
HORIZON_MINUTES = 7 * MINUTES_PER_DAY
MAX_LOCATIONS = 5000
MAX_VEHICLES = 1000  # vehicles in all, over every type
MAX_VEHICLE_TYPES = 50
MAX_DEPOTS = 100
MAX_DIMENSIONS = 8  # load dimensions (weight, volume, pallets, ...)
MAX_WINDOWS = 8  # time windows per stop
MAX_SKILLS = 32
MAX_QUANTITY = 1_000_000_000  # demand and capacity bound: totals stay far inside int64
MAX_SEED = 2**32 - 1  # PyVRP's random number generator takes a 32-bit seed
MIN_SPEED_KMH = 1.0  # walking pace at the slowest; 1e-300 once overflowed the solver
MAX_SPEED_KMH = 200.0
MIN_SPEED_FACTOR, MAX_SPEED_FACTOR = 0.1, 10.0
MAX_ROUTE_KM = 100_000.0
MAX_MATRIX_KM = 40_000.0  # about once round the Earth: no road leg is longer
MAX_FIXED_COST = 1_000_000.0
MAX_COST_PER_KM = 1_000.0
MAX_COST_PER_HOUR = 10_000.0
MAX_PENALTY = 10_000_000.0
MAX_PRIORITY = 100
PENALTY_PER_PRIORITY = 1_000.0  # an optional stop of priority p costs p x this to skip
DEFAULT_PROFILE = "car"
DEFAULT_DEPOT_ID = "depot"
DEFAULT_VEHICLE_TYPE = "vehicle"

# A model config shared by every input: unknown keys are typos we want to report, and NaN or
# infinity never make sense as a coordinate, a time or a speed.
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
_ID = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")
_SKILL_LIST: Any = Field(default_factory=list, max_length=MAX_SKILLS,
                    description="Skills (strings); a stop needs a vehicle that has all of its")


def _name_some(names: Iterable[str], limit: int = 10) -> str:
    """``a, b, c`` or ``a, b, c and 7 more``: messages stay short on big inputs."""
    items = list(names)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _as_list(value: int | list[int]) -> list[int]:
    return list(value) if isinstance(value, list) else [value]


Quantity = int | list[int]


def _check_quantity(value: Quantity, what: str) -> Quantity:
    values = _as_list(value)
    if not 1 <= len(values) <= MAX_DIMENSIONS:
        raise ValueError(f"{what} needs 1 to {MAX_DIMENSIONS} dimensions, not {len(values)}")
    if any(not 0 <= v <= MAX_QUANTITY for v in values):
        raise ValueError(f"{what} values must lie between 0 and {MAX_QUANTITY}")
    return value


class TimeWindow(BaseModel):
    """When service at a location may start, in minutes from the start of the first day.

    A vehicle that arrives before ``earliest`` waits; arriving after ``latest`` is not allowed.
    """

    model_config = _STRICT

    earliest: float = Field(default=0, ge=0, le=HORIZON_MINUTES,
                            description="Service starts no earlier (minutes from 00:00)")
    latest: float = Field(default=HORIZON_MINUTES, ge=0, le=HORIZON_MINUTES,
                          description="Service starts no later (minutes from 00:00; at most "
                                      "7 days = 10080)")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.earliest > self.latest:
            raise ValueError(f"time window closes before it opens: earliest {self.earliest:g} > "
                             f"latest {self.latest:g}")
        return self


class Point(BaseModel):
    """A place on the map (WGS 84 degrees)."""

    model_config = _STRICT

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees (WGS 84)")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees (WGS 84)")


class Depot(Point):
    """Where vehicles start and end. Today's single ``depot`` has no id: it is ``"depot"``."""

    id: str = Field(default=DEFAULT_DEPOT_ID, min_length=1, max_length=128,
                    pattern=r"^[^\x00]*$", description="Unique among depots and locations")


class Location(BaseModel):
    """A stop to visit once.

    Time windows: ``time_windows`` (a list: service starts inside one of them), or today's
    ``time_window``, or ``earliest``/``latest`` on the location itself. ``demand`` is
    delivered from the depot, ``pickup`` is brought back (a number, or a list with one entry
    per load dimension of the vehicles). A stop is optional when ``required`` is false or it
    has a ``priority`` or ``penalty``: the plan may leave it out, at the cost of its penalty.
    """

    model_config = _STRICT

    id: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$",
                    description="Unique within the request")
    lat: float = Field(ge=-90, le=90, description="Latitude in degrees (WGS 84)")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees (WGS 84)")
    demand: Quantity = Field(default=1, description="Load delivered here, per dimension "
                                                    "(default 1, or 0 when a pickup is given)")
    pickup: Quantity = Field(default=0, description="Load collected here, per dimension")
    service_minutes: float = Field(default=0, ge=0, le=MINUTES_PER_DAY,
                                   description="Time spent at the location (at most a day)")
    time_window: TimeWindow | None = Field(default=None,
                                           description="When service may start; none = any time")
    time_windows: list[TimeWindow] | None = Field(
        default=None, min_length=1, max_length=MAX_WINDOWS,
        description="Alternatives (e.g. morning or late afternoon): service starts in one")
    skills: list[str] = _SKILL_LIST
    required: bool | None = Field(default=None, description="False: the plan may leave it out")
    priority: int | None = Field(default=None, ge=1, le=MAX_PRIORITY,
                                 description=f"Optional stop; skipping costs priority x "
                                             f"{PENALTY_PER_PRIORITY:g}")
    penalty: float | None = Field(default=None, ge=0, le=MAX_PENALTY,
                                  description="Optional stop; what leaving it out costs")

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

    @field_validator("demand", "pickup")
    @classmethod
    def _quantity(cls, value: Quantity) -> Quantity:
        return _check_quantity(value, "load")

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        return _check_skills(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.time_window is not None and self.time_windows is not None:
            raise ValueError("give time_window or time_windows, not both")
        if self.required and (self.priority is not None or self.penalty is not None):
            raise ValueError("a required stop has no priority or penalty: set required false")
        if ("demand" in self.model_fields_set and self.pickup != 0
                and len(_as_list(self.demand)) != len(_as_list(self.pickup))):
            raise ValueError("demand and pickup have different numbers of dimensions")
        return self

    @property
    def windows(self) -> list[TimeWindow]:
        """The windows service may start in; empty = any time."""
        if self.time_windows is not None:
            return list(self.time_windows)
        return [self.time_window] if self.time_window is not None else []

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.priority is None and self.penalty is None

    @property
    def skip_penalty(self) -> float:
        """What leaving this stop out costs (optional stops only)."""
        if self.penalty is not None:
            return self.penalty
        return (self.priority or 1) * PENALTY_PER_PRIORITY

    def delivery(self, dimensions: int) -> list[int]:
        """What is delivered here; a stop that states only a pickup delivers nothing."""
        if "demand" not in self.model_fields_set:
            first = 0 if "pickup" in self.model_fields_set else 1
            return [first] + [0] * (dimensions - 1)
        return _padded(self.demand, dimensions)

    def collection(self, dimensions: int) -> list[int]:
        return _padded(self.pickup, dimensions)


def _padded(value: Quantity, dimensions: int) -> list[int]:
    """A scalar 0 pickup means "nothing" in every dimension; otherwise the stated list."""
    values = _as_list(value)
    if len(values) == 1 and dimensions > 1 and values[0] == 0:
        return [0] * dimensions
    return values


def _check_skills(skills: list[str]) -> list[str]:
    for skill in skills:
        if not 1 <= len(skill) <= 64 or "\x00" in skill:
            raise ValueError("a skill is a string of 1 to 64 characters")
    return skills


class LocationGroup(BaseModel):
    """The depots and the locations the vehicles serve."""

    model_config = _STRICT

    depot: Depot | None = Field(default=None, description="Today's single depot (id 'depot')")
    depots: list[Depot] | None = Field(default=None, min_length=1, max_length=MAX_DEPOTS,
                                       description="One or more depots with distinct ids")
    locations: list[Location] = Field(
        default_factory=list,
        max_length=MAX_LOCATIONS,
        description=f"At most {MAX_LOCATIONS} locations with distinct ids",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        if (self.depot is None) == (self.depots is None):
            raise ValueError("give depot or depots (exactly one of them)")
        counts = Counter(location.id for location in self.locations)
        duplicates = [location_id for location_id, n in counts.items() if n > 1]
        if duplicates:
            raise ValueError(f"duplicate location ids: {_name_some(duplicates)}")
        depot_ids = Counter(depot.id for depot in self.all_depots)
        twice = [depot_id for depot_id, n in depot_ids.items() if n > 1 or depot_id in counts]
        if twice:
            raise ValueError(f"depot ids must differ from each other and from location ids: "
                             f"{_name_some(twice)}")
        return self

    @property
    def all_depots(self) -> list[Depot]:
        return list(self.depots) if self.depots is not None else [self.depot] if self.depot else []


class Shift(BaseModel):
    """When a vehicle may leave (``earliest``) and must be back (``latest``)."""

    model_config = _STRICT

    earliest: float = Field(default=0, ge=0, le=HORIZON_MINUTES)
    latest: float = Field(default=2 * HORIZON_MINUTES, ge=0, le=2 * HORIZON_MINUTES,
                          description="Back (or at its last stop, open routes) by then")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.earliest > self.latest:
            raise ValueError(f"shift ends before it starts: earliest {self.earliest:g} > "
                             f"latest {self.latest:g}")
        return self


Endpoint = str | Point


class VehicleType(BaseModel):
    """``count`` identical vehicles. ``end`` omitted: the route ends at its last stop (open)."""

    model_config = _STRICT

    id: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")
    count: int = Field(default=1, ge=1, le=MAX_VEHICLES)
    capacity: Quantity = Field(description="Load one vehicle carries, per dimension")
    start: Endpoint | None = Field(default=None,
                                   description="A depot id or {lat, lon}; default the first depot")
    end: Endpoint | None = Field(default=None,
                                 description="A depot id or {lat, lon}; omitted = open route")
    shift: Shift | None = None
    max_route_minutes: float | None = Field(default=None, gt=0, le=2 * HORIZON_MINUTES)
    max_distance_km: float | None = Field(default=None, gt=0, le=MAX_ROUTE_KM)
    fixed_cost: float = Field(default=0, ge=0, le=MAX_FIXED_COST,
                              description="Cost of using one vehicle")
    cost_per_km: float = Field(default=1, ge=0, le=MAX_COST_PER_KM)
    cost_per_hour: float = Field(default=0, ge=0, le=MAX_COST_PER_HOUR)
    speed_factor: float = Field(default=1, ge=MIN_SPEED_FACTOR, le=MAX_SPEED_FACTOR,
                                description="Travel times are divided by this")
    skills: list[str] = _SKILL_LIST
    profile: str = Field(default=DEFAULT_PROFILE, min_length=1, max_length=64,
                         pattern=r"^[A-Za-z0-9_.-]+$", description="Travel profile (car, truck..)")

    @field_validator("capacity")
    @classmethod
    def _capacity(cls, value: Quantity) -> Quantity:
        return _check_quantity(value, "capacity")

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        return _check_skills(value)

    @property
    def capacities(self) -> list[int]:
        return _as_list(self.capacity)


class TravelSettings(BaseModel):
    """Where travel times come from: ``provider`` (and its own options), and what to plan
    on when it cannot answer: ``fallback`` (``"haversine"``), only if the request asks for
    one; by default the job fails (or, for an unreachable provider, is retried) and says why.

    The options are the other keys, each checked against the provider's own model
    (:mod:`jobworker.routes.travel_options`): a bad one is a 422 naming
    ``settings.travel.<option>``, never a job that fails on it."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    provider: str = Field(default="haversine", min_length=1, max_length=64,
                          pattern=r"^[A-Za-z0-9_.-]+$",
                          description="A travel provider the code knows (haversine, matrix, "
                                      "osrm, osrm-http, amazon-location, registered ones)")
    fallback: str | None = Field(default=None, min_length=1, max_length=64,
                                 pattern=r"^[A-Za-z0-9_.-]+$",
                                 description="Plan on this provider when the first cannot "
                                             "answer (e.g. haversine); none = fail")
    _options: dict[str, Any] = PrivateAttr(default_factory=dict)

    _known_names = field_validator("provider", "fallback")(check_provider_name)

    @model_validator(mode="after")
    def _provider_options(self) -> Self:
        model = options_model(self.provider)
        assert model is not None, "the provider's name was checked"
        self._options = model.model_validate(self.model_extra or {}).stated()
        return self

    def options(self) -> dict[str, Any]:
        """The provider's options the request stated, validated."""
        return dict(self._options)


class RoutingSettings(BaseModel):
    """The fleet, its limits, and how long the solver may search."""

    model_config = _STRICT

    vehicles: Annotated[int, Field(ge=1, le=MAX_VEHICLES)] | list[VehicleType] = Field(
        description="A number of identical vehicles (with vehicle_capacity), or vehicle types")
    vehicle_capacity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY,
                                         validate_default=True,
                                         description="Load one vehicle carries (numeric vehicles)")
    max_route_minutes: float | None = Field(
        default=None, gt=0, le=HORIZON_MINUTES,
        description="Longest a route may take, depot to depot, waiting included; none = no limit")
    speed_kmh: float = Field(default=40, ge=MIN_SPEED_KMH, le=MAX_SPEED_KMH,
                             description="Average travel speed on straight-line distance")
    max_runtime_seconds: float = Field(default=30, gt=0, le=900,
                                       description="Search budget; the job's deadline may cut it")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED,
                             description="Fix the solver's random seed for repeatable plans")
    travel: TravelSettings | None = None

    @field_validator("vehicle_capacity")
    @classmethod
    def _capacity_goes_with_numeric_vehicles(cls, value: int | None,
                                             info: ValidationInfo) -> int | None:
        vehicles = info.data.get("vehicles")
        if isinstance(vehicles, int) and value is None:
            raise ValueError("vehicle_capacity is required when vehicles is a number")
        if isinstance(vehicles, list) and value is not None:
            raise ValueError("vehicle_capacity goes with numeric vehicles; give each vehicle "
                             "type its capacity")
        return value

    @model_validator(mode="after")
    def _fleet_shape(self) -> Self:
        if isinstance(self.vehicles, int):
            return self
        if not 1 <= len(self.vehicles) <= MAX_VEHICLE_TYPES:
            raise ValueError(f"vehicles: 1 to {MAX_VEHICLE_TYPES} vehicle types")
        ids = Counter(vehicle.id for vehicle in self.vehicles)
        if any(n > 1 for n in ids.values()):
            raise ValueError(f"duplicate vehicle type ids: "
                             f"{_name_some(i for i, n in ids.items() if n > 1)}")
        if sum(vehicle.count for vehicle in self.vehicles) > MAX_VEHICLES:
            raise ValueError(f"at most {MAX_VEHICLES} vehicles in all")
        if len({len(vehicle.capacities) for vehicle in self.vehicles}) > 1:
            raise ValueError("every vehicle type needs the same number of capacity dimensions")
        return self


class TravelMatrixInput(BaseModel):
    """The customer's own travel times and distances between the listed points."""

    model_config = _STRICT

    order: list[str] = Field(min_length=1, max_length=MAX_LOCATIONS + MAX_DEPOTS,
                             description="Depot and location ids, in matrix row order")
    durations: list[list[float]] = Field(description="Minutes from row to column")
    distances: list[list[float]] | None = Field(default=None,
                                                description="Kilometres; default 0")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        n = len(self.order)
        if len(set(self.order)) != n:
            raise ValueError("matrix.order lists an id twice")
        for name in ("durations", "distances"):
            rows = getattr(self, name)
            if rows is None:
                continue
            if len(rows) != n or any(len(row) != n for row in rows):
                raise ValueError(f"matrix.{name} must be {n} x {n} (one row and column per id "
                                 "in matrix.order)")
            limit = HORIZON_MINUTES if name == "durations" else MAX_MATRIX_KM
            for i, row in enumerate(rows):
                if any(not 0 <= value <= limit for value in row):
                    raise ValueError(f"matrix.{name}[{i}]: values must be finite, between 0 "
                                     f"and {limit:g}")
        return self


class GenerateRoutesRequest(BaseModel):
    """Body of ``POST /jobs/generate`` and payload of a ``generate_routes`` job."""

    model_config = _STRICT

    location_group: LocationGroup
    settings: RoutingSettings
    matrix: TravelMatrixInput | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        from jobworker.routes.checks import request_problems

        problems = request_problems(self)
        if problems:  # each starts with its field: one API detail per field
            raise ProblemsBelow(problem.partition(": ")[::2] for problem in problems)
        return self

    def __repr__(self) -> str:
        # Powertools' resolver formats every route's arguments into a debug line with an
        # f-string, on each request and whatever the log level: pydantic's repr would spell
        # out the whole body (a 1,500-stop request: hundreds of kilobytes) for a line that is
        # never printed. A summary costs nothing and says enough.
        group = self.location_group
        return (f"GenerateRoutesRequest({len(group.locations)} locations, "
                f"{len(group.all_depots)} depots, matrix: {self.matrix is not None})")

    def fleet(self) -> list[VehicleType]:
        """The vehicle types, today's numeric ``vehicles`` read as one type."""
        settings = self.settings
        if isinstance(settings.vehicles, list):
            return [
                vehicle if vehicle.max_route_minutes is not None
                or settings.max_route_minutes is None
                else vehicle.model_copy(update={"max_route_minutes": settings.max_route_minutes})
                for vehicle in settings.vehicles
            ]
        home = self.location_group.all_depots[0].id
        return [VehicleType(id=DEFAULT_VEHICLE_TYPE, count=settings.vehicles,
                            capacity=settings.vehicle_capacity or 1, start=home, end=home,
                            max_route_minutes=settings.max_route_minutes)]

    @property
    def dimensions(self) -> int:
        return len(self.fleet()[0].capacities)

    @property
    def travel(self) -> TravelSettings:
        if self.settings.travel is not None:
            return self.settings.travel
        return TravelSettings(provider="matrix" if self.matrix is not None else "haversine")

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
    return describe(field_problems(exc.errors()), limit)
