"""ELS registration and slots: trackers, essay rows, pending content, validation failures (§4.5)."""

from __future__ import annotations

from ..evidence import records
from ..model import columns as C
from ..model import names as N
from ..timeline import row_ref
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []


def _refs(key: tuple[str, str], rows: list[dict[str, object]], note: str = "") -> list[EvidenceRef]:
    return [EvidenceRef.parse(row_ref(key[0], key[1], r), r.get(C.CREATED_AT), note) for r in rows]


@rule("tracker.registered_without_essays", severity="error",
      needs=(N.TRACKERS, N.ESSAY_STATES),
      explains=("pending.orphaned_content", "event.not_produced"))
def registered_without_essays(ctx: Context) -> list[Finding]:
    """ELS registered the batch (tracker present) but holds no essay rows for it.

    **Fires when** a ``batch_essay_trackers`` row exists for the batch and ``essay_states`` has none
    of its expected essays.
    **Evidence** the tracker row; the (empty) essay_states selection; its slot_assignments rows.
    **Usually means** partial registration: before commit 9f693272 the tracker was committed in its own
    session, so an essay INSERT failure rolled back the essays only (SYSTEM.md §8.2).
    """
    tr = ctx.ev.tracker()
    if tr is None:
        return []
    essays = ctx.progress.essays
    with_rows = int(essays["has_row"].sum()) if not essays.empty else 0
    if with_rows:
        return []
    slots = ctx.ev.rows(N.SLOT_ASSIGNMENTS)
    if not slots.empty and C.BATCH_TRACKER_ID in slots:
        slots = slots[slots[C.BATCH_TRACKER_ID] == tr.get(C.ID)]
    expected = tr.get(C.EXPECTED_COUNT)
    return [Finding(
        id="tracker.registered_without_essays", severity="error",
        title="Tracker present, no essay rows",
        summary=(f"ELS has a tracker for batch {ctx.ev.scope.batch_id} (expected_count {expected}, "
                 f"{len(slots)} slot_assignments rows) but 0 essay_states rows: registration was "
                 "partial, so there are no slots to assign content to. (available_slots is a legacy "
                 "field and proves nothing.)"),
        evidence=_refs(N.TRACKERS, [tr], "tracker row") + _refs(N.SLOT_ASSIGNMENTS,
                                                                slots.pipe(records)),
        facts={"tracker": True, C.EXPECTED_COUNT: expected, "essay_state_rows": 0,
               "slot_rows": int(len(slots))},
    )]


@rule("tracker.missing", severity="error", needs=(N.TRACKERS, N.BOS_OUTBOX),
      explains=("pending.orphaned_content", "event.not_produced"))
def tracker_missing(ctx: Context) -> list[Finding]:
    """BOS registered and published the batch, but ELS has no tracker for it.

    **Fires when** BOS's outbox holds a published BatchEssaysRegistered row for the batch and
    ``batch_essay_trackers`` has no row.
    **Evidence** the BOS outbox row.
    **Usually means** ELS failed handling the registration and rolled it back whole (after commit
    9f693272), or never consumed it. Past registration a missing tracker is normal: ELS deletes it
    about 5 minutes after the cj_assessment outcome.
    """
    if ctx.ev.tracker() is not None or ctx.progress.current_step != "registered":
        # past registration, a missing tracker is ELS's delayed cleanup (SYSTEM.md §1.3), not a fault
        return []
    reg = ctx.ev.outbox_for_batch(N.T_REGISTERED, "bos")
    if reg.empty or not reg[C.PUBLISHED_AT].notna().any():
        return []
    return [Finding(
        id="tracker.missing", severity="error", title="No ELS tracker for a registered batch",
        summary=(f"BOS published {N.T_REGISTERED} for batch {ctx.ev.scope.batch_id}, but ELS has no "
                 "batch_essay_trackers row and no essay_states rows: ELS's registration did not "
                 "persist."),
        evidence=_refs(N.BOS_OUTBOX, reg.pipe(records), "registration published"),
        facts={"tracker": False, "essay_state_rows": int(ctx.progress.essays["has_row"].sum())
               if not ctx.progress.essays.empty else 0},
    )]


@rule("pending.orphaned_content", severity="error", needs=(N.PENDING_CONTENT,),
      explains=("event.not_produced",))
