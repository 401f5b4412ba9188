"""Smoke test of ``jobworker bench``: every scenario runs at a tiny size and ends with one JSON
line holding its documented keys and the facts that do not depend on timing (every job drained,
the claim plan on its partial index, the kick seen). Timings are not checked: benches measure,
they never assert. Marked ``bench_smoke`` (``pytest -m bench_smoke`` runs only these).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from jobworker.aws.engine import libpq_url
from jobworker.dev.localdb import LocalPostgres

THROUGHPUT_KEYS = {
    "jobworker_jobs_per_s", "procrastinate_jobs_per_s", "pgqueuer_jobs_per_s",
    "ceiling_jobs_per_s", "ratio_vs_best_peer", "ratio_vs_ceiling",
    "enqueue_api_single_per_s", "enqueue_api_batch_per_s", "enqueue_library_bulk_per_s",
    "ratio_vs_peer_at_equal_batch", "pgqueuer_best_batch_size", "ratio_best_vs_best",
    "defaults_vs_best", "info_vs_warning",
}
CLAIM_KEYS = {"claim_ms_10k", "claim_ms_100k", "claim_ms_1m", "ratio_1m_vs_10k"}
COLD_START_KEYS = {
    "api_ms", "poller_ms", "sweeper_ms", "naive_ms", "api_ratio_vs_naive",
    "poller_ratio_vs_naive", "sweeper_ratio_vs_naive", "ratio_vs_naive",
}
PICKUP_KEYS = {
    "pickup_p50_s_kick", "pickup_p99_s_kick", "pickup_p50_s_no_kick", "pickup_p99_s_no_kick",
    "poll_interval",
}


@pytest.fixture
def bench_on_test_server(pg_server: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenarios make their databases on the session's server instead of starting their own."""
    monkeypatch.setenv("DATABASE_URL", pg_server.url)


def run_bench(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from jobworker.dev.bench import main

    assert main([*argv, "--json"]) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    report: dict[str, Any] = json.loads(last_line)
    return report


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_throughput__reports_every_documented_key(capsys: pytest.CaptureFixture[str]) -> None:
    """One batch size, one round; a drain that leaves a job behind reports None."""
    report = run_bench(["throughput", "--jobs", "200", "--workers", "1", "--batch-size", "100",
                        "--batches", "100", "--pgqueuer-batches", "100",
                        "--template-batch-size", "100", "--repeat", "1",
                        "--systems", "jobworker,jobworker_info,pgqueuer,ceiling",
                        "--api-singles", "3", "--api-batches", "1"], capsys)

    assert report.keys() >= THROUGHPUT_KEYS
    assert report["jobworker_jobs_per_s"] is not None
    assert report["jobworker_info_jobs_per_s"] is not None
    assert report["defaults_jobs_per_s"] is not None
    assert report["ceiling_jobs_per_s"] is not None
    assert report["enqueue_api_single_per_s"] is not None
    assert list(report["ratio_vs_peer_at_equal_batch"]) == ["100"]
    if _installed("pgqueuer"):  # the bench extra; CI runs without it
        assert report["pgqueuer_best_batch_size"] == 100
        assert report["ratio_vs_peer_at_equal_batch"]["100"] is not None


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_claim_latency__reports_every_documented_key(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["claim-latency", "--scale", "0.001", "--claims", "3", "--repeat", "1"],
                       capsys)

    assert report.keys() >= CLAIM_KEYS
    assert report["plan_uses_partial_index"] is True


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_cold_start__reports_every_documented_key(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["cold-start", "--runs", "1"], capsys)

    assert report.keys() >= COLD_START_KEYS
    assert report["api_first_request_ms"] is not None


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_pickup_latency__reports_every_documented_key(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["pickup-latency", "--jobs", "1", "--poll-interval", "0.5",
                        "--settle", "0", "--gap", "0.1"], capsys)

    assert report.keys() >= PICKUP_KEYS
    assert report["kick_reported_by_dev"] == {"kick": True, "no_kick": False}


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_many_pollers__every_job_runs_exactly_once(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["many-pollers", "--jobs", "60", "--pollers", "3", "--batch-size", "10",
                        "--invocation-seconds", "1", "--repeat", "1"], capsys)

    assert report["every_job_exactly_once"] is True
    assert report["jobs_per_s"] is not None
    assert report["baseline_jobs_per_s"] is not None
    assert report["claim_p99_ms"] is not None


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_enqueue__times_every_path(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["enqueue", "--jobs", "5", "--repeat", "1"], capsys)

    assert report["library_per_s"] is not None
    assert report["library_transaction_per_s"] is not None
    assert report["api_per_s"] is not None
    assert report["psycopg_insert_per_s"] is not None
    if _installed("pgqueuer"):
        assert report["library_single_vs_pgqueuer"] is not None


SHORT_SUSTAINED = ["--minutes", "0.1", "--rate", "40", "--bucket-seconds", "3",
                   "--sweep-seconds", "2", "--retention-seconds", "1",
                   "--invocation-seconds", "2", "--batch-size", "50"]


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_sustained__reports_each_period_and_prunes(capsys: pytest.CaptureFixture[str],
                                                   pg_server: LocalPostgres) -> None:
    def naptime() -> str:
        with psycopg.connect(libpq_url(pg_server.url)) as conn:
            row = conn.execute("SHOW autovacuum_naptime").fetchone()
        assert row is not None
        return str(row[0])

    before = naptime()
    report = run_bench(["sustained", *SHORT_SUSTAINED, "--autovacuum-naptime", "7"], capsys)

    assert len(report["per_minute"]) == 2
    assert report["enqueued"] > 0
    assert report["pruned"] > 0  # a one-second retention prunes during the run
    assert all(period["jobs_per_s"] > 0 for period in report["per_minute"])
    assert report["autovacuum_naptime"] == "7s"  # the run's own, and put back afterwards
    assert naptime() == before


@pytest.mark.bench_smoke
@pytest.mark.usefixtures("bench_on_test_server")
def test_held_xmin__reports_the_phases_of_the_hold(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["held-xmin", *SHORT_SUSTAINED, "--hold-xmin-seconds", "2"], capsys)

    assert "hold_error" not in report
    assert report["jobs_per_s_during"] is not None
    assert report["claim_p99_ms_during"] is not None
    peer = report["peer"]
    if _installed("pgqueuer"):  # the peer through the same load and hold, in the same run
        assert "hold_error" not in peer, peer
        assert peer["enqueued"] > 0
        assert peer["jobs_per_s_during"] is not None
        assert peer["claim_p99_ms_during"] is not None
    else:
        assert "not installed" in peer["skipped"]


@pytest.mark.bench_smoke
def test_log_cost__measures_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_bench(["log-cost", "--lines", "1000", "--repeat", "1"], capsys)

    assert set(report["us_per_line"]) == {"powertools", "powertools_encoder_once",
                                          "fast_formatter", "fast_batched", "job_lines_plain",
                                          "job_lines_keys_once", "warning"}
    assert all(value > 0 for value in report["us_per_line"].values())


def test_bench__unknown_scenario_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from jobworker.dev.bench import main

    assert main(["no-such-scenario"]) == 2
