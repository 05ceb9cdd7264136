"""Log normalisation: container log lines in, one tidy row per line out.

HuleEdu containers log to stdout (SYSTEM.md §5). A captured file is what ``docker logs --timestamps``
prints: an RFC3339Nano Docker stamp, a space, then the line. Lines come in several shapes, all of
which end up in the same columns (:data:`LOG_COLUMNS`):

- ``json``: structlog's JSON renderer, with most context nested under ``extra`` (§5.1, §5.2).
- ``console``: structlog's configured console renderer (ISO-Z stamp, ``[level    ]``, event,
  ``[logger]``, sorted ``key=value`` pairs; ANSI colours are stripped for parsing).
- ``structlog_default``: unconfigured structlog (``2025-11-20 21:20:14 [info     ] …``), taken as UTC.
- ``hypercorn``: ``[2025-11-19 19:35:04 +0000] [68] [INFO] …``.
- ``postgres``: the postgres:15 default prefix ``2025-11-20 18:41:51.054 UTC [47] ERROR:  …`` (§6.5).
- ``plain``: ``print()`` output, bare third-party messages, the Kafka topic bootstrap lines.
- ``continuation``: a line that belongs to the line before it (traceback lines, PostgreSQL
  ``CONTEXT``/``STATEMENT``/``DETAIL``/``HINT`` lines, indented SQL).
- ``unparsed``: a line that looks structured but is not (e.g. a truncated JSON line). Never dropped.

Every input line yields exactly one row (unless a ``prefilter`` drops it, see
:func:`iter_parse_file`). The facts the parser relies on (logger routing, level maps, which loggers
call the outbox row id ``event_id``) live in :mod:`huledu_forensics.model.logformats`.

Column types: ``ts``/``docker_ts`` are ``datetime64[ns, UTC]``; ``partition``/``offset``/``parent_line``
are ``Int64``; ``parsed`` is ``bool``; ``line_no`` is ``int64``; every other column is pandas' ``str``
dtype, where a missing value is ``NaN`` (test with ``pd.isna`` / ``Series.isna``). Ids are lower-case
and ``UUID('…')`` reprs are unwrapped. ``ids`` lists every UUID and every bare 32-hex id in the line
(storage ids, and OTel trace ids, which have the same shape), space-separated, each once.

Rows come in line order, except that a PostgreSQL continuation line written between other backends'
lines follows its own head. Performance: :func:`parse_file` reads the file in blocks and hands each
run of Docker-stamped JSON lines to :mod:`._logcols` (one Arrow read, column-wise rules, the same rows
as the per-line parser); other lines, and runs that path refuses, go line by line (one ``json`` decode
each, ``orjson`` when it is installed; ids from one fast scan of the raw line).

Typical use::

    from huledu_forensics.logs import parse_file, make_id_prefilter
    df = parse_file("logs/huleedu_essay_lifecycle_worker.log", container="huleedu_essay_lifecycle_worker")
    keep = make_id_prefilter(["278f7fd9-37fe-406a-a735-f15128cb6b1f"])
    scoped = parse_file(path, container=name, prefilter=keep)
"""

from __future__ import annotations

import ast
import calendar
import collections
import gzip
import io
import json
import mmap
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _fields as F
from . import _logcols
from ._time import parse_utc, to_utc_series
from .model import columns as C
from .model.logformats import (
    AGGREGATE_ID_COLUMNS,
    EMOJI_LEVELS,
    ID_KEY_COLUMNS,
    LEVEL_ALIASES,
    M_ESSAY_RECORDS_FOR_BATCH,
    M_FROM_TOPIC,
    M_PLAINTEXT_STORAGE_ID,
    OUTBOX_ROW_ID_LOGGERS,
    PLAIN_LEVEL_PREFIXES,
    PLAIN_MESSAGE_FACTS,
    POSTGRES_CONTINUATION_KEYWORDS,
    POSTGRES_SEVERITY_LEVELS,
    normalise_level,
    service_for_logger,
    service_for_service_name,
)
from .model.services import CONTAINERS, SERVICES
from .model.topics import TOPIC_PREFIX, topic_by_event

_fast_loads: Callable[[str | bytes], Any] | None
try:  # optional: orjson decodes a log line ~2.5x faster than the standard library
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

__all__ = [
    "LOG_COLUMNS",
    "BlockSelector",
    "empty_frame",
    "iter_parse_file",
    "line_facts",
    "line_ids",
    "make_id_prefilter",
    "parse_file",
    "parse_lines",
    "read_scoped",
    "scope_filter",
]

LOG_COLUMNS: tuple[str, ...] = (
    "ts",
    "docker_ts",
    "container",
    "stream",
    "service",
    "format",
    "level",
    "logger",
    "message",
    F.BATCH_ID,
    F.CORRELATION_ID,
    F.ESSAY_ID,
    F.TEXT_STORAGE_ID,
    F.FILE_UPLOAD_ID,
    "event_id",
    "outbox_id",
    "trace_id",
    "ids",
    F.EVENT_TYPE,
    "topic",
    "partition",
    "offset",
    "error",
    "exception",
    "detail",
    "parent_line",
    "parsed",
    "raw",
    "line_no",
    "source_file",
)
"""Column order of every frame this module returns."""

_DT: Final = "datetime64[ns, UTC]"
_INT_COLUMNS = ("partition", "offset", "parent_line")
# Columns of a row tuple, in order (container, stream and source_file are constant per call).
_ROW_FIELDS = tuple(c for c in LOG_COLUMNS if c not in ("container", "stream", "source_file"))
_ID_COLUMNS = (
    F.BATCH_ID,
    F.CORRELATION_ID,
    F.ESSAY_ID,
    F.TEXT_STORAGE_ID,
    F.FILE_UPLOAD_ID,
    "event_id",
    "outbox_id",
    "trace_id",
)
_ID_INDEX = {c: i for i, c in enumerate(_ID_COLUMNS)}
# (index in the id tuple, keys in priority order), straight from the model.
_ID_KEYS: tuple[tuple[int, tuple[str, ...]], ...] = tuple(
    (_ID_INDEX[col], keys) for col, keys in ID_KEY_COLUMNS.items() if col in _ID_INDEX
)
_EVENT_IDX = _ID_INDEX["event_id"]
_OUTBOX_IDX = _ID_INDEX["outbox_id"]
_ESSAY_IDX = _ID_INDEX[F.ESSAY_ID]
_NO_IDS = (None,) * len(_ID_COLUMNS)

# ---------------------------------------------------------------------------------------------
# Regexes (compiled once)

_T = TypeVar("_T")
_U = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_H = r"[0-9a-fA-F]{32}"
# ``ids`` holds every UUID and every bare 32-hex id (Content Service storage ids; also OTel trace
# ids), i.e. the matches of (?<!hex)UUID(?!hex) | (?<!hex)HEX32(?!hex). A single regex for that costs
# ~25 us on a 500-character line, so it is split in two:
# UUIDs: the pattern starts with the literal "-" (the regex engine skips ahead to dashes) and
# captures the first group through a lookbehind (~30x faster).
_UUID_FAST_RE = re.compile(
    r"-(?<=(?<![0-9a-fA-F])([0-9a-fA-F]{8})-)"
    r"([0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![0-9a-fA-F])"
)
# Bare 32-hex runs are found on a byte mask (1 = hex digit) with bytes.find, not a regex.
_HEX_MASK = bytes(1 if chr(i) in "0123456789abcdefABCDEF" else 0 for i in range(256))
_HEX_RUN = b"\x01" * 32
_ID_FULL_RE = re.compile(rf"{_U}|{_H}")
_UUID_REPR_RE = re.compile(r"""UUID\(\s*['"]([^'"]*)['"]\s*\)""")
# Ids named by the message text (f-strings; SYSTEM.md §5.1 "regex UUIDs out of event as well").
_MSG_ID_RE = re.compile(
    rf"{re.escape(M_ESSAY_RECORDS_FOR_BATCH)} (?P<elb>{_U})[^\[]*\[(?P<elist>[^\]]*)\]"
    rf"|(?i:\bbatch(?:_id)?(?:\s+context\s+for)?)[\s=:]+(?:UUID\(')?(?P<batch>{_U})"
    rf"|/batch(?:es)?/(?P<bpath>{_U})"
    rf"|(?i:\bessay(?:_id)?)[\s=:]+(?:UUID\(')?(?P<essay>{_U})"
    rf"|(?i:\bcorrelation[ _]id(?:\s+from\s+header)?)\s*[:=]\s*(?:UUID\(')?(?P<corr>{_U})"
    rf"|\bevent_id[\s=:]+(?P<event>{_U})"
    rf"|\bfile_upload_id[\s=:]+(?P<fu>{_U})"
    rf"|\btext_storage_id[\s=:]+(?P<tsid>{_H})"
    rf"|{re.escape(M_PLAINTEXT_STORAGE_ID)}\s*(?P<tsid2>{_H})"
)
_MSG_GROUP_INDEX = {
    "batch": _ID_INDEX[F.BATCH_ID],
    "bpath": _ID_INDEX[F.BATCH_ID],
    "essay": _ESSAY_IDX,
    "corr": _ID_INDEX[F.CORRELATION_ID],
    "event": _EVENT_IDX,
    "fu": _ID_INDEX[F.FILE_UPLOAD_ID],
    "tsid": _ID_INDEX[F.TEXT_STORAGE_ID],
    "tsid2": _ID_INDEX[F.TEXT_STORAGE_ID],
}
_TOPIC_IN_MSG_RE = re.compile(rf"\b{re.escape(M_FROM_TOPIC)} ({re.escape(TOPIC_PREFIX)}[\w.\-]+)")

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONSOLE_RE = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) +\[\s*([A-Za-z]+)\s*\] ?(.*)\Z",
    re.DOTALL,
)
_DEFAULT_RE = re.compile(
    r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:[.,]\d+)?) +\[\s*([A-Za-z]+)\s*\] ?(.*)\Z", re.DOTALL
)
_PG_RE = re.compile(
    r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) ([A-Za-z+\-0-9]+) \[(\d+)(?:-\d+)?\] "
    r"(?:[^:\s]*@[^:\s]* )?([A-Z][A-Z0-9]*):\s+(.*)\Z",
    re.DOTALL,
)
_HYPERCORN_RE = re.compile(
    r"\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:[.,]\d+)? ?([+-]\d{4})?\] \[(\d+)\] \[([A-Za-z]+)\] (.*)\Z",
    re.DOTALL,
)
_LEVEL_BRACKET_RE = re.compile(r"\[\s*[A-Za-z]+\s*\] ")
# Docker stamps inside a line: ``docker logs -t`` prints each piece of a line the json-file driver split
# (lines over 16 KiB) with its own stamp and no newline between the pieces.
_EMBEDDED_STAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
_DOCKER_SPLIT = 16 * 1024
_HYPERCORN_ACCESS_RE = re.compile(r'"[A-Z]+ \S+ [\w/.]+" \d{3} ')
_CONSOLE_REST_RE = re.compile(
    r"(?P<event>.*?)\s*\[(?P<logger>[A-Za-z_][\w.\-:]*)\](?=\s+[A-Za-z_][\w.\-]*=|\s*\Z)", re.DOTALL
)
_KV_KEY_RE = re.compile(r"\s*([A-Za-z_][\w.\-]*)=")
_NEXT_KEY_RE = re.compile(r"\s+(?=[A-Za-z_][\w.\-]*=)")
# "key": "string value" pairs, to salvage what a truncated JSON line still holds.
_JSON_STR_PAIR_RE = re.compile(r'"([\w.\-]+)":\s*"((?:[^"\\]|\\.)*)"')

