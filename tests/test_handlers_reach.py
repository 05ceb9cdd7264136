"""Consumption of every consumer the model lists, read from that consumer's own log lines.

Each consumer process (CJ assessment, spellchecker, result aggregator, batch conductor, class
management, NLP) gets synthetic structlog JSON lines in the shape HuleEdu writes them: a handled
event, a redelivery refused by the idempotency check, a handler exception and a consumer that logged
nothing recognisable. The message texts are spelled here on purpose (independently of
model/handlers.py), so a missing or mistyped knowledge entry fails these tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from huledu_forensics import model
from huledu_forensics.investigation import all_handler_runs, log_extent
from huledu_forensics.logs import parse_lines
from huledu_forensics.model import handlers as H
from huledu_forensics.outcomes import LogExtent, consumption, handler_runs, recognised_containers
from tests.support.corpus import corpus_bundle

BATCH = "7b3f1c2e-5a4d-4e6f-9a8b-1c2d3e4f5a6b"
CID = "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
ESSAY = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
T0 = datetime(2025, 12, 15, 9, 0, tzinfo=UTC)


def _line(at: float, logger: str, event: str, level: str = "info", **extra: object) -> str:
    t = (T0 + timedelta(seconds=at)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rec = {"logger_name": logger, "extra": extra, "event": event, "service.name": "x",
           "timestamp": t, "level": level}
    return f"{t[:-1]}000Z {json.dumps(rec)}"


def _runs(service: str, lines: list[str]) -> pd.DataFrame:
    container = H.CONSUMER_LOOPS[service].container
    logs = parse_lines(lines, container=container, source_file=f"logs/{container}.log")
    return handler_runs(logs)


def _consumption(service: str, topic: str, lines: list[str]) -> tuple[str, str, pd.DataFrame]:
    runs = _runs(service, lines)
    c = consumption(runs, topic, service, published_at=T0, containers=[],
                    log_extent={H.CONSUMER_LOOPS[service].container: LogExtent(len(lines), None,
                                                                          T0 + timedelta(seconds=60))},
                    recognised=recognised_containers(runs))
    return c.state, c.reason, runs


# (service, topic, the handler's start line: logger, message, extra) -- one per consumed topic
STARTS = [
    ("cj", "huleedu.els.cj_assessment.requested.v1", "event_processor",
     "Processing CJ assessment message: huleedu.els.cj_assessment.requested.v1:1:7",
     {"correlation_id": CID}),
    ("spellchecker", "huleedu.essay.spellcheck.requested.v1", "spellchecker_service.event_processor",
     "Received spellcheck request", {"correlation_id": CID, "essay_id": ESSAY}),
    ("ras", "huleedu.batch.essays.registered.v1", "result_aggregator.batch_lifecycle",
     "Processing batch registration", {"batch_id": BATCH}),
    ("ras", "huleedu.els.batch.phase.outcome.v1", "result_aggregator.batch_lifecycle",
     "Processing batch phase outcome", {"batch_id": BATCH}),
    ("ras", "huleedu.batch.pipeline.completed.v1", "result_aggregator.batch_lifecycle",
     "Processing pipeline completion", {"batch_id": BATCH, "correlation_id": CID}),
    ("ras", "huleedu.els.essay.slot.assigned.v1", "result_aggregator.assessment_handler",
     "Processing essay slot assignment", {"batch_id": BATCH, "essay_id": ESSAY}),
    ("ras", "huleedu.assessment.result.published.v1", "result_aggregator.assessment_handler",
     "Processing assessment results", {"batch_id": BATCH}),
    ("ras", "huleedu.essay.spellcheck.results.v1", "result_aggregator.spellcheck_handler",
     "Processing rich spellcheck result", {"batch_id": BATCH, "entity_id": ESSAY}),
    ("bcs", "huleedu.batch.spellcheck.phase.completed.v1", "bcs.kafka_consumer",
     f"Recorded spellcheck phase completion for essay {ESSAY} in batch {BATCH}", {}),
    ("bcs", "huleedu.cj_assessment.completed.v1", "bcs.kafka_consumer",
     f"Recorded CJ assessment completion for essay {ESSAY} in batch {BATCH}", {"correlation_id": CID}),
    ("bcs", "huleedu.els.batch.phase.outcome.v1", "bcs.kafka_consumer",
     f"Recorded phase spellcheck completion for batch {BATCH} (success=True, successful_essays=2)",
     {"batch_id": BATCH, "correlation_id": CID}),
    ("cms", "huleedu.batch.author.matches.suggested.v1",
     "class_management_service.batch_author_matches_handler",
     f"Processing batch author matches for batch {BATCH}", {"batch_id": BATCH, "correlation_id": CID}),
    ("nlp", "huleedu.batch.student.matching.requested.v1",
     "nlp_service.command_handlers.essay_student_matching",
     f"Processing Phase 1 student matching for batch {BATCH} with 2 essays", {"batch_id": BATCH}),
    ("nlp", "huleedu.batch.nlp.processing.requested.v2", "nlp_service.command_handlers.batch_nlp_analysis",
     f"Processing Phase 2 NLP analysis for batch {BATCH} with 2 essays", {"batch_id": BATCH}),
]


def test_every_consumer_topic_pair_has_knowledge_but_the_honest_gaps() -> None:
    missing = {(c, t.name) for t in model.TOPICS.values() for c in t.consumers
               if t.name not in H.handlers_for(c)}
    # the entitlements service: the model knows no container and the kit no log lines of it
    assert missing == {("entitlements", "huleedu.resource.consumption.v1")}
    assert {(s, t) for s, t, *_ in STARTS} == {
        (h.service, h.topic) for h in H.HANDLERS if h.service not in ("bos", "els")}


@pytest.mark.parametrize(("service", "topic", "logger", "message", "extra"), STARTS,
                         ids=[f"{s}-{t}" for s, t, *_ in STARTS])
def test_handled(service: str, topic: str, logger: str, message: str, extra: dict[str, object]) -> None:
    lines = [_line(0, logger, message, **extra), _line(0.2, logger, "some progress line", **extra)]
    state, _reason, runs = _consumption(service, topic, lines)
    assert state == "yes"
    (run,) = runs.to_dict("records")
    assert (run["service"], run["topic"], run["outcome"]) == (service, topic, "handled")
    assert run["first_ref"] == f"logs/{H.CONSUMER_LOOPS[service].container}.log#L1"


def _dup(topic: str) -> str:
    return _line(0, "idempotency-v2", "DUPLICATE_EVENT_DETECTED: Event already completed", "warning",
                 event_type=topic, kafka_topic=topic, correlation_id=CID)


@pytest.mark.parametrize("service", ["cj", "spellchecker", "ras", "bcs", "cms", "nlp"])
def test_dropped_as_duplicate_before_the_handler_logs(service: str) -> None:
    topic = next(t for s, t, *_ in STARTS if s == service)
    state, _reason, runs = _consumption(service, topic, [_dup(topic)])
    assert state == "yes"
    (run,) = runs.to_dict("records")
    assert (run["topic"], run["outcome"], run["cause"]) == (topic, "dropped", H.DUPLICATE)


def test_a_duplicate_of_a_topic_the_consumer_does_not_handle_opens_nothing() -> None:
    assert _runs("cj", [_dup("huleedu.llm_provider.comparison_result.v1")]).empty


# (service, topic, lines of a handler exception, offset left uncommitted?)
FAILURES = [
    ("cj", "huleedu.els.cj_assessment.requested.v1", [
        _line(0, "event_processor", "Processing CJ assessment message: t:0:1", correlation_id=CID),
        _line(0.1, "event_processor", "Error processing CJ assessment message", "error", correlation_id=CID),
        _line(0.2, "cj_assessment.kafka.consumer", "Error processing message: boom", "error")], True),
    ("spellchecker", "huleedu.essay.spellcheck.requested.v1", [
        _line(0, "spellchecker_service.event_processor", "Received spellcheck request", correlation_id=CID),
        _line(0.1, "spellchecker_service.event_processor",
              f"Essay {ESSAY}: Unhandled error processing message: boom", "error", correlation_id=CID)],
     False),  # publishes a failed result and commits
    ("ras", "huleedu.els.batch.phase.outcome.v1", [
        _line(0, "result_aggregator.batch_lifecycle", "Processing batch phase outcome", batch_id=BATCH),
        _line(0.1, "result_aggregator.batch_lifecycle", "Failed to process batch phase outcome", "error",
              batch_id=BATCH, error="boom"),
        _line(0.2, "result_aggregator.kafka_consumer", "Failed to process message", "error",
              topic="huleedu.els.batch.phase.outcome.v1", error="boom")], False),  # commits anyway
    ("bcs", "huleedu.els.batch.phase.outcome.v1", [
        _line(0, "bcs.kafka_consumer", "Error processing ELS batch phase outcome: boom", "error"),
        _line(0.1, "bcs.kafka_consumer",
              "Error handling message from topic huleedu.els.batch.phase.outcome.v1: boom", "error"),
        _line(0.2, "bcs.kafka_consumer", "Error processing message: boom", "error")], True),
    ("cms", "huleedu.batch.author.matches.suggested.v1", [
        _line(0, "class_management_service.event_processor", "Processing event",
              event_type="huleedu.batch.author.matches.suggested.v1", correlation_id=CID),
        _line(0.1, "class_management_service.event_processor", "Event processing failed", "error",
              correlation_id=CID, event_type="huleedu.batch.author.matches.suggested.v1"),
        _line(0.2, "class_management_service.kafka.consumer",
              "Failed to process message, not committing offset", "warning",
              topic="huleedu.batch.author.matches.suggested.v1", partition=0, offset=4)], True),
    ("nlp", "huleedu.batch.student.matching.requested.v1", [
        _line(0, "nlp_service.command_handlers.essay_student_matching",
              f"Processing Phase 1 student matching for batch {BATCH} with 2 essays", batch_id=BATCH),
        _line(0.1, "nlp_service.command_handlers.essay_student_matching",
              "Error processing Phase 1 student matching: boom", "error", correlation_id=CID),
        _line(0.2, "nlp_service.kafka.consumer", "Error processing message offset 9: boom", "error")],
     False),  # commits anyway
]


@pytest.mark.parametrize(("service", "topic", "lines", "uncommitted"), FAILURES,
                         ids=[f[0] for f in FAILURES])
def test_failed_with_exception(service: str, topic: str, lines: list[str], uncommitted: bool) -> None:
    runs = _runs(service, lines)
    (run,) = runs.to_dict("records")
    assert (run["topic"], run["outcome"], run["cause"]) == (topic, "failed", H.EXCEPTION)
    assert run["offset_not_committed"] is uncommitted
    assert len(run["lines"]) == len(lines)


def test_a_swallowed_essay_error_leaves_the_handling_handled() -> None:
    lines = [
        _line(0, "nlp_service.command_handlers.essay_student_matching",
              f"Processing Phase 1 student matching for batch {BATCH} with 2 essays", batch_id=BATCH),
        _line(0.1, "nlp_service.command_handlers.essay_student_matching",
              f"Failed to process essay {ESSAY} in batch {BATCH}: boom", "error", batch_id=BATCH)]
    (run,) = _runs("nlp", lines).to_dict("records")
    assert (run["outcome"], run["cause"]) == ("handled", H.ESSAY_FAILED)


@pytest.mark.parametrize("service", ["cj", "spellchecker", "ras", "bcs", "cms", "nlp"])
def test_a_consumer_that_recognisably_handled_nothing_is_unknown_not_no(service: str) -> None:
    topic = next(t for s, t, *_ in STARTS if s == service)
    state, reason, runs = _consumption(service, topic, [_line(0, "x.startup", "Service started")])
    assert runs.empty and state == "unknown"
    assert "recognises no handling" in reason


def test_a_consumer_that_handled_other_events_but_not_this_one_did_not_consume_it() -> None:
    other = next(s for s in STARTS if s[0] == "ras" and s[1] != "huleedu.batch.pipeline.completed.v1")
    _s, _t, logger, message, extra = other
    state, reason, _ = _consumption("ras", "huleedu.batch.pipeline.completed.v1",
                                         [_line(0, logger, message, **extra)])
    assert state == "no" and "logged no handling" in reason


def test_without_knowledge_the_answer_stays_unknown() -> None:
    c = consumption(pd.DataFrame(), "huleedu.resource.consumption.v1", "entitlements", published_at=T0,
                    containers=[], log_extent={}, recognised=())
    assert c.state == "unknown" and "no handler knowledge" in c.reason


def test_corpus_cj_lines_unlike_huleedus_source_give_unknown_not_a_wrong_no() -> None:
    """The corpus CJ container logs its request handling with messages HuleEdu's source does not
    write; the kit must not read that as "CJ never consumed the request"."""
    b = corpus_bundle("healthy-guest")
    container = H.CONSUMER_LOOPS["cj"].container
    runs = all_handler_runs(b)
    assert not (runs["container"] == container).any()
    c = consumption(runs, "huleedu.els.cj_assessment.requested.v1", "cj", published_at=None,
                    containers=list(b.containers), log_extent=log_extent(b), recognised=recognised_containers(runs))
    assert c.state == "unknown" and "recognises no handling" in c.reason


def test_bos_validation_errors_reported_at_error_level_are_a_handled_event() -> None:
    logger = "bos.handlers.batch_validation_errors"
    topic = "huleedu.els.batch.validation.errors.v1"
    lines = [_line(0, logger, f"Received BatchValidationErrors for batch {BATCH}", correlation_id=CID),
             _line(0.1, logger, f"Essay validation failed for batch {BATCH}", "error", batch_id=BATCH,
                   essay_id=ESSAY),
             _line(0.2, logger, f"Batch {BATCH} encountered critical failure - no essays succeeded",
                   "critical", batch_id=BATCH)]
    state, _reason, runs = _consumption("bos", topic, lines)
    assert state == "yes"
    (run,) = runs.to_dict("records")
    assert (run["topic"], run["outcome"], run["cause"]) == (topic, "handled", None)
    failing = [*lines[:1], _line(0.1, logger, "Error handling BatchValidationErrors message: boom", "error")]
    (run,) = _runs("bos", failing).to_dict("records")
    assert (run["outcome"], run["cause"]) == ("failed", H.EXCEPTION)


def test_bos_student_associations_for_a_batch_past_validation_are_dropped_not_handled() -> None:
    """BOS's StudentAssociationsConfirmed handler warns and returns when the batch is no longer
    awaiting student validation (services/batch_orchestrator_service/implementations/
    student_associations_confirmed_handler.py): a wrong-state drop, not a handling."""
    logger = "bos.handlers.student_associations_confirmed"
    topic = "huleedu.class.student.associations.confirmed.v1"
    lines = [_line(0, logger, f"Processing student associations for batch {BATCH}", correlation_id=CID),
             _line(0.1, logger, f"Batch {BATCH} is not in AWAITING_STUDENT_VALIDATION status", "warning",
                   correlation_id=CID, current_status="ready_for_pipeline_execution",
                   expected_status="awaiting_student_validation"),
             _line(0.2, logger, "Current status: ready_for_pipeline_execution", "warning", batch_id=BATCH)]
    state, _reason, runs = _consumption("bos", topic, lines)
    assert state == "yes"
    (run,) = runs.to_dict("records")
    assert (run["topic"], run["outcome"], run["cause"]) == (topic, "dropped", H.WRONG_STATE)
    assert "AWAITING_STUDENT_VALIDATION" in run["detail"]
    # the same handling without the refusal is handled
    (ok,) = _runs("bos", lines[:1]).to_dict("records")
    assert ok["outcome"] == "handled"
