"""LokiSource against FakeLoki over real HTTP on localhost."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from huledu_forensics import model
from huledu_forensics.errors import ConfigError, SourceUnavailable
from huledu_forensics.logs import parse_lines, read_scoped, scope_filter
from huledu_forensics.sources.base import LogLine, LogSource, Window
from huledu_forensics.sources.files import FilesSource, docker_stamp, split_docker_stamp, to_ns
from huledu_forensics.sources.loki import LokiSource, regex_alternation
from huledu_forensics.testing import FakeLoki
from huledu_forensics.world import load_world_dir
from tests.support.corpus import CORPUS_DIR, require_corpus
from tests.test_logs_scoped import TARGET, _generate

SEED = CORPUS_DIR / "seed-variant-a"
T0 = datetime(2025, 11, 20, 18, 0, tzinfo=UTC)
WIDE = Window(T0 - timedelta(days=1), T0 + timedelta(days=10))
pytestmark = pytest.mark.timeout(60)

APP = next(c.name for c in model.CONTAINERS.values() if c.role == "worker")


@pytest.fixture()
def loki():
    with FakeLoki() as fake:
        yield fake


def _ns(seconds: float) -> int:
    return to_ns(T0) + int(seconds * 1_000_000_000)


def _stamps(lines: list[LogLine]) -> list[int]:
    out = []
    for ln in lines:
        split = split_docker_stamp(ln.text)
        assert split is not None, ln.text
        out.append(split[0])
    return out


def test_loki_source_implements_the_log_source_protocol(loki):
    assert isinstance(LokiSource(loki.url), LogSource)


def test_corpus_world_round_trips_through_loki_exactly(loki):
    """Every line of every container comes back once, stamped as docker logs would print it."""
    require_corpus(SEED.name)
    world = load_world_dir(SEED)
    loki.load_world(world)
    src = LokiSource(loki.url, page_limit=97)
    assert src.containers(WIDE) == sorted(world.logs)
    files = FilesSource(SEED / "logs")
    for container in world.logs:
        got = list(src.iter_lines(container, WIDE))
        want = [ln.text for ln in files.iter_lines(container, Window())]
        assert sorted(ln.text for ln in got) == sorted(want), container
        assert _stamps(got) == sorted(_stamps(got)), f"{container} not in time order"
        assert {ln.stream for ln in got} == {"combined"}  # HuleEdu's promtail keeps no stream label
    assert src.warnings == []


def test_load_world_labels_streams_like_huleedu_promtail(loki):
    require_corpus(SEED.name)
    world = load_world_dir(SEED)
    loki.load_world(world)
    with urllib.request.urlopen(f"{loki.url}/loki/api/v1/labels?start=0&end={to_ns(T0) * 2}") as r:
        labels = json.load(r)
    assert labels["status"] == "success"
    assert {"container", "service", "level"} <= set(labels["data"])
    values = f"{loki.url}/loki/api/v1/label/service/values?start=0&end={to_ns(T0) * 2}"
    with urllib.request.urlopen(values) as r:
        services = json.load(r)["data"]
    assert model.CONTAINERS[APP].compose_service in services


def test_paging_with_shared_timestamps_at_page_boundary_loses_and_duplicates_nothing(loki):
    # 10 per page; entries 8..13 share one nanosecond, so the boundary falls inside that group
    entries = [(_ns(i), f"line {i:02d}") for i in range(8)]
    entries += [(_ns(8), f"same-ns {i}") for i in range(6)]
    entries += [(_ns(9 + i), f"line {14 + i:02d}") for i in range(23)]
    loki.push({"container": APP}, entries)
    src = LokiSource(loki.url, page_limit=10)
    got = list(src.iter_lines(APP, WIDE))
    texts = [ln.text.split(" ", 1)[1] for ln in got]
    assert sorted(texts) == sorted(t for _, t in entries)
    assert len(texts) == len(set(texts)) == 37
    assert _stamps(got) == sorted(_stamps(got))
    ranges = [r for r in loki.requests if r.path.endswith("/query_range")]
    assert len(ranges) >= 4
    assert all(r.params["direction"] == "forward" and r.params["limit"] == "10" for r in ranges)
    # each page after the first starts at the previous page's last entry (start is inclusive)
    assert int(ranges[1].params["start"]) == _ns(8)
    assert src.warnings == []


def test_stdout_and_stderr_streams_are_merged_in_time_order(loki):
    loki.push({"container": APP, "stream": "stdout"}, [(_ns(0), "out a"), (_ns(2), "out b")])
    loki.push({"container": APP, "stream": "stderr"}, [(_ns(1), "err a"), (_ns(3), "err b")])
    loki.push({"container": "other"}, [(_ns(1.5), "not mine")])
    got = list(LokiSource(loki.url, page_limit=3).iter_lines(APP, WIDE))
    assert [(ln.stream, ln.text) for ln in got] == [
        ("stdout", f"{docker_stamp(_ns(0))} out a"), ("stderr", f"{docker_stamp(_ns(1))} err a"),
        ("stdout", f"{docker_stamp(_ns(2))} out b"), ("stderr", f"{docker_stamp(_ns(3))} err b")]


def test_scope_ids_are_pushed_down_as_an_escaped_regex_line_filter(loki):
    batch = TARGET  # the corpus world's stuck batch
    odd = "file.v1+(x)"
    loki.push({"container": APP}, [
        (_ns(0), f'{{"event": "registered", "batch_id": "{batch}"}}'),
        (_ns(1), '{"event": "unrelated"}'),
        (_ns(2), "upload file.v1+(x) stored"),
        (_ns(3), "upload fileXv1+(x) stored"),  # '.' must not act as a wildcard
        (_ns(4), f"legacy {batch.upper()}"),  # ids match regardless of case
    ])
    src = LokiSource(loki.url)
    got = list(src.iter_lines(APP, WIDE, contains_any=[batch, odd]))
    assert [ln.text.split(" ", 1)[1] for ln in got] == [
        f'{{"event": "registered", "batch_id": "{batch}"}}', "upload file.v1+(x) stored",
        f"legacy {batch.upper()}"]
    served = loki.queries()[-1]
    assert served.startswith(f'{{container="{APP}"}} |~ "(?i)')
    assert batch in served and "file\\\\.v1\\\\+\\\\(x\\\\)" in served
    assert regex_alternation(["a.b", "c|d"]) == "a\\.b|c\\|d"


def test_window_start_is_inclusive_and_end_exclusive(loki):
    loki.push({"container": APP}, [(_ns(i), f"l{i}") for i in range(5)])
    win = Window(T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))
    got = list(LokiSource(loki.url).iter_lines(APP, win))
    assert [ln.text.split(" ", 1)[1] for ln in got] == ["l1", "l2"]


def test_server_max_entries_limit_is_adopted_with_a_warning_and_nothing_is_lost():
    with FakeLoki(max_entries_limit_per_query=40) as loki:
        loki.push({"container": APP}, [(_ns(i), f"l{i}") for i in range(150)])
        warnings: list[str] = []
        src = LokiSource(loki.url, page_limit=1000, on_warning=warnings.append)
        got = list(src.iter_lines(APP, WIDE))
        assert len(got) == 150
        statuses = [(r.status, r.params.get("limit")) for r in loki.requests]
        assert statuses[0] == (400, "1000")
        assert all(s == (200, "40") for s in statuses[1:])
        assert len(src.warnings) == 1 and "40" in src.warnings[0]
        assert warnings == src.warnings


def test_max_entries_400_text_matches_loki(loki):
    loki.max_entries_limit_per_query = 5000
    url = f"{loki.url}/loki/api/v1/query_range?query=%7Bcontainer%3D%22x%22%7D&limit=6000"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url)
    assert info.value.code == 400
    assert "max entries limit per query exceeded" in info.value.read().decode()


def test_query_longer_than_server_max_query_length_is_split_with_a_warning():
    with FakeLoki(max_query_length=timedelta(hours=1)) as loki:
        loki.push({"container": APP}, [(_ns(i * 1800), f"l{i}") for i in range(10)])  # over 5 h
        src = LokiSource(loki.url, max_query_span=timedelta(hours=24), page_limit=3)
        got = list(src.iter_lines(APP, Window(T0, T0 + timedelta(hours=6))))
        assert [ln.text.split(" ", 1)[1] for ln in got] == [f"l{i}" for i in range(10)]
        assert any("max_query_length" in w for w in src.warnings)
        ok = [r for r in loki.requests if r.status == 200]
        assert all(int(r.params["end"]) - int(r.params["start"]) <= 3600 * 10**9 for r in ok)


def test_more_same_time_entries_than_a_page_warns_and_terminates(loki):
    loki.push({"container": APP}, [(_ns(0), f"burst {i}") for i in range(7)] + [(_ns(1), "after")])
    src = LokiSource(loki.url, page_limit=5)
    got = [ln.text.split(" ", 1)[1] for ln in src.iter_lines(APP, WIDE)]
    assert got[-1] == "after" and len(got) == len(set(got))
    assert any("share the time" in w for w in src.warnings)


def test_max_lines_cap_warns(loki):
    loki.push({"container": APP}, [(_ns(i), f"l{i}") for i in range(30)])
    src = LokiSource(loki.url, page_limit=10, max_lines=12)
    assert len(list(src.iter_lines(APP, WIDE))) == 12
    assert any("max_lines" in w for w in src.warnings)


def test_open_window_start_reads_lookback_and_warns(loki):
    now = datetime.now(UTC)
    loki.push({"container": APP}, [(now - timedelta(days=40), "too old"),
                                   (now - timedelta(minutes=5), "recent")])
    src = LokiSource(loki.url, lookback=timedelta(days=30))
    assert [ln.text.split(" ", 1)[1] for ln in src.iter_lines(APP, Window())] == ["recent"]
    assert any("no start" in w for w in src.warnings)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_loki_raises_source_unavailable_without_leaking_credentials():
    port = _closed_port()
    src = LokiSource(f"http://reader:s3cret-pw@127.0.0.1:{port}", timeout=2)
    with pytest.raises(SourceUnavailable) as info:
        list(src.iter_lines(APP, WIDE))
    msg = str(info.value)
    assert f"127.0.0.1:{port}" in msg and "ready" in msg and "\n" not in msg
    assert "s3cret" not in msg and "s3cret" not in src.name
    with pytest.raises(SourceUnavailable):
        src.containers(WIDE)
    ok, why = src.ready()
    assert ok is False and "s3cret" not in why


def test_ready_reports_loki_state(loki):
    src = LokiSource(loki.url)
    assert src.ready() == (True, "ready")
    loki.ready = False
    ok, why = src.ready()
    assert ok is False and "503" in why


def test_a_url_that_is_not_loki_gives_a_clear_error(loki):
    src = LokiSource(loki.url + "/not-loki")
    with pytest.raises(SourceUnavailable, match="HTTP 404"):
        list(src.iter_lines(APP, WIDE))


@pytest.mark.parametrize("bad", ["localhost:3100", "ftp://loki", "http://", ""])
def test_malformed_url_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="http"):
        LokiSource(bad)


# ---------------------------------------------------------------- the fake itself (shipped for others)
def _get(loki: FakeLoki, path: str, **params: object) -> tuple[int, object]:
    url = f"{loki.url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_fake_push_endpoint_and_logql_subset(loki):
    body = json.dumps({"streams": [
        {"stream": {"container": "a", "level": "info"},
         "values": [[str(_ns(0)), "alpha one"], [str(_ns(1)), "alpha two"]]},
        {"stream": {"container": "a", "level": "error"}, "values": [[str(_ns(2)), "alpha boom"]]},
        {"stream": {"container": "b", "level": "info"}, "values": [[str(_ns(3)), "beta one"]]},
    ]}).encode()
    req = urllib.request.Request(f"{loki.url}/loki/api/v1/push", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 204
    start, end = _ns(0), _ns(10)

    def lines(q: str, **kw: object) -> list[str]:
        status, doc = _get(loki, "/loki/api/v1/query_range", query=q, start=start, end=end, **kw)
        assert status == 200, doc
        assert doc["status"] == "success" and doc["data"]["resultType"] == "streams"
        vals = [(int(v[0]), v[1]) for s in doc["data"]["result"] for v in s["values"]]
        return [t for _, t in sorted(vals, reverse=kw.get("direction") != "forward")]

    assert lines('{container="a"}', direction="forward") == ["alpha one", "alpha two", "alpha boom"]
    assert lines('{container="a"}') == ["alpha boom", "alpha two", "alpha one"]  # default backward
    assert lines('{container="a"}', limit=1) == ["alpha boom"]
    assert lines('{container=~"a|b", level!="error"} |= "one"') == ["beta one", "alpha one"]
    assert lines('{container!~"b"} != "two" |~ `o+m`') == ["alpha boom"]
    assert lines('{container="a"} !~ "one|two"') == ["alpha boom"]
    status, text = _get(loki, "/loki/api/v1/query_range", query="container=a")
    assert status == 400 and "parse error" in text
    status, doc = _get(loki, "/loki/api/v1/label/container/values", start=start, end=end)
    assert doc == {"status": "success", "data": ["a", "b"]}
    status, doc = _get(loki, "/loki/api/v1/label/container/values")  # default: last 6 h only
    assert doc == {"status": "success", "data": []}


# ---------------------------------------------------------------- live through Loki vs files replay
OTHER = "5a0c1d2e-3f40-4152-8637-48596a7b8c9d"
SAME = ["docker_ts", "raw", "level", "message", "batch_id", "correlation_id"]


def _worker_log() -> list[tuple[int, str]]:
    """A worker log: a scoped error followed by an id-less traceback and an id-less error, another
    batch's failure with its own id-less error, and a later scoped line alone."""
    def js(level: str, event: str, **extra: object) -> str:
        return json.dumps({"level": level, "event": event, "logger_name": "els.kafka.consumer",
                           "extra": extra})
    lines = [
        (0.0, js("info", "Processing event", batch_id=OTHER)),
        (0.5, js("info", "Processing event", batch_id=TARGET)),
        (0.6, js("error", "Handler failed", batch_id=TARGET)),
        (0.6001, "Traceback (most recent call last):"),
        (0.6002, '  File "/app/handler.py", line 88, in handle'),
        (0.6003, "psycopg.errors.InvalidTextRepresentation: invalid input value for enum"),
        (0.9, js("error", "offset not committed", partition=2, offset=17)),
        (40.0, js("info", "Processing event", batch_id=OTHER)),
        (40.1, js("error", "Handler failed", batch_id=OTHER)),
        (40.2, js("error", "offset not committed", partition=2, offset=18)),
        (90.0, js("warning", "Retrying", batch_id=TARGET)),
        (300.0, js("info", "heartbeat")),
    ]
    return [(_ns(s), text) for s, text in lines]


