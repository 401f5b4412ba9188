"""``jobworker bench cold-start``: what importing each handler costs, against a naive module.

Each measurement is a fresh ``python -c`` process that imports one module by file path
(``importlib.util.spec_from_file_location``, as Lambda's bootstrap does) and reports the
milliseconds the import took (interpreter start-up, the same for all, is left out). The
naive module imports Powertools' event handler with validation (a pydantic model route),
``sqlalchemy.orm`` and psycopg up front. Rounds are interleaved; medians are reported.

Import time alone can flatter lazy imports: they may only move the cost into the first
request. So the scenario also times "import + first requests" in fresh processes, as Lambda
bills a cold start: the API handling ``GET /health`` and then a first ``POST /jobs/generate``
against a real database, and the naive module doing the same work (an ORM session ``SELECT
1``; a pydantic-validated body inserted as a QUEUED job through the ORM session).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .common import (
    PROJECT_ROOT,
    BenchServer,
    bench_server,
    emit_json,
    interleaved,
    median,
    print_table,
    ratio,
    rounded,
    say,
)

HANDLERS = ("api", "poller", "sweeper")
GENERATE_BODY = {  # the API's smallest route request (the same as bench throughput's)
    "location_group": {"depot": {"lat": 52.37, "lon": 4.89},
                       "locations": [{"id": "a", "lat": 52.36, "lon": 4.88, "demand": 1}]},
    "settings": {"vehicles": 1, "vehicle_capacity": 10, "max_runtime_seconds": 1},
}

NAIVE_MODULE = '''\
"""A naive API handler: everything imported up front, an ORM session per request."""
import json
import os

import psycopg  # noqa: F401
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

app = APIGatewayHttpResolver(enable_validation=True)
_engine = None


class Point(BaseModel):
    lat: float
    lon: float


class Location(Point):
    id: str
    demand: int = 1


class LocationGroup(BaseModel):
    depot: Point
    locations: list[Location]


class Settings(BaseModel):
    vehicles: int
    vehicle_capacity: int
    max_runtime_seconds: float = 10


class Generate(BaseModel):
    location_group: LocationGroup
    settings: Settings


def engine():
    global _engine
    if _engine is None:
        _engine = create_engine(os.environ["NAIVE_DATABASE_URL"], pool_pre_ping=True)
    return _engine


@app.get("/health")
def health() -> dict:
    with Session(engine()) as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "database": "ok"}


@app.post("/jobs/generate")
def generate(body: Generate):
    with Session(engine()) as session:
        job_id = session.execute(text(
            "INSERT INTO jobs (kind, progress, payload) VALUES"
            " ('generate_routes', 'QUEUED', CAST(:payload AS jsonb)) RETURNING job_id"),
            {"payload": body.model_dump_json()}).scalar_one()
        session.commit()
    return Response(202, "application/json", json.dumps({"job_id": str(job_id)}))


def lambda_handler(event, context):
    return app.resolve(event, context)
'''

# Runs in the fresh process: import by path, optionally handle GET /health then POST
# /jobs/generate, print JSON.
CHILD = '''\
import importlib.util, json, sys, time
path, first_request = sys.argv[1], sys.argv[2] == "1"
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler_under_test", path)
module = importlib.util.module_from_spec(spec)
sys.modules["handler_under_test"] = module
spec.loader.exec_module(module)
imported = time.perf_counter()
status = None
if first_request:
    class Context:
        function_name = "bench"
        function_version = "$LATEST"
        memory_limit_in_mb = 1024
        aws_request_id = "00000000-0000-0000-0000-000000000000"
        invoked_function_arn = "arn:aws:lambda:local:000000000000:function:bench"
        log_group_name = "/aws/lambda/bench"
        log_stream_name = "bench"
        def get_remaining_time_in_millis(self):
            return 30000
    def event(method, path, body=None):
        return {"version": "2.0", "routeKey": "$default", "rawPath": path,
                "rawQueryString": "", "isBase64Encoded": False, "body": body,
                "headers": {"host": "bench", "content-type": "application/json"},
                "requestContext": {"http": {"method": method, "path": path,
                                            "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                            "userAgent": "bench"},
                                   "requestId": "bench", "routeKey": "$default",
                                   "stage": "$default", "accountId": "000000000000",
                                   "apiId": "bench", "domainName": "bench",
                                   "domainPrefix": "bench", "time": "", "timeEpoch": 0}}
    status = [module.lambda_handler(event("GET", "/health"), Context())["statusCode"],
              module.lambda_handler(event("POST", "/jobs/generate", sys.argv[3]),
                                    Context())["statusCode"]]
done = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "total_ms": (done - started) * 1000, "status": status,
                  "modules": len(sys.modules)}))
'''


def lambda_env(database_url: str, tracing: bool) -> dict[str, str]:
    """Environment of a handler process, as the template gives a Lambda function."""
    from jobworker.aws.engine import sqlalchemy_url

    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("POWERTOOLS_", "AWS_LAMBDA_"))}
    env.update({
        "POWERTOOLS_METRICS_NAMESPACE": "jobworker",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "DATABASE_URL": database_url,
        "NAIVE_DATABASE_URL": sqlalchemy_url(database_url).render_as_string(hide_password=False),
        "PYTHONPATH": str(PROJECT_ROOT),
    })
    if tracing:  # a function with Tracing: Active runs with the X-Ray SDK enabled
        env["AWS_LAMBDA_FUNCTION_NAME"] = "bench"
    else:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def measure(path: Path, env: dict[str, str], service: str, first_request: bool
            ) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "1" if first_request else "0",
         json.dumps(GENERATE_BODY)],
        env={**env, "POWERTOOLS_SERVICE_NAME": service}, cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=120, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"measuring {path} failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if first_request and result["status"] != [200, 202]:
        raise RuntimeError(f"{path}: GET /health, POST /jobs/generate answered "
                           f"{result['status']}")
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench cold-start",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10,
                        help="fresh processes per module (default 10)")
    parser.add_argument("--tracing", action="store_true",
                        help="run as a function with X-Ray tracing active (default: "
                             "POWERTOOLS_TRACE_DISABLED=true)")
    parser.add_argument("--no-first-request", action="store_true",
                        help="skip the import + first request measurement")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def run(args: argparse.Namespace, server: BenchServer, naive_path: Path) -> dict[str, Any]:
    env = lambda_env(server.migrated_database("jobworker_cold"), args.tracing)
    functions = Path(__file__).resolve().parents[1] / "functions"  # bench runs from a checkout
    paths = {name: functions / name / "app.py" for name in HANDLERS}
    paths["naive"] = naive_path
    variants: dict[str, Callable[[], dict[str, Any]]] = {
        name: partial(measure, path, env, f"jobworker-{name}", False)
        for name, path in paths.items()
    }
    if not args.no_first_request:
        variants["api_first_request"] = partial(measure, paths["api"], env, "jobworker-api", True)
        variants["naive_first_request"] = partial(measure, naive_path, env, "naive", True)
    say(f"cold-start: {args.runs} fresh processes per module ...")
    results = interleaved(args.runs, variants)
    import_ms = {name: median([r["import_ms"] for r in runs]) for name, runs in results.items()}
    total_ms = {name: median([r["total_ms"] for r in runs]) for name, runs in results.items()}
    naive = import_ms["naive"]
    ratios = {name: ratio(import_ms[name], naive) for name in HANDLERS}
    present = [value for value in ratios.values() if value is not None]
    report: dict[str, Any] = {
        "api_ms": rounded(import_ms["api"]),
        "poller_ms": rounded(import_ms["poller"]),
        "sweeper_ms": rounded(import_ms["sweeper"]),
        "naive_ms": rounded(naive),
        "api_ratio_vs_naive": ratios["api"],
        "poller_ratio_vs_naive": ratios["poller"],
        "sweeper_ratio_vs_naive": ratios["sweeper"],
        "ratio_vs_naive": max(present) if present else None,
        "api_first_request_ms": rounded(total_ms.get("api_first_request")),
        "naive_first_request_ms": rounded(total_ms.get("naive_first_request")),
        "first_request_ratio_vs_naive": ratio(total_ms.get("api_first_request"),
                                              total_ms.get("naive_first_request")),
        "modules_loaded": {name: runs[0]["modules"] for name, runs in results.items()},
        "runs": args.runs,
        "tracing": "active (X-Ray SDK enabled)" if args.tracing
                   else "disabled (POWERTOOLS_TRACE_DISABLED=true)",
        "python": sys.version.split()[0],
    }
    print_report(report)
    return report


def print_report(report: dict[str, Any]) -> None:
    rows = [(name, report[f"{name}_ms"],
             report.get(f"{name}_ratio_vs_naive", 1.0 if name == "naive" else None),
             report["modules_loaded"][name]) for name in (*HANDLERS, "naive")]
    print_table(f"Import of the handler module in a fresh process (median of {report['runs']}, "
                f"ms; tracing {report['tracing']})",
                ("module", "import ms", "vs naive", "modules loaded"), rows)
    if report["api_first_request_ms"] is not None:
        print_table("Import + first requests (GET /health, then POST /jobs/generate, against "
                    "the database, fresh process)",
                    ("module", "ms", "vs naive"), [
                        ("api", report["api_first_request_ms"],
                         report["first_request_ratio_vs_naive"]),
                        ("naive (ORM session: SELECT 1, then INSERT + COMMIT)",
                         report["naive_first_request_ms"], 1.0)])
    print(f"\nratio_vs_naive (worst handler) = {report['ratio_vs_naive']}")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jobworker-cold-") as scratch:
        naive_path = Path(scratch) / "naive_app.py"
        naive_path.write_text(NAIVE_MODULE)
        with bench_server() as server:
            report = run(args, server, naive_path)
    if args.json:
        emit_json(report)
    return 0
