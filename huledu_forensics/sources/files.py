"""Container logs from a directory of captured files (``docker logs --timestamps`` output or plain logs).

:class:`FilesSource` implements :class:`~huledu_forensics.sources.base.LogSource` over a directory such
as ``shared/corpus/<world>/logs`` (or the world directory itself). File names map to containers::

    <container>.log, <container>.log.gz, <container>.gz       the streams interleaved ("combined")
    <container>.stdout.log[.gz], <container>.stderr.log[.gz]  one stream kept apart
    <container>/<stream>.log[.gz]                             the evidence-bundle layout

Lines that already carry Docker's RFC3339Nano stamp are yielded as they are. A plain line (no stamp) is
given the stamp of the file's previous stamped line; failing that, its own inner timestamp (a JSON
``"timestamp"`` field or a leading ISO time); failing that, the file's modification time. Every such file
is reported in :attr:`FilesSource.warnings`. Files are streamed line by line, never read whole.

The module also holds the Docker-stamp helpers the Loki source and its test server share:
:func:`docker_stamp`, :func:`split_docker_stamp` and :func:`to_ns`.
"""

from __future__ import annotations

import calendar
import gzip
import heapq
import io
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from .._time import parse_utc
from ..errors import SourceUnavailable
from .base import LogLine, Window

__all__ = ["FilesSource", "docker_stamp", "split_docker_stamp", "to_ns"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STAMP_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:\d{2})(?: |$)")
_last_second: tuple[str, int] = ("", 0)
_JSON_TS_RE = re.compile(r'"timestamp"\s*:\s*"([^"]{10,40})"')
_LEAD_TS_RE = re.compile(
    r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:\s?(?:UTC|Z|[+-]\d{2}:?\d{2}))?)")
_STREAMS = ("stdout", "stderr", "combined")
_SUFFIXES = (".log.gz", ".log", ".gz")


def to_ns(value: datetime) -> int:
    """Return an aware datetime as integer nanoseconds since the Unix epoch (exact, no float)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the kit works in aware UTC times")
    return ((value - _EPOCH) // timedelta(microseconds=1)) * 1000


def docker_stamp(ns: int) -> str:
    """Format epoch nanoseconds the way ``docker logs --timestamps`` does (nine digits, ``Z``)."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    t = _EPOCH + timedelta(seconds=secs)  # raises OverflowError outside years 1..9999
    # fields formatted by hand: strftime("%Y") writes year 1 as "1", not "0001"
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            f".{frac:09d}Z")


def split_docker_stamp(line: str) -> tuple[int, str] | None:
    """Split ``"<RFC3339Nano stamp> <text>"`` into ``(epoch ns, text)``; ``None`` if unstamped."""
    global _last_second
    m = _STAMP_RE.match(line)
    if m is None:
        return None
    base, frac, tz = m.groups()
    key = base + tz
    cached = _last_second  # consecutive lines mostly share their second: skip the calendar maths
    if cached[0] == key:
        secs = cached[1]
    else:
        try:
            secs = calendar.timegm((int(base[0:4]), int(base[5:7]), int(base[8:10]), int(base[11:13]),
                                    int(base[14:16]), int(base[17:19]), 0, 0, 0))
        except (ValueError, OverflowError):
            return None
        if tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
        _last_second = (key, secs)
    ns = secs * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
    return ns, line[m.end():]


def _inner_ns(text: str) -> int | None:
    """The line's own timestamp (JSON ``timestamp`` field or a leading ISO time), as epoch ns."""
    m = _JSON_TS_RE.search(text) or _LEAD_TS_RE.match(text)
    if m is None:
        return None
    t = parse_utc(m.group(1).replace(",", "."))
    return None if t is None else to_ns(t)


def _bounds(window: Window) -> tuple[int | None, int | None]:
    since = to_ns(window.since) if window.since is not None else None
    until = to_ns(window.until) if window.until is not None else None
    return since, until


def _open_text(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="surrogateescape",
                                newline="\n")
    # surrogateescape: bytes that are not UTF-8 reach the bundle unchanged; newline="\n": a lone CR
    # does not end a line
    return open(path, encoding="utf-8", errors="surrogateescape", newline="\n")


