"""``jobworker dev``: the whole system on one machine, running exactly the Lambda handlers.

* PostgreSQL: ``DATABASE_URL`` if set, else an embedded server whose data persists in
  ``.jobworker/pgdata`` (jobs survive a restart), migrated on start.
* API: ``http://127.0.0.1:8080``, each HTTP request turned into an API Gateway HTTP API (v2)
  event for ``functions/api/app.py``.
* Poller: invoked on a schedule (a new invocation every ``poll_interval`` when none runs) and
  by the API's kick, like the EventBridge schedule and the async invoke in AWS.
* Sweeper: invoked once at start, then every minute.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jobworker.dev.local import LambdaHandler, LocalContext, load_handler

log = logging.getLogger("jobworker.dev")

SCHEDULE_EVENT = {"source": "jobworker.schedule"}
SOCKET_TIMEOUT_SECONDS = 30.0  # a client that sends nothing for this long is dropped
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # the most a synchronous Lambda invoke takes


def request_to_event(method: str, target: str, headers: dict[str, str], body: bytes,
                     source_ip: str = "127.0.0.1", host: str = "127.0.0.1:8080") -> dict[str, Any]:
    """An HTTP request as API Gateway HTTP API (payload format 2.0) hands it to Lambda."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": lowered.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = {name: ",".join(values) for name, values in query.items()}
    if body:
        event["body"] = text
    return event


