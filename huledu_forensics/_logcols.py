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
_SPACE_BYTE = np.zeros(256, dtype=bool)
_SPACE_BYTE[[ord(c) for c in _PY_SPACE]] = True
_UUID_REPR = b"UUID("  # logs._nid unwraps it

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
    ascii = block.isascii()
    if not ascii:
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
    if len(cand):
        # stamp, space, "{": one row per byte position, one column per line
        head = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(arr, _PREFIX + 1)[starts[cand]].T)
        good = (head[4] == 45) & (head[10] == 84) & (head[_STAMP] == 32) & (head[_PREFIX] == 123)
        for i in range(19, _STAMP):
            good &= head[i] != 32
        if not ascii:
            for i in range(_STAMP):
                good &= head[i] < 128
        ok[cand[good]] = True
    ok[invalid] = False

    def drop(positions: list[int]) -> None:
        if positions:
            ok[np.searchsorted(starts, np.asarray(positions), side="right") - 1] = False

    if b"\r" in block:
        drop(np.flatnonzero(arr == 13).tolist())
    # RapidJSON (Arrow) reads Inf and -Inf as numbers where Python's json refuses the line; NaN and
    # Infinity both read (and a line keeps them only in keys the parser ignores)
    if b"Inf" in block:
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


def split_runs(block: bytes, max_lines: int, docker_split: int
               ) -> Iterator[tuple[bool, bytes, int, np.ndarray | None]]:
    """``(columnar?, bytes, line count, line starts)`` for consecutive runs of the whole lines in
    ``block``; the starts (offsets in the run's bytes) come with the columnar runs only."""
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
            yield False, block[cut(pending) : cut(a)], a - pending, None
        for k in range(a, b, max_lines):
            e = min(b, k + max_lines)
            yield True, block[cut(k) : cut(e)], e - k, starts[k:e] - starts[k]
        pending = b
    if pending < n:
        yield False, block[cut(pending) :], n - pending, None


# ---------------------------------------------------------------------------------------------
# Ids found in the raw text of every line at once


_CLASS = bytes(1 if chr(i) in "0123456789abcdefABCDEF" else (2 if i == 45 else 0) for i in range(256))
_WIDE_SPAN = 64  # streaks wider than this many samples (long hex blobs): looked at with bytes.find


def _scan_slow(buf: bytes, lo: int, hi: int) -> tuple[list[int], list[int]]:
    """UUID and 32-hex positions in ``buf[lo:hi]`` (edges count as non-hex), by ``bytes.find``."""
    uuids: list[int] = []
    hexes: list[int] = []
    cls = buf[lo:hi].translate(_UUID_CLASS)
    find = cls.find
    total = len(cls)
    i = find(_UUID_SHAPE)
    while i != -1:
        if (i == 0 or cls[i - 1] != 104) and (i + 36 == total or cls[i + 36] != 104):
            uuids.append(lo + i)
            i = find(_UUID_SHAPE, i + 36)
        else:
            i = find(_UUID_SHAPE, i + 1)
    i = find(_HEX_RUN)
    while i != -1:
        end = i + 32
        if end == total or cls[end] != 104:
            hexes.append(lo + i)
            i = find(_HEX_RUN, end)
        else:  # a longer hex run (a sha256, ...): skip it
            m = _NOT_HEX_RE.search(cls, end)
            if m is None:
                break
            i = find(_HEX_RUN, m.start())
    return uuids, hexes