_TRACEBACK_HEAD = "Traceback (most recent call last)"
_CHAIN_PREFIXES = (
    "The above exception was the direct cause",
    "During handling of the above exception",
)
_EXC_MESSAGE_PREFIXES = ("[SQL:", "[parameters:", "(Background on this error", "HINT:", "DETAIL:")
_BOX_CHARS = "│╰╭┃┗┏"
_PLAIN_PREFIXES = tuple(p for p, _ in PLAIN_LEVEL_PREFIXES)
_EMOJI_PREFIXES = tuple(e for e, _ in EMOJI_LEVELS)
_FACT_PREFIXES = tuple(f.prefix for f in PLAIN_MESSAGE_FACTS)
_PLAIN_HEAD_PREFIXES = _PLAIN_PREFIXES + _EMOJI_PREFIXES + _FACT_PREFIXES
_raw_decode = json.JSONDecoder().raw_decode
_LEVEL_ALIASES_GET = LEVEL_ALIASES.get
_SAME_WRITE_SECONDS = 0.05  # Docker stamps of the lines of one write() are microseconds apart
_SAME_WRITE_TIGHT = 0.005  # for unmarked lines after an exception line (multi-line messages)
_PG_AGE_LINES = 64  # an interleaved PostgreSQL message is closed after this many lines
_SUBSTRING_FILTER_MAX = 4  # more UUID/hex ids than this: extract the line's ids once, look them up


# ---------------------------------------------------------------------------------------------
# Small helpers


def _nid(value: Any) -> str | None:
    """Normalise an id value: unwrap ``UUID('…')``, strip, lower-case; ``None`` for empty/non-scalar."""
    if value is None:
        return None
    if value.__class__ is not str:
        if isinstance(value, (dict, list, tuple, set, bool, float)):
            return None
        value = str(value)
    if value.startswith("UUID("):
        m = _UUID_REPR_RE.match(value)
        if m:
            value = m.group(1)
    value = value.strip()
    return value.lower() if value else None


def _int(value: Any) -> int | None:
    if value is None or value.__class__ is bool:
        return None
    if value.__class__ is int:
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if value.__class__ is str:
        return value or None
    return str(value)


def _find_ids(raw: str) -> list[str]:
    """Every UUID and every bare 32-hex id in ``raw``, as written (UUIDs first, then hex ids)."""
    out = [a + "-" + b for a, b in _UUID_FAST_RE.findall(raw)] if "-" in raw else []
    size = len(raw)
    if size >= 32:
        mask = raw.encode("latin-1", "replace").translate(_HEX_MASK)
        pos = mask.find(_HEX_RUN)
        while pos != -1:
            end = pos + 32
            if end == size or mask[end] == 0:
                out.append(raw[pos:end])
                pos = mask.find(_HEX_RUN, end)
            else:  # a longer hex run (a sha256, ...): skip it
                zero = mask.find(b"\x00", end)
                if zero == -1:
                    break
                pos = mask.find(_HEX_RUN, zero)
    return out


def _ids_of(raw: str) -> tuple[list[str], str | None]:
    """Return the ids found in ``raw`` (as written) and the ``ids`` string (lower-cased, unique)."""
    found = _find_ids(raw)
    if not found:
        return found, None
    if len(found) == 1:
        return found, found[0].lower()
    return found, " ".join(dict.fromkeys(f.lower() for f in found))


def _iso(value: Any) -> str | None:
    """Return an ISO string with an explicit offset for an inner timestamp value, else ``None``."""
    if value is None:
        return None
    if value.__class__ is str:
        if not value:
            return None
        last = value[-1]
        if last == "Z" or last == "z":
            return value
        if len(value) > 6 and ((value[-6] in "+-" and value[-3] == ":") or value[-5] in "+-"):
            return value
        return value + "Z"  # naive: HuleEdu stamps are UTC (SYSTEM.md §5.1)
    try:
        dt = parse_utc(value)
    except (OverflowError, OSError, ValueError):  # e.g. "timestamp": 1e30: no time at all
        return None
    return dt.isoformat() if dt else None


def _exception_summary(text: str | None) -> str | None:
    """Return the exception line of a traceback (``Type: message`` of the last traceback)."""
    if not text:
        return None
    lines = text.splitlines()
    start = -1
    for i, line in enumerate(lines):
        if line.startswith(_TRACEBACK_HEAD) or (line[:1] == "╭" and "Traceback" in line):
            start = i
    if start < 0:
        for line in lines:
            if line.strip():
                return line.strip()
        return None
    for line in lines[start + 1 :]:
        if line and line[0] not in " \t" and line[0] not in _BOX_CHARS:
            return line.strip()
    return None


def _docker_seconds(stamp: str | None) -> float | None:
    """Seconds since midnight plus the day (as a sortable float) of a Docker stamp, else ``None``."""
    if not stamp or len(stamp) < 20 or stamp[-1] != "Z":
        return None
    try:
        day = int(stamp[0:4]) * 400 + int(stamp[5:7]) * 32 + int(stamp[8:10])
        return day * 86400.0 + int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + float(stamp[17:-1])
    except ValueError:
        return None


def _plain_level_logger(text: str) -> tuple[str | None, str | None]:
    """Level and logger of a plain line from its prefix, emoji or a known third-party message."""
    if text.startswith(_TRACEBACK_HEAD):
        return "error", None
    if text.startswith(_PLAIN_PREFIXES):
        for prefix, level in PLAIN_LEVEL_PREFIXES:
            if text.startswith(prefix):
                return level, None
    if text.startswith(_EMOJI_PREFIXES):
        for prefix, level in EMOJI_LEVELS:
            if text.startswith(prefix):
                return level, None
    if text.startswith(_FACT_PREFIXES):
        for fact in PLAIN_MESSAGE_FACTS:
            if text.startswith(fact.prefix):
                return fact.level, fact.logger
    return None, None


# ---------------------------------------------------------------------------------------------
# Console key=value parsing (console renderer lines are rare in Docker logs; clarity over speed)


def _scan_value(s: str, i: int) -> int:
    """Return the end index of a console value starting at ``i``."""
    n = len(s)
    if i >= n:
        return i
    j = i
    if s[i] in "{[(\"'":
        depth = 0
        quote: str | None = None
        while j < n:
            ch = s[j]
            if quote:
                if ch == "\\":
                    j += 2
                    continue
                if ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch in "{[(":
                depth += 1
            elif ch in "}])":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            j += 1
        if j >= n or (s[j] == " " and _KV_KEY_RE.match(s, j)):
            return j
    m = _NEXT_KEY_RE.search(s, j)
    return m.start() if m else n


def _coerce(value: str) -> Any:
    if value[:1] in "{[(\"'":
        try:
            return ast.literal_eval(_UUID_REPR_RE.sub(r"'\1'", value))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def _parse_console_kv(s: str) -> dict[str, Any]:
    """Parse structlog console ``key=value`` pairs (values may be dict/list reprs)."""
    out: dict[str, Any] = {}
    i = 0
    n = len(s)
    while i < n:
        m = _KV_KEY_RE.match(s, i)
        if not m:
            break
        key = m.group(1)
        j = _scan_value(s, m.end())
        out[key] = _coerce(s[m.end() : j].strip())
        i = j
    return out


# ---------------------------------------------------------------------------------------------
# Structured records (JSON and console) → fields


# Keys of a structured record the parser reads, coded as small ints so one pass over ``extra`` can
# dispatch on them. Codes 0-7 are id slots (rank = position among that column's keys, from the model).
_KEY_RANK: dict[str, tuple[int, int]] = {
    key: (idx, rank) for idx, keys in _ID_KEYS for rank, key in enumerate(keys)
}
(_K_EVENT_TYPE, _K_TOPIC, _K_KAFKA_TOPIC, _K_AGG_ID, _K_AGG_TYPE, _K_ESSAY_IDS, _K_PARTITION,
 _K_KAFKA_PARTITION, _K_OFFSET, _K_KAFKA_OFFSET, _K_ERROR, _K_ERROR_MESSAGE, _K_LAST_ERROR,
 _K_STACK_TRACE) = range(100, 114)
_EXTRA_CODES: dict[str, int] = {
    **{key: idx for key, (idx, _rank) in _KEY_RANK.items()},
    C.EVENT_TYPE: _K_EVENT_TYPE,
    "topic": _K_TOPIC,
    "kafka_topic": _K_KAFKA_TOPIC,
    C.AGGREGATE_ID: _K_AGG_ID,
    C.AGGREGATE_TYPE: _K_AGG_TYPE,
    "essay_ids": _K_ESSAY_IDS,
    "partition": _K_PARTITION,
    "kafka_partition": _K_KAFKA_PARTITION,
    "offset": _K_OFFSET,
    "kafka_offset": _K_KAFKA_OFFSET,
    "error": _K_ERROR,
    C.ERROR_MESSAGE: _K_ERROR_MESSAGE,
    C.LAST_ERROR: _K_LAST_ERROR,
    "stack_trace": _K_STACK_TRACE,
}
_TOP_KEYSET = frozenset(_KEY_RANK) | {C.EVENT_TYPE, "topic", "error", "exception"}