class ApiRequestHandler(BaseHTTPRequestHandler):
    """Every request, whatever its method, goes to the API handler, as API Gateway's
    ``$default`` route sends it: a method the API does not route gets the API's JSON 404, not
    http.server's HTML 501. The body is read only up to ``max_body_bytes`` (Lambda's own
    limit unless ``serve`` sets the API's), and a silent client is dropped after ``timeout``."""

    api: LambdaHandler
    server_version = "jobworker-dev"
    # One request at a time through the handler, as in one Lambda container: the resolver keeps
    # the current event in module state, so concurrent requests (a page's parallel fetches)
    # would answer each other's routes.
    api_lock = threading.Lock()
    default_request_version = "HTTP/1.0"  # so a refused request line still gets headers
    timeout = SOCKET_TIMEOUT_SECONDS  # StreamRequestHandler sets it on the socket
    max_body_bytes = LAMBDA_PAYLOAD_BYTES

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # http.server dispatches on do_<METHOD>
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        event = request_to_event(self.command, self.path, dict(self.headers.items()), body,
                                 source_ip=self.client_address[0],
                                 host=self.headers.get("Host", "127.0.0.1"))
        with self.api_lock:
            answer = self.api(event, LocalContext("jobworker-api", timeout_seconds=30))
        payload = answer.get("body") or ""
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else payload.encode()
        self.send_response(int(answer.get("statusCode", 200)))
        for name, value in (answer.get("headers") or {}).items():
            self.send_header(name, value)
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, value)
        for cookie in answer.get("cookies") or []:
            self.send_header("Set-Cookie", cookie)
        self._send_body(data)

    def _read_body(self) -> bytes | None:
        """The body, or None after answering why it will not be read."""
        if self.headers.get("Transfer-Encoding"):
            self._refuse(411, "length_required", "send the body with a Content-Length")
            return None
        declared = self.headers.get("Content-Length") or "0"
        if not declared.isdigit():
            self._refuse(400, "malformed_request", "Content-Length is not a number")
            return None
        length = int(declared)
        if length > self.max_body_bytes:
            self._refuse(413, "body_too_large", f"request body is {length} bytes; the limit is "
                         f"{self.max_body_bytes}")
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True  # the client went away mid-body: nothing to answer
            return None
        return body

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.close_connection = True  # the unread body must not be taken for the next request
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self._send_body(json.dumps({"error": {"code": code, "message": message}}).encode())

    def _send_body(self, data: bytes) -> None:
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """What http.server itself refuses (a malformed request line, headers too long),
        in the API's envelope instead of an HTML page."""
        self._refuse(code, "malformed_request", message or HTTPStatus(code).phrase)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def without_password(url: str) -> str:
    """The URL to print: the password, if any, as ***."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class LocalScheduler:
    """Starts poller and sweeper invocations in threads, the way the schedules and kicks do."""

    def __init__(self, poller: LambdaHandler, sweeper: LambdaHandler, *, poll_interval: float,
                 poller_timeout: float, sweep_every: float, max_pollers: int) -> None:
        self.poller = poller
        self.sweeper = sweeper
        self.poll_interval = poll_interval
        self.poller_timeout = poller_timeout
        self.sweep_every = sweep_every
        self.max_pollers = max_pollers
        self.running: set[LocalContext] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start_poller(self, *, only_if_idle: bool) -> bool:
        with self.lock:
            busy = len(self.running)
            if self.stopping.is_set() or busy >= self.max_pollers or (only_if_idle and busy):
                return False
            context = LocalContext("jobworker-poller", self.poller_timeout)
            self.running.add(context)
        thread = threading.Thread(target=self._invoke_poller, args=(context,), daemon=True)
        self.threads.append(thread)
        thread.start()
        return True

    def kick(self) -> None:
        self.start_poller(only_if_idle=False)

    def _invoke_poller(self, context: LocalContext) -> None:
        try:
            self.poller(dict(SCHEDULE_EVENT), context)
        except Exception:
            log.exception("poller invocation failed")
        finally:
            with self.lock:
                self.running.discard(context)

    def sweep(self) -> None:
        try:
            self.sweeper(dict(SCHEDULE_EVENT), LocalContext("jobworker-sweeper", 60))
        except Exception:
            log.exception("sweeper invocation failed")

    def run_forever(self) -> None:
        next_sweep = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now >= next_sweep:
                self.sweep()
                next_sweep = now + self.sweep_every
            self.start_poller(only_if_idle=True)
            self.stopping.wait(self.poll_interval)

    def stop(self, timeout: float) -> None:
        """Ask running pollers to end (their remaining time drops to zero) and wait for them."""
        self.stopping.set()
        with self.lock:
            for context in self.running:
                context.stop()
        end = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, end - time.monotonic()))


@contextmanager
def database(data_dir: Path) -> Iterator[tuple[str, str]]:
    """DATABASE_URL if set, else an embedded server whose data stays in ``data_dir``.
    Yields the URL and a psql command line for it."""
    if os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
        yield url, f"psql '{without_password(url)}'"
        return
    from jobworker.dev.localdb import embedded_postgres

    with embedded_postgres(data_dir.resolve(), keep=True) as server:
        yield server.url, f"{server.bin_dir / 'psql'} '{without_password(server.url)}'"


def serve(*, host: str, port: int, data_dir: Path, poller_timeout: float, sweep_every: float,
          max_pollers: int, kick_enabled: bool = True) -> None:
    from jobworker.aws import kick, runtime
    from jobworker.queue.schema import migrate

    # One process hosts what AWS runs in separate containers: give it a pool to share, and
    # keep the metrics documents (meant for CloudWatch) out of the terminal.
    os.environ.setdefault("DB_POOL_SIZE", "12")
    # Like a Lambda deployment with PollerIdleExitSeconds: a poller that finds nothing ends,
    # so the kick can always start a fresh one; the schedule (every poll_interval) is the net.
    os.environ.setdefault("POLLER_IDLE_EXIT_SECONDS", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    with database(data_dir) as (url, psql):
        os.environ["DATABASE_URL"] = url
        runtime.reset()
        revision = migrate(runtime.get_engine())
        config = runtime.get_settings()
        api = load_handler("api")
        scheduler = LocalScheduler(load_handler("poller"), load_handler("sweeper"),
                                   poll_interval=config.poll_interval,
                                   poller_timeout=poller_timeout, sweep_every=sweep_every,
                                   max_pollers=max_pollers)
        kick.set_local_kicker(scheduler.kick if kick_enabled else kick.no_kick)
        ApiRequestHandler.api = staticmethod(api)
        ApiRequestHandler.max_body_bytes = config.max_body_bytes
        httpd = ThreadingHTTPServer((host, port), ApiRequestHandler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        print(json.dumps({"message": "jobworker dev is up", "api": f"http://{host}:{port}",
                          "docs": f"http://{host}:{port}/docs",
                          "dashboard": f"http://{host}:{port}/ui/", "schema_revision": revision,
                          "poll_interval": config.poll_interval, "kick": kick_enabled,
                          "psql": psql}),
              flush=True)
        try:
            scheduler.run_forever()
        except KeyboardInterrupt:
            print(json.dumps({"message": "stopping: waiting for running jobs to finish "
                              "(Ctrl-C again to quit now; the sweeper re-queues them later)"}),
                  flush=True)
            with suppress(KeyboardInterrupt):
                scheduler.stop(timeout=poller_timeout)
        finally:
            httpd.shutdown()
            httpd.server_close()
            kick.set_local_kicker(None)
            runtime.reset()
