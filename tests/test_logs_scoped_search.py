"""The scoped read's byte-level search finds exactly the lines a plain case-folded find finds, with their
line numbers, wherever an id falls: across search blocks, at the file's first or last byte, in any case,
with or without a trailing newline, whatever the needles' lengths."""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics import logs
from huledu_forensics.logs import parse_file, read_scoped, scope_filter

WORKER = "huleedu_essay_lifecycle_worker"
TARGET = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
FOLD = bytes(b | 0x20 for b in range(256))


def _oracle(data: bytes, needles: list[bytes]) -> list[tuple[int, int]]:
    """(line start, line number) of every line holding a needle in the OR-0x20 fold, by brute force."""
    low = data.translate(FOLD)
    starts = set()
    for nd in needles:
        f = nd.translate(FOLD)
        i = low.find(f)
        while i != -1:
            starts.add(data.rfind(b"\n", 0, i) + 1)
            i = low.find(f, i + 1)
    return sorted((s, data.count(b"\n", 0, s) + 1) for s in starts)


def _hits(path: Path, needles: list[bytes], block: int) -> list[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return logs._find_hits(fd, os.fstat(fd).st_size, needles, block)
    finally:
        os.close(fd)


def _mixed_case(rnd: random.Random, s: str) -> str:
    return "".join(c.upper() if rnd.random() < 0.5 else c for c in s)


def _random_file(rnd: random.Random, needles: list[str], size: int) -> bytes:
    """Lines of random length and content, the needles dropped in at random places and in random case,
    now and then with a CR, a control byte that folds onto a needle character, or no final newline."""
    out = bytearray()
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_:\"{} ,.ABCDEFXYZ\r\t\x0d\x10\x13"
    while len(out) < size:
        line = bytearray(rnd.choice(alphabet) for _ in range(rnd.choice([0, 1, 5, 30, 90, 400, 2500])))
        for _ in range(rnd.choice([0, 0, 0, 1, 2])):
            nd = rnd.choice(needles)
            nd = _mixed_case(rnd, nd) if rnd.random() < 0.3 else nd
            if rnd.random() < 0.1:  # fold superset: '\r' (0x0d) folds onto '-', 0x10-0x19 onto digits
                nd = nd.replace("-", "\r")
            at = rnd.randrange(len(line) + 1)
            line[at:at] = nd.encode()
        out += line + b"\n"
    if rnd.random() < 0.5:
        out = out[:-1]  # no trailing newline
    return bytes(out)


NEEDLE_SETS = [
    [TARGET],
    [TARGET, "7242c19e0c8e4b5c9d393a1f1c1f5e21"],  # a UUID and a 32-hex id
    ["abc1234"],  # the shortest needle searched by sampled words (stride 4)
    ["abc12345678", TARGET],  # two lengths: the stride of the shorter one
    ["ab12", TARGET],  # shorter than 7 bytes: the folded find
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("needles", NEEDLE_SETS)
def test_search_finds_the_lines_a_folded_find_finds(tmp_path: Path, seed: int, needles: list[str]) -> None:
    rnd = random.Random(seed)
    data = _random_file(rnd, needles, rnd.choice([3000, 20000, 70000]))
    path = tmp_path / "x.log"
    path.write_bytes(data)
    expected = _oracle(data, [n.encode() for n in needles])
    assert expected  # the needles were dropped in
    for block in (4, 32, 40, 100, 1024, 4099, 1 << 20):
        assert _hits(path, [n.encode() for n in needles], block) == expected, block


@pytest.mark.parametrize("block", [32, 64, 1024])
def test_search_finds_a_needle_at_every_offset_across_a_block_edge(tmp_path: Path, block: int) -> None:
    needle = TARGET.encode()
    for shift in range(-len(needle) - 1, 2):
        for upper in (False, True):
            at = 3 * block + shift
            data = bytearray(b"x" * (6 * block))
            data[block : block + 1] = b"\n"
            data[at : at + len(needle)] = needle.upper() if upper else needle
            data = data[: 6 * block]
            path = tmp_path / "edge.log"
            path.write_bytes(bytes(data))
            assert _hits(path, [needle], block) == _oracle(bytes(data), [needle]), (shift, upper)


def test_search_finds_needles_at_the_first_and_last_byte(tmp_path: Path) -> None:
    needle = TARGET.encode()
    for data in (needle, needle + b"\n", b"\n" + needle, needle + b"\nmiddle\n" + needle.upper(),
                 b"a\n\n" + needle[:-1], needle + needle):
        path = tmp_path / "ends.log"
        path.write_bytes(data)
        for block in (32, 64, 1 << 20):
            assert _hits(path, [needle], block) == _oracle(data, [needle]), (data, block)
    path.write_bytes(b"")
    assert _hits(path, [needle], 1024) == []


@pytest.mark.parametrize("block", [32, 64])
def test_search_counts_lines_of_a_fold_match_across_a_newline_and_a_block_edge(tmp_path: Path, block: int) -> None:
    # '\n' folds onto '*': a needle with '*' matches across a line end (the fold's superset), and the
    # line number of the line it starts on still counts every newline before it
    needle = b"ab*cdefghijk"
    for at in range(block - len(needle), block + 2):
        data = bytearray(b"y\n" * (2 * block))
        data[at : at + len(needle)] = b"ab\ncdefghijk"
        path = tmp_path / "star.log"
        path.write_bytes(bytes(data))
        assert _hits(path, [needle], block) == _oracle(bytes(data), [needle]), at


def test_search_of_a_needle_whose_words_are_everywhere(tmp_path: Path) -> None:
    # the other batches' ids share the target's words ("0000"): blocks full of candidates are searched
    # by a plain find, with the same result
    target = str(uuid.UUID(int=0x42))
    lines = [f'{{"batch_id": "{uuid.UUID(int=k)}", "n": "{"0" * (k % 50)}"}}' for k in range(3000)]
    lines[1234] = lines[1234].replace(str(uuid.UUID(int=1234)), target.upper())
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "zeros.log"
    path.write_bytes(data)
    expected = _oracle(data, [target.encode()])
    assert [n for _, n in expected] == [67, 1235]
    for block in (64, 4096, 1 << 20):
        assert _hits(path, [target.encode()], block) == expected


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


@pytest.mark.parametrize("block", [1024, 1056])
def test_scoped_read_of_an_id_across_a_search_block_edge(tmp_path: Path, block: int) -> None:
    t0 = datetime(2025, 11, 20, 18, 41, 0, tzinfo=UTC)
    head = '{"level": "info", "event": "Processing event", "logger_name": "els", "extra": {"batch_id": "'
    for shift in (-40, -36, -20, -1, 0, 1, 7):
        lines = []
        size = 0
        for i in range(60):
            t = t0 + timedelta(seconds=3 * i)
            line = f"{_stamp(t)} {head}{uuid.UUID(int=i)}\"}}}}"
            if i == 30:  # pad so that the target starts `shift` bytes from a block edge
                prefix = f"{_stamp(t)} {head}"
                edge = -(-(size + len(prefix)) // block) * block
                pad = edge + shift - size - len(prefix)
                pad += block if pad < 0 else 0
                line = f"{_stamp(t)} " + head.replace('"event": "', '"event": "' + "p" * pad) + TARGET + '"}}'
            lines.append(line)
            size += len(line) + 1
        lines.append(f"{_stamp(t0 + timedelta(seconds=400))} last line mentions {TARGET.upper()}")
        path = tmp_path / "w.log"
        path.write_text("\n".join(lines))  # no trailing newline
        full = parse_file(path, container=WORKER)
        expected = scope_filter(full, [TARGET])
        assert sorted(expected["line_no"].tolist()) == [31, 61]
        got = read_scoped(path, [TARGET], container=WORKER, block_bytes=block)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
