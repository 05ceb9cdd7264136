"""Kafka consumers: handler failures and rejected pipeline requests (SYSTEM.md §2.6, §4.2)."""

from __future__ import annotations

import pandas as pd

from .. import model
from ..evidence import Evidence
from ..model import names as N
from ..evidence import records
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []


@rule("consumer.handler_failed", severity="error", needs=("logs",))
def handler_failed(ctx: Context) -> list[Finding]:
    """A consumer's handler failed on this batch's event; the offset was not committed.

    **Fires when** a scoped handler error (``Error routing event``, ``Event processing failed``,
    ``Error handling message from topic …``) is logged, with the ``offset not committed`` line that
    follows it in the same container.
    **Evidence** the error lines and the offset line.
    **Usually means** the event was lost for this batch: "offset not committed" is not a retry. The
    consumer keeps consuming; the next successful message on the partition commits past it, and an
    ELS redelivery within 300 s is skipped as a duplicate (SYSTEM.md §2.5, §2.6).
    """
    lg = ctx.ev.logs
    if lg.empty:
        return []
    errs = ctx.ev.log_lines(N.M_HANDLER_ERRORS, startswith=True)
    errs = errs[errs["level"].isin(["error", "critical"])]
    # pipeline-request rejections have their own rule
    errs = errs[~errs["message"].astype(str).str.contains(N.M_NOT_READY, regex=False)
                & (errs["topic"].astype(object) != N.T_PIPELINE_REQUEST)]
    if errs.empty:
        return []
    out = []
    for container, grp in errs.groupby("container"):
        grp = grp.sort_values("ts")
        head = grp.iloc[0].to_dict()
        offs = lg[(lg["container"] == container)
                  & lg["message"].astype(str).str.startswith(N.M_OFFSET_NOT_COMMITTED)
                  & (lg["ts"] >= head["ts"])
                  & (lg["ts"] <= grp["ts"].max() + pd.Timedelta(seconds=2))]
        error_text = next((str(e) for e in grp.get("error", []) if isinstance(e, str) and e), None)
        event_type = next((str(e) for e in grp.get("event_type", []) if isinstance(e, str) and e), None)
        off = offs.iloc[0].to_dict() if not offs.empty else {}
        topic = off.get("topic") if isinstance(off.get("topic"), str) else event_type
        where = (f" (partition {off.get('partition')}, offset {off.get('offset')})" if off else "")
        svc = model.SERVICES.get(str(head.get("service")))
        out.append(Finding(
            id="consumer.handler_failed", severity="error",
            title="Handler failed, offset not committed",
            summary=(f"{svc.title if svc else container} failed handling {topic or 'an event'}{where}"
                     f" at {pd.Timestamp(head['ts']).isoformat()}: {error_text or head.get('message')}. "
                     + ("The offset was not committed, which does not mean a retry: the consumer "
                        "moves on and a later commit on the partition skips this message for good."
                        if off else "")),
            evidence=[EvidenceRef.parse(Evidence.ref(r), r.get("ts"))
                      for r in pd.concat([grp, offs]).sort_values("ts").pipe(records)],
            facts={"service": head.get("service"), "container": container, "topic": topic,
                   "partition": None if not off else _int(off.get("partition")),
                   "offset": None if not off else _int(off.get("offset")), "error": error_text,
                   "offset_not_committed": bool(off)},
        ))
    return out


def _int(v: object) -> int | None:
    try:
        return None if v is None or pd.isna(v) else int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@rule("pipeline.request_rejected", severity="error", needs=("logs",))
def request_rejected(ctx: Context) -> list[Finding]:
    """BOS rejected the client's pipeline request because the batch was not ready.

    **Fires when** BOS logs ``Batch <id> not ready for pipeline execution`` for this batch.
    **Evidence** the rejection lines (with the current and expected status).
    **Usually means** the batch never reached ready_for_pipeline_execution; the API gateway had already
    answered 202, and BOS emits no failure event, so the client only sees a timeout (SYSTEM.md §7).
    """
    rej = ctx.ev.log_lines(N.M_NOT_READY)
    if rej.empty:
        return []
    rej = rej.sort_values("ts")
    first = rej.iloc[0].to_dict()
    corr = next((str(c) for c in rej["correlation_id"] if isinstance(c, str) and c), None)
    raw = str(first.get("raw") or "")
    current = ctx.progress.current_state or "unknown"
    return [Finding(
        id="pipeline.request_rejected", severity="error",
        title="Pipeline request rejected: batch not ready",
        summary=("BOS rejected the pipeline request"
                 + (f" (correlation {corr})" if corr else "")
                 + f" at {pd.Timestamp(first['ts']).isoformat()}: batch {ctx.ev.scope.batch_id} was "
                 f"in {current}, not {N.S_READY}. No failure event is published for this."),
        evidence=[EvidenceRef.parse(Evidence.ref(r), r.get("ts")) for r in rej.pipe(records)],
        facts={"pipeline_correlation_id": corr, "current_status": current,
               "expected_status": N.S_READY, "lines": int(len(rej)),
               "has_current_status": "current_status" in raw},
    )]
