"""Named HuleEdu column names, so code outside ``model/`` never spells one itself.

The kit reads rows of the tables in :data:`~.services.TABLES` by these names; the layouts with their
types are the schema the simulator builds (SYSTEM.md §1.2-§1.4, §2.1). A test checks that every name
here is a column of some table there. A kit frame that projects one table (progress's essays and
pending frames) keeps that table's names, from here. The kit's own frames and documents that share a
name with a column (the timeline's ``batch_id``, verdict.json's) are the kit's format and do not follow
HuleEdu: they read it from :mod:`huledu_forensics._fields`.
"""

from __future__ import annotations

# ---- ids (the id kind each holds is in Table.id_columns)
ID = "id"
BATCH_ID = "batch_id"
CORRELATION_ID = "correlation_id"
ESSAY_ID = "essay_id"
TEXT_STORAGE_ID = "text_storage_id"
FILE_UPLOAD_ID = "file_upload_id"
BATCH_TRACKER_ID = "batch_tracker_id"

# ---- times
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"
COMPLETED_AT = "completed_at"
PUBLISHED_AT = "published_at"
UPLOAD_TIMESTAMP = "upload_timestamp"

# ---- statuses (columns whose values are the labels in .states and .names)
STATUS = "status"  # batches.status (batch_status_enum), phase_status_log.status (phase_status_enum)
CURRENT_STATUS = "current_status"  # essay_states (essay_status_enum)
PROCESSING_STATUS = "processing_status"  # file_uploads (lower-case ProcessingStatus, server default 'PENDING')
PHASE = "phase"  # phase_status_log (pipeline_phase_enum)
STATUS_COLUMNS = (STATUS, CURRENT_STATUS, PROCESSING_STATUS, PHASE)

# ---- event_outbox (SYSTEM.md §2.1)
TOPIC = "topic"
EVENT_TYPE = "event_type"
EVENT_DATA = "event_data"
AGGREGATE_ID = "aggregate_id"
AGGREGATE_TYPE = "aggregate_type"
RETRY_COUNT = "retry_count"
LAST_ERROR = "last_error"

# ---- batches, trackers, uploads, validation failures
CLASS_ID = "class_id"  # NULL for a GUEST batch, set for a REGULAR one
TOTAL_ESSAYS = "total_essays"
EXPECTED_COUNT = "expected_count"
EXPECTED_ESSAY_IDS = "expected_essay_ids"
PIPELINE_CONFIGURATION = "pipeline_configuration"
REQUESTED_PIPELINES = "requested_pipelines"  # a batches column and a key of pipeline_configuration
PROCESSING_METADATA = "processing_metadata"
CONTENT_METADATA = "content_metadata"
VALIDATION_ERROR_CODE = "validation_error_code"
ERROR_MESSAGE = "error_message"

# ---- personal data (redact.py rewrites their values)
USER_ID = "user_id"
ORG_ID = "org_id"
FILENAME = "filename"
ORIGINAL_FILE_NAME = "original_file_name"

__all__ = sorted(n for n in dir() if n.isupper() and not n.startswith("_"))
