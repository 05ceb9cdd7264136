"""DDL for the simulated HuleEdu databases, generated from enum label sets.

The column layouts follow SYSTEM.md §1.2-§1.4 and §2.1. :func:`build_ddl` takes the enum label sets a
world has (aligned, as ``create_all`` builds them, or drifted, as the early Alembic chain left them), so a
drifted world gets drifted types. Index names differ between the two bootstraps (SYSTEM.md §1.1); the
``alembic`` flag picks the set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import model

__all__ = ["COLUMNS", "build_ddl", "column_names", "integer_columns"]

BOS = model.services.BOS_DB
ELS = model.services.ELS_DB
FILE = model.services.FILE_DB

Col = tuple[str, str, str]  # name, SQL type, trailing constraint text ("" | "NOT NULL" | "DEFAULT … NOT NULL")


def _outbox(json_type: str, ts_type: str, id_default: bool) -> list[Col]:
    return [
        ("id", "uuid", "DEFAULT gen_random_uuid() NOT NULL" if id_default else "NOT NULL"),
        ("aggregate_id", "varchar(255)", "NOT NULL"),
        ("aggregate_type", "varchar(100)", "NOT NULL"),
        ("event_type", "varchar(255)", "NOT NULL"),
        ("event_data", json_type, "NOT NULL"),
        ("event_key", "varchar(255)", ""),
        ("topic", "varchar(255)", "NOT NULL"),
        ("created_at", ts_type, "DEFAULT now() NOT NULL"),
        ("published_at", ts_type, ""),
        ("retry_count", "integer", "DEFAULT 0 NOT NULL"),
        ("last_error", "text", ""),
    ]


# (database, table) -> ordered columns. Only the tables the kit snapshots (model.TABLES).
COLUMNS: dict[tuple[str, str], list[Col]] = {
    (BOS, "batches"): [
        ("id", "varchar(36)", "NOT NULL"),
        ("correlation_id", "varchar(36)", "NOT NULL"),
        ("name", "varchar(255)", "NOT NULL"),
        ("description", "text", ""),
        ("class_id", "varchar(255)", ""),
        ("status", "batch_status_enum", "DEFAULT 'awaiting_content_validation' NOT NULL"),
        ("requested_pipelines", "json", ""),
        ("pipeline_configuration", "json", ""),
        ("total_essays", "integer", ""),
        ("processed_essays", "integer", "NOT NULL"),
        ("version", "integer", "NOT NULL"),
        ("created_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("completed_at", "timestamp", ""),
        ("processing_metadata", "json", ""),
        ("error_details", "json", ""),
    ],
    (BOS, "batch_essays"): [
        ("id", "serial", "NOT NULL"),
        ("batch_id", "varchar(36)", "NOT NULL"),
        ("essay_id", "varchar(36)", "NOT NULL"),
        ("content_reference", "json", "NOT NULL"),
        ("student_metadata", "json", ""),
        ("processing_metadata", "json", ""),
        ("created_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
    ],
    (BOS, "phase_status_log"): [
        ("id", "serial", "NOT NULL"),
        ("batch_id", "varchar(36)", "NOT NULL"),
        ("phase", "pipeline_phase_enum", "NOT NULL"),
        ("status", "phase_status_enum", "NOT NULL"),
        ("phase_started_at", "timestamp", ""),
        ("phase_completed_at", "timestamp", ""),
        ("essays_processed", "integer", "NOT NULL"),
        ("essays_failed", "integer", "NOT NULL"),
        ("error_message", "text", ""),
        ("error_details", "json", ""),
        ("correlation_id", "varchar(36)", "NOT NULL"),
        ("processing_metadata", "json", ""),
        ("created_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
    ],
    (BOS, "event_outbox"): _outbox("json", "timestamptz", True),
    (ELS, "batch_essay_trackers"): [
        ("id", "serial", "NOT NULL"),
        ("batch_id", "varchar(255)", "NOT NULL"),
        ("expected_essay_ids", "json", "NOT NULL"),
        ("available_slots", "json", "NOT NULL"),
        ("expected_count", "integer", "NOT NULL"),
        ("course_code", "varchar(50)", "NOT NULL"),
        ("user_id", "varchar(255)", "NOT NULL"),
        ("org_id", "varchar(255)", ""),
        ("correlation_id", "varchar(255)", "NOT NULL"),
        ("timeout_seconds", "integer", "DEFAULT 86400 NOT NULL"),
        ("batch_metadata", "json", ""),
        ("created_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("completed_at", "timestamptz", ""),
    ],
    (ELS, "essay_states"): [
        ("essay_id", "varchar(255)", "NOT NULL"),
        ("batch_id", "varchar(255)", ""),
        ("current_status", "essay_status_enum", "NOT NULL"),
        ("processing_metadata", "json", "NOT NULL"),
        ("timeline", "json", "NOT NULL"),
        ("storage_references", "json", "NOT NULL"),
        ("text_storage_id", "varchar(255)", ""),
        ("student_id", "varchar(255)", ""),
        ("association_confirmed_at", "timestamp", ""),
        ("association_method", "varchar(50)", ""),
        ("version", "integer", "NOT NULL"),
        ("created_at", "timestamp", "DEFAULT now() NOT NULL"),
        ("updated_at", "timestamp", "DEFAULT now() NOT NULL"),
    ],
    (ELS, "slot_assignments"): [
        ("id", "serial", "NOT NULL"),
        ("batch_tracker_id", "integer", "NOT NULL"),
        ("internal_essay_id", "varchar(255)", "NOT NULL"),
        ("status", "varchar(20)", "DEFAULT 'available' NOT NULL"),
        ("text_storage_id", "varchar(255)", ""),
        ("original_file_name", "varchar(500)", ""),
        ("assigned_at", "timestamp", "DEFAULT now() NOT NULL"),
    ],
    (ELS, "batch_pending_content"): [
        ("id", "serial", "NOT NULL"),
        ("batch_id", "varchar(255)", "NOT NULL"),
        ("text_storage_id", "varchar(255)", "NOT NULL"),
        ("content_metadata", "jsonb", "NOT NULL"),
        ("created_at", "timestamptz", "DEFAULT now() NOT NULL"),
    ],
    (ELS, "batch_validation_failures"): [
        ("id", "serial", "NOT NULL"),
        ("batch_id", "varchar(255)", "NOT NULL"),
        ("batch_tracker_id", "integer", ""),
        ("file_upload_id", "varchar(255)", ""),
        ("validation_error_code", "varchar(50)", ""),
        ("validation_error_detail", "jsonb", ""),
        ("created_at", "timestamptz", "DEFAULT now() NOT NULL"),
    ],
    (ELS, "event_outbox"): _outbox("jsonb", "timestamp", True),
    (FILE, "file_uploads"): [
        ("id", "uuid", "DEFAULT gen_random_uuid() NOT NULL"),
        ("file_upload_id", "varchar(255)", "NOT NULL"),
        ("batch_id", "varchar(255)", "NOT NULL"),
        ("user_id", "varchar(255)", "NOT NULL"),
        ("assignment_id", "varchar(255)", ""),
        ("filename", "varchar(500)", "NOT NULL"),
        ("file_size_bytes", "integer", ""),
        ("raw_file_storage_id", "varchar(255)", ""),
        ("text_storage_id", "varchar(255)", ""),
        ("processing_status", "varchar(50)", "DEFAULT 'PENDING' NOT NULL"),
        ("validation_error_code", "varchar(100)", ""),
        ("validation_error_message", "text", ""),
        ("upload_timestamp", "timestamptz", "DEFAULT CURRENT_TIMESTAMP NOT NULL"),
        ("processed_timestamp", "timestamptz", ""),
        ("correlation_id", "uuid", ""),
    ],
    (FILE, "event_outbox"): _outbox("json", "timestamptz", False),
}

# Table order per database (parents before children), and extra constraints / indexes.
_ORDER: dict[str, tuple[str, ...]] = {
    BOS: ("batches", "batch_essays", "phase_status_log", "event_outbox"),
    ELS: ("batch_essay_trackers", "essay_states", "slot_assignments", "batch_validation_failures",
          "batch_pending_content", "event_outbox"),
    FILE: ("file_uploads", "event_outbox"),
}

_PK: dict[tuple[str, str], str] = {(ELS, "essay_states"): "essay_id"}

_CONSTRAINTS: dict[tuple[str, str], list[str]] = {
    (BOS, "batch_essays"): ["CONSTRAINT batch_essays_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES batches (id) "
                            "ON DELETE CASCADE"],
    (BOS, "phase_status_log"): ["CONSTRAINT phase_status_log_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES "
                                "batches (id) ON DELETE CASCADE"],
    (ELS, "batch_essay_trackers"): ["CONSTRAINT uq_batch_essay_trackers_batch_id UNIQUE (batch_id)"],
    (ELS, "essay_states"): ["CONSTRAINT fk_essay_states_batch_id FOREIGN KEY (batch_id) REFERENCES "
                            "batch_essay_trackers (batch_id) ON DELETE SET NULL"],
    (ELS, "slot_assignments"): [
        "CONSTRAINT slot_assignments_batch_tracker_id_fkey FOREIGN KEY (batch_tracker_id) REFERENCES "
        "batch_essay_trackers (id) ON DELETE CASCADE",
        "CONSTRAINT uq_slot_unique_per_batch UNIQUE (batch_tracker_id, internal_essay_id)",
        "CONSTRAINT ck_slot_status_valid CHECK (status IN ('available','assigned','failed'))",
    ],
    (ELS, "batch_validation_failures"): [
        "CONSTRAINT batch_validation_failures_batch_tracker_id_fkey FOREIGN KEY (batch_tracker_id) REFERENCES "
        "batch_essay_trackers (id) ON DELETE CASCADE"],
    (ELS, "batch_pending_content"): ["CONSTRAINT uq_pending_content_per_batch UNIQUE (batch_id, text_storage_id)"],
    (FILE, "file_uploads"): ["CONSTRAINT file_uploads_file_upload_id_key UNIQUE (file_upload_id)"],
}


def _indexes(db: str, table: str, alembic: bool) -> list[str]:
    ix: dict[tuple[str, str], list[str]] = {
        (BOS, "batches"): ["ix_batches_correlation_id (correlation_id)", "ix_batches_status (status)",
                           "ix_batches_class_id (class_id)"],
        (BOS, "batch_essays"): ["ix_batch_essays_batch_id (batch_id)", "ix_batch_essays_essay_id (essay_id)"],
        (BOS, "phase_status_log"): ["ix_phase_status_log_batch_id (batch_id)", "ix_phase_status_log_phase (phase)",
                                    "ix_phase_status_log_status (status)"],
        (ELS, "batch_essay_trackers"): ["ix_batch_essay_trackers_batch_id (batch_id)"],
        (ELS, "essay_states"): [
            "ix_essay_states_batch_id (batch_id)", "ix_essay_states_current_status (current_status)",
            "ix_essay_states_text_storage_id (text_storage_id)", "ix_essay_states_student_id (student_id)",
            "UNIQUE " + ("uq_essay_content_idempotency_partial" if alembic
                         else "ix_essay_states_batch_tsid_unique")
            + " (batch_id, text_storage_id) WHERE text_storage_id IS NOT NULL"],
        (ELS, "slot_assignments"): [
            "ix_slot_assignments_internal_essay_id (internal_essay_id)",
            "UNIQUE ix_slot_unique_content_assignment (batch_tracker_id, text_storage_id) "
            "WHERE text_storage_id IS NOT NULL",
            "ix_slot_available_slots (batch_tracker_id, status) WHERE status = 'available'",
            "idx_slot_batch_status (batch_tracker_id, status)"],
        (ELS, "batch_validation_failures"): ["idx_failures_batch (batch_tracker_id)",
                                             "idx_failures_batch_id (batch_id)"],
        (ELS, "batch_pending_content"): ["idx_pending_content_batch (batch_id)"],
        (ELS, "event_outbox"): [
            "ix_event_outbox_unpublished_topic (published_at, topic, created_at) WHERE published_at IS NULL",
            "ix_event_outbox_topic (topic)", "idx_outbox_created (created_at)",
            "idx_outbox_aggregate (aggregate_id, aggregate_type)"],
        (FILE, "file_uploads"): ["ix_file_uploads_batch_id (batch_id)", "ix_file_uploads_user_id (user_id)",
                                 "ix_file_uploads_batch_user (batch_id, user_id)",
                                 "ix_file_uploads_upload_timestamp (upload_timestamp)",
                                 "ix_file_uploads_text_storage_id (text_storage_id)"],
    }
    outbox = ["ix_event_outbox_unpublished_topic (published_at, topic, created_at) WHERE published_at IS NULL",
              "ix_event_outbox_topic (topic)", "ix_event_outbox_aggregate (aggregate_type, aggregate_id)",
              "ix_event_outbox_event_type (event_type)"]
    ix[(BOS, "event_outbox")] = outbox
    ix[(FILE, "event_outbox")] = outbox
    out = []
    for spec in ix.get((db, table), []):
        unique = spec.startswith("UNIQUE ")
        spec = spec[len("UNIQUE "):] if unique else spec
        name, rest = spec.split(" ", 1)
        cols, _, where = rest.partition(" WHERE ")
        out.append(f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON {table} {cols}"
                   + (f" WHERE {where}" if where else "") + ";")
    return out


def _quote(label: str) -> str:
    return "'" + label.replace("'", "''") + "'"


def build_ddl(db: str, enums: Mapping[str, Sequence[str]], *, alembic: bool = False) -> str:
    """Return DDL that creates ``db``'s enum types (with the label sets given) and tables.

    Args:
        db: a database name from :data:`huledu_forensics.model.DATABASES`.
        enums: enum type → labels, in ``pg_enum`` order.
        alembic: use the Alembic index names instead of the ``create_all`` ones.

    Raises:
        ValueError: ``db`` is not one of the simulated databases.
    """
    if db not in _ORDER:
        raise ValueError(f"No DDL for database {db!r}; simulated databases are {sorted(_ORDER)}.")
    parts = [f"CREATE TYPE {name} AS ENUM ({', '.join(_quote(l) for l in labels)});"
             for name, labels in enums.items()]
    for table in _ORDER[db]:
        cols = COLUMNS[(db, table)]
        body = [f"    {n} {t}" + (f" {c}" if c else "") for n, t, c in cols]
        body.append(f"    CONSTRAINT {table}_pkey PRIMARY KEY ({_PK.get((db, table), 'id')})")
        body += [f"    {c}" for c in _CONSTRAINTS.get((db, table), [])]
        parts.append(f"CREATE TABLE {table} (\n" + ",\n".join(body) + "\n);")
        parts += _indexes(db, table, alembic)
    return "\n".join(parts) + "\n"


def column_names(db: str, table: str) -> list[str]:
    """Return the ordered column names of a simulated table."""
    return [c[0] for c in COLUMNS[(db, table)]]


def integer_columns(db: str, table: str) -> list[str]:
    """Return the integer-typed columns of a simulated table (``serial`` and ``integer``)."""
    return [c[0] for c in COLUMNS[(db, table)] if c[1] in ("serial", "integer")]
