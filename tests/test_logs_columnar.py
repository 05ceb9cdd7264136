"""The columnar full parse gives exactly the frame of the per-line parser.

``parse_file`` sends runs of Docker-stamped JSON lines through one Arrow read (``huledu_forensics._logcols``)
and everything else through the per-line parser. The contract is equality: same rows, columns, dtypes,
values, order and flags. The reference here is the per-line parser alone (the columnar path switched off
by a run length no file reaches); every comparison also checks that the columnar path really took rows,
so a fast path that silently always fell back could not pass.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from huledu_forensics import _logcols, logs
from huledu_forensics.logs import parse_file
from huledu_forensics.model.logformats import ID_KEY_COLUMNS
from tests.support.corpus import require_corpus
from tests.support.hostile import hostile_world

ELS_WORKER = "huleedu_essay_lifecycle_worker"
BLOCK_SIZES = (700, 1 << 14, 1 << 17, logs._BLOCK_BYTES)


def _parse_both(monkeypatch: pytest.MonkeyPatch, path: Path, container: str, *, block_bytes: int,
                min_run: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(per-line frame, block frame, rows the columnar path produced)."""
    with monkeypatch.context() as m:
        m.setattr(_logcols, "MIN_RUN_LINES", 1 << 62)
        reference = parse_file(path, container=container)
    taken = [0]
    real = _logcols.parse_run

    def counting(*args: Any, **kwargs: Any) -> pd.DataFrame | None:
        frame = real(*args, **kwargs)
        taken[0] += 0 if frame is None else len(frame)
        return frame

    with monkeypatch.context() as m:
        m.setattr(_logcols, "MIN_RUN_LINES", min_run)
        m.setattr(_logcols, "parse_run", counting)
        m.setattr(logs, "_BLOCK_BYTES", block_bytes)
        fast = parse_file(path, container=container)
    return reference, fast, taken[0]


def _assert_same(monkeypatch: pytest.MonkeyPatch, path: Path, container: str, *, block_bytes: int,
                 min_run: int = 1) -> int:
    reference, fast, taken = _parse_both(monkeypatch, path, container, block_bytes=block_bytes, min_run=min_run)
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
    return taken


# ---------------------------------------------------------------------------------------------
# Generated lines: every rule of the JSON row, in values Arrow reads and values it must refuse

_T0 = datetime(2025, 11, 20, 18, 40, 0, tzinfo=UTC)
_KNOWN_UUID = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
_ID_KEYS = sorted({k for keys in ID_KEY_COLUMNS.values() for k in keys})


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


