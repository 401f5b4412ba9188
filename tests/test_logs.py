"""The cheaper formatter prints what Powertools' own formatter prints, line for line."""

from __future__ import annotations

import io
import json
import logging
import string
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.aws.logs import (
    FastFormatter,
    _fast_handlers,
    joined_keys,
    line_keys,
    log_each,
    make_logger,
)
from jobworker.poller.clock import SYSTEM_CLOCK
from jobworker.poller.loop import Budget, PollerOptions, run_poller
from jobworker.queue import NewJob

LAMBDA_KEYS = {"cold_start": True, "function_name": "jobworker-poller",
               "function_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678",
               "correlation_id": "req-1", "name": "%(name)s"}
messages = st.one_of(st.text(max_size=20), st.sampled_from(
    ["Found job", '{"a": 1}', " [1, 2]", "12", "true story", "null", "NaN", "-", "\t{"]))
extras = st.dictionaries(
    st.text(string.ascii_lowercase + "_", min_size=1, max_size=8).filter(
        lambda key: key not in {"message", "asctime", "name", "level", "args", "msg",
                                "module", "lineno"}),
    st.one_of(st.none(), st.integers(), st.text(max_size=10), st.booleans(), st.floats(),
              st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                   st.integers(), max_size=2)),
    max_size=4)


def record(message: Any, extra: dict[str, Any], args: Any = None) -> logging.LogRecord:
    return logging.getLogger("jobworker.worker").makeRecord(
        "jobworker.worker", logging.INFO, "loop.py", 42, message, args, None, "run", extra)


def formatters(**options: Any) -> tuple[LambdaPowertoolsFormatter, FastFormatter]:
    pair = (LambdaPowertoolsFormatter(**options), FastFormatter(**options))
    for formatter in pair:
        formatter.append_keys(service="jobworker-poller", **LAMBDA_KEYS)
    return pair


@settings(max_examples=150, deadline=None)
@given(message=messages, extra=extras)
def test_fast_formatter__prints_what_powertools_prints(message: str,
                                                       extra: dict[str, Any]) -> None:
    theirs, ours = formatters()
    line = record(message, extra)

    assert ours.format(line) == theirs.format(line)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.tuples(messages, extras), min_size=1, max_size=4))
@example(lines=[("Found job", {"job_id": "j1", "attempt": 2, "deadline_seconds": 1.5}),
                ("plain values", {"big": 2**70, "text": "é\n\"", "gone": None}),
                ("no finite float", {"inf": float("inf")}), ("nor", {"nan": float("nan")}),
                ("a bool", {"flag": True, "attempt": 1})])
def test_fast_formatter__a_batch_prints_what_powertools_prints_line_by_line(
        lines: list[tuple[str, dict[str, Any]]]) -> None:
    # format_each writes the pairs of plain values (str, int, finite float) itself and hands
    # the rest to the encoder: every line must still be the parent's, byte for byte.
    theirs, ours = formatters()
    first = record(lines[0][0], {})
    expected = []
    for message, extra in lines:
        alone = record(message, extra)
        alone.created, alone.msecs = first.created, first.msecs  # one moment, as in a batch
        expected.append(theirs.format(alone))

    assert ours.format_each(first, lines) == "\n".join(expected)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.tuples(messages, extras, extras), min_size=1, max_size=4))
@example(lines=[("Starting job", {"job_id": "j1", "attempt": 2}, {"deadline_seconds": 1.5}),
                ("a key in both", {"a": 1, "b": "x"}, {"a": "second wins", "c": None}),
                ("none printed", {"gone": None}, {}), ("a list", {"l": [1]}, {"n": 2})])
