"""How each consumer shows, in its own logs, that it handled, dropped or failed an event.

SYSTEM.md §2.5 (idempotency outcomes), §2.6 (offset semantics), §4.1-§4.2 (BOS handlers and their
state guards), §4.5 (ELS handlers), §5.3 (log messages per flow); where the fact sheet names no log
line, the handler's file in HuleEdu's source (``paunchygent/huleedu``, tagged ``[code]``).
:mod:`huledu_forensics.outcomes` reads these tables and never spells a message itself: when HuleEdu's
handlers change, this module changes.

A *handling run* opens on a start line written by the handler's own logger (``Handler.start``), or
by the consumer loop's generic line (``ConsumerLoop.generic_start`` with the event type as an extra
field), and collects the consumer container's following lines until the next start or a quiet gap.
Its outcome is read from the markers below: ``dropped`` (the handler refused the event: wrong state,
duplicate, unknown type), ``failed`` (an exception or a False return: the offset was not committed),
otherwise ``handled``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .names import M_DUPLICATE, M_NOT_READY, M_OFFSET_NOT_COMMITTED, M_PIPELINE_REQUEST, M_STATUS_UPDATE_FAILED
from .topics import TOPICS

__all__ = ["CONSUMER_LOOPS", "HANDLERS", "ConsumerLoop", "Handler", "handlers_for"]

# outcome causes
WRONG_STATE = "wrong_state"
DUPLICATE = "duplicate"
UNKNOWN_TYPE = "unknown_type"
EXCEPTION = "exception"
NO_SLOT = "no_slot"
DENIED = "denied"
STATUS_WRITE_SWALLOWED = "status_write_swallowed"


@dataclass(frozen=True)
class Handler:
    """One consumer's handler for one topic.

    ``loggers``: the handler's logger names; ``start``: message prefixes (on those loggers) that open a
    handling; ``dropped``: ``(message fragment, cause)`` pairs meaning the handler refused the event;
    ``failed``: ``(message fragment, cause)`` pairs meaning it failed for a known reason.
    """

    service: str
    topic: str
    loggers: tuple[str, ...]
    start: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    source: str = "SYSTEM.md §5.3"


@dataclass(frozen=True)
class ConsumerLoop:
    """A consumer process's loop: its container, generic start line and service-wide markers."""

    service: str
    container: str
    generic_start: str | None
    generic_loggers: tuple[str, ...]
    handled: tuple[str, ...]
    failed: tuple[str, ...]
    offset_not_committed: tuple[str, ...]
    duplicate: tuple[str, ...]
    unknown_type: tuple[str, ...]
    # lines of these loggers are never part of a handling (the relay and the REST API share the process)
    foreign_loggers: tuple[str, ...] = ()
    # error lines the handler logs and then carries on from (the offset is committed): the handling
    # stays ``handled``, with this cause
    swallowed: tuple[tuple[str, str], ...] = ()


_RELAY = ("outbox", "outbox_repository", "shared.outbox_manager")

CONSUMER_LOOPS: dict[str, ConsumerLoop] = {
    "bos": ConsumerLoop(
        service="bos", container="huleedu_batch_orchestrator_service",
        generic_start=None, generic_loggers=("bos.kafka.consumer",),
        handled=(),
        failed=("Error handling message from topic", "Error processing message in BOS",
                "Processing failed: Releasing idempotency lock for retry"),
        offset_not_committed=("Error processing message in BOS",),  # BOS commits only after success
        duplicate=("Duplicate message skipped", M_DUPLICATE),
        unknown_type=("Unknown event type", "Unknown topic"),
        foreign_loggers=(*_RELAY, "bos.api", "bos.service.batch_processing", "bos.repository.context",
                         "bos.app", "bos.startup"),
        swallowed=((M_STATUS_UPDATE_FAILED, STATUS_WRITE_SWALLOWED),),  # SYSTEM.md §4.1
    ),
    "els": ConsumerLoop(
        service="els", container="huleedu_essay_lifecycle_worker",
        generic_start="Processing event", generic_loggers=("batch_command_handlers", "worker_main"),
        handled=("Event processed successfully", "Successfully processed and committed message"),
        failed=("Error routing event", "Event processing failed", "Unexpected error processing message",
                "Unexpected error in handle_", M_OFFSET_NOT_COMMITTED,
                "Unhandled exception in consumer loop", "Failed to deserialize message"),
        offset_not_committed=(M_OFFSET_NOT_COMMITTED,),
        duplicate=("Duplicate message skipped", M_DUPLICATE),
        unknown_type=("Unknown event type",),
        foreign_loggers=(*_RELAY, "els.app", "els.api", "essay_lifecycle_service.api"),
    ),
}

