"""DockerSource against a real dockerd holding the seed-variant-a world's containers.

The world is the reference corpus capture of the motivating incident, loaded into busybox containers
named like HuleEdu's. It is adjusted so every state the kit must report is present: the ELS
database's server log goes to stderr (as PostgreSQL's does), the topic-setup one-shot exited 1, the
CJ service was created but never started, one service printed a 40 000-character line (Docker splits
it into 16 KiB messages), and the ELS worker is still running.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

import pytest

from huledu_forensics import model
from huledu_forensics.errors import SourceUnavailable
from huledu_forensics.sources.base import LogSource, StateSource, Window
from huledu_forensics.sources.docker import DockerSource, docker_stamp_ns
from huledu_forensics.world import ContainerState, World, load_world_dir
from tests.support.corpus import CORPUS_DIR, require_corpus
from tests.support.docker_world import container_streams, running_world

pytestmark = pytest.mark.docker

CORPUS = CORPUS_DIR / "seed-variant-a"
BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"

_PG_SERVER_LINE = re.compile(r" UTC \[\d+\] ")


def _container(role: str, service: str) -> str:
    """A HuleEdu container name, read from the model (no literal names outside model/)."""
    return next(c.name for c in model.CONTAINERS.values() if c.service == service and c.role == role)


ELS_DB = _container("db", "els")
ELS_WORKER = _container("worker", "els")
BOS = _container("app", "bos")
TOPIC_SETUP = _container("oneshot", "infra")
CJ = _container("app", "cj")
RAS = _container("app", "ras")
LONG_LINE = '{"event": "' + "x" * 40_000 + f'", "batch_id": "{BATCH}"}}'


def _world() -> World:
    require_corpus("seed-variant-a")
    world = copy.deepcopy(load_world_dir(CORPUS))
    combined = world.logs[ELS_DB]["combined"]
    world.logs[ELS_DB] = {
        "stdout": [l for l in combined if not _PG_SERVER_LINE.search(l)],
        "stderr": [l for l in combined if _PG_SERVER_LINE.search(l)],
    }
    states = {c.name: c for c in world.containers}
    states[TOPIC_SETUP].exit_code = 1
    states[CJ] = ContainerState(name=CJ, state="created", compose_service="cj_assessment_service")
    world.logs[CJ] = {"combined": ["2025-11-20T18:31:40.000000000Z never printed"]}
    states[RAS] = ContainerState(name=RAS, state="exited", exit_code=0)
    world.logs[RAS] = {"stdout": ["2025-11-20T18:31:41.000000000Z before",
                                  f"2025-11-20T18:31:41.100000000Z {LONG_LINE}",
                                  "2025-11-20T18:31:41.200000000Z after"]}
    world.containers = list(states.values())
    return world


@pytest.fixture(scope="module")
def world() -> World:
    return _world()


@pytest.fixture(scope="module")
def live(docker_client, busybox_image, world):
    with running_world(docker_client, busybox_image, world) as containers:
        yield containers


@pytest.fixture(scope="module")
def src(live) -> DockerSource:
    with DockerSource() as s:
        yield s


def _lines(src: DockerSource, name: str, window: Window = Window(), **kw) -> list:
    return list(src.iter_lines(name, window, **kw))


def _body(text: str) -> str:
    return text.split(" ", 1)[1] if " " in text else ""


def test_implements_log_and_state_protocols(src):
    assert isinstance(src, LogSource) and isinstance(src, StateSource)
    assert src.kind == "docker"
    ok, why = src.ready()
    assert ok, why
    assert src.base_url in why


def test_containers_lists_every_world_container(src, world):
    names = set(src.containers())
    assert {c.name for c in world.containers} <= names


def test_stdout_and_stderr_are_kept_apart_and_complete(src, world):
    for name in (ELS_DB, ELS_WORKER, BOS, TOPIC_SETUP):
        want = container_streams(world, name)
        got = _lines(src, name)
        for stream in ("stdout", "stderr"):
            expected = [t for s, t in want if s == stream]
            actual = [_body(l.text) for l in got if l.stream == stream]
            assert actual == expected, (name, stream)
        assert all(l.container == name for l in got)
    db = _lines(src, ELS_DB)
    errors = [l for l in db if l.stream == "stderr" and "essay_status_enum" in l.text]
    assert errors, "the root-cause enum error must be on the ELS database's stderr"
    assert not [l for l in db if l.stream == "stdout" and _PG_SERVER_LINE.search(l.text)]


def test_lines_are_docker_timestamped_and_merged_in_time_order(src):
    got = _lines(src, ELS_DB)
    stamps = [docker_stamp_ns(l.text) for l in got]
    assert None not in stamps
    assert stamps == sorted(stamps)
    first = datetime.fromtimestamp(stamps[0] / 1e9, tz=UTC)
    assert abs(first - datetime.now(UTC)) < timedelta(minutes=10), "Docker's own stamps"


def test_window_since_until_respects_sub_second_bounds(src):
    full = _lines(src, ELS_WORKER)
    ns = [docker_stamp_ns(l.text) for l in full]
    # Bounds strictly inside the run of lines, at microsecond precision, each sharing its second
    # with a line just outside the window (so whole-second rounding would get it wrong).
    def inner(i: int, off: int) -> int:
        while not (ns[i + off] // 10**9 == ns[i] // 10**9 and ns[i + off] != ns[i]):
            i += 1
        return i

    i, j = inner(len(ns) // 4, -1), inner(3 * len(ns) // 4, 1)
    since = datetime.fromtimestamp(ns[i] // 1000 / 1e6, tz=UTC)
    until = datetime.fromtimestamp(ns[j] // 1000 / 1e6, tz=UTC)
    lo = int(since.timestamp()) * 10**9 + since.microsecond * 1000
    hi = int(until.timestamp()) * 10**9 + until.microsecond * 1000
    expected = [l.text for l, n in zip(full, ns) if lo <= n <= hi]
    got = [l.text for l in _lines(src, ELS_WORKER, Window(since=since, until=until))]
    assert got == expected
    assert got[0] == full[i].text
    assert full[i - 1].text not in got and full[j + 1].text not in got
    assert 0 < len(got) < len(full)
    # Open-ended windows.
    assert [l.text for l in _lines(src, ELS_WORKER, Window(since=since))] == \
        [l.text for l, n in zip(full, ns) if n >= lo]
    assert [l.text for l in _lines(src, ELS_WORKER, Window(until=until))] == \
        [l.text for l, n in zip(full, ns) if n <= hi]
    # A window before the container existed is empty, not an error.
    assert _lines(src, ELS_WORKER, Window(until=datetime(2020, 1, 1, tzinfo=UTC))) == []


def test_contains_any_filters_on_the_client(src, world):
    want = [t for _, t in container_streams(world, BOS) if BATCH in t]
    got = _lines(src, BOS, contains_any=[BATCH])
    assert [_body(l.text) for l in got] == want and want
    both = _lines(src, BOS, contains_any=[BATCH, "Kafka"])
    assert len(both) > len(got)
    assert all(BATCH in l.text or "Kafka" in l.text for l in both)
    assert _lines(src, BOS, contains_any=["no-such-id-anywhere"]) == []
    assert len(_lines(src, BOS, contains_any=None)) == len(container_streams(world, BOS))


def test_docker_partial_messages_are_joined(src):
    got = [_body(l.text) for l in _lines(src, RAS)]
    assert got == ["before", LONG_LINE, "after"]
    assert len(_lines(src, RAS, contains_any=[BATCH])) == 1


def test_states_running_exited_created_missing(src):
    now = datetime.now(UTC)
    run = src.container_state(ELS_WORKER)
    assert (run.state, run.finished_at) == ("running", None)
    assert run.started_at is not None and run.started_at.tzinfo is not None
    assert abs(now - run.started_at) < timedelta(minutes=10)
    assert run.compose_service == model.CONTAINERS[ELS_WORKER].compose_service
    assert run.image and run.image.startswith("huledu-forensics/busybox")

    ex = src.container_state(TOPIC_SETUP)
    assert (ex.state, ex.exit_code) == ("exited", 1)
    assert ex.started_at is not None and ex.finished_at is not None
    assert ex.finished_at.tzinfo is not None
    # Docker can stamp FinishedAt a fraction of a millisecond before StartedAt for a process that
    # exits at once: the kit must take both as reported.
    assert abs(ex.finished_at - ex.started_at) < timedelta(minutes=1)

    cr = src.container_state(CJ)
    assert (cr.state, cr.exit_code, cr.started_at, cr.finished_at) == ("created", None, None, None)
    assert _lines(src, CJ) == [], "a created container has no logs: evidence, not an error"

    gone = src.container_state("huleedu_no_such_container")
    assert gone == ContainerState(name="huleedu_no_such_container", state="missing")
    assert _lines(src, "huleedu_no_such_container") == []


@pytest.mark.parametrize("url", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"])
def test_unreachable_engine_is_one_line_source_unavailable(url):
    bad = DockerSource(url, timeout=5)
    ok, why = bad.ready()
    assert not ok and url in why and "\n" not in why
    for call in (lambda: bad.container_state("x"), bad.containers,
                 lambda: list(bad.iter_lines("x", Window()))):
        with pytest.raises(SourceUnavailable) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg and url in msg and "Start Docker" in msg
        assert info.value.source == "docker"
        assert info.value.__cause__ is not None


def test_docker_stamp_parsing():
    assert docker_stamp_ns("2025-11-20T18:31:36.1790155Z x") == 1763663496_179015500
    assert docker_stamp_ns(b"2025-11-20T18:31:36Z") == 1763663496_000000000
    assert docker_stamp_ns("2025-11-20T19:31:36.5+01:00") == 1763663496_500000000
    assert docker_stamp_ns("not a stamp") is None
