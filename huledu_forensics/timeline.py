"""One time-ordered frame across services: rows, outbox writes and relays, log lines, containers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

import pandas as pd

from . import _fields as F
from . import model
from ._frames import is_missing, records
from .model import columns as C
from .world import ContainerState

__all__ = ["TIMELINE_COLUMNS", "build_timeline", "collapse_repeats", "row_ref"]

TIMELINE_COLUMNS = ("ts", "source", "service", "lane", "kind", "level", "label", "topic", F.BATCH_ID,
                    F.CORRELATION_ID, F.ESSAY_ID, "ref", "repeat")


def row_ref(database: str, table: str, row: dict[str, object]) -> str:
    """The evidence reference of a table row: ``tables/<db>/<table>.parquet#<key>=<value>``."""
    spec = model.TABLES.get((database, table))
    keys = spec.key if spec else (C.ID,)
    key = ",".join(f"{k}={row.get(k)}" for k in keys)
    return f"tables/{database}/{table}.parquet#{key}"


def _row_label(table: str, row: dict[str, object]) -> str:
    for col in (C.STATUS, C.CURRENT_STATUS, C.PROCESSING_STATUS, C.PHASE):
        if row.get(col) not in (None, ""):
            extra = f" {row.get(C.STATUS)}" if col == C.PHASE else ""
            return f"{table}: {col} = {row[col]}{extra}"
    return f"{table} row"


def build_timeline(tables: dict[tuple[str, str], pd.DataFrame], logs: pd.DataFrame | None,
                   containers: Iterable[ContainerState] = ()) -> pd.DataFrame:
    """Merge scoped evidence into one frame ordered by time (aware UTC), each row keeping its source.

    Columns: ``ts``, ``source`` (``table``, ``outbox``, ``log``, ``container``), ``service`` (kit key),
    ``lane`` (container name, or ``db:<database>`` for rows), ``kind``, ``level``, ``label``, ``topic``,
    ``batch_id``, ``correlation_id``, ``essay_id``, ``ref`` (where the evidence is in the bundle),
    ``repeat`` (how many identical log lines a row stands for, see :func:`collapse_repeats`). Rows
    without a timestamp are left out.
    """
    out: list[dict[str, object]] = []
    for (db, tname), frame in tables.items():
        spec = model.TABLES.get((db, tname))
        if spec is None or frame is None or frame.empty or spec.time_column not in frame.columns:
            continue
        svc = model.DATABASES[db].service if db in model.DATABASES else None
        lane = f"db:{db}"
        outbox = tname == model.OUTBOX_TABLE
        for row in frame.pipe(records):
            ref = row_ref(db, tname, row)
            base = {"service": svc, "lane": lane, "ref": ref,
                    F.BATCH_ID: row.get(C.BATCH_ID) or (row.get(C.AGGREGATE_ID) if
                                                        row.get(C.AGGREGATE_TYPE) == "batch" else None),
                    F.CORRELATION_ID: row.get(C.CORRELATION_ID), F.ESSAY_ID: row.get(C.ESSAY_ID)}
            if outbox:
                topic = row.get(C.TOPIC) or row.get(C.EVENT_TYPE)
                base["topic"] = topic
                out.append({**base, "ts": row.get(C.CREATED_AT), "source": "outbox",
                            "kind": "outbox_created", "level": "info",
                            "label": f"outbox row written: {topic}"})
                if not is_missing(row.get(C.PUBLISHED_AT)):
                    out.append({**base, "ts": row.get(C.PUBLISHED_AT), "source": "outbox",
                                "kind": "outbox_published", "level": "info",
                                "label": f"relayed to Kafka: {topic}"})
                elif row.get(C.RETRY_COUNT) or row.get(C.LAST_ERROR):
                    out.append({**base, "ts": row.get(C.CREATED_AT), "source": "outbox",
                                "kind": "outbox_failed", "level": "error",
                                "label": f"never published (retry_count {row.get(C.RETRY_COUNT)}, "
                                         f"{row.get(C.LAST_ERROR)}): {topic}"})
                continue
            ts = row.get(spec.time_column) if spec.time_column is not None else None
            out.append({**base, "ts": ts, "source": "table", "kind": "row", "level": "info",
                        "label": _row_label(tname, row)})
            upd = row.get(C.UPDATED_AT)
            if upd is not None and not is_missing(upd) and not is_missing(ts) and upd != ts:
                out.append({**base, "ts": upd, "source": "table", "kind": "row_updated",
                            "level": "info", "label": _row_label(tname, row) + " (last update)"})
    if logs is not None and not logs.empty:
        lg = logs
        frame = pd.DataFrame({
            "ts": lg["ts"], "source": "log", "service": lg.get("service"), "lane": lg["container"],
            "kind": "log", "level": lg.get("level"), "label": lg["message"].astype(object).map(
                lambda m: (str(m)[:160] if m is not None else "")),
            "topic": lg.get("topic"), F.BATCH_ID: lg.get(F.BATCH_ID),
            F.CORRELATION_ID: lg.get(F.CORRELATION_ID), F.ESSAY_ID: lg.get(F.ESSAY_ID),
            "ref": lg["source_file"].astype(str) + "#L" + lg["line_no"].astype(str),
        })
        if "format" in lg.columns:
            frame = frame[lg["format"] != "continuation"]
    else:
        frame = pd.DataFrame(columns=list(TIMELINE_COLUMNS[:-1]))
    for c in containers:
        svc = model.CONTAINERS[c.name].service if c.name in model.CONTAINERS else None
        if c.started_at:
            out.append({"ts": c.started_at, "source": "container", "service": svc, "lane": c.name,
                        "kind": "container_started", "level": "info",
                        "label": f"{c.name} started", "ref": f"containers.json#{c.name}"})
        if c.finished_at and c.state != "running":
            lvl = "error" if (c.exit_code or 0) != 0 else "info"
            out.append({"ts": c.finished_at, "source": "container", "service": svc, "lane": c.name,
                        "kind": "container_exited", "level": lvl,
                        "label": f"{c.name} exited ({c.exit_code})", "ref": f"containers.json#{c.name}"})
    rows = pd.DataFrame(out, columns=list(TIMELINE_COLUMNS[:-1]))
    parts = [p for p in (rows, frame) if not p.empty]
    tl = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=list(TIMELINE_COLUMNS[:-1]))
    tl["ts"] = pd.to_datetime(tl["ts"], utc=True, errors="coerce")
    tl = tl[tl["ts"].notna()]
    tl = tl.sort_values(["ts", "source"], kind="stable").reset_index(drop=True)
    tl["repeat"] = 1
    return collapse_repeats(tl[list(TIMELINE_COLUMNS)])


