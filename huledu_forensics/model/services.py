"""HuleEdu's services, containers, databases and tables, as data.

Source: shared/huleedu/SYSTEM.md sections 1, 1.2-1.5, 2.1 and 5.4 (HuleEdu commit 5246821). Each entry
notes its HuleEdu path and the fact sheet's tag ([code], [doc], [inferred]).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import schema
from .schema import Column

__all__ = [
    "CONTAINERS",
    "DATABASES",
    "OUTBOX_TABLE",
    "SERVICES",
    "TABLES",
    "Container",
    "Database",
    "Service",
    "Table",
    "service_for_container",
]


@dataclass(frozen=True)
class Service:
    """One HuleEdu service.

    ``key`` is the kit's short name (``bos``, ``els``, ``file``); ``service_name`` is HuleEdu's
    ``SERVICE_NAME`` (``source_service`` in envelopes, ``service.name`` in logs).
    """

    key: str
    title: str
    service_name: str
    containers: tuple[str, ...]
    database: str | None
    db_container: str | None
    db_dev_port: int | None
    logger_prefixes: tuple[str, ...] = ()
    relay_container: str | None = None  # the container whose process runs the outbox relay
    consumer_container: str | None = None  # the container whose process consumes Kafka
    source: str = "SYSTEM.md §1 [code]"


@dataclass(frozen=True)
class Table:
    """One table the kit snapshots.

    ``id_columns`` maps a column to the id kind it holds (``batch``, ``essay``, ``correlation``,
    ``text_storage``, ``file_upload``, ``event``, ``outbox``, ``essay_list``); in ``json_id_paths`` the kind
    ``entity`` is an ``entity_id`` whose kind the payload names beside it (``entity_type``, or
    ``metadata.entity_type``): a batch for registration and File events, an essay for per-essay requests
    (SYSTEM.md §3.3), a batch when the payload names none. ``columns`` are the
    table's columns with their PostgreSQL types (:mod:`.schema`, the one declaration of them); the JSON
    and timestamp columns are read from those types. ``key`` is the primary key.
    """

    database: str
    name: str
    key: tuple[str, ...]
    id_columns: dict[str, str] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()
    time_column: str | None = None  # the column that places a row on the timeline
    # JSON paths (column, path...) whose values are ids of a kind, e.g. outbox payload entity ids
    json_id_paths: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    source: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        """Every column, in table order."""
        return tuple(c.name for c in self.columns)

    @property
    def json_columns(self) -> tuple[str, ...]:
        """Columns stored as JSON text in bundles (``json``/``jsonb``)."""
        return tuple(c.name for c in self.columns if c.is_json)

    @property
    def naive_timestamps(self) -> tuple[str, ...]:
        """``timestamp without time zone`` columns, which HuleEdu writes as UTC."""
        return tuple(c.name for c in self.columns if c.is_naive_timestamp)

    @property
    def aware_timestamps(self) -> tuple[str, ...]:
        """``timestamptz`` columns."""
        return tuple(c.name for c in self.columns if c.is_aware_timestamp)

    @property
    def timestamp_columns(self) -> tuple[str, ...]:
        """All timestamp columns, naive and aware."""
        return self.naive_timestamps + self.aware_timestamps

    @property
    def qualified(self) -> str:
        """``database.table``."""
        return f"{self.database}.{self.name}"


@dataclass(frozen=True)
class Database:
    """One service database and the enum types the kit checks in it. Its tables are the
    :data:`TABLES` entries in it, in declaration order (parents before children)."""

    name: str
    service: str
    container: str
    dev_port: int
    enum_types: tuple[str, ...]

    @property
    def tables(self) -> tuple[str, ...]:
        """The names of the model's tables in this database."""
        return tuple(t for db, t in TABLES if db == self.name)


@dataclass(frozen=True)
class Container:
    """One container the kit reads logs and state from."""

    name: str
    service: str  # service key
    role: str  # "app", "worker", "api", "db", "oneshot"
    compose_service: str


DEV_DB_USER = "huleedu_user"
"""The database user of HuleEdu's development stack (SYSTEM.md §1)."""
DEV_DB_PASSWORD_ENV = "HULEEDU_DB_PASSWORD"
"""The environment variable that holds the development stack's database password (SYSTEM.md §1)."""

BOS_DB = "huleedu_batch_orchestrator"
ELS_DB = "huleedu_essay_lifecycle"
FILE_DB = "huleedu_file_service"
CJ_DB = "huleedu_cj_assessment"

