"""DDL for the simulated HuleEdu databases, generated from the model's tables and enum label sets.

The tables and their columns are the model's (:data:`huledu_forensics.model.TABLES`, columns declared in
:mod:`huledu_forensics.model.schema`), so a table added there is created here with no other change.
This module adds only what the DDL needs beyond the columns: foreign keys, unique constraints and the
index names of each bootstrap. :func:`build_ddl` takes the enum label sets a world has (aligned, as
``create_all`` builds them, or drifted, as the early Alembic chain left them), so a drifted world gets
drifted types. Index names differ between the two bootstraps (SYSTEM.md §1.1); the ``alembic`` flag
picks the set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .. import model

__all__ = ["build_ddl", "column_names", "integer_columns"]

BOS = model.services.BOS_DB
ELS = model.services.ELS_DB
FILE = model.services.FILE_DB

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
    tables = _tables(db)
    if not tables:
        raise ValueError(f"No DDL for database {db!r}; simulated databases are "
                         f"{sorted({d for d, _ in model.TABLES})}.")
    parts = [f"CREATE TYPE {name} AS ENUM ({', '.join(_quote(l) for l in labels)});"
             for name, labels in enums.items()]
    for spec in tables:
        table = spec.name
        body = [f"    {c.name} {c.type}" + (f" {c.constraint}" if c.constraint else "") for c in spec.columns]
        body.append(f"    CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(spec.key)})")
        body += [f"    {c}" for c in _CONSTRAINTS.get((db, table), [])]
        parts.append(f"CREATE TABLE {table} (\n" + ",\n".join(body) + "\n);")
        parts += _indexes(db, table, alembic)
    return "\n".join(parts) + "\n"


def _tables(db: str) -> list[model.Table]:
    """``db``'s tables in the model's order (parents before children)."""
    return [t for (d, _), t in model.TABLES.items() if d == db]


def column_names(db: str, table: str) -> list[str]:
    """Return the ordered column names of a simulated table."""
    return list(model.TABLES[(db, table)].column_names)


def integer_columns(db: str, table: str) -> list[str]:
    """Return the integer-typed columns of a simulated table (``serial`` and ``integer``)."""
    return [c.name for c in model.TABLES[(db, table)].columns if c.is_integer]
