"""Columnar fast path of the full log parse: a run of Docker-stamped JSON lines in one Arrow read.

Most of a HuleEdu container log is structlog JSON, one object per line. The per-line parser in
:mod:`huledu_forensics.logs` spends most of its time in Python around each decode; this module parses a
run of such lines at once: Arrow's JSON reader decodes only the keys the parser reads (typed, so any
value the per-line path would treat specially fails the read), the ids come from one scan of the whole
buffer, and every column is computed over the run. The result is the frame the per-line parser gives,
row for row; a run it cannot prove equal (a read error, a non-string id, ``Inf``, deep nesting, invalid
UTF-8, a carriage return, a split or non-standard stamp) goes back to the per-line parser whole.

The rules are the per-line parser's (``logs._json`` and ``logs._fields``): the key priorities of
:data:`~huledu_forensics.model.logformats.ID_KEY_COLUMNS` (``extra`` before top level), the outbox
``event_id`` remap, ``aggregate_id`` routing, one-item ``essay_ids`` and message-text ids. Values that
need Python's own semantics (non-ASCII ids, ``UUID('…')`` reprs, padded ids, non-``Z`` timestamps,
message-text ids) are computed by the per-line helpers for those rows only.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import functools
import itertools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from . import _fields as F
from .model import columns as C
from .model.logformats import (
    AGGREGATE_ID_COLUMNS,
    ID_KEY_COLUMNS,
    LEVEL_ALIASES,
    M_FROM_TOPIC,
    OUTBOX_ROW_ID_LOGGERS,
    normalise_level,
)
from .model.topics import topic_by_event

if TYPE_CHECKING:
    import pandas as pd

    from .logs import _Parser

_STAMP: Final = 30  # "2025-11-20T18:40:21.518775924Z": docker logs --timestamps, fixed nine digits
_PREFIX: Final = _STAMP + 1
MIN_RUN_LINES = 768
"""Shorter runs of JSON lines are left to the per-line parser: the Arrow read and the column work cost
a fixed ~8 ms, so the columnar path wins only from about 600-1000 lines (measured on ELS worker lines)."""
_DEEP_BRACKETS: Final = 400  # the per-line decoders give up near 1000 levels; fewer brackets cannot
_LONG_LINE: Final = 2 * _DEEP_BRACKETS
_BEFORE_INF = np.frombuffer(b":[,-+ \t\r", dtype=np.uint8)
_UUID_CLASS = bytes(
    ord("h") if chr(i) in "0123456789abcdefABCDEF" else (ord("-") if i == 45 else ord(".")) for i in range(256)
)
_UUID_SHAPE = b"hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh"
_HEX_RUN = b"h" * 32
_NOT_HEX_RE = re.compile(rb"[^h]")
_LOOSE_ID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
_PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "  # str.strip()'s ASCII whitespace
_NID_SLOW = rf"^[{re.escape(_PY_SPACE)}]|[{re.escape(_PY_SPACE)}]$|^UUID\("

# Top-level keys ``logs._json`` reads besides the ones ``logs._fields`` reads (``logs._TOP_KEYSET``).
_RECORD_KEYS = ("logger_name", "logger", "event", "message", "msg", "level", "levelname", "timestamp", "service.name")


@functools.cache
def _parse_options() -> pj.ParseOptions:
    """Arrow reads exactly the keys the per-line parser reads, typed as it uses them: strings (ids,
    messages, levels, ...), ints (Kafka partition and offset) and a list of strings (``essay_ids``); a
    value of another type fails the read, so the run goes to the per-line parser. Other keys are parsed
    (the line must be valid JSON) but not kept."""
    from . import logs as L

    ints = {L._K_PARTITION, L._K_KAFKA_PARTITION, L._K_OFFSET, L._K_KAFKA_OFFSET}
    extra = [(k, pa.int64() if c in ints else pa.list_(pa.string()) if c == L._K_ESSAY_IDS else pa.string())
             for k, c in L._EXTRA_CODES.items()]
    top = [(k, pa.string()) for k in dict.fromkeys((*_RECORD_KEYS, *sorted(L._TOP_KEYSET)))]
    schema = pa.schema([*top, ("extra", pa.struct(extra))])
    return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")


# ---------------------------------------------------------------------------------------------
# Runs: which lines of a block the columnar path may take


def _line_bounds(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(block, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [len(arr)]))
    if block.endswith(b"\n") or not block:
        starts, ends = starts[:-1], ends[:-1]
    return starts.astype(np.int64), ends.astype(np.int64)


def _eligible(block: bytes, starts: np.ndarray, ends: np.ndarray, docker_split: int) -> np.ndarray:
    """Per line: a standard Docker stamp, a JSON object body, nothing the per-line path treats apart."""
    n = len(starts)
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return ok
    arr = np.frombuffer(block, dtype=np.uint8)
    invalid: list[int] = []  # lines that are not UTF-8: the per-line path decodes them with U+FFFD
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            high = np.unique(np.searchsorted(starts, np.flatnonzero(arr >= 128), side="right") - 1)
            for i in high.tolist():
                try:
                    block[int(starts[i]) : int(ends[i])].decode("utf-8")
                except UnicodeDecodeError:
                    invalid.append(i)
    length = ends - starts
    cand = np.flatnonzero((length >= _PREFIX + 2) & (length - _PREFIX <= docker_split))
    s = starts[cand]
    head = arr[s[:, None] + np.arange(_PREFIX + 1)]  # stamp, space, "{"
    good = (
        (head[:, 4] == 45) & (head[:, 10] == 84) & (head[:, _STAMP] == 32) & (head[:, _PREFIX] == 123)
        & (head[:, 19:_STAMP] != 32).all(axis=1) & (head[:, :_STAMP] < 128).all(axis=1)
    )
    ok[cand[good]] = True
    ok[invalid] = False

    def drop(positions: list[int]) -> None:
        if positions:
            ok[np.searchsorted(starts, np.asarray(positions), side="right") - 1] = False

    if b"\r" in block:
        drop(np.flatnonzero(arr == 13).tolist())
    # RapidJSON (Arrow) reads Inf and -Inf as numbers where Python's json refuses the line; NaN and
    # Infinity both read (and a line keeps them only in keys the parser ignores)
    cap = np.flatnonzero(arr[1:-2] == 73) + 1  # "I", with a byte before and two after
    cap = cap[(arr[cap + 1] == 110) & (arr[cap + 2] == 102) & np.isin(arr[cap - 1], _BEFORE_INF)]
    drop([p for p in cap.tolist() if _is_json_value_start(block, p)])
    for i in np.flatnonzero(ok & (length > _LONG_LINE)).tolist():
        a, b = int(starts[i]), int(ends[i])
        if block.count(b"[", a, b) + block.count(b"{", a, b) >= _DEEP_BRACKETS:
            ok[i] = False
    return ok


def _is_json_value_start(block: bytes, p: int) -> bool:
    """Whether ``block[p:]`` may be read as a JSON value: after ``:``, ``[`` or ``,``, a sign and blanks."""
    q = p - 1
    while q >= 0 and block[q] in b" \t\r-+":
        q -= 1
    return q >= 0 and block[q] in b":[,"


def split_runs(block: bytes, max_lines: int, docker_split: int) -> Iterator[tuple[bool, bytes, int]]:
    """``(columnar?, bytes, line count)`` for consecutive runs of the whole lines in ``block``."""
    starts, ends = _line_bounds(block)
    ok = _eligible(block, starts, ends, docker_split)
    n = len(starts)
    edges = np.flatnonzero(np.diff(ok.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), n]
    pending = 0  # first line not yet given out

    def cut(i: int) -> int:
        return int(starts[i]) if i < n else len(block)

    for a, b in itertools.pairwise(bounds):
        if not ok[a] or b - a < MIN_RUN_LINES:
            continue
        if a > pending:
            yield False, block[cut(pending) : cut(a)], a - pending
        for k in range(a, b, max_lines):
            e = min(b, k + max_lines)
            yield True, block[cut(k) : cut(e)], e - k
        pending = b
    if pending < n:
        yield False, block[cut(pending) :], n - pending


# ---------------------------------------------------------------------------------------------
# Ids found in the raw text of every line at once


def _scan_ids(buf: bytes, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line index, position and length of every UUID and bare 32-hex id in ``buf`` (whole lines),
    per line the UUIDs first, then the hex ids, each group in text order (as ``logs._find_ids``).

    The matches are those of the per-line scan: a UUID not touching another hex digit, a hex run of
    exactly 32 digits. A Docker stamp holds neither (its longest hex run is the nine fraction digits,
    and a space follows it), so the lines are scanned whole.
    """
    pos: list[int] = []
    cls = buf.translate(_UUID_CLASS)
    find = cls.find
    total = len(cls)
    i = find(_UUID_SHAPE)
    while i != -1:
        if (i == 0 or cls[i - 1] != 104) and (i + 36 == total or cls[i + 36] != 104):
            pos.append(i)
            i = find(_UUID_SHAPE, i + 36)
        else:
            i = find(_UUID_SHAPE, i + 1)
    n_uuid = len(pos)
    i = find(_HEX_RUN)
    while i != -1:
        end = i + 32
        if end == total or cls[end] != 104:
            pos.append(i)
            i = find(_HEX_RUN, end)
        else:  # a longer hex run (a sha256, ...): skip it
            m = _NOT_HEX_RE.search(cls, end)
            if m is None:
                break
            i = find(_HEX_RUN, m.start())
    at = np.asarray(pos, dtype=np.int64)
    size = np.full(len(pos), 32, dtype=np.int64)
    size[:n_uuid] = 36
    lines = np.searchsorted(starts, at, side="right") - 1
    order = np.argsort(lines, kind="stable")  # stable: per line, UUIDs then hex ids, in text order
    return lines[order], at[order], size[order]


class _Ids:
    """The ids of a run's lines: the ``ids`` column and, per line, the ids as written."""

    def __init__(self, buf: bytes, starts: np.ndarray, n: int) -> None:
        self.buf = buf
        self.lines, self.at, self.size = _scan_ids(buf, starts)
        self._index: tuple[list[int], list[int], list[int]] | None = None
        self.has = np.zeros(n, dtype=bool)
        if not len(self.lines):
            self.column: pa.Array = pa.nulls(n, pa.large_string())
            return
        low = buf.lower()  # ASCII lower-casing: str.lower() on hex digits and "-"
        toks = [low[p : p + k] for p, k in zip(self.at.tolist(), self.size.tolist())]
        key = np.empty(len(toks), dtype=[("line", np.int64), ("id", "S36")])
        key["line"] = self.lines
        key["id"] = toks
        first = np.zeros(len(toks), dtype=bool)
        first[np.unique(key, return_index=True)[1]] = True  # each id once per line, first place kept
        kept = self.lines[first]
        counts = np.bincount(kept, minlength=n)
        offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int64))
        values = pa.array(toks, type=pa.large_binary()).filter(pa.array(first)).cast(pa.large_string())
        joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, values), pa.scalar(" ", pa.large_string()))
        self.has = counts > 0
        self.column = pc.if_else(pa.array(self.has), joined, pa.scalar(None, pa.large_string()))

    def written(self, line: int) -> list[str]:
        """The ids of one line as written (``logs._find_ids`` of its text)."""
        if self._index is None:
            self._index = (self.lines.tolist(), self.at.tolist(), self.size.tolist())
        lines, at, size = self._index
        lo, hi = bisect.bisect_left(lines, line), bisect.bisect_right(lines, line)
        return [self.buf[at[j] : at[j] + size[j]].decode("ascii") for j in range(lo, hi)]