SERVICES: dict[str, Service] = {
    s.key: s
    for s in (
        Service(
            "bos", "Batch Orchestrator (BOS)", "batch-service",
            ("huleedu_batch_orchestrator_service",), BOS_DB, "huleedu_batch_orchestrator_db", 5438,
            ("bos.", "batch_orchestrator_service"),
            relay_container="huleedu_batch_orchestrator_service",
            consumer_container="huleedu_batch_orchestrator_service",
        ),
        Service(
            "els", "Essay Lifecycle (ELS)", "essay-lifecycle-service",
            ("huleedu_essay_lifecycle_worker", "huleedu_essay_lifecycle_api"), ELS_DB,
            "huleedu_essay_lifecycle_db", 5433,
            ("worker_main", "batch_command_handlers", "batch_coordination_handler", "batch_tracker",
             "content_assignment_service", "els.", "essay_lifecycle_service", "student_association_handler",
             "batch_phase_coordinator"),
            relay_container="huleedu_essay_lifecycle_worker",
            consumer_container="huleedu_essay_lifecycle_worker",
        ),
        Service(
            "file", "File Service", "file-service", ("huleedu_file_service",), FILE_DB,
            "huleedu_file_service_db", 5439, ("file_service",),
            relay_container="huleedu_file_service",
        ),
        Service(
            "cj", "CJ Assessment", "cj_assessment_service", ("huleedu_cj_assessment_service",), CJ_DB,
            "huleedu_cj_assessment_db", 5434, ("cj_assessment_service",),
            relay_container="huleedu_cj_assessment_service",
            consumer_container="huleedu_cj_assessment_service",
        ),
        Service("gateway", "API gateway", "api_gateway_service", ("huleedu_api_gateway_service",),
                None, None, None, ("api_gateway_service",)),
        Service("spellchecker", "Spellchecker", "spellchecker-service", ("huleedu_spellchecker_service",),
                "huleedu_spellchecker", "huleedu_spellchecker_db", 5437, ("spellchecker_service",),
                consumer_container="huleedu_spellchecker_service"),
        Service("ras", "Result Aggregator (RAS)", "result_aggregator_service",
                ("huleedu_result_aggregator_service",), "huleedu_result_aggregator",
                "huleedu_result_aggregator_db", 5436, ("result_aggregator_service",)),
        Service("bcs", "Batch Conductor (BCS)", "batch-conductor-service",
                ("huleedu_batch_conductor_service",), "huleedu_batch_conductor",
                "huleedu_batch_conductor_db", 5441, ("batch_conductor_service",)),
        Service("cms", "Class Management (CMS)", "class_management_service",
                ("huleedu_class_management_service",), "huleedu_class_management",
                "huleedu_class_management_db", 5435, ("class_management_service",)),
        Service("nlp", "NLP", "nlp-service", ("huleedu_nlp_service",), "huleedu_nlp", "huleedu_nlp_db",
                5440, ("nlp_service",)),
        Service("infra", "Kafka topic setup", "kafka_topic_setup", ("huleedu_kafka_topic_setup",),
                None, None, None),
    )
}

OUTBOX_TABLE = "event_outbox"


def _outbox(db: str, columns: tuple[Column, ...], *, source: str) -> Table:
    return Table(
        db, OUTBOX_TABLE, ("id",),
        id_columns={"id": "outbox", "aggregate_id": "aggregate"},
        columns=columns,
        time_column="created_at",
        json_id_paths=_OUTBOX_ID_PATHS,
        source=source,
    )


_OUTBOX_ID_PATHS: tuple[tuple[str, tuple[str, ...], str], ...] = (
        ("event_data", ("correlation_id",), "correlation"),
        ("event_data", ("event_id",), "event"),
        ("event_data", ("data", "batch_id"), "batch"),
        ("event_data", ("data", "entity_id"), "entity"),
        ("event_data", ("data", "essay_id"), "essay"),
        ("event_data", ("data", "essay_ids"), "essay_list"),
        ("event_data", ("data", "text_storage_id"), "text_storage"),
        ("event_data", ("data", "file_upload_id"), "file_upload"),
        ("event_data", ("data", "essays_for_processing"), "essay_refs"),
        ("event_data", ("data", "essays_to_process"), "essay_refs"),
        ("event_data", ("data", "ready_essays"), "essay_refs"),
)

