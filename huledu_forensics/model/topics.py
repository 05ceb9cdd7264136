"""Kafka topics with their producers and consumers, as data (SYSTEM.md §3.2, [code])."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOPICS", "TOPIC_PREFIX", "Topic", "topic", "topic_by_event"]


@dataclass(frozen=True)
class Topic:
    """One Kafka topic.

    ``producer`` and ``consumers`` are service keys (see :mod:`.services`). ``via_outbox`` is False for
    events produced straight to Kafka (the API gateway's pipeline request). How each consumer's
    handler shows it handled, dropped or failed an event is in :mod:`.handlers`.
    """

    name: str
    event: str  # HuleEdu's event class / ProcessingEvent name
    producer: str
    consumers: tuple[str, ...]
    aggregate_type: str = "batch"
    via_outbox: bool = True
    short_event_type: str | None = None  # outbox event_type when it is not the topic string


T = Topic
TOPICS: dict[str, Topic] = {
    t.name: t
    for t in (
        T("huleedu.batch.essays.registered.v1", "BatchEssaysRegistered", "bos", ("els", "ras")),
        T("huleedu.file.essay.content.provisioned.v1", "EssayContentProvisionedV1", "file", ("els",),
          aggregate_type="file_upload"),
        T("huleedu.file.essay.validation.failed.v1", "EssayValidationFailedV1", "file", ("els",),
          aggregate_type="file_upload"),
        T("huleedu.file.batch.file.added.v1", "BatchFileAddedV1", "file", ()),
        T("huleedu.els.essay.slot.assigned.v1", "EssaySlotAssignedV1", "els", ("ras",),
          aggregate_type="essay"),
        T("huleedu.els.excess.content.provisioned.v1", "ExcessContentProvisionedV1", "els", ()),
        T("huleedu.batch.content.provisioning.completed.v1", "BatchContentProvisioningCompletedV1", "els",
          ("bos",)),
        T("huleedu.els.batch.validation.errors.v1", "BatchValidationErrorsV1", "els", ("bos",)),
        T("huleedu.batch.student.matching.initiate.command.v1", "BatchStudentMatchingInitiateCommand",
          "bos", ("els",)),
        T("huleedu.batch.student.matching.requested.v1", "BatchStudentMatchingRequested", "els", ("nlp",)),
        T("huleedu.batch.author.matches.suggested.v1", "BatchAuthorMatchesSuggested", "nlp", ("cms",)),
        T("huleedu.class.student.associations.confirmed.v1", "StudentAssociationsConfirmedV1", "cms",
          ("bos", "els")),
        T("huleedu.els.batch.essays.ready.v1", "BatchEssaysReady", "els", ("bos",)),
        T("huleedu.commands.batch.pipeline.v1", "ClientBatchPipelineRequestV1", "gateway", ("bos",),
          via_outbox=False),
        T("huleedu.pipeline.denied.v1", "PipelineDeniedV1", "bos", ()),
        T("huleedu.els.spellcheck.initiate.command.v1", "BatchSpellcheckInitiateCommand", "bos", ("els",)),
        T("huleedu.essay.spellcheck.requested.v1", "EssaySpellcheckRequested", "els", ("spellchecker",),
          aggregate_type="essay"),
        T("huleedu.batch.spellcheck.phase.completed.v1", "SpellcheckPhaseCompleted", "spellchecker",
          ("els", "bcs")),
        T("huleedu.essay.spellcheck.results.v1", "SpellcheckResults", "spellchecker", ("ras",)),
        T("huleedu.els.batch.phase.outcome.v1", "ELSBatchPhaseOutcomeV1", "els", ("bos", "bcs", "ras")),
        T("huleedu.batch.cj_assessment.initiate.command.v1", "BatchCJAssessmentInitiateCommand", "bos",
          ("els",)),
        T("huleedu.els.cj_assessment.requested.v1", "ELSCJAssessmentRequested", "els", ("cj",)),
        T("huleedu.cj_assessment.completed.v1", "CJAssessmentCompleted", "cj", ("els", "bcs"),
          aggregate_type="cj_batch"),
        T("huleedu.assessment.result.published.v1", "AssessmentResultPublished", "cj", ("ras",),
          aggregate_type="cj_batch"),
        T("huleedu.resource.consumption.v1", "ResourceConsumptionV1", "cj", ("entitlements",),
          aggregate_type="cj_batch"),
        T("huleedu.batch.nlp.initiate.command.v2", "BatchNlpInitiateCommandV2", "bos", ("els",)),
        T("huleedu.batch.nlp.processing.requested.v2", "BatchNlpProcessingRequestedV2", "els", ("nlp",)),
        T("huleedu.batch.nlp.analysis.completed.v1", "BatchNlpAnalysisCompleted", "nlp", ("els",)),
        T("huleedu.batch.pipeline.completed.v1", "BatchPipelineCompletedV1", "bos", ("ras",),
          short_event_type="batch.pipeline.completed"),
        T("huleedu.batch.phase.skipped.v1", "BatchPhaseSkipped", "bcs", ()),
        T("huleedu.ras.batch.results.ready.v1", "BatchResultsReady", "ras", ()),
    )
}
del T

TOPIC_PREFIX = "huleedu."
"""Every HuleEdu topic name starts with this (SYSTEM.md §3.2): how a topic is told apart in free text."""
assert all(name.startswith(TOPIC_PREFIX) for name in TOPICS), "a topic outside HuleEdu's namespace"


def topic(name: str) -> Topic:
    """Return the topic called ``name``."""
    return TOPICS[name]


def topic_by_event(event_type: str) -> Topic | None:
    """Return the topic for an outbox ``event_type`` (full topic string or short enum value)."""
    if event_type in TOPICS:
        return TOPICS[event_type]
    for t in TOPICS.values():
        if t.short_event_type == event_type:
            return t
    return None