def orphaned_pending(ctx: Context) -> list[Finding]:
    """Content that arrived before registration was never assigned to a slot.

    **Fires when** ``batch_pending_content`` rows remain for the batch although its tracker exists
    (they are deleted after assignment during registration), or BOS's registration was published and
    ELS still has no tracker.
    **Evidence** the pending rows.
    **Usually means** registration phase 2 (processing pending content) never ran: phase 1 failed.
    """
    pend = ctx.ev.batch_rows(N.PENDING_CONTENT)
    if pend.empty:
        return []
    tracker = ctx.ev.tracker() is not None
    reg = ctx.ev.outbox_for_batch(N.T_REGISTERED, "bos")
    registered = not reg.empty and reg[C.PUBLISHED_AT].notna().any()
    if not tracker and not registered:
        return []
    tsids = [str(t) for t in pend[C.TEXT_STORAGE_ID]]
    return [Finding(
        id="pending.orphaned_content", severity="error", title="Orphaned pending content",
        summary=(f"{len(pend)} batch_pending_content row(s) for batch {ctx.ev.scope.batch_id} "
                 f"({', '.join(tsids)}) were never assigned to essay slots although the batch is "
                 f"{'registered in ELS' if tracker else 'registered in BOS'}."),
        evidence=_refs(N.PENDING_CONTENT, pend.pipe(records)),
        facts={"pending_content": int(len(pend)), "text_storage_ids": tsids, "tracker": tracker},
    )]


@rule("validation.failures_block_completion", severity="critical",
      needs=(N.VALIDATION_FAILURES, N.ESSAY_STATES),
      explains=("event.not_produced",))
def validation_blocks(ctx: Context) -> list[Finding]:
    """Files failed validation, so the batch's empty slots never fill and it never completes.

    **Fires when** the batch has validation failures (ELS ``batch_validation_failures`` or File
    Service uploads in ``failed``) while essays remain ``uploaded`` and no
    BatchContentProvisioningCompletedV1 was produced.
    **Evidence** the failure rows; the essays still ``uploaded``.
    **Usually means** ELS's completion check counts ``uploaded`` essay rows and ignores slots flipped
    to ``failed`` (SYSTEM.md §4.5, [inferred]): k failed files leave k slots open for ever.
    """
    fails = ctx.ev.batch_rows(N.VALIDATION_FAILURES)
    uploads = ctx.ev.batch_rows(N.FILE_UPLOADS)
    failed_uploads = uploads[uploads[C.PROCESSING_STATUS] == N.FILE_FAILED_STATUS] if not uploads.empty else uploads
    if fails.empty and failed_uploads.empty:
        return []
    essays = ctx.progress.essays
    open_slots = essays[essays[C.CURRENT_STATUS] == N.ESSAY_EMPTY_SLOT] if not essays.empty else essays
    done = ctx.ev.outbox_for_batch(N.T_CONTENT_COMPLETED, "els")
    if open_slots.empty or not done.empty:
        return []
    codes = sorted({str(c) for c in fails.get(C.VALIDATION_ERROR_CODE, []) if c} |
                   {str(c) for c in failed_uploads.get(C.VALIDATION_ERROR_CODE, []) if c})
    k = max(len(fails), len(failed_uploads))
    return [Finding(
        id="validation.failures_block_completion", severity="critical",
        title="Validation failures keep the batch from completing",
        summary=(f"{k} file(s) of batch {ctx.ev.scope.batch_id} failed validation "
                 f"({', '.join(codes) or 'no code'}); ELS still counts {len(open_slots)} essay(s) as "
                 f"'{N.ESSAY_EMPTY_SLOT}' and only publishes {N.T_CONTENT_COMPLETED} when none are, "
                 "so the batch can never complete."),
        evidence=_refs(N.VALIDATION_FAILURES, fails.pipe(records))
        + _refs(N.FILE_UPLOADS, failed_uploads.pipe(records), "upload failed")
        + [EvidenceRef(f"tables/{N.ESSAY_STATES[0]}/{N.ESSAY_STATES[1]}.parquet",
                       f"essay_id={e}", note="still uploaded") for e in open_slots[C.ESSAY_ID]],
        facts={"failed_files": k, "codes": codes, "open_slots": int(len(open_slots)),
               "service": "els",  # ELS's completion check is the one that never fires
               "file_upload_ids": [str(f) for f in
                                   fails.get(C.FILE_UPLOAD_ID, [])]},
    )]
