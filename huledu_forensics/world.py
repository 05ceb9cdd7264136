"""A world: what could be captured from a HuleEdu stack at one moment.

A :class:`World` holds, per database, the rows of every table (pandas frames), the enum label sets and
the DDL; the container states; and each container's log text exactly as ``docker logs --timestamps``
prints it. The simulator builds worlds, :func:`load_world_dir` reads a captured world from a directory
(the layout of ``shared/corpus``), and :func:`write_world_bundle` turns a world into an evidence bundle.
The live sources' tests load a world into PostgreSQL and Docker and collect it back.

Directory layout (read and written)::

    containers.json                      [{name, state, exit_code, started_at, finished_at, ...}]
    db/<database>/_schema.sql            DDL, with CREATE TYPE ... AS ENUM (...) label sets
    db/<database>/<table>.csv            rows as ``psql \\copy ... csv header`` writes them
    logs/<container>.log                 ``docker logs --timestamps`` output (streams interleaved)
    logs/<container>.stderr.log          optional: the stderr stream kept apart
    world.json                           optional: name, description, collected_at, target, expected
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import model
from ._frames import is_missing
from ._time import parse_utc, to_utc_series
from .errors import BundleInvalid

__all__ = [
    "ContainerState",
    "DatabaseImage",
    "World",
    "coerce_table",
    "enums_from_ddl",
    "load_world_dir",
    "save_world_dir",
]

_ENUM_RE = re.compile(r"CREATE\s+TYPE\s+(?:\"?[\w]+\"?\.)?\"?(\w+)\"?\s+AS\s+ENUM\s*\((.*?)\)\s*;",
                      re.IGNORECASE | re.DOTALL)
_LABEL_RE = re.compile(r"'((?:[^']|'')*)'")
_INT_RE = re.compile(r"^-?\d+$")


@dataclass
class ContainerState:
    """A container's state as Docker reports it. ``state`` is Docker's lowercase status.

    ``state`` is one of ``running``, ``exited``, ``created``, ``restarting``, ``paused``, ``dead``, or
    ``missing`` (the container does not exist). Times are aware UTC.
    """

    name: str
    state: str
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0
    health: str | None = None
    image: str | None = None
    compose_service: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (times as ISO strings)."""
        d = asdict(self)
        for k in ("started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ContainerState:
        """Build from a dict as written by :meth:`to_json` or the corpus ``containers.json``."""
        return cls(
            name=str(d["name"]),
            state=str(d.get("state") or d.get("status") or "unknown").lower(),
            exit_code=d.get("exit_code"),
            started_at=parse_utc(d.get("started_at")),
            finished_at=parse_utc(d.get("finished_at")),
            restart_count=int(d.get("restart_count") or 0),
            health=d.get("health"),
            image=d.get("image"),
            compose_service=d.get("compose_service"),
        )


@dataclass
class DatabaseImage:
    """One database: its tables (frames), enum label sets (in ``pg_enum`` order) and DDL."""

    name: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    ddl: str | None = None


@dataclass
class World:
    """Everything captured from one HuleEdu stack at ``collected_at`` (aware UTC).

    ``logs`` maps container → stream (``combined``, ``stdout`` or ``stderr``) → lines, each line exactly
    as ``docker logs --timestamps`` prints it, without the trailing newline. ``target`` names the ids
    of the batch the world is about (``batch_id``, ``registration_correlation_id``,
    ``pipeline_correlation_id``); ``expected`` holds a simulator scenario's expected verdict.
    """

    name: str
    databases: dict[str, DatabaseImage]
    containers: list[ContainerState]
    logs: dict[str, dict[str, list[str]]]
    collected_at: datetime
    description: str = ""
    target: dict[str, str] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)

    def table(self, db: str, name: str) -> pd.DataFrame | None:
        """Return a table's rows, or ``None`` when the world has no such table."""
        d = self.databases.get(db)
        return None if d is None else d.tables.get(name)


def enums_from_ddl(ddl: str) -> dict[str, list[str]]:
    """Return ``{enum type: labels}`` from ``CREATE TYPE ... AS ENUM`` statements, in order."""
    out: dict[str, list[str]] = {}
    for m in _ENUM_RE.finditer(ddl):
        out[m.group(1)] = [lab.replace("''", "'") for lab in _LABEL_RE.findall(m.group(2))]
    return out