def _scan_windows(arr: np.ndarray, starts: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """UUIDs and 32-hex ids in the windows ``arr[s : s + w]`` whose first and last bytes are not hex."""
    n = len(starts)
    win = np.lib.stride_tricks.sliding_window_view(arr, w)[starts]
    cls = np.frombuffer(np.ascontiguousarray(win.T).tobytes().translate(_CLASS), dtype=np.uint8).reshape(w, n)
    h = cls == 1
    run = np.zeros((w, n), dtype=np.uint8 if w < 255 else np.int32)  # hex digits ending at each byte
    for t in range(1, w):
        np.add(run[t - 1], 1, out=run[t])
        np.multiply(run[t], h[t], out=run[t])
    # a 32-hex id ends before byte e: a run of exactly 32 digits (e - 32 >= 1, e <= w - 1)
    ok = (run[32 : w - 1] == 32) & ~h[33:w]
    e, r = np.nonzero(ok)
    hexes = starts[r] + e + 1
    # a UUID ends before byte e (e - 36 >= 1): runs of 8, 4, 4, 4, 12 digits joined by single "-"
    d = cls == 2
    ok = ((run[36 : w - 1] == 12) & ~h[37:w] & d[24 : w - 13] & (run[23 : w - 14] == 4) & d[19 : w - 18]
          & (run[18 : w - 19] == 4) & d[14 : w - 23] & (run[13 : w - 24] == 4) & d[9 : w - 28]
          & (run[8 : w - 29] == 8))
    e, r = np.nonzero(ok)
    uuids = starts[r] + e + 1
    return uuids, hexes


def _scan_ids(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Position and length (36 or 32) of every UUID and bare 32-hex id in ``buf``, in text order.

    The matches are those of the per-line scan (``logs._find_ids``): a UUID not touching another hex
    digit, a hex run of exactly 32 digits. A Docker stamp holds neither (its longest hex run is the
    nine fraction digits, and a space follows it), so whole lines are scanned.

    Every byte of a match is a hex digit or ``-``, so of every eighth byte at least four in a row are;
    such streaks (few: mostly the ids themselves) are the only places looked at byte by byte. A match
    starts after the non-hex sample before its streak and ends before the one after it, so the window
    from the one to the other holds each match and the bytes on both sides of it.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    total = len(arr)
    samp = np.ascontiguousarray(arr[::8])
    x = samp - np.uint8(48)
    u = (x < 10) | (x == 253) | (((samp | np.uint8(32)) - np.uint8(97)) < 6)  # hex digit or "-" (45)
    k = np.flatnonzero(u[:-3] & u[1:-2] & u[2:-1] & u[3:])
    if not len(k):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    brk = np.diff(k) > 1
    k0 = k[np.concatenate(([True], brk))]
    k1 = k[np.concatenate((brk, [True]))] + 3
    lo = 8 * k0 - 8  # a non-hex sample (or before the buffer)
    hi = 8 * k1 + 9  # one past the non-hex sample after the streak (or past the buffer)
    span = k1 - k0
    slow = (lo < 0) | (hi > total) | (span > _WIDE_SPAN)
    at: list[np.ndarray] = []
    size: list[np.ndarray] = []
    for lo_e, hi_e in zip(lo[slow].tolist(), hi[slow].tolist()):
        u_at, h_at = _scan_slow(buf, max(lo_e, 0), min(hi_e, total))
        at += [np.asarray(u_at, dtype=np.int64), np.asarray(h_at, dtype=np.int64)]
        size += [np.full(len(u_at), 36, dtype=np.int64), np.full(len(h_at), 32, dtype=np.int64)]
    fast = ~slow
    span = span[fast]
    lo = lo[fast]
    for s in np.unique(span).tolist():
        uu, hh = _scan_windows(arr, lo[span == s], 8 * s + 17)
        at += [uu, hh]
        size += [np.full(len(uu), 36, dtype=np.int64), np.full(len(hh), 32, dtype=np.int64)]
    pos = np.concatenate(at)
    order = np.argsort(pos, kind="stable")
    return pos[order], np.concatenate(size)[order]


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                 0x94D049BB133111EB], dtype=np.uint64)