TABLES: dict[tuple[str, str], Table] = {
    (t.database, t.name): t
    for t in (
        # ---- BOS (SYSTEM.md §1.2)
        Table(BOS_DB, "batches", ("id",),
              id_columns={"id": "batch", "correlation_id": "batch_correlation"},
              columns=schema.BATCHES, time_column="created_at",
              json_id_paths=(("processing_metadata", ("essay_ids",), "essay_list"),),
              source="services/batch_orchestrator_service/models_db.py [code]"),
        Table(BOS_DB, "batch_essays", ("id",), id_columns={"batch_id": "batch", "essay_id": "essay"},
              columns=schema.BATCH_ESSAYS, time_column="created_at",
              json_id_paths=(("content_reference", ("text_storage_id",), "text_storage"),),
              source="services/batch_orchestrator_service/models_db.py [code]"),
        Table(BOS_DB, "phase_status_log", ("id",),
              id_columns={"batch_id": "batch", "correlation_id": "correlation"},
              columns=schema.PHASE_STATUS_LOG, time_column="created_at", source="models_db.py [code]"),
        _outbox(BOS_DB, schema.outbox_columns("json", "timestamptz", id_default=True), source="outbox/models.py; BOS variant JSON + timestamptz [code]"),
        # ---- ELS (SYSTEM.md §1.3)
        Table(ELS_DB, "batch_essay_trackers", ("id",),
              id_columns={"batch_id": "batch", "correlation_id": "correlation"},
              columns=schema.BATCH_ESSAY_TRACKERS, time_column="created_at",
              json_id_paths=(("expected_essay_ids", (), "essay_list"),),
              source="services/essay_lifecycle_service/models_db.py [code]"),
        Table(ELS_DB, "essay_states", ("essay_id",),
              id_columns={"essay_id": "essay", "batch_id": "batch", "text_storage_id": "text_storage"},
              columns=schema.ESSAY_STATES, time_column="created_at", source="models_db.py [code]"),
        Table(ELS_DB, "slot_assignments", ("id",),
              id_columns={"internal_essay_id": "essay", "text_storage_id": "text_storage"},
              columns=schema.SLOT_ASSIGNMENTS, time_column="assigned_at",
              source="models_db.py [code]; stale at HEAD"),
        Table(ELS_DB, "batch_pending_content", ("id",),
              id_columns={"batch_id": "batch", "text_storage_id": "text_storage"},
              columns=schema.BATCH_PENDING_CONTENT, time_column="created_at",
              json_id_paths=(("content_metadata", ("file_upload_id",), "file_upload"),
                             ("content_metadata", ("correlation_id",), "correlation")),
              source="models_db.py [code]"),
        Table(ELS_DB, "batch_validation_failures", ("id",),
              id_columns={"batch_id": "batch", "file_upload_id": "file_upload"},
              columns=schema.BATCH_VALIDATION_FAILURES, time_column="created_at",
              source="models_db.py [code]"),
        _outbox(ELS_DB, schema.outbox_columns("jsonb", "timestamp", id_default=True),
                source="outbox/models.py; ELS variant JSONB + naive timestamps [code]"),
        # ---- File Service (SYSTEM.md §1.4)
        Table(FILE_DB, "file_uploads", ("id",),
              id_columns={"file_upload_id": "file_upload", "batch_id": "batch",
                          "text_storage_id": "text_storage", "raw_file_storage_id": "raw_storage",
                          "correlation_id": "correlation"},
              columns=schema.FILE_UPLOADS, time_column="upload_timestamp", source="services/file_service/models_db.py [code]"),
        _outbox(FILE_DB, schema.outbox_columns("json", "timestamptz", id_default=False),
                source="outbox/models.py; File variant: aggregate_id = file_upload_id [code]"),
    )
}

for _t in TABLES.values():  # every column a table names is one of its declared columns
    assert set(_t.key) | set(_t.id_columns) | {p[0] for p in _t.json_id_paths} <= set(_t.column_names), _t.name
    assert _t.time_column is None or _t.time_column in _t.column_names, _t.name

DATABASES: dict[str, Database] = {
    BOS_DB: Database(BOS_DB, "bos", "huleedu_batch_orchestrator_db", 5438,
                     ("batch_status_enum", "pipeline_phase_enum", "phase_status_enum")),
    ELS_DB: Database(ELS_DB, "els", "huleedu_essay_lifecycle_db", 5433, ("essay_status_enum",)),
    FILE_DB: Database(FILE_DB, "file", "huleedu_file_service_db", 5439, ()),
}

CONTAINERS: dict[str, Container] = {
    c.name: c
    for c in (
        Container("huleedu_batch_orchestrator_service", "bos", "app", "batch_orchestrator_service"),
        Container("huleedu_batch_orchestrator_db", "bos", "db", "batch_orchestrator_db"),
        Container("huleedu_essay_lifecycle_worker", "els", "worker", "essay_lifecycle_worker"),
        Container("huleedu_essay_lifecycle_api", "els", "api", "essay_lifecycle_api"),
        Container("huleedu_essay_lifecycle_db", "els", "db", "essay_lifecycle_db"),
        Container("huleedu_file_service", "file", "app", "file_service"),
        Container("huleedu_file_service_db", "file", "db", "file_service_db"),
        Container("huleedu_cj_assessment_service", "cj", "app", "cj_assessment_service"),
        Container("huleedu_cj_assessment_db", "cj", "db", "cj_assessment_db"),
        Container("huleedu_api_gateway_service", "gateway", "app", "api_gateway_service"),
        Container("huleedu_spellchecker_service", "spellchecker", "app", "spellchecker_service"),
        Container("huleedu_result_aggregator_service", "ras", "app", "result_aggregator_service"),
        Container("huleedu_batch_conductor_service", "bcs", "app", "batch_conductor_service"),
        Container("huleedu_kafka_topic_setup", "infra", "oneshot", "kafka_topic_setup"),
    )
}

def service_for_container(name: str) -> str | None:
    """Return the service key that owns container ``name``, or ``None`` if unknown."""
    c = CONTAINERS.get(name)
    return c.service if c else None
