"""``amazon-location``: Amazon Location Service's ``geo-routes`` ``CalculateRouteMatrix``.

The service's size limits depend on the routing boundary a request gives: with a geometry
boundary (ours: the points' bounding box plus a margin, whose diagonal may not exceed
400 km) a request may hold up to 500 origins x 500 destinations; ``Unbounded`` allows only
15 x 100. So points that fit in a 400 km box are asked for in 500 x 500 blocks, others in
15 x 100 blocks. Every origin-destination pair is billed as one route calculated (an n-point
problem costs n x n routes). The client retries throttling itself (botocore's standard mode);
the job's deadline is checked between blocks.

Routes are drawn on the roads with ``CalculateRoutes`` (``LegGeometryFormat: Simple``, one
LineString per leg): one request per planned route of up to 25 points (origin, 23 waypoints,
destination), longer routes in overlapping pieces, each request billed as one route
calculated. A request can turn it off with ``"geometry": false`` (the map then draws straight
lines); a failure there leaves straight lines too, the plan being made already.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobworker.routes.providers.budget import (
    Clock,
    PointError,
    ProviderUnavailable,
    blocks,
    check_deadline,
    describe_point,
)
from jobworker.routes.travel import LatLon, Polyline, TravelError, TravelMatrix, register_provider

NAME = "amazon-location"
TRAVEL_MODES = {"car": "Car", "truck": "Truck", "foot": "Pedestrian", "pedestrian": "Pedestrian",
                "scooter": "Scooter"}
UNBOUNDED_BLOCK = (15, 100)  # origins x destinations per request without a boundary
BOUNDED_BLOCK = (500, 500)  # ... within a geometry boundary
MAX_BOUNDARY_DIAGONAL_M = 400_000.0
ROUTE_POINTS = 25  # CalculateRoutes: an origin, at most 23 waypoints and a destination
DEFAULT_MARGIN_M = 5_000.0  # roads just outside the points' box may be the best way
EARTH_RADIUS_M = 6_371_008.8
_CELL_ERRORS = {
    "NoMatchOrigin": "{origin} is not near a road Amazon Location can route on",
    "NoMatchDestination": "{destination} is not near a road Amazon Location can route on",
    "NoMatch": "{origin} or {destination} is not near a road Amazon Location can route on",
    "NoRoute": "no road route from {origin} to {destination}",
    "OutOfBoundsOrigin": "{origin} is outside the routing boundary",
    "OutOfBoundsDestination": "{destination} is outside the routing boundary",
    "OutOfBounds": "{origin} or {destination} is outside the routing boundary",
    "Violation": "the route from {origin} to {destination} breaks a restriction of the mode",
}


def bounding_box(points: Sequence[LatLon], margin_m: float) -> list[float]:
    """[west, south, east, north] around ``points``, widened by ``margin_m`` on every side."""
    lats = [lat for lat, _ in points]
    lons = [lon for _, lon in points]
    dlat = math.degrees(margin_m / EARTH_RADIUS_M)
    widest = max(abs(min(lats)), abs(max(lats)))
    dlon = dlat / max(math.cos(math.radians(min(widest + dlat, 89.0))), 1e-6)
    return [max(min(lons) - dlon, -180.0), max(min(lats) - dlat, -90.0),
            min(max(lons) + dlon, 180.0), min(max(lats) + dlat, 90.0)]


def diagonal_m(box: Sequence[float]) -> float:
    west, south, east, north = map(math.radians, box)
    h = (math.sin((north - south) / 2) ** 2
         + math.cos(south) * math.cos(north) * math.sin((east - west) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class AmazonLocationProvider:
    client: Any  # a botocore "geo-routes" client
    boundary: str = "auto"  # "auto": a bounding box when it fits, else unbounded; "unbounded"
    margin_m: float = DEFAULT_MARGIN_M
    clock: Clock = time.monotonic
    geometry: bool = True  # draw routes on the roads (CalculateRoutes, one request a route)

    def routing_boundary(self, points: Sequence[LatLon]) -> tuple[dict[str, Any], tuple[int, int]]:
        """The request's RoutingBoundary and the block size it allows."""
        if self.boundary != "unbounded":
            box = bounding_box(points, self.margin_m)
            if diagonal_m(box) <= MAX_BOUNDARY_DIAGONAL_M:
                return {"Geometry": {"BoundingBox": box}}, BOUNDED_BLOCK
        return {"Unbounded": True}, UNBOUNDED_BLOCK

    def matrix(self, points: Sequence[LatLon], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        mode = TRAVEL_MODES.get(profile)
        if mode is None:
            raise TravelError(f"amazon-location has no {profile!r} profile "
                              f"(it has {', '.join(sorted(TRAVEL_MODES))})")
        n = len(points)
        durations = np.zeros((n, n), dtype=np.float64)
        distances = np.zeros((n, n), dtype=np.float64)
        if n == 0:
            return TravelMatrix(durations, distances, provider=NAME, profile=profile)
        boundary, (row_block, column_block) = self.routing_boundary(points)
        done = 0
        for rows in blocks(n, row_block):
            for columns in blocks(n, column_block):
                check_deadline(deadline, self.clock, provider=NAME, done=done, total=n * n)
                answer = self._request(points, rows, columns, mode, boundary)
                for r, row in enumerate(answer["RouteMatrix"]):
                    for c, cell in enumerate(row):
                        i, j = rows[r], columns[c]
                        if i != j and cell.get("Error"):
                            raise _cell_error(cell["Error"], points, i, j)
                        durations[i, j] = 0.0 if i == j else cell["Duration"]
                        distances[i, j] = 0.0 if i == j else cell["Distance"]
                done += len(rows) * len(columns)
        return TravelMatrix(durations_minutes=durations / 60.0, distances_km=distances / 1000.0,
                            provider=NAME, profile=profile)

    def leg_geometry(self, points: Sequence[LatLon], profile: str) -> list[Polyline] | None:
        """One polyline per leg, from CalculateRoutes, in pieces of ``ROUTE_POINTS``."""
        mode = TRAVEL_MODES.get(profile)
        if not self.geometry or mode is None or len(points) < 2:
            return None
        legs: list[Polyline] = []
        for first in range(0, len(points) - 1, ROUTE_POINTS - 1):
            piece = points[first:first + ROUTE_POINTS]
            answer = self._call("calculate_routes", **_route_request(piece, mode))
            found = answer["Routes"][0]["Legs"] if answer.get("Routes") else []
            if len(found) != len(piece) - 1:
                raise TravelError(f"amazon-location: {len(found)} legs for {len(piece)} points")
            legs += [[(lat, lon) for lon, lat, *_ in leg["Geometry"]["LineString"]]
                     for leg in found]
        return legs

    def _request(self, points: Sequence[LatLon], rows: range, columns: range, mode: str,
                 boundary: Mapping[str, Any]) -> Any:
        return self._call(
            "calculate_route_matrix",
            Origins=[{"Position": [points[i][1], points[i][0]]} for i in rows],
            Destinations=[{"Position": [points[j][1], points[j][0]]} for j in columns],
            TravelMode=mode,
            RoutingBoundary=dict(boundary),
        )

    def _call(self, operation: str, **request: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**request)
        except ClientError as exc:
            raise _client_error(exc) from None
        except BotoCoreError as exc:
            raise ProviderUnavailable(
                f"amazon-location: could not reach the service ({exc})") from None


def _route_request(points: Sequence[LatLon], mode: str) -> dict[str, Any]:
    """CalculateRoutes through ``points`` in order: every stop a waypoint it stops at."""
    return {
        "Origin": [points[0][1], points[0][0]],
        "Destination": [points[-1][1], points[-1][0]],
        "Waypoints": [{"Position": [lon, lat]} for lat, lon in points[1:-1]],
        "TravelMode": mode,
        "LegGeometryFormat": "Simple",
    }


def _cell_error(code: str, points: Sequence[LatLon], i: int, j: int) -> PointError:
    template = _CELL_ERRORS.get(code, "Amazon Location could not route from {origin} to "
                                      "{destination} (" + code + ")")
    reason = template.format(origin=describe_point(points, i),
                             destination=describe_point(points, j))
    involved = {"NoMatchOrigin": [i], "OutOfBoundsOrigin": [i], "NoMatchDestination": [j],
                "OutOfBoundsDestination": [j]}.get(code, [i, j])
    return PointError(f"amazon-location: {reason}", involved)


def _client_error(exc: Any) -> TravelError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "?"), error.get("Message", "")
    if code == "ThrottlingException":
        return ProviderUnavailable(
            "amazon-location: the matrix requests were throttled beyond retrying "
            "(CalculateRouteMatrix allows 5 requests per second by default; raise the quota or "
            f"retry the job later): {message}")
    if code == "AccessDeniedException":
        return TravelError("amazon-location: not allowed (the poller's role needs "
                           f"geo-routes:CalculateRouteMatrix and CalculateRoutes): {message}")
    if code == "InternalServerException":
        return ProviderUnavailable(f"amazon-location: the service failed ({message})")
    if code == "ServiceQuotaExceededException":
        return TravelError(f"amazon-location: a service quota is used up: {message}")
    return TravelError(f"amazon-location refused the matrix request ({code}): {message}")


def make_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5,
                    read_timeout=30)
    return boto3.client("geo-routes", region_name=region, endpoint_url=endpoint_url or None,
                        config=config)


def _factory(options: Mapping[str, Any]) -> AmazonLocationProvider:
    boundary = str(options.get("routing_boundary", "auto"))
    if boundary not in ("auto", "unbounded"):
        raise TravelError(f"amazon-location: routing_boundary is auto or unbounded, not "
                          f"{boundary!r}")
    client = options.get("client") or make_client(options.get("region"),
                                                  options.get("endpoint_url"))
    return AmazonLocationProvider(client=client, boundary=boundary,
                                  margin_m=float(options.get("margin_m", DEFAULT_MARGIN_M)),
                                  geometry=options.get("geometry", True) is not False)


register_provider(NAME, _factory)