# ---------------------------------------------------------------------------------------------
# Column helpers


def _nonempty(arr: pa.Array) -> pa.Array:
    """``arr`` with empty strings as nulls (the per-line path skips ``""`` like a missing key)."""
    if arr.null_count == len(arr):
        return arr
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _first(*arrays: pa.Array) -> pa.Array:
    return arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)


def _replace_rows(arr: pa.Array, rows: list[int], values: list[Any]) -> pa.Array:
    if not rows:
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    order = np.argsort(rows, kind="stable")
    return pc.replace_with_mask(arr, pa.array(mask), pa.array([values[i] for i in order], type=arr.type))


def _norm_ids(arr: pa.Array, nid: Callable[[Any], str | None]) -> pa.Array:
    """``logs._nid`` over a string column: ASCII lower-casing where that is exact, ``nid`` elsewhere."""
    arr = arr.cast(pa.large_string())
    if arr.null_count == len(arr):
        return arr
    slow = pc.or_kleene(pc.or_kleene(pc.invert(pc.string_is_ascii(arr)), pc.match_substring_regex(arr, _NID_SLOW)),
                        pc.equal(arr, ""))
    out = pc.ascii_lower(arr)
    rows = np.flatnonzero(np.asarray(slow.fill_null(False))).tolist()
    if rows:
        vals = arr.take(pa.array(rows)).to_pylist()
        out = _replace_rows(out, rows, [nid(v) for v in vals])
    return out


