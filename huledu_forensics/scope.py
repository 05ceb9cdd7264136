"""From one id to every related id: scope discovery across database rows, outbox payloads and logs.

Any id of a batch's story leads to the whole story (SYSTEM.md §3.4 and §10): the batch id, either of
its two correlation ids (registration and pipeline request), an essay id, a text storage id, a file
upload id, an outbox row id or an envelope event id. Discovery is a breadth-first walk over an index of
"which row or log line mentions which id"; once the batch is known, other batches' ids are recorded but
never followed, so a shared correlation id cannot pull a second batch into the scope.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from . import _fields as F
from . import model
from ._frames import is_missing, records
from .errors import ScopeError
from .model import columns as C

__all__ = ["ID_KINDS", "Scope", "ScopeIndex", "build_index", "discover", "ids_from_rows",
           "normalise_id", "row_ids"]

ID_KINDS = ("batch", "correlation", "essay", "text_storage", "file_upload", "event", "outbox")
_UUID_REPR = re.compile(r"^UUID\('([^']+)'\)$")
_LOG_ID_COLUMNS = {
    F.BATCH_ID: "batch", F.CORRELATION_ID: "correlation", F.ESSAY_ID: "essay",
    F.TEXT_STORAGE_ID: "text_storage", F.FILE_UPLOAD_ID: "file_upload", "event_id": "event",
    "outbox_id": "outbox",
}
_AGGREGATE_KINDS = {"batch": "batch", "file_upload": "file_upload", "essay": "essay"}


def normalise_id(value: object) -> str | None:
    """Return an id as the kit compares it: stripped, lowercase, ``UUID('…')`` unwrapped."""
    if value is None:
        return None
    if not isinstance(value, str):
        try:
            if is_missing(value):
                return None
        except (TypeError, ValueError):
            pass
        value = str(value)
    s = value.strip()
    m = _UUID_REPR.match(s)
    if m:
        s = m.group(1)
    return s.lower() or None


def _json(value: object) -> object:
    if isinstance(value, (dict, list)):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _walk(obj: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def row_ids(database: str, table: str, row: dict[str, object]) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, id)`` for every id a table row holds, in columns or in its JSON payloads."""
    spec = model.TABLES.get((database, table))
    if spec is None:
        return
    for col, kind in spec.id_columns.items():
        v = normalise_id(row.get(col))
        if v is None:
            continue
        if kind == "aggregate":
            kind = _AGGREGATE_KINDS.get(str(row.get(C.AGGREGATE_TYPE) or ""), "")
            if not kind:
                continue
        if kind == "batch_correlation":  # batches.correlation_id == batches.id (SYSTEM.md §10.1)
            continue
        if kind in ID_KINDS:
            yield kind, v
    for col, path, kind in spec.json_id_paths:
        val = _walk(_json(row.get(col)), path)
        if val is None:
            continue
        if kind == "essay_list":
            for e in val if isinstance(val, list) else ():
                if (n := normalise_id(e)) is not None:
                    yield "essay", n
        elif kind == "essay_refs":
            for item in val if isinstance(val, list) else ():
                if isinstance(item, dict):
                    if (n := normalise_id(item.get(C.ESSAY_ID))) is not None:
                        yield "essay", n
                    if (n := normalise_id(item.get(C.TEXT_STORAGE_ID))) is not None:
                        yield "text_storage", n
        elif (n := normalise_id(val)) is not None:
            yield kind, n


def ids_from_rows(database: str, table: str, frame: pd.DataFrame) -> dict[str, set[str]]:
    """Return ``{kind: ids}`` found in a table's rows (columns and JSON payload paths)."""
    out: dict[str, set[str]] = defaultdict(set)
    for row in frame.pipe(records):
        for kind, v in row_ids(database, table, row):
            out[kind].add(v)
    return dict(out)


@dataclass
class Scope:
    """The ids related to one requested id.

    ``ids`` maps kind → ids; ``batch_id`` is the batch the story is about (``None`` if no batch was
    reached); ``other_batches`` are batches seen next to the scope but not followed; ``found_in`` maps
    an id to the evidence parts that mention it.
    """

    requested_id: str
    requested_kind: str
    batch_id: str | None
    ids: dict[str, set[str]]
    found_in: dict[str, set[str]] = field(default_factory=dict)
    other_batches: set[str] = field(default_factory=set)

    @property
    def all_ids(self) -> set[str]:
        """Every id in the scope, whatever its kind."""
        return set().union(*self.ids.values()) if self.ids else set()

    def to_frame(self) -> pd.DataFrame:
        """One row per id: ``kind``, ``id``, ``found_in`` (comma-separated evidence parts)."""
        rows = [{"kind": k, "id": i, "found_in": ", ".join(sorted(self.found_in.get(i, ())))}
                for k in ID_KINDS for i in sorted(self.ids.get(k, ()))]
        return pd.DataFrame(rows, columns=["kind", "id", "found_in"])

    def to_json(self) -> dict[str, object]:
        """JSON-ready form for verdicts and manifests."""
        return {"requested_id": self.requested_id, "requested_kind": self.requested_kind,
                C.BATCH_ID: self.batch_id,
                "ids": {k: sorted(v) for k, v in self.ids.items() if v},
                "other_batches": sorted(self.other_batches)}