def _fields(d: dict[str, Any], logger: str | None, message: str | None, found: list[str]) -> tuple[Any, ...]:
    """Pull id, event and error fields out of a structlog record (top level and nested ``extra``).

    Ids come from the keys of :data:`~huledu_forensics.model.logformats.ID_KEY_COLUMNS` (``extra``
    before the top level, earlier keys first), then from ``aggregate_id`` by ``aggregate_type``, then
    from the message text.

    Returns:
        ``(ids_tuple, event_type, topic, partition, offset, error, exception)``.
    """
    vals: list[Any] = [None, None, None, None, None, None, None, None]
    ranks = [99, 99, 99, 99, 99, 99, 99, 99]
    event_type = topic = kafka_topic = agg = agg_type = essays = None
    partition = kafka_partition = offset = kafka_offset = None
    error = error_message = last_error = exception = None
    ex = d.get("extra")
    if ex.__class__ is dict and ex:
        codes = _EXTRA_CODES
        for key, v in ex.items():
            code = codes.get(key)
            if code is None or v is None or v == "":
                continue
            if code < 8:
                rank = _KEY_RANK[key][1] * 2
                if rank < ranks[code]:
                    vals[code] = v
                    ranks[code] = rank
            elif code == _K_EVENT_TYPE:
                event_type = v
            elif code == _K_TOPIC:
                topic = v
            elif code == _K_AGG_ID:
                agg = v
            elif code == _K_ERROR:
                error = v
            elif code == _K_LAST_ERROR:
                last_error = v
            elif code == _K_AGG_TYPE:
                agg_type = v
            elif code == _K_PARTITION:
                partition = v
            elif code == _K_OFFSET:
                offset = v
            elif code == _K_KAFKA_TOPIC:
                kafka_topic = v
            elif code == _K_KAFKA_PARTITION:
                kafka_partition = v
            elif code == _K_KAFKA_OFFSET:
                kafka_offset = v
            elif code == _K_ESSAY_IDS:
                essays = v
            elif code == _K_ERROR_MESSAGE:
                error_message = v
            elif code == _K_STACK_TRACE and v.__class__ is str:
                exception = v
        if logger in OUTBOX_ROW_ID_LOGGERS:
            # the relay and the outbox repository call the outbox row id ``event_id`` (SYSTEM.md §2.3)
            row_id = ex.get("event_id")
            if row_id is not None:
                if vals[_OUTBOX_IDX] is None:
                    vals[_OUTBOX_IDX] = row_id
                vals[_EVENT_IDX] = None
                ranks[_EVENT_IDX] = 99
    else:
        ex = None
    for key in _TOP_KEYSET.intersection(d):
        v = d[key]
        if v is None or v == "":
            continue
        slot = _KEY_RANK.get(key)
        if slot is not None:
            idx, rank = slot
            rank += rank + 1
            if rank < ranks[idx]:
                vals[idx] = v
                ranks[idx] = rank
        elif key == C.EVENT_TYPE:
            event_type = event_type or v
        elif key == "topic":
            topic = topic or v
        elif key == "error":
            error = error or v
        else:  # exception: structlog's format_exc_info output
            exception = v
    for i in range(8):
        v = vals[i]
        if v is not None:
            vals[i] = _nid(v)

    if topic is None:
        topic = kafka_topic
    if agg is not None:
        if agg_type is None:
            t = topic_by_event(str(topic or event_type or ""))
            agg_type = t.aggregate_type if t else None
        col = AGGREGATE_ID_COLUMNS.get(agg_type) if agg_type else None
        if col is not None:
            idx = _ID_INDEX[col]
            if vals[idx] is None:
                vals[idx] = _nid(agg)
    if essays is not None and vals[_ESSAY_IDX] is None and essays.__class__ is list and len(essays) == 1:
        vals[_ESSAY_IDX] = _nid(essays[0])
    if partition is None:
        partition = kafka_partition
    if offset is None:
        offset = kafka_offset
    if error is None:
        error = error_message or last_error

    if found and message:
        for f in found:
            if f in message:
                _ids_from_message(message, vals)
                break
    if topic is None and message and M_FROM_TOPIC in message:
        m = _TOPIC_IN_MSG_RE.search(message)
        if m:
            topic = m.group(1)
    if exception is not None and exception.__class__ is not str:
        exception = str(exception)
    if error is None and exception:
        error = _exception_summary(exception)
    return (
        tuple(vals),
        event_type if event_type is None or event_type.__class__ is str else str(event_type),
        topic if topic is None or topic.__class__ is str else str(topic),
        None if partition is None else _int(partition),
        None if offset is None else _int(offset),
        error if error is None or error.__class__ is str else str(error),
        exception,
    )


def _ids_from_message(message: str, vals: list[Any]) -> None:
    """Fill id slots that are still empty from ids the message text names."""
    essays: list[str] = []
    for m in _MSG_ID_RE.finditer(message):
        group = m.lastgroup
        if group == "elist":
            if vals[_ID_INDEX[F.BATCH_ID]] is None:
                vals[_ID_INDEX[F.BATCH_ID]] = m.group("elb").lower()
            essays.extend(e.lower() for e in re.findall(_U, m.group("elist")))
            continue
        idx = _MSG_GROUP_INDEX.get(group or "")
        if idx is None or group is None:
            continue
        value = m.group(group).lower()
        if idx == _ESSAY_IDX:
            essays.append(value)
        elif vals[idx] is None:
            vals[idx] = value
    if essays and vals[_ESSAY_IDX] is None:
        uniq = list(dict.fromkeys(essays))
        if len(uniq) == 1:  # a line about several essays names none of them in particular
            vals[_ESSAY_IDX] = uniq[0]


def _ids_plain(message: str | None, found: list[str]) -> tuple[Any, ...]:
    """Id slots for an unstructured line: only what the message text names."""
    if not found or not message:
        return _NO_IDS
    vals: list[Any] = list(_NO_IDS)
    _ids_from_message(message, vals)
    return tuple(vals)


# ---------------------------------------------------------------------------------------------
# Blocks: a head line and the continuation lines that belong to it


class _Block:
    """A head line plus its continuation lines, emitted together."""

    __slots__ = ("closed", "kind", "last_d", "last_n", "lines", "pid", "tb")

    def __init__(self, kind: str, n: int, dstamp: str | None, raw: str, text: str, match: Any,
                 pid: str | None = None) -> None:
        self.kind = kind
        self.lines: list[tuple[int, str | None, str, str, Any]] = [(n, dstamp, raw, text, match)]
        self.tb: str | None = None
        self.closed = False
        self.last_n = n
        self.last_d = dstamp
        self.pid = pid

    def add(self, n: int, dstamp: str | None, raw: str, text: str, match: Any = None) -> None:
        self.lines.append((n, dstamp, raw, text, match))
        self.last_n = n
        if dstamp is not None:
            self.last_d = dstamp


def _split_stamp(line: str) -> tuple[str | None, str]:
    """A Docker-prefixed line's stamp (``None`` if it has none) and the text after it."""
    if line[10:11] == "T" and line[4:5] == "-":
        sp = line.find(" ", 19)
        if sp != -1:
            raw = line[sp + 1 :]
            if raw[:1] == "[" and _LEVEL_BRACKET_RE.match(raw):
                return None, line  # a console line without a Docker stamp
            return line[:sp], raw
        if line[-1] == "Z":
            return line, ""
    return None, line


