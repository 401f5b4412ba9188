"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a real
``jobworker dev`` (its API, pollers and sweeper) on the session's embedded Postgres.

Where Chromium or Playwright is missing the tests skip saying why; under CI (``CI=true``) they
fail instead, so CI cannot pass without having run them. Each test saves a screenshot under
``test-artifacts/browser/`` (or ``$JOBWORKER_TEST_ARTIFACTS/browser``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.engine import make_engine
from jobworker.queue import NewJob
from jobworker.queue.schema import migrate
from tests.conftest import DatabaseFactory
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("JOBWORKER_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("JOBWORKER_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
# Keep Chromium off the network: no background services, no component updates, no sync
# (on a closed network they fail noisily; elsewhere they would phone home).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
WAIT_MS = 60_000


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return (f"no Chromium at {CHROMIUM}: as root, `make browser` (apt-get install chromium "
                "chromium-driver)")
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI requires the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Dev:
    """``jobworker dev`` on its own database of the session's server."""

    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": database_url, "POLL_INTERVAL": "1",
               "POWERTOOLS_LOG_LEVEL": "WARNING"}
        env.pop("TILE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobworker.dev.cli", "dev", "--port", str(self.port),
             "--poller-timeout", "20"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if "jobworker dev is up" in line:
                return
            assert self.process.poll() is None, "jobworker dev exited early"
        raise AssertionError("jobworker dev did not come up")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def dev_database(databases: DatabaseFactory) -> str:
    url = databases.create("jobworker_browser")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def dev(browser: Any, dev_database: str) -> Iterator[Dev]:
    server = Dev(dev_database)
    yield server
    server.stop()


@pytest.fixture
def db(dev: Dev, dev_database: str) -> Iterator[Engine]:
    engine = make_engine(dev_database)
    yield engine
    engine.dispose()


class Page:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, base: str, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.base = base
        self.name = name
        self.errors: list[str] = []
        self.expected_statuses: set[int] = set()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _on_console(self, message: Any) -> None:
        """Chromium logs every 4xx answer of a fetch as a console error; a test that provokes
        one on purpose says which status it expects, and only that one is let through."""
        if message.type != "error":
            return
        text = message.text
        if any(f"status of {status} " in text for status in self.expected_statuses):
            return
        self.errors.append(text)

    def open(self, hash_route: str) -> Any:
        self.page.goto(f"{self.base}/ui/{hash_route}")  # as a user types it: redirected
        return self.page

    def screenshot(self) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, dev: Dev, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = Page(browser, dev.base, request.node.name)
    yield page
    page.screenshot()
    page.close()
    assert page.errors == [], f"JavaScript errors in the console: {page.errors}"


def fill_jobs(db: Engine) -> None:
    """A mix of states that no poller will move: finished ones, PENDING ones, and QUEUED ones
    that may not run for an hour."""
    later = datetime.now(UTC) + timedelta(hours=1)
    with db.begin() as conn:
        conn.execute(text("TRUNCATE jobs, route_groups CASCADE"))
        queue.create_jobs(conn, [NewJob(kind="noop")] * 3, enqueue=False)
        for _ in range(4):
            queue.create_job(conn, NewJob(kind="noop", run_at=later), enqueue=True)
        conn.execute(text(
            "INSERT INTO jobs (kind, progress, attempts, started_at, finished_at, error) "
            "SELECT 'noop', CAST(p AS progressenum), 1, now(), now() - make_interval(mins => i), "
            "       CASE WHEN p = 'FAILED' THEN 'boom ' || i END "
            "FROM generate_series(1, 12) AS i, "
            "     LATERAL (SELECT CASE WHEN i % 4 = 0 THEN 'FAILED' ELSE 'COMPLETED' END) AS x(p)"))


def test_overview__counts_equal_the_database(tab: Page, db: Engine) -> None:
    fill_jobs(db)
    with db.connect() as conn:
        truth = dict(conn.execute(text(
            "SELECT progress::text, count(*) FROM jobs GROUP BY progress")).all())
        failed_reasons = set(conn.execute(text(
            "SELECT error FROM jobs WHERE progress = 'FAILED'")).scalars())
    page = tab.open("#/")
    page.wait_for_selector("[data-progress=QUEUED]")
    shown = {card.get_attribute("data-progress"): int(card.get_attribute("data-count"))
             for card in page.query_selector_all("[data-progress]")}
    assert {k: v for k, v in shown.items() if v} == truth
    assert page.get_attribute("[data-finished-last-hour]", "data-finished-last-hour") == "12"
    listed = {cell.inner_text() for cell in page.query_selector_all("td.error")}
    assert listed == failed_reasons


def listed_job_ids(page: Any) -> list[str]:
    return [row.get_attribute("data-job-id") for row in page.query_selector_all("tr[data-job-id]")]


def test_jobs__filter_by_progress_and_page_with_the_cursor(tab: Page, db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(text("TRUNCATE jobs, route_groups CASCADE"))
        ids = queue.create_jobs(conn, [NewJob(kind="noop")] * 55, enqueue=False)
        queue.create_job(conn, NewJob(kind="simulate"), enqueue=False)
    page = tab.open("#/jobs?progress=PENDING&kind=noop")
    page.wait_for_selector("tr[data-job-id]")
    first = listed_job_ids(page)
    page.click("a.next-page")
    page.wait_for_function("document.querySelectorAll('tr[data-job-id]').length === 5")
    second = listed_job_ids(page)
    assert len(first) == 50
    assert set(first) | set(second) == {str(job_id) for job_id in ids}
    assert page.query_selector("a.next-page") is None
    page.click("a.first-page")  # back to the newest, filters kept, as a link works anywhere
    page.wait_for_function("document.querySelectorAll('tr[data-job-id]').length === 50")
    assert listed_job_ids(page) == first


def test_cancel__a_queued_job_becomes_cancelled_in_the_database(tab: Page, db: Engine) -> None:
    with db.begin() as conn:
        job, _ = queue.create_job(conn, NewJob(kind="noop",
                                               run_at=datetime.now(UTC) + timedelta(hours=1)),
                                  enqueue=True)
    page = tab.open(f"#/job/{job.job_id}")
    page.click("button[data-action=cancel]")
    page.wait_for_selector("#action-result >> text=CANCELLED")
    with db.connect() as conn:
        assert queue.get_job(conn, job.job_id).progress.value == "CANCELLED"
    page.wait_for_selector("button[data-action=retry]:not([disabled])")


def test_submit__a_bad_body_shows_each_field_error_the_api_gives(tab: Page, dev: Dev) -> None:
    body = {"location_group": {"depot": {"lat": 95, "lon": 4.9}, "locations": []},
            "settings": {"vehicles": 0, "vehicle_capacity": 5}}
    status, answer = dev.call("POST", "/jobs/generate", body)
    assert status == 422
    expected = {detail["field"] for detail in answer["error"]["details"]}
    tab.expected_statuses.add(422)
    page = tab.open("#/submit")
    page.fill("#route-body", json.dumps(body))
    page.click("#submit-route")
    page.wait_for_selector("#route-result .field-errors li")
    shown = {item.get_attribute("data-field")
             for item in page.query_selector_all("#route-result .field-errors li")}
    assert shown == expected
    assert "body.location_group.depot.lat" in shown


def test_routes__submitted_job_completes_and_its_map_draws_every_route_and_stop(
        tab: Page, dev: Dev) -> None:
    page = tab.open("#/submit")
    page.click("text=Load an example")
    page.click("#submit-route")
    page.wait_for_url("**#/job/*")
    job_id = page.url.rsplit("/", 1)[-1]
    # The routes link appears once the job is COMPLETED (the page refreshes every 2 s).
    page.wait_for_selector("a[href^='#/routes/'], .progress.FAILED", timeout=120_000)
    assert page.query_selector(".progress.FAILED") is None, page.inner_text("pre.error")
    page.click("a[href^='#/routes/']")
    page.wait_for_selector("#map .jw-stop")
    status, routes = dev.call("GET", f"/jobs/{job_id}/routes")
    assert status == 200
    stops = sum(len(route["stops"]) for route in routes["routes"])
    assert len(routes["routes"]) >= 1
    assert len(page.query_selector_all("#map .jw-route")) == len(routes["routes"])
    assert len(page.query_selector_all("#map .jw-stop")) == stops
    assert len(page.query_selector_all("tr[data-vehicle]")) == len(routes["routes"])
    labels = sorted(int(marker.inner_text()) for marker in page.query_selector_all("#map .jw-stop"))
    expected = sorted(stop["sequence"] for route in routes["routes"] for stop in route["stops"])
    assert labels == expected
    # Each route in its own colour; each stop says when the vehicle arrives.
    lines = page.query_selector_all("#map path.jw-route")
    colours = {line.get_attribute("stroke") for line in lines}
    assert len(colours) == len(routes["routes"])
    markers = page.query_selector_all("#map .jw-stop")
    titles = [marker.get_attribute("title") or "" for marker in markers]
    assert all(" · arrives " in title for title in titles), titles
    if os.environ.get("JOBWORKER_DOCS_SCREENSHOT"):  # refresh the README's picture
        shutil.copy(tab.screenshot(), ROOT / "docs" / "dashboard-routes.png")

    # Without Leaflet in the package (no npm at install), the same page draws plain SVG.
    def without_leaflet(route: Any) -> None:
        page_html = route.fetch().text()
        route.fulfill(status=200, content_type="text/html", body=re.sub(
            r'<(script|link)[^>]*vendor/leaflet[^>]*>(</script>)?', "", page_html))

    page.route("**/ui/index.html", without_leaflet)
    page.reload()
    page.wait_for_selector("#map[data-renderer=svg] .jw-stop")
    assert len(page.query_selector_all("#map svg path.jw-route")) == len(routes["routes"])
    assert len(page.query_selector_all("#map svg g.jw-stop")) == stops
    assert page.query_selector("#map .jw-scale") is not None
    page.screenshot(path=str(ARTIFACTS / "routes-without-leaflet.png"), full_page=True)


FLEET_BODY: dict[str, Any] = {
    "location_group": {
        "depots": [{"id": "west", "lat": 52.37, "lon": 4.80},
                   {"id": "east", "lat": 52.36, "lon": 4.98}],
        "locations": [
            *({"id": f"S{i}", "lat": 52.33 + 0.01 * (i % 5), "lon": 4.82 + 0.02 * i,
               "demand": [1, 1]} for i in range(8)),
            # Far away and cheap to leave out: the plan drops it, with its reason.
            {"id": "remote", "lat": 52.6, "lon": 5.3, "demand": [1, 1], "required": False,
             "penalty": 0.01},
        ],
    },
    "settings": {
        "vehicles": [
            {"id": "van", "count": 2, "capacity": [10, 10], "start": "west", "end": "west"},
            {"id": "bike", "count": 1, "capacity": [4, 4], "start": "east"},
        ],
        "max_runtime_seconds": 2, "seed": 1,
    },
}


def test_routes__fleet_answer_shows_depots_vehicle_types_and_unassigned_reasons(
        tab: Page, dev: Dev) -> None:
    status, job = dev.call("POST", "/jobs/generate", FLEET_BODY)
    assert status == 202, job
    deadline = time.monotonic() + 120
    while job["progress"] not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = dev.call("GET", f"/jobs/{job['job_id']}")[1]
    assert job["progress"] == "COMPLETED", job
    answer = dev.call("GET", f"/jobs/{job['job_id']}/routes")[1]
    page = tab.open(f"#/routes/{job['job_id']}")
    page.wait_for_selector("#map .jw-stop")
    assert len(page.query_selector_all("#map .jw-route")) == len(answer["routes"])
    assert len(page.query_selector_all("#map .jw-stop")) == answer["locations_served"]
    assert len(page.query_selector_all("#map .jw-depot")) == 2
    left_out = {row.query_selector("td").inner_text(): row.query_selector("td.error").inner_text()
                for row in page.query_selector_all("tr.unassigned")}
    assert left_out == {item["location_id"]: item["reason"] for item in answer["unassigned"]}
    assert "remote" in left_out
    assert len(page.query_selector_all("#map .jw-unassigned")) == len(left_out)
    types = {route["vehicle_type"] for route in answer["routes"]} - {"vehicle"}
    summary = page.inner_text("table")
    assert all(f"({kind})" in summary for kind in types)
    if os.environ.get("JOBWORKER_DOCS_SCREENSHOT"):
        shutil.copy(tab.screenshot(), ROOT / "docs" / "dashboard-fleet-routes.png")
