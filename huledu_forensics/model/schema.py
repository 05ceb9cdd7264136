"""The columns of every table the kit snapshots, with their PostgreSQL types, as HuleEdu declares them.

Source: each service's ``models_db.py`` and the shared outbox model (SYSTEM.md §1.2-§1.4, §2.1). This is
the one declaration of a table's columns: :class:`~.services.Table` derives its JSON and timestamp
columns from the types here, and the simulator (:mod:`huledu_forensics.simulate.ddl`) generates its DDL
from it. Enum-typed columns name the PostgreSQL enum type; the simulator creates that type with
whatever label set a world has (aligned or drifted), so a drifted world keeps the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AWARE_TIMESTAMP_TYPES", "BATCHES", "BATCH_ESSAYS", "BATCH_ESSAY_TRACKERS", "BATCH_PENDING_CONTENT",
    "BATCH_VALIDATION_FAILURES", "ESSAY_STATES", "FILE_UPLOADS", "INTEGER_TYPES", "JSON_TYPES",
    "NAIVE_TIMESTAMP_TYPES", "PHASE_STATUS_LOG", "SLOT_ASSIGNMENTS", "Column", "outbox_columns",
]

JSON_TYPES = ("json", "jsonb")
NAIVE_TIMESTAMP_TYPES = ("timestamp", "timestamp without time zone")
AWARE_TIMESTAMP_TYPES = ("timestamptz", "timestamp with time zone")
INTEGER_TYPES = ("serial", "integer", "bigint", "smallint", "bigserial")


@dataclass(frozen=True)
class Column:
    """One column: ``name``, its PostgreSQL ``type`` and the rest of its definition (``NOT NULL``,
    ``DEFAULT … NOT NULL`` or empty)."""

    name: str
    type: str
    constraint: str = ""

    @property
    def is_json(self) -> bool:
        """Stored as JSON text (``json``/``jsonb``)."""
        return self.type in JSON_TYPES

    @property
    def is_naive_timestamp(self) -> bool:
        """``timestamp without time zone``: HuleEdu writes these as UTC."""
        return self.type in NAIVE_TIMESTAMP_TYPES

    @property
    def is_aware_timestamp(self) -> bool:
        """``timestamptz``."""
        return self.type in AWARE_TIMESTAMP_TYPES

    @property
    def is_integer(self) -> bool:
        """An integer type (``serial`` included)."""
        return self.type in INTEGER_TYPES


C = Column


def outbox_columns(json_type: str, ts_type: str, *, id_default: bool) -> tuple[Column, ...]:
    """The shared outbox table (``event_outbox``, SYSTEM.md §2.1); each service's variant differs in
    its JSON type, its timestamp type and whether the id has a server default."""
    return (
        Column("id", "uuid", "DEFAULT gen_random_uuid() NOT NULL" if id_default else "NOT NULL"),
        Column("aggregate_id", "varchar(255)", "NOT NULL"),
        Column("aggregate_type", "varchar(100)", "NOT NULL"),
        Column("event_type", "varchar(255)", "NOT NULL"),
        Column("event_data", json_type, "NOT NULL"),
        Column("event_key", "varchar(255)"),
        Column("topic", "varchar(255)", "NOT NULL"),
        Column("created_at", ts_type, "DEFAULT now() NOT NULL"),
        Column("published_at", ts_type),
        Column("retry_count", "integer", "DEFAULT 0 NOT NULL"),
        Column("last_error", "text"),
    )


# ---- BOS services/batch_orchestrator_service/models_db.py (SYSTEM.md §1.2)

BATCHES: tuple[Column, ...] = (
    C("id", "varchar(36)", "NOT NULL"),
    C("correlation_id", "varchar(36)", "NOT NULL"),
    C("name", "varchar(255)", "NOT NULL"),
    C("description", "text"),
    C("class_id", "varchar(255)"),
    C("status", "batch_status_enum", "DEFAULT 'awaiting_content_validation' NOT NULL"),
    C("requested_pipelines", "json"),
    C("pipeline_configuration", "json"),
    C("total_essays", "integer"),
    C("processed_essays", "integer", "NOT NULL"),
    C("version", "integer", "NOT NULL"),
    C("created_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("completed_at", "timestamp"),
    C("processing_metadata", "json"),
    C("error_details", "json"),
)

BATCH_ESSAYS: tuple[Column, ...] = (
    C("id", "serial", "NOT NULL"),
    C("batch_id", "varchar(36)", "NOT NULL"),
    C("essay_id", "varchar(36)", "NOT NULL"),
    C("content_reference", "json", "NOT NULL"),
    C("student_metadata", "json"),
    C("processing_metadata", "json"),
    C("created_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
)

PHASE_STATUS_LOG: tuple[Column, ...] = (
    C("id", "serial", "NOT NULL"),
    C("batch_id", "varchar(36)", "NOT NULL"),
    C("phase", "pipeline_phase_enum", "NOT NULL"),
    C("status", "phase_status_enum", "NOT NULL"),
    C("phase_started_at", "timestamp"),
    C("phase_completed_at", "timestamp"),
    C("essays_processed", "integer", "NOT NULL"),
    C("essays_failed", "integer", "NOT NULL"),
    C("error_message", "text"),
    C("error_details", "json"),
    C("correlation_id", "varchar(36)", "NOT NULL"),
    C("processing_metadata", "json"),
    C("created_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
)

# ---- ELS services/essay_lifecycle_service/models_db.py (SYSTEM.md §1.3)

BATCH_ESSAY_TRACKERS: tuple[Column, ...] = (
    C("id", "serial", "NOT NULL"),
    C("batch_id", "varchar(255)", "NOT NULL"),
    C("expected_essay_ids", "json", "NOT NULL"),
    C("available_slots", "json", "NOT NULL"),
    C("expected_count", "integer", "NOT NULL"),
    C("course_code", "varchar(50)", "NOT NULL"),
    C("user_id", "varchar(255)", "NOT NULL"),
    C("org_id", "varchar(255)"),
    C("correlation_id", "varchar(255)", "NOT NULL"),
    C("timeout_seconds", "integer", "DEFAULT 86400 NOT NULL"),
    C("batch_metadata", "json"),
    C("created_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("completed_at", "timestamptz"),
)

ESSAY_STATES: tuple[Column, ...] = (
    C("essay_id", "varchar(255)", "NOT NULL"),
    C("batch_id", "varchar(255)"),
    C("current_status", "essay_status_enum", "NOT NULL"),
    C("processing_metadata", "json", "NOT NULL"),
    C("timeline", "json", "NOT NULL"),
    C("storage_references", "json", "NOT NULL"),
    C("text_storage_id", "varchar(255)"),
    C("student_id", "varchar(255)"),
    C("association_confirmed_at", "timestamp"),
    C("association_method", "varchar(50)"),
    C("version", "integer", "NOT NULL"),
    C("created_at", "timestamp", "DEFAULT now() NOT NULL"),
    C("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
)

SLOT_ASSIGNMENTS: tuple[Column, ...] = (
    C("id", "serial", "NOT NULL"),
    C("batch_tracker_id", "integer", "NOT NULL"),
    C("internal_essay_id", "varchar(255)", "NOT NULL"),
    C("status", "varchar(20)", "DEFAULT 'available' NOT NULL"),
    C("text_storage_id", "varchar(255)"),
    C("original_file_name", "varchar(500)"),
    C("assigned_at", "timestamp", "DEFAULT now() NOT NULL"),
)

BATCH_PENDING_CONTENT: tuple[Column, ...] = (
    C("id", "serial", "NOT NULL"),
    C("batch_id", "varchar(255)", "NOT NULL"),
    C("text_storage_id", "varchar(255)", "NOT NULL"),
    C("content_metadata", "jsonb", "NOT NULL"),
    C("created_at", "timestamptz", "DEFAULT now() NOT NULL"),
)

BATCH_VALIDATION_FAILURES: tuple[Column, ...] = (
    C("id", "serial", "NOT NULL"),
    C("batch_id", "varchar(255)", "NOT NULL"),
    C("batch_tracker_id", "integer"),
    C("file_upload_id", "varchar(255)"),
    C("validation_error_code", "varchar(50)"),
    C("validation_error_detail", "jsonb"),
    C("created_at", "timestamptz", "DEFAULT now() NOT NULL"),
)

# ---- File Service services/file_service/models_db.py (SYSTEM.md §1.4)

FILE_UPLOADS: tuple[Column, ...] = (
    C("id", "uuid", "DEFAULT gen_random_uuid() NOT NULL"),
    C("file_upload_id", "varchar(255)", "NOT NULL"),
    C("batch_id", "varchar(255)", "NOT NULL"),
    C("user_id", "varchar(255)", "NOT NULL"),
    C("assignment_id", "varchar(255)"),
    C("filename", "varchar(500)", "NOT NULL"),
    C("file_size_bytes", "integer"),
    C("raw_file_storage_id", "varchar(255)"),
    C("text_storage_id", "varchar(255)"),
    C("processing_status", "varchar(50)", "DEFAULT 'PENDING' NOT NULL"),
    C("validation_error_code", "varchar(100)"),
    C("validation_error_message", "text"),
    C("upload_timestamp", "timestamptz", "DEFAULT CURRENT_TIMESTAMP NOT NULL"),
    C("processed_timestamp", "timestamptz"),
    C("correlation_id", "uuid"),
)
del C