def _scoped(texts: list[str]) -> pd.DataFrame:
    return scope_filter(parse_lines(texts, container=APP), [TARGET])[SAME].reset_index(drop=True)


def test_follow_keeps_the_idless_traceback_files_replay_keeps(loki, tmp_path):
    """Live through Loki and a replay of the same log file keep the same scoped lines."""
    entries = _worker_log()
    path = tmp_path / f"{APP}.log"
    path.write_text("".join(f"{docker_stamp(ns)} {text}\n" for ns, text in entries))
    loki.push({"container": APP}, entries)

    replay = read_scoped(path, [TARGET], container=APP)[SAME].reset_index(drop=True)
    src = LokiSource(loki.url, page_limit=3)
    live = [ln.text for ln in src.iter_lines(APP, WIDE, contains_any=[TARGET], follow=True)]
    pd.testing.assert_frame_equal(_scoped(live), replay)
    assert "psycopg.errors.InvalidTextRepresentation" in " ".join(replay["raw"])
    assert "offset not committed" in set(replay["message"])
    # the files source's own stretches hold the same scoped lines
    files = [ln.text for ln in FilesSource(tmp_path).iter_lines(APP, WIDE, contains_any=[TARGET],
                                                                  follow=True)]
    pd.testing.assert_frame_equal(_scoped(files), replay)
    # bounded: the lines far from any match were never asked for (heartbeat, the other batch at 40 s)
    assert not any("heartbeat" in t or '"offset": 18' in t for t in live)
    queries = loki.queries()
    assert queries[0].endswith(f'|~ "(?i){TARGET}"') and f'{{container="{APP}"}}' in queries
    # the line filter alone loses the traceback and the id-less error: what follow is for
    pushed = [ln.text for ln in src.iter_lines(APP, WIDE, contains_any=[TARGET])]
    assert len(_scoped(pushed)) < len(replay)
    assert src.warnings == []


