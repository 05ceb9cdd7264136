"""From one id to every related id: scope discovery across database rows, outbox payloads and logs.

Any id of a batch's story leads to the whole story (SYSTEM.md §3.4 and §10): the batch id, either of
its two correlation ids (registration and pipeline request), an essay id, a text storage id, a file
upload id, an outbox row id or an envelope event id. Discovery is a breadth-first walk over an index of
"which row or log line mentions which id"; once the batch is known, other batches' ids are recorded but
never followed, so a shared correlation id cannot pull a second batch into the scope.

That rule lives in one place, :class:`ScopeWalk`: replay (:func:`discover`, over a bundle's index) and
live collection (:mod:`huledu_forensics.collect`, over database rounds and log lines) both hand it each
item's ids and follow what it returns, so the two cannot disagree on which items and ids belong.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from . import _fields as F
from . import model
from ._frames import is_missing, records
from .errors import ScopeError
from .model import columns as C

__all__ = ["ID_KINDS", "Scope", "ScopeIndex", "ScopeWalk", "build_index", "discover", "ids_from_rows",
           "normalise_id", "row_ids"]

ID_KINDS = ("batch", "correlation", "essay", "text_storage", "file_upload", "event", "outbox")
_UUID_REPR = re.compile(r"^UUID\('([^']+)'\)$")
_LOG_ID_COLUMNS = {
    F.BATCH_ID: "batch", F.CORRELATION_ID: "correlation", F.ESSAY_ID: "essay",
    F.TEXT_STORAGE_ID: "text_storage", F.FILE_UPLOAD_ID: "file_upload", "event_id": "event",
    "outbox_id": "outbox",
}
_AGGREGATE_KINDS = {"batch": "batch", "file_upload": "file_upload", "essay": "essay"}
"""``aggregate_type`` / ``entity_type`` values → id kind."""


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
        doc = _json(row.get(col))
        val = _walk(doc, path)
        if val is None:
            continue
        if kind == "entity":  # the payload says what its entity_id is (model.Table)
            named = _walk(doc, (*path[:-1], "entity_type")) or _walk(doc, (*path[:-1], "metadata", "entity_type"))
            kind = _AGGREGATE_KINDS.get(str(named), "") if named else "batch"
            if not kind:
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

    def holds(self, pairs: Iterable[tuple[str, str]], among: set[str] | None = None) -> bool:
        """Whether an item (a table row, a log line) with these ``(kind, id)`` pairs is part of the
        story: it names an id of the scope (``among``, default :attr:`all_ids`) and is not refused by
        :class:`ScopeWalk`'s rule (it names batches, none of them the scope's)."""
        pairs = list(pairs)
        ids = self.all_ids if among is None else among
        return any(v in ids for _, v in pairs) and not _refuses(self.batch_id, pairs)

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


def _refuses(batch: str | None, pairs: Iterable[tuple[str, str]]) -> bool:
    """The rule: once the batch is known, an item naming batches, none of them that one, is refused."""
    if batch is None:
        return False
    batches = {v for k, v in pairs if k == "batch"}
    return bool(batches) and batch not in batches


@dataclass
class ScopeWalk:
    """Which items (table rows, log lines) and ids belong to the investigation of ``requested``.

    Feed it each reached item's ``(kind, id)`` pairs with :meth:`admit`. The batch is the requested id
    when an item names it as a batch, else the first batch an admitted item names (the smallest id when
    one item names several). Once the batch is known, an item about other batches only is refused; the
    other batches an item names (refused or admitted) are recorded in :attr:`other_batches`, never
    followed. The batches of the items that name the requested id (:attr:`owners`) and the ids any
    item calls an essay (:attr:`essays`) feed :meth:`refuse_shared`.
    """

    requested: str
    batch: str | None = None
    ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    kind_of: dict[str, str] = field(default_factory=dict)  # an id's first kind seen
    other_batches: set[str] = field(default_factory=set)
    owners: set[str] = field(default_factory=set)
    essays: set[str] = field(default_factory=set)

    def admit(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]] | None:
        """Take in an item's ids: ``None`` if the item is about another batch (refused), else the
        ``(kind, id)`` pairs new to the scope, which are the ones to follow."""
        pairs = [(k, v) for k, v in pairs if k != "unknown"]
        batches = {v for k, v in pairs if k == "batch"}
        self.essays.update(v for k, v in pairs if k == "essay")
        if len(batches) == 1 and any(v == self.requested for _, v in pairs):
            self.owners |= batches
        if _refuses(self.batch, pairs):
            self.other_batches |= batches
            return None
        if self.batch is None and batches:
            self.batch = self.requested if self.requested in batches else min(batches)
        new = []
        for k, v in pairs:
            first = self.kind_of.setdefault(v, k)
            if (k == "batch" or first == "batch" or v in self.other_batches) and v != self.batch:
                self.other_batches.add(v)
                continue
            if v not in self.ids[k]:
                self.ids[k].add(v)
                new.append((k, v))
        return new

    def all_ids(self) -> set[str]:
        """The requested id and every id admitted so far."""
        return {self.requested}.union(*self.ids.values())

    def refuse_shared(self, shown_id: str, is_essay: Callable[[str], bool] | None = None) -> None:
        """Refuse a requested id that is not a batch id when items of more than one batch name it (a
        shared correlation id names no one batch); ``shown_id`` is the id as the user gave it.

        An id some item calls an essay (``is_essay``, default: one an item fed to :meth:`admit` did) is
        not an owner: an essay-level outbox row's aggregate id reads as a batch.

        Raises:
            ScopeError: naming every batch, so the user can pass one of them.
        """
        kind = self.kind_of.get(self.requested, "unknown")
        if kind == "batch":
            return
        essay = is_essay or self.essays.__contains__
        owners = sorted(o for o in self.owners if not essay(o))
        if len(owners) > 1:
            raise ScopeError(f"'{shown_id}' ({kind} id) belongs to {len(owners)} batches: "
                             f"{', '.join(owners)}. Pass one of those batch ids.", id=shown_id)


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
        ScopeError: no row or log line mentions the id, or it is not a batch id and rows of more
            than one batch carry it (a shared correlation id names no one batch).
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

    requested_kind = "unknown"
    for item in index.by_id[rid]:
        kind = next((k for k, v in index.item_ids[item] if v == rid and k != "unknown"), None)
        if kind is not None:
            requested_kind = kind
            break
    walk = ScopeWalk(rid, batch=rid if requested_kind == "batch" else None)
    walk.kind_of[rid] = requested_kind
    found_in: dict[str, set[str]] = defaultdict(set)
    seen = {rid}
    queue: deque[str] = deque([rid])
    while queue and len(seen) < max_ids:
        cur = queue.popleft()
        for item in index.by_id.get(cur, ()):
            found_in[cur].add(str(item[0]))
            for _, v in walk.admit(index.item_ids[item]) or ():
                if v not in seen:
                    seen.add(v)
                    queue.append(v)
        if cur == rid:  # every item naming the requested id has been seen: the one refusal rule
            walk.refuse_shared(requested_id, lambda o: any(("essay", o) in index.item_ids[it]
                                                           for it in index.by_id.get(o, ())))
    ids: dict[str, set[str]] = defaultdict(set)
    for v in seen:
        k = walk.kind_of.get(v, "unknown")
        if k == "unknown":
            k = "essay" if len(v) == 36 else "text_storage"
        ids[k].add(v)
    return Scope(rid, requested_kind, walk.batch, dict(ids), dict(found_in), walk.other_batches)
