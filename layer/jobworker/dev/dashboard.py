"""``jobworker dashboard --api-url URL``: the dashboard for an API behind IAM auth.

The template's API answers only requests signed with AWS Signature V4, which a browser cannot
make by itself. This command serves the page on localhost and forwards its API calls to the
deployed API, each one signed with the user's own AWS credentials (botocore's SigV4Auth, service
``execute-api``). The credentials stay in this process; the browser never sees them.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SERVICE = "execute-api"
FORWARDED_HEADERS = ("content-type", "accept", "idempotency-key")
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
UPSTREAM_TIMEOUT_SECONDS = 30


class DashboardError(Exception):
    pass


def region_for(api_url: str, explicit: str | None) -> str:
    """--region, else the region in an execute-api host name, else the AWS config's."""
    if explicit:
        return explicit
    found = _REGION_IN_HOST.search(urlsplit(api_url).hostname or "")
    if found:
        return found.group(1)
    import botocore.session

    configured: str | None = botocore.session.Session().get_config_variable("region")
    if not configured:
        raise DashboardError("no AWS region: pass --region or set AWS_REGION")
    return configured


class Signer:
    """Signs requests to one API with the credentials botocore finds (env, profile, SSO...)."""

    def __init__(self, api_url: str, region: str) -> None:
        import botocore.session

        if urlsplit(api_url).scheme not in ("https", "http"):
            raise DashboardError(f"--api-url must be an https:// URL, not {api_url!r}")
        self.base = api_url.rstrip("/")
        self.region = region
        credentials = botocore.session.Session().get_credentials()
        if credentials is None:
            raise DashboardError("no AWS credentials found (aws configure, AWS_PROFILE or "
                                 "AWS_ACCESS_KEY_ID)")
        self.credentials = credentials

    def signed(self, method: str, path: str, body: bytes,
               headers: dict[str, str]) -> urllib.request.Request:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = self.base + path
        request = AWSRequest(method=method, url=url, data=body or None, headers=headers)
        # Frozen per request: credentials from a profile or SSO may be refreshed in between.
        SigV4Auth(self.credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        # The scheme was checked in __init__: http(s) only.
        return urllib.request.Request(url, data=body or None, method=method,  # noqa: S310
                                      headers=dict(request.headers.items()))


class DashboardHandler(BaseHTTPRequestHandler):
    signer: Signer
    tile_url: str | None
    server_version = "jobworker-dashboard"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/", "/ui"):
            self._answer(302, b"", "text/plain", {"Location": "/ui/"})
        elif path.startswith("/ui/"):
            self._static(path.removeprefix("/ui/") or "index.html")
        else:
            self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _static(self, name: str) -> None:
        from jobworker.api import ui

        if name == "config.json":
            self._answer(200, ui.page_config(self.tile_url).encode(), "application/json")
            return
        found = ui.static_file(name)
        if found is None:
            self._answer(404, b'{"error": {"code": "not_found", "message": "no such file"}}',
                         "application/json")
            return
        body, content_type = found
        self._answer(200, body.encode(), content_type)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() in FORWARDED_HEADERS}
        request = self.signer.signed(self.command, self.path, body, headers)
        try:
            # The URL is the checked --api-url plus a path: http(s) only.
            with urllib.request.urlopen(  # noqa: S310
                    request, timeout=UPSTREAM_TIMEOUT_SECONDS) as answer:
                self._answer(answer.status, answer.read(),
                             answer.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as exc:
            self._answer(exc.code, exc.read(), exc.headers.get("Content-Type", "application/json"))
        except (urllib.error.URLError, TimeoutError) as exc:
            message = {"error": {"code": "api_unreachable",
                                 "message": f"the API at {self.signer.base} did not answer: {exc}"}}
            self._answer(502, json.dumps(message).encode(), "application/json")

    def _answer(self, status: int, body: bytes, content_type: str,
                headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_server(signer: Signer, *, host: str, port: int,
                tile_url: str | None) -> ThreadingHTTPServer:
    handler = type("BoundDashboardHandler", (DashboardHandler,),
                   {"signer": signer, "tile_url": tile_url})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_dashboard(*, api_url: str, host: str, port: int, region: str | None,
                    tile_url: str | None) -> None:
    try:
        signer = Signer(api_url, region_for(api_url, region))
    except DashboardError as exc:
        raise SystemExit(f"jobworker dashboard: {exc}") from None
    server = make_server(signer, host=host, port=port, tile_url=tile_url)
    print(json.dumps({"message": "jobworker dashboard is up",
                      "ui": f"http://{host}:{server.server_address[1]}/ui/", "api": api_url,
                      "signing": f"SigV4 ({SERVICE}, {signer.region})"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