def test_follow_reads_back_to_the_head_of_a_block_whose_line_naming_the_id_comes_late(loki, tmp_path):
    """A traceback whose frame names the id seconds after its head line: the head is read, as in a file."""
    head = json.dumps({"level": "error", "event": "Handler failed", "logger_name": "els.kafka.consumer"})
    lines = [
        (0.0, json.dumps({"level": "info", "event": "Processing event", "batch_id": OTHER})),
        (10.0, head),
        (10.0001, "Traceback (most recent call last):"),
        (14.0, f'  File "/app/handler.py", line 88, in handle  # batch {TARGET}'),
        (14.0001, "psycopg.errors.InvalidTextRepresentation: invalid input value for enum"),
        (300.0, json.dumps({"level": "info", "event": "heartbeat"})),
    ]
    entries = [(_ns(t), text) for t, text in lines]
    path = tmp_path / f"{APP}.log"
    path.write_text("".join(f"{docker_stamp(ns)} {text}\n" for ns, text in entries))
    loki.push({"container": APP}, entries)
    replay = read_scoped(path, [TARGET], container=APP)[SAME].reset_index(drop=True)
    assert "Traceback (most recent call last):" in set(replay["message"])  # files keep the block whole
    src = LokiSource(loki.url, page_limit=3)
    live = [ln.text for ln in src.iter_lines(APP, WIDE, contains_any=[TARGET], follow=True)]
    assert any("Traceback (most recent" in t for t in live)  # 4 s before the line naming the id
    assert not any("heartbeat" in t or OTHER in t for t in live)  # still bounded around the match
    pd.testing.assert_frame_equal(_scoped(live), replay)
    assert src.warnings == []


