"""An independent feasibility checker: reads the request (as JSON) and the answer (as JSON).

Written from the request's meaning, not from the solver: travel times are recomputed here
(straight-line distance at the request's speed, or the request's own matrix), loads from
the stops' demands and pickups. Every answer the service returns in the tests goes through
:func:`check_answer`.
"""

from __future__ import annotations

import math
from typing import Any

MINUTES = 0.02 + 1e-9  # answers are rounded to hundredths of a minute
ARC_MINUTES = 1 / 60  # the solver counts whole seconds per leg
KM = 0.0015  # and whole metres


def _haversine_km(a: dict[str, float], b: dict[str, float]) -> float:
    p1, p2 = math.radians(a["lat"]), math.radians(b["lat"])
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b["lon"] - a["lon"]) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(min(h, 1.0)))


def _fleet(request: dict[str, Any]) -> list[dict[str, Any]]:
    settings = request["settings"]
    group = request["location_group"]
    depots = group.get("depots") or [{"id": "depot", **group["depot"]}]
    if isinstance(settings["vehicles"], int):
        return [{"id": "vehicle", "count": settings["vehicles"],
                 "capacity": [settings["vehicle_capacity"]], "start": depots[0]["id"],
                 "end": depots[0]["id"], "max_route_minutes": settings.get("max_route_minutes")}]
    fleet = []
    for vehicle in settings["vehicles"]:
        vehicle = dict(vehicle)
        vehicle.setdefault("start", depots[0]["id"])
        vehicle.setdefault("max_route_minutes", settings.get("max_route_minutes"))
        capacity = vehicle["capacity"]
        vehicle["capacity"] = capacity if isinstance(capacity, list) else [capacity]
        fleet.append(vehicle)
    return fleet


def _quantity(value: Any, dims: int, default: int) -> list[int]:
    if value is None:
        return [default] + [0] * (dims - 1)
    if isinstance(value, list):
        return value
    return [value] if dims == 1 else ([0] * dims if value == 0 else [value])


def _windows(stop: dict[str, Any]) -> list[tuple[float, float]]:
    if stop.get("time_windows"):
        return [(w.get("earliest", 0), w.get("latest", 10080)) for w in stop["time_windows"]]
    if stop.get("time_window"):
        w = stop["time_window"]
        return [(w.get("earliest", 0), w.get("latest", 10080))]
    if "earliest" in stop or "latest" in stop:
        return [(stop.get("earliest", 0), stop.get("latest", 10080))]
    return []


def _required(stop: dict[str, Any]) -> bool:
    if stop.get("required") is not None:
        return bool(stop["required"])
    return stop.get("priority") is None and stop.get("penalty") is None


class _Travel:
    def __init__(self, request: dict[str, Any]) -> None:
        group = request["location_group"]
        depots = group.get("depots") or [{"id": "depot", **group["depot"]}]
        self.where = {d["id"]: d for d in depots} | {s["id"]: s for s in group["locations"]}
        self.speed = request["settings"].get("speed_kmh", 40)
        self.matrix = request.get("matrix")
        if self.matrix:
            self.row = {place: i for i, place in enumerate(self.matrix["order"])}

    def place(self, ref: Any) -> dict[str, float]:
        return self.where[ref] if isinstance(ref, str) else ref

    def leg(self, a: Any, b: Any, vehicle: dict[str, Any]) -> tuple[float, float]:
        """(minutes, km) from a to b (ids or {lat, lon})."""
        factor = vehicle.get("speed_factor", 1)
        if self.matrix:
            i, j = self.row[a], self.row[b]
            km = self.matrix["distances"][i][j] if self.matrix.get("distances") else 0.0
            return self.matrix["durations"][i][j] / factor, km
        km = _haversine_km(self.place(a), self.place(b))
        return km * 60 / self.speed / factor, km