class _Parser:
    """Stateful line parser; rows accumulate as tuples in :data:`_ROW_FIELDS` order."""

    def __init__(
        self,
        *,
        container: str,
        stream: str,
        source_file: str,
        docker_prefixed: bool,
        start_line: int,
        prefilter: Callable[[str], bool] | None,
    ) -> None:
        self.container = container
        self.stream = stream
        self.source_file = source_file
        self.docker_prefixed = docker_prefixed
        self.prefilter = prefilter
        self.n = start_line - 1
        c = CONTAINERS.get(container)
        self.container_service: str | None = c.service if c else _service_for_unknown_container(container)
        self.rows: list[tuple[Any, ...]] = []
        self.queue: deque[_Block] = deque()
        self.open: _Block | None = None
        self.pg_open: dict[str, _Block] = {}
        self.last_pg: _Block | None = None
        self._svc_cache: dict[tuple[str | None, str | None], str | None] = {}

    # -- service routing ------------------------------------------------------------------

    def _service(self, logger: str | None, service_name: Any) -> str | None:
        if self.container_service is not None:
            return self.container_service
        key = (logger, service_name if service_name.__class__ is str else None)
        try:
            return self._svc_cache[key]
        except KeyError:
            svc = service_for_logger(logger) or service_for_service_name(key[1])
            self._svc_cache[key] = svc
            return svc

    # -- feeding --------------------------------------------------------------------------

    def feed(self, line: str) -> None:
        """Consume one physical line (with or without its trailing newline)."""
        self.n += 1
        n = self.n
        if line[-1:] == "\n":
            line = line[:-2] if line[-2:-1] == "\r" else line[:-1]
        dstamp, raw = _split_stamp(line) if self.docker_prefixed else (None, line)
        if raw[:1] == "{":
            if self.open is not None or self.queue or self.pg_open:
                self._close_all()
            if self.prefilter is not None and not self.prefilter(raw):
                return
            self._json(n, dstamp, raw)
            return
        self._feed_other(n, dstamp, raw)

    def skip(self) -> None:
        """Consume a JSON line without parsing it, as :meth:`feed` does a JSON line its prefilter rejects."""
        self.n += 1
        if self.open is not None or self.queue or self.pg_open:
            self._close_all()

    def _close_all(self) -> None:
        if self.open is not None:
            self.open.closed = True
            self.open = None
        if self.pg_open:
            for b in self.pg_open.values():
                b.closed = True
            self.pg_open.clear()
        self.last_pg = None
        if self.queue:
            self._drain()

    def _drain(self) -> None:
        q = self.queue
        while q and q[0].closed:
            self._emit(q.popleft())

    def _start(self, block: _Block) -> None:
        self.queue.append(block)

    def _near(self, block: _Block, dstamp: str | None, limit: float) -> bool:
        if dstamp is None or block.last_d is None:
            return True
        a = _docker_seconds(block.last_d)
        b = _docker_seconds(dstamp)
        if a is None or b is None:
            return True
        return abs(b - a) <= limit

    def _feed_other(self, n: int, dstamp: str | None, raw: str) -> None:
        text = _ANSI_RE.sub("", raw) if "\x1b" in raw else raw
        c = text[:1]
        if "0" <= c <= "9" and len(text) > 19:
            sep = text[10]
            if sep == "T":
                m = _CONSOLE_RE.match(text)
                if m:
                    self._close_all()
                    self.open = _Block("console", n, dstamp, raw, text, m)
                    self._start(self.open)
                    return
            elif sep == " ":
                m = _PG_RE.match(text)
                if m:
                    self._postgres(n, dstamp, raw, text, m)
                    return
                m = _DEFAULT_RE.match(text)
                if m:
                    self._close_all()
                    self.open = _Block("structlog_default", n, dstamp, raw, text, m)
                    self._start(self.open)
                    return
        elif c == "[":
            m = _HYPERCORN_RE.match(text)
            if m:
                self._close_all()
                self.open = _Block("hypercorn", n, dstamp, raw, text, m)
                self._start(self.open)
                return
        b = self.open
        if b is not None and self._continues(b, text, dstamp):
            b.add(n, dstamp, raw, text)
            return
        lp = self.last_pg
        if (
            lp is not None
            and not lp.closed
            and text[:1] in (" ", "\t")
            and self._near(lp, dstamp, _SAME_WRITE_SECONDS)
        ):
            lp.add(n, dstamp, raw, text)  # a multi-line SQL statement
            return
        self._close_all()
        block = _Block("plain", n, dstamp, raw, text, None)
        if text.startswith(_TRACEBACK_HEAD):
            block.tb = "frames"
        self.open = block
        self._start(block)

    def _continues(self, b: _Block, text: str, dstamp: str | None) -> bool:
        """Whether ``text`` continues block ``b`` (tracebacks after console/plain/hypercorn heads)."""
        if text.startswith(_TRACEBACK_HEAD) or (text[:1] == "╭" and "Traceback" in text):
            # a logged traceback is written together with its message: microseconds apart
            if b.tb in ("frames", "after") or self._near(b, dstamp, _SAME_WRITE_SECONDS):
                b.tb = "frames"
                return True
            return False
        tb = b.tb
        if tb is None:
            return False
        if tb == "frames":
            if not text or text[0] in " \t" or text[0] in _BOX_CHARS:
                return True
            b.tb = "after"  # the exception line itself
            return True
        # after the exception line: chained tracebacks and multi-line exception messages
        if not text or text[0] in " \t":
            return True
        if text.startswith(_CHAIN_PREFIXES) or text.startswith(_EXC_MESSAGE_PREFIXES):
            return True
        if dstamp is not None and b.last_d is not None and not text.startswith(_PLAIN_HEAD_PREFIXES):
            return self._near(b, dstamp, _SAME_WRITE_TIGHT)
        return False

    def _postgres(self, n: int, dstamp: str | None, raw: str, text: str, m: re.Match[str]) -> None:
        if self.open is not None:
            self.open.closed = True
            self.open = None
        pid = m.group(4)
        sev = m.group(5)
        if sev in POSTGRES_CONTINUATION_KEYWORDS:
            b = self.pg_open.get(pid)
            if b is not None and not b.closed:
                b.add(n, dstamp, raw, text, m)
                self.last_pg = b
                self._age_pg(n)
                return
        else:
            old = self.pg_open.pop(pid, None)
            if old is not None:
                old.closed = True
        b = _Block("postgres", n, dstamp, raw, text, m, pid)
        self.pg_open[pid] = b
        self.last_pg = b
        self._start(b)
        self._age_pg(n)

    def _age_pg(self, n: int) -> None:
        if len(self.pg_open) > 1:
            for pid, b in list(self.pg_open.items()):
                if n - b.last_n > _PG_AGE_LINES:
                    b.closed = True
                    del self.pg_open[pid]
        self._drain()

    def finish(self) -> None:
        """Close every open block and emit what is left."""
        self._close_all()

    # -- emitting -------------------------------------------------------------------------

    def _json(self, n: int, dstamp: str | None, raw: str) -> None:
        text = raw
        if len(raw) > _DOCKER_SPLIT and dstamp is not None:
            text = _EMBEDDED_STAMP_RE.sub("", raw)  # rejoin a line Docker split into pieces
        found = _find_ids(text)
        if not found:
            ids = None
        elif len(found) == 1:
            ids = found[0].lower()
        else:
            ids = " ".join(dict.fromkeys([f.lower() for f in found]))
        d: Any = None
        if _fast_loads is not None:
            try:
                d = _fast_loads(text)
            except ValueError:  # orjson.JSONDecodeError; NaN, huge ints, ...: let json decide
                d = None
        if d is None:
            try:
                d, end = _raw_decode(text)
                if end != len(text) and text[end:].strip():
                    d = None  # trailing garbage: not one JSON object
            except (ValueError, RecursionError):  # RecursionError: hostile deeply nested JSON
                d = None
        if d.__class__ is not dict:
            self._unparsed(n, dstamp, raw, found, ids)
            return
        get = d.get
        logger = get("logger_name")
        if logger is None:
            logger = get("logger")
        if logger is not None and logger.__class__ is not str:
            logger = str(logger)
        message = get("event")
        if message is None:
            message = get("message") or get("msg")
        if message is not None and message.__class__ is not str:
            message = str(message)
        lv = get("level")
        level = _LEVEL_ALIASES_GET(lv) if lv.__class__ is str else None
        if level is None:
            level = normalise_level(lv if lv is not None else get("levelname"))
        idv, event_type, topic, partition, offset, error, exception = _fields(d, logger, message, found)
        ts = get("timestamp")
        if ts.__class__ is not str or ts[-1:] != "Z":
            ts = _iso(ts)
        service = self.container_service
        if service is None:
            service = self._service(logger, get("service.name"))
        self.rows.append((
            ts or dstamp, dstamp, service, "json", level, logger, message,
            *idv, ids, event_type, topic, partition, offset, error, exception, None, None, True, raw, n,
        ))

    def _unparsed(self, n: int, dstamp: str | None, raw: str, found: list[str], ids: str | None) -> None:
        """A line that starts like JSON but does not parse (e.g. truncated): keep it, salvage keys."""
        rec: dict[str, Any] = {}
        for key, value in _JSON_STR_PAIR_RE.findall(raw):
            if key not in rec:
                try:
                    rec[key] = json.loads('"' + value + '"')
                except ValueError:
                    rec[key] = value
        logger = _text(rec.get("logger_name"))
        message = _text(rec.get("event")) or raw
        idv, event_type, topic, partition, offset, error, exception = _fields(rec, logger, message, found)
        self.rows.append((
            _iso(rec.get("timestamp")) or dstamp, dstamp, self._service(logger, rec.get("service.name")),
            "unparsed", normalise_level(rec.get("level")), logger, message, *idv, ids, event_type, topic,
            partition, offset, error, exception, None, None, False, raw, n,
        ))

    def _emit(self, b: _Block) -> None:
        pf = self.prefilter
        if pf is not None and not any(pf(line[2]) for line in b.lines):
            return
        if b.kind == "postgres":
            self._emit_postgres(b)
        else:
            self._emit_text(b)

    def _emit_postgres(self, b: _Block) -> None:
        n, dstamp, raw, _text_clean, m = b.lines[0]
        date, time_, tz, _pid, sev, msg = m.groups()
        cont = sev in POSTGRES_CONTINUATION_KEYWORDS  # an orphan continuation starts this block
        level = None if cont else POSTGRES_SEVERITY_LEVELS.get(sev)
        ts = f"{date}T{time_}Z" if tz in ("UTC", "GMT", "Z") else None
        found, ids = _ids_of(raw)
        detail = None
        if len(b.lines) > 1:
            parts = []
            for _n, _d, _raw, t, cm in b.lines[1:]:
                parts.append(t[cm.start(5):] if cm is not None else t)
            detail = "\n".join(parts)
        error = msg if level in ("error", "critical") else None
        idv = _ids_plain(msg, found)
        service = self.container_service
        head = (
            ts or dstamp, dstamp, service, "postgres", level, "postgres", msg, *idv, ids,
            None, None, None, None, error, None, detail, None, True, raw, n,
        )
        rows = self.rows
        rows.append(head)
        head_ts = head[0]
        for cn, cd, craw, ct, cm in b.lines[1:]:
            _cfound, cids = _ids_of(craw)
            if cm is not None:
                ctime = f"{cm.group(1)}T{cm.group(2)}Z" if cm.group(3) in ("UTC", "GMT", "Z") else None
                cmsg = cm.group(6)
            else:
                ctime, cmsg = None, ct
            rows.append((
                ctime or cd or head_ts, cd, service, "continuation", level, "postgres", cmsg, *idv, cids,
                None, None, None, None, None, None, None, n, True, craw, cn,
            ))

    def _emit_text(self, b: _Block) -> None:
        n, dstamp, raw, text, m = b.lines[0]
        kind = b.kind
        found, ids = _ids_of(raw)
        service_name = None
        event_type = topic = error = exception = None
        partition = offset = None
        idv: tuple[Any, ...] = _NO_IDS
        ts: str | None = None
        if kind == "console" or kind == "structlog_default":
            if kind == "console":
                ts, lv, rest = m.group(1), m.group(2), m.group(3)
                ts = _iso(ts.replace(",", "."))
            else:
                date, time_, lv, rest = m.groups()
                ts = f"{date}T{time_.replace(',', '.')}Z"
            level = LEVEL_ALIASES.get(lv.lower())
            rm = _CONSOLE_REST_RE.match(rest)
            if rm:
                message = rm.group("event").rstrip()
                logger: str | None = rm.group("logger")
                record = _parse_console_kv(rest[rm.end():])
            else:
                message, logger, record = rest.rstrip(), None, {}
            logger = logger or _text(record.get("logger_name")) or _text(record.get("logger"))
            service_name = record.get("service.name")
            idv, event_type, topic, partition, offset, error, exception = _fields(
                record, logger, message, found
            )
        elif kind == "hypercorn":
            date, time_, off, _pid, lv, message = m.groups()
            ts = f"{date}T{time_}{off[:3] + ':' + off[3:] if off else 'Z'}"
            level = LEVEL_ALIASES.get(lv.lower())
            logger = "hypercorn.access" if _HYPERCORN_ACCESS_RE.search(message) else "hypercorn.error"
            idv = _ids_plain(message, found)
        else:  # plain
            message = text
            level, logger = _plain_level_logger(text)
            idv = _ids_plain(message, found)
        if len(b.lines) > 1:
            tb_lines = [line[3] for line in b.lines[1:]]
            if kind == "plain" and text.startswith(_TRACEBACK_HEAD):
                tb_lines.insert(0, text)
            tb_text = "\n".join(tb_lines)
            exception = exception + "\n" + tb_text if exception else tb_text
            if error is None:
                error = _exception_summary(tb_text)
        elif kind == "plain" and text.startswith(_TRACEBACK_HEAD):
            exception = text
        service = self._service(logger, service_name)
        head_ts = ts or dstamp
        rows = self.rows
        rows.append((
            head_ts, dstamp, service, kind, level, logger, message, *idv, ids, event_type, topic,
            partition, offset, _text(error), _text(exception), None, None, True, raw, n,
        ))
        for cn, cd, craw, ct, _cm in b.lines[1:]:
            _cfound, cids = _ids_of(craw)
            rows.append((
                cd or head_ts, cd, service, "continuation", level, logger, ct, *idv, cids, event_type,
                topic, None, None, None, None, None, n, True, craw, cn,
            ))

    # -- frames ---------------------------------------------------------------------------

    def take(self) -> pd.DataFrame:
        """Return the rows emitted so far as a frame and forget them."""
        rows, self.rows = self.rows, []
        return _frame(rows, self.container, self.stream, self.source_file)


def _service_for_unknown_container(container: str) -> str | None:
    """Service key for a container the model does not list (e.g. ``huleedu_nlp_service``)."""
    if not container:
        return None
    for svc in SERVICES.values():
        if container in svc.containers or container == svc.db_container:
            return svc.key
    return None


# ---------------------------------------------------------------------------------------------
# Frames


def _utc(values: Iterable[str | None] | pa.Array) -> pd.Series:
    if isinstance(values, pa.Array):
        return _utc_arrow(values)
    s = pd.Series(list(values), dtype=object)
    return _utc_objects(s)


