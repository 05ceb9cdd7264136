"""How to repair each failure class the rules detect, as data: the Next steps of a postmortem and a card.

A failure class is named by the id of the rule that detects it (``enum.label_missing``,
``event.dropped``, ...). The remedies are HuleEdu knowledge (its migrations, events, handlers and
statuses; SYSTEM.md §1, §2, §4, §10), so they live here with the rest of it and not next to the rules,
which only read evidence: when HuleEdu's repair path changes, this module changes. A test checks that
every rule has a remedy and every remedy names a rule.
"""

from __future__ import annotations

__all__ = ["REMEDIATION"]

REMEDIATION: dict[str, str] = {
    "enum.label_missing": (
        "Add the missing label with an Alembic migration (`ALTER TYPE <enum> ADD VALUE IF NOT EXISTS "
        "'<label>'`), deploy it before the code that writes the value, and add a startup or CI check that "
        "compares every PostgreSQL enum (`pg_enum`) with the service's Python enum so drift fails fast. "
        "Then re-drive the stuck batches (re-register, or replay the registration event)."),
    "enum.label_missing_unknown_step": (
        "Add the missing labels with an Alembic migration (`ALTER TYPE <enum> ADD VALUE IF NOT EXISTS "
        "'<label>'`) before a batch reaches the step that writes them, and run `pdm run "
        "validate-enum-drift` against the database. Tell the kit's model which handler writes each label "
        "(`model.ENUM_WRITES`) so the next investigation can say which step would fail."),
    "enum.label_extra": (
        "Nothing breaks. Legacy Alembic labels can stay (PostgreSQL cannot drop an enum label); for a "
        "label the kit does not know, update the kit's model (`model.PYTHON_ENUMS`) to the service's "
        "current Python enum."),
    "db.enum_value_rejected": (
        "Fix the enum drift in the database named by the rejection (see the enum finding), then replay the "
        "rejected events. Surface PostgreSQL's error text in the service log: today only the exception "
        "class reaches it."),
    "consumer.handler_failed": (
        "Fix the handler's failure, then re-deliver the event: the offset was not committed, but the "
        "consumer skips it as soon as a later message on the partition succeeds, so it will not retry "
        "by itself. Make the handler fail loudly (dead-letter or alert) instead of returning False."),
    "tracker.missing": (
        "ELS never kept a batch tracker for this batch: replay `BatchEssaysRegistered` once the cause of "
        "the rejected registration is fixed."),
    "tracker.registered_without_essays": (
        "The registration committed the tracker but not the essay rows: make tracker, essay rows and "
        "slots one transaction, and re-run essay creation for the batch after the fix."),
    "pending.orphaned_content": (
        "Content is parked in pending storage with no slot to take it: after the registration is "
        "repaired, re-process the pending content for the batch (or re-upload the files)."),
    "validation.failures_block_completion": (
        "Failed files leave their slots empty, so content provisioning never completes: count validation "
        "failures toward completion (publish BatchContentProvisioningCompleted with the failures) and "
        "tell the user which files failed."),
    "outbox.poisoned": (
        "The relay gave up on an outbox row (retry limit reached, `published_at` NULL): fix the Kafka "
        "cause in `last_error`, then reset the row's `retry_count` to 0 so the relay publishes it. "
        "Alert on rows with `retry_count >= 5`."),
    "outbox.unpublished": (
        "Outbox rows wait unpublished: check the relay worker of the producing service is running and "
        "can reach Kafka; alert on outbox age."),
    "event.not_produced": (
        "The awaited event was never written to the producer's outbox: follow the producer's handler "
        "(see the chain above); once fixed, re-drive the step that produces it."),
    "event.not_published": (
        "The awaited event sits in the producer's outbox unpublished: check the relay and Kafka."),
    "event.not_consumed": (
        "The awaited event was published but the consumer never logged handling it: check the consumer "
        "group, its lag and the consumer container's health."),
    "event.dropped": (
        "The consumer received the awaited event and dropped it (see the cause: wrong state, duplicate, "
        "unknown type): this is not consumer lag. For a wrong-state drop, the events arrived out of "
        "order; re-publish the event once the batch is in the state the handler expects, and make the "
        "handler tolerate the order (or defer instead of dropping)."),
    "pipeline.phase_failed": (
        "A requested pipeline phase failed: read the phase's error_info in pipeline_configuration and "
        "the ELS and service logs of that phase, fix the cause, then request the pipeline again."),
    "event.handled_no_transition": (
        "The consumer handled the awaited event but the batch did not move: follow the handler's "
        "state write for this status (swallowed errors, rolled-back transactions, silent guards), then "
        "set the status by hand or re-publish the event."),
    "container.not_running": (
        "The container of the service the batch waits on was not running (never started, exited, "
        "restarting or OOM-killed): start it, read its last logs for the cause, then check whether the "
        "awaited event is still on its topic for the consumer group."),
    "status.write_failed": (
        "BOS swallowed a failed status write and committed the offset: fix the database cause (often a "
        "missing enum label), then set the batch's status by hand; make update_batch_status failures "
        "fail the handler."),
    "content.unplaced": (
        "Some of the batch's files reached no slot (lost after a failed handling, or never provisioned): "
        "fix the handler's cause, then re-publish EssayContentProvisionedV1 for each listed "
        "text_storage_id."),
    "content.excess_unconsumed": (
        "ELS announced excess content that no service consumes: tell the user which files were not "
        "taken into the batch, or add a consumer for the excess-content topic."),
    "pipeline.request_rejected": (
        "BOS rejected the pipeline request because the batch was not ready: re-send the request after "
        "the batch reaches ready_for_pipeline_execution; clients should wait for readiness."),
    "state.dwell_exceeded": (
        "The batch stayed in its step longer than expected: alert on batches whose dwell exceeds the "
        "expected time so a stuck batch is seen before a user reports it."),
}
"""Failure class (rule id) -> a short recommendation."""