class _Gen:
    """Seeded generator of structlog-like records; ``typed`` ones hold only values Arrow reads."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def uid(self) -> str:
        u = str(uuid.UUID(int=self.r.getrandbits(128)))
        return self.r.choice([u, u, u.upper(), u[:9] + u[9:].upper(), _KNOWN_UUID])

    def id_value(self) -> str:
        u = self.uid()
        hx = uuid.UUID(u).hex
        return self.r.choice([
            u, u, u, hx, hx.upper(), f"UUID('{u}')", f'UUID("{u}")', f"  {u} ", f"\x1c{u}", "", " ", "ÄBC-ß",
            "İd", "x", "12", u + "\u00a0",
        ])

    def maybe(self, p: float) -> bool:
        return self.r.random() < p

    def message(self) -> str:
        u, v = self.uid(), self.uid()
        return self.r.choice([
            "Processing event", "", "Retrieved 0 unpublished events from outbox",
            f"Creating initial essay records in database for batch {u}: [{v}, {self.uid()}]",
            f"Creating initial essay records in database for batch {u}: [{v}]",
            f"Batch {u} registered", f"batch_id={u.upper()} stored", f"GET /v1/batches/{u}/status",
            f"essay {v} done", f"essay_id: UUID('{v}') failed", f"Correlation ID from header: {u}",
            f"event_id {u} relayed", f"file_upload_id={u}", f"text_storage_id: {uuid.UUID(u).hex}",
            f"Stored (type: extracted_plaintext), storage_id: {uuid.UUID(v).hex}",
            f"Consumed message from topic huleedu.batch.essays.registered.v1 at {u}",
            "Consumed message from topic huleedu.els.x.v1", "from topic nowhere", f"x{u}y",
            f"{uuid.UUID(u).hex}{uuid.UUID(v).hex}", f"{u}-{v}", "ÄÖ ünïcödé ✓", "tab\there",
        ])

    def record(self, typed: bool) -> dict[str, Any]:
        r = self.r
        d: dict[str, Any] = {}
        if self.maybe(0.9):
            d["logger_name"] = r.choice(["outbox.event_relay_worker", "outbox_repository", "els.kafka.consumer",
                                         "huleedu.bos.api", "", "unknown.logger"])
        if self.maybe(0.1):
            d["logger"] = r.choice(["outbox_repository", "bos.x", ""])
        for key in ("event", "message", "msg"):
            if self.maybe({"event": 0.85, "message": 0.15, "msg": 0.1}[key]):
                d[key] = self.message()
        if self.maybe(0.9):
            d["level"] = r.choice(["info", "error", "warning", "WARN", "Error ", "exception", "fatal", "",
                                   "bogus", "LOG", "debug1"])
        if self.maybe(0.1):
            d["levelname"] = r.choice(["INFO", "Critical", "", "x"])
        if self.maybe(0.9):
            t = _T0 + timedelta(milliseconds=r.randint(0, 10**7))
            d["timestamp"] = r.choice([
                t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), t.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                t.strftime("%Y-%m-%dT%H:%M:%S+00:00"), t.strftime("%Y-%m-%dT%H:%M:%S.%f+0200"),
                t.strftime("%Y-%m-%d %H:%M:%S"), t.strftime("%Y-%m-%dT%H:%M:%Sz"), "", "not a time",
                "9999-12-31T23:59:59.999999Z",
            ])
        if self.maybe(0.5):
            d["service.name"] = r.choice(["essay-lifecycle-service", "batch_orchestrator_service", "", "x"])
        for k in r.sample(_ID_KEYS, r.randint(0, 3)):
            d[k] = self.id_value()
        for k in ("event_type", "topic", "error", "exception"):
            if self.maybe(0.15):
                d[k] = r.choice(["", "huleedu.batch.essays.registered.v1", "BatchEssaysRegistered",
                                 "Traceback (most recent call last):\n  File x\nValueError: boom", "plain err"])
        if self.maybe(0.8):
            d["extra"] = self.extra(typed)
        if not typed:
            self.poison(d)
        return d

    def extra(self, typed: bool) -> Any:
        r = self.r
        e: dict[str, Any] = {}
        for k in r.sample(_ID_KEYS, r.randint(0, 4)):
            e[k] = self.id_value()
        if self.maybe(0.3):
            e["event_id"] = self.id_value()
        for k in ("event_type", "topic", "kafka_topic", "error", "error_message", "last_error", "stack_trace"):
            if self.maybe(0.12):
                e[k] = r.choice(["", "huleedu.file.essay.content.provisioned.v1", "EssayContentProvisionedV1",
                                 "Traceback (most recent call last):\n  File y\nKeyError: 'k'", "boom",
                                 "huleedu.batch.essays.registered.v1"])
        if self.maybe(0.2):
            e["aggregate_id"] = self.id_value()
            if self.maybe(0.6):
                e["aggregate_type"] = r.choice(["batch", "essay", "file_upload", "cj_batch", "", "pipeline"])
        if self.maybe(0.2):
            e["essay_ids"] = r.choice([[], [self.uid()], [self.uid(), self.uid()], [None], [f"  {self.uid()}"]])
        for k in ("partition", "kafka_partition", "offset", "kafka_offset"):
            if self.maybe(0.15):
                e[k] = r.choice([0, 3, -1, 123456789012, None])
        if self.maybe(0.3):
            e["other"] = r.choice([1, "s", [1, {"a": None}], {"nested": {"x": [1.5, True]}}, None])
        if self.maybe(0.05):
            return {} if typed else r.choice(["a string", [1, 2], 3, None])
        return e

    def poison(self, d: dict[str, Any]) -> None:
        """Values the per-line path reads in its own way (str() of numbers, lists, ...): Arrow must refuse."""
        r = self.r
        key = r.choice(["batch_id", "event", "level", "timestamp", "logger_name", "topic", "error"])
        d[key] = r.choice([42, 1.5, True, ["a"], {"k": "v"}, 10**30])
        if isinstance(d.get("extra"), dict) and self.maybe(0.5):
            d["extra"][r.choice(["partition", "batch_id", "essay_ids", "stack_trace"])] = r.choice(
                ["7", " 8 ", 2.0, True, "x", {"a": 1}])

    def body(self, typed: bool) -> str:
        return json.dumps(self.record(typed), ensure_ascii=self.maybe(0.5))

    def broken_body(self) -> str:
        """Lines that start like JSON and that the two decoders might read differently."""
        r = self.r
        good = self.body(True)
        u = self.uid()
        return r.choice([
            good[: r.randint(1, len(good) - 1)],  # truncated
            good + " trailing",
            good + good,  # two objects on one line
            good[:-1] + ', "z": NaN}', good[:-1] + ', "z": Infinity}', good[:-1] + ', "z": -Inf}',
            good[:-1] + ', "z": 1e400}', good[:-1] + ', "z": 123456789012345678901234567890}',
            '{"event": "dup", "event": "last wins", "batch_id": "' + u + '"}',
            '{"extra": {"batch_id": "a"}, "extra": {"batch_id": "' + u + '"}}',
            '{"event": "lone \\ud800 surrogate", "batch_id": "' + u + '"}',
            '{"event": "raw\ttab", "batch_id": "' + u + '"}',
            '{"x": ' + "[" * 1200 + "]" * 1200 + ', "batch_id": "' + u + '"}',
            '{"x": ' + "[" * 450 + "]" * 450 + ', "batch_id": "' + u + '"}',
            "{'single': 'quotes'}", "{}", '{"event": null, "extra": null}', "{ }  ",
            '{"logger\\u005fname": "outbox_repository", "extra": {"event_id": "' + u + '"}}',
        ])

    def other_line(self, t: datetime) -> str:
        r = self.r
        u = self.uid()
        return r.choice([
            f"{_stamp(t)} {t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} [error    ] Handler failed [els.handler] batch_id={u}",
            f"{_stamp(t)} Traceback (most recent call last):",
            f'{_stamp(t)}   File "handler.py", line 12, in handle  # batch {u}',
            f"{_stamp(t)} ValueError: boom",
            f"{_stamp(t)} 2025-11-20 18:41:51.054 UTC [47] ERROR:  invalid input value for enum {u}",
            f"{_stamp(t)} 2025-11-20 18:41:51.054 UTC [47] DETAIL:  key ({u}) exists",
            f"{_stamp(t)} [2025-11-19 19:35:04 +0000] [68] [INFO] Running on http://0.0.0.0:8000",
            f"{_stamp(t)} plain print line {u}", f"{_stamp(t)}", "", "no stamp at all {\"a\": 1}",
            f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z " + self.body(True),  # a six-digit Docker stamp
            f"{_stamp(t)}  " + self.body(True),  # two spaces after the stamp
            f"{_stamp(t)} [info     ] console line [x] k=v",
        ])


def _generated(path: Path, seed: int, n: int = 700) -> Path:
    g = _Gen(seed)
    t = _T0
    out: list[bytes] = []
    while len(out) < n:
        run = g.r.choice([1, 2, 5, 20, 70])
        typed = g.maybe(0.8)
        for _ in range(run):
            t += timedelta(milliseconds=g.r.choice([0, 1, 3, 40, 900]))
            body = g.body(typed) if g.maybe(0.97) else g.broken_body()
            out.append(f"{_stamp(t)} {body}".encode())
        for _ in range(g.r.choice([0, 0, 1, 3])):
            out.append(g.other_line(t).encode())
        if g.maybe(0.03):
            out.append(f"{_stamp(t)} ".encode() + g.body(True).encode() + g.r.choice([b"\r", b"\xff", b"\xc3("]))
    data = b"\n".join(out)
    path.write_bytes(data + (b"\n" if seed % 2 else b""))  # with and without a final newline
    return path


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("container", [ELS_WORKER, ""])
def test_generated_lines_parse_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
                                           container: str) -> None:
    path = _generated(tmp_path / "gen.log", seed)
    block = BLOCK_SIZES[seed % len(BLOCK_SIZES)]
    taken = _assert_same(monkeypatch, path, container, block_bytes=block)
    assert taken > 50


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_generated_lines_every_block_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    path = _generated(tmp_path / "gen.log", 11, n=400)
    for min_run in (1, 3, 64):
        _assert_same(monkeypatch, path, ELS_WORKER, block_bytes=block_bytes, min_run=min_run)


def test_gzip_file_parses_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    plain = _generated(tmp_path / "gen.log", 5, n=600)
    gz = tmp_path / "gen.log.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert _assert_same(monkeypatch, gz, ELS_WORKER, block_bytes=4096) > 100


# ---------------------------------------------------------------------------------------------
# Real logs: the corpus worlds, the simulator's worlds, the hostile corpus


def _corpus_logs() -> list[Path]:
    root = require_corpus()
    return sorted(root.glob("*/logs/*.log"))


@pytest.mark.parametrize("block_bytes", (1 << 16, logs._BLOCK_BYTES))
def test_corpus_logs_parse_identically(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    paths = _corpus_logs()
    assert paths
    taken = 0
    for path in paths:
        for container in (path.stem, ""):
            taken += _assert_same(monkeypatch, path, container, block_bytes=block_bytes, min_run=8)
    assert taken > 1000


def _write_world_logs(world: Any, root: Path) -> list[tuple[Path, str]]:
    out = []
    for container, streams in sorted(world.logs.items()):
        for stream, lines in sorted(streams.items()):
            path = root / f"{container}.{stream}.log"
            path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
            out.append((path, container))
    return out


@pytest.mark.parametrize("scenario", ["seed_variant_a", "outbox_poisoned"])
def test_simulator_logs_parse_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    from huledu_forensics.simulate import build_world, scenario_names

    assert scenario in scenario_names()
    taken = 0
    for path, container in _write_world_logs(build_world(scenario), tmp_path):
        for block in (2048, logs._BLOCK_BYTES):
            taken += _assert_same(monkeypatch, path, container, block_bytes=block, min_run=4)
    assert taken > 100


@pytest.mark.parametrize("block_bytes", (1000, 1 << 15, logs._BLOCK_BYTES))
def test_hostile_logs_parse_identically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    world, container, stream, added = hostile_world(huge_size=40_000)
    path = tmp_path / "hostile.log"
    lines = [line.encode("utf-8", "surrogateescape") for line in world.logs[container][stream]]
    # the hostile lines between runs of ordinary JSON lines, and on their own
    g = _Gen(3)
    mixed: list[bytes] = []
    for bad in added:
        mixed.extend(f"{_stamp(_T0)} {g.body(True)}".encode() for _ in range(g.r.choice([0, 2, 9])))
        mixed.append(bad)
    path.write_bytes(b"\n".join(lines + mixed) + b"\n")
    for min_run in (1, 2):
        assert _assert_same(monkeypatch, path, container, block_bytes=block_bytes, min_run=min_run) > 0


def test_runs_are_cut_around_lines_the_columnar_path_cannot_prove(tmp_path: Path) -> None:
    """Unit check of the run split: which lines the columnar path may take."""
    stamp = _stamp(_T0)
    good = f'{stamp} {{"event": "ok"}}'
    lines = [good, good, f'{stamp} {{"x": -Inf}}', good, f"{stamp} plain", good + "\r", good,
             f'{stamp} {{"x": {"[" * 500}{"]" * 500}}}', good]
    block = ("\n".join(lines) + "\n").encode()
    starts, ends = _logcols._line_bounds(block)
    ok = _logcols._eligible(block, starts, ends, logs._DOCKER_SPLIT)
    assert ok.tolist() == [True, True, False, True, False, False, True, False, True]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_logcols, "MIN_RUN_LINES", 1)
        runs = [(fast, n) for fast, _piece, n, _starts in _logcols.split_runs(block, 10, logs._DOCKER_SPLIT)]
    assert runs == [(True, 2), (False, 1), (True, 1), (False, 2), (True, 1), (False, 1), (True, 1)]
    bad = b"\xff" + block  # the first line is not UTF-8: the per-line path decodes it (U+FFFD)
    assert _logcols._eligible(bad, *_logcols._line_bounds(bad), logs._DOCKER_SPLIT).tolist() == [False, *ok[1:]]



# ---------------------------------------------------------------------------------------------
# The column-wise pieces against the per-line ones they stand for


def _id_soup(r: random.Random, size: int) -> bytes:
    """Text dense in ids and near-ids: UUIDs (any case), 32-hex ids, longer and shorter hex runs, ids
    glued to each other by "-" or hex digits, at the very start and end of the buffer."""
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        u = uuid.UUID(int=r.getrandbits(128))
        parts.append(r.choice([
            str(u), str(u).upper(), u.hex, u.hex.upper(), u.hex[:31], u.hex + "a", str(u)[:35], "-" + str(u),
            f"{r.getrandbits(256):064x}", f"{r.getrandbits(4096):01024x}", "-" * r.randint(1, 40),
            r.choice("0123456789abcdefABCDEF") * r.randint(1, 70), " ", "\n", "x", '"', "é", "2025-11-20T18:40",
        ]))
    return "".join(parts).encode()


@pytest.mark.parametrize("seed", range(4))
def test_id_scan_finds_what_the_find_loop_finds(seed: int) -> None:
    r = random.Random(seed)
    for _ in range(150):
        buf = _id_soup(r, r.choice([40, 120, 600, 5000]))
        pos, size = _logcols._scan_ids(buf)
        uuids, hexes = _logcols._scan_slow(buf, 0, len(buf))
        want = sorted([(p, 36) for p in uuids] + [(p, 32) for p in hexes])
        assert list(zip(pos.tolist(), size.tolist())) == want, buf


def test_ids_column_without_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every id of a line hashing alike: the per-line dedup compares the values themselves."""
    monkeypatch.setattr(_logcols, "_MIX", np.zeros(5, dtype=np.uint64))
    path = _generated(tmp_path / "gen.log", 21, n=500)
    assert _assert_same(monkeypatch, path, ELS_WORKER, block_bytes=logs._BLOCK_BYTES) > 100


