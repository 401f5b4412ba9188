"""Powertools' Logger with a cheaper formatter: the same JSON lines, a fraction of the cost.

The poller writes three INFO lines per job ("Found job", "Starting job", "... completed
successfully"), so the cost of one line bounds throughput at the default log level. Measured
on this project's bench machine (``bench/log_cost.py``), Powertools' own formatter spends
most of a line's time in work whose answer is known in advance: it tries ``json.loads`` on
every message (to print JSON-looking messages as objects), scans a 24-item tuple for every
record attribute, builds a new ``JSONEncoder`` per line and formats the timestamp with
``strftime`` each time.

:class:`FastFormatter` is a ``LambdaPowertoolsFormatter`` (so ``append_keys``, correlation
ids, ``thread_safe_*`` keys, sampling, child loggers and custom ``json_serializer`` all work as
documented) whose ``format`` takes a shortcut for the common record (plain text message, no
``%`` arguments, no exception, no stack) and computes exactly what the parent would print;
any other record, or any non-default key template (``location="%(module)s"``, a ``datefmt``,
RFC 3339 timestamps), goes through the parent's ``format`` untouched.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import (
    RESERVED_LOG_ATTRS,
    LambdaPowertoolsFormatter,
    _get_context,
)
from aws_lambda_powertools.shared import constants

# Record attributes that are not "extra" keys (a set: Powertools scans a tuple per attribute).
_RESERVED = frozenset(RESERVED_LOG_ATTRS)
# The default templates of the keys computed from the record, and how to compute them fast.
_DEFAULT_TEMPLATES = {"level": "%(levelname)s", "location": "%(funcName)s:%(lineno)d",
                      "timestamp": "%(asctime)s"}
# json.loads only succeeds on text that starts (after JSON whitespace) with one of these.
_JSON_START = frozenset('{["-0123456789tfnNI')
_JSON_SPACE = " \t\n\r"

# Keys the formatter itself sets on every line: an extra by that name takes the general path.
_COMPUTED_KEYS = frozenset({"message", "stack_trace", "xray_trace_id", "exception",
                            "exception_name", "exception_notes"})
_MESSAGE_MARK = "\u2063jobworker-message\u2063"  # never a real message (invisible separator)
_STAMP_MARK = "\u2063jobworker-timestamp\u2063"  # nor a real timestamp
_quote = json.encoder.encode_basestring  # a str as the compact encoder prints it (non-ASCII kept)
_SPLICES_KEPT = 64  # a logger's splices: one per line of code that logs a batch, and level

Getter = Callable[[logging.LogRecord], Any]


class _Splice(NamedTuple):
    head: str  # up to the message value
    middle: str  # after it, without the closing brace
    taken: frozenset[str]  # keys an extra must not have to be appended


_UNKNOWN = _Splice("", "", frozenset())  # not made yet (None: made, and not possible)


class FastFormatter(LambdaPowertoolsFormatter):
    """``LambdaPowertoolsFormatter``, printing the same line faster for common records."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if options.get("json_serializer") is None:
            self.json_serializer = _compact_encoder(self.json_default, self.json_indent)
        self._encode: Callable[[Any], str] | None = (
            self.json_serializer if options.get("json_serializer") is None else None)
        self._decode_any = options.get("json_deserializer") is not None
        self._second = -1
        self._stamp = ("", "")
        self._plan: list[tuple[str, Getter | None, Any]] | None = None
        self._splices: dict[Any, _Splice | None] = {}

    # Every change to the keys invalidates the plan (the order and the computed keys).
    def append_keys(self, **additional_keys: Any) -> None:
        super().append_keys(**additional_keys)
        self._plan = None
        self._splices.clear()

    def remove_keys(self, keys: Iterable[str]) -> None:
        super().remove_keys(keys)
        self._plan = None
        self._splices.clear()

    def clear_state(self) -> None:
        super().clear_state()
        self._plan = None
        self._splices.clear()

    def format(self, record: logging.LogRecord) -> str:
        base = self._base(record)
        if base is None:
            return super().format(record)
        return self._line(base, record.msg, record.__dict__)

    def format_each(self, record: logging.LogRecord,
                    lines: Iterable[tuple[str, Mapping[str, Any]]]) -> str | None:
        """The lines ``record`` would print with each (message, extra) in place of its own,
        newline-separated; None when ``record`` needs the parent's general path."""
        base = self._base(record)
        if base is None:
            return None
        standard = {key: value for key, value in record.__dict__.items()
                    if key not in _RESERVED}  # a record's own non-reserved keys (taskName)
        splice, encode = self._splice(base, standard), self._encode
        if splice is None or encode is None:
            return "\n".join(self._line(base, message, {**standard, **extra})
                             for message, extra in lines)
        out = []
        head_of: dict[str, str] = {}  # a batch's lines mostly share one message: encode it once
        for message, extra in lines:
            head = head_of.get(message)
            if head is None:
                value = self._message(message)
                if value is not None:
                    head = head_of[message] = f"{splice.head}{encode(value)}{splice.middle}"
            if head is None or not splice.taken.isdisjoint(extra):
                out.append(self._line(base, message, {**standard, **extra}))
                continue
            pairs = extra.pairs if type(extra) is LineKeys else _plain_pairs(extra)
            if pairs is None:
                pairs = encode({key: item for key, item in extra.items()
                                if item is not None and key not in _RESERVED})[1:-1]
            out.append(f"{head},{pairs}}}" if pairs else f"{head}}}")
        return "\n".join(out)

    def _splice(self, base: dict[str, Any], standard: dict[str, Any]) -> _Splice | None:
        """The line's text around its message, when extras need only be appended to it:
        our own compact encoder (its output is a plain concatenation of pairs).

        Made once per set of keys (a line of code, its level, the context) with the timestamp
        left as a mark, which each batch fills in: making it means encoding a whole sample
        line, which cost as much as the rest of a batch of ten lines."""
        encode = self._encode
        if encode is None or self.json_indent is not None:
            return None
        stamp = base.get("timestamp")
        if type(stamp) is str:
            base = {**base, "timestamp": _STAMP_MARK}
        try:  # the values' types too: 1 and True are equal keys, and print otherwise
            key = (tuple(base.items()), tuple(map(type, base.values())),
                   tuple(standard.items()), self._trace_id())
            splice = self._splices.get(key, _UNKNOWN)
        except TypeError:  # a key's value cannot be a dict key (a dict appended by a user)
            return self._make_splice(base, standard, stamp)
        if splice is _UNKNOWN:
            if len(self._splices) >= _SPLICES_KEPT:
                self._splices.clear()
            splice = self._splices[key] = self._make_splice(base, standard, None)
        if splice is None or type(stamp) is not str:
            return splice
        mark, value = encode(_STAMP_MARK), encode(stamp)
        return _Splice(splice.head.replace(mark, value), splice.middle.replace(mark, value),
                       splice.taken)

    def _make_splice(self, base: dict[str, Any], standard: dict[str, Any],
                     stamp: Any) -> _Splice | None:
        """The splice of a sample line; its timestamp mark filled with ``stamp`` if a str."""
        assert self._encode is not None
        sample = self._line(base, _MESSAGE_MARK, standard)
        marked, mark = self._encode(_MESSAGE_MARK), self._encode(_STAMP_MARK)
        if (sample.count(marked) != 1 or not sample.endswith("}")
                or sample.count(mark) != (base.get("timestamp") == _STAMP_MARK)):
            return None
        if type(stamp) is str:
            sample = sample.replace(mark, self._encode(stamp))
        head, rest = sample.split(marked)
        taken = frozenset(base) | frozenset(standard) | _COMPUTED_KEYS
        return _Splice(head, rest[:-1], taken)

    def _base(self, record: logging.LogRecord) -> dict[str, Any] | None:
        """The keys of ``log_format`` and the context, computed for ``record``; None when
        the record or the configuration needs the parent's general path."""
        plan = self._plan if self._plan is not None else self._make_plan()
        if (not plan or record.args or record.exc_info or record.stack_info
                or type(record.msg) is not str):
            return None
        context = _get_context().get()
        if context and not _RESERVED.isdisjoint(context):
            return None
        base = {key: const if getter is None else getter(record) for key, getter, const in plan}
        if context:
            base.update(context)
        return base

    def _line(self, base: dict[str, Any], message: str, attributes: Mapping[str, Any]) -> str:
        log = base.copy()
        for key, value in attributes.items():
            if key not in _RESERVED:
                log[key] = value
        log["message"] = self._message(message)
        if self.serialize_stacktrace:
            log.pop("stack_trace", None)  # the parent sets it to None, then strips it
        trace = self._trace_id()
        if trace is None:
            log.pop("xray_trace_id", None)
        else:
            log["xray_trace_id"] = trace
        return self.serialize(log={key: value for key, value in log.items() if value is not None})

    def _make_plan(self) -> list[tuple[str, Getter | None, Any]]:
        """How to compute each key of ``log_format``, in order; empty when some key needs the
        parent's general path (a template other than the defaults, a custom time format)."""
        plan: list[tuple[str, Getter | None, Any]] = []
        if self.datefmt or self.use_rfc3339_iso8601 or self.use_datetime_directive:
            self._plan = plan
            return plan
        getters: dict[str, Getter] = {"level": _level, "location": _location,
                                      "timestamp": self._timestamp}
        for key, value in self.log_format.items():
            if value and key in _RESERVED:
                getter = _template_getter(value) if _DEFAULT_TEMPLATES.get(key) != value \
                    else getters[key]
                if getter is None:
                    plan = []
                    break
                plan.append((key, getter, None))
            else:
                plan.append((key, None, value))
        self._plan = plan
        return plan

    def _timestamp(self, record: logging.LogRecord) -> str:
        """The parent's default format, ``2021-05-03 10:20:19,650+0200``, with the part
        that changes once a second computed once a second."""
        second = int(record.created)
        if second != self._second:
            moment = self.converter(record.created)
            self._stamp = (time.strftime("%Y-%m-%d %H:%M:%S,", moment),
                           time.strftime("%z", moment))
            self._second = second
        head, zone = self._stamp
        return f"{head}{int(record.msecs):03d}{zone}"

    def _message(self, message: str) -> Any:
        """The parent decodes messages that are JSON; skip the attempt when it cannot work."""
        if self._decode_any or message.lstrip(_JSON_SPACE)[:1] in _JSON_START:
            try:
                return self.json_deserializer(message)
            except (json.JSONDecodeError, TypeError, ValueError):
                return message
        return message

    def _trace_id(self) -> str | None:
        if "xray_trace_id" in self.log_format and self.log_format["xray_trace_id"] is None:
            return None  # Logger(xray_trace_id=None) turns the key off
        value = os.environ.get(constants.XRAY_TRACE_ID_ENV)
        return value.split(";")[0].replace("Root=", "") if value else None


