"""The scoped byte-level read returns exactly the rows of the full parse filtered by scope."""

from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics.logs import BlockSelector, line_facts, line_ids, parse_file, read_scoped, scope_filter

WORKER = "huleedu_essay_lifecycle_worker"
TARGET = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
CORR = "7242c19e-0c8e-4b5c-9d39-3a1f1c1f5e21"


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def _json(t: datetime, level: str, event: str, **extra: object) -> str:
    return json.dumps({"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "level": level, "event": event,
                       "logger_name": "els.kafka.consumer", "extra": extra})


def _generate(path: Path, *, seed: int, n: int = 600, crlf_every: int = 7) -> None:
    """A worker log with the target batch among others, tracebacks, id-less errors, CRLF, PG lines."""
    rnd = random.Random(seed)
    others = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(5)]
    t = datetime(2025, 11, 20, 18, 41, 0, tzinfo=UTC)
    lines: list[str] = []
    for i in range(n):
        t += timedelta(milliseconds=rnd.choice([1, 5, 40, 300, 900, 1500, 2500]))
        batch = TARGET if rnd.random() < 0.2 else rnd.choice(others)
        kind = rnd.random()
        if kind < 0.45:
            body = _json(t, "info", "Processing event", batch_id=batch, correlation_id=str(uuid.uuid4()))
        elif kind < 0.55:  # id-less warning/error line (linked when right after a target line)
            body = _json(t, rnd.choice(["error", "warning", "info"]), "offset not committed",
                         partition=2, offset=i)
        elif kind < 0.62:  # console head + traceback whose frame names the id (continuation hit)
            head = f"{t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} [error    ] Handler failed [els.handler]"
            frame_id = TARGET if rnd.random() < 0.5 else rnd.choice(others)
            block = [head, "Traceback (most recent call last):",
                     f'  File "handler.py", line 12, in handle  # batch {frame_id}',
                     "ValueError: boom"]
            for k, b in enumerate(block):
                lines.append(f"{_stamp(t + timedelta(microseconds=k))} {b}")
            continue
        elif kind < 0.68:  # plain print line mentioning the target in upper case
            body = f"print: batch {TARGET.upper()} seen" if rnd.random() < 0.5 else "plain heartbeat"
        elif kind < 0.74:  # PostgreSQL error with DETAIL continuation naming the correlation
            lines.append(f"{_stamp(t)} 2025-11-20 18:41:51.054 UTC [47] ERROR:  invalid input value")
            lines.append(f"{_stamp(t)} 2025-11-20 18:41:51.054 UTC [47] DETAIL:  key ({CORR}) exists")
            continue
        elif kind < 0.78:
            body = _json(t, "info", f"Pipeline request for correlation_id: {CORR}")
        else:
            body = _json(t, "debug", "poll", batch_id=rnd.choice(others))
        lines.append(f"{_stamp(t)} {body}")
    with open(path, "wb") as fh:
        for i, line in enumerate(lines):
            fh.write(line.encode() + (b"\r\n" if crlf_every and i % crlf_every == 0 else b"\n"))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("block", [1024, 1031, 4099, 1 << 20])
def test_scoped_read_equals_full_parse_filtered(tmp_path: Path, seed: int, block: int) -> None:
    path = tmp_path / "worker.log"
    _generate(path, seed=seed)
    full = parse_file(path, container=WORKER)
    for ids in ([TARGET], [TARGET, CORR], [CORR.upper()]):
        expected = scope_filter(full, ids)
        got = read_scoped(path, ids, container=WORKER, block_bytes=block)
        _same(got, expected)
    assert len(scope_filter(full, [TARGET])) > 0


