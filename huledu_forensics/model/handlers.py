"""How each consumer shows, in its own logs, that it handled, dropped or failed an event.

SYSTEM.md §2.5 (idempotency outcomes), §2.6 (offset semantics), §4.1-§4.2 (BOS handlers and their
state guards), §4.5 (ELS handlers), §5.3 (log messages per flow); where the fact sheet names no log
line, the handler's file in HuleEdu's source (``paunchygent/huleedu``, tagged ``[code]``;
``@<commit>`` names the version read when the files' versions differ).
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
from .services import SERVICES
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
ESSAY_FAILED = "essay_failed"  # one essay of a batch event failed; the handler carried on with the rest


@dataclass(frozen=True)
class Handler:
    """One consumer's handler for one topic.

    ``loggers``: the handler's logger names; ``start``: message prefixes (on those loggers) that open a
    handling; ``dropped``: ``(message fragment, cause)`` pairs meaning the handler refused the event;
    ``failed``: ``(message fragment, cause)`` pairs meaning it failed for a known reason;
    ``reported_errors``: fragments of error-level lines the handler writes to report what the event
    says (BOS logs each validation failure it receives), which are not a failure of the handling.
    """

    service: str
    topic: str
    loggers: tuple[str, ...]
    start: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    source: str = "SYSTEM.md §5.3"
    reported_errors: tuple[str, ...] = ()


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
    # the loop commits the offset after a failed handling too (it logs the error and moves on), so a
    # failure is not redelivered; without this a failure with no offset marker counts as uncommitted
    commits_on_failure: bool = False
    source: str = "SYSTEM.md §2.6"


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


def _app(service: str) -> str:
    """The container whose process runs ``service``'s Kafka consumer (its only container if the
    model names no consumer container)."""
    svc = SERVICES[service]
    return svc.consumer_container or svc.containers[0]


# the shared idempotency decorator (idempotency_v2) skips a redelivered or concurrently claimed
# event before the handler logs anything, on its own logger, with the event's topic in ``extra``
_IDEMPOTENCY_SKIPS = (M_DUPLICATE, "RACE_CONDITION_LOST")
_IDEMPOTENCY_RELEASED = "Processing failed: Releasing idempotency lock for retry"  # SYSTEM.md §2.5
_IDEMPOTENCY_SRC = "libs/huleedu_service_libs/src/huleedu_service_libs/idempotency_v2.py@087b4f48"

CONSUMER_LOOPS.update({
    # one topic besides the LLM callbacks; False return: warning, offset not committed; exception in
    # the loop: error, not committed
    "cj": ConsumerLoop(
        service="cj", container=_app("cj"),
        generic_start=None, generic_loggers=("cj_assessment.kafka.consumer",),
        handled=("CJ assessment message processed successfully",),
        failed=("Message processing failed, not committing", "Error processing message:",
                "Error processing CJ assessment message", "Failed to parse CJ assessment message",
                _IDEMPOTENCY_RELEASED),
        offset_not_committed=("Message processing failed, not committing", "Error processing message:"),
        duplicate=(*_IDEMPOTENCY_SKIPS, "Duplicate message skipped, not committing offset"),
        unknown_type=("Received message from unknown topic",),
        foreign_loggers=_RELAY,
        source=f"services/cj_assessment_service/kafka_consumer.py@055c3f16; {_IDEMPOTENCY_SRC} [code]",
    ),
    # the handler logs an error, publishes a failed result and returns True; the loop commits every
    # message, failed or not
    "spellchecker": ConsumerLoop(
        service="spellchecker", container=_app("spellchecker"),
        generic_start=None, generic_loggers=("spell_checker.kafka.consumer",),
        handled=(),
        failed=("Structured error processing message offset", "Unhandled error processing message offset",
                _IDEMPOTENCY_RELEASED),
        offset_not_committed=(),
        duplicate=_IDEMPOTENCY_SKIPS,
        unknown_type=(),
        foreign_loggers=_RELAY,
        commits_on_failure=True,
        source=f"services/spellchecker_service/kafka_consumer.py@e8eef027; {_IDEMPOTENCY_SRC} [code]",
    ),
    # commits after success, failure and duplicate alike; deserialisation failures are acknowledged
    "ras": ConsumerLoop(
        service="ras", container=_app("ras"),
        generic_start=None, generic_loggers=("result_aggregator.kafka_consumer",),
        handled=(),
        failed=("Failed to process message", "Processing failed with an unexpected error",
                "Failed to deserialize or validate message", _IDEMPOTENCY_RELEASED),
        offset_not_committed=(),
        duplicate=_IDEMPOTENCY_SKIPS,
        unknown_type=("Unhandled topic:",),
        foreign_loggers=_RELAY,
        commits_on_failure=True,
        source=f"services/result_aggregator_service/kafka_consumer.py@05b45628; {_IDEMPOTENCY_SRC} [code]",
    ),
    # handlers log only their result; an exception is logged with the topic and not committed
    "bcs": ConsumerLoop(
        service="bcs", container=_app("bcs"),
        generic_start=None, generic_loggers=("bcs.kafka_consumer",),
        handled=(),
        failed=("Error handling message from topic", "Error processing message:", _IDEMPOTENCY_RELEASED),
        offset_not_committed=("Error processing message:",),
        duplicate=_IDEMPOTENCY_SKIPS,
        unknown_type=("Unknown topic:",),
        foreign_loggers=_RELAY,
        source=f"services/batch_conductor_service/kafka_consumer.py@d695af45; {_IDEMPOTENCY_SRC} [code]",
    ),
    # the event router logs a generic "Processing event" with the event type, then the result
    "cms": ConsumerLoop(
        service="cms", container=_app("cms"),
        generic_start="Processing event", generic_loggers=("class_management_service.event_processor",),
        handled=("Event processed successfully",),
        failed=("Event processing failed", "Failed to process message, not committing offset",
                "Error processing message", "Failed to parse Kafka message", _IDEMPOTENCY_RELEASED),
        offset_not_committed=("Failed to process message, not committing offset", "Error processing message"),
        duplicate=(*_IDEMPOTENCY_SKIPS, "Duplicate message skipped, committing offset"),
        unknown_type=("No handler found for event type",),
        foreign_loggers=_RELAY,
        swallowed=(("Failed to process suggestions for essay", ESSAY_FAILED),),
        source=("services/class_management_service/kafka_consumer.py@0bc811d6, event_processor.py@5e4d3efb; "
                + _IDEMPOTENCY_SRC + " [code]"),
    ),
    # commits every message, failed or not
    "nlp": ConsumerLoop(
        service="nlp", container=_app("nlp"),
        generic_start=None, generic_loggers=("nlp_service.kafka.consumer",),
        handled=(),
        failed=("Error processing message offset", _IDEMPOTENCY_RELEASED),
        offset_not_committed=(),
        duplicate=_IDEMPOTENCY_SKIPS,
        unknown_type=(),
        foreign_loggers=_RELAY,
        swallowed=(("Failed to process essay", ESSAY_FAILED),),
        commits_on_failure=True,
        source=f"services/nlp_service/kafka_consumer.py@c7653fa7; {_IDEMPOTENCY_SRC} [code]",
    ),
})

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
    H("bos", "huleedu.els.batch.validation.errors.v1", ("bos.handlers.batch_validation_errors",),
      ("Received BatchValidationErrors for batch",),
      source=f"{_BOS_IMPL}batch_validation_errors_handler.py [code]",
      reported_errors=("Essay validation failed for batch",
                       "encountered critical failure - no essays succeeded")),
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
    # ---- CJ assessment (one start line with topic:partition:offset, then the request's ids)
    H("cj", "huleedu.els.cj_assessment.requested.v1", ("event_processor",),
      ("Processing CJ assessment message:", "Received CJ assessment request from ELS"),
      source="services/cj_assessment_service/event_processor.py@055c3f16 [code]"),
    # ---- spellchecker (log_event_processing binds the envelope's ids)
    H("spellchecker", "huleedu.essay.spellcheck.requested.v1", ("spellchecker_service.event_processor",),
      ("Received spellcheck request",),
      source="services/spellchecker_service/event_processor.py@3cfe6616 [code]"),
    # ---- result aggregator (one logger per handler class; the older event_processor_impl.py logged
    # the same messages on result_aggregator.event_processor)
    H("ras", "huleedu.batch.essays.registered.v1",
      ("result_aggregator.batch_lifecycle", "result_aggregator.event_processor"),
      ("Processing batch registration",),
      source="services/result_aggregator_service/implementations/batch_lifecycle_handler.py@1bd57643 [code]"),
    H("ras", "huleedu.els.batch.phase.outcome.v1",
      ("result_aggregator.batch_lifecycle", "result_aggregator.event_processor"),
      ("Processing batch phase outcome",),
      source="services/result_aggregator_service/implementations/batch_lifecycle_handler.py@1bd57643 [code]"),
    H("ras", "huleedu.batch.pipeline.completed.v1",
      ("result_aggregator.batch_lifecycle", "result_aggregator.event_processor"),
      ("Processing pipeline completion",),
      source="services/result_aggregator_service/implementations/batch_lifecycle_handler.py@1bd57643 [code]"),
    H("ras", "huleedu.els.essay.slot.assigned.v1",
      ("result_aggregator.assessment_handler", "result_aggregator.event_processor"),
      ("Processing essay slot assignment",),
      source="services/result_aggregator_service/implementations/assessment_event_handler.py@333c1200 [code]"),
    H("ras", "huleedu.assessment.result.published.v1",
      ("result_aggregator.assessment_handler", "result_aggregator.event_processor"),
      ("Processing assessment results",),
      source="services/result_aggregator_service/implementations/assessment_event_handler.py@333c1200 [code]"),
    H("ras", "huleedu.essay.spellcheck.results.v1", ("result_aggregator.spellcheck_handler",),
      ("Processing rich spellcheck result",),
      source="services/result_aggregator_service/implementations/spellcheck_event_handler.py@067fad19 [code]"),
    # ---- batch conductor (no start line: each handler logs only its result, per essay or batch)
    H("bcs", "huleedu.batch.spellcheck.phase.completed.v1", ("bcs.kafka_consumer",),
      ("Recorded spellcheck phase completion for essay", "Failed to record spellcheck phase completion",
       "Error handling spellcheck phase completed"),
      dropped=(("might already be recorded", DUPLICATE),),
      source="services/batch_conductor_service/kafka_consumer.py@d695af45 [code]"),
    H("bcs", "huleedu.cj_assessment.completed.v1", ("bcs.kafka_consumer",),
      ("Recorded CJ assessment completion for essay", "Recorded CJ assessment failure for essay",
       "Failed to record CJ assessment", "Error processing CJ assessment completion"),
      source="services/batch_conductor_service/kafka_consumer.py@d695af45 [code]"),
    H("bcs", "huleedu.els.batch.phase.outcome.v1", ("bcs.kafka_consumer",),
      ("Recorded phase ", "Failed to record phase completion for batch",
       "Error processing ELS batch phase outcome"),
      source="services/batch_conductor_service/kafka_consumer.py@d695af45 [code]"),
    # ---- class management
    H("cms", "huleedu.batch.author.matches.suggested.v1",
      ("class_management_service.batch_author_matches_handler",),
      ("Processing batch author matches for batch",),
      source="services/class_management_service/implementations/batch_author_matches_handler.py@164a7476 [code]"),
    # ---- NLP (command handlers, one logger each)
    H("nlp", "huleedu.batch.student.matching.requested.v1",
      ("nlp_service.command_handlers.essay_student_matching",),
      ("Processing Phase 1 student matching for batch",),
      source="services/nlp_service/command_handlers/essay_student_matching_handler.py@0bc811d6 [code]"),
    H("nlp", "huleedu.batch.nlp.processing.requested.v2", ("nlp_service.command_handlers.batch_nlp_analysis",),
      ("Processing Phase 2 NLP analysis",),
      source="services/nlp_service/command_handlers/batch_nlp_analysis_handler.py@e27d7353 [code]"),
)
del H

for _h in HANDLERS:  # a handler for a topic the model does not know is a typo
    assert _h.topic in TOPICS and _h.service in TOPICS[_h.topic].consumers, _h
    assert _h.service in CONSUMER_LOOPS, _h  # every handler runs in a known consumer process


def handlers_for(service: str) -> dict[str, Handler]:
    """The handlers of one consumer service, by topic."""
    return {h.topic: h for h in HANDLERS if h.service == service}