class FilesSource:
    """A :class:`~huledu_forensics.sources.base.LogSource` over a directory of captured log files.

    Args:
        directory: a directory of log files, or a captured world directory holding ``logs/``.
        on_warning: called with each completeness warning as it is recorded (besides ``warnings``).

    Attributes:
        warnings: one-line completeness warnings (plain lines stamped by inference, truncated .gz).

    Raises:
        SourceUnavailable: the directory does not exist or is not a directory.
    """

    kind = "files"

    def __init__(self, directory: str | os.PathLike[str], *,
                 on_warning: Callable[[str], None] | None = None) -> None:
        root = Path(directory)
        if not root.is_dir():
            raise SourceUnavailable(
                f"Log directory '{root}' does not exist or is not a directory; pass the folder holding "
                "<container>.log files (e.g. shared/corpus/<world>/logs).", source="files")
        if not self._scan(root) and (root / "logs").is_dir():
            root = root / "logs"
        self.root = root
        self.name = f"files:{root}"
        self.warnings: list[str] = []
        self._on_warning = on_warning

    # ------------------------------------------------------------------ discovery
    @staticmethod
    def _scan(root: Path) -> dict[str, list[tuple[str, Path]]]:
        """``{container: [(stream, path), ...]}`` for every log file under ``root``."""
        found: dict[str, list[tuple[str, Path]]] = {}
        try:
            entries = sorted(root.iterdir())
        except OSError as exc:
            raise SourceUnavailable(f"Cannot list log directory '{root}' ({exc.strerror or exc}); check "
                                    "its permissions.", source="files") from exc
        for p in entries:
            if p.name.startswith("."):
                continue
            if p.is_dir():  # bundle layout: <container>/<stream>.log[.gz]
                for q in sorted(p.iterdir()):
                    stem = _strip_suffix(q.name)
                    if q.is_file() and stem in _STREAMS:
                        found.setdefault(p.name, []).append((stem, q))
                continue
            stem = _strip_suffix(p.name)
            if stem is None or not p.is_file():
                continue
            stream = "combined"
            for s in ("stdout", "stderr"):
                if stem.endswith("." + s):
                    stem, stream = stem[: -len(s) - 1], s
            if stem:
                found.setdefault(stem, []).append((stream, p))
        return found

    def containers(self, window: Window | None = None) -> list[str]:
        """Containers with at least one log file in the directory, sorted (whatever ``window``)."""
        return sorted(self._scan(self.root))

    def streams(self, container: str) -> list[str]:
        """The streams the directory holds for ``container`` (``combined``, ``stdout``, ``stderr``)."""
        return [s for s, _ in self._scan(self.root).get(container, [])]

    # ------------------------------------------------------------------ reading
    def iter_lines(self, container: str, window: Window = Window(),
                   contains_any: Iterable[str] | None = None, *, follow: bool = False) -> Iterator[LogLine]:
        """Yield the container's lines whose Docker stamp is in ``[window.since, window.until)``.

        Several files of one container (e.g. ``.stdout.log`` and ``.stderr.log``) are merged in stamp
        order. ``contains_any`` keeps only lines containing one of the strings, ignoring case (``None``
        or empty: all lines). With ``follow`` the file is searched at byte level
        (:func:`huledu_forensics.logs.read_scoped`'s search) and every line of the stretches around the
        matches is yielded: a match's whole block (its head and continuation lines) and every line up to
        :data:`huledu_forensics.logs.LINK_SECONDS` after it, so id-less warning/error lines that follow a
        match are there for live collection to link. Other lines are not read at all. A file the search
        cannot serve (gzip, a non-ASCII id, no block boundary near a match) is yielded whole.

        Raises:
            SourceUnavailable: the directory holds no log file for ``container``.
        """
        files = self._scan(self.root).get(container)
        if not files:
            known = ", ".join(self.containers()) or "none"
            raise SourceUnavailable(
                f"No log file for container '{container}' in '{self.root}' (expected {container}.log or "
                f"{container}.log.gz); containers there: {known}.", source=self.name)
        needles = sorted({s.lower() for s in (contains_any or ()) if s})
        since, until = _bounds(window)
        gens = [self._iter_file(container, stream, path, needles, since, until, follow)
                for stream, path in files]
        if len(gens) == 1:
            return (line for _, line in gens[0])
        return (line for _, line in heapq.merge(*gens, key=lambda t: t[0]))

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)
        if self._on_warning is not None:
            self._on_warning(message)

    def _iter_file(self, container: str, stream: str, path: Path, needles: list[str],
                   since: int | None, until: int | None, follow: bool = False
                   ) -> Iterator[tuple[int, LogLine]]:
        prev: int | None = None  # stamp of the previous Docker-stamped line
        prev_line: str | None = None  # a later stamped line skipped by the filter, parsed on demand
        inferred: int | None = None  # last stamp taken from a plain line's own timestamp
        mtime_ns: int | None = None
        counts = {"previous line": 0, "inner timestamp": 0, "file mtime": 0}
        try:
            fh = _open_text(path)
        except OSError as exc:
            raise SourceUnavailable(f"Cannot open log file '{path}' ({exc.strerror or exc}); check it "
                                    "exists and is readable.", source=self.name) from exc
        stamp_match = _STAMP_RE.match
        lines: Iterable[str] = fh
        if follow and needles:  # a file the search cannot serve is yielded whole: blocks stay whole
            stretches = _matching_stretches(path, needles)
            lines, needles = (stretches if stretches is not None else fh), []
        try:
            with fh:
                for raw in lines:
                    line = raw[:-1] if raw[-1:] == "\n" else raw
                    if needles and not _has_any(line.lower(), needles):
                        # cheap reject; only remember the line's stamp for plain lines that may follow
                        if stamp_match(line):
                            prev_line = line
                        continue
                    split = split_docker_stamp(line)
                    if split is not None:
                        ns, text = split
                        prev, prev_line = ns, None
                        out = line
                    else:
                        if not line.strip():
                            continue  # a blank plain line carries nothing
                        text = line
                        if prev_line is not None:
                            prev_split = split_docker_stamp(prev_line)  # None: a stamp out of range
                            prev, prev_line = (prev_split[0] if prev_split else None), None
                        if prev is not None:
                            ns, how = prev, "previous line"
                        else:
                            own = _inner_ns(text)
                            if own is not None:
                                ns, how, inferred = own, "inner timestamp", own
                            elif inferred is not None:
                                ns, how = inferred, "previous line"
                            else:
                                if mtime_ns is None:
                                    mtime_ns = path.stat().st_mtime_ns
                                ns, how = mtime_ns, "file mtime"
                        counts[how] += 1
                        out = f"{docker_stamp(ns)} {text}"
                    if (since is not None and ns < since) or (until is not None and ns >= until):
                        continue
                    yield ns, LogLine(container, stream, out)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            self._warn(f"{container}: log file '{path.name}' could not be read to the end ({exc}); the "
                       "lines after that point are missing. Re-capture the file if it was still being "
                       "written.")
        plain = sum(counts.values())
        if plain:
            how = ", ".join(f"{n} from the {k}" for k, n in counts.items() if n)
            self._warn(f"{container}: {plain} line(s) in '{path.name}' carry no Docker timestamp and were "
                       f"stamped by inference ({how}); their order on the timeline is approximate.")


def _matching_stretches(path: Path, needles: list[str]) -> Iterator[str] | None:
    """The lines of the byte ranges around ``needles``' matches (see ``FilesSource.iter_lines``), or
    ``None`` when the file needs a line-by-line read (gzip, non-ASCII needle, unstamped match)."""
    from .. import logs as logmod

    if path.name.endswith(".gz") or not all(n.isascii() for n in needles):
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        hits = logmod._find_hits(fd, size, [n.encode() for n in needles], logmod._SCAN_BYTES) if size else []
        segs = logmod._segments(fd, size, hits, True) if hits else []
        if segs is None:
            return None
        chunks = [os.pread(fd, end - start, start) for start, end, _ln in segs]
    finally:
        os.close(fd)

    def gen() -> Iterator[str]:
        # as _open_text reads: undecodable bytes kept (surrogateescape), only LF ends a line
        for data in chunks:
            pieces = data.decode("utf-8", "surrogateescape").split("\n")
            for piece in pieces[:-1]:
                yield piece + "\n"
            if pieces[-1]:
                yield pieces[-1]

    return gen()


def _has_any(text: str, needles: list[str]) -> bool:
    return any(n in text for n in needles)


def _strip_suffix(name: str) -> str | None:
    for suf in _SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return None
