"""Kafka consumers: handler failures and rejected pipeline requests (SYSTEM.md §2.6, §4.2)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import pandas as pd

from .. import model
from .._frames import is_missing
from ..evidence import Evidence, records
from ..model import columns as C
from ..model import names as N
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []


@rule("consumer.handler_failed", severity="error", needs=("logs",),
      explains=("tracker.registered_without_essays", "tracker.missing", "pending.orphaned_content",
                "content.unplaced", "event.not_produced"))
def handler_failed(ctx: Context) -> list[Finding]:
    """A consumer's handler failed on this batch's event; the offset was not committed.

    **Fires when** a handling run of this batch's event (see ``huledu_forensics.outcomes``) ended
    ``failed``: the handler raised or returned False (``Error routing event``, ``Event processing
    failed``, ``Error handling message from topic …``), usually followed by ``offset not committed``.
    **Evidence** the run's start line, its error lines and the offset line.
    **Usually means** the event was lost for this batch: "offset not committed" is not a retry. The
    consumer keeps consuming; the next successful message on the partition commits past it, and an
    ELS redelivery within 300 s is skipped as a duplicate (SYSTEM.md §2.5, §2.6).
    """
    runs = ctx.ev.runs
    if runs.empty:
        return []
    failed = runs[runs["outcome"] == "failed"]
    out = []
    for (container, topic), grp in failed.groupby(["container", "topic"], sort=False):
        rs = grp.sort_values("started_at").pipe(records)
        head = rs[0]
        svc = model.SERVICES.get(str(head["service"]))
        part, off = _int(head.get("partition")), _int(head.get("offset"))
        where = f" (partition {part}, offset {off})" if part is not None else ""
        lines = ctx.ev.logs
        err = None
        if not lines.empty and "error" in lines:
            refs = set(cast(list[str], head["lines"]))
            mine = lines[(lines["source_file"].astype(str) + "#L" + lines["line_no"].astype(str))
                          .isin(refs)]
            err = next((str(e) for e in mine["error"] if isinstance(e, str) and e), None)
        out.append(Finding(
            id="consumer.handler_failed", severity="error",
            title="Handler failed, offset not committed",
            summary=(f"{svc.title if svc else container} failed handling {topic}{where} at "
                     f"{pd.Timestamp(cast(datetime, head['started_at'])).isoformat()}: {err or head['detail']}. "
                     + (f"{len(rs)} handling(s) failed. " if len(rs) > 1 else "")
                     + ("The offset was not committed, which does not mean a retry: the consumer "
                        "moves on and a later commit on the partition skips this message for good."
                        if head["offset_not_committed"] else "")),
            evidence=[EvidenceRef.parse(str(ref), pd.Timestamp(t).to_pydatetime(), "handling run")
                      for r in rs[:5]
                      for ref, t in zip(r["refs"], r["ref_times"])],  # type: ignore[call-overload]  # run rows: lists
            facts={"service": head["service"], "container": container, "topic": topic,
                   "partition": part, "offset": off, "error": err or head["detail"],
                   "cause": head["cause"], "failed_handlings": len(rs),
                   "offset_not_committed": bool(head["offset_not_committed"])},
        ))
    return out


def _int(v: object) -> int | None:
    try:
        return None if v is None or is_missing(v) else int(v)  # type: ignore[call-overload]  # a non-number raises into the except
    except (TypeError, ValueError):
        return None


@rule("pipeline.request_rejected", severity="error", needs=("logs",),
      explains=())
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
    corr = next((str(c) for c in rej[C.CORRELATION_ID] if isinstance(c, str) and c), None)
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
        facts={"pipeline_correlation_id": corr, C.CURRENT_STATUS: current,
               "expected_status": N.S_READY, "lines": int(len(rej)),
               "has_current_status": C.CURRENT_STATUS in raw},
    )]


@rule("status.write_failed", severity="error", needs=("logs",),
      explains=("event.handled_no_transition", "state.dwell_exceeded", "pipeline.request_rejected"))
def status_write_failed(ctx: Context) -> list[Finding]:
    """BOS handled the batch's event but its status write failed and was swallowed.

    **Fires when** BOS logs ``Failed to update batch <id> status: …`` for this batch.
    **Evidence** the error line (and the handling run it belongs to).
    **Usually means** ``update_batch_status`` caught a database error (often a drifted
    ``batch_status_enum``), logged it and returned False; the GUEST content-completed handler ignores
    that, commits the offset and stores the essays, so the event counts as handled while
    ``batches.status`` never moves (SYSTEM.md §4.1). Nothing will retry it.
    """
    lines = ctx.ev.log_lines(N.M_STATUS_UPDATE_FAILED, startswith=True)
    if lines.empty:
        return []
    lines = lines.sort_values("ts")
    first = lines.iloc[0].to_dict()
    return [Finding(
        id="status.write_failed", severity="error", title="Status write failed and was swallowed",
        summary=(f"BOS failed to write batch {ctx.ev.scope.batch_id}'s status at "
                 f"{pd.Timestamp(first['ts']).isoformat()}: {str(first.get('message'))[:240]}. The "
                 "handler went on and committed the offset, so the batch stays in "
                 f"{ctx.progress.current_state} for good."),
        evidence=[EvidenceRef.parse(Evidence.ref(r), r.get("ts")) for r in lines.pipe(records)],
        facts={"service": "bos", "lines": int(len(lines)), "state": ctx.progress.current_state},
    )]