class _Ids:
    """The ids of a run's lines: the ``ids`` column and, per line, the ids as written."""

    def __init__(self, buf: bytes, starts: np.ndarray, n: int) -> None:
        pos, size = _scan_ids(buf)
        lines = np.searchsorted(starts, pos, side="right") - 1
        # per line the UUIDs first, then the hex ids, each group in text order (``pos`` is)
        order = np.argsort(lines * 2 + (size == 32), kind="stable")
        self.lines, pos, size = lines[order], pos[order], size[order]
        self.has = np.zeros(n, dtype=bool)
        m = len(pos)
        if not m:
            self.column: pa.Array = pa.nulls(n, pa.large_string())
            self.text = np.zeros((0, 40), dtype=np.uint8)
            return
        arr = np.frombuffer(buf, dtype=np.uint8)
        text = np.zeros((m, 40), dtype=np.uint8)  # each id as written, zero-padded
        for width in (36, 32):
            sel = size == width
            text[sel, :width] = np.lib.stride_tricks.sliding_window_view(arr, width)[pos[sel]]
        self.text, self.size = text, size
        low = text | np.uint8(32)  # ASCII lower-casing of hex digits and "-" (str.lower() on them)
        first = self._first_in_line(low, self.lines)
        kept = self.lines[first]
        counts = np.bincount(kept, minlength=n)
        self.has = counts > 0
        # "a b c": each kept id and a space, less the space after each line's last id
        ksize = size[first]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(kept, weights=ksize + 1, minlength=n).astype(np.int64) - self.has, out=offsets[1:])
        step = np.cumsum(ksize + 1) - (ksize + 1)  # where each id starts among all kept ids
        begin = offsets[kept] + step - step[np.searchsorted(kept, kept)]
        data = np.full(int(offsets[-1]), 32, dtype=np.uint8)
        klow = low[first]
        for width in (36, 32):
            sel = ksize == width
            data[begin[sel][:, None] + np.arange(width)] = klow[sel, :width]
        valid = pa.py_buffer(np.packbits(self.has, bitorder="little"))
        self.column = pa.Array.from_buffers(pa.large_string(), n, [valid, pa.py_buffer(offsets), pa.py_buffer(data)],
                                            null_count=int(n - self.has.sum()))
        self._from: np.ndarray | None = None

    @staticmethod
    def _first_in_line(low: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Per id: the first of its (lower-cased) value on its line? Ids are ordered by line."""
        words = low.view(np.uint64)  # (ids, 5)
        mixed = (words * _MIX).sum(axis=1, dtype=np.uint64)
        bits = max(1, int(lines[-1]).bit_length())
        key = (lines.astype(np.uint64) << np.uint64(64 - bits)) | (mixed >> np.uint64(bits))
        order = np.argsort(key, kind="stable")  # stable: the first place of a value comes first
        sk = key[order]
        same = sk[1:] == sk[:-1]
        equal = (words[order[1:]] == words[order[:-1]]).all(axis=1)
        if (same & ~equal).any():  # two values share a hash on one line: compare them whole
            seen: set[tuple[int, bytes]] = set()
            first = np.zeros(len(lines), dtype=bool)
            for i, (ln, w) in enumerate(zip(lines.tolist(), low.tolist())):
                k = (ln, bytes(w))
                if k not in seen:
                    seen.add(k)
                    first[i] = True
            return first
        first = np.ones(len(lines), dtype=bool)
        first[order[1:][same]] = False
        return first

    def written(self, lines: list[int]) -> list[list[str]]:
        """Per line of ``lines`` (ascending), its ids as written (``logs._find_ids`` of its text)."""
        picked = np.flatnonzero(np.isin(self.lines, lines))  # ids are ordered by line
        text = self.text[picked].tobytes().decode("ascii")
        size = self.size[picked].tolist()
        counts = np.bincount(np.searchsorted(lines, self.lines[picked]), minlength=len(lines)).tolist()
        out: list[list[str]] = []
        k = 0
        for c in counts:
            out.append([text[40 * j : 40 * j + size[j]] for j in range(k, k + c)])
            k += c
        return out


# ---------------------------------------------------------------------------------------------
# Column helpers


def _nonempty(arr: pa.Array) -> pa.Array:
    """``arr`` with empty strings as nulls (the per-line path skips ``""`` like a missing key)."""
    if arr.null_count == len(arr):
        return arr
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width, count=len(arr) + 1, offset=arr.offset * width().itemsize)
    empty = offsets[1:] == offsets[:-1]
    if arr.null_count:
        empty &= np.asarray(arr.is_valid())
    if not empty.any():
        return arr
    return pc.if_else(pa.array(empty), pa.scalar(None, arr.type), arr)


def _as_text(arr: pa.Array) -> pa.Array:
    """A binary column as ``large_string`` without another UTF-8 check (:func:`_eligible` made it)."""
    return pa.Array.from_buffers(pa.large_string(), len(arr), arr.buffers(), arr.null_count, arr.offset)


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
    """``logs._nid`` over a string column: ASCII lower-casing where that is exact, ``nid`` elsewhere
    (empty, non-ASCII, blank at either end, ``UUID(…)``)."""
    arr = arr.cast(pa.large_string())
    n = len(arr)
    if arr.null_count == n:
        return arr
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=8 * arr.offset)
    if offsets[0]:  # pyarrow 26's ascii_lower misreads such an array (a cast of a sliced one)
        arr = pa.concat_arrays([arr])
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=8 * arr.offset)
    length = np.diff(offsets)
    valid = np.asarray(arr.is_valid()) if arr.null_count else np.ones(n, dtype=bool)
    slow = valid & (length == 0)
    some = np.flatnonzero(valid & (length > 0))
    if len(some):
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        first, last = data[offsets[some]], data[offsets[some + 1] - 1]
        odd = _SPACE_BYTE[first] | _SPACE_BYTE[last]
        maybe = np.flatnonzero((first == ord("U")) & (length[some] >= len(_UUID_REPR)))
        if len(maybe):
            head = np.lib.stride_tricks.sliding_window_view(data, len(_UUID_REPR))[offsets[some[maybe]]]
            odd[maybe] |= (head == np.frombuffer(_UUID_REPR, dtype=np.uint8)).all(axis=1)
        slow[some[odd]] = True
        if not data[offsets[0] : offsets[-1]].tobytes().isascii():
            slow |= ~np.asarray(pc.string_is_ascii(arr).fill_null(True))
    out = pc.ascii_lower(arr)
    rows = np.flatnonzero(slow).tolist()
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


@functools.cache
def _reader() -> concurrent.futures.ThreadPoolExecutor:
    """The thread that runs Arrow's reads (one at a time; Arrow decodes in its own threads, without the
    GIL), so the next run decodes while this thread works on the one before."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="huledu-arrow-read")


