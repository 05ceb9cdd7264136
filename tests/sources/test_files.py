"""FilesSource over captured log directories: the corpus, .gz, split streams, windows, plain lines."""

from __future__ import annotations

import gzip
import itertools
import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from huledu_forensics import model
from huledu_forensics.errors import SourceUnavailable
from huledu_forensics.sources.base import LogSource, Window
from huledu_forensics.sources.files import FilesSource, docker_stamp, split_docker_stamp, to_ns
from tests.support.corpus import CORPUS_DIR, require_corpus

WORLDS = sorted(p for p in CORPUS_DIR.glob("*") if (p / "logs").is_dir()) or [CORPUS_DIR / "seed-variant-a"]
T0 = datetime(2025, 11, 20, 18, 0, tzinfo=UTC)
APP = next(c.name for c in model.CONTAINERS.values() if c.role == "worker")
DB = next(c.name for c in model.CONTAINERS.values() if c.role == "db")


def _stamp(seconds: float) -> str:
    return docker_stamp(to_ns(T0) + int(seconds * 1_000_000_000))


def _body(line: str) -> str:
    return line.split(" ", 1)[1] if split_docker_stamp(line) else line


def test_docker_stamp_round_trips_nanoseconds():
    ns = to_ns(T0) + 123_456_789
    assert docker_stamp(ns) == "2025-11-20T18:00:00.123456789Z"
    assert split_docker_stamp(docker_stamp(ns) + " hello") == (ns, "hello")
    assert split_docker_stamp("2025-11-20T19:00:00.5+01:00 x") == (to_ns(T0) + 500_000_000, "x")
    assert split_docker_stamp("2025-11-20T18:31:36.179015514Z ") == (
        to_ns(datetime(2025, 11, 20, 18, 31, 36, tzinfo=UTC)) + 179_015_514, "")
    assert split_docker_stamp("2025-11-20 18:31:36.227 UTC [1] LOG: x") is None


@pytest.mark.parametrize("world", WORLDS, ids=lambda p: p.name)
def test_corpus_logs_are_read_line_for_line(world: Path):
    require_corpus(world.name)
    src = FilesSource(world)  # the world directory itself is accepted; logs/ is found
    assert isinstance(src, LogSource)
    assert src.root == world / "logs"
    files = sorted(world.glob("logs/*.log"))
    assert src.containers() == sorted(p.name[: -len(".log")] for p in files)
    for path in files:
        want = path.read_text(encoding="utf-8").splitlines()
        got = list(src.iter_lines(path.name[: -len(".log")], Window()))
        assert [ln.text for ln in got] == want, path.name
        assert {ln.stream for ln in got} == {"combined"}
    assert src.warnings == []


def test_gz_files_and_split_streams_are_read_and_merged_in_time_order(tmp_path: Path):
    with gzip.open(tmp_path / f"{APP}.stdout.log.gz", "wt") as fh:
        fh.write(f"{_stamp(0)} out a\n{_stamp(2)} out b\n")
    (tmp_path / f"{APP}.stderr.log").write_text(f"{_stamp(1)} err a\n{_stamp(3)} err b\n")
    with gzip.open(tmp_path / f"{DB}.gz", "wt") as fh:
        fh.write(f"{_stamp(5)} db line\n")
    (tmp_path / "notes.txt").write_text("not a log\n")
    src = FilesSource(tmp_path)
    assert src.containers() == sorted([APP, DB])
    assert sorted(src.streams(APP)) == ["stderr", "stdout"]
    got = [(ln.stream, _body(ln.text)) for ln in src.iter_lines(APP, Window())]
    assert got == [("stdout", "out a"), ("stderr", "err a"), ("stdout", "out b"), ("stderr", "err b")]
    assert [(ln.stream, _body(ln.text)) for ln in src.iter_lines(DB, Window())] == [("combined", "db line")]


def test_bundle_layout_is_read(tmp_path: Path):
    (tmp_path / APP).mkdir()
    (tmp_path / APP / "stderr.log").write_text(f"{_stamp(1)} boom\n")
    src = FilesSource(tmp_path)
    assert src.containers() == [APP]
    assert [(ln.stream, ln.text) for ln in src.iter_lines(APP, Window())] == [
        ("stderr", f"{_stamp(1)} boom")]


def test_window_filters_by_docker_stamp_start_inclusive_end_exclusive(tmp_path: Path):
    (tmp_path / f"{APP}.log").write_text("".join(f"{_stamp(i)} l{i}\n" for i in range(6)))
    src = FilesSource(tmp_path)
    win = Window(T0 + timedelta(seconds=2), T0 + timedelta(seconds=4))
    assert [_body(ln.text) for ln in src.iter_lines(APP, win)] == ["l2", "l3"]
    assert [_body(ln.text) for ln in src.iter_lines(APP, Window(since=T0 + timedelta(seconds=4)))] == [
        "l4", "l5"]
    assert [_body(ln.text) for ln in src.iter_lines(APP, Window(until=T0 + timedelta(seconds=1)))] == ["l0"]


def test_contains_any_keeps_only_matching_lines(tmp_path: Path):
    (tmp_path / f"{APP}.log").write_text(
        f"{_stamp(0)} batch abc registered\n{_stamp(1)} other\n{_stamp(2)} essay XYZ ok\n")
    src = FilesSource(tmp_path)
    assert [_body(ln.text) for ln in src.iter_lines(APP, Window(), contains_any=["abc", "xyz"])] == [
        "batch abc registered", "essay XYZ ok"]
    assert len(list(src.iter_lines(APP, Window(), contains_any=[]))) == 3