_NAT = np.iinfo(np.int64).min
_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)  # YYYY-MM-DDTHH:MM:SS
_SEPARATORS = ((4, ord("-")), (7, ord("-")), (10, ord("T")), (13, ord(":")), (16, ord(":")))
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _utc_arrow(values: pa.Array) -> pd.Series:
    """:func:`_utc` of an Arrow string column: the values written exactly ``YYYY-MM-DDTHH:MM:SS[.f]Z``
    (one to nine fraction digits, years 1678-2261: the nanosecond range) are read column-wise, the
    same instants pandas gives them; any other value goes through pandas."""
    values = values.cast(pa.large_string())
    n = len(values)
    ns = np.full(n, _NAT, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    valid = np.asarray(values.is_valid()) if values.null_count else np.ones(n, dtype=bool)
    buffers = values.buffers()
    if valid.any() and buffers[2] is not None:
        offsets = np.frombuffer(buffers[1], dtype=np.int64, count=n + 1, offset=8 * values.offset)
        data = np.frombuffer(buffers[2], dtype=np.uint8)
        length = np.diff(offsets)
        for size in (20, *range(22, 31)):
            rows = np.flatnonzero(valid & (length == size))
            if len(rows):
                _iso_z_into(np.lib.stride_tricks.sliding_window_view(data, size)[offsets[rows]], rows, ns, ok)
    rest = np.flatnonzero(valid & ~ok)
    if len(rest):
        other = _utc_objects(pd.Series(values.take(pa.array(rest)).to_numpy(zero_copy_only=False), dtype=object))
        ns[rest] = other.array.asi8
    return pd.Series(ns.view("M8[ns]")).dt.tz_localize("UTC")


def _iso_z_into(text: np.ndarray, rows: np.ndarray, ns: np.ndarray, ok: np.ndarray) -> None:
    """Fill ``ns``/``ok`` at ``rows`` from ``text`` (one value per row, all of one length) where a row
    is a valid ``YYYY-MM-DDTHH:MM:SS[.f]Z`` time in years 1678-2261."""
    size = text.shape[1]
    cols = np.ascontiguousarray(text.T)  # one row per character position
    digit = cols - np.uint8(48)  # wraps: a digit is < 10
    frac = list(range(20, size - 1))
    good = cols[size - 1] == ord("Z")
    if frac:
        good &= cols[19] == ord(".")
    for i, ch in _SEPARATORS:
        good &= cols[i] == ch
    for i in (*_DIGITS, *frac):
        good &= digit[i] < 10

    def num(*at: int) -> np.ndarray:
        out: np.ndarray = digit[at[0]].astype(np.int64)
        for i in at[1:]:
            out *= 10
            out += digit[i]
        return out

    year, month, day = num(0, 1, 2, 3), num(5, 6), num(8, 9)
    hour, minute, second = num(11, 12), num(14, 15), num(17, 18)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    good &= (year >= 1678) & (year <= 2261) & (month >= 1) & (month <= 12) & (hour < 24) & (minute < 60) & (second < 60)
    month = np.where(good, month, 1)
    good &= (day >= 1) & (day <= _DAYS_IN_MONTH[month] + (leap & (month == 2)))
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    nanos = num(*frac) * 10 ** (9 - len(frac)) if frac else 0
    value = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000_000 + nanos
    ns[rows[good]] = value[good]
    ok[rows[good]] = True


def _utc_objects(s: pd.Series) -> pd.Series:
    out = pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")
    bad = out.isna() & s.notna()
    if bad.any():
        out = _ns(out)
        out[bad] = to_utc_series(s[bad])
    return _ns(out)


def _ns(out: pd.Series) -> pd.Series:
    """``out`` as ``datetime64[ns, UTC]``. pandas may parse at microsecond resolution, where year 9999
    fits; outside the nanosecond range a time becomes NaT (as in ``to_utc_series``), never an error."""
    try:
        return out.astype(_DT)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
        return out.where((out >= lo) & (out <= hi)).astype(_DT)


_STR_DTYPE = pd.Series([], dtype="str").dtype
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _str_column(values: Iterable[Any]) -> Any:
    """A pandas ``str`` column from Python str/None values (built through Arrow: ~4x faster)."""
    if isinstance(values, pa.Array):
        return pd.array(values.cast(pa.large_string()), dtype=_STR_DTYPE)
    seq = values if isinstance(values, (list, tuple)) else list(values)
    try:
        return pd.array(pa.array(seq, type=pa.large_string()), dtype=_STR_DTYPE)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        # str() of odd values; a lone surrogate (a JSON "\\ud800" escape) has no UTF-8 form: U+FFFD,
        # as for undecodable bytes in the file
        return pd.array([None if v is None else _LONE_SURROGATE_RE.sub("\ufffd", str(v)) for v in seq],  # type: ignore[misc]  # stubs: str dtype
                        dtype=_STR_DTYPE)  # type: ignore[arg-type]


def _const_column(value: str | None, n: int) -> Any:
    """A pandas ``str`` column of ``n`` times ``value``."""
    return _str_column(pa.repeat(pa.scalar(value, pa.large_string()), n))


def _int_column(values: Any) -> Any:
    if isinstance(values, pa.Array):
        if values.null_count == len(values):
            return pd.arrays.IntegerArray(np.zeros(len(values), dtype=np.int64), np.ones(len(values), dtype=bool))
        nulls = np.asarray(values.is_null())
        return pd.arrays.IntegerArray(np.asarray(values.fill_null(0), dtype=np.int64), nulls)
    return pd.array(values, dtype="Int64")


def _frame(rows: list[tuple[Any, ...]], container: str, stream: str, source_file: str) -> pd.DataFrame:
    if not rows:
        return empty_frame()
    cols = dict(zip(_ROW_FIELDS, zip(*rows, strict=True), strict=True))
    return _frame_from_columns(cols, len(rows), container, stream, source_file)


def _frame_from_columns(cols: dict[str, Any], n: int, container: str, stream: str, source_file: str
                        ) -> pd.DataFrame:
    """The frame of ``n`` rows from one sequence (tuple, list or Arrow array) per :data:`_ROW_FIELDS`
    column; the per-line parser and the columnar path (:mod:`._logcols`) both end here."""
    data: dict[str, Any] = {}
    docker = _utc(cols["docker_ts"])
    ts = _utc(cols["ts"])
    data["ts"] = ts.where(ts.notna(), docker)
    data["docker_ts"] = docker
    for name in LOG_COLUMNS:
        if name in data:
            continue
        if name == "container":
            data[name] = _const_column(container, n)
        elif name == "stream":
            data[name] = _const_column(stream, n)
        elif name == "source_file":
            data[name] = _const_column(source_file, n)
        elif name in _INT_COLUMNS:
            data[name] = _int_column(cols[name])
        elif name == "parsed":
            data[name] = np.array(cols[name], dtype=bool)
        elif name == "line_no":
            data[name] = np.array(cols[name], dtype=np.int64)
        else:
            data[name] = _str_column(cols[name])
    return pd.DataFrame(data, columns=list(LOG_COLUMNS))


def empty_frame() -> pd.DataFrame:
    """Return a frame with every column of :data:`LOG_COLUMNS`, correctly typed, and no rows."""
    data: dict[str, Any] = {}
    for name in LOG_COLUMNS:
        if name in ("ts", "docker_ts"):
            data[name] = pd.Series([], dtype=_DT)
        elif name in _INT_COLUMNS:
            data[name] = pd.array([], dtype="Int64")
        elif name == "parsed":
            data[name] = np.array([], dtype=bool)
        elif name == "line_no":
            data[name] = np.array([], dtype=np.int64)
        else:
            data[name] = pd.Series([], dtype="str")
    return pd.DataFrame(data, columns=list(LOG_COLUMNS))


# ---------------------------------------------------------------------------------------------
# Public API


def parse_lines(
    lines: Iterable[str],
    *,
    container: str,
    stream: str = "combined",
    source_file: str = "",
    docker_prefixed: bool = True,
    start_line: int = 1,
) -> pd.DataFrame:
    """Parse log lines into one row per line.

    Args:
        lines: Lines as ``docker logs --timestamps`` prints them (trailing newlines optional).
        container: Container the lines came from (``huleedu_essay_lifecycle_worker``); it sets the
            ``service`` column through the services model. Unknown names fall back to logger-name
            routing, then to ``service.name``.
        stream: ``stdout``, ``stderr`` or ``combined``; copied into the ``stream`` column.
        source_file: Copied into the ``source_file`` column.
        docker_prefixed: Whether each line starts with a Docker RFC3339Nano stamp and a space.
        start_line: ``line_no`` of the first line.

    Returns:
        A frame with :data:`LOG_COLUMNS`; one row per input line, in input order except that
        PostgreSQL continuation lines interleaved from other backends follow their own head.
    """
    parser = _Parser(
        container=container, stream=stream, source_file=source_file,
        docker_prefixed=docker_prefixed, start_line=start_line, prefilter=None,
    )
    for line in lines:
        parser.feed(line)
    parser.finish()
    return parser.take()


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")
    # newline="\n": only LF ends a line (a stray CR inside a line must not split it; CRLF is handled)
    return open(path, encoding="utf-8", errors="replace", newline="\n")


def iter_parse_file(
    path: str | Path,
    *,
    container: str,
    stream: str = "combined",
    source_file: str | None = None,
    docker_prefixed: bool = True,
    chunk_lines: int = 200_000,
    prefilter: Callable[[str], bool] | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream a log file (plain or gzip, detected by its magic bytes) as frames of parsed rows.

    The file is read in blocks of 16 MiB and never held whole; without a ``prefilter``, runs of
    Docker-stamped JSON lines are parsed column-wise (see the module docstring), with the same rows.
    A frame is yielded once about ``chunk_lines`` rows have accumulated (a JSON run: at most
    ``chunk_lines``); a head line and its continuation lines (traceback, PostgreSQL
    ``CONTEXT``/``STATEMENT``/``DETAIL``) always land in the same frame.

    Args:
        path: The log file.
        container: Container name (see :func:`parse_lines`).
        stream: Value of the ``stream`` column.
        source_file: Value of the ``source_file`` column; defaults to ``str(path)``.
        docker_prefixed: Whether lines carry the Docker stamp prefix.
        chunk_lines: Rows per yielded frame (approximate: a block is never split).
        prefilter: Called with each line's text (without the Docker stamp); when it returns False
            the line is skipped before it is parsed. A head line and its continuation lines are kept
            or skipped together: the block is kept when any of its lines passes.

    Yields:
        Frames with :data:`LOG_COLUMNS`; ``line_no`` is the true 1-based line number in the file.
    """
    p = Path(path)
    parser = _Parser(
        container=container, stream=stream, source_file=str(p) if source_file is None else source_file,
        docker_prefixed=docker_prefixed, start_line=1, prefilter=prefilter,
    )
    chunk = max(1, int(chunk_lines))
    feed = parser.feed
    if prefilter is None and docker_prefixed:
        yield from _iter_blocks(p, parser, chunk)
        return
    with _open_text(p) as fh:
        for line in fh:
            feed(line)
            if len(parser.rows) >= chunk:
                yield parser.take()
    parser.finish()
    if parser.rows:
        yield parser.take()


_BLOCK_BYTES = 16 << 20  # bytes read at a time by the full parse


def _read_blocks(fh: Any, size: int) -> Iterator[bytes]:
    """Whole lines from a binary file, about ``size`` bytes at a time (the last may lack its newline)."""
    tail = b""
    while True:
        data = fh.read(size)
        if not data:
            if tail:
                yield tail
            return
        if tail:
            data = tail + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            tail = data
            continue
        yield data[:cut] if cut < len(data) else data
        tail = data[cut:]


def _iter_blocks(p: Path, parser: _Parser, chunk: int) -> Iterator[pd.DataFrame]:
    """The full parse by blocks: runs of Docker-stamped JSON lines go through the columnar path
    (:mod:`._logcols`, the same rows as the per-line parser), everything else line by line."""
    with open(p, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    with gzip.open(p, "rb") if gz else open(p, "rb") as fh:
        # each run is read by Arrow (in its own threads) while the run before it is worked on here
        ahead: collections.deque[tuple[bytes, int, np.ndarray | None, _logcols.Read | None]] = collections.deque()
        for block in _read_blocks(fh, _BLOCK_BYTES):
            for fast, piece, n_lines, starts in _logcols.split_runs(block, chunk, _DOCKER_SPLIT):
                ahead.append((piece, n_lines, starts, _logcols.Read(piece, starts) if fast and starts is not None
                              else None))
                while len(ahead) > 1:
                    yield from _run_piece(*ahead.popleft(), parser, chunk)
        while ahead:
            yield from _run_piece(*ahead.popleft(), parser, chunk)
    parser.finish()
    if parser.rows:
        yield parser.take()


def _run_piece(piece: bytes, n_lines: int, starts: np.ndarray | None, read: _logcols.Read | None, parser: _Parser,
               chunk: int) -> Iterator[pd.DataFrame]:
    if read is None:
        yield from _feed_piece(piece, parser, chunk)
    else:
        parser._close_all()  # what the run's first JSON line does in the per-line parser
        yield from _columnar_run(piece, n_lines, parser, chunk, [2 * len(piece)], starts, read)


def _columnar_run(piece: bytes, n_lines: int, parser: _Parser, chunk: int, budget: list[int],
                  starts: np.ndarray | None = None, read: _logcols.Read | None = None) -> Iterator[pd.DataFrame]:
    """Frames of a run of JSON lines. A run the columnar path refuses (a number where an id belongs,
    ...) is halved until the lines it refuses are left to the per-line parser with few others; the
    bytes of refused reads are bounded by ``budget`` (twice the run), so a run that is refused
    everywhere costs at most two more reads before it goes line by line."""
    if starts is None:
        starts = _logcols._line_bounds(piece)[0]
    frame = _logcols.parse_run(piece, n_lines, parser.n + 1, parser, starts, read)
    if frame is not None:
        if parser.rows:
            yield parser.take()
        parser.n += n_lines
        yield frame
        return
    budget[0] -= len(piece)
    half = n_lines // 2
    if half >= max(1, _logcols.MIN_RUN_LINES) and budget[0] > 0:
        cut = int(starts[half])
        yield from _columnar_run(piece[:cut], half, parser, chunk, budget, starts[:half])
        yield from _columnar_run(piece[cut:], n_lines - half, parser, chunk, budget, starts[half:] - cut)
        return
    yield from _feed_piece(piece, parser, chunk)


def _feed_piece(piece: bytes, parser: _Parser, chunk: int) -> Iterator[pd.DataFrame]:
    feed = parser.feed
    # newline="\n": only LF ends a line, as in _open_text
    for line in io.StringIO(piece.decode("utf-8", "replace"), newline="\n"):
        feed(line)
        if len(parser.rows) >= chunk:
            yield parser.take()


def parse_file(
    path: str | Path,
    *,
    container: str,
    stream: str = "combined",
    source_file: str | None = None,
    docker_prefixed: bool = True,
    chunk_lines: int = 200_000,
    prefilter: Callable[[str], bool] | None = None,
) -> pd.DataFrame:
    """Parse a whole log file into one frame (see :func:`iter_parse_file` for the arguments)."""
    frames = [
        f
        for f in iter_parse_file(
            path, container=container, stream=stream, source_file=source_file,
            docker_prefixed=docker_prefixed, chunk_lines=chunk_lines, prefilter=prefilter,
        )
        if len(f)
    ]
    if not frames:
        return empty_frame()
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def make_id_prefilter(ids: Iterable[str]) -> Callable[[str], bool]:
    """Return a cheap ``line -> bool`` test: does the line mention any of ``ids``?

    Every id is matched as a case-insensitive substring (``UUID('…')`` reprs in ``ids`` are unwrapped),
    the one mention test :func:`scope_filter` and live collection use too. With no usable id the test
    rejects every line.

    Args:
        ids: Batch, correlation, essay, storage, file-upload, event or outbox ids.

    Returns:
        A callable for the ``prefilter`` argument of :func:`iter_parse_file`.
    """
    needles = _needles(ids)
    if not needles:
        return lambda line: False
    return _mentions(needles)


# ---------------------------------------------------------------------------------------------
# One line's typed ids (shared by the parser's users and live collection)

ID_COLUMN_KINDS: dict[str, str] = {
    F.BATCH_ID: "batch",
    F.CORRELATION_ID: "correlation",
    F.ESSAY_ID: "essay",
    F.TEXT_STORAGE_ID: "text_storage",
    F.FILE_UPLOAD_ID: "file_upload",
    "event_id": "event",
    "outbox_id": "outbox",
}
"""Typed id column → the id kind scope discovery uses for it (``trace_id`` is not followed)."""

_ROW_POS = {name: i for i, name in enumerate(_ROW_FIELDS)}
_KIND_POS = tuple((_ROW_POS[col], kind) for col, kind in ID_COLUMN_KINDS.items())
_LEVEL_POS = _ROW_POS["level"]
_LINKED_LEVELS = frozenset(("warning", "error", "critical"))
LINK_SECONDS = 2.0
"""An id-less warning/error line this close after a scoped line (same file) belongs to the scope."""


def line_facts(line: str, *, docker_prefixed: bool = True) -> tuple[list[tuple[str, str]], str | None]:
    """Parse one physical line on its own; return its typed ``(kind, id)`` pairs and its level.

    This is the parser itself (the same JSON decode, ``extra`` key priorities, outbox ``event_id``
    handling and message-text ids as :func:`parse_lines`), so live collection and the offline analysis
    agree on which ids a line carries. A line read alone cannot be a continuation line, so a traceback
    frame yields only the ids its own text names.
    """
    parser = _Parser(container="", stream="", source_file="", docker_prefixed=docker_prefixed,
                     start_line=1, prefilter=None)
    parser.feed(line if line[-1:] == "\n" else line + "\n")
    parser.finish()
    if not parser.rows:
        return [], None
    row = parser.rows[0]
    return [(kind, row[pos]) for pos, kind in _KIND_POS if row[pos] is not None], row[_LEVEL_POS]


def line_ids(line: str, *, docker_prefixed: bool = True) -> list[tuple[str, str]]:
    """The typed ``(kind, id)`` pairs of one line, e.g. ``[("batch", "278f…"), ("correlation", …)]``.

    See :func:`line_facts`; ids are normalised (lower-case, ``UUID('…')`` unwrapped).
    """
    return line_facts(line, docker_prefixed=docker_prefixed)[0]


# ---------------------------------------------------------------------------------------------
# Scoped reads: the rows about some ids, found by a byte-level search


def _needles(ids: Iterable[str]) -> list[str]:
    out = []
    for value in ids:
        v = _nid(value)
        if v and v not in out:
            out.append(v)
    return out


def scope_filter(frame: pd.DataFrame, ids: Iterable[str]) -> pd.DataFrame:
    """The rows of one file's parse that are about ``ids`` (the definition :func:`read_scoped` meets).

    A block (a head line and its continuation lines) is kept when any of its lines mentions one of
    ``ids`` (case-insensitive substring of the text after the Docker stamp, as
    :func:`make_id_prefilter`). An id-less (no typed id column set) warning/error block is kept too when
    the nearest earlier block that mentions an id or carries a typed id is a kept one, at most
    :data:`LINK_SECONDS` before it (Docker stamps, else inner times): e.g. "offset not committed" after
    a handler failure. Row order is kept.
    """
    if frame.empty:
        return frame
    needles = _needles(ids)
    if not needles:
        return frame.iloc[0:0]
    keep, _ = _select_blocks(frame, _mentions(needles))
    return frame[keep].reset_index(drop=True)


_CASELESS_RUN_RE = re.compile(r"[0-9-]+")
_UUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32_SHAPE = re.compile(r"[0-9a-f]{32}")


def _mentions(needles: list[str]) -> Callable[[str], bool]:
    """``text -> bool``: exactly ``any(n in text.lower() for n in needles)`` (the :func:`scope_filter`
    hit), in a time that does not grow with the number of UUID and 32-hex needles: a UUID can only start
    8 characters before a dash, a 32-hex id only inside a run of 32 or more hex digits."""
    if len(needles) <= _SUBSTRING_FILTER_MAX:
        few = tuple(needles)
        # each needle's longest run of digits and dashes: only a digit (dash) lowers to a digit (dash),
        # so a text whose lower-case form holds the needle holds that run as it is
        keys = tuple(max(_CASELESS_RUN_RE.findall(n), key=len, default="") for n in few)

        def few_test(text: str) -> bool:
            # the needles are lower-case: a hit in the text is a hit in its lower-case form, and a text
            # whose cased characters are all lower-case is its own lower-case form
            for n in few:
                if n in text:
                    return True
            if text.islower():
                return False
            low = None
            for n, key in zip(few, keys):
                if key and key not in text:
                    continue
                if low is None:
                    low = text.lower()
                if n in low:
                    return True
            return False

        return few_test
    uuids = frozenset(n for n in needles if _UUID_SHAPE.fullmatch(n))
    hexes = frozenset(n for n in needles if _HEX32_SHAPE.fullmatch(n))
    other = tuple(n for n in needles if n not in uuids and n not in hexes)

    def test(text: str) -> bool:
        low = text.lower()
        if uuids:
            i = low.find("-", 8)
            while i != -1:
                if low[i - 8 : i + 28] in uuids:
                    return True
                i = low.find("-", i + 1)
        if hexes and len(low) >= 32:
            mask = low.encode("latin-1", "replace").translate(_HEX_MASK)  # one byte per character
            pos = mask.find(_HEX_RUN)
            while pos != -1:
                end = mask.find(b"\x00", pos)
                end = len(mask) if end == -1 else end
                for k in range(pos, end - 31):
                    if low[k : k + 32] in hexes:
                        return True
                pos = mask.find(_HEX_RUN, end)
        return any(n in low for n in other)

    return test


def _select_blocks(frame: pd.DataFrame, mentions: Callable[[str], bool],
                   admit: Callable[[list[tuple[str, str]]], bool] | None = None,
                   last_hit_t: int | None = None) -> tuple[np.ndarray, int | None]:
    """:func:`scope_filter`'s decision over whole blocks: the rows to keep, and the time (ns) of the
    last kept block that mentions an id, or ``None`` (the state a following stretch continues from).

    ``admit`` (live collection's :class:`~huledu_forensics.scope.ScopeWalk`) sees each block that
    mentions an id, in order, with its typed ``(kind, id)`` pairs; a block it refuses is dropped and
    links nothing.
    """
    raw = frame["raw"].tolist()
    hit = np.fromiter((r is not None and r == r and mentions(r) for r in raw), dtype=bool, count=len(raw))
    line_no = frame["line_no"].to_numpy(dtype=np.int64)
    parent = frame["parent_line"]
    head = np.where(parent.isna().to_numpy(), line_no, parent.fillna(0).to_numpy(dtype=np.int64))
    hit_heads = set(head[hit].tolist())
    refused: set[int] = set()
    block_ids: dict[int, list[tuple[str, str]]] = {}
    if admit is not None and hit_heads:
        cols = [(frame[c].tolist(), kind) for c, kind in ID_COLUMN_KINDS.items()]
        for i in np.flatnonzero(np.isin(head, list(hit_heads))).tolist():
            pairs = block_ids.setdefault(int(head[i]), [])
            pairs.extend((kind, v) for values, kind in cols if isinstance(v := values[i], str) and v)
    # id-less warning/error blocks right after a scoped block
    is_head = parent.isna().to_numpy()
    keyed = frame[list(ID_COLUMN_KINDS)].notna().any(axis=1).to_numpy()
    level = frame["level"].tolist()
    t = frame["docker_ts"].where(frame["docker_ts"].notna(), frame["ts"])
    nat = t.isna().to_numpy()
    secs = [None if bad else v for v, bad in zip(pd.DatetimeIndex(t).asi8.tolist(), nat.tolist())]
    order = np.flatnonzero(is_head)
    order = order[np.argsort(line_no[order], kind="stable")]
    linked_heads: set[int] = set()
    limit = int(LINK_SECONDS * 1e9)
    for i in order.tolist():
        h = int(line_no[i])
        if h in hit_heads:
            if admit is not None and not admit(list(dict.fromkeys(block_ids.get(h, ())))):
                refused.add(h)
                last_hit_t = None
            else:
                last_hit_t = secs[i]
        elif keyed[i]:
            last_hit_t = None
        elif last_hit_t is not None and level[i] in _LINKED_LEVELS:
            ti = secs[i]
            if ti is not None and 0 <= ti - last_hit_t <= limit:
                linked_heads.add(h)
    chosen = (hit_heads - refused) | linked_heads
    keep = np.fromiter((h in chosen for h in head.tolist()), dtype=bool, count=len(head))
    return keep, last_hit_t


_NO_END = 2**63 - 1


class BlockSelector(Generic[_T]):
    """Live scope selection: fed a container stream's lines one by one, keeps the ones
    :func:`scope_filter` would keep on a file of them (whole blocks, as this module's parser groups a
    head line and its continuation lines, plus the id-less warning/error blocks that follow).

    Each line comes with an ``item`` (e.g. the source's line object); :meth:`finish` returns the items
    of the kept lines in feeding order. Lines are decided in chunks as blocks close, so memory holds the
    undecided lines and the kept ones. ``admit`` is asked about every block that mentions an id, as in
    :func:`_select_blocks`.
    """

    def __init__(self, ids: Iterable[str], *, admit: Callable[[list[tuple[str, str]]], bool] | None = None,
                 docker_prefixed: bool = True, chunk: int = 4096) -> None:
        self.needles = _needles(ids)
        self.mentions = _mentions(self.needles)
        self.docker_prefixed = docker_prefixed
        self.admit = admit
        self.chunk = chunk
        self._kept: list[tuple[int, _T]] = []
        self._parser = _Parser(container="", stream="", source_file="", docker_prefixed=docker_prefixed,
                               start_line=1, prefilter=None)
        self._pending: dict[int, _T] = {}
        self._last_hit: int | None = None
        self._open_until: int | None = None  # Docker time (ns) up to which a JSON line may still link

    def feed(self, text: str, item: _T) -> None:
        """Take one physical line (Docker-stamped when ``docker_prefixed``) and what stands for it."""
        parser = self._parser
        if self.needles and self._far_json(text):
            parser.skip()
            return
        parser.feed(text if text[-1:] == "\n" else text + "\n")
        self._pending[parser.n] = item
        if len(self._pending) >= self.chunk:
            self._decide()

    def _far_json(self, text: str) -> bool:
        """Whether ``text`` is a JSON line (a block of its own) that names no id and comes more than
        :data:`LINK_SECONDS` after the last line that did: :func:`_select_blocks` can never keep it,
        nor can it change what is kept (Docker stamps run in order within a stream), so it is not
        parsed. Most lines of a busy container are such lines: one that mentions no id anywhere (so
        not after its stamp either) is decided from its first character after the stamp, unsplit."""
        if self._open_until is None and not self.mentions(text):
            if self.docker_prefixed and text[10:11] == "T" and text[4:5] == "-":
                sp = text.find(" ", 19)
                return sp != -1 and text[sp + 1 : sp + 2] == "{"  # else no JSON after the stamp
            return text[:1] == "{"
        dstamp, raw = _split_stamp(text) if self.docker_prefixed else (None, text)
        if self.mentions(raw):
            t = _bstamp_ns(dstamp.encode() + b" ") if dstamp else None
            self._open_until = _NO_END if t is None else max(self._open_until or 0, t + int(LINK_SECONDS * 1e9))
            return False
        if raw[:1] != "{":
            return False
        if self._open_until is None:
            return True
        t = _bstamp_ns(dstamp.encode() + b" ") if dstamp else None
        if t is None or t <= self._open_until:
            return False
        self._open_until = None
        return True

    def finish(self) -> list[_T]:
        """Close the open blocks, decide them, and return every kept item in feeding order."""
        self._parser.finish()
        self._decide()
        self._pending.clear()
        return self.kept()

    def kept(self) -> list[_T]:
        """The items kept so far (all of them once :meth:`finish` has run), in feeding order."""
        return [item for _, item in sorted(self._kept, key=lambda t: t[0])]

    def _decide(self) -> None:
        frame = self._parser.take()
        if frame.empty:
            return
        if self.needles:
            keep, self._last_hit = _select_blocks(frame, self.mentions, self.admit, self._last_hit)
        else:
            keep = np.zeros(len(frame), dtype=bool)
        line_no = frame["line_no"].tolist()
        pending = self._pending
        self._kept.extend((n, pending[n]) for n, k in zip(line_no, keep.tolist()) if k)
        for n in line_no:
            pending.pop(n, None)


_BSTAMP_RE = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z ")
_SAFE_BACK_BYTES = 1 << 20  # a hit with no block boundary this far back: parse the whole file
_READ_AHEAD = 1 << 18


def _bstamp_ns(line: bytes) -> int | None:
    """Epoch nanoseconds of a line's leading Docker stamp, else ``None``."""
    m = _BSTAMP_RE.match(line)
    if m is None:
        return None
    y, mo, d, hh, mm, ss, frac = m.groups()
    try:
        secs = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mm), int(ss), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    return secs * 1_000_000_000 + (int(frac.ljust(9, b"0")) if frac else 0)


def _is_block_start(line: bytes, docker_prefixed: bool) -> bool:
    """Whether the parser starts from a clean state at this line (every open block is closed before it).

    True for JSON lines and console / unconfigured-structlog / hypercorn heads; PostgreSQL heads and
    plain lines may continue or interleave with earlier blocks, so they are not boundaries.
    """
    text = line.rstrip(b"\r\n").decode("utf-8", "replace")
    raw = text
    if docker_prefixed and text[10:11] == "T" and text[4:5] == "-":
        sp = text.find(" ", 19)
        if sp != -1:
            raw = text[sp + 1 :]
            if raw[:1] == "[" and _LEVEL_BRACKET_RE.match(raw):
                raw = text
        elif text[-1:] == "Z":
            raw = ""
    if raw[:1] == "{":
        return True
    t = _ANSI_RE.sub("", raw) if "\x1b" in raw else raw
    c = t[:1]
    if "0" <= c <= "9" and len(t) > 19:
        if t[10] == "T":
            return _CONSOLE_RE.match(t) is not None
        if t[10] == " ":
            return _PG_RE.match(t) is None and _DEFAULT_RE.match(t) is not None
        return False
    if c == "[":
        return _HYPERCORN_RE.match(t) is not None
    return False


_DROP_BYTES = 16 << 20  # mapped file pages are dropped after this many bytes (memory stays flat)
_FOLD = bytes(b | 0x20 for b in range(256))  # the search's case fold: every byte OR 0x20
_HASH_MULTS = (2654435769, 2246822519, 3266489917, 668265263, 374761393, 1597334677, 3812015801,
               2869860233, 1103515245, 2891336453, 1664525, 4294967291 - 4, 2166136261, 16777619 * 3 + 2)
_BUSY_BLOCK = 32  # more candidate words than this in one block: that block is searched by find instead
_SCAN_BYTES = 1 << 20  # read_scoped's search block


def _drop(mm: Any, start: int, end: int) -> None:
    """Unmap the pages of ``[start, end)`` from the process (the page cache keeps them)."""
    start -= start % mmap.PAGESIZE
    if end > start and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_DONTNEED, start, end - start)


class _WordIndex:
    """The 4-byte words of the case-folded needles, for :func:`_scan_range`.

    Any occurrence of a needle of ``m`` bytes covers ``m - 3`` starting offsets of 4-byte words, so
    examining only the aligned words every ``stride`` bytes (``stride <= m - 3``, a multiple of 4) meets
    every occurrence at least once, as one of the needle's own words. A word is looked up with a
    multiplicative hash into a collision-free table of those words (a few vectorised operations per
    block, on an eighth of its bytes); a match is a candidate, checked against the whole needle.
    """

    def __init__(self, folded: list[bytes], stride: int, where: dict[int, list[tuple[int, int]]],
                 table: np.ndarray, mult: int, shift: int) -> None:
        self.folded = folded
        self.longest = max(len(nd) for nd in folded)
        self.stride = stride
        self.where = where
        self.table = table
        self.mult = np.uint32(mult)
        self.shift = np.uint32(shift)

    @classmethod
    def build(cls, needles: list[bytes]) -> _WordIndex | None:
        folded = [nd.translate(_FOLD) for nd in needles]
        m = min(len(nd) for nd in folded)
        if m < 7:
            return None
        where: dict[int, list[tuple[int, int]]] = {}
        for k, nd in enumerate(folded):
            for o in range(len(nd) - 3):
                where.setdefault(int.from_bytes(nd[o : o + 4], "little"), []).append((k, o))
        words = np.fromiter(where, dtype=np.uint32, count=len(where))
        low = max(10, (len(words) * 8 - 1).bit_length())
        for bits in range(low, min(low + 3, 21)):
            for mult in _HASH_MULTS:
                slots = (words * np.uint32(mult)) >> np.uint32(32 - bits)
                if len(np.unique(slots)) == len(words):
                    table = np.full(1 << bits, words[0], dtype=np.uint32)  # words[0] never hashes to an empty slot
                    table[slots] = words
                    return cls(folded, 4 * ((m - 3) // 4), where, table, mult, 32 - bits)
        return None


def _find_hits(fd: int, size: int, needles: list[bytes], block_bytes: int) -> list[tuple[int, int]]:
    """``(line start offset, 1-based line number)`` of every line holding a needle (any case), sorted.

    A line is a hit when it holds a needle in the byte-wise fold (every byte OR 0x20): a superset of the
    case-insensitive matches (:func:`scope_filter` decides on the parsed rows). One pass over the
    memory-mapped file, from its end backwards, in blocks of about ``block_bytes``: each block's sampled
    words are looked up in a :class:`_WordIndex` (numpy, straight from the mapped pages: no copy), and
    from the block of the last hit down its newlines are counted too (numpy), so line numbers need no
    second pass and the stretch after the last hit is never counted. Mapped pages are dropped every
    :data:`_DROP_BYTES`, so memory stays flat whatever the file size.
    """
    if size == 0:
        return []
    index = _WordIndex.build(needles)
    if index is None:
        return _find_hits_folded(fd, size, needles, block_bytes)
    stride = index.stride
    block = max(stride, block_bytes - block_bytes % stride)
    cap = block // stride
    words = np.empty(cap, dtype=np.uint32)
    slots = np.empty(cap, dtype=np.uint32)
    looked = np.empty(cap, dtype=np.uint32)
    match = np.empty(cap, dtype=bool)
    eq = np.empty(block, dtype=bool)
    fold_word = np.uint32(0x20202020)
    table, mult, shift, where, folded = index.table, index.mult, index.shift, index.where, index.folded
    after: dict[int, int] = {}  # hit line start -> newlines from it to `top` (the end of the counted part)
    counted = 0  # newlines in [end of the current block, top)
    counting = False
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        arr = np.frombuffer(mm, dtype=np.uint8)
        samples = np.frombuffer(mm, dtype=np.uint32, count=size // 4)[:: stride // 4]  # word at i * stride
        pos = (size - 1) // block * block
        kept = size  # pages of [pos + block, kept) are still mapped
        while pos >= 0:
            n = min(block, size - pos)
            first = pos // stride
            ns = max(0, min(len(samples), first + cap) - first)  # examined words wholly inside the block
            occ: set[int] = set()
            if ns:
                w = words[:ns]
                np.bitwise_or(samples[first : first + ns], fold_word, out=w)
                h = slots[:ns]
                np.multiply(w, mult, out=h)
                np.right_shift(h, shift, out=h)
                np.take(table, h, out=looked[:ns], mode="clip")
                m = match[:ns]
                np.equal(looked[:ns], w, out=m)
                if m.any():
                    cand = np.flatnonzero(m)
                    if len(cand) > _BUSY_BLOCK:  # a needle word common in this text: plain find here
                        lo, hi = max(0, pos - index.longest + 1), min(size, pos + n + index.longest - 1)
                        region = mm[lo:hi].translate(_FOLD)
                        for nd in folded:
                            i = region.find(nd)
                            while i != -1:
                                if lo + i < pos + n:
                                    occ.add(lo + i)
                                i = region.find(nd, i + 1)
                    else:
                        for k in cand.tolist():
                            q = pos + k * stride
                            for ni, o in where.get(int(w[k]), ()):
                                p, nd = q - o, folded[ni]
                                if p >= 0 and p + len(nd) <= size and mm[p : p + len(nd)].translate(_FOLD) == nd:
                                    occ.add(p)
            counting = counting or bool(occ)
            if counting:
                np.equal(arr[pos : pos + n], 10, out=eq[:n])
                here = int(np.count_nonzero(eq[:n]))
                for p in occ:
                    ls = mm.rfind(b"\n", 0, p) + 1
                    if p >= pos:
                        after[ls] = counted + int(np.count_nonzero(eq[p - pos : n]))
                    else:  # the occurrence starts in the block below
                        after[ls] = counted + here + mm[p:pos].count(b"\n")
                counted += here
            if kept - pos >= _DROP_BYTES:
                _drop(mm, pos, kept)
                kept = pos
            pos -= block
        del arr, samples
    finally:
        try:
            mm.close()
        except BufferError:  # a numpy view still alive: the map goes with it
            pass
    return sorted((ls, counted - k + 1) for ls, k in after.items())


def _find_hits_folded(fd: int, size: int, needles: list[bytes], block_bytes: int) -> list[tuple[int, int]]:
    """:func:`_find_hits` for needles shorter than 7 bytes (or too many for one hash table).

    One pass over the memory-mapped file in blocks of ``block_bytes``: each block is folded to lower
    case by OR-ing every byte with 0x20 (numpy, from the mapped pages into one small reused buffer that
    stays in the CPU cache) and searched there with ``bytearray.find``. The fold maps only ``A-Z`` and a
    few control bytes onto the needle's characters, so the hits are a superset of the case-insensitive
    matches (:func:`scope_filter` decides on the parsed rows). Blocks overlap by the longest needle, so
    an id across a boundary is found once. Mapped pages are dropped every :data:`_DROP_BYTES`, so memory
    stays flat whatever the file size. Newlines are counted afterwards (numpy), only up to the last hit.
    """
    if size == 0:
        return []
    folded_needles = [bytes(b | 0x20 for b in nd) for nd in needles]
    overlap = max(len(n) for n in needles) - 1
    low = bytearray(block_bytes + overlap)
    low_arr = np.frombuffer(low, dtype=np.uint8)
    starts: set[int] = set()
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        arr = np.frombuffer(mm, dtype=np.uint8)
        pos = dropped = 0
        while pos < size:
            got = min(block_bytes + overlap, size - pos)
            blen = min(block_bytes, got)
            np.bitwise_or(arr[pos : pos + got], 0x20, out=low_arr[:got])
            for nd in folded_needles:
                i = low.find(nd, 0, got)
                while i != -1 and i < blen:
                    starts.add(mm.rfind(b"\n", 0, pos + i) + 1)
                    i = low.find(nd, i + 1, got)
            pos += blen
            if pos - dropped >= _DROP_BYTES:
                _drop(mm, dropped, pos)
                dropped = pos - pos % mmap.PAGESIZE
        found: list[tuple[int, int]] = []
        counted_to, newlines = 0, 0  # newlines in [0, counted_to)
        eq = np.empty(block_bytes, dtype=bool)
        nl = np.uint8(10)
        for ls in sorted(starts):
            while counted_to < ls:
                step = min(ls, counted_to + block_bytes)
                n = step - counted_to
                newlines += int(np.count_nonzero(np.equal(arr[counted_to:step], nl, out=eq[:n])))
                if step // _DROP_BYTES != counted_to // _DROP_BYTES:
                    _drop(mm, counted_to - counted_to % _DROP_BYTES, step)
                counted_to = step
            found.append((ls, newlines + 1))
        del arr
    finally:
        try:
            mm.close()
        except BufferError:  # a numpy view still alive: the map goes with it
            pass
    return found


def _lines_from(fd: int, off: int, size: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line with its newline)`` from ``off`` to the end of the file."""
    pos = off
    pending = b""
    pstart = off
    while pos < size:
        chunk = os.pread(fd, min(_READ_AHEAD, size - pos), pos)
        if not chunk:
            break
        pos += len(chunk)
        data = pending + chunk if pending else chunk
        start = 0
        find = data.find
        while True:
            j = find(b"\n", start)
            if j == -1:
                break
            yield pstart + start, data[start : j + 1]
            start = j + 1
        pending = data[start:]
        pstart += start
    if pending:
        yield pstart, pending


def _block_start_before(fd: int, ls: int, ln: int, size: int, docker_prefixed: bool
                        ) -> tuple[int, int] | None:
    """The nearest line at or before line ``ls`` (number ``ln``) where the parser starts clean."""
    for _off, line in _lines_from(fd, ls, size):
        if _is_block_start(line, docker_prefixed):
            return ls, ln
        break
    end, n, window = ls, ln, 1 << 16
    while end > 0:
        if ls - end > _SAFE_BACK_BYTES:
            return None
        lo = max(0, end - window)
        parts = os.pread(fd, end - lo, lo).split(b"\n")[:-1]  # buf ends with the newline at end - 1
        first = 1 if lo > 0 else 0  # parts[0] may be cut (it starts before lo)
        if first and len(parts) == 1:
            window *= 2
            continue
        cur = end
        for j in range(len(parts) - 1, first - 1, -1):
            cur -= len(parts[j]) + 1
            n -= 1
            if _is_block_start(parts[j], docker_prefixed):
                return cur, n
        end = cur
    return 0, 1  # the file's start is a clean state too


def _segments(fd: int, size: int, hits: list[tuple[int, int]], docker_prefixed: bool
              ) -> list[tuple[int, int, int]] | None:
    """Byte ranges ``(start, end, first line number)`` to parse: each starts and ends on a clean parser
    state, covers the blocks of the hits and runs past every hit until the Docker stamps are more than
    :data:`LINK_SECONDS` later (so id-less warning/error lines after a hit are seen). ``None`` when a
    range cannot be bounded (no block boundary nearby, a hit line without a Docker stamp)."""
    segs: list[tuple[int, int, int]] = []
    i, n = 0, len(hits)
    slack = int(LINK_SECONDS * 1e9) + 10_000_000
    while i < n:
        ls, ln = hits[i]
        if segs and ls < segs[-1][1]:
            i += 1
            continue
        found = _block_start_before(fd, ls, ln, size, docker_prefixed)
        if found is None:
            return None
        start, start_ln = found
        if segs and start <= segs[-1][1]:
            start, start_ln = segs[-1][0], segs[-1][2]
            segs.pop()
        t_lim: int | None = None
        end = size
        for off, line in _lines_from(fd, ls, size):
            if i < n and hits[i][0] == off:
                t = _bstamp_ns(line)
                if t is None:
                    return None
                t_lim = max(t_lim or 0, t + slack)
                i += 1
                continue
            t = _bstamp_ns(line)
            if t is not None and t_lim is not None and t > t_lim and _is_block_start(line, docker_prefixed):
                end = off
                break
        segs.append((start, end, start_ln))
    return segs


def read_scoped(
    path: str | Path,
    ids: Iterable[str],
    *,
    container: str,
    stream: str = "combined",
    source_file: str | None = None,
    docker_prefixed: bool = True,
    block_bytes: int = _SCAN_BYTES,
) -> pd.DataFrame:
    """Parse only the rows of a log file that are about ``ids``: ``scope_filter(parse_file(path), ids)``.

    The memory-mapped file is searched at byte level (:func:`_find_hits`: sampled words of each block of
    ``block_bytes`` looked up in a table of the ids' words, newlines counted with numpy) and only the
    stretches around the lines that mention an id are parsed, each from the nearest line where the
    parser starts clean (so a continuation line keeps its head) to a boundary more than
    :data:`LINK_SECONDS` after the last hit (so the id-less warning/error lines that follow stay).
    Memory stays flat whatever the file size (mapped pages are dropped as the search goes). A gzip file, a file without Docker stamps or one
    with no block boundary near a hit is parsed whole and filtered (same result, slower).

    Args:
        path: The log file.
        ids: Ids to look for (see :func:`scope_filter`).
        container, stream, source_file, docker_prefixed: As for :func:`parse_file`.
        block_bytes: Size of one search block (small, so a block stays in the CPU cache while it is
            read, looked up and counted; much smaller blocks pay numpy's per-call overhead).

    Returns:
        A frame with :data:`LOG_COLUMNS`, rows in the order :func:`parse_file` gives them.
    """
    p = Path(path)
    needles = _needles(ids)
    src = str(p) if source_file is None else source_file
    if not needles:
        return empty_frame()

    def whole() -> pd.DataFrame:
        df = parse_file(p, container=container, stream=stream, source_file=src,
                        docker_prefixed=docker_prefixed)
        return scope_filter(df, needles)

    with open(p, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b" or not docker_prefixed or not all(nd.isascii() for nd in needles):
        return whole()
    fd = os.open(p, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        hits = _find_hits(fd, size, [nd.encode() for nd in needles], max(1024, int(block_bytes)))
        if not hits:
            return empty_frame()
        segs = _segments(fd, size, hits, docker_prefixed)
        if segs is None:
            return whole()
        frames = []
        for start, end, line_no in segs:
            parser = _Parser(container=container, stream=stream, source_file=src,
                             docker_prefixed=docker_prefixed, start_line=line_no, prefilter=None)
            feed = parser.feed
            pos = start
            while pos < end:  # feed the range in pieces, cut at newlines
                piece = os.pread(fd, min(block_bytes, end - pos), pos)
                cut = piece.rfind(b"\n") + 1 if pos + len(piece) < end else len(piece)
                if cut == 0:
                    cut = len(piece)
                    while pos + cut < end:  # one line longer than a block
                        more = os.pread(fd, min(block_bytes, end - pos - cut), pos + cut)
                        j = more.find(b"\n")
                        piece += more if j == -1 else more[: j + 1]
                        cut = len(piece)
                        if j != -1:
                            break
                for line in io.StringIO(piece[:cut].decode("utf-8", "replace"), newline="\n"):
                    feed(line)
                pos += cut
            parser.finish()
            f = scope_filter(parser.take(), needles)
            if len(f):
                frames.append(f)
    finally:
        os.close(fd)
    if not frames:
        return empty_frame()
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