_BOS_IMPL = "services/batch_orchestrator_service/implementations/"  # in paunchygent/huleedu

_WRONG_STATE = (("in unexpected state", WRONG_STATE), ("status mismatch", WRONG_STATE),
                ("not in expected state", WRONG_STATE))

H = Handler
HANDLERS: tuple[Handler, ...] = (
    # ---- BOS (each handler has its own logger; SYSTEM.md §4.1, §4.2, §5.3)
    H("bos", "huleedu.batch.content.provisioning.completed.v1",
      ("bos.handlers.content_provisioning_completed",),
      ("Processing content provisioning completed for batch",), _WRONG_STATE),
    H("bos", "huleedu.class.student.associations.confirmed.v1",
      ("bos.handlers.student_associations_confirmed",),
      ("Processing student associations for batch",), _WRONG_STATE,
      source=f"SYSTEM.md §4.1; {_BOS_IMPL}student_associations_confirmed_handler.py [code]"),
    H("bos", "huleedu.els.batch.essays.ready.v1", ("bos.handlers.batch_essays_ready",),
      ("Received BatchEssaysReady for batch",), _WRONG_STATE,
      source=f"SYSTEM.md §4.1; {_BOS_IMPL}batch_essays_ready_handler.py [code]"),
    H("bos", "huleedu.commands.batch.pipeline.v1", ("bos.handlers.client_pipeline_request",),
      (M_PIPELINE_REQUEST,),
      ((M_NOT_READY, WRONG_STATE), ("Pipeline already active for batch", WRONG_STATE),
       ("Pipeline denied", DENIED))),
    H("bos", "huleedu.els.batch.phase.outcome.v1",
      ("bos.handlers.els_batch_phase_outcome", "bos.pipeline.coordinator"),
      ("Received ELS batch phase outcome", "Handling phase conclusion"), _WRONG_STATE,
      source=f"SYSTEM.md §4.3; {_BOS_IMPL}els_batch_phase_outcome_handler.py, "
             f"{_BOS_IMPL}pipeline_phase_coordinator_impl.py [code]"),
    # ---- ELS worker (a generic "Processing event" line opens every handling; SYSTEM.md §5.3)
    H("els", "huleedu.batch.essays.registered.v1", ("batch_coordination_handler",),
      ("Processing BatchEssaysRegistered event",)),
    H("els", "huleedu.file.essay.content.provisioned.v1", ("batch_coordination_handler",),
      ("Processing EssayContentProvisionedV1 event",),
      failed=(("No available slots for content", NO_SLOT),)),
    H("els", "huleedu.file.essay.validation.failed.v1", ("batch_coordination_handler",),
      ("Processing EssayValidationFailedV1 event",)),
    H("els", "huleedu.batch.student.matching.initiate.command.v1", ("student_matching_command_handler",),
      ("Processing student matching initiation command",)),
    H("els", "huleedu.class.student.associations.confirmed.v1", ("student_association_handler",),
      ("Processing student associations confirmed event",)),
    H("els", "huleedu.els.spellcheck.initiate.command.v1", ("spellcheck_command_handler",),
      ("Processing spellcheck initiation command",)),
    H("els", "huleedu.batch.spellcheck.phase.completed.v1", ("spellcheck_result_handler",),
      ("Processing spellcheck phase completed",)),
    H("els", "huleedu.batch.cj_assessment.initiate.command.v1", ("cj_assessment_command_handler",),
      ("Processing CJ assessment initiation command",)),
    H("els", "huleedu.cj_assessment.completed.v1", ("cj_result_handler",),
      ("Processing CJ assessment completion",)),
    H("els", "huleedu.batch.nlp.initiate.command.v2", ("nlp_command_handler",), ()),
    H("els", "huleedu.batch.nlp.analysis.completed.v1", ("nlp_result_handler",), ()),
)
del H

for _h in HANDLERS:  # a handler for a topic the model does not know is a typo
    assert _h.topic in TOPICS and _h.service in TOPICS[_h.topic].consumers, _h


def handlers_for(service: str) -> dict[str, Handler]:
    """The handlers of one consumer service, by topic."""
    return {h.topic: h for h in HANDLERS if h.service == service}