def test_scope_filter_keeps_blocks_continuations_and_following_idless_errors(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    _generate(path, seed=5)
    full = parse_file(path, container=WORKER)
    got = read_scoped(path, [TARGET], container=WORKER, block_bytes=2048)
    # every row mentioning the id is there
    mentions = full[full["raw"].str.lower().str.contains(TARGET, regex=False)]
    assert set(mentions["line_no"]) <= set(got["line_no"])
    # a traceback whose only mention is a frame line comes with its head and every other line
    heads = set(got.loc[got["parent_line"].notna(), "parent_line"].astype(int))
    assert heads and heads <= set(got["line_no"])
    whole_blocks = full[full["parent_line"].isin(list(heads)) | full["line_no"].isin(list(heads))]
    assert set(whole_blocks["line_no"]) <= set(got["line_no"])
    # id-less error lines are kept only right after a scoped line, never after another batch's line
    idless = got[(got["message"] == "offset not committed")]
    assert len(idless) > 0
    assert set(idless["level"]) <= {"warning", "error"}
    # CRLF lines parse like LF lines (no stray carriage return in the text)
    assert not got["raw"].str.endswith("\r").any()


@pytest.mark.parametrize("chunk", [5, 4096])
def test_live_block_selection_keeps_the_lines_scope_filter_keeps(tmp_path: Path, chunk: int) -> None:
    """Live collection's selector, fed line by line and deciding in chunks of any size, keeps the
    lines scope_filter keeps of the whole file: blocks with their traceback and DETAIL lines, the
    id-less errors after them. A block the walk refuses is dropped and links nothing."""
    path = tmp_path / "worker.log"
    _generate(path, seed=9, crlf_every=0)
    lines = path.read_text().splitlines()
    full = parse_file(path, container=WORKER)
    many = [TARGET, CORR, *(str(uuid.UUID(int=i)) for i in range(1, 6)), "0" * 31 + "7", "heartbeat"]
    # "123z" ends every Docker stamp (_stamp) but only some texts after it: a line whose only mention
    # is in its stamp mentions nothing
    for ids in ([TARGET], [TARGET, CORR], many, [TARGET, "123z"]):
        sel: BlockSelector[int] = BlockSelector(ids, chunk=chunk)
        for n, line in enumerate(lines, 1):
            sel.feed(line, n)
        kept = sel.finish()
        assert kept == sorted(scope_filter(full, ids)["line_no"])
        assert any(full.loc[full["line_no"].isin(kept), "format"] == "continuation")
    refuse = BlockSelector([TARGET, CORR], admit=lambda pairs: ("batch", TARGET) in pairs, chunk=chunk)
    for n, line in enumerate(lines, 1):
        refuse.feed(line, n)
    kept = set(refuse.finish())
    only_corr = full[full["raw"].str.contains(CORR) & ~full["raw"].str.lower().str.contains(TARGET)
                     & full["parent_line"].isna() & (full["format"] != "postgres")]
    assert len(only_corr) and not kept & set(only_corr["line_no"])  # refused: the correlation's own lines


def test_the_mention_test_is_a_case_insensitive_substring_test_whatever_the_number_of_ids() -> None:
    from huledu_forensics.logs import _mentions

    rnd = random.Random(4)
    uuids = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(8)]
    hexes = [f"{rnd.getrandbits(128):032x}" for _ in range(3)]
    needles = [*uuids, *hexes, "other-batch"]
    test = _mentions(needles)
    pieces = [*uuids, *(u.upper() for u in uuids), *hexes, "other-batch", "abc", "-", "f" * 40, "0-", "é", "İ",
              '"', " ", "UUID('", uuids[0][:20], hexes[0][5:]]
    few_sets = [uuids[:1], [uuids[1].upper().lower(), hexes[0]], [hexes[1], "other-batch", uuids[2], "abc"]]
    few_tests = [(_mentions(f), f) for f in few_sets]  # up to 4 ids: substring tests, digit runs first
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 5)))
        assert test(text) == any(n in text.lower() for n in needles), text
        for few_test, few in few_tests:
            assert few_test(text) == any(n in text.lower() for n in few), (text, few)
    assert test("x" + "a" + uuids[1] + "b") and test("ff" + hexes[2] + "ff")  # inside longer hex runs too


