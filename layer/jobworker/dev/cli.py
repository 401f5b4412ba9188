"""The ``jobworker`` command: migrate, invoke a handler, run the local stack, road datasets,
benchmarks."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from jobworker.dev import recipes
from jobworker.dev.local import HANDLER_NAMES


def _migrate(args: argparse.Namespace) -> int:
    from jobworker.aws import runtime
    from jobworker.queue.schema import migrate

    revision = migrate(runtime.get_engine())
    print(json.dumps({"schema_revision": revision}))
    return 0


def _invoke(args: argparse.Namespace) -> int:
    """Run one handler in-process with a Lambda-like context: sam local invoke, without Docker."""
    from jobworker.dev.local import LocalContext, load_handler

    event: Any = json.loads(Path(args.event).read_text()) if args.event else {}
    handler = load_handler(args.handler)
    answer = handler(event, LocalContext(f"jobworker-{args.handler}", args.timeout))
    print(json.dumps(answer, default=str))
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C, SIGINT and SIGTERM stop the server the same way, even when it was started
    where SIGINT is ignored (a shell starts background jobs so, and its children inherit it:
    ``jobworker dev &`` would otherwise not stop on ``kill -INT``)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def _dev(args: argparse.Namespace) -> int:
    from jobworker.dev.server import serve

    _stop_on_signals()
    serve(host=args.host, port=args.port, data_dir=Path(args.data_dir),
          poller_timeout=args.poller_timeout, sweep_every=args.sweep_every,
          max_pollers=args.max_pollers, kick_enabled=not args.no_kick)
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from jobworker.dev.dashboard import serve_dashboard

    _stop_on_signals()
    serve_dashboard(api_url=args.api_url, host=args.host, port=args.port, region=args.region,
                    tile_url=args.tile_url)
    return 0


def _bench(args: argparse.Namespace, rest: list[str]) -> int:
    """Benchmarks live in bench/ at the project root, installed as jobworker.dev.bench."""
    import importlib

    try:  # by name: mypy reads bench/ as the package it is in the checkout
        bench_main = importlib.import_module("jobworker.dev.bench").main
    except ImportError:
        print("jobworker: the benchmarks come with a source checkout: pip install -e '.[dev]'",
              file=sys.stderr)
        return 2

    return int(bench_main(rest))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="jobworker", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="apply schema migrations to DATABASE_URL")

    invoke = commands.add_parser("invoke", help="run a Lambda handler in-process")
    invoke.add_argument("handler", choices=HANDLER_NAMES)
    invoke.add_argument("--event", help="JSON event file (see events/)")
    invoke.add_argument("--timeout", type=float, default=60.0,
                        help="seconds the Lambda-like context allows (default 60)")

    dev = commands.add_parser("dev", help="run API + poller + sweeper locally")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    dev.add_argument("--data-dir", default=".jobworker/pgdata",
                     help="where the embedded Postgres keeps its data")
    dev.add_argument("--poller-timeout", type=float, default=60.0,
                     help="seconds one poller invocation may run (the Lambda's timeout)")
    dev.add_argument("--sweep-every", type=float, default=60.0)
    dev.add_argument("--max-pollers", type=int, default=2,
                     help="concurrent poller invocations (the reserved concurrency)")
    dev.add_argument("--no-kick", action="store_true",
                     help="don't wake a poller after an enqueue; rely on the schedule alone")

    from jobworker.dev.roads import add_parser as add_roads_parser

    add_roads_parser(commands)

    dashboard = commands.add_parser(
        "dashboard", help="serve the dashboard locally for a deployed API, signing its calls "
        "with your AWS credentials (IAM auth)")
    dashboard.add_argument("--api-url", required=True,
                           help="the API's URL, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com")
    dashboard.add_argument("--host", default="127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8090)
    dashboard.add_argument("--region", help="default: from the API's URL, else your AWS config")
    dashboard.add_argument("--tile-url", default=os.environ.get("TILE_URL"),
                           help="map tiles, e.g. https://tile.example/{z}/{x}/{y}.png")

    recipes.add_commands(commands)

    commands.add_parser("bench", help="benchmarks: jobworker bench SCENARIO --help",
                        add_help=False)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argparse.Namespace(), argv[1:])
    args = parser().parse_args(argv)
    try:
        if args.command == "migrate":
            return _migrate(args)
        if args.command == "invoke":
            return _invoke(args)
        if args.command == "roads":
            from jobworker.dev.roads import run as run_roads

            return run_roads(args)
        if args.command in recipes.RECIPES:
            return recipes.run(args)
        if args.command == "dashboard":
            return _dashboard(args)
        return _dev(args)
    except Exception as exc:
        from jobworker.aws.settings import ConfigError

        if isinstance(exc, ConfigError):
            print(f"jobworker: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
