"""Named references into the model, so code outside ``model/`` never spells a HuleEdu name itself.

Tables are ``(database, table)`` keys of :data:`~.services.TABLES`; topics are keys of
:data:`~.topics.TOPICS`; messages are the log-message texts (or stable prefixes) the kit recognises,
from SYSTEM.md §2.3, §2.6, §4.2, §4.5, §5.3 and §6.5.
"""

from __future__ import annotations

from .services import BOS_DB, ELS_DB, FILE_DB, OUTBOX_TABLE

# ---- tables
BATCHES = (BOS_DB, "batches")
BATCH_ESSAYS = (BOS_DB, "batch_essays")
PHASE_STATUS_LOG = (BOS_DB, "phase_status_log")
BOS_OUTBOX = (BOS_DB, OUTBOX_TABLE)
TRACKERS = (ELS_DB, "batch_essay_trackers")
ESSAY_STATES = (ELS_DB, "essay_states")
SLOT_ASSIGNMENTS = (ELS_DB, "slot_assignments")
PENDING_CONTENT = (ELS_DB, "batch_pending_content")
VALIDATION_FAILURES = (ELS_DB, "batch_validation_failures")
ELS_OUTBOX = (ELS_DB, OUTBOX_TABLE)
FILE_UPLOADS = (FILE_DB, "file_uploads")
FILE_OUTBOX = (FILE_DB, OUTBOX_TABLE)
OUTBOXES = {"bos": BOS_OUTBOX, "els": ELS_OUTBOX, "file": FILE_OUTBOX}

# ---- topics
T_REGISTERED = "huleedu.batch.essays.registered.v1"
T_CONTENT_PROVISIONED = "huleedu.file.essay.content.provisioned.v1"
T_CONTENT_COMPLETED = "huleedu.batch.content.provisioning.completed.v1"
T_EXCESS_CONTENT = "huleedu.els.excess.content.provisioned.v1"
T_PIPELINE_REQUEST = "huleedu.commands.batch.pipeline.v1"
T_PHASE_OUTCOME = "huleedu.els.batch.phase.outcome.v1"
T_PIPELINE_COMPLETED = "huleedu.batch.pipeline.completed.v1"
# the key of BatchEssaysRegistered's data that carries the batch's essay count (SYSTEM.md §3)
K_EXPECTED_ESSAY_COUNT = "expected_essay_count"

# ---- statuses
S_AWAITING_CONTENT = "awaiting_content_validation"
S_READY = "ready_for_pipeline_execution"
ESSAY_EMPTY_SLOT = "uploaded"
PHASE_DONE_STATUSES = ("completed_successfully", "completed_with_partial_success",
                       "completed_with_failures")
PHASE_FAILED_STATUSES = ("failed", "skipped_due_to_dependency_failure")
PHASE_INACTIVE_STATUSES = ("skipped_by_user_config", "cancelled")
PHASE_WAITING_STATUS = "pending_dependencies"  # registered or resolved, not yet dispatched
PHASE_DISPATCHED_STATUS = "dispatch_initiated"  # commanded; the phase outcome is awaited
OUTBOX_MAX_RETRIES = 5
# batch statuses that end a batch badly (BatchStatus, SYSTEM.md §4.1); `scan` reports them as unhealthy
BATCH_FAILED_STATUSES = ("content_ingestion_failed", "failed_critically", "completed_with_failures")
# file_uploads.processing_status values (SYSTEM.md §1.4): failed, and still in flight (server default upper-case)
FILE_FAILED_STATUS = "failed"
FILE_OPEN_STATUSES = ("pending", "in_progress", "PENDING")
# phase_status_log.status values of a phase that is still running (SYSTEM.md §1.2)
PHASE_LOG_OPEN_STATUSES = ("pending", "initiated", "in_progress")
PHASE_LOG_FAILED_STATUS = "failed"
# event_outbox.aggregate_type values BOS writes (SYSTEM.md §2.1): lead the (aggregate_type, aggregate_id) index
BOS_AGGREGATE_TYPES = ("batch", "pipeline", "unknown")
RELAY_MAX_POLL_S = 30.0  # production poll 5 s + error back-off 30 s (SYSTEM.md §2.3)

# ---- log messages (exact texts or stable prefixes)
M_OFFSET_NOT_COMMITTED = "Message processing failed - offset not committed"
M_NOT_READY = "not ready for pipeline execution"
M_PIPELINE_REQUEST = "Processing client pipeline request"
M_STATUS_UPDATED = "status to BatchStatus."
M_STATUS_UPDATE_FAILED = "Failed to update batch"
M_RELAY_MAX_RETRIES = "Event exceeded max retries"
M_RELAY_PUBLISH_FAILED = "Failed to publish event to Kafka"
M_PG_INVALID_ENUM = "invalid input value for enum"
M_DUPLICATE = "DUPLICATE_EVENT_DETECTED"

__all__ = sorted(n for n in dir() if n.isupper() and not n.startswith("_"))
