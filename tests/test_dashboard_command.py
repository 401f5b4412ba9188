"""``jobworker dashboard --api-url URL``: the page for an API behind IAM auth. Run as a user runs
it, with fake AWS credentials, against a local stand-in for API Gateway that refuses anything
not signed with Signature V4 (no connection to AWS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parents[1]
ACCESS_KEY = "AKIDEXAMPLEFAKE"
SECRET_KEY = "fake-secret"
REGION = "eu-west-1"


class SignedOnlyApi(BaseHTTPRequestHandler):
    """Answers like the API when the request carries a SigV4 signature for execute-api in
    REGION by ACCESS_KEY; 403 (as API Gateway does) otherwise. Records what it saw."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        self.seen.append({"method": self.command, "path": self.path, "auth": auth,
                          "date": self.headers.get("X-Amz-Date"), "body": body})
        signed = auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/") and \
            f"/{REGION}/execute-api/aws4_request" in auth and \
            self._signature_holds(auth, body)
        status, answer = (200, {"counts": {"QUEUED": 7}, "echo": body.decode()}) if signed \
            else (403, {"message": "Forbidden"})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _signature_holds(self, auth: str, body: bytes) -> bool:
        """Recompute the signature from what arrived (method, path and query, the signed
        headers, the body), as API Gateway does: a wrong path, query or body hash fails."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        fields = dict(part.strip().split("=", 1)
                      for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
        signed_headers = fields["SignedHeaders"].split(";")
        request = AWSRequest(method=self.command, url=f"http://{self.headers['Host']}{self.path}",
                             data=body, headers={name: self.headers[name]
                                                 for name in signed_headers})
        request.context["timestamp"] = self.headers["X-Amz-Date"]
        signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request)
        return bool(fields["Signature"] == expected)

    do_GET = do_POST = _answer  # noqa: N815 (the names http.server calls)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    SignedOnlyApi.seen.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), SignedOnlyApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def aws_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_EC2_METADATA_DISABLED": "true", **extra})
    return env


@pytest.fixture
def dashboard(upstream: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobworker.dev.cli", "dashboard", "--api-url", upstream,
         "--port", str(port), "--region", REGION],
        cwd=ROOT, env=aws_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "jobworker dashboard is up" in line:
            break
        assert process.poll() is None, "jobworker dashboard exited early"
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def fetch(url: str, body: bytes | None = None, *, method: str | None = None,
          data: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, bytes, str]:
    body = data if data is not None else body
    request = urllib.request.Request(url, data=body, method=method or ("POST" if body else "GET"),
                                     headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("Content-Type", "")


def test_stand_in_refuses_unsigned_calls(upstream: str) -> None:
    status, _, _ = fetch(upstream + "/jobs/stats")
    assert status == 403


def _signed_call(upstream: str, *, secret: str, signed_body: bytes, sent_body: bytes
                 ) -> int:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=upstream + "/jobs?kind=noop", data=signed_body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, secret), "execute-api", REGION).add_auth(request)
    status, _, _ = fetch(upstream + "/jobs?kind=noop", method="POST", data=sent_body,
                         headers=dict(request.headers.items()))
    return status


def test_stand_in_checks_the_signature_not_its_shape(upstream: str) -> None:
    body = b'{"kind": "noop"}'
    assert _signed_call(upstream, secret=SECRET_KEY, signed_body=body, sent_body=body) == 200
    assert _signed_call(upstream, secret="another", signed_body=body, sent_body=body) == 403
    assert _signed_call(upstream, secret=SECRET_KEY, signed_body=body,
                        sent_body=b'{"kind": "evil"}') == 403


def test_dashboard__serves_the_page_locally(dashboard: str) -> None:
    status, body, kind = fetch(dashboard + "/ui/index.html")
    assert status == 200
    assert kind.startswith("text/html")
    assert b'src="app.js"' in body
    assert json.loads(fetch(dashboard + "/ui/config.json")[1]) == {"tile_url": None}


def test_dashboard__signs_every_api_call_with_the_users_credentials(dashboard: str) -> None:
    status, body, _ = fetch(dashboard + "/jobs/stats?x=1")
    assert status == 200, body
    assert json.loads(body)["counts"] == {"QUEUED": 7}
    status, body, _ = fetch(dashboard + "/jobs/generate", b'{"settings": {}}')
    assert status == 200
    assert json.loads(body)["echo"] == '{"settings": {}}'  # the signed body arrived intact
    calls = SignedOnlyApi.seen
    assert [call["path"] for call in calls] == ["/jobs/stats?x=1", "/jobs/generate"]
    assert all(call["date"] for call in calls)
    assert all(f"Credential={ACCESS_KEY}/" in call["auth"] for call in calls)
    assert "fake-secret" not in json.dumps([call["auth"] for call in calls])


def test_dashboard__without_credentials_says_so(upstream: str) -> None:
    env = aws_env()
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    done = subprocess.run(
        [sys.executable, "-m", "jobworker.dev.cli", "dashboard", "--api-url", upstream,
         "--port", str(free_port()), "--region", REGION],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "no AWS credentials found" in done.stderr


def test_region__comes_from_an_execute_api_host() -> None:
    from jobworker.dev.dashboard import region_for

    url = "https://abc123.execute-api.ap-southeast-2.amazonaws.com"
    assert region_for(url, None) == "ap-southeast-2"
    assert region_for(url, "us-east-1") == "us-east-1"