def test_follow_looks_back_for_a_block_head_no_further_than_its_bound(loki, monkeypatch):
    from huledu_forensics.sources import loki as lokimod

    loki.push({"container": APP}, [(_ns(0.0), json.dumps({"event": "Handler failed"})),
                                   (_ns(0.001), "Traceback (most recent call last):"),
                                   (_ns(9.0), f"  File handler.py, in handle  # batch {TARGET}")])
    monkeypatch.setattr(lokimod, "BLOCK_LOOKBACK", timedelta(seconds=5))
    src = LokiSource(loki.url)
    texts = [ln.text for ln in src.iter_lines(APP, WIDE, contains_any=[TARGET], follow=True)]
    assert len(texts) == 1 and TARGET in texts[0]
    assert any("no block start within 0:00:05" in w for w in src.warnings)  # said, not silently cut


@pytest.mark.parametrize("seed", [11, 12])
def test_follow_matches_files_replay_on_a_busy_log(loki, tmp_path, seed):
    """Tracebacks naming the id in a frame, id-less errors, PostgreSQL blocks, other batches."""
    path = tmp_path / f"{APP}.log"
    _generate(path, seed=seed, n=900, crlf_every=0)
    entries = []
    for line in path.read_text().splitlines():
        split = split_docker_stamp(line)
        assert split is not None
        entries.append(split)
    loki.push({"container": APP}, entries)
    replay = read_scoped(path, [TARGET], container=APP)
    live = [ln.text for ln in LokiSource(loki.url, page_limit=50).iter_lines(
        APP, WIDE, contains_any=[TARGET], follow=True)]
    got = scope_filter(parse_lines(live, container=APP), [TARGET])
    pd.testing.assert_frame_equal(got[SAME].reset_index(drop=True), replay[SAME].reset_index(drop=True))
    assert len(replay) > 0 and len(live) < len(entries)


