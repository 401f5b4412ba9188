"""The kick never holds the answer of a committed job: against a Lambda endpoint that accepts
connections and never answers (a local TCP server on 127.0.0.1, standing in for a subnet with
no route to Lambda's API), the request is answered, the job is QUEUED, the poller is tried
exactly once (no retries), and the failure is a log line and a metric."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker.aws import kick, runtime
from tests.conftest import LambdaClient
from tests.test_api import generate_body


class SilentServer:
    """Accepts TCP connections, reads what comes, never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.closing.set()
        self.socket.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_lambda(app_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    server = SilentServer()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1",
                        "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{server.port}",
                        "POLLER_FUNCTION_NAME": "jobworker-poller"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    runtime.reset()
    kick._lambda_client.cache_clear()
    yield server
    kick._lambda_client.cache_clear()
    server.close()


def test_kick__client_gives_up_within_its_budget_and_never_retries() -> None:
    config = kick.client_config()

    assert config.connect_timeout + config.read_timeout <= kick.KICK_BUDGET_SECONDS <= 1.0
    assert config.retries["total_max_attempts"] == 1


def test_kick__unanswered_invoke_still_answers_202_with_the_job_queued(
        api: LambdaClient, engine: Engine, silent_lambda: SilentServer,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level(logging.WARNING, logger="jobworker.kick"):
        answer = api("POST", "/jobs/generate", body=generate_body())

    assert answer.status == 202, answer.text
    with engine.connect() as conn:
        progress = conn.execute(text("SELECT progress::text FROM jobs WHERE job_id = :id"),
                                {"id": answer.json["job_id"]}).scalar_one()
    assert progress == "QUEUED"
    assert len(silent_lambda.connections) == 1  # one try, no retry
    (warning,) = [r for r in caplog.records if r.name == "jobworker.kick"]
    assert "schedule will pick the job up" in warning.getMessage()
    assert warning.exc_info is not None
    assert "timeout" in type(warning.exc_info[1]).__name__.lower()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()
                 if line.startswith('{"_aws"')]
    assert [doc.get("PollerKickFailed") for doc in documents] == [[1.0]]


def test_kick__failure_metric_is_not_emitted_for_a_good_kick(
        api: LambdaClient, capsys: pytest.CaptureFixture[str]) -> None:
    kicks: list[None] = []
    kick.set_local_kicker(lambda: kicks.append(None))

    answer = api("POST", "/jobs/generate", body=generate_body())

    assert answer.status == 202, answer.text
    assert len(kicks) == 1
    assert "PollerKickFailed" not in capsys.readouterr().out