def coerce_table(db: str, name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Give a table the kit's dtypes: timestamps aware UTC, JSON columns as JSON text, ids as text.

    Columns the model knows as timestamps become ``datetime64[ns, UTC]`` (naive values are UTC). JSON
    columns holding dicts or lists are serialised to JSON text. Other all-integer text columns become
    ``Int64``. Unknown tables keep their columns, with the same integer rule.
    """
    spec = model.TABLES.get((db, name))
    out = df.copy()
    ts_cols = set(spec.timestamp_columns) if spec else set()
    json_cols = set(spec.json_columns) if spec else set()
    id_cols = set(spec.id_columns) if spec else set()
    for col in out.columns:
        s = out[col]
        if col in ts_cols:
            out[col] = to_utc_series(s)
        elif col in json_cols:
            out[col] = s.map(_json_text).astype(object)
        elif col in id_cols:
            out[col] = s.map(lambda v: None if _isna(v) else str(v)).astype(object)
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            vals = s.dropna()
            if len(vals) and all(isinstance(v, str) and _INT_RE.match(v) for v in vals):
                out[col] = pd.array([None if _isna(v) else int(v) for v in s], dtype="Int64")
            elif len(vals) and all(isinstance(v, str) and v in ("t", "f", "true", "false") for v in vals):
                out[col] = s.map(lambda v: None if _isna(v) else v in ("t", "true")).astype(object)
    return out


def _isna(v: object) -> bool:
    if v is None:
        return True
    try:
        return is_missing(v)
    except (TypeError, ValueError):
        return False


def _json_text(v: object) -> str | None:
    if _isna(v) if not isinstance(v, (dict, list)) else False:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def load_world_dir(path: str | Path) -> World:
    """Read a captured world from a directory (the layout of ``shared/corpus/<world>``).

    Raises:
        BundleInvalid: the directory has neither ``db/`` nor ``logs/``.
    """
    root = Path(path)
    if not (root / "db").is_dir() and not (root / "logs").is_dir():
        raise BundleInvalid(
            f"'{root}' is not a captured world: it has neither db/ nor logs/. Pass a directory laid "
            "out like shared/corpus/<world>.", path=str(root))
    meta: dict[str, Any] = {}
    if (root / "world.json").exists():
        meta = json.loads((root / "world.json").read_text())
    databases: dict[str, DatabaseImage] = {}
    for ddir in sorted(p for p in (root / "db").glob("*") if p.is_dir()):
        ddl_path = ddir / "_schema.sql"
        ddl = ddl_path.read_text() if ddl_path.exists() else None
        img = DatabaseImage(ddir.name, enums=enums_from_ddl(ddl) if ddl else {}, ddl=ddl)
        for csv in sorted(ddir.glob("*.csv")):
            raw = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
            raw = raw.astype(object).where(raw.notna(), None)
            img.tables[csv.stem] = coerce_table(ddir.name, csv.stem, raw)
        databases[ddir.name] = img
    containers: list[ContainerState] = []
    if (root / "containers.json").exists():
        containers = [ContainerState.from_json(d) for d in json.loads((root / "containers.json").read_text())]
    logs: dict[str, dict[str, list[str]]] = {}
    for lp in sorted((root / "logs").glob("*.log")) if (root / "logs").is_dir() else []:
        name = lp.name[: -len(".log")]
        stream = "combined"
        for s in ("stdout", "stderr"):
            if name.endswith("." + s):
                name, stream = name[: -len(s) - 1], s
        logs.setdefault(name, {})[stream] = lp.read_text(encoding="utf-8", errors="replace").splitlines()
    collected = parse_utc(meta.get("collected_at")) or _latest_time(databases, logs)
    return World(
        name=str(meta.get("name") or root.name), databases=databases, containers=containers, logs=logs,
        collected_at=collected, description=str(meta.get("description") or ""),
        target=dict(meta.get("target") or {}), expected=dict(meta.get("expected") or {}),
    )


def _latest_time(databases: dict[str, DatabaseImage], logs: dict[str, dict[str, list[str]]]) -> datetime:
    """The latest timestamp in the world: a captured world was collected no earlier than this."""
    best: datetime | None = None
    for lines_by_stream in logs.values():
        for lines in lines_by_stream.values():
            for line in reversed(lines):
                t = parse_utc(line.split(" ", 1)[0]) if line[:2].isdigit() else None
                if t is not None:
                    best = t if best is None or t > best else best
                    break
    for img in databases.values():
        for df in img.tables.values():
            for col in df.columns:
                if isinstance(df[col].dtype, pd.DatetimeTZDtype) and df[col].notna().any():
                    t = df[col].max().to_pydatetime()
                    best = t if best is None or t > best else best
    if best is None:
        raise BundleInvalid("The world has no timestamp at all; cannot tell when it was collected.")
    return best


def save_world_dir(world: World, path: str | Path) -> Path:
    """Write ``world`` in the directory layout :func:`load_world_dir` reads. Returns the path."""
    root = Path(path)
    (root / "db").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    for img in world.databases.values():
        ddir = root / "db" / img.name
        ddir.mkdir(exist_ok=True)
        if img.ddl:
            (ddir / "_schema.sql").write_text(img.ddl)
        for tname, df in img.tables.items():
            out = df.copy()
            for col in out.columns:
                if isinstance(out[col].dtype, pd.DatetimeTZDtype):
                    out[col] = out[col].map(lambda t: None if pd.isna(t) else t.isoformat())
            out.to_csv(ddir / f"{tname}.csv", index=False)
    (root / "containers.json").write_text(json.dumps([c.to_json() for c in world.containers], indent=2))
    for cname, streams in world.logs.items():
        for stream, lines in streams.items():
            suffix = "" if stream == "combined" else f".{stream}"
            (root / "logs" / f"{cname}{suffix}.log").write_text("".join(l + "\n" for l in lines))
    (root / "world.json").write_text(json.dumps({
        "name": world.name, "description": world.description,
        "collected_at": world.collected_at.isoformat(), "target": world.target,
        "expected": world.expected}, indent=2))
    return root