class Read:
    """The Arrow read of a run of whole JSON lines (see :func:`split_runs`, which gives their
    ``starts``), started when made."""

    def __init__(self, run: bytes, starts: np.ndarray) -> None:
        if not run.endswith(b"\n"):
            run += b"\n"  # the file's last line (the per-line parser does not need its newline either)
        self.run, self.starts = run, starts
        body = np.frombuffer(run, dtype=np.uint8).copy()
        # stamps to blanks: JSON whitespace
        np.lib.stride_tricks.sliding_window_view(body, _PREFIX, writeable=True)[starts] = 32
        self._table = _reader().submit(pj.read_json, pa.BufferReader(pa.py_buffer(body)),
                                       read_options=pj.ReadOptions(block_size=max(1 << 20, len(run) // 2 + 1)),
                                       parse_options=_parse_options())

    def table(self) -> pa.Table | None:
        """The lines' keys, or ``None`` when Arrow refuses the run."""
        try:
            return self._table.result()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
            return None


def parse_run(run: bytes, n_lines: int, first_line: int, parser: _Parser, starts: np.ndarray | None = None,
              read: Read | None = None) -> pd.DataFrame | None:
    """The frame of ``n_lines`` whole JSON lines, or ``None`` when the run must go to the per-line
    parser. ``parser`` gives the per-line helpers and the container's service; ``read`` is the run's
    Arrow read when already started."""
    from . import logs as L

    if read is None:
        if starts is None:
            starts = _line_bounds(run)[0]
        if len(starts) != n_lines:
            return None
        read = Read(run, starts)
    run, starts = read.run, read.starts
    if len(starts) != n_lines:
        return None
    found = _Ids(run, starts, n_lines)  # while Arrow decodes
    table = read.table()
    if table is None or table.num_rows != n_lines:
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
    raw = _as_text(pc.binary_slice(lines, _PREFIX, -1))
    dstamp = _as_text(pc.binary_slice(lines, 0, _STAMP))

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
        for k, (r, m, written) in enumerate(zip(cand, msgs, found.written(cand))):
            if not any(f in m for f in written):
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
        service: Any = pa.repeat(pa.scalar(parser.container_service, pa.large_string()), n_lines)
    else:
        service = [parser._service(lg, sn) for lg, sn in zip(logger.to_pylist(), t["service.name"].to_pylist())]

    cols: dict[str, Any] = {
        "ts": ts, "docker_ts": dstamp, "service": service, "format": pa.repeat(pa.scalar("json", pa.large_string()), n_lines), "level": level,
        "logger": logger, "message": message, **slots, "ids": found.column, F.EVENT_TYPE: event_type, "topic": topic,
        "partition": partition, "offset": offset, "error": error, "exception": exception,
        "detail": pa.nulls(n_lines, pa.large_string()), "parent_line": pa.nulls(n_lines, pa.int64()),
        "parsed": np.ones(n_lines, dtype=bool), "raw": raw,
        "line_no": np.arange(first_line, first_line + n_lines, dtype=np.int64),
    }
    return L._frame_from_columns(cols, n_lines, parser.container, parser.stream, parser.source_file)