class ScopeIndex:
    """Which evidence item mentions which id: items are ``(part, key)`` pairs. Build once per
    bundle with :func:`build_index` and reuse it for every id."""

    def __init__(self) -> None:
        self.item_ids: dict[tuple[str, object], list[tuple[str, str]]] = {}
        self.by_id: dict[str, list[tuple[str, object]]] = defaultdict(list)

    def add(self, item: tuple[str, object], pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(dict.fromkeys(pairs))
        if not pairs:
            return
        self.item_ids[item] = pairs
        for _, v in pairs:
            self.by_id[v].append(item)


def build_index(tables: dict[tuple[str, str], pd.DataFrame],
                logs: pd.DataFrame | None = None) -> ScopeIndex:
    """Index every id mentioned by table rows (columns and JSON payloads) and typed log columns.

    Untyped tokens in log lines (user ids, trace ids) are not indexed, so they are never followed.
    """
    index = ScopeIndex()
    for (db, tname), frame in tables.items():
        if frame is None or frame.empty or (db, tname) not in model.TABLES:
            continue
        part = f"tables/{db}/{tname}"
        for i, row in enumerate(frame.pipe(records)):
            index.add((part, i), row_ids(db, tname, row))
    if logs is not None and not logs.empty:
        cols = [c for c in _LOG_ID_COLUMNS if c in logs.columns]
        keyed = logs[cols].notna().any(axis=1) if cols else pd.Series(False, index=logs.index)
        sub = logs.loc[keyed, [*cols, "source_file", "line_no"]]
        arrays = [sub[c].astype(object).tolist() for c in cols]
        kinds = [_LOG_ID_COLUMNS[c] for c in cols]
        for j, (sf, ln) in enumerate(zip(sub["source_file"].tolist(), sub["line_no"].tolist())):
            pairs = []
            for kind, arr in zip(kinds, arrays):
                v = arr[j]
                if isinstance(v, str) and v:
                    pairs.append((kind, normalise_id(v) or v))
            index.add((str(sf), ln), pairs)
    return index


def discover(requested_id: str, tables: dict[tuple[str, str], pd.DataFrame] | None = None,
             logs: pd.DataFrame | None = None, *, index: ScopeIndex | None = None,
             max_ids: int = 5000) -> Scope:
    """Find every id related to ``requested_id`` in table rows and normalised log rows.

    Args:
        requested_id: any id (batch, correlation, essay, text storage, file upload, outbox, event).
        tables: ``{(database, table): rows}`` with the kit's dtypes.
        logs: normalised log rows (:mod:`huledu_forensics.logs`), or ``None``.
        index: a prebuilt :func:`build_index` (then ``tables`` and ``logs`` are not read).
        max_ids: a safety stop; a scope larger than this is cut and the cut is visible in the result.

    Raises:
        ScopeError: no row or log line mentions the id.
    """
    rid = normalise_id(requested_id)
    if not rid:
        raise ScopeError("An empty id was given. Pass a batch id, correlation id or essay id.",
                         id=requested_id)
    if index is None:
        index = build_index(tables or {}, logs)
    if rid not in index.by_id:
        raise ScopeError(
            f"No row or log line in the evidence mentions '{requested_id}'. Check the id (a batch id, "
            "correlation id, essay id, text storage id or file upload id), and the time window.",
            id=requested_id)

    kinds: dict[str, str] = {}
    found_in: dict[str, set[str]] = defaultdict(set)
    for item in index.by_id[rid]:
        for k, v in index.item_ids[item]:
            if v == rid and k != "unknown":
                kinds.setdefault(rid, k)
    requested_kind = kinds.get(rid, "unknown")
    batch: str | None = rid if requested_kind == "batch" else None
    other_batches: set[str] = set()
    seen = {rid}
    queue: deque[str] = deque([rid])
    while queue and len(seen) < max_ids:
        cur = queue.popleft()
        for item in index.by_id.get(cur, ()):
            found_in[cur].add(str(item[0]))
            pairs = index.item_ids[item]
            item_batches = {v for k, v in pairs if k == "batch"}
            if batch is not None and item_batches and batch not in item_batches:
                continue  # an item about another batch: note it, do not follow
            for k, v in pairs:
                if k != "unknown":
                    kinds.setdefault(v, k)
                if v in seen:
                    continue
                if kinds.get(v) == "batch":
                    if batch is None:
                        batch = v
                    elif v != batch:
                        other_batches.add(v)
                        continue
                seen.add(v)
                queue.append(v)
    ids: dict[str, set[str]] = defaultdict(set)
    for v in seen:
        k = kinds.get(v, "unknown")
        if k == "unknown":
            k = "essay" if len(v) == 36 else "text_storage"
        ids[k].add(v)
    return Scope(rid, requested_kind, batch, dict(ids), dict(found_in), other_batches)