class LineKeys(dict[str, Any]):
    """A line's extra keys with their JSON pairs (``pairs``) worked out once, for keys that
    go on more than one line: a job's id, kind and attempt are on its "Found job" and its
    "Starting job" lines, a thousand jobs a batch. Made by :func:`line_keys` and
    :func:`joined_keys`, and not changed afterwards (the text would no longer match)."""

    __slots__ = ("pairs",)
    pairs: str | None  # None: some value needs the encoder


def line_keys(keys: Mapping[str, Any]) -> LineKeys:
    """``keys`` with their pairs encoded now (see :class:`LineKeys`)."""
    made = LineKeys(keys)
    made.pairs = _plain_pairs(made)
    return made


def joined_keys(first: LineKeys, second: LineKeys) -> LineKeys:
    """``{**first, **second}`` with its pairs joined from theirs, not encoded again."""
    made = LineKeys(first)
    made.update(second)
    if first.pairs is None or second.pairs is None or len(made) != len(first) + len(second):
        made.pairs = _plain_pairs(made)  # a key in both: the second's value, in first's place
    else:
        made.pairs = (f"{first.pairs},{second.pairs}" if first.pairs and second.pairs
                      else first.pairs or second.pairs)
    return made


def _plain_pairs(extra: Mapping[str, Any]) -> str | None:
    """The JSON pairs of a line's extra keys (no braces) when every value printed is a str,
    an int or a finite float: what the compact encoder prints for them, written directly
    (a job's lines carry only such keys: half the cost of the C encoder's call for three).
    None when any other value needs the encoder."""
    prefixes = _KEY_PREFIXES
    pairs = []
    for key, value in extra.items():
        kind = type(value)
        if kind is str:
            text = _quote(value)
        elif kind is int:
            text = int.__repr__(value)  # json's own int text
        elif value is None:
            continue  # not printed
        elif kind is float and math.isfinite(value):
            text = float.__repr__(value)  # and its float text
        else:
            return None
        prefix = prefixes.get(key)
        if prefix is None:
            prefix = _key_prefix(key)
            if prefix is None:
                return None
        if prefix:
            pairs.append(prefix + text)
    return ",".join(pairs)


