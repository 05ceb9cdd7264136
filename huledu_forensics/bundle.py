"""The evidence bundle: the unit that is collected, attached to a CI failure, and replayed later.

Layout::

    <bundle>/
      manifest.json                     format, version, scope, window, sources, gaps, file hashes
      tables/<database>/<table>.parquet snapshot rows (timestamps aware UTC, JSON columns as JSON text)
      enums.json                        {database: {enum type: [labels in pg_enum order]}}
      containers.json                   [container state]
      logs/<container>/<stream>.log     ``docker logs --timestamps`` text; stream is stdout, stderr or
                                        combined
      logs/<container>/<stream>.parsed.parquet
                                        the same lines parsed once (:data:`huledu_forensics.logs.LOG_COLUMNS`),
                                        written at collection so a report never parses twice; bundles
                                        without it still load (the text is parsed then)

A bundle is written into a temporary sibling directory and renamed into place only when complete, so a
reader never sees half a bundle. Everything after collection reads bundles only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _fields as F
from ._time import parse_utc, utcnow
from ._version import __version__
from .errors import BundleInvalid, BundleNotFound
from .world import ContainerState, World

if TYPE_CHECKING:
    from .outcomes import LogExtent
    from .scope import ScopeIndex

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "Bundle",
    "BundleCache",
    "BundleWriter",
    "SourceReport",
    "write_world_bundle",
]

log = logging.getLogger(__name__)

BUNDLE_FORMAT = "huledu-forensics-bundle"
BUNDLE_FORMAT_VERSION = 1


@dataclass
class SourceReport:
    """What one source contributed, and how completely.

    ``completeness`` is ``complete``, ``partial`` (something was cut: a page limit, a missing table, a
    log with no lines in the window) or ``missing`` (the source could not be read at all).
    """

    name: str
    kind: str
    completeness: str = "complete"
    warnings: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def warn(self, message: str, *, partial: bool = True) -> None:
        """Record a warning; by default it also marks the source partial."""
        self.warnings.append(message)
        if partial and self.completeness == "complete":
            self.completeness = "partial"


class BundleWriter:
    """Write a bundle atomically. Use as a context manager; an exception discards the partial bundle.

    Example::

        with BundleWriter("bundles/b1") as w:
            src = w.source("postgres:huleedu_essay_lifecycle", "postgres")
            w.add_table("huleedu_essay_lifecycle", "essay_states", frame, source=src)
            w.finish(scope={...}, window=(since, until), collected_at=now)
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BundleInvalid(
                f"'{self.path}' already exists. Pass another --out, or remove it first.", path=str(path))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial",
                                          dir=self.path.parent))
        self._overwrite = overwrite
        self._sources: dict[str, SourceReport] = {}
        self._gaps: list[dict[str, str]] = []
        self._enums: dict[str, dict[str, list[str]]] = {}
        self._containers: dict[str, dict[str, Any]] = {}
        self._done = False

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._done:
            self.abort()

    def source(self, name: str, kind: str) -> SourceReport:
        """Return (creating it) the report for source ``name`` of ``kind``."""
        if name not in self._sources:
            self._sources[name] = SourceReport(name, kind)
        return self._sources[name]

    def gap(self, part: str, reason: str, *, source: SourceReport | None = None) -> None:
        """Record that ``part`` (e.g. ``tables/<db>/<table>``) could not be read, and why."""
        self._gaps.append({"part": part, "reason": reason, "source": source.name if source else ""})
        if source is not None:
            source.warn(f"{part}: {reason}")

    def add_table(self, database: str, table: str, frame: pd.DataFrame, *, source: SourceReport) -> None:
        """Write one table's rows as Parquet."""
        rel = f"tables/{database}/{table}.parquet"
        dest = self._tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        out = frame.copy()
        for col in out.columns:
            if out[col].dtype == object:
                out[col] = out[col].map(
                    lambda v: v if v is None or isinstance(v, (str, bool, int, float)) else json.dumps(v)
                    if isinstance(v, (dict, list)) else str(v))
        out.to_parquet(dest, index=False)
        source.parts.append(rel)

    def add_enums(self, database: str, enums: dict[str, list[str]], *, source: SourceReport) -> None:
        """Record the label sets of ``database``'s enum types."""
        self._enums.setdefault(database, {}).update({k: list(v) for k, v in enums.items()})
        source.parts.append(f"enums/{database}")

    def add_log_lines(self, container: str, stream: str, lines: Iterable[str], *,
                      source: SourceReport) -> int:
        """Stream ``lines`` (``docker logs --timestamps`` text) into the bundle. Returns the count."""
        rel = f"logs/{container}/{stream}.log"
        dest = self._tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        # surrogateescape: bytes that are not UTF-8 (held as lone surrogates after decoding with
        # surrogateescape) are written back as the very bytes read; newline="": no translation
        with open(dest, "a", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            for line in lines:
                fh.write(line.rstrip("\n") + "\n")
                n += 1
        if rel not in source.parts:
            source.parts.append(rel)
        return n

    def add_container(self, state: ContainerState, *, source: SourceReport) -> None:
        """Record one container's state."""
        self._containers[state.name] = state.to_json()
        if "containers.json" not in source.parts:
            source.parts.append("containers.json")

    def _write_parsed_logs(self) -> None:
        """Parse every log file once and keep the rows as Parquet next to the text."""
        for fp in sorted(self._tmp.glob("logs/*/*.log")):
            rel = fp.relative_to(self._tmp).as_posix()
            try:
                write_parsed_log(fp, fp.parent.name, fp.stem, rel, fp.with_name(fp.stem + PARSED_SUFFIX))
            except Exception as exc:  # noqa: BLE001 - the text stays the evidence; it is parsed on read
                log.warning("could not keep the parsed rows of %s (%s); it will be parsed when read",
                            rel, exc)
                fp.with_name(fp.stem + PARSED_SUFFIX).unlink(missing_ok=True)

    def abort(self) -> None:
        """Discard the partial bundle."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def finish(self, *, scope: dict[str, Any], window: tuple[datetime | None, datetime | None],
               collected_at: datetime | None = None, origin: dict[str, Any] | None = None) -> Bundle:
        """Write ``manifest.json`` with file hashes and move the bundle into place atomically.

        Args:
            scope: ``{"requested_id": str, "ids": {kind: [ids]}, "mode": "full"|"scoped"}``.
            window: ``(since, until)``, aware UTC or ``None``.
            collected_at: when the evidence was observed (the "now" for dwell times).
            origin: how the bundle was made, e.g. ``{"kind": "simulator", "scenario": ...}``.
        """
        self._write_parsed_logs()
        (self._tmp / "enums.json").write_text(json.dumps(self._enums, indent=2, sort_keys=True))
        (self._tmp / "containers.json").write_text(
            json.dumps(sorted(self._containers.values(), key=lambda c: c["name"]), indent=2))
        files = {}
        for p in sorted(self._tmp.rglob("*")):
            if p.is_file():
                rel = p.relative_to(self._tmp).as_posix()
                files[rel] = {"sha256": _sha256(p), "bytes": p.stat().st_size}
        since, until = window
        manifest = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_FORMAT_VERSION,
            "tool": "huledu-forensics",
            "tool_version": __version__,
            F.CREATED_AT: utcnow().isoformat(),
            "collected_at": (collected_at or utcnow()).isoformat(),
            "scope": scope,
            "window": {"since": since.isoformat() if since else None,
                       "until": until.isoformat() if until else None},
            "origin": origin or {},
            "sources": [vars(s) for s in self._sources.values()],
            "gaps": self._gaps,
            "files": files,
        }
        tmp_manifest = self._tmp / "manifest.json.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(tmp_manifest, self._tmp / "manifest.json")
        if self.path.exists():
            if not self._overwrite:
                raise BundleInvalid(f"'{self.path}' appeared while writing; not overwriting it.",
                                    path=str(self.path))
            trash = self.path.with_name(f".{self.path.name}.old")
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(self.path, trash)
            os.replace(self._tmp, self.path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(self._tmp, self.path)
        self._done = True
        return Bundle.open(self.path, verify=False)


_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+=-]{0,199}")
_MAX_DEPTH = 4


def _inside(root: Path, real_root: str, rel: object) -> Path:
    """``root / rel`` for a manifest path that stays inside the bundle, else :class:`BundleInvalid`.

    A manifest path is relative, at most ``_MAX_DEPTH`` parts of letters, digits and ``_ . @ + = -``
    (no ``..``, no hidden names, no absolute path), and no part of it may be a symbolic link: a bundle
    is untrusted input and must not make the kit read anything outside it.
    """
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or len(parts) > _MAX_DEPTH or not all(_PART_RE.fullmatch(x) for x in parts):
        shown = repr(rel)[:80]
        raise BundleInvalid(f"The manifest of '{root}' lists the path {shown}, which is not a plain "
                            "relative path inside the bundle. The bundle is unsafe; collect it again.",
                            path=str(root))
    fp = root.joinpath(*parts)
    if os.path.realpath(fp) != os.path.join(real_root, *parts):
        raise BundleInvalid(f"'{rel}' in bundle '{root}' is, or lies under, a symbolic link; a bundle "
                            "holds regular files only. The bundle is unsafe; collect it again.",
                            path=str(root))
    return fp


PARSED_SUFFIX = ".parsed.parquet"


def write_parsed_log(path: Path, container: str, stream: str, source_file: str, dest: Path) -> int:
    """Parse log file ``path`` (in chunks, memory bounded) into Parquet file ``dest``; return the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from . import logs as logmod

    writer = None
    schema = None
    n = 0
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        for frame in logmod.iter_parse_file(path, container=container, stream=stream,
                                            source_file=source_file):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(tmp, schema)
            else:
                table = table.cast(schema)
            writer.write_table(table)
            n += len(frame)
        if writer is None:
            logmod.empty_frame().to_parquet(tmp, index=False)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, dest)
    return n


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