def test_scoped_read_of_gzip_and_unstamped_files_falls_back_to_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "worker.log"
    _generate(path, seed=7)
    gz = tmp_path / "worker.log.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    expected = scope_filter(parse_file(path, container=WORKER, source_file="x"), [TARGET])
    _same(read_scoped(gz, [TARGET], container=WORKER, source_file="x"), expected)
    assert read_scoped(path, ["no-such-id-anywhere"], container=WORKER).empty


def test_line_ids_are_the_parsers_typed_ids() -> None:
    line = ('2025-11-20T18:41:51.054000000Z {"event": "Outbox event published", "level": "info", '
            '"logger_name": "outbox.event_relay_worker", "extra": {"event_id": "AAAAAAAA-37fe-406a-a735-'
            'f15128cb6b1f", "entity_id": "' + TARGET + '", "correlation_id": "UUID(\'' + CORR + '\')"}}')
    pairs, level = line_facts(line)
    assert level == "info"
    kinds = dict(pairs)
    assert kinds["batch"] == TARGET  # entity_id is a batch id
    assert kinds["correlation"] == CORR  # the UUID repr is unwrapped
    # the relay's event_id is the outbox row id, exactly as the parser reads it
    parsed = parse_file_from_lines([line])
    assert kinds["outbox"] == parsed["outbox_id"].iloc[0] == "aaaaaaaa-37fe-406a-a735-f15128cb6b1f"
    assert "event" not in kinds
    assert line_ids("2025-11-20T18:41:51.054000000Z plain heartbeat") == []
    assert line_ids(f"2025-11-20T18:41:51.054000000Z Processing batch {TARGET} now") == [("batch", TARGET)]


def parse_file_from_lines(lines: list[str]) -> pd.DataFrame:
    from huledu_forensics.logs import parse_lines

    return parse_lines(lines, container=WORKER)


def test_files_source_follow_reads_only_the_stretches_live_collection_needs(tmp_path: Path) -> None:
    from huledu_forensics.sources.base import Window
    from huledu_forensics.sources.files import FilesSource, split_docker_stamp

    _generate(tmp_path / f"{WORKER}.log", seed=11, n=900)
    src = FilesSource(tmp_path)
    every = [ln.text for ln in src.iter_lines(WORKER, Window())]
    follow = [ln.text for ln in src.iter_lines(WORKER, Window(), contains_any=[TARGET], follow=True)]
    assert 0 < len(follow) < len(every)
    # every line yielded is a line of the file, in file order
    pos = {t: i for i, t in enumerate(every)}
    idx = [pos[t] for t in follow]
    assert idx == sorted(idx)
    # it holds every line that mentions the id and every line up to LINK_SECONDS after one
    from huledu_forensics.logs import LINK_SECONDS

    kept = set(idx)
    last_hit = None
    for i, text in enumerate(every):
        ns = split_docker_stamp(text)[0]  # type: ignore[index]
        if TARGET in text.lower():
            assert i in kept
            last_hit = ns
        elif last_hit is not None and ns - last_hit <= LINK_SECONDS * 1e9:
            assert i in kept


@pytest.mark.parametrize("block", [64, 1024, 1 << 18])
def test_scoped_read_finds_an_id_at_the_end_of_a_line_longer_than_a_block(tmp_path: Path, block: int) -> None:
    path = tmp_path / "worker.log"
    t = datetime(2025, 11, 20, 18, 41, 0, tzinfo=UTC)
    lines = [f"{_stamp(t + timedelta(seconds=i))} " + _json(t + timedelta(seconds=i), "info", "x" * 5000 + f" {i}",
                                                              batch_id=str(uuid.UUID(int=i)))
             for i in range(5)]
    lines[3] = lines[3][:-2] + f', "note": "{"y" * 3000} {TARGET.upper()}"}}}}'
    path.write_text("\n".join(lines) + "\n")
    got = read_scoped(path, [TARGET], container=WORKER, block_bytes=block)
    assert got["line_no"].tolist() == [4]
    _same(got, scope_filter(parse_file(path, container=WORKER), [TARGET]))