def test_follow_is_bounded_by_max_lines_and_the_window(loki):
    loki.push({"container": APP}, [(_ns(i), f"{TARGET} l{i}" if i % 100 == 0 else f"l{i}")
                                   for i in range(1000)])
    src = LokiSource(loki.url, page_limit=10, max_lines=25)
    got = list(src.iter_lines(APP, WIDE, contains_any=[TARGET], follow=True))
    assert len(got) == 25 and any("max_lines" in w for w in src.warnings)
    win = Window(T0 + timedelta(seconds=199), T0 + timedelta(seconds=201))
    texts = [ln.text.split(" ", 1)[1] for ln in LokiSource(loki.url).iter_lines(
        APP, win, contains_any=[TARGET], follow=True)]
    assert texts == ["l199", f"{TARGET} l200"]


@pytest.mark.postgres
def test_live_collection_through_loki_keeps_what_collection_from_files_keeps(
        pg_admin_dsn: str, tmp_path) -> None:
    """snapshot() of one batch with the logs behind Loki writes the same log lines as with files."""
    from huledu_forensics.bundle import Bundle
    from huledu_forensics.collect import snapshot
    from tests.support.pg_world import DatabaseFactory, load_world_into_postgres, profile_for

    require_corpus(SEED.name)
    world = load_world_dir(SEED)
    batch = TARGET  # the corpus world's stuck batch
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        profile = profile_for(load_world_into_postgres(world, factory))
        with FakeLoki() as fake:
            fake.load_world(world)
            b_files = snapshot(profile, batch, tmp_path / "files", progress=False,
                               log_sources=[FilesSource(SEED / "logs")])
            b_loki = snapshot(profile, batch, tmp_path / "loki", progress=False,
                              log_sources=[LokiSource(fake.url)], since=T0 - timedelta(days=1))
    finally:
        factory.drop_all()

    def lines(b: Bundle) -> dict[str, list[str]]:
        return {c: list(b.iter_log_lines(c, s)) for c, s, _p in b.log_files()}

    got, want = lines(b_loki), lines(b_files)
    assert got == want
    # an id-less line kept only because it follows a scoped one (a line filter alone drops it)
    assert any("offset not committed" in ln for ln in got["huleedu_essay_lifecycle_worker"])


