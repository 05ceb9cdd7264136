"""The content ledger: every uploaded file of the batch must reach a final place (SYSTEM.md §4.5)."""

from __future__ import annotations

from .. import _fields as F
from .. import model
from ..model import columns as C
from ..model import names as N
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []

_WHERE = {
    "lost": "was provisioned but ELS holds it nowhere (no essay slot, not pending, no excess event)",
    "not_provisioned": "was uploaded but the File Service never produced EssayContentProvisionedV1",
    "excess": "found no free slot and was published as excess content",
}


@rule("content.unplaced", severity="error", needs=(N.FILE_UPLOADS, N.ESSAY_STATES),
      explains=("event.not_produced",))
def unplaced(ctx: Context) -> list[Finding]:
    """A content item of the batch never reached a final place.

    **Fires when** the content ledger (per ``text_storage_id``: upload → provisioned → slot / pending
    / excess / validation failure) has items that are ``lost`` (provisioned, held nowhere in ELS) or
    ``not_provisioned`` (uploaded, no provisioned event) while the batch has not completed content
    provisioning. Parked ``pending`` items have their own rule.
    **Evidence** the upload row and the File outbox row of each item.
    **Usually means** ELS failed handling the item's EssayContentProvisionedV1 and the offset moved
    past it (the content is gone for this batch), or the File Service stopped before publishing.
    """
    led = ctx.progress.ledger
    if led.empty:
        return []
    done = ctx.ev.outbox_for_batch(N.T_CONTENT_COMPLETED, "els")
    if not done.empty:
        return []
    bad = led[led["place"].isin(["lost", "not_provisioned"])]
    if bad.empty:
        return []
    counts = led["place"].value_counts().to_dict()
    tr = ctx.ev.tracker()
    b = ctx.ev.batch()
    expected = (tr or {}).get(C.EXPECTED_COUNT) or (b or {}).get(C.TOTAL_ESSAYS)
    where = "; ".join(f"{r[F.TEXT_STORAGE_ID] or r[F.FILE_UPLOAD_ID]} {_WHERE[r['place']]}"
                      for r in bad.to_dict("records"))
    return [Finding(
        id="content.unplaced", severity="error", title="Content without a final place",
        summary=(f"{len(bad)} of {len(led)} content item(s) of batch {ctx.ev.scope.batch_id} "
                 f"(expected {expected}) have no final place: {where}. Ledger: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "."),
        evidence=[EvidenceRef.parse(x, None, str(r["place"])) for r in bad.to_dict("records")
                  for x in r["refs"]],
        facts={"service": "els", "unplaced": int(len(bad)), "items": int(len(led)),
               "expected": expected, "places": {str(k): int(v) for k, v in counts.items()},
               "text_storage_ids": [str(t) for t in bad[C.TEXT_STORAGE_ID] if t]},
    )]


@rule("content.excess_unconsumed", severity="warning", needs=(N.ELS_OUTBOX,),
      explains=())
def excess_unconsumed(ctx: Context) -> list[Finding]:
    """ELS published ExcessContentProvisioned for the batch, and no service consumes that event.

    **Fires when** the ELS outbox holds an ExcessContentProvisionedV1 row for the batch.
    **Evidence** the outbox row.
    **Usually means** more files arrived than the batch has slots (or every slot was locked): the
    content is announced as excess, no consumer handles the topic (SYSTEM.md §3.2), so nobody acts on
    it and the user's file silently drops out of the batch.
    """
    rows = ctx.ev.outbox_for_batch(N.T_EXCESS_CONTENT, "els")
    if rows.empty:
        return []
    consumers = model.TOPICS[N.T_EXCESS_CONTENT].consumers
    key = N.ELS_OUTBOX
    return [Finding(
        id="content.excess_unconsumed", severity="warning", title="Excess content, consumed by nobody",
        summary=(f"ELS published {len(rows)} {N.T_EXCESS_CONTENT} event(s) for batch "
                 f"{ctx.ev.scope.batch_id}; "
                 + ("no service consumes this topic, so the content is dropped from the batch."
                    if not consumers else f"its consumers are {', '.join(consumers)}.")),
        evidence=[EvidenceRef(f"tables/{key[0]}/{key[1]}.parquet", f"id={i}") for i in rows[C.ID]],
        facts={"service": "els", "events": int(len(rows)), "consumers": list(consumers),
               "topic": N.T_EXCESS_CONTENT},
    )]
