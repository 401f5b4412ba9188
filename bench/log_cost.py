"""``jobworker bench log-cost``: what one poller log line costs, step by step.

Each variant prints ``--lines`` "Found job" lines (with the poller's extras: job id, kind,
attempt) from a ``jobworker.*`` logger wired to a Powertools Logger as the handlers wire it
(``copy_config_to_registered_loggers``, the Lambda context keys appended), to /dev/null, and
reports the CPU microseconds per line (``time.process_time``: the figure on a busy machine is
less noisy than wall time), median of interleaved rounds:

* ``powertools``: ``Logger()`` as it comes.
* ``powertools_encoder_once``: ``Logger(json_serializer=<one JSONEncoder's encode>)``: the
  default serializer is ``json.dumps`` with options, which builds an encoder per line.
* ``fast_formatter``: :class:`jobworker.aws.logs.FastFormatter`, one record per line.
* ``fast_batched``: :func:`jobworker.aws.logs.log_each` with the lines of a batch of 1,000
  (what the poller does for "Found job", "completed successfully" and the "Starting job"
  lines of short jobs).
* ``job_lines_plain``: a job's three lines ("Found job", "Starting job" with its deadline,
  "completed successfully"), batched, each line's keys a new dict: what the poller did before
  it encoded a job's keys once.
* ``job_lines_keys_once``: the same three lines as the poller prints them now: the job's keys
  encoded once (:func:`jobworker.aws.logs.line_keys`) and reused on all three lines, the
  deadline joined to them (:func:`jobworker.aws.logs.joined_keys`). Both report per line,
  the job id's text (``str(UUID)``) included, as the poller pays it.
* ``warning``: the same calls with the level at WARNING (the line is not printed; what is
  left is the call and its extras).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from .common import emit_json, interleaved, median, print_table, ratio, rounded, say

VARIANTS = ("powertools", "powertools_encoder_once", "fast_formatter", "fast_batched",
            "job_lines_plain", "job_lines_keys_once", "warning")
LAMBDA_KEYS = {"cold_start": True, "function_name": "jobworker-poller",
               "function_memory_size": 1024,
               "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:jobworker-poller",
               "function_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678"}
BATCH = 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobworker bench log-cost",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=20_000, help="lines per variant and round")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    return parser


def _wired(name: str, make: Callable[..., Any], level: str = "INFO") -> logging.Logger:
    """A ``jobworker.<name>`` logger printing through a new Powertools Logger to /dev/null."""
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    stream = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    source = make(service=f"jobworker-bench-{name}", stream=stream, level=level)
    log = logging.getLogger(f"jobworker.bench_{name}")
    copy_config_to_registered_loggers(source_logger=source, include={"jobworker"})
    log.handlers, log.propagate = list(source.handlers), False
    log.setLevel(level)
    source.append_keys(**LAMBDA_KEYS)
    return log


def _loggers() -> dict[str, tuple[logging.Logger, bool | str]]:
    from aws_lambda_powertools import Logger

    from jobworker.aws.logs import make_logger

    encoder = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=False)
    return {
        "powertools": (_wired("powertools", Logger), False),
        "powertools_encoder_once": (_wired(
            "encoder", lambda **kw: Logger(json_serializer=encoder.encode, **kw)), False),
        "fast_formatter": (_wired("fast", make_logger), False),
        "fast_batched": (_wired("batched", make_logger), True),
        "job_lines_plain": (_wired("plain", make_logger), "plain"),
        "job_lines_keys_once": (_wired("once", make_logger), "once"),
        "warning": (_wired("warning", Logger, level="WARNING"), False),
    }


def _job_lines(log: logging.Logger, ids: list[uuid.UUID], keys_once: bool) -> None:
    """A batch's three lines per job, batched, as the poller prints them (or did)."""
    from jobworker.aws.logs import joined_keys, line_keys, log_each

    if keys_once:
        abouts = [line_keys({"job_id": str(job_id), "kind": "noop", "attempt": 1})
                  for job_id in ids]
        deadline = line_keys({"deadline_seconds": 899.5})
        log_each(log, logging.INFO, [("Found job", keys) for keys in abouts])
        log_each(log, logging.INFO, [("Starting job", joined_keys(keys, deadline))
                                     for keys in abouts])
        log_each(log, logging.INFO, [(f"Job {keys['job_id']} completed successfully", keys)
                                     for keys in abouts])
        return
    plain = [{"job_id": str(job_id), "kind": "noop", "attempt": 1} for job_id in ids]
    log_each(log, logging.INFO, [("Found job", keys) for keys in plain])
    log_each(log, logging.INFO, [("Starting job", {**keys, "deadline_seconds": 899.5})
                                 for keys in plain])
    log_each(log, logging.INFO, [(f"Job {job_id} completed successfully",
                                  {"job_id": str(job_id)}) for job_id in ids])


def _cost(log: logging.Logger, batched: bool | str, lines: int) -> float:
    """CPU microseconds per line."""
    from jobworker.aws.logs import log_each

    ids = [uuid.uuid4() for _ in range(BATCH)]
    if isinstance(batched, str):  # a job's three lines
        rounds = max(1, lines // (3 * BATCH))
        started = time.process_time()
        for _ in range(rounds):
            _job_lines(log, ids, keys_once=batched == "once")
        return (time.process_time() - started) / (rounds * 3 * BATCH) * 1e6
    started = time.process_time()
    for _ in range(max(1, lines // BATCH)):
        if batched:
            log_each(log, logging.INFO, [
                ("Found job", {"job_id": str(job_id), "kind": "noop", "attempt": 1})
                for job_id in ids])
        else:
            for job_id in ids:
                log.info("Found job", extra={"job_id": str(job_id), "kind": "noop",
                                             "attempt": 1})
    return (time.process_time() - started) / (max(1, lines // BATCH) * BATCH) * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    loggers = _loggers()
    say(f"log-cost: {args.lines} lines per variant, {args.repeat} rounds")
    results = interleaved(args.repeat, {
        name: partial(_cost, log, batched, args.lines) for name, (log, batched) in loggers.items()})
    us = {name: median(values) for name, values in results.items()}
    return {
        "us_per_line": {name: rounded(value, 2) for name, value in us.items()},
        "fast_batched_vs_powertools": ratio(us["fast_batched"], us["powertools"]),
        "fast_formatter_vs_powertools": ratio(us["fast_formatter"], us["powertools"]),
        "job_lines_keys_once_vs_plain": ratio(us["job_lines_keys_once"], us["job_lines_plain"]),
        "lines": args.lines,
        "rounds": args.repeat,
        "python": sys.version.split()[0],
    }


def print_report(report: dict[str, Any]) -> None:
    us = report["us_per_line"]
    print_table(f"CPU per poller log line (median of {report['rounds']} rounds, "
                f"Python {report['python']})", ("variant", "us per line", "vs powertools"),
                [(name, us[name], ratio(us[name], us["powertools"])) for name in VARIANTS])


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    report = run(args)
    print_report(report)
    if args.json:
        emit_json(report)
    return 0