def test_arrow_times_read_as_pandas_reads_them() -> None:
    r = random.Random(5)

    def one() -> str | None:
        y = r.choice([1, 1677, 1678, 1900, 1970, 2000, 2024, 2100, 2261, 2262, 9999])
        mo, d = r.choice([0, 1, 2, 2, 12, 13]), r.choice([0, 1, 28, 29, 30, 31, 32])
        h, mi, s = r.choice([0, 23, 24]), r.choice([0, 59, 60]), r.choice([0, 59, 60])
        frac = r.choice(["", ".", ".5", ".123456", ".123456789", ".1234567891"])
        text = f"{y:04d}-{mo:02d}-{d:02d}{r.choice('TT t')}{h:02d}:{mi:02d}:{s:02d}{frac}"
        return r.choice([None, "", text + "Z", text + "Z", text + "z", text + "+00:00", text])

    for _ in range(60):
        values = [one() for _ in range(r.choice([1, 30, 300]))]
        arr = pa.array(values, type=r.choice([pa.string(), pa.large_string()]))
        expected = logs._utc_objects(pd.Series(values, dtype=object))
        pd.testing.assert_series_equal(logs._utc_arrow(arr), expected, check_exact=True)
        pd.testing.assert_series_equal(logs._utc_arrow(arr[1:]), expected[1:].reset_index(drop=True),
                                       check_exact=True)


def test_id_columns_normalise_as_nid_does() -> None:
    r = random.Random(8)
    pieces = ["UUID('", "UUID(", "UUID", "')", "abc", "ABC", " ", "\t", "\x1c", "é", "İ", "\u00a0", "", "278F7FD9-37FE"]
    for _ in range(400):
        values = [None if r.random() < 0.1 else "".join(r.choice(pieces) for _ in range(r.randint(0, 5)))
                  for _ in range(r.choice([1, 3, 20]))]
        arr = pa.array(["ZZ", *values], type=r.choice([pa.string(), pa.large_string()]))[1:]  # sliced, too
        assert _logcols._norm_ids(arr, logs._nid).to_pylist() == [logs._nid(v) for v in values]