def test_plain_continuation_lines_take_the_previous_stamp_and_warn(tmp_path: Path):
    (tmp_path / f"{APP}.log").write_text(
        f"{_stamp(0)} Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        f"{_stamp(1)} ValueError: boom\n")
    src = FilesSource(tmp_path)
    got = [ln.text for ln in src.iter_lines(APP, Window())]
    assert got == [f"{_stamp(0)} Traceback (most recent call last):",
                   f'{_stamp(0)}   File "x.py", line 1, in <module>', f"{_stamp(1)} ValueError: boom"]
    assert len(src.warnings) == 1 and "1 line(s)" in src.warnings[0] and APP in src.warnings[0]


def test_plain_files_use_inner_timestamps_then_file_mtime(tmp_path: Path):
    (tmp_path / f"{APP}.log").write_text(
        '{"event": "a", "timestamp": "2025-11-20T18:00:05.250000Z", "level": "info"}\n'
        "no time here\n"
        "2025-11-20 18:00:07.000 UTC [1] LOG:  checkpoint starting\n")
    mtime_file = tmp_path / f"{DB}.log"
    mtime_file.write_text("no time at all\n\n")
    mt = T0 + timedelta(hours=1)
    os.utime(mtime_file, ns=(to_ns(mt), to_ns(mt)))
    src = FilesSource(tmp_path)
    got = [ln.text for ln in src.iter_lines(APP, Window())]
    assert got[0].startswith("2025-11-20T18:00:05.250000000Z {")
    assert got[1] == "2025-11-20T18:00:05.250000000Z no time here"
    assert got[2].startswith("2025-11-20T18:00:07.000000000Z 2025-11-20 18:00:07.000 UTC")
    assert [ln.text for ln in src.iter_lines(DB, Window())] == [f"{docker_stamp(to_ns(mt))} no time at all"]
    assert any("file mtime" in w for w in src.warnings) and any("inner timestamp" in w for w in src.warnings)
    # the inferred stamps are what the window filters on
    assert len(list(src.iter_lines(APP, Window(since=T0 + timedelta(seconds=6))))) == 1


def test_truncated_gz_yields_what_was_readable_and_warns(tmp_path: Path):
    data = gzip.compress("".join(f"{_stamp(i)} l{i}\n" for i in range(2000)).encode())
    (tmp_path / f"{APP}.log.gz").write_bytes(data[: len(data) // 2])
    src = FilesSource(tmp_path)
    got = list(src.iter_lines(APP, Window()))
    assert 0 < len(got) < 2000
    assert any("could not be read to the end" in w for w in src.warnings)


def test_missing_directory_and_unknown_container_give_clear_errors(tmp_path: Path):
    with pytest.raises(SourceUnavailable, match="does not exist"):
        FilesSource(tmp_path / "nope")
    (tmp_path / f"{APP}.log").write_text(f"{_stamp(0)} x\n")
    with pytest.raises(SourceUnavailable, match=f"No log file for container 'ghost'.*{APP}"):
        FilesSource(tmp_path).iter_lines("ghost", Window())


def test_files_are_streamed_not_read_whole(tmp_path: Path):
    path = tmp_path / f"{APP}.log"
    with open(path, "w") as fh:
        for i in range(60_000):
            fh.write(f"{_stamp(i / 1000)} {'x' * 90} {i}\n")  # ~6 MB
    src = FilesSource(tmp_path)
    tracemalloc.start()
    try:
        first = list(itertools.islice(src.iter_lines(APP, Window()), 1000))
        count = sum(1 for _ in src.iter_lines(APP, Window(), contains_any=["no-such-id"]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(first) == 1000 and count == 0
    assert peak < 3_000_000, f"peak {peak} bytes: the file was not streamed"


WINDOW_START = datetime(2025, 11, 20, tzinfo=UTC)


def test_every_log_source_takes_follow_as_the_protocol_declares_it(tmp_path: Path) -> None:
    """Collection passes ``follow`` to whichever source it holds; the protocol says so, every source
    accepts it (Docker yields every line with it), and collection passes it through unchanged."""
    import inspect

    from huledu_forensics import collect
    from huledu_forensics.sources.docker import DockerSource
    from huledu_forensics.sources.loki import LokiSource

    for cls in (LogSource, DockerSource, FilesSource, LokiSource):
        p = inspect.signature(cls.iter_lines).parameters.get("follow")
        assert p is not None and p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is False, cls
        w = inspect.signature(cls.containers).parameters.get("window")
        assert w is not None and w.default is None, cls
    asked: list[dict[str, object]] = []

    class Recording:
        name, kind = "rec", "files"

        def containers(self, window: Window | None = None) -> list[str]:
            asked.append({"window": window})
            return ["c"]

        def iter_lines(self, container: str, window: Window, contains_any: object = None, *,
                       follow: bool = False) -> object:
            asked.append({"contains_any": contains_any, "follow": follow})
            return iter(())

    assert isinstance(Recording(), LogSource)
    assert collect._containers_of(Recording(), Window(since=WINDOW_START)) == {"c"}
    assert asked.pop() == {"window": Window(since=WINDOW_START)}  # every source is asked for its window
    list(collect._lines(Recording(), "c", Window(), {"b", "a"}, follow=True))
    list(collect._lines(Recording(), "c", Window(), None))
    assert asked == [{"contains_any": ["a", "b"], "follow": True}, {"contains_any": None, "follow": False}]
