"""Container logs and states read live from a Docker engine.

:class:`DockerSource` implements the :class:`~huledu_forensics.sources.base.LogSource` and
:class:`~huledu_forensics.sources.base.StateSource` protocols with the Docker SDK. It only reads
(``GET`` requests: list, inspect, logs); it never starts, stops or changes a container.

Lines are yielded exactly as ``docker logs --timestamps`` prints them (Docker's RFC3339Nano stamp, a
space, the line), with stdout and stderr read as two separate streams and merged lazily in time order,
each line labelled with its stream. Time windows are pushed down to the engine as float epoch seconds
(the SDK would round a ``datetime`` down to whole seconds), widened by a millisecond against float
rounding, then applied exactly on the client at nanosecond precision.

Example::

    src = DockerSource()                      # $DOCKER_HOST or the local socket
    ok, why = src.ready()
    for line in src.iter_lines("huleedu_essay_lifecycle_worker", Window(since=t0),
                               contains_any=[batch_id]):
        print(line.stream, line.text)
    src.container_state("huleedu_essay_lifecycle_db").state    # "running", "exited", "missing"

Engine failures (connection refused, API errors) become
:class:`~huledu_forensics.errors.SourceUnavailable` with a one-line message saying what to do.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import docker.errors
import requests.exceptions

from .._time import parse_utc
from ..errors import SourceUnavailable
from ..world import ContainerState
from .base import LogLine, Window

__all__ = ["DEFAULT_DOCKER_URL", "DockerSource", "docker_stamp_ns"]

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"

#: Docker Compose puts the service name in this label.
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"

_STAMP_RE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_ZERO_TIME_PREFIX = "0001-01-01"
# Float epoch seconds carry ~0.2 µs of rounding at today's magnitudes; widen the pushed-down window
# by this much and filter exactly on the client.
_PUSHDOWN_MARGIN_S = 0.001
_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def docker_stamp_ns(line: bytes | str) -> int | None:
    """Return the epoch nanoseconds of the Docker stamp that starts ``line``, or ``None``.

    Docker writes RFC3339Nano with trailing zeros of the fraction trimmed (``...:53.6834393Z``), so
    stamps cannot be compared as text; this parses them to integers.
    """
    raw = line.encode("utf-8", "replace") if isinstance(line, str) else line
    m = _STAMP_RE.match(raw)
    if m is None:
        return None
    base = datetime.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%S")
    tz = m.group(3).decode()
    offset_s = 0
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset_s = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    seconds = int(base.replace(tzinfo=UTC).timestamp()) - offset_s
    frac = (m.group(2) or b"").decode().ljust(9, "0")
    return seconds * _NS + int(frac)


def _dt_ns(value: datetime) -> int:
    """Epoch nanoseconds of an aware datetime (naive is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """A short, single-line description of ``exc`` (Docker's messages can be long and nested)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, str) and explanation.strip():
        text = " ".join(explanation.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DockerSource:
    """Logs and states of containers on one Docker engine (read-only).

    Args:
        base_url: The engine's address, e.g. ``unix:///var/run/docker.sock`` or
            ``tcp://127.0.0.1:2375``. ``None`` uses ``$DOCKER_HOST`` or the local socket.
        timeout: Seconds to wait for each engine request.
        name: The source's name in bundle reports.

    The engine is contacted lazily, on the first call, so constructing a source never fails.
    """

    kind = "docker"

    def __init__(self, base_url: str | None = None, *, timeout: float = 30.0,
                 name: str = "docker") -> None:
        self.base_url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL
        self.timeout = timeout
        self.name = name
        self._client_obj: docker.DockerClient | None = None

    def __repr__(self) -> str:
        return f"DockerSource({self.base_url!r})"

    # ------------------------------------------------------------------ engine access

    @contextmanager
    def _engine(self, action: str) -> Iterator[None]:
        """Translate Docker SDK and transport errors into :class:`SourceUnavailable`."""
        try:
            yield
        except SourceUnavailable:
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            if isinstance(exc, docker.errors.APIError) and exc.response is not None:
                raise SourceUnavailable(
                    f"The Docker engine at {self.base_url} refused to {action}: {_one_line(exc)}. "
                    "Check the container's log driver and the engine, or give the profile a logs "
                    "directory (logs_dir) captured with docker logs --timestamps.",
                    source=self.name) from exc
            raise SourceUnavailable(
                f"Cannot reach the Docker engine at {self.base_url} (while trying to {action}): "
                f"{_one_line(exc)}. Start Docker (e.g. dockerd) or pass --profile with docker = "
                "<engine url>.", source=self.name) from exc

    def _client(self) -> docker.DockerClient:
        if self._client_obj is None:
            with self._engine("connect"):
                self._client_obj = docker.DockerClient(base_url=self.base_url, timeout=int(self.timeout))
        return self._client_obj

    def close(self) -> None:
        """Close the connection to the engine (the source can be used again afterwards)."""
        if self._client_obj is not None:
            self._client_obj.close()
            self._client_obj = None

    def __enter__(self) -> DockerSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ready(self) -> tuple[bool, str]:
        """Return ``(True, "<engine version> at <url>")`` if the engine answers, else ``(False, why)``."""
        try:
            client = self._client()
            with self._engine("ping"):
                client.ping()
                version = client.version().get("Version", "?")
        except SourceUnavailable as exc:
            return False, str(exc)
        return True, f"Docker engine {version} at {self.base_url}"

    # ------------------------------------------------------------------ LogSource

    def containers(self, window: Window | None = None) -> list[str]:
        """Return the names of all containers on the engine (running or not), sorted (``window`` is not
        needed: the engine lists every container)."""
        client = self._client()
        with self._engine("list containers"):
            found = client.api.containers(all=True)
        names: set[str] = set()
        for c in found:
            for n in c.get("Names") or []:
                names.add(n.lstrip("/"))
        return sorted(names)

    def iter_lines(self, container: str, window: Window,
                   contains_any: Iterable[str] | None = None, *, follow: bool = False) -> Iterator[LogLine]:
        """Yield ``container``'s log lines inside ``window``, stdout and stderr merged in time order.

        Each :class:`LogLine` has ``stream`` ``"stdout"`` or ``"stderr"`` and ``text`` exactly as
        ``docker logs --timestamps`` prints it. Window ends are inclusive and exact to the
        nanosecond of Docker's stamps. ``contains_any`` keeps only lines containing at least one of
        the strings (applied on the client; ``None`` or empty keeps everything). With ``follow`` (see
        :meth:`~huledu_forensics.sources.base.LogSource.iter_lines`) every line of the window is yielded:
        Docker cannot read only the stretches around the matches, and the lines near a match that do not
        name an id (a traceback) must not be lost.

        A container that does not exist, or never started, yields nothing (ask
        :meth:`container_state` to tell which). Docker's 16 KiB partial messages are joined back
        into one line.

        Raises:
            SourceUnavailable: the engine cannot be reached, or refuses to give the container's logs
                (e.g. its log driver cannot be read back).
        """
        needles = [] if follow else [n.encode("utf-8") for n in (contains_any or []) if n]
        since_ns = _dt_ns(window.since) if window.since is not None else None
        until_ns = _dt_ns(window.until) if window.until is not None else None
        if since_ns is not None and until_ns is not None and until_ns < since_ns:
            return
        client = self._client()
        with self._engine(f"find container {container}"):
            try:
                client.api.inspect_container(container)
            except docker.errors.NotFound:
                return
        streams = [self._stream(container, s, since_ns, until_ns, needles) for s in ("stdout", "stderr")]
        for _, stream, raw in heapq.merge(*streams, key=lambda t: t[0]):
            yield LogLine(container, stream, raw.decode("utf-8", "surrogateescape"))  # bytes kept

    def _stream(self, container: str, stream: str, since_ns: int | None, until_ns: int | None,
                needles: list[bytes]) -> Iterator[tuple[int, str, bytes]]:
        """Yield ``(stamp ns, stream, line bytes)`` for one stream, in Docker's order."""
        kwargs: dict[str, Any] = {"stdout": stream == "stdout", "stderr": stream == "stderr",
                                  "timestamps": True, "stream": True, "follow": False}
        if since_ns is not None:
            kwargs["since"] = max(since_ns / _NS - _PUSHDOWN_MARGIN_S, 1e-6)
        if until_ns is not None:
            kwargs["until"] = max(until_ns / _NS + _PUSHDOWN_MARGIN_S, 1e-6)
        action = f"read the {stream} log of {container}"
        client = self._client()
        with self._engine(action):
            try:
                frames = client.api.logs(container, **kwargs)
            except docker.errors.NotFound:
                return
        pending = b""
        last_ns = 0
        with self._engine(action):
            try:
                for frame in frames:
                    if pending:
                        # A continuation of a partial message: drop its own stamp and join.
                        head, sep, rest = frame.partition(b" ")
                        frame = rest if sep and docker_stamp_ns(head) is not None else frame
                        frame = pending + frame
                        pending = b""
                    if not frame.endswith(b"\n"):
                        pending = frame
                        continue
                    for line in frame[:-1].split(b"\n"):
                        item = self._keep(line, stream, since_ns, until_ns, needles, last_ns)
                        if item is not None:
                            last_ns = item[0]
                            yield item
                if pending:
                    item = self._keep(pending, stream, since_ns, until_ns, needles, last_ns)
                    if item is not None:
                        yield item
            finally:
                close = getattr(frames, "close", None)
                if close is not None:
                    close()

    @staticmethod
    def _keep(line: bytes, stream: str, since_ns: int | None, until_ns: int | None,
              needles: list[bytes], last_ns: int) -> tuple[int, str, bytes] | None:
        ns = docker_stamp_ns(line)
        if ns is None:
            ns = last_ns  # not stamped (never expected with timestamps=True): keep its place
        else:
            if since_ns is not None and ns < since_ns:
                return None
            if until_ns is not None and ns > until_ns:
                return None
        if needles and not any(n in line for n in needles):
            return None
        return ns, stream, line

    # ------------------------------------------------------------------ StateSource

    def container_state(self, name: str) -> ContainerState:
        """Return the container's state as Docker reports it; ``state == "missing"`` if it does not exist.

        ``exit_code`` is ``None`` for a container that never started (``created``). Docker's zero
        time (``0001-01-01T00:00:00Z``) gives ``None`` times.

        Raises:
            SourceUnavailable: the engine cannot be reached.
        """
        client = self._client()
        with self._engine(f"inspect container {name}"):
            try:
                attrs = client.api.inspect_container(name)
            except docker.errors.NotFound:
                return ContainerState(name=name, state="missing")
        return _state_from_inspect(name, attrs)


def _docker_time(value: object) -> datetime | None:
    """Docker's RFC3339Nano time as aware UTC (to the microsecond); the zero time gives ``None``."""
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    ns = docker_stamp_ns(value)
    if ns is None:
        return parse_utc(value)
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _state_from_inspect(name: str, attrs: dict[str, Any]) -> ContainerState:
    """Build a :class:`ContainerState` from ``docker inspect`` output."""
    st = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    labels = config.get("Labels") or {}
    status = str(st.get("Status") or "unknown").lower()
    exit_code = st.get("ExitCode")
    health = (st.get("Health") or {}).get("Status")
    return ContainerState(
        name=str(attrs.get("Name") or name).lstrip("/"),
        state=status,
        exit_code=None if status == "created" or exit_code is None else int(exit_code),
        started_at=_docker_time(st.get("StartedAt")),
        finished_at=_docker_time(st.get("FinishedAt")),
        restart_count=int(attrs.get("RestartCount") or 0),
        health=str(health) if health else None,
        image=config.get("Image") or attrs.get("Image"),
        compose_service=labels.get(COMPOSE_SERVICE_LABEL),
    )
