"""The content ledger: where every uploaded file of a batch ended up, per ``text_storage_id``.

upload (File Service ``file_uploads``) → content provisioned (File outbox, EssayContentProvisionedV1)
→ one final place in ELS (SYSTEM.md §4.4, §4.5):

- ``slot``: an ``essay_states`` row carries the text (its status says how far it got);
- ``pending``: parked in ``batch_pending_content`` (arrived before registration);
- ``excess``: ELS published ExcessContentProvisionedV1 for it (no slot was free);
- ``validation_failure``: the file failed validation (File ``failed`` or ELS ``batch_validation_failures``);
- ``lost``: provisioned and published, but ELS holds it nowhere (the handler failed and the event
  was skipped), with ELS's logs able to say whether it took the event (:func:`outcomes.consumption`
  yes or no; when they cannot, e.g. they end before the publication, the item is ``unknown``: ELS
  may not have had it yet);
- ``unpublished``: provisioned, but the row still waits in the File Service's outbox
  (``published_at`` NULL): the event is not lost, it has not left (the outbox rules speak for it);
- ``not_provisioned``: uploaded, but the File Service never produced the provisioned event (its
  outbox was read and holds no row, and no log line shows the event);
- ``unknown``: the ELS tables that would show its place are not in the bundle, or the File outbox
  that would show whether it was provisioned and published is not (or only a log line shows the
  event, whose publication the line alone does not settle); without the File Service's
  ``file_uploads`` the items themselves cannot be listed, and the expected count that the ledger
  cannot account for is counted ``unknown`` (never as a ledger of zero items).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import pandas as pd

from . import _fields as F
from ._frames import is_missing
from ._time import parse_utc
from .evidence import Evidence, payload, records
from .model import columns as C
from .model import names as N
from .outcomes import consumption
from .scope import normalise_id

__all__ = ["LEDGER_COLUMNS", "PLACES", "content_ledger", "ledger_counts"]

PLACES = ("slot", "pending", "excess", "validation_failure", "lost", "unpublished", "not_provisioned",
          "unknown")
LEDGER_COLUMNS = (F.TEXT_STORAGE_ID, F.FILE_UPLOAD_ID, "upload_status", "provisioned", "published",
                  "place", F.ESSAY_ID, "essay_status", "refs")


def _ref(key: tuple[str, str], row: dict[str, object], col: str = C.ID) -> str:
    return f"tables/{key[0]}/{key[1]}.parquet#{col}={row.get(col)}"


def content_ledger(ev: Evidence) -> pd.DataFrame:
    """One row per content item of the batch (see the module doc); columns :data:`LEDGER_COLUMNS`."""
    items: dict[str, dict[str, object]] = {}

    def item(tsid: str | None, fuid: str | None) -> dict[str, object] | None:
        key = tsid or (f"upload:{fuid}" if fuid else None)
        if key is None:
            return None
        if key not in items and fuid:  # the same file known first by its upload id
            alias = f"upload:{fuid}"
            if tsid and alias in items:
                items[key] = items.pop(alias)
                items[key][F.TEXT_STORAGE_ID] = tsid
        it = items.setdefault(key, {F.TEXT_STORAGE_ID: tsid, F.FILE_UPLOAD_ID: fuid,
                                    "upload_status": None, "provisioned": False, "published": False,
                                    "place": None, F.ESSAY_ID: None, "essay_status": None,
                                    "refs": []})
        if fuid and not it[F.FILE_UPLOAD_ID]:
            it[F.FILE_UPLOAD_ID] = fuid
        return it

    for r in ev.batch_rows(N.FILE_UPLOADS).pipe(records):
        it = item(normalise_id(r.get(C.TEXT_STORAGE_ID)), normalise_id(r.get(C.FILE_UPLOAD_ID)))
        if it is not None:
            it["upload_status"] = r.get(C.PROCESSING_STATUS)
            cast(list[str], it["refs"]).append(_ref(N.FILE_UPLOADS, r))
    for r in ev.outbox_for_batch(N.T_CONTENT_PROVISIONED, "file").pipe(records):
        data = payload(r.get(C.EVENT_DATA)).get("data")
        data = data if isinstance(data, dict) else {}
        it = item(normalise_id(data.get(C.TEXT_STORAGE_ID)), normalise_id(data.get(C.FILE_UPLOAD_ID)))
        if it is not None:
            it["provisioned"] = True
            it["published"] = not is_missing(r.get(C.PUBLISHED_AT))
            if it["published"]:
                at = parse_utc(r.get(C.PUBLISHED_AT))
                prev = cast("datetime | None", it.get("_published_at"))
                it["_published_at"] = at if prev is None or (at is not None and at < prev) else prev
            cast(list[str], it["refs"]).append(_ref(N.FILE_OUTBOX, r))
    if not items:
        return pd.DataFrame(columns=list(LEDGER_COLUMNS))
    # a log line carrying the provisioned event for an item (the File relay's, ELS's handling) shows
    # it was produced even when the outbox holds no row for it; whether it was published stays open
    seen = _provisioned_in_logs(ev)
    for it in items.values():
        if not it["provisioned"] and ({it[F.TEXT_STORAGE_ID], it[F.FILE_UPLOAD_ID]} & seen):
            it["provisioned"], it["published"] = True, None

    have_els = ev.has(N.ESSAY_STATES) and ev.has(N.PENDING_CONTENT)
    essays = ev.rows(N.ESSAY_STATES)
    by_tsid = {}
    if not essays.empty and C.TEXT_STORAGE_ID in essays:
        for r in essays.pipe(records):
            t = normalise_id(r.get(C.TEXT_STORAGE_ID))
            if t:
                by_tsid[t] = r
    pend = {normalise_id(r.get(C.TEXT_STORAGE_ID)): r for r in ev.batch_rows(N.PENDING_CONTENT).pipe(records)}
    failed_uploads = {normalise_id(r.get(C.FILE_UPLOAD_ID)): r
                      for r in ev.batch_rows(N.VALIDATION_FAILURES).pipe(records)}
    excess = {}
    for r in ev.outbox_for_batch(N.T_EXCESS_CONTENT, "els").pipe(records):
        data = payload(r.get(C.EVENT_DATA)).get("data")
        t = normalise_id(data.get(C.TEXT_STORAGE_ID)) if isinstance(data, dict) else None
        if t:
            excess[t] = r
    for it in items.values():
        tsid, fuid = it[F.TEXT_STORAGE_ID], it[F.FILE_UPLOAD_ID]
        refs = cast(list[str], it["refs"])
        if tsid in by_tsid:
            e = by_tsid[tsid]
            it.update(place="slot", essay_id=e.get(C.ESSAY_ID), essay_status=e.get(C.CURRENT_STATUS))
            refs.append(_ref(N.ESSAY_STATES, e, C.ESSAY_ID))
        elif it["upload_status"] == N.FILE_FAILED_STATUS or fuid in failed_uploads:
            it["place"] = "validation_failure"
            if fuid in failed_uploads:
                refs.append(_ref(N.VALIDATION_FAILURES, failed_uploads[fuid]))
        elif tsid in pend:
            it["place"] = "pending"
            refs.append(_ref(N.PENDING_CONTENT, pend[tsid]))
        elif tsid in excess:
            it["place"] = "excess"
            refs.append(_ref(N.ELS_OUTBOX, excess[tsid]))
        elif not have_els:
            it["place"] = "unknown"
        elif not it["provisioned"]:
            # no outbox row and no line: not produced, when the outbox was read; else unknown
            it["place"] = "not_provisioned" if ev.has(N.FILE_OUTBOX) else "unknown"
        elif it["published"] is False:
            it["place"] = "unpublished"
        elif it["published"] is None:
            it["place"] = "unknown"
        else:
            # published and held nowhere: lost only when ELS's logs can answer whether it took the
            # event (outcomes.consumption); an event ELS may still be about to handle is not lost
            it["place"] = "unknown" if _els_took(ev, it) == "unknown" else "lost"
    return pd.DataFrame(list(items.values()), columns=list(LEDGER_COLUMNS))


def _els_took(ev: Evidence, it: dict[str, object]) -> str:
    """Whether ELS consumed the item's provisioned event: yes/no/unknown, as the kit's one detector
    answers it for the runs that carry one of the item's ids."""
    ids = {i for i in (it[F.TEXT_STORAGE_ID], it[F.FILE_UPLOAD_ID]) if i}
    runs = ev.runs
    if not runs.empty:
        runs = runs[[bool(ids & set(r)) for r in runs["ids"]]]
    return consumption(runs, N.T_CONTENT_PROVISIONED, "els",
                       published_at=cast("datetime | None", it.get("_published_at")),
                       containers=ev.containers, log_extent=ev.log_extent, recognised=ev.recognised).state


