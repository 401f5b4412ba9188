"""Dashboard load time on ``jobworker dev`` with 100,000 jobs: median of 5 page loads, from
navigation until the page has drawn its data. Run: ``.venv/bin/python tests/dashboard_load.py``."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright
from sqlalchemy import text

from jobworker.aws.engine import make_engine
from jobworker.dev.localdb import embedded_postgres
from jobworker.queue.schema import migrate
from tests.test_dashboard_browser import CHROMIUM, CHROMIUM_FLAGS, Dev

FILL = """
INSERT INTO jobs (kind, progress, attempts, started_at, finished_at, created_at)
SELECT 'noop', 'COMPLETED', 1, now() - make_interval(secs => i),
       now() - make_interval(secs => i), now() - make_interval(secs => i)
  FROM generate_series(1, 99000) AS i;
INSERT INTO jobs (kind, progress) SELECT 'noop', 'PENDING' FROM generate_series(1, 1000);
"""
PAGES = [("overview", "#/", "[data-finished-last-hour]"), ("jobs", "#/jobs", "tr[data-job-id]")]


def main() -> None:
    with embedded_postgres() as server:
        engine = make_engine(server.url)
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text(FILL))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE jobs"))
        dev = Dev(server.url)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                     args=CHROMIUM_FLAGS)
                page = browser.new_page()
                for name, route, ready in PAGES:
                    seconds = []
                    for _ in range(5):
                        start = time.perf_counter()
                        page.goto(f"{dev.base}/ui/index.html{route}")
                        page.wait_for_selector(ready)
                        seconds.append(time.perf_counter() - start)
                    print(f"{name}: median {statistics.median(seconds):.3f} s "
                          f"({', '.join(f'{s:.3f}' for s in seconds)})")
                browser.close()
        finally:
            dev.stop()


if __name__ == "__main__":
    main()