# Parquet files larger than this are decoded with pyarrow's thread pool (see _read_parquet)
_THREADED_READ_BYTES = 8 << 20


@dataclass
class BundleCache:
    """What the analysis derives from one opened bundle, kept with it so that investigating several ids
    of one bundle parses its logs and indexes its rows once. Filled by
    :mod:`huledu_forensics.investigation`; a bundle is read-only, so nothing here goes stale.
    """

    service_logs: pd.DataFrame | None = None
    """Every service-container log line, parsed."""
    db_logs: pd.DataFrame | None = None
    """Every database-container log line, parsed."""
    handler_runs: pd.DataFrame | None = None
    """Every handling run of the bundle's consumers."""
    log_extent: dict[str, LogExtent] | None = None
    """Per container: lines held and the first and last line's time."""
    scope_index: ScopeIndex | None = None
    """The id index scope discovery walks."""


class Bundle:
    """A bundle opened for reading. Open with :meth:`Bundle.open`; everything is read lazily.

    Attributes:
        path: the bundle directory.
        manifest: the parsed ``manifest.json``.
        cache: what the analysis derived from this bundle so far (:class:`BundleCache`).
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.cache = BundleCache()
        self._tables: dict[tuple[str, str], pd.DataFrame] = {}

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = True) -> Bundle:
        """Open and validate the bundle at ``path``.

        With ``verify`` every file's SHA-256 is checked against the manifest.

        Raises:
            BundleNotFound: nothing at ``path``.
            BundleInvalid: no manifest, a foreign or newer format, a missing or altered file.
        """
        p = Path(path)
        if not p.exists():
            raise BundleNotFound(
                f"No bundle at '{p}'. Run `huledu-forensics snapshot` or `huledu-forensics demo` first, "
                "or pass the directory of a complete bundle.", path=str(p))
        mpath = p / "manifest.json"
        if mpath.is_symlink():
            raise BundleInvalid(f"The manifest of '{p}' is a symbolic link; a bundle holds regular files "
                                "only. The bundle is unsafe; collect it again.", path=str(p))
        if not p.is_dir() or not mpath.exists():
            raise BundleInvalid(
                f"'{p}' has no manifest.json, so it is not a complete bundle (a collection may have been "
                "interrupted). Collect it again.", path=str(p))
        try:
            manifest = json.loads(mpath.read_text())
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise BundleInvalid(f"The manifest of '{p}' is not valid JSON ({type(exc).__name__}). The "
                                "bundle is damaged; collect it again.", path=str(p)) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
            raise BundleInvalid(f"'{p}' is not a huledu-forensics bundle (its manifest has format "
                                f"{manifest.get('format') if isinstance(manifest, dict) else None!r}).",
                                path=str(p))
        version = manifest.get("format_version")
        if version != BUNDLE_FORMAT_VERSION:
            raise BundleInvalid(f"Bundle '{p}' has format version {version}; this kit reads version "
                                f"{BUNDLE_FORMAT_VERSION}. Use a matching huledu-forensics release.",
                                path=str(p))
        files = manifest.get("files") or {}
        if not isinstance(files, dict) or not all(isinstance(m, dict) for m in files.values()):
            raise BundleInvalid(f"The manifest of '{p}' has no valid file list. The bundle is damaged; "
                                "collect it again.", path=str(p))
        real = os.path.realpath(p)
        for rel, meta in files.items():
            fp = _inside(p, real, rel)
            if not fp.is_file():
                raise BundleInvalid(f"Bundle '{p}' is missing '{rel}', which its manifest lists. The "
                                    "bundle is partial; collect it again.", path=str(p))
            if verify and _sha256(fp) != meta.get("sha256"):
                raise BundleInvalid(f"'{rel}' in bundle '{p}' does not match its recorded hash: the "
                                    "bundle was altered or damaged. Collect it again.", path=str(p))
        return cls(p, manifest)

    # -- manifest views -------------------------------------------------------------------------
    @property
    def collected_at(self) -> datetime:
        """When the evidence was observed (aware UTC); dwell times are measured to this moment."""
        t = parse_utc(self.manifest.get("collected_at"))
        assert t is not None
        return t

    @property
    def window(self) -> tuple[datetime | None, datetime | None]:
        """The collection time window ``(since, until)`` (aware UTC or ``None``)."""
        w = self.manifest.get("window") or {}
        return parse_utc(w.get("since")), parse_utc(w.get("until"))

    @property
    def sources(self) -> list[SourceReport]:
        """The per-source completeness reports."""
        return [SourceReport(**s) for s in self.manifest.get("sources", [])]

    @property
    def gaps(self) -> list[dict[str, str]]:
        """Parts that could not be read, with the reason."""
        return list(self.manifest.get("gaps", []))

    # -- content --------------------------------------------------------------------------------
    def tables(self) -> list[tuple[str, str]]:
        """``(database, table)`` pairs present in the bundle."""
        out = []
        for rel in self.manifest.get("files", {}):
            parts = rel.split("/")
            if parts[0] == "tables" and len(parts) == 3 and parts[2].endswith(".parquet"):
                out.append((parts[1], parts[2][: -len(".parquet")]))
        return sorted(out)

    def has_table(self, database: str, table: str) -> bool:
        """Whether the bundle holds ``database.table`` (an empty table counts)."""
        return (database, table) in self.tables()

    def table(self, database: str, table: str) -> pd.DataFrame | None:
        """Return the rows of ``database.table`` or ``None`` when the bundle does not hold it."""
        key = (database, table)
        if key not in self._tables:
            fp = self._listed(f"tables/{database}/{table}.parquet")
            if fp is None or not fp.exists():
                return None
            try:
                self._tables[key] = _read_parquet(fp)
            except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
                raise BundleInvalid(f"'tables/{database}/{table}.parquet' in bundle '{self.path}' cannot "
                                    f"be read ({type(exc).__name__}); the bundle is damaged. Collect it "
                                    "again.", path=str(self.path)) from None
        return self._tables[key]

    def _listed(self, rel: str) -> Path | None:
        """The path of ``rel`` when the manifest lists it (checked to lie inside the bundle), else None."""
        if rel not in (self.manifest.get("files") or {}):
            return None
        return _inside(self.path, os.path.realpath(self.path), rel)

    @property
    def enums(self) -> dict[str, dict[str, list[str]]]:
        """``{database: {enum type: labels}}`` as collected from ``pg_enum`` or the DDL."""
        fp = self._listed("enums.json")
        return json.loads(fp.read_text()) if fp is not None and fp.exists() else {}

    @property
    def containers(self) -> list[ContainerState]:
        """Container states recorded in the bundle."""
        fp = self._listed("containers.json")
        return [ContainerState.from_json(d) for d in json.loads(fp.read_text())] \
            if fp is not None and fp.exists() else []

    def log_files(self) -> list[tuple[str, str, Path]]:
        """``(container, stream, path)`` for every log file in the bundle."""
        out = []
        for rel in self.manifest.get("files", {}):
            parts = rel.split("/")
            if parts[0] == "logs" and len(parts) == 3 and parts[2].endswith(".log"):
                out.append((parts[1], parts[2][: -len(".log")], self.path / rel))
        return sorted(out)

    def parsed_log(self, container: str, stream: str) -> pd.DataFrame | None:
        """The parsed rows of one log file kept at collection, or ``None`` (older bundle: parse it)."""
        fp = self._listed(f"logs/{container}/{stream}{PARSED_SUFFIX}")  # checked to lie inside
        if fp is None:
            return None
        try:
            return _read_parquet(fp)
        except Exception as exc:  # noqa: BLE001 - the text is still there to parse
            log.warning("could not read %s (%s); parsing the log text instead", fp, exc)
            return None

    def parsed_logs(self, streams: Iterable[tuple[str, str]]) -> pd.DataFrame | None:
        """The kept parsed rows of several log files as one frame (in the order given, a fresh
        RangeIndex), or ``None`` when one has none, their schemas differ or one cannot be read: then
        read them one by one with :meth:`parsed_log`, which says which file is damaged.

        One Parquet read over the files converts to pandas once, instead of once per file and a
        concat: about a third of the time on a bundle's many small per-stream files.
        """
        paths = []
        for container, stream in streams:
            fp = self._listed(f"logs/{container}/{stream}{PARSED_SUFFIX}")
            if fp is None:
                return None
            paths.append(fp)
        if not paths:
            return None
        try:
            import pyarrow.parquet as pq

            first = pq.read_schema(paths[0])
            if not all(pq.read_schema(fp).equals(first, check_metadata=True) for fp in paths[1:]):
                return None
            big = sum(fp.stat().st_size for fp in paths) > _THREADED_READ_BYTES
            # pandas hands the list to pyarrow.parquet.read_table, which reads the files as one
            # dataset, in order; partitioning=None: a directory named key=value is not a column
            frame: pd.DataFrame = pd.read_parquet(  # type: ignore[call-overload]  # stubs: one path
                [str(fp) for fp in paths], use_threads=big, partitioning=None)
            return frame.reset_index(drop=True)
        except Exception:  # noqa: BLE001 - the one-by-one read reports the damaged file
            return None

    def iter_log_lines(self, container: str, stream: str) -> Iterator[str]:
        """Yield the raw lines of one log file."""
        rel = f"logs/{container}/{stream}.log"
        fp = self._listed(rel) or _inside(self.path, os.path.realpath(self.path), rel)  # never a symlink
        # newline="\n": only LF ends a line; a lone CR stays inside its line (CRLF keeps its CR)
        with open(fp, encoding="utf-8", errors="replace", newline="\n") as fh:
            for line in fh:
                yield line.rstrip("\n")

    def copy_to(self, dest: str | Path) -> Bundle:
        """Copy this bundle to ``dest`` (which must not exist): the manifest and only the files it lists.

        Files are copied without following symbolic links and checked against their hashes as they are
        copied; nothing outside the bundle is read. The copy appears atomically.

        Raises:
            BundleInvalid: ``dest`` exists, or a file is missing, unsafe or altered.
        """
        out = Path(dest)
        if out.exists() or out.is_symlink():
            raise BundleInvalid(f"'{out}' already exists; not overwriting it.", path=str(out))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".copying", dir=out.parent))
        try:
            real = os.path.realpath(self.path)
            for rel, meta in (self.manifest.get("files") or {}).items():
                src = _inside(self.path, real, rel)
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    _copy_verified(src, target, (meta or {}).get("sha256"))
                except OSError as exc:
                    raise BundleInvalid(f"Cannot copy '{rel}' of bundle '{self.path}' ({exc.strerror or exc}); "
                                        "a bundle holds regular files only.", path=str(self.path)) from exc
            _copy_verified(self.path / "manifest.json", tmp / "manifest.json", None)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return Bundle.open(out, verify=False)


def _read_parquet(fp: Path) -> pd.DataFrame:
    """One bundle Parquet file as a frame. Most are small (one table, one log stream, a few row
    groups): there pyarrow's thread pool costs more than it saves, about half the read time."""
    return pd.read_parquet(fp, use_threads=fp.stat().st_size > _THREADED_READ_BYTES)


