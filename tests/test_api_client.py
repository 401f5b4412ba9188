"""An API consumer's view: a client generated from ``/openapi.json`` by openapi-python-client
runs a whole job's life against the API over HTTP (``jobworker dev``'s request handler on a
free local port), every answer parsed into the model the document declares for its status."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.test_api import DEPOT, LOCATIONS
from tests.test_dev_server import serving_api

pytestmark = pytest.mark.usefixtures("poller_ends_when_idle")

PACKAGE = "jobworker_client"


@pytest.fixture
def base_url(app_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from jobworker.aws import runtime

    monkeypatch.setenv("POLL_INTERVAL", "300")  # one poll, then the poller invocation ends
    runtime.reset()
    with serving_api() as (host, port):
        yield f"http://{host}:{port}"


def generate_client(base_url: str, folder: Path) -> ModuleType:
    with urllib.request.urlopen(f"{base_url}/openapi.json", timeout=10) as answer:
        document = json.loads(answer.read())
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "config.yaml").write_text("post_hooks: []\n")  # no formatter needed to import it
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path",
         str(folder / "openapi.json"), "--meta", "none", "--output-path",
         str(folder / PACKAGE), "--config", str(folder / "config.yaml")],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every schema became a model
    sys.path.insert(0, str(folder))
    return importlib.import_module(PACKAGE)


@pytest.fixture
def client_package(base_url: str, tmp_path: Path) -> Iterator[ModuleType]:
    package = generate_client(base_url, tmp_path)
    yield package
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def operation(name: str) -> Any:
    """The generated module of one operation, by tag and operationId: ``jobs.create_job``."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_client__runs_a_whole_job_life_typed(client_package: ModuleType, base_url: str,
                                             handlers: dict[str, Any]) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    client = client_package.Client(base_url=base_url, raise_on_unexpected_status=True)

    assert operation("service.get_health").sync(client=client).status == "ok"

    # A PENDING job: create, enqueue, read, list, cancel, retry.
    created = operation("jobs.create_job").sync_detailed(
        client=client, body=models.CreateJobRequest.from_dict({"kind": "noop",
                                                              "payload": {"order": 1}}))
    assert created.status_code == 201
    job = created.parsed
    assert isinstance(job, models.JobView)
    assert job.progress == models.Progress.PENDING
    assert operation("jobs.enqueue_job").sync(client=client, job_id=job.job_id).progress == "QUEUED"
    assert operation("jobs.get_job").sync(client=client, job_id=job.job_id).job_id == job.job_id
    page = operation("jobs.list_jobs").sync(client=client, progress=models.Progress.QUEUED,
                                            limit=10)
    assert [listed.job_id for listed in page.jobs] == [job.job_id]
    cancelled = operation("jobs.cancel_job").sync(client=client, job_id=job.job_id)
    assert cancelled.progress == "CANCELLED"
    retried = operation("jobs.retry_job").sync(client=client, job_id=job.job_id)
    assert (retried.progress, retried.attempts) == ("QUEUED", 0)

    # Refusals come back as the error envelope, typed.
    refused = operation("jobs.enqueue_job").sync_detailed(client=client, job_id=job.job_id)
    assert refused.status_code == 409
    assert isinstance(refused.parsed, models.ErrorEnvelope)
    assert refused.parsed.error.code == "illegal_transition"

    # A batch, and the stats.
    batch = operation("jobs.create_jobs").sync(client=client, body=models.BatchRequest.from_dict(
        {"jobs": [{"kind": "noop"}, {"kind": "noop", "priority": 5}]}))
    assert batch.count == len(batch.job_ids) == 2
    assert operation("jobs.get_stats").sync(client=client).queue_depth == 3

    # A route job: accepted (202), replayed (200), run by the poller, its routes typed.
    body = models.GenerateRoutesRequest.from_dict({
        "location_group": {"depot": DEPOT, "locations": LOCATIONS},
        "settings": {"vehicles": 2, "vehicle_capacity": 5, "max_runtime_seconds": 1,
                     "seed": 7}})
    accepted = operation("routes.generate_routes").sync_detailed(client=client, body=body,
                                                    idempotency_key="client-route-1")
    replay = operation("routes.generate_routes").sync_detailed(client=client, body=body,
                                                  idempotency_key="client-route-1")
    assert (accepted.status_code, replay.status_code) == (202, 200)
    route_job = accepted.parsed
    assert replay.parsed.job_id == route_job.job_id
    assert "routes" in route_job.links.to_dict()
    summary = handlers["poller"](10.0)
    assert (summary["completed"], summary["failed"]) == (4, 0), summary  # 3 noop, 1 route
    done = operation("jobs.get_job").sync(client=client, job_id=route_job.job_id)
    assert done.progress == "COMPLETED", done.error
    plan = operation("routes.get_routes").sync(client=client, job_id=route_job.job_id)
    assert isinstance(plan, models.RoutesView)
    visited = [stop.location_id for route in plan.routes for stop in route.stops]
    assert sorted(visited) == sorted(location["id"] for location in LOCATIONS)
    geojson = operation("routes.get_routes").sync(client=client, job_id=route_job.job_id,
                                                  format_="geojson")
    assert isinstance(geojson, models.FeatureCollection)
    assert {feature.geometry["type"] for feature in geojson.features} == {"Point", "LineString"}
