"""The batch's flow: the awaited event's life, and time spent in a state (SYSTEM.md §4)."""

from __future__ import annotations

from .. import model
from ..model import columns as C
from ..model import names as N
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []


def _blocked(ctx: Context) -> bool:
    """The wait is abnormal: the dwell passed, or the client already tried and was turned away."""
    return ctx.progress.dwell_exceeded or not ctx.ev.log_lines(N.M_NOT_READY).empty


@rule("event.not_produced", severity="error", needs=("outbox",),
      explains=("pipeline.request_rejected", "state.dwell_exceeded"))
def not_produced(ctx: Context) -> list[Finding]:
    """The event the batch waits for was never produced.

    **Fires when** the awaited transition's trigger event has no row in its producer's outbox, and
    the wait is abnormal (dwell exceeded, or a pipeline request was already turned away).
    **Evidence** the producer's outbox (no such row), the awaited step.
    **Usually means** the producer's handler never reached the point of publishing; look at the
    findings earlier in the chain.
    """
    aw = ctx.progress.awaited
    if aw is None or aw.produced is not False or not _blocked(ctx):
        return []
    key = N.OUTBOXES.get(aw.producer or "")
    prod = model.SERVICES[aw.producer].title if aw.producer in model.SERVICES else aw.producer
    return [Finding(
        id="event.not_produced", severity="error", title="Awaited event never produced",
        summary=(f"{aw.topic} was never produced: {prod}'s outbox has no row for batch "
                 f"{ctx.ev.scope.batch_id}, so the transition to '{aw.step}' cannot happen."),
        evidence=[EvidenceRef(f"tables/{key[0]}/{key[1]}.parquet", f"topic={aw.topic}",
                              note="no row")] if key else [],
        facts={"topic": aw.topic, "producer": aw.producer, "step": aw.step, "produced": False},
    )]


@rule("event.not_published", severity="error", needs=("outbox",),
      explains=("pipeline.request_rejected", "state.dwell_exceeded"))
def not_published(ctx: Context) -> list[Finding]:
    """The awaited event was written to the outbox but never relayed to Kafka.

    **Fires when** the trigger event's outbox row exists with ``published_at`` NULL.
    **Evidence** the outbox row.
    **Usually means** a poisoned row or a stopped relay (see the outbox findings).
    """
    aw = ctx.progress.awaited
    if aw is None or not aw.produced or aw.published is not False:
        return []
    return [Finding(
        id="event.not_published", severity="error", title="Awaited event never published",
        summary=(f"{aw.topic} for batch {ctx.ev.scope.batch_id} sits in the {aw.producer} outbox "
                 "unpublished, so its consumer never received it."),
        evidence=[EvidenceRef.parse(e) for e in aw.evidence],
        facts={"topic": aw.topic, "producer": aw.producer, "produced": True, "published": False},
    )]


@rule("event.not_consumed", severity="error", needs=("logs",),
      explains=("pipeline.request_rejected", "state.dwell_exceeded"))
def not_consumed(ctx: Context) -> list[Finding]:
    """The awaited event was published but its consumer shows no handling of it.

    **Fires when** the trigger event was published, the consumer's container ran and its logs cover
    the time after publication, they hold no handling run of the event for this batch
    (``huledu_forensics.outcomes``), and the wait is abnormal. When the consumer's logs are missing or
    empty, or its container never ran, consumption is *unknown* and this rule does not fire.
    **Evidence** the published outbox row; the consumer's log extent.
    **Usually means** the consumer is lagging or stopped consuming, or skipped the message (commit past
    an earlier failure on the partition).
    """
    aw = ctx.progress.awaited
    if aw is None or not aw.published or aw.consumed is not False or not _blocked(ctx):
        return []
    return [Finding(
        id="event.not_consumed", severity="error", title="Awaited event never consumed",
        summary=(f"{aw.topic} for batch {ctx.ev.scope.batch_id} was published"
                 + (f" at {aw.published_at.isoformat()}" if aw.published_at else "")
                 + f", but {aw.consumed_reason or (str(aw.consumer) + ' logged no handling of it')}."),
        evidence=[EvidenceRef.parse(e) for e in aw.evidence],
        facts={"topic": aw.topic, "consumer": aw.consumer, "service": aw.consumer, "published": True,
               "consumed": False},
    )]


@rule("event.dropped", severity="error", needs=("logs",),
      explains=("pipeline.request_rejected", "state.dwell_exceeded"))
def dropped(ctx: Context) -> list[Finding]:
    """The awaited event reached its consumer, whose handler refused it.

    **Fires when** the consumer's handling run of the awaited event for this batch (at or after its
    publication) ended ``dropped``: wrong state (``Batch … in unexpected state: …``), a duplicate or
    idempotency skip, an unknown event type.
    **Evidence** the handling run's lines in the consumer's log.
    **Usually means** events arrived out of order (e.g. ELS's BatchEssaysReady before BOS recorded
    StudentAssociationsConfirmed) or were redelivered; the handler returned without a state change and
    nothing will send the event again, so the batch waits for ever. Not consumer lag.
    """
    aw = ctx.progress.awaited
    if aw is None or aw.consumed is not True or aw.outcome != "dropped":
        return []
    svc = model.SERVICES[aw.consumer].title if aw.consumer in model.SERVICES else aw.consumer
    return [Finding(
        id="event.dropped", severity="error", title="Awaited event dropped by its handler",
        summary=(f"{svc} handled {aw.topic} for batch {ctx.ev.scope.batch_id}"
                 + (f" at {aw.consumed_at.isoformat()}" if aw.consumed_at else "")
                 + f" and dropped it ({aw.outcome_cause}): \"{aw.outcome_detail}\". The batch stayed "
                 f"in {ctx.progress.current_state}; no redelivery will move it."),
        evidence=[EvidenceRef.parse(e, None, "handling run") for e in aw.handling_refs],
        facts={"topic": aw.topic, "consumer": aw.consumer, "service": aw.consumer,
               "cause": aw.outcome_cause, "detail": aw.outcome_detail, "consumed": True,
               "outcome": "dropped"},
    )]