def _copy_verified(src: Path, dst: Path, sha256: object) -> None:
    """Copy one regular file without following a symlink, checking its hash as it is read."""
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as fin, open(dst, "xb") as fout:
        for chunk in iter(lambda: fin.read(1 << 20), b""):
            h.update(chunk)
            fout.write(chunk)
    if sha256 is not None and h.hexdigest() != sha256:
        raise BundleInvalid(f"'{src}' does not match its recorded hash: the bundle was altered or "
                            "damaged. Collect it again.", path=str(src))


def write_world_bundle(world: World, path: str | Path, *, overwrite: bool = False,
                       origin: dict[str, Any] | None = None) -> Bundle:
    """Write a whole world (every row, every log line) as a bundle with scope mode ``full``."""
    with BundleWriter(path, overwrite=overwrite) as w:
        kind = (origin or {}).get("kind", "world")
        for img in world.databases.values():
            src = w.source(f"{kind}:{img.name}", kind)
            for tname, df in img.tables.items():
                w.add_table(img.name, tname, df, source=src)
            w.add_enums(img.name, img.enums, source=src)
        csrc = w.source(f"{kind}:containers", kind)
        for c in world.containers:
            w.add_container(c, source=csrc)
        for cname, streams in world.logs.items():
            lsrc = w.source(f"{kind}:logs:{cname}", kind)
            for stream, lines in streams.items():
                w.add_log_lines(cname, stream, lines, source=lsrc)
        return w.finish(
            scope={"requested_id": None, "ids": {}, "mode": "full", "target": world.target},
            window=(None, world.collected_at), collected_at=world.collected_at,
            origin={"world": world.name, **(origin or {"kind": "world"})},
        )