def _map_unique(arr: pa.Array, fn: Callable[[Any], Any]) -> pa.Array:
    """``fn`` applied to every distinct value of a string column (levels, services: a handful)."""
    enc = pc.dictionary_encode(arr)
    mapped = pa.array([fn(v) for v in enc.dictionary.to_pylist()], type=pa.large_string())
    return mapped.take(enc.indices)


def _level(lv: Any) -> str | None:
    return LEVEL_ALIASES.get(lv) or normalise_level(lv)


# ---------------------------------------------------------------------------------------------
# One run


def parse_run(run: bytes, n_lines: int, first_line: int, parser: _Parser) -> pd.DataFrame | None:
    """The frame of ``n_lines`` whole JSON lines (see :func:`split_runs`), or ``None`` when the run must
    go to the per-line parser. ``parser`` gives the per-line helpers and the container's service."""
    from . import logs as L

    if not run.endswith(b"\n"):
        run += b"\n"  # the file's last line (the per-line parser does not need its newline either)
    starts, _ends = _line_bounds(run)
    if len(starts) != n_lines:
        return None
    body = np.frombuffer(run, dtype=np.uint8).copy()
    body[(starts[:, None] + np.arange(_PREFIX)).ravel()] = 32  # stamps to blanks: JSON whitespace
    # Arrow decodes in its own threads without the GIL while this thread scans the raw text for ids
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        reading = pool.submit(pj.read_json, pa.BufferReader(pa.py_buffer(body)),
                              read_options=pj.ReadOptions(block_size=max(1 << 20, len(run) // 2 + 1)),
                              parse_options=_parse_options())
        found = _Ids(run, starts, n_lines)
        try:
            table = reading.result()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
            return None
    del body
    if table.num_rows != n_lines:
        return None
    t = {name: table.column(name).combine_chunks() for name in table.column_names}
    ex = t["extra"]
    has_extra = np.asarray(ex.is_valid())
    e = {f.name: _nonempty(pc.struct_field(ex, f.name)) if pa.types.is_string(f.type) else pc.struct_field(ex, f.name)
         for f in ex.type}
    top = {k: (_nonempty(v) if pa.types.is_string(v.type) else v) for k, v in t.items() if k != "extra"}

    # raw text after the stamp, the Docker stamps (each line of ``run`` ends with its newline)
    lines = pa.Array.from_buffers(pa.large_binary(), n_lines,
                                  [None, pa.py_buffer(np.append(starts, len(run))), pa.py_buffer(run)])
    raw = pc.binary_slice(lines, _PREFIX, -1).cast(pa.large_string())
    dstamp = pc.binary_slice(lines, 0, _STAMP).cast(pa.large_string())

    # logger, message, level, timestamp
    logger = pc.coalesce(t["logger_name"], t["logger"])
    message = pc.coalesce(t["event"], pc.coalesce(top["message"], t["msg"]))
    lv = t["level"]
    level = pc.coalesce(_map_unique(lv, _level), pa.nulls(n_lines, pa.large_string()))
    level = pc.if_else(pc.is_null(lv), _map_unique(t["levelname"], normalise_level), level)
    ts = t["timestamp"]
    zulu = pc.ends_with(ts, "Z")
    odd = np.flatnonzero(~np.asarray(zulu.fill_null(True)) | np.asarray(pc.equal(ts, "").fill_null(False))).tolist()
    ts = _replace_rows(ts.cast(pa.large_string()), odd, [L._iso(v) for v in ts.take(pa.array(odd, type=pa.int64())).to_pylist()])
    ts = pc.coalesce(ts, dstamp)

    # typed id slots: extra key k0, top key k0, extra k1, top k1, ... (first non-empty value)
    outbox_logger = pc.is_in(logger, pa.array(sorted(OUTBOX_ROW_ID_LOGGERS), type=pa.string()))
    remap = pc.and_(pc.and_(outbox_logger.fill_null(False), pa.array(has_extra)),
                    pc.is_valid(pc.struct_field(ex, "event_id")))
    slots: dict[str, pa.Array] = {}
    for col, keys in ID_KEY_COLUMNS.items():
        cands = [a for k in keys for a in (e[k], top[k])]
        chosen = _first(*cands)
        if col == "event_id":  # the outbox loggers' extra.event_id is the outbox row id
            chosen = pc.if_else(remap, top["event_id"], chosen)
        elif col == "outbox_id":
            row_id = pc.struct_field(ex, "event_id")
            chosen = pc.if_else(remap, pc.coalesce(e["outbox_id"], top["outbox_id"], row_id), chosen)
        slots[col] = _norm_ids(chosen, L._nid)

    topic = pc.coalesce(e["topic"], top["topic"], e["kafka_topic"])
    event_type = pc.coalesce(e[C.EVENT_TYPE], top[C.EVENT_TYPE])
    agg = e[C.AGGREGATE_ID]
    if agg.null_count < n_lines:
        agg_type = e[C.AGGREGATE_TYPE]
        rows = np.flatnonzero(np.asarray(agg.is_valid())).tolist()
        a_ids = agg.take(pa.array(rows, type=pa.int64())).to_pylist()
        a_types = agg_type.take(pa.array(rows, type=pa.int64())).to_pylist()
        a_topic = pc.coalesce(topic, event_type).take(pa.array(rows, type=pa.int64())).to_pylist()
        fills: dict[str, tuple[list[int], list[Any]]] = {}
        for r, aid, given, tp in zip(rows, a_ids, a_types, a_topic):
            atype: str | None = given
            if atype is None:
                found_topic = topic_by_event(str(tp or ""))
                atype = found_topic.aggregate_type if found_topic else None
            target = AGGREGATE_ID_COLUMNS.get(atype) if atype else None
            if target is not None and slots[target][r].as_py() is None:
                fills.setdefault(target, ([], []))
                fills[target][0].append(r)
                fills[target][1].append(L._nid(aid))
        for col, (rr, vv) in fills.items():
            slots[col] = _replace_rows(slots[col], rr, vv)
    essays = e["essay_ids"]
    if essays.null_count < n_lines:
        one = pc.and_(pc.equal(pc.list_value_length(essays), 1), pc.is_null(slots[F.ESSAY_ID]))
        rows = np.flatnonzero(np.asarray(one.fill_null(False))).tolist()
        firsts = pc.list_element(essays.take(pa.array(rows, type=pa.int64())), 0).to_pylist() if rows else []
        slots[F.ESSAY_ID] = _replace_rows(slots[F.ESSAY_ID], rows, [L._nid(v) for v in firsts])
    partition = pc.coalesce(e["partition"], e["kafka_partition"])
    offset = pc.coalesce(e["offset"], e["kafka_offset"])
    error = pc.coalesce(e["error"], top["error"], e[C.ERROR_MESSAGE], e[C.LAST_ERROR])
    exception = pc.coalesce(top["exception"], e["stack_trace"])

    # ids: every UUID and 32-hex id of the raw text; message-text ids where the message holds one
    loose = np.asarray(pc.match_substring_regex(message, _LOOSE_ID).fill_null(False))
    cand = np.flatnonzero(loose & found.has).tolist()
    if cand:
        idx = pa.array(cand, type=pa.int64())
        msgs = message.take(idx).to_pylist()
        cur = {c: slots[c].take(idx).to_pylist() for c in L._ID_COLUMNS}
        changed: dict[str, tuple[list[int], list[Any]]] = {}
        for k, (r, m) in enumerate(zip(cand, msgs)):
            if not any(f in m for f in found.written(r)):
                continue
            vals = [cur[c][k] for c in L._ID_COLUMNS]
            L._ids_from_message(m, vals)
            for c, v in zip(L._ID_COLUMNS, vals):
                if v != cur[c][k]:
                    changed.setdefault(c, ([], []))
                    changed[c][0].append(r)
                    changed[c][1].append(v)
        for c, (rr, vv) in changed.items():
            slots[c] = _replace_rows(slots[c], rr, vv)
    no_topic = np.flatnonzero(np.asarray(pc.and_(pc.is_null(topic), pc.match_substring(message, M_FROM_TOPIC))
                                         .fill_null(False))).tolist()
    if no_topic:
        found_topics = []
        for m in message.take(pa.array(no_topic, type=pa.int64())).to_pylist():
            mt = L._TOPIC_IN_MSG_RE.search(m)
            found_topics.append(mt.group(1) if mt else None)
        topic = _replace_rows(topic.cast(pa.large_string()), no_topic, found_topics)
    summ = np.flatnonzero(np.asarray(pc.and_(pc.is_null(error), pc.is_valid(exception)))).tolist()
    if summ:
        error = _replace_rows(error.cast(pa.large_string()), summ,
                              [L._exception_summary(x) for x in exception.take(pa.array(summ, type=pa.int64())).to_pylist()])

    # service
    if parser.container_service is not None:
        service: Any = [parser.container_service] * n_lines
    else:
        service = [parser._service(lg, sn) for lg, sn in zip(logger.to_pylist(), t["service.name"].to_pylist())]

    cols: dict[str, Any] = {
        "ts": ts, "docker_ts": dstamp, "service": service, "format": ["json"] * n_lines, "level": level,
        "logger": logger, "message": message, **slots, "ids": found.column, F.EVENT_TYPE: event_type, "topic": topic,
        "partition": partition, "offset": offset, "error": error, "exception": exception,
        "detail": pa.nulls(n_lines, pa.large_string()), "parent_line": pa.nulls(n_lines, pa.int64()),
        "parsed": np.ones(n_lines, dtype=bool), "raw": raw,
        "line_no": np.arange(first_line, first_line + n_lines, dtype=np.int64),
    }
    return L._frame_from_columns(cols, n_lines, parser.container, parser.stream, parser.source_file)