def _provisioned_in_logs(ev: Evidence) -> set[str | None]:
    """The text storage and file upload ids of the scoped log lines that carry the provisioned event."""
    lg = ev.logs
    if lg.empty:
        return set()
    et = lg[F.EVENT_TYPE] if F.EVENT_TYPE in lg.columns else pd.Series(None, index=lg.index)
    topic = lg["topic"] if "topic" in lg.columns else pd.Series(None, index=lg.index)
    hit = lg[(et == N.T_CONTENT_PROVISIONED) | (topic == N.T_CONTENT_PROVISIONED)]
    out: set[str | None] = set()
    for col in (F.TEXT_STORAGE_ID, F.FILE_UPLOAD_ID):
        if col in hit.columns:
            out |= {normalise_id(v) for v in hit[col] if not is_missing(v)}
    out.discard(None)
    return out


def ledger_counts(ledger: pd.DataFrame, expected: int | None, *, uploads_known: bool = True
                  ) -> dict[str, object]:
    """Counts per place against the batch's ``expected_count``. ``uploads_known`` is False when the
    uploads could not be read: the expected items the ledger does not hold are then ``unknown``."""
    counts = {p: int((ledger["place"] == p).sum()) for p in PLACES} if not ledger.empty else \
        dict.fromkeys(PLACES, 0)
    if not uploads_known and expected is not None:
        counts["unknown"] += max(expected - int(len(ledger)), 0)
    return {"expected": expected, "items": int(len(ledger)), **counts}