@rule("state.dwell_exceeded", severity="warning", needs=(),
      explains=())
def dwell_exceeded(ctx: Context) -> list[Finding]:
    """The batch has been in its current state longer than a healthy batch stays there.

    **Fires when** the time from entering the current step to collection exceeds the step's expected
    dwell in the model.
    **Evidence** the step's entry evidence.
    **Usually means** the batch is stuck; the chain above says why.
    """
    p = ctx.progress
    if not p.dwell_exceeded or p.waited_s is None:
        return []
    limit = p.awaited.expected_dwell_s if p.awaited else None
    return [Finding(
        id="state.dwell_exceeded", severity="warning", title="Stuck longer than expected",
        summary=(f"Batch {ctx.ev.scope.batch_id} has been at '{p.current_step}' "
                 f"({p.current_state}) for {p.waited_s:.0f} s"
                 + (f", longer than the expected {limit:.0f} s" if limit else "") + "."),
        evidence=[EvidenceRef(f"tables/{N.BATCHES[0]}/{N.BATCHES[1]}.parquet",
                              f"id={ctx.ev.scope.batch_id}")],
        facts={"step": p.current_step, "state": p.current_state, "waited_s": p.waited_s,
               "expected_dwell_s": limit},
    )]


@rule("pipeline.phase_failed", severity="error", needs=(N.BATCHES,),
      explains=("state.dwell_exceeded", "pipeline.request_rejected"))
def phase_failed(ctx: Context) -> list[Finding]:
    """A requested pipeline phase of the batch ended failed.

    **Fires when** ``batches.pipeline_configuration`` holds a requested phase whose status is
    ``failed`` or ``skipped_due_to_dependency_failure``.
    **Evidence** the BOS batches row (its pipeline_configuration).
    **Usually means** ELS reported the phase as failed (every essay of it failed) or a phase it
    depends on failed; BOS's pipeline stops there and no BatchPipelineCompletedV1 follows for it.
    """
    ph = ctx.progress.phases
    if ph.empty:
        return []
    bad = ph[ph["status"].isin(N.PHASE_FAILED_STATUSES) & ph["requested"].astype(bool)]
    if bad.empty:
        return []
    return [Finding(
        id="pipeline.phase_failed", severity="error", title="Pipeline phase failed",
        summary=(f"Batch {ctx.ev.scope.batch_id}: requested phase(s) "
                 + ", ".join(f"{r['phase']} ({r['status']})" for r in bad.to_dict("records"))
                 + " did not complete."),
        evidence=[EvidenceRef(f"tables/{N.BATCHES[0]}/{N.BATCHES[1]}.parquet",
                              f"id={ctx.ev.scope.batch_id}", note=C.PIPELINE_CONFIGURATION)],
        facts={"phases": {str(r["phase"]): str(r["status"]) for r in bad.to_dict("records")},
               "service": "els"},
    )]


@rule("event.handled_no_transition", severity="error", needs=("logs",),
      explains=("pipeline.request_rejected", "state.dwell_exceeded"))
def handled_no_transition(ctx: Context) -> list[Finding]:
    """The consumer handled the awaited event without error, yet the batch did not move.

    **Fires when** the awaited event's handling run for this batch ended ``handled`` (no refusal, no
    failure logged) while the batch is still in the state before it and the wait is abnormal.
    **Evidence** the handling run's lines; the batch's current status.
    **Usually means** the handler's state write did not happen or did not persist (a swallowed error,
    a rolled-back transaction, a guard that returns silently): read the handler's code path for this
    state. When a swallowed status write is logged, that finding explains this one.
    """
    aw = ctx.progress.awaited
    if aw is None or aw.consumed is not True or aw.outcome != "handled" or not _blocked(ctx):
        return []
    svc = model.SERVICES[aw.consumer].title if aw.consumer in model.SERVICES else aw.consumer
    return [Finding(
        id="event.handled_no_transition", severity="error",
        title="Awaited event handled, no transition",
        summary=(f"{svc} handled {aw.topic} for batch {ctx.ev.scope.batch_id}"
                 + (f" at {aw.consumed_at.isoformat()}" if aw.consumed_at else "")
                 + f" with no error or refusal logged, but the batch is still in "
                 f"{ctx.progress.current_state}: the transition to '{aw.step}' was not written."),
        evidence=[EvidenceRef.parse(e, None, "handling run") for e in aw.handling_refs],
        facts={"topic": aw.topic, "consumer": aw.consumer, "service": aw.consumer,
               "state": ctx.progress.current_state, "consumed": True, "outcome": "handled"},
    )]