def test_fast_formatter__keys_encoded_once_print_what_powertools_prints(
        lines: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
    # The poller encodes a job's keys once (line_keys) for its "Found job" line and joins
    # them with the deadline (joined_keys) for its "Starting job" line: the text they carry
    # must be what encoding the merged keys would print, whatever the keys.
    theirs, ours = formatters()
    first = record(lines[0][0], {})
    batch, expected = [], []
    for message, keys, more in lines:
        batch += [(message, line_keys(keys)), (message, joined_keys(line_keys(keys),
                                                                   line_keys(more)))]
        for extra in (keys, {**keys, **more}):
            alone = record(message, extra)
            alone.created, alone.msecs = first.created, first.msecs
            expected.append(theirs.format(alone))

    assert [dict(keys) for _, keys in batch[1::2]] == [{**k, **m} for _, k, m in lines]
    assert ours.format_each(first, batch) == "\n".join(expected)


@pytest.mark.parametrize("line", [
    record("Job %s done", {}, ("j1",)),
    record({"structured": True}, {}),
    record("with a trace id", {"xray_trace_id": "overridden"}),
])
def test_fast_formatter__general_records_print_as_powertools_prints(
        line: logging.LogRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    theirs, ours = formatters()

    assert ours.format(line) == theirs.format(line)


@pytest.mark.parametrize("options", [{"utc": True}, {"use_rfc3339": True},
                                     {"log_record_order": ["message", "level"]}])
def test_fast_formatter__options_print_as_powertools_prints(options: dict[str, Any]) -> None:
    theirs, ours = formatters(**options)
    line = record("Found job", {"job_id": "j1"})

    assert ours.format(line) == theirs.format(line)


def test_fast_formatter__keys_added_later_are_printed() -> None:
    theirs, ours = formatters()
    line = record("Found job", {"job_id": "j1"})
    ours.format(line)  # the plan is made here, then the keys change
    for formatter in (theirs, ours):
        formatter.append_keys(location="%(module)s", tenant="t1")

    assert ours.format(line) == theirs.format(line)


@pytest.fixture
def printed() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A Powertools Logger (cheap formatter) on a stream, and a jobworker logger using it."""
    stream = io.StringIO()
    # A new service name each time: Powertools reuses the handler of a Logger it has seen.
    source = make_logger(service=f"jobworker-logs-test-{uuid.uuid4().hex[:8]}", stream=stream,
                         level="INFO")
    source.append_keys(correlation_id="req-1")
    # A logger outside logging's registry: pytest attaches its capture handler to every
    # registered logger that does not propagate, and with it log_each (rightly) takes the
    # one-record-per-line path, which these tests would then check instead of its own.
    log = logging.Logger("jobworker.logs_test")
    log.handlers, log.propagate = list(source.handlers), False
    log.setLevel(logging.INFO)
    yield log, stream
    assert _fast_handlers(log, logging.INFO), "the test must have reached log_each's own path"
    log.handlers = []


TRACE = "1-5759e988-bd862e3fe1be46a994272793"
LINES = [("Found job", {"job_id": "j1", "kind": "noop", "attempt": 1}),
         ("Job j2 completed successfully", {"job_id": "j2", "attempt": 2, "gone": None}),
         ('{"structured": 1}', {}),
         ("overrides the service", {"service": "other"})]


def test_log_each__prints_the_lines_logger_info_prints(
        printed: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = printed
    for message, extra in LINES:
        log.info(message, extra=extra)
    log_each(log, logging.INFO, LINES)

    one_by_one, together = (
        [_without_time(json.loads(line)) for line in half]
        for half in _halves(stream.getvalue().splitlines()))
    assert together == [{**line, "location": together[0]["location"]} for line in one_by_one]
    assert together[0]["location"].startswith("test_log_each__prints_the_lines_logger_info_prints:")
    assert together[0]["correlation_id"] == "req-1"


def test_log_each__a_record_the_batch_cannot_take_prints_each_line_with_its_keys(
        printed: tuple[logging.Logger, io.StringIO]) -> None:
    # A context key that is also a reserved name sends every line down Powertools' own path:
    # each line still printed once, with its own extra keys (the first line once lost its
    # keys there, and the others went to every handler of the logger, not only this one).
    log, stream = printed
    formatter = log.handlers[0].formatter
    assert isinstance(formatter, FastFormatter)
    formatter.thread_safe_append_keys(name="a context key named like a record field")
    try:
        for message, extra in LINES:
            log.info(message, extra=extra)
        log_each(log, logging.INFO, LINES)
    finally:
        formatter.thread_safe_clear_keys()

    one_by_one, together = (
        [_without_time(json.loads(line)) for line in half]
        for half in _halves(stream.getvalue().splitlines()))
    assert together == [{**line, "location": together[0]["location"]} for line in one_by_one]
    assert [line.get("job_id") for line in together] == [e.get("job_id") for _, e in LINES]


def test_log_each__later_batches_print_their_own_time_keys_and_trace(
        printed: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch) -> None:
    # The text around a batch's messages is made once and kept: what changes between batches
    # (the time, keys added for this thread, an invocation's trace id) must still be printed.
    log, stream = printed
    formatter = log.handlers[0].formatter
    assert isinstance(formatter, FastFormatter)
    moments = iter([1_700_000_000.25, 1_700_000_001.5, 1_700_000_002.75, 1_700_000_003.125])
    now = {"moment": 0.0}

    def tick() -> None:
        now["moment"] = next(moments)

    # LogRecord reads time.time() (3.12) or time.time_ns() (3.13)
    monkeypatch.setattr(logging.time, "time", lambda: now["moment"])
    monkeypatch.setattr(logging.time, "time_ns", lambda: round(now["moment"] * 1e9))
    changes = [lambda: None,
               lambda: formatter.thread_safe_append_keys(tenant=1),
               lambda: formatter.thread_safe_append_keys(tenant=True),  # equal to 1, not alike
               lambda: monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE};Sampled=1")]
    for change in changes:
        change()
        tick()
        log_each(log, logging.INFO, LINES[:1])

    printed_lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["timestamp"][11:23] for line in printed_lines] == [
        "22:13:20,250", "22:13:21,500", "22:13:22,750", "22:13:23,125"]
    assert [(type(line.get("tenant")), line.get("tenant")) for line in printed_lines] == [
        (type(None), None), (int, 1), (bool, True), (bool, True)]  # 1 == True: types too
    assert [line.get("xray_trace_id") for line in printed_lines] == [
        None, None, None, TRACE]
    formatter.thread_safe_clear_keys()


def test_log_each__below_the_level_prints_nothing(
        printed: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = printed
    log_each(log, logging.DEBUG, LINES)

    assert stream.getvalue() == ""


def test_log_each__other_handlers_get_one_record_per_line(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("jobworker.logs_test_plain")
    with caplog.at_level(logging.INFO, logger=log.name):
        log_each(log, logging.INFO, LINES)

    assert [(r.getMessage(), getattr(r, "job_id", None)) for r in caplog.records] == [
        (message, extra.get("job_id")) for message, extra in LINES]


def _without_time(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if key != "timestamp"}


def _halves(lines: list[str]) -> tuple[list[str], list[str]]:
    middle = len(lines) // 2
    return lines[:middle], lines[middle:]


def test_poller__prints_each_jobs_three_lines_once_in_order(
        engine: Engine, printed: tuple[logging.Logger, io.StringIO]) -> None:
    """Through the batched path (Powertools handler, cheap formatter): every job gets its
    "Found job", "Starting job" and "completed successfully" line exactly once, in that order,
    whether its "Starting job" line was printed alone or with a run of short jobs."""
    log, stream = printed
    worker = logging.getLogger("jobworker.worker")
    saved = worker.handlers, worker.propagate, worker.level
    worker.handlers, worker.propagate = list(log.handlers), False
    worker.setLevel(logging.INFO)
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, [NewJob(kind="noop")] * 60)
    try:
        summary = run_poller(engine, PollerOptions(owner="logs-test", batch_size=25,
                                                   poll_interval=0.2, idle_exit_seconds=0.3),
                             Budget.seconds(SYSTEM_CLOCK, 20))
    finally:
        worker.handlers, worker.propagate, worker.level = saved
    assert summary.completed == len(ids)

    seen: dict[str, list[tuple[str, str, int]]] = {str(job_id): [] for job_id in ids}
    for line in map(json.loads, stream.getvalue().splitlines()):
        if line.get("job_id") in seen:  # each line names the job, its kind and its attempt
            seen[line["job_id"]].append((line["message"].replace(line["job_id"], "<id>"),
                                         line["kind"], line["attempt"]))
    assert set(map(tuple, seen.values())) == {
        (("Found job", "noop", 1), ("Starting job", "noop", 1),
         ("Job <id> completed successfully", "noop", 1))}
