"""The small protocols every evidence source implements (like httpx transports).

Collection (``huledu_forensics.collect``) drives the sources: a :class:`TableSource` answers scoped
queries against one HuleEdu database, a :class:`LogSource` yields log lines for a container and window,
and a :class:`StateSource` reports container states. Sources translate their own exceptions
(psycopg, docker, HTTP) into :class:`~huledu_forensics.errors.SourceUnavailable` once, at this boundary;
a part that cannot be read is recorded as a gap in the bundle, not raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import pandas as pd

from ..world import ContainerState

__all__ = ["LogLine", "LogSource", "StateSource", "TableSource", "Window"]


@dataclass(frozen=True)
class Window:
    """A collection time window; either end may be open. Times are aware UTC."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class LogLine:
    """One log line: ``text`` is exactly as ``docker logs --timestamps`` prints it (stamp, space, line)."""

    container: str
    stream: str  # "stdout", "stderr" or "combined"
    text: str


@runtime_checkable
class TableSource(Protocol):
    """One HuleEdu database, read-only."""

    name: str
    database: str

    def enums(self) -> dict[str, list[str]]:
        """Labels of every enum type in the database, in ``pg_enum`` order."""
        ...

    def tables(self) -> list[str]:
        """Tables that exist in the database."""
        ...

    def rows(self, table: str, filters: dict[str, Iterable[str]]) -> pd.DataFrame:
        """Rows of ``table`` where any ``column IN (ids)`` of ``filters`` matches (bound parameters).

        ``filters`` keys are column names or JSON paths written ``col->a->>b``. The frame has the kit's
        dtypes (see :func:`huledu_forensics.world.coerce_table`).
        """
        ...


@runtime_checkable
class LogSource(Protocol):
    """Container logs from Docker, Loki or a directory of captured files."""

    name: str
    kind: str

    def containers(self, window: Window | None = None) -> list[str]:
        """Containers this source can read logs for (in ``window``, for a source that can tell: Loki's
        label API sees only the time it is asked about; Docker and files list every container)."""
        ...

    def iter_lines(self, container: str, window: Window,
                   contains_any: Iterable[str] | None = None, *, follow: bool = False) -> Iterator[LogLine]:
        """Yield a container's lines in the window; ``contains_any`` may be pushed down (Loki).

        Without ``follow``, only lines containing one of ``contains_any`` (any case) are yielded. With
        ``follow``, ``contains_any`` only locates the matches, and the lines around them (a match's whole
        block, and the id-less lines up to :data:`huledu_forensics.logs.LINK_SECONDS` after it) are
        yielded too, so the caller's scope decision sees what it sees in a whole file. A source that
        cannot search that way (Docker streams every line anyway) accepts ``follow`` and yields every
        line of the window: more lines, never fewer.
        """
        ...


@runtime_checkable
class StateSource(Protocol):
    """Container states (Docker)."""

    def container_state(self, name: str) -> ContainerState:
        """The container's state; a container that does not exist has ``state == "missing"``."""
        ...