def check_answer(answer: dict[str, Any], request: dict[str, Any]) -> None:
    """Raise AssertionError at the first way ``answer`` breaks ``request``."""
    stops = {s["id"]: s for s in request["location_group"]["locations"]}
    fleet = {v["id"]: v for v in _fleet(request)}
    dims = len(next(iter(fleet.values()))["capacity"])
    travel = _Travel(request)
    served = [stop["location_id"] for route in answer["routes"] for stop in route["stops"]]
    left = [u["location_id"] for u in answer["unassigned"]]
    assert sorted(served + left) == sorted(stops), "every stop served once or unassigned"
    for item in answer["unassigned"]:
        assert item["reason"], f"unassigned {item['location_id']} without a reason"
        assert not _required(stops[item["location_id"]]), f"required {item['location_id']} left"
    per_type: dict[str, set[int]] = {}
    for route in answer["routes"]:
        vehicle = fleet[route["vehicle_type"]]
        per_type.setdefault(vehicle["id"], set()).add(route["vehicle_index"])
        assert 1 <= route["vehicle_index"] <= vehicle["count"]
        _check_route(route, vehicle, stops, dims, travel)
    for type_id, indexes in per_type.items():
        assert len(indexes) == sum(r["vehicle_type"] == type_id for r in answer["routes"])
    assert answer["total_distance_km"] == _approx(sum(r["distance_km"] for r in answer["routes"]),
                                                  answer["total_distance_km"], KM * 10)
    assert answer["locations_served"] == len(served)
    assert answer["locations_unassigned"] == len(left)
    assert answer["vehicles_used"] == len(answer["routes"])


def _approx(expected: float, actual: float, tolerance: float) -> float:
    assert abs(expected - actual) <= tolerance, f"{actual} != {expected} (+- {tolerance})"
    return actual


def _check_route(route: dict[str, Any], vehicle: dict[str, Any], stops: dict[str, Any],
                 dims: int, travel: _Travel) -> None:
    assert route["stops"], "no empty routes"
    start, end = vehicle["start"], vehicle.get("end")
    start_place = travel.place(start)
    assert (route["start"]["lat"], route["start"]["lon"]) == (start_place["lat"],
                                                              start_place["lon"])
    if end is None:
        assert route["end"] is None, "an open route has no end"
    else:
        end_place = travel.place(end)
        assert (route["end"]["lat"], route["end"]["lon"]) == (end_place["lat"], end_place["lon"])
    shift = vehicle.get("shift") or {}
    assert route["start_minute"] >= shift.get("earliest", 0) - MINUTES
    capacity = vehicle["capacity"]
    deliveries = [_quantity(stops[s["location_id"]].get("demand"), dims,
                            0 if "pickup" in stops[s["location_id"]] else 1)
                  for s in route["stops"]]
    on_board = [sum(d[k] for d in deliveries) for k in range(dims)]
    assert all(load <= cap for load, cap in zip(on_board, capacity, strict=True)), "overloaded"
    previous, clock, km = start, route["start_minute"], 0.0
    for sequence, (stop, delivery) in enumerate(zip(route["stops"], deliveries, strict=True), 1):
        wanted = stops[stop["location_id"]]
        assert stop["sequence"] == sequence
        assert set(wanted.get("skills", [])) <= set(vehicle.get("skills", [])), "skills"
        minutes, leg_km = travel.leg(previous, stop["location_id"], vehicle)
        _approx(clock + minutes, stop["arrival_minute"], MINUTES + ARC_MINUTES)
        _approx(leg_km, stop["distance_from_previous_km"], KM)
        start_service = stop["start_service_minute"]
        assert start_service >= stop["arrival_minute"] - MINUTES
        _approx(stop["arrival_minute"] + stop["wait_minutes"], start_service, MINUTES)
        windows = _windows(wanted)
        assert not windows or any(a - MINUTES <= start_service <= b + MINUTES
                                  for a, b in windows), f"{wanted['id']} outside its windows"
        _approx(start_service + wanted.get("service_minutes", 0), stop["departure_minute"],
                MINUTES)
        pickup = _quantity(wanted.get("pickup"), dims, 0)
        on_board = [load - d + p for load, d, p in zip(on_board, delivery, pickup, strict=True)]
        assert stop["load_after"] == on_board
        assert all(0 <= load <= cap for load, cap in zip(on_board, capacity, strict=True))
        previous, clock, km = stop["location_id"], stop["departure_minute"], km + leg_km
    back_minutes, back_km = (0.0, 0.0) if end is None else travel.leg(previous, end, vehicle)
    _approx(clock + back_minutes, route["end_minute"], MINUTES + ARC_MINUTES)
    _approx(km + back_km, route["distance_km"], KM * (len(route["stops"]) + 1))
    assert route["end_minute"] <= shift.get("latest", 20160) + MINUTES, "past the shift"
    _approx(route["end_minute"] - route["start_minute"], route["duration_minutes"], MINUTES)
    if vehicle.get("max_route_minutes") is not None:
        assert route["duration_minutes"] <= vehicle["max_route_minutes"] + MINUTES
    if vehicle.get("max_distance_km") is not None:
        assert route["distance_km"] <= vehicle["max_distance_km"] + KM