# A str key's JSON text and colon, or "" for a reserved key (never printed as an extra): a
# job's lines repeat a few keys a thousand times a batch, each quoted once here.
_KEY_PREFIXES: dict[str, str] = {}
_KEY_PREFIXES_KEPT = 1024


def _key_prefix(key: Any) -> str | None:
    """What :func:`_plain_pairs` writes before a value of ``key`` (None: not a str key)."""
    if type(key) is not str:
        return None
    if len(_KEY_PREFIXES) >= _KEY_PREFIXES_KEPT:
        _KEY_PREFIXES.clear()  # a logger with ever new keys: bounded, at the cost of requoting
    prefix = _KEY_PREFIXES[key] = "" if key in _RESERVED else f"{_quote(key)}:"
    return prefix


def _compact_encoder(default: Callable[[Any], Any], indent: int | None) -> Callable[[Any], str]:
    """What the parent's default serializer (``json.dumps(..., default=str, separators=(",",
    ":"), ensure_ascii=False)``) prints, without building an encoder per line: json.dumps
    makes a ``JSONEncoder`` and its C encoder at every call, which costs more than encoding a
    log line. The C encoder is made once here (without the circular-reference check: a
    self-containing extra then fails with RecursionError instead of ValueError)."""
    encoder = json.JSONEncoder(default=default, separators=(",", ":"), indent=indent,
                               ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or indent is not None:
        return encoder.encode
    chunks = make(None, default, json.encoder.encode_basestring, None, ":", ",", False, False,
                  True)
    quote = json.encoder.encode_basestring

    def encode(value: Any) -> str:
        if type(value) is str:
            return quote(value)
        return "".join(chunks(value, 0))

    return encode


def _template_getter(template: Any) -> Getter | None:
    """Another ``%(attr)s`` template (``copy_config_to_registered_loggers`` adds
    ``name="%(name)s"``): filled from the record as the parent fills it; None for what only
    the parent's general path handles (the time, anything not a string)."""
    if not isinstance(template, str) or "asctime" in template:
        return None
    return lambda record: template % record.__dict__


def _level(record: logging.LogRecord) -> str:
    return record.levelname


def _location(record: logging.LogRecord) -> str:
    return f"{record.funcName}:{record.lineno}"


def make_logger(**options: Any) -> Logger:
    """``Logger(**options)`` printing through :class:`FastFormatter`.

    Formatter options (``json_serializer``, ``utc``, ``log_record_order``, ...) go to the
    formatter, the rest (``service``, ``level``, ``sampling_rate``, ...) to the Logger, as
    ``Logger`` itself would split them."""
    formatter_keys = {"json_serializer", "json_deserializer", "json_default", "datefmt",
                      "use_datetime_directive", "log_record_order", "utc", "use_rfc3339",
                      "serialize_stacktrace"}
    formatter = FastFormatter(**{k: v for k, v in options.items() if k in formatter_keys})
    return Logger(logger_formatter=formatter,
                  **{k: v for k, v in options.items() if k not in formatter_keys})


def log_each(logger: logging.Logger, level: int,
             lines: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """``logger.log(level, message, extra=extra)`` for each line, in order, from the caller's
    line of code; where the record would reach only stream handlers printing through
    :class:`FastFormatter`, the lines are formatted from one record (same location and
    timestamp: they are logged at the same moment) and written in one call.

    A record costs its creation, the caller lookup, the handler chain and its lock, and a
    ``write``/``flush`` pair, about as much as formatting it: a batch of a thousand "Found
    job" lines pays those once. Any other handler (a buffering handler, pytest's capture,
    a plain formatter) gets one record per line, exactly as ``logger.log`` would make it."""
    if not lines or not logger.isEnabledFor(level):
        return
    handlers = None if logger.filters else _fast_handlers(logger, level)
    if handlers is None:
        for message, extra in lines:
            logger.log(level, message, extra=extra, stacklevel=2)
        return
    path, lineno, function, _ = logger.findCaller(stacklevel=2)
    record = logger.makeRecord(logger.name, level, path, lineno, lines[0][0], (), None,
                               function)
    for handler in handlers:
        assert isinstance(handler.formatter, FastFormatter)
        text = handler.formatter.format_each(record, lines)
        if text is None:  # the record or the configuration needs Powertools' own path:
            for message, extra in lines:  # a record per line, with its keys, for this handler
                handler.handle(logger.makeRecord(logger.name, level, path, lineno, message,
                                                 (), None, function, extra))
            continue
        handler.acquire()
        try:
            handler.stream.write(text + handler.terminator)
            handler.flush()
        finally:
            handler.release()


def _fast_handlers(logger: logging.Logger, level: int) -> list[logging.StreamHandler[Any]] | None:
    """The handlers a record from ``logger`` at ``level`` reaches, if all are unfiltered
    stream handlers with a :class:`FastFormatter` (else None: the general path)."""
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level < handler.level:
                continue
            if (type(handler) is not logging.StreamHandler or handler.filters
                    or not isinstance(handler.formatter, FastFormatter)):
                return None
            found.append(handler)
        current = current.parent if current.propagate else None
    return found or None
