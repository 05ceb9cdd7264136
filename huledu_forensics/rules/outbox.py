"""The transactional outbox and its relay (SYSTEM.md §2.1–§2.3)."""

from __future__ import annotations

import pandas as pd

from ..evidence import Evidence, records
from ..model import columns as C
from ..model import names as N
from ..timeline import row_ref
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []


def _awaited_topic(ctx: Context) -> str | None:
    return ctx.progress.awaited.topic if ctx.progress.awaited else None


@rule("outbox.poisoned", severity="critical", needs=("outbox",),
      explains=("event.not_published", "outbox.unpublished"))
def poisoned(ctx: Context) -> list[Finding]:
    """An outbox row reached the relay's retry limit and will never be published.

    **Fires when** a scoped outbox row has ``published_at`` NULL and ``retry_count`` at the limit (5)
    or a ``last_error``.
    **Evidence** the row; the relay's ``Event exceeded max retries`` lines.
    **Usually means** the event is stuck for good: the relay marks it failed on every poll but never
    publishes it (SYSTEM.md §2.3). Critical when it carries the event the batch is waiting for.
    """
    ob = ctx.ev.outbox()
    if ob.empty:
        return []
    bad = ob[ob[C.PUBLISHED_AT].isna() & ((pd.to_numeric(ob[C.RETRY_COUNT], errors="coerce")
                                           .fillna(0) >= N.OUTBOX_MAX_RETRIES)
                                          | ob[C.LAST_ERROR].notna())]
    out = []
    for r in bad.pipe(records):
        topic = r.get(C.TOPIC) or r.get(C.EVENT_TYPE)
        relay = ctx.ev.log_lines((N.M_RELAY_MAX_RETRIES, N.M_RELAY_PUBLISH_FAILED), startswith=True)
        relay = relay[relay["outbox_id"].astype(object) == str(r.get(C.ID)).lower()] \
            if not relay.empty and "outbox_id" in relay else relay.iloc[0:0]
        sev = "critical" if topic == _awaited_topic(ctx) else "error"
        key = N.OUTBOXES[str(r["service"])]
        out.append(Finding(
            id="outbox.poisoned", severity=sev, title="Outbox row poisoned, never published",
            summary=(f"The {str(r['service']).upper()} outbox row {r.get(C.ID)} for {topic} "
                     f"(aggregate {r.get(C.AGGREGATE_ID)}) has retry_count {r.get(C.RETRY_COUNT)} and "
                     f"last_error '{r.get(C.LAST_ERROR)}', with published_at NULL: the relay will "
                     "never publish it."),
            evidence=[EvidenceRef.parse(row_ref(key[0], key[1], r), r.get(C.CREATED_AT))]
            + [EvidenceRef.parse(Evidence.ref(x), x.get("ts")) for x in relay.head(5).pipe(records)],
            facts={"service": r["service"], "outbox_id": r.get(C.ID), "topic": topic,
                   C.RETRY_COUNT: r.get(C.RETRY_COUNT), C.LAST_ERROR: r.get(C.LAST_ERROR),
                   "relay_lines": int(len(relay))},
        ))
    return out


@rule("outbox.unpublished", severity="warning", needs=("outbox",),
      explains=("event.not_published",))
def unpublished(ctx: Context) -> list[Finding]:
    """An outbox row is still unpublished long after it was written.

    **Fires when** a scoped outbox row has ``published_at`` NULL, is below the retry limit, and is
    older than the slowest relay poll plus back-off (30 s) at collection time.
    **Evidence** the row.
    **Usually means** the relay of that service is not running (or cannot reach Kafka).
    """
    ob = ctx.ev.outbox()
    if ob.empty:
        return []
    retries = pd.to_numeric(ob[C.RETRY_COUNT], errors="coerce").fillna(0)
    age = (pd.Timestamp(ctx.ev.collected_at) - ob[C.CREATED_AT]).dt.total_seconds()
    bad = ob[ob[C.PUBLISHED_AT].isna() & (retries < N.OUTBOX_MAX_RETRIES) & ob[C.LAST_ERROR].isna()
             & (age > N.RELAY_MAX_POLL_S)]
    out = []
    for r in bad.pipe(records):
        key = N.OUTBOXES[str(r["service"])]
        topic = r.get(C.TOPIC) or r.get(C.EVENT_TYPE)
        out.append(Finding(
            id="outbox.unpublished", severity="warning", title="Outbox row not yet published",
            summary=(f"The {str(r['service']).upper()} outbox row for {topic} written at "
                     f"{pd.Timestamp(r[C.CREATED_AT]).isoformat()} is still unpublished at collection "
                     "time: is that service's relay running?"),
            evidence=[EvidenceRef.parse(row_ref(key[0], key[1], r), r.get(C.CREATED_AT))],
            facts={"service": r["service"], "outbox_id": r.get(C.ID), "topic": topic},
        ))
    return out