def test_live_snapshot_keeps_the_blocks_replay_keeps(loki, tmp_path):
    """snapshot() through files and through Loki writes exactly the lines read_scoped keeps on the same
    file: the scoped error with its traceback's frame lines, and the id-less error after it."""
    from huledu_forensics.collect import snapshot
    from tests.support.pg_world import profile_for

    entries = _worker_log()
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / f"{APP}.log"
    file_lines = [f"{docker_stamp(ns)} {text}" for ns, text in entries]
    path.write_text("".join(f"{line}\n" for line in file_lines))
    loki.push({"container": APP}, entries)
    replay = read_scoped(path, [TARGET], container=APP)
    want = [file_lines[n - 1] for n in replay["line_no"]]
    assert '  File "/app/handler.py", line 88, in handle' in " ".join(want)  # a frame line, no id
    assert any("offset not committed" in line and "offset\": 17" in line for line in want)
    profile = profile_for({})  # no database: the scope comes from the logs alone
    for name, source in (("files", FilesSource(logs)), ("loki", LokiSource(loki.url))):
        bundle = snapshot(profile, TARGET, tmp_path / name, progress=False, log_sources=[source],
                          since=T0 - timedelta(days=1))
        got = [line for c, s, _p in bundle.log_files() for line in bundle.iter_log_lines(c, s)]
        assert got == want, name
