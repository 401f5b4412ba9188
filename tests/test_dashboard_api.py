"""What the dashboard reads besides the job routes: the per-minute aggregate (cheap at any table
size, checked with EXPLAIN), the page's static files and its settings, all through the API
handler as API Gateway calls it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker.queue.sql import query
from tests.conftest import LambdaClient


def finish_jobs(engine: Engine, progress: str, minutes_ago: list[float]) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (kind, progress, attempts, started_at, finished_at) "
            "SELECT 'noop', CAST(:progress AS progressenum), 1, t, t "
            "FROM unnest(CAST(:times AS timestamptz[])) AS t"),
            {"progress": progress,
             "times": [datetime.now(UTC) - timedelta(minutes=m) for m in minutes_ago]})


def test_throughput__counts_each_minute_by_outcome(engine: Engine, api: LambdaClient) -> None:
    finish_jobs(engine, "COMPLETED", [0, 0, 0, 5.01, 5.01])
    finish_jobs(engine, "FAILED", [5.01])
    finish_jobs(engine, "CANCELLED", [0])
    finish_jobs(engine, "COMPLETED", [61, 300])  # before the hour: not counted
    answer = api("GET", "/jobs/throughput?minutes=60")
    assert answer.status == 200, answer.text
    minutes = answer.json["minutes"]
    assert sum(m["completed"] for m in minutes) == 5
    assert sum(m["failed"] for m in minutes) == 1
    assert sum(m["cancelled"] for m in minutes) == 1
    by_failed = [m for m in minutes if m["failed"]]
    assert by_failed[0]["completed"] == 2  # the same minute, both outcomes in one row
    assert [m["minute"] for m in minutes] == sorted(m["minute"] for m in minutes)


def test_throughput__rejects_a_window_beyond_a_day(api: LambdaClient) -> None:
    answer = api("GET", "/jobs/throughput?minutes=5000")
    assert answer.status == 422
    assert answer.json["error"]["details"][0]["field"] == "query.minutes"


def test_throughput__reads_only_the_last_hour_through_the_finished_index(engine: Engine) -> None:
    """100,000 jobs that finished over the past weeks; the aggregate visits the last hour."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (kind, progress, attempts, started_at, finished_at) "
            "SELECT 'noop', 'COMPLETED', 1, now() - make_interval(mins => i), "
            "       now() - make_interval(mins => i) FROM generate_series(1, 100000) AS i"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))
    with engine.connect() as conn:
        plan = "\n".join(conn.execute(text("EXPLAIN " + str(query("job_finished_per_minute"))),
                                      {"since": datetime.now(UTC) - timedelta(hours=1)}).scalars())
    assert "jobs_finished_idx" in plan, plan
    assert "Seq Scan on jobs" not in plan, plan


def test_ui__index_links_the_page_scripts(api: LambdaClient) -> None:
    answer = api("GET", "/ui/index.html")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    for script in ("map.js", "app.js"):
        assert f'src="{script}"' in answer.text
    assert "<!-- leaflet" not in answer.text  # the marker is replaced, whether Leaflet is there


@pytest.mark.parametrize(("name", "kind"), [("app.js", "text/javascript"),
                                            ("map.js", "text/javascript"), ("app.css", "text/css")])
def test_ui__serves_its_files_with_their_type(api: LambdaClient, name: str, kind: str) -> None:
    answer = api("GET", f"/ui/{name}")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith(kind)


def test_ui__redirects_the_bare_path_and_refuses_other_names(api: LambdaClient) -> None:
    assert api("GET", "/ui").headers["Location"] == "/ui/index.html"
    assert api("GET", "/ui/").headers["Location"] == "/ui/index.html"
    for name in ("..%2Fapp.py", "app.py", "nothing.js"):
        assert api("GET", f"/ui/{name}").status == 404, name
    assert api("GET", "/ui/vendor/app.js").status == 404


def test_ui__config_carries_the_tile_url(api: LambdaClient,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from jobworker.aws import runtime

    assert api("GET", "/ui/config.json").json == {"tile_url": None}
    monkeypatch.setenv("TILE_URL", "https://tiles.example/{z}/{x}/{y}.png")
    runtime.reset()
    tiles = api("GET", "/ui/config.json").json
    assert tiles == {"tile_url": "https://tiles.example/{z}/{x}/{y}.png"}


def test_job__payload_on_its_own_route_and_the_lease_while_running(
        engine: Engine, api: LambdaClient) -> None:
    from jobworker import queue
    from jobworker.queue import NewJob

    with engine.begin() as conn:
        job, _ = queue.create_job(conn, NewJob(kind="noop", payload={"x": 1}), enqueue=True)
        queue.claim_batch(conn, owner="w-7", limit=1, lease_seconds=60)
    plain = api("GET", f"/jobs/{job.job_id}").json
    assert "payload" not in plain
    assert plain["lease_owner"]  # in its public form
    assert plain["lease_expires_at"] is not None
    answer = api("GET", f"/jobs/{job.job_id}/payload")
    assert answer.status == 200
    assert answer.json == {"job_id": str(job.job_id), "kind": "noop", "payload": {"x": 1}}
    missing = api("GET", "/jobs/00000000-0000-0000-0000-000000000009/payload")
    assert missing.status == 404