_DIGITS = re.compile(r"\d+")


def collapse_repeats(timeline: pd.DataFrame, *, threshold: int = 50) -> pd.DataFrame:
    """Collapse a log line repeated more than ``threshold`` times in one lane (a relay failing a
    poisoned row on every poll) to its first and last occurrence.

    Lines are "the same" when level and label match after digits are masked. The kept first row gets
    ``repeat`` = how many lines it stands for (all but the kept last one) and a label saying how often
    and until when; every other row has ``repeat`` 1, so ``repeat`` sums to the number of lines. Table, outbox and container rows are never collapsed, and a batch's ordinary
    story (fewer repeats than ``threshold``) is left alone.
    """
    if timeline.empty:
        return timeline
    tl = timeline.copy()
    tl["repeat"] = 1
    logs = tl[tl["source"] == "log"]
    if len(logs) <= threshold:
        return tl
    key = logs["lane"].astype(str) + "|" + logs["level"].astype(str) + "|" + logs["label"].astype(
        str).map(lambda m: _DIGITS.sub("#", m))
    drop: list[int] = []
    for _, group in logs.groupby(key, sort=False).groups.items():
        if len(group) <= threshold:
            continue
        idx = sorted(group, key=lambda i: (tl.at[i, "ts"], i))
        first, last = idx[0], idx[-1]
        tl.at[first, "repeat"] = len(idx) - 1
        tl.at[first, "label"] = (f"{tl.at[first, 'label']!s} (logged {len(idx)} times, last at "
                                 f"{pd.Timestamp(cast(Any, tl.at[last, 'ts'])).strftime('%Y-%m-%d %H:%M:%S')})")
        drop.extend(idx[1:-1])
    return tl.drop(index=drop).reset_index(drop=True)
