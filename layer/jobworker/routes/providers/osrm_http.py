"""``osrm-http``: a user's own OSRM server (``osrm-routed`` or anything speaking its HTTP API).

Tables are asked for in blocks of sources x destinations that fit the server's
``--max-table-size`` (100 by default: ``max_table_size`` here must not exceed it), routes in
windows of ``max_route_points`` waypoints. Every request has a timeout (never past the job's
deadline) and is retried, with a growing pause, when the server is unreachable, overloaded
(429, 5xx) or slow; an answer the server gives on purpose (a point off the road network, a
request too big) is not retried. One URL may serve every profile (it appears in the path, as
OSRM's API wants), or each profile has its own server (``urls``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jobworker.routes.providers.budget import (
    Clock,
    PointError,
    ProviderUnavailable,
    blocks,
    check_deadline,
    describe_point,
    seconds_left,
)
from jobworker.routes.providers.osrm import NO_SEGMENT, leg_polyline
from jobworker.routes.travel import LatLon, Polyline, TravelError, TravelMatrix, register_provider

NAME = "osrm-http"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_SECONDS = 0.5
DEFAULT_MAX_TABLE_SIZE = 100  # osrm-routed's default --max-table-size
DEFAULT_MAX_ROUTE_POINTS = 500  # osrm-routed's default --max-viaroute-size
DEFAULT_SNAP_RADIUS_M = 500.0
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """Worth another try: no answer, or an overloaded server."""


@dataclass
class OsrmHttpProvider:
    urls: Mapping[str, str]  # profile -> base URL; "*" serves any profile
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    retries: int = DEFAULT_RETRIES
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    max_table_size: int = DEFAULT_MAX_TABLE_SIZE
    max_route_points: int = DEFAULT_MAX_ROUTE_POINTS
    snap_radius_m: float = DEFAULT_SNAP_RADIUS_M
    clock: Clock = time.monotonic
    sleep: Any = field(default=time.sleep, repr=False)

    def base_url(self, profile: str) -> str:
        url = self.urls.get(profile) or self.urls.get("*")
        if not url:
            raise TravelError(f"osrm-http: no OSRM server configured for profile {profile!r} "
                              f"(configured: {', '.join(sorted(self.urls)) or 'none'})")
        return url.rstrip("/")

    def matrix(self, points: Sequence[LatLon], profile: str, *,
               deadline: float | None) -> TravelMatrix:
        n = len(points)
        durations = np.zeros((n, n), dtype=np.float64)
        distances = np.zeros((n, n), dtype=np.float64)
        side = max(1, self.max_table_size // 2)
        done = 0
        for rows in blocks(n, side):
            for columns in blocks(n, side):
                check_deadline(deadline, self.clock, provider=NAME, done=done, total=n * n)
                answer = self._table(points, list(rows), list(columns), profile, deadline)
                block = (slice(rows.start, rows.stop), slice(columns.start, columns.stop))
                durations[block] = _cells(answer, "durations", rows, columns, points, profile)
                distances[block] = _cells(answer, "distances", rows, columns, points, profile)
                done += len(rows) * len(columns)
        return TravelMatrix(durations_minutes=durations / 60.0, distances_km=distances / 1000.0,
                            provider=NAME, profile=profile)

    def leg_geometry(self, points: Sequence[LatLon], profile: str) -> list[Polyline] | None:
        legs: list[Polyline] = []
        step = max(1, self.max_route_points - 1)
        for start in range(0, max(len(points) - 1, 0), step):
            window = list(range(start, min(start + step + 1, len(points))))
            query = {"steps": "true", "geometries": "geojson", "overview": "false",
                     "continue_straight": "false", "radiuses": self._radiuses(len(window))}
            answer = self._get("route", profile, [points[i] for i in window], query, None,
                               window)
            legs += [leg_polyline(leg) for leg in answer["routes"][0]["legs"]]
        return legs

    # --- HTTP -------------------------------------------------------------------------------

    def _table(self, points: Sequence[LatLon], rows: list[int], columns: list[int],
               profile: str, deadline: float | None) -> Any:
        indexes = rows + columns  # the request's coordinates: sources first, then destinations
        query = {
            "sources": ";".join(str(k) for k in range(len(rows))),
            "destinations": ";".join(str(len(rows) + k) for k in range(len(columns))),
            "annotations": "duration,distance",
            "radiuses": self._radiuses(len(indexes)),
        }
        return self._get("table", profile, [points[i] for i in indexes], query, deadline,
                         indexes, all_points=points)

    def _radiuses(self, count: int) -> str:
        return ";".join([f"{self.snap_radius_m:g}"] * count)

    def _get(self, service: str, profile: str, coordinates: Sequence[LatLon],
             query: Mapping[str, str], deadline: float | None, indexes: Sequence[int],
             all_points: Sequence[LatLon] | None = None) -> Any:
        base = self.base_url(profile)
        path = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in coordinates)
        url = (f"{base}/{service}/v1/{urllib.parse.quote(profile)}/{path}?"
               + urllib.parse.urlencode(query, safe=";,"))
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            left = seconds_left(deadline, self.clock)
            if left is not None and left <= 0:
                failures.append("the job's deadline passed")
                break
            timeout = self.timeout_seconds if left is None else min(self.timeout_seconds, left)
            try:
                return self._fetch(url, timeout, all_points or coordinates, indexes, profile)
            except _Transient as exc:
                failures.append(str(exc))
            if attempt < self.retries:
                pause = self.backoff_seconds * 2**attempt
                left = seconds_left(deadline, self.clock)
                self.sleep(pause if left is None else max(0.0, min(pause, left)))
        raise ProviderUnavailable(f"osrm-http: the OSRM server at {base} did not answer after "
                          f"{len(failures)} attempt(s): {'; '.join(failures)}")

    def _fetch(self, url: str, timeout: float, points: Sequence[LatLon],
               indexes: Sequence[int], profile: str) -> Any:
        request = urllib.request.Request(url, headers={"User-Agent": "jobworker"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in RETRIED_STATUSES:
                raise _Transient(f"HTTP {exc.code}") from None
            raise self._refusal(exc, points, indexes, profile) from None
        except TimeoutError:
            raise _Transient(f"no answer within {timeout:.1f} s") from None
        except urllib.error.URLError as exc:
            raise _Transient(f"cannot connect ({exc.reason})") from None
        except (ConnectionError, json.JSONDecodeError) as exc:
            raise _Transient(f"broken answer ({exc})") from None

    def _refusal(self, exc: urllib.error.HTTPError, points: Sequence[LatLon],
                 indexes: Sequence[int], profile: str) -> TravelError:
        """A deliberate 4xx: OSRM's ``code`` and ``message``, in a dispatcher's words."""
        try:
            body = json.loads(exc.read())
        except (json.JSONDecodeError, OSError):
            body = {}
        code, message = body.get("code", f"HTTP {exc.code}"), body.get("message", "")
        if code == "NoSegment":
            found = NO_SEGMENT.search(f"{code} {message}")
            if found:
                index = indexes[int(found.group(1))]
                return PointError(
                    f"{describe_point(points, index)} is more than {self.snap_radius_m:g} m from"
                    f" any road the {profile!r} profile can use", [index])
        if code == "TooBig":
            return TravelError(f"osrm-http: the server refused a request as too big ({message}):"
                               " lower max_table_size / max_route_points to its limits")
        return TravelError(f"osrm-http: the OSRM server refused the request: {code} {message}")


def _cells(answer: Mapping[str, Any], key: str, rows: range, columns: range,
           points: Sequence[LatLon], profile: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    values = answer[key]
    for r, row in enumerate(values):
        for c, value in enumerate(row):
            if value is None:
                i, j = rows[r], columns[c]
                raise PointError(
                    f"no road route for the {profile!r} profile from {describe_point(points, i)}"
                    f" to {describe_point(points, j)} (the road network is not connected there)",
                    [i, j])
    return np.asarray(values, dtype=np.float64)


def parse_urls(value: Any) -> dict[str, str]:
    """``http://host:5000`` (every profile) or ``car=http://a:5000,bicycle=http://b:5001``."""
    if isinstance(value, Mapping):
        urls = {str(k): str(v) for k, v in value.items()}
    else:
        urls = {}
        for part in str(value or "").split(","):
            profile, sep, url = part.strip().partition("=")
            if part.strip():
                urls.update({profile: url} if sep and "://" not in profile else {"*": part.strip()})
    for url in urls.values():
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise TravelError(f"osrm-http: {url!r} is not an http(s) URL")
    return urls


def _factory(options: Mapping[str, Any]) -> OsrmHttpProvider:
    urls = parse_urls(options.get("url"))
    if not urls:
        raise TravelError("osrm-http: no OSRM server configured (OSRM_HTTP_URL)")
    return OsrmHttpProvider(
        urls=urls,
        timeout_seconds=float(options.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        retries=int(options.get("retries", DEFAULT_RETRIES)),
        backoff_seconds=float(options.get("backoff_seconds", DEFAULT_BACKOFF_SECONDS)),
        max_table_size=int(options.get("max_table_size", DEFAULT_MAX_TABLE_SIZE)),
        max_route_points=int(options.get("max_route_points", DEFAULT_MAX_ROUTE_POINTS)),
        snap_radius_m=float(options.get("snap_radius_m", DEFAULT_SNAP_RADIUS_M)),
    )


register_provider(NAME, _factory)
