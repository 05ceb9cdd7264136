"""The simulation engine: services that write rows and log lines as a HuleEdu stack would.

:class:`Sim` holds one world in the making: a seeded ``random.Random`` (every id and jitter comes from
it), the rows per table, the outbox rows per service, and the log lines per container and stream. A
:class:`Batch` is one batch's plan; :meth:`Sim.run_batch` plays its flow (uploads, registration, ELS
coordination, BOS transitions, pipeline phases) according to its ``mode``. :meth:`Sim.finish` adds the
outbox relays' polling, container noise, PostgreSQL lines and assembles a :class:`~huledu_forensics.world.World`.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import pandas as pd

from .. import model
from ..world import ContainerState, DatabaseImage, World, coerce_table
from . import ddl as ddlmod
from .logfmt import console_line, docker_stamp, iso_z, json_line, pg_line

__all__ = ["Batch", "FileSpec", "Sim"]

BOS_DB, ELS_DB, FILE_DB = ddlmod.BOS, ddlmod.ELS, ddlmod.FILE
SVC = model.SERVICES
ENV = {"bos": "production", "els": "development", "file": "production", "els_api": "production"}
POLL = {"bos": (5.0, 30.0), "els": (1.0, 10.0), "file": (5.0, 30.0)}  # poll interval, error back-off


def _topic(name: str) -> str:
    """Return ``name`` after checking the model knows the topic (keeps the simulator honest)."""
    if name not in model.TOPICS:
        raise KeyError(f"topic {name!r} is not in huledu_forensics.model.TOPICS")
    return name


T_REGISTERED = _topic("huleedu.batch.essays.registered.v1")
T_PROVISIONED = _topic("huleedu.file.essay.content.provisioned.v1")
T_VFAILED = _topic("huleedu.file.essay.validation.failed.v1")
T_FILE_ADDED = _topic("huleedu.file.batch.file.added.v1")
T_SLOT = _topic("huleedu.els.essay.slot.assigned.v1")
T_COMPLETED = _topic("huleedu.batch.content.provisioning.completed.v1")
T_MATCH_CMD = _topic("huleedu.batch.student.matching.initiate.command.v1")
T_CONFIRMED = _topic("huleedu.class.student.associations.confirmed.v1")
T_READY = _topic("huleedu.els.batch.essays.ready.v1")
T_PIPE_REQ = _topic("huleedu.commands.batch.pipeline.v1")
T_SPELL_CMD = _topic("huleedu.els.spellcheck.initiate.command.v1")
T_SPELL_REQ = _topic("huleedu.essay.spellcheck.requested.v1")
T_SPELL_DONE = _topic("huleedu.batch.spellcheck.phase.completed.v1")
T_CJ_CMD = _topic("huleedu.batch.cj_assessment.initiate.command.v1")
T_CJ_REQ = _topic("huleedu.els.cj_assessment.requested.v1")
T_CJ_DONE = _topic("huleedu.cj_assessment.completed.v1")
T_OUTCOME = _topic("huleedu.els.batch.phase.outcome.v1")
T_PIPE_DONE = _topic("huleedu.batch.pipeline.completed.v1")

BOS_TOPICS = [T_READY, T_COMPLETED, T_OUTCOME, T_PIPE_REQ, _topic("huleedu.els.batch.validation.errors.v1"),
              T_CONFIRMED]
ELS_TOPICS = [T_SPELL_DONE, T_REGISTERED, T_PROVISIONED, T_VFAILED, T_SPELL_CMD, T_CJ_CMD,
              _topic("huleedu.batch.nlp.initiate.command.v2"), T_CJ_DONE,
              _topic("huleedu.batch.nlp.analysis.completed.v1"), T_MATCH_CMD, T_CONFIRMED]


def ms(x: float) -> timedelta:
    """``x`` milliseconds."""
    return timedelta(milliseconds=x)


@dataclass
class FileSpec:
    """One uploaded file of a batch."""

    file_upload_id: str
    filename: str
    raw_id: str
    text_storage_id: str
    size: int
    md5: str
    row_id: str
    fails: str | None = None  # validation error code, or None when the file is valid
    event_id: str | None = None  # envelope event_id of the File outbox row (fixed in the seed scenario)


@dataclass
class Batch:
    """One batch's plan and its evolving state.

    ``mode`` is ``healthy``, ``enum_a`` (tracker committed, essay insert rejected), ``enum_b`` (full
    rollback), ``poisoned`` (content-completed outbox row never published) or ``vfail`` (k files fail
    validation). ``pipeline`` is the phase the client requests (``cj_assessment``/``spellcheck``) or None.
    """

    id: str
    reg_corr: str
    flow: str
    essay_ids: list[str]
    files: list[FileSpec]
    user_id: str
    org_id: str | None
    class_id: str | None
    course_code: str
    t_reg: datetime
    content_lead_s: float  # > 0: content uploaded that many seconds before registration
    mode: str = "healthy"
    pipeline: str | None = None
    pipe_corr: str | None = None
    t_pipe: datetime | None = None  # fixed pipeline-request time; else set after ready
    pipe_delay_s: float = 3.0
    bos_relay_delay_ms: float | None = None
    reg_trace: str = ""
    tracker_id: int | None = None
    # state
    status: str = "awaiting_content_validation"
    version: int = 1
    updated_at: datetime | None = None
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    requested: list[str] = field(default_factory=lambda: ["spellcheck"])
    essays: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracker: dict[str, Any] | None = None
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)
    bos_essays: list[dict[str, Any]] = field(default_factory=list)
    t_ready: datetime | None = None
    created_at: datetime | None = None
    registered_offset: tuple[int, int] | None = None
    pg_pid: int | None = None  # ELS database backend that logs the enum rejection
    vfail_rows: list[dict[str, Any]] = field(default_factory=list)


class Sim:
    """A world under construction. See the module docstring."""

    def __init__(self, name: str, seed: int, start: datetime, *, els_enums: dict[str, list[str]],
                 bos_enums: dict[str, list[str]], alembic: bool) -> None:
        self.name = name
        self.rng = random.Random(f"{name}:{seed}")
        self.start = start
        self.els_enums = els_enums
        self.bos_enums = bos_enums
        self.alembic = alembic
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in model.TABLES}
        self.outbox: dict[str, list[dict[str, Any]]] = {"bos": [], "els": [], "file": []}
        self.lines: dict[str, list[tuple[datetime, int, str, str]]] = {}
        self._seq = 0
        self._serial: dict[tuple[str, str], int] = {}
        self.pg_pids = {db: [self.rng.randint(40, 120) for _ in range(3)] for db in (BOS_DB, ELS_DB, FILE_DB)}
        self.kafka_offsets: dict[str, int] = {}
        self.containers: list[ContainerState] = []

    # ------------------------------------------------------------------ ids and time
    def uuid(self) -> str:
        """A UUID4 string drawn from the world's random stream."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        """32 hex digits (Content Service storage ids, trace ids)."""
        return f"{self.rng.getrandbits(128):032x}"

    def hex16(self) -> str:
        """16 hex digits (span ids)."""
        return f"{self.rng.getrandbits(64):016x}"

    def jit(self, lo: float, hi: float) -> timedelta:
        """A random delay between ``lo`` and ``hi`` milliseconds."""
        return ms(self.rng.uniform(lo, hi))

    def serial(self, db: str, table: str, base: int = 100) -> int:
        """Next serial id of a table (starting from a random base, as a long-lived database would)."""
        if (db, table) not in self._serial:
            self._serial[(db, table)] = base + self.rng.randint(0, 300)
        self._serial[(db, table)] += 1
        return self._serial[(db, table)]

    def offset(self, topic: str, partition: int) -> int:
        """Next Kafka offset on a topic partition."""
        k = f"{topic}:{partition}"
        self.kafka_offsets[k] = self.kafka_offsets.get(k, self.rng.randint(3, 40)) + 1
        return self.kafka_offsets[k]

    # ------------------------------------------------------------------ logging
    def raw(self, container: str, t: datetime, text: str, stream: str = "stdout") -> None:
        """Add one raw line (no Docker stamp) to a container stream at time ``t``."""
        self._seq += 1
        self.lines.setdefault(container, []).append((t, self._seq, stream, text))

    def log(self, svc: str, t: datetime, logger: str, event: str, *, level: str = "info",
            extra: dict[str, Any] | None = None, trace: tuple[str, str] | None = None,
            where: tuple[str, str, int] = ("", "", 0), exception: str | None = None,
            container: str | None = None) -> None:
        """Add one structlog JSON line of service ``svc`` (``bos``, ``els``, ``els_api``, ``file``)."""
        key = "els" if svc == "els_api" else svc
        if container is None:
            container = SVC[key].containers[1] if svc == "els_api" else SVC[key].containers[0]
        line = json_line(t, logger, event, service=SVC[key].service_name, env=ENV[svc], level=level,
                         extra=extra, trace=trace, filename=where[0], func=where[1], lineno=where[2],
                         exception=exception)
        self.raw(container, t + self.jit(0.1, 1.6), line)

    def pg(self, db: str, t: datetime, severity: str, message: str, pid: int | None = None,
           docker_at: datetime | None = None) -> None:
        """Add one PostgreSQL server line (stderr) to a database container."""
        pid = pid if pid is not None else self.rng.choice(self.pg_pids[db])
        self.raw(model.DATABASES[db].container, docker_at or t + self.jit(0.3, 1.5),
                 pg_line(t, pid, severity, message), "stderr")

    def span(self, trace: str | None = None) -> tuple[str, str]:
        """A (trace_id, span_id) pair, reusing ``trace`` when given."""
        return (trace or self.hex32(), self.hex16())

    # ------------------------------------------------------------------ outbox
    def envelope(self, topic: str, t: datetime, source: str, corr: str, data: dict[str, Any],
                 metadata: dict[str, Any] | None, event_type: str | None = None,
                 event_id: str | None = None) -> dict[str, Any]:
        """An outbox copy of an EventEnvelope: the envelope plus a top-level ``topic`` key."""
        return {"event_id": event_id or self.uuid(), "event_type": event_type or topic,
                "event_timestamp": iso_z(t), "source_service": source, "schema_version": 1,
                "correlation_id": corr, "data_schema_uri": None, "data": data, "metadata": metadata,
                "topic": topic}

    def outbox_add(self, svc: str, t: datetime, topic: str, aggregate_id: str, aggregate_type: str,
                   corr: str, data: dict[str, Any], *, trace: tuple[str, str] | None = None,
                   delay_ms: float | None = None, poisoned: bool = False, event_type: str | None = None,
                   source: str | None = None, event_id: str | None = None) -> datetime | None:
        """Insert an outbox row and log it. Returns when the relay publishes it (None if never)."""
        meta = {"traceparent": f"00-{trace[0]}-{trace[1]}-01"} if trace else None
        env = self.envelope(topic, t, source or SVC[svc].service_name, corr, data, meta, event_type, event_id)
        oid = self.uuid()
        if svc == "bos":
            self.log("bos", t + ms(0.4), "bos.event_publisher",
                     f"Event type '{topic}' not found in ProcessingEvent enum, using as topic name directly",
                     level="warning", trace=trace,
                     where=("event_publisher_impl.py", "publish_batch_event", 55))
        self.log(svc, t + ms(1), "outbox_repository", "Added event to outbox",
                 extra={"outbox_id": oid, "aggregate_id": aggregate_id, "aggregate_type": aggregate_type,
                        "event_type": event_type or topic}, trace=trace,
                 where=("repository.py", "add_event", 205))
        published = None if poisoned else t + (ms(delay_ms) if delay_ms is not None else self.jit(8, 35))
        row = {"id": oid, "aggregate_id": aggregate_id, "aggregate_type": aggregate_type,
               "event_type": event_type or topic, "event_data": env, "event_key": aggregate_id, "topic": topic,
               "created_at": t, "published_at": published, "retry_count": 0, "last_error": None,
               "_poisoned": poisoned}
        self.outbox[svc].append(row)
        return published

    # ------------------------------------------------------------------ File Service
    def file_uploads(self, b: Batch, t0: datetime) -> list[tuple[datetime, str, FileSpec]]:
        """Play the File Service upload of ``b``'s files from ``t0``; return ELS deliveries."""
        tr = self.span()
        self.raw(SVC["file"].containers[0], t0 - ms(3),
                 f"[{t0:%Y-%m-%d %H:%M:%S} +0000] [7] [INFO] 172.18.0.{self.rng.randint(10, 40)}:"
                 f"{self.rng.randint(30000, 60000)} - - [{t0:%d/%b/%Y:%H:%M:%S} +0000] "
                 f"\"POST /v1/files/batch 1.1\" 202 {self.rng.randint(120, 200)} \"-\" \"python-httpx/0.27.0\"")
        self.log("file", t0, "file_service.api.file_routes",
                 f"Received {len(b.files)} files for batch {b.id} from user {b.user_id}. Correlation ID: {b.reg_corr}",
                 trace=tr, where=("file_routes.py", "upload_batch_files", 98))
        out = []
        corr = {"correlation_id": b.reg_corr}
        for i, f in enumerate(b.files):
            t = t0 + ms(15 + 38 * i) + self.jit(0, 10)
            row = {"id": f.row_id, "file_upload_id": f.file_upload_id, "batch_id": b.id, "user_id": b.user_id,
                   "assignment_id": None, "filename": f.filename, "file_size_bytes": f.size,
                   "raw_file_storage_id": f.raw_id, "text_storage_id": None, "processing_status": "completed",
                   "validation_error_code": None, "validation_error_message": None,
                   "upload_timestamp": t, "processed_timestamp": None, "correlation_id": b.reg_corr}
            self.log("file", t, "file_service.core_logic", f"Processing file {f.filename} for batch {b.id}",
                     extra=corr, trace=tr, where=("core_logic.py", "process_single_file_upload", 80))
            t += self.jit(40, 90)
            self.log("file", t, "file_service.core_logic",
                     f"Stored raw file blob for {f.filename}, raw_file_storage_id: {f.raw_id}", extra=corr,
                     trace=tr, where=("core_logic.py", "process_single_file_upload", 112))
            t += self.jit(30, 80)
            fdata: dict[str, Any] = {"event_name": "essay.validation.failed" if f.fails else "essay.content.provisioned",
                                     "entity_id": b.id, "entity_type": "batch", "parent_id": None,
                                     "timestamp": iso_z(t), "file_upload_id": f.file_upload_id,
                                     "original_file_name": f.filename, "raw_file_storage_id": f.raw_id}
            if f.fails:
                msg = "File content is empty or contains only whitespace"
                self.log("file", t, "file_service.core_logic", f"Content validation failed for {f.filename}: {msg}",
                         level="warning", extra={**corr, "error_code": f.fails, "error_message": msg}, trace=tr,
                         where=("core_logic.py", "process_single_file_upload", 214))
                detail = {"error_code": f.fails, "message": msg, "correlation_id": b.reg_corr,
                          "timestamp": iso_z(t), "service": "file_service",
                          "operation": "process_single_file_upload",
                          "details": {"batch_id": b.id, "file_name": f.filename}, "stack_trace": None,
                          "trace_id": tr[0], "span_id": tr[1]}
                fdata.update({"validation_error_code": f.fails, "validation_error_detail": detail,
                              "file_size_bytes": f.size, "correlation_id": b.reg_corr})
                pub = self.outbox_add("file", t, T_VFAILED, f.file_upload_id, "file_upload", b.reg_corr, fdata,
                                      trace=tr, event_id=f.event_id)
                self.log("file", t + ms(2), "file_service.implementations.event_publisher",
                         "EssayValidationFailedV1 event stored in outbox for reliable delivery",
                         extra={"file_upload_id": f.file_upload_id, "original_file_name": f.filename,
                                **corr, "topic": T_VFAILED}, trace=tr,
                         where=("event_publisher_impl.py", "publish_essay_validation_failed", 121))
                self.log("file", t + ms(4), "file_service.core_logic",
                         f"Published EssayValidationFailedV1 for content validation failure: {f.filename}",
                         extra=corr, trace=tr, where=("core_logic.py", "process_single_file_upload", 236))
                row.update(processing_status="failed", validation_error_code=f.fails,
                           validation_error_message=msg, processed_timestamp=t + ms(6))
                out.append((cast(datetime, pub) + self.jit(15, 45), "vfail", f))
            else:
                self.log("file", t, "file_service.implementations.content_service_client",
                         f"Successfully stored content (type: extracted_plaintext), storage_id: {f.text_storage_id}",
                         extra=corr, trace=tr, where=("content_service_client_impl.py", "store_content", 59))
                self.log("file", t + ms(1), "file_service.core_logic",
                         f"Stored extracted plaintext for file {f.filename}, text_storage_id: {f.text_storage_id}",
                         extra=corr, trace=tr, where=("core_logic.py", "process_single_file_upload", 319))
                t += self.jit(3, 8)
                fdata.update({"text_storage_id": f.text_storage_id, "file_size_bytes": f.size,
                              "content_md5_hash": f.md5, "correlation_id": b.reg_corr})
                pub = self.outbox_add("file", t, T_PROVISIONED, f.file_upload_id, "file_upload", b.reg_corr,
                                      fdata, trace=tr, event_id=f.event_id)
                self.log("file", t + ms(2), "file_service.implementations.event_publisher",
                         "EssayContentProvisionedV1 event stored in outbox for reliable delivery",
                         extra={"file_upload_id": f.file_upload_id, "text_storage_id": f.text_storage_id, **corr,
                                "topic": T_PROVISIONED}, trace=tr,
                         where=("event_publisher_impl.py", "publish_essay_content_provisioned", 96))
                self.log("file", t + ms(4), "file_service.core_logic",
                         f"Published EssayContentProvisionedV1 for file {f.filename}", extra=corr, trace=tr,
                         where=("core_logic.py", "process_single_file_upload", 352))
                row.update(text_storage_id=f.text_storage_id, processed_timestamp=t + ms(6))
                out.append((cast(datetime, pub) + self.jit(15, 45), "content", f))
            t += self.jit(5, 12)
            self.outbox_add("file", t, T_FILE_ADDED, b.id, "batch", b.reg_corr,
                            {"batch_id": b.id, "file_upload_id": f.file_upload_id, "filename": f.filename,
                             "user_id": b.user_id, "timestamp": iso_z(t)}, trace=tr)
            self.log("file", t + ms(2), "file_service.implementations.event_publisher",
                     "BatchFileAddedV1 event stored in outbox for reliable delivery",
                     extra={"batch_id": b.id, "file_upload_id": f.file_upload_id, "filename": f.filename, **corr,
                            "topic": T_FILE_ADDED}, trace=tr,
                     where=("event_publisher_impl.py", "publish_batch_file_added_v1", 177))
            self.rows[(FILE_DB, "file_uploads")].append(row)
        return out

    # ------------------------------------------------------------------ BOS registration
    def pipeline_configuration(self, b: Batch, t: datetime) -> dict[str, Any]:
        """BOS ``ProcessingPipelineState`` dump for the batch's current phase states."""
        n = len(b.essay_ids)
        pc: dict[str, Any] = {"batch_id": b.id, "requested_pipelines": list(b.requested)}
        for p in ("spellcheck", "nlp", "ai_feedback", "cj_assessment"):
            st = b.phases.get(p, {"status": "pending_dependencies" if p in b.requested else "skipped_by_user_config"})
            done = st["status"] == "completed_successfully"
            pc[p] = {"status": st["status"],
                     "essay_counts": {"total": n, "pending_dispatch_or_processing": n if st["status"] == "dispatch_initiated" else 0,
                                      "successful": n if done else 0, "failed": 0},
                     "started_at": iso_z(st["started_at"]) if st.get("started_at") else None,
                     "completed_at": iso_z(st["completed_at"]) if st.get("completed_at") else None,
                     "error_info": None, "progress_percentage": 100.0 if done else 0.0}
        pc["last_updated"] = iso_z(t)
        return pc

    def bos_register(self, b: Batch) -> datetime:
        """Play BOS registration; return when ELS receives BatchEssaysRegistered."""
        t = b.t_reg
        tr = (b.reg_trace, self.hex16())
        n = len(b.essay_ids)
        corr = {"correlation_id": b.reg_corr}
        self.log("bos", t, "bos.service.batch_processing",
                 f"Registering new batch {b.id} with {n} essays. Generated internal essay IDs: {n} slots",
                 extra=corr, trace=tr, where=("batch_processing_service_impl.py", "register_new_batch", 60))
        self.log("bos", t + ms(4), "bos.repository.context", f"Stored batch context for {b.id}", trace=tr,
                 where=("batch_context_operations.py", "store_batch_context", 80))
        b.updated_at = t
        b.created_at = t
        te = t + ms(9)
        data = {"event": "batch.essays.registered", "entity_id": b.id, "expected_essay_count": n,
                "essay_ids": list(b.essay_ids),
                "metadata": {"entity_id": b.id, "entity_type": "batch", "parent_id": None, "timestamp": iso_z(te),
                             "processing_stage": "pending", "event": "batch.essays.registered", "started_at": None,
                             "completed_at": None, "error_info": {}},
                "course_code": b.course_code, "student_prompt_ref": None, "user_id": b.user_id, "org_id": b.org_id,
                "class_id": b.class_id}
        pub = self.outbox_add("bos", te, T_REGISTERED, b.id, "batch", b.reg_corr, data, trace=tr,
                              delay_ms=b.bos_relay_delay_ms if b.bos_relay_delay_ms is not None else None)
        env_id = self.outbox["bos"][-1]["event_data"]["event_id"]
        self.log("bos", te + ms(1.5), "bos.event_publisher", "Event stored in outbox for reliable delivery",
                 extra={"event_type": T_REGISTERED, "aggregate_id": b.id, **corr, "topic": T_REGISTERED},
                 trace=tr, where=("event_publisher_impl.py", "publish_batch_event", 76))
        self.log("bos", te + ms(4), "bos.service.batch_processing",
                 f"Published BatchEssaysRegistered event for batch {b.id} with {n} internal essay slots, "
                 f"pipelines: ['spellcheck'], event_id {env_id}", extra=corr, trace=tr,
                 where=("batch_processing_service_impl.py", "register_new_batch", 155))
        self.log("bos", te + ms(5), "bos.api.batch", f"Batch {b.id} registered successfully via service layer",
                 extra=corr, trace=tr, where=("batch_routes.py", "register_batch", 73))
        self.raw(SVC["bos"].containers[0], te + ms(6),
                 f"[{te:%Y-%m-%d %H:%M:%S} +0000] [7] [INFO] 172.18.0.{self.rng.randint(10, 40)}:"
                 f"{self.rng.randint(30000, 60000)} - - [{te:%d/%b/%Y:%H:%M:%S} +0000] "
                 f"\"POST /v1/batches/register 1.1\" 202 {self.rng.randint(180, 260)} \"-\" \"python-httpx/0.27.0\"")
        return cast(datetime, pub) + self.jit(20, 45)

    # ------------------------------------------------------------------ ELS coordination
    def els_event_start(self, t: datetime, topic: str, corr: str, source: str, tr: tuple[str, str]) -> None:
        """The ELS worker's generic 'Processing event' line."""
        self.log("els", t, "batch_command_handlers", "Processing event",
                 extra={"event_type": topic, "correlation_id": corr, "source_service": source}, trace=tr,
                 where=("batch_command_handlers.py", "process_single_message", 121))

    def els_registered(self, b: Batch, t: datetime) -> list[tuple[datetime, str, Any]]:
        """ELS handles BatchEssaysRegistered. Returns follow-up deliveries (to BOS)."""
        tr = (b.reg_trace, self.hex16())
        n = len(b.essay_ids)
        corr = {"correlation_id": b.reg_corr}
        self.els_event_start(t, T_REGISTERED, b.reg_corr, SVC["bos"].service_name, tr)
        self.log("els", t + ms(1), "batch_coordination_handler", "Processing BatchEssaysRegistered event",
                 extra={"batch_id": b.id, "expected_count": n, **corr}, trace=tr,
                 where=("batch_coordination_handler_impl.py", "handle_batch_essays_registered", 69))
        t += self.jit(2, 5)
        tracker_id = self.serial(ELS_DB, "batch_essay_trackers", 300)
        b.tracker_id = tracker_id
        tracker = {"id": tracker_id, "batch_id": b.id, "expected_essay_ids": list(b.essay_ids),
                   "available_slots": list(b.essay_ids), "expected_count": n, "course_code": b.course_code,
                   "user_id": b.user_id, "org_id": b.org_id, "correlation_id": b.reg_corr, "timeout_seconds": 86400,
                   "batch_metadata": None, "created_at": t, "updated_at": t, "completed_at": None}
        self.log("els", t, "batch_tracker",
                 f"Registered batch {b.id} in database with {n} slots, course: {b.course_code}", trace=tr,
                 where=("batch_essay_tracker_impl.py", "register_batch", 131))
        if b.mode != "enum_b":
            b.tracker = tracker
            for eid in b.essay_ids:
                b.slots[eid] = {"id": self.serial(ELS_DB, "slot_assignments", 80), "batch_tracker_id": tracker_id,
                                "internal_essay_id": eid, "status": "available", "text_storage_id": None,
                                "original_file_name": None, "assigned_at": t}
        self.log("els", t + ms(1), "batch_coordination_handler", "Creating initial essay records in database for batch",
                 extra={"batch_id": b.id, "essay_count": n, **corr}, trace=tr,
                 where=("batch_coordination_handler_impl.py", "handle_batch_essays_registered", 85))
        t += self.jit(2, 4)
        self.log("els", t, "els.repository.queries",
                 f"Creating batch of {n} essay records for batch {b.id}: {list(b.essay_ids)!r}", trace=tr,
                 where=("essay_repository_queries.py", "create_essay_records_batch", 312))
        if b.mode in ("enum_a", "enum_b"):
            t += self.jit(8, 12)
            self.pg_enum_error(b, t)
            self.log("els", t + ms(2), "batch_command_handlers", "Error routing event", level="error",
                     extra={"error": "[PROCESSING_ERROR] Database error during batch essay creation: DBAPIError",
                            "event_type": T_REGISTERED, **corr}, trace=tr,
                     where=("batch_command_handlers.py", "_route_event", 464))
            self.log("els", t + ms(3), "batch_command_handlers", "Event processing failed", level="error",
                     extra=corr, trace=tr, where=("batch_command_handlers.py", "process_single_message", 154))
            off = b.registered_offset or (self.rng.randint(0, 2), 0)
            if not b.registered_offset:
                off = (off[0], self.offset(T_REGISTERED, off[0]))
            self.log("els", t + ms(5), "worker_main", "Message processing failed - offset not committed",
                     level="error", extra={"topic": T_REGISTERED, "partition": off[0], "offset": off[1]},
                     where=("worker_main.py", "run_consumer_loop", 237))
            return []
        for eid in b.essay_ids:
            b.essays[eid] = {"essay_id": eid, "batch_id": b.id, "current_status": "uploaded",
                             "processing_metadata": {}, "timeline": {"uploaded": iso_z(t)},
                             "storage_references": {}, "text_storage_id": None, "student_id": None,
                             "association_confirmed_at": None, "association_method": None, "version": 1,
                             "created_at": t, "updated_at": t}
        self.log("els", t + ms(4), "els.repository.queries",
                 f"Successfully created batch of {n} essay records for batch {b.id}", trace=tr,
                 where=("essay_repository_queries.py", "create_essay_records_batch", 341))
        self.log("els", t + ms(5), "batch_coordination_handler", "Successfully created initial essay records for batch",
                 extra={"batch_id": b.id, **corr}, trace=tr,
                 where=("batch_coordination_handler_impl.py", "handle_batch_essays_registered", 97))
        t += ms(7)
        follow: list[tuple[datetime, str, Any]] = []
        if b.pending:
            items = list(b.pending.values())
            b.pending.clear()
            for item in items:
                t += self.jit(6, 14)
                follow += self.els_assign(b, t, item["_file"], tr)
            self.log("els", t + ms(2), "batch_coordination_handler",
                     f"Processed {len(items)} pending content items for batch using ContentAssignmentService",
                     extra={"batch_id": b.id, "assigned_count": len(items), **corr}, trace=tr,
                     where=("batch_coordination_handler_impl.py", "handle_batch_essays_registered", 131))
        self.log("els", t + ms(3), "batch_command_handlers", "Event processed successfully", extra=corr, trace=tr,
                 where=("batch_command_handlers.py", "process_single_message", 147))
        return follow

    def pg_enum_error(self, b: Batch, t: datetime) -> None:
        """The ELS database's rejection of the ``uploaded`` essay rows (SYSTEM.md §8.2)."""
        pid = b.pg_pid or self.rng.choice(self.pg_pids[ELS_DB])
        cols = ("essay_id, batch_id, current_status, processing_metadata, timeline, storage_references, "
                "text_storage_id, student_id, association_confirmed_at, association_method, version")
        types = ("VARCHAR", "VARCHAR", "essay_status_enum", "JSON", "JSON", "JSON", "VARCHAR", "VARCHAR",
                 "TIMESTAMP WITHOUT TIME ZONE", "VARCHAR", "INTEGER")
        groups = []
        for i in range(len(b.essay_ids)):
            groups.append("(" + ", ".join(f"${i * 11 + j + 1}::{ty}" for j, ty in enumerate(types)) + ")")
        d = t + self.jit(0.5, 1.2)
        self.pg(ELS_DB, t, "ERROR", 'invalid input value for enum essay_status_enum: "uploaded"', pid, d)
        self.pg(ELS_DB, t, "CONTEXT", "unnamed portal parameter $3", pid, d + ms(0.02))
        self.pg(ELS_DB, t, "STATEMENT", f"INSERT INTO essay_states ({cols}) VALUES {', '.join(groups)}", pid,
                d + ms(0.15))

    def els_content(self, b: Batch, t: datetime, f: FileSpec) -> list[tuple[datetime, str, Any]]:
        """ELS handles EssayContentProvisionedV1 for ``f``."""
        tr = self.span()
        corr = {"correlation_id": b.reg_corr}
        self.els_event_start(t, T_PROVISIONED, b.reg_corr, SVC["file"].service_name, tr)
        self.log("els", t + ms(1), "batch_coordination_handler", "Processing EssayContentProvisionedV1 event",
                 extra={"batch_id": b.id, "text_storage_id": f.text_storage_id, "original_file_name": f.filename,
                        **corr}, trace=tr,
                 where=("batch_coordination_handler_impl.py", "handle_essay_content_provisioned", 219))
        t += self.jit(3, 6)
        if b.tracker is None:
            self.log("els", t, "batch_coordination_handler", "Batch not registered yet, storing content as pending",
                     extra={"batch_id": b.id, "text_storage_id": f.text_storage_id, **corr}, trace=tr,
                     where=("batch_coordination_handler_impl.py", "handle_essay_content_provisioned", 233))
            b.pending[f.text_storage_id] = {
                "id": self.serial(ELS_DB, "batch_pending_content", 280), "batch_id": b.id,
                "text_storage_id": f.text_storage_id,
                "content_metadata": {"original_file_name": f.filename, "file_upload_id": f.file_upload_id,
                                     "raw_file_storage_id": f.raw_id, "file_size_bytes": f.size,
                                     "content_md5_hash": f.md5, "correlation_id": b.reg_corr},
                "created_at": t, "_file": f}
            self.log("els", t + ms(2), "batch_command_handlers", "Event processed successfully", extra=corr,
                     trace=tr, where=("batch_command_handlers.py", "process_single_message", 147))
            return []
        follow = self.els_assign(b, t, f, tr)
        self.log("els", t + ms(30), "batch_coordination_handler", "Content assignment post-effects completed",
                 extra={"batch_id": b.id, "text_storage_id": f.text_storage_id, "was_created": True, **corr},
                 trace=tr, where=("batch_coordination_handler_impl.py", "handle_essay_content_provisioned", 281))
        self.log("els", t + ms(31), "batch_command_handlers", "Event processed successfully", extra=corr, trace=tr,
                 where=("batch_command_handlers.py", "process_single_message", 147))
        return follow

    def els_assign(self, b: Batch, t: datetime, f: FileSpec, tr: tuple[str, str]) -> list[tuple[datetime, str, Any]]:
        """Option-B assignment of ``f`` to the lowest ``uploaded`` essay; completion check."""
        corr = {"correlation_id": b.reg_corr}
        free = sorted(e for e, r in b.essays.items() if r["current_status"] == "uploaded")
        if not free:
            self.log("els", t, "batch_coordination_handler",
                     "No available slots for content, publishing excess content event", level="warning",
                     extra={"batch_id": b.id, "text_storage_id": f.text_storage_id, **corr}, trace=tr,
                     where=("batch_coordination_handler_impl.py", "handle_essay_content_provisioned", 252))
            return []
        eid = free[0]
        r = b.essays[eid]
        r.update(current_status="ready_for_processing", text_storage_id=f.text_storage_id, version=2,
                 processing_metadata={"text_storage_id": f.text_storage_id, "original_file_name": f.filename,
                                      "file_size": f.size, "content_hash": f.md5,
                                      "slot_assignment_timestamp": iso_z(t)},
                 timeline={"ready_for_processing": iso_z(t)},
                 storage_references={"original_essay": f.text_storage_id}, updated_at=t)
        self.outbox_add("els", t + ms(2), T_SLOT, eid, "essay", b.reg_corr,
                        {"batch_id": b.id, "essay_id": eid, "file_upload_id": f.file_upload_id,
                         "text_storage_id": f.text_storage_id, "original_file_name": f.filename,
                         "correlation_id": b.reg_corr, "timestamp": iso_z(t)}, trace=tr)
        self.log("els", t + ms(3), "essay_lifecycle_service.batch_lifecycle_publisher",
                 "EssaySlotAssignedV1 event stored in outbox for reliable delivery",
                 extra={"batch_id": b.id, "essay_id": eid, "file_upload_id": f.file_upload_id, **corr,
                        "topic": T_SLOT}, trace=tr,
                 where=("batch_lifecycle_publisher.py", "publish_essay_slot_assigned", 188))
        follow: list[tuple[datetime, str, Any]] = []
        if not any(x["current_status"] == "uploaded" for x in b.essays.values()):
            follow = self.els_complete(b, t + ms(5), tr)
        self.log("els", t + ms(9), "content_assignment_service", "Content assignment completed successfully",
                 extra={"batch_id": b.id, "text_storage_id": f.text_storage_id, "final_essay_id": eid,
                        "was_created": True, **corr}, trace=tr,
                 where=("content_assignment_service.py", "assign_content_to_essay", 164))
        return follow

    def els_complete(self, b: Batch, t: datetime, tr: tuple[str, str]) -> list[tuple[datetime, str, Any]]:
        """ELS publishes BatchContentProvisioningCompletedV1 (maybe into a poisoned outbox row)."""
        corr = {"correlation_id": b.reg_corr}
        ready = [e for e, r in b.essays.items() if r["current_status"] == "ready_for_processing"]
        self.log("els", t, "content_assignment_service",
                 "Batch completed during content assignment, publishing BatchContentProvisioningCompletedV1",
                 extra={"batch_id": b.id, "ready_count": len(ready), **corr}, trace=tr,
                 where=("content_assignment_service.py", "assign_content_to_essay", 131))
        data = {"batch_id": b.id, "provisioned_count": len(ready), "expected_count": len(b.essay_ids),
                "course_code": b.course_code, "user_id": b.user_id,
                "essays_for_processing": [{"essay_id": e, "text_storage_id": b.essays[e]["text_storage_id"]}
                                          for e in ready],
                "correlation_id": b.reg_corr, "timestamp": iso_z(t)}
        pub = self.outbox_add("els", t + ms(1), T_COMPLETED, b.id, "batch", b.reg_corr, data, trace=tr,
                              poisoned=b.mode == "poisoned")
        self.log("els", t + ms(2), "essay_lifecycle_service.batch_lifecycle_publisher",
                 "BatchContentProvisioningCompletedV1 event stored in outbox for reliable delivery",
                 extra={"batch_id": b.id, "provisioned_count": len(ready), "expected_count": len(b.essay_ids),
                        **corr, "topic": T_COMPLETED}, trace=tr,
                 where=("batch_lifecycle_publisher.py", "publish_batch_content_provisioning_completed", 241))
        if b.org_id is None and b.tracker is not None:
            b.tracker["completed_at"] = t
            b.tracker["updated_at"] = t
        if pub is None:
            return []
        return [(pub + self.jit(20, 60), "bos_completed", None)]

    def els_vfail(self, b: Batch, t: datetime, f: FileSpec) -> None:
        """ELS handles EssayValidationFailedV1: a failure row and a failed slot, no completion."""
        tr = self.span()
        corr = {"correlation_id": b.reg_corr}
        self.els_event_start(t, T_VFAILED, b.reg_corr, SVC["file"].service_name, tr)
        self.log("els", t + ms(1), "batch_coordination_handler", "Processing EssayValidationFailedV1 event",
                 extra={"batch_id": b.id, "original_file_name": f.filename, "error_code": f.fails, **corr},
                 trace=tr, where=("batch_coordination_handler_impl.py", "handle_essay_validation_failed", 301))
        t += self.jit(3, 6)
        nfail = len(b.vfail_rows) + 1
        msg = "File content is empty or contains only whitespace"
        b.vfail_rows.append({
            "id": self.serial(ELS_DB, "batch_validation_failures", 340), "batch_id": b.id,
            "batch_tracker_id": b.tracker_id if b.tracker else None, "file_upload_id": f.file_upload_id,
            "validation_error_code": f.fails,
            "validation_error_detail": {"error_code": f.fails, "message": msg, "correlation_id": b.reg_corr,
                                        "service": "file_service", "operation": "process_single_file_upload",
                                        "details": {"batch_id": b.id, "file_name": f.filename},
                                        "stack_trace": None},
            "created_at": t})
        avail = [s for s in b.slots.values() if s["status"] == "available"]
        if avail:
            avail[-1]["status"] = "failed"
        self.log("els", t, "batch_tracker",
                 f"Tracked validation failure for batch {b.id}: {f.fails} ({f.filename}). Total failures: {nfail}",
                 trace=tr, where=("batch_essay_tracker_impl.py", "handle_validation_failure", 212))
        self.log("els", t + ms(3), "batch_coordination_handler", "Successfully processed validation failure",
                 extra={"batch_id": b.id, "original_file_name": f.filename, **corr}, trace=tr,
                 where=("batch_coordination_handler_impl.py", "handle_essay_validation_failed", 344))

    # ------------------------------------------------------------------ BOS transitions
    def set_status(self, b: Batch, t: datetime, status: str, tr: tuple[str, str] | None) -> None:
        """BOS ``update_batch_status`` (logs the enum member name, SYSTEM.md §4.2)."""
        b.status = status
        b.updated_at = t
        self.log("bos", t, "bos.repository.crud", f"Updated batch {b.id} status to BatchStatus.{status.upper()}",
                 trace=tr, where=("batch_crud_operations.py", "update_batch_status", 118))

    def store_bos_essays(self, b: Batch, t: datetime) -> None:
        """BOS delete-then-insert of ``batch_essays`` for the batch."""
        b.bos_essays = [{"id": self.serial(BOS_DB, "batch_essays", 500), "batch_id": b.id, "essay_id": e,
                         "content_reference": {"text_storage_id": r["text_storage_id"], "type": "text_content"},
                         "student_metadata": {}, "processing_metadata": {}, "created_at": t, "updated_at": t}
                        for e, r in b.essays.items() if r["current_status"] != "uploaded"]

    def bos_completed(self, b: Batch, t: datetime) -> list[tuple[datetime, str, Any]]:
        """BOS handles BatchContentProvisioningCompletedV1 (GUEST → ready; REGULAR → student validation)."""
        tr = self.span()
        corr = {"correlation_id": b.reg_corr}
        lg = "bos.handlers.content_provisioning_completed"
        where = ("batch_content_provisioning_completed_handler.py", "handle_batch_content_provisioning_completed", 0)
        self.log("bos", t, lg, f"Processing content provisioning completed for batch {b.id}", extra=corr,
                 trace=tr, where=where[:2] + (62,))
        n = sum(1 for r in b.essays.values() if r["current_status"] != "uploaded")
        if b.flow == "GUEST":
            self.log("bos", t + ms(2), lg, f"Batch {b.id} identified as GUEST batch (class_id: None)", extra=corr,
                     trace=tr, where=where[:2] + (88,))
            self.log("bos", t + ms(3), lg, f"GUEST batch {b.id} content provisioning completed. Updating status to "
                     "READY_FOR_PIPELINE_EXECUTION (awaiting client trigger)", extra=corr, trace=tr,
                     where=where[:2] + (95,))
            self.set_status(b, t + ms(6), "ready_for_pipeline_execution", tr)
            self.store_bos_essays(b, t + ms(9))
            self.log("bos", t + ms(11), "bos.repository.batch_essays", f"Stored {n} essays for batch {b.id} in PostgreSQL",
                     trace=tr, where=("batch_essays_operations.py", "store_batch_essays", 71))
            self.log("bos", t + ms(12), lg, f"Stored {n} essays for GUEST batch {b.id}", extra=corr, trace=tr,
                     where=where[:2] + (117,))
            b.t_ready = t + ms(12)
            return self.after_ready(b)
        self.log("bos", t + ms(2), lg, f"Batch {b.id} identified as REGULAR batch (class_id: {b.class_id})",
                 extra=corr, trace=tr, where=where[:2] + (88,))
        self.log("bos", t + ms(3), lg, f"Updating REGULAR batch {b.id} status to AWAITING_STUDENT_VALIDATION",
                 extra=corr, trace=tr, where=where[:2] + (131,))
        self.set_status(b, t + ms(6), "awaiting_student_validation", tr)
        self.store_bos_essays(b, t + ms(9))
        self.log("bos", t + ms(12), lg, f"Stored {n} essays for REGULAR batch {b.id}", extra=corr, trace=tr,
                 where=where[:2] + (146,))
        self.log("bos", t + ms(13), lg, f"Initiating Phase 1 student matching for REGULAR batch {b.id}", extra=corr,
                 trace=tr, where=where[:2] + (152,))
        self.outbox_add("bos", t + ms(15), T_MATCH_CMD, b.id, "batch", b.reg_corr,
                        {"event_name": "batch.student.matching.initiate.command", "entity_id": b.id,
                         "entity_type": "batch", "parent_id": None, "timestamp": iso_z(t + ms(15)),
                         "essays_to_process": [{"essay_id": e["essay_id"],
                                                "text_storage_id": e["content_reference"]["text_storage_id"]}
                                               for e in b.bos_essays],
                         "language": "sv", "course_code": b.course_code, "class_id": b.class_id}, trace=tr)
        return [(t + ms(self.rng.uniform(2500, 4500)), "confirmed", None)]

    def confirmed(self, b: Batch, t: datetime) -> list[tuple[datetime, str, Any]]:
        """CMS's StudentAssociationsConfirmedV1 reaches BOS and ELS (REGULAR)."""
        tr = self.span()
        corr = {"correlation_id": b.reg_corr}
        n = len(b.bos_essays)
        self.log("bos", t, "bos.handlers.student_associations_confirmed",
                 f"Processing student associations for batch {b.id}",
                 extra={**corr, "association_count": n, "validation_summary": {"human": n}}, trace=tr,
                 where=("student_associations_confirmed_handler.py", "handle_student_associations_confirmed", 58))
        self.set_status(b, t + ms(4), "student_validation_completed", tr)
        self.log("bos", t + ms(6), "bos.handlers.student_associations_confirmed",
                 f"Batch {b.id} transitioned to STUDENT_VALIDATION_COMPLETED",
                 extra={**corr, "class_id": b.class_id, "association_count": n, "timeout_triggered": False},
                 trace=tr, where=("student_associations_confirmed_handler.py", "handle_student_associations_confirmed", 97))
        te = t + self.jit(5, 20)
        self.log("els", te, "student_association_handler", "Processing student associations confirmed event",
                 extra={"batch_id": b.id, "class_id": b.class_id, "associations_count": n, "timeout_triggered": False,
                        "validation_summary": {"human": n}, **corr}, trace=tr,
                 where=("student_association_handler.py", "handle_student_associations_confirmed", 61))
        ready = [{"essay_id": e, "text_storage_id": r["text_storage_id"]} for e, r in b.essays.items()]
        pub = self.outbox_add("els", te + ms(8), T_READY, b.id, "batch", b.reg_corr,
                              {"batch_id": b.id, "ready_essays": ready,
                               "metadata": {"entity_id": b.id, "entity_type": "batch", "parent_id": None,
                                            "timestamp": iso_z(te), "processing_stage": "completed",
                                            "event": "batch.essays.ready"},
                               "course_code": b.course_code, "course_language": "sv", "student_prompt_ref": None,
                               "class_type": "REGULAR"}, trace=tr)
        if b.tracker is not None:
            b.tracker["completed_at"] = te + ms(9)
            b.tracker["updated_at"] = te + ms(9)
        self.log("els", te + ms(10), "student_association_handler",
                 f"Published BatchEssaysReady for REGULAR batch {b.id} after student associations",
                 extra={"batch_id": b.id, "ready_count": len(ready), **corr}, trace=tr,
                 where=("student_association_handler.py", "handle_student_associations_confirmed", 142))
        return [(cast(datetime, pub) + self.jit(20, 60), "essays_ready", None)]

    def essays_ready(self, b: Batch, t: datetime) -> list[tuple[datetime, str, Any]]:
        """BOS handles BatchEssaysReady (REGULAR) → ready_for_pipeline_execution."""
        tr = self.span()
        corr = {"correlation_id": b.reg_corr}
        lg = "bos.handlers.batch_essays_ready"
        w = ("batch_essays_ready_handler.py", "handle_batch_essays_ready")
        n = len(b.essays)
        self.log("bos", t, lg, f"Received BatchEssaysReady for batch {b.id}", extra=corr, trace=tr, where=w + (54,))
        self.log("bos", t + ms(1), lg, f"Batch {b.id} ready for processing with {n} essays - awaiting client trigger",
                 extra=corr, trace=tr, where=w + (71,))
        self.store_bos_essays(b, t + ms(4))
        self.log("bos", t + ms(6), lg, f"Successfully stored {n} essays for batch {b.id}", trace=tr, where=w + (98,))
        self.set_status(b, t + ms(8), "ready_for_pipeline_execution", tr)
        self.log("bos", t + ms(10), lg,
                 f"REGULAR batch {b.id} transitioned to READY_FOR_PIPELINE_EXECUTION after receiving essays",
                 extra=corr, trace=tr, where=w + (112,))
        b.t_ready = t + ms(10)
        return self.after_ready(b)

    def after_ready(self, b: Batch) -> list[tuple[datetime, str, Any]]:
        """Schedule the client's pipeline request once the batch is ready (when it has none fixed)."""
        if b.pipeline and b.t_pipe is None and b.t_ready is not None:
            b.t_pipe = b.t_ready + ms(b.pipe_delay_s * 1000 + self.rng.uniform(0, 800))
            return [(b.t_pipe, "pipe_request", None)]
        return []

    # ------------------------------------------------------------------ pipeline
    def pipe_request(self, b: Batch, t: datetime) -> list[tuple[datetime, str, Any]]:
        """BOS handles ClientBatchPipelineRequestV1 (accepts, or rejects when the batch is not ready)."""
        tr = self.span()
        pc = b.pipe_corr or self.uuid()
        b.pipe_corr = pc
        lg = "bos.handlers.client_pipeline_request"
        w = ("client_pipeline_request_handler.py", "process_message")
        ev_id = self.uuid()
        part = self.rng.randint(0, 2)
        off = self.offset(T_PIPE_REQ, part)
        self.log("bos", t, lg, "Processing client pipeline request",
                 extra={"batch_id": b.id, "requested_pipeline": b.pipeline, "correlation_id": f"UUID('{pc}')",
                        "event_id": ev_id}, trace=tr, where=w + (112,))
        if b.status != "ready_for_pipeline_execution":
            self.reject(b, t + self.jit(3, 6), tr, pc, ev_id, part, off)
            return []
        resolved = ["spellcheck", "cj_assessment"] if b.pipeline == "cj_assessment" else [b.pipeline or "spellcheck"]
        self.log("bos", t + ms(3), lg, "Resolved prompt attachment metadata",
                 extra={"batch_id": b.id, "requested_pipeline": b.pipeline, "correlation_id": pc,
                        "prompt_attached": False, "prompt_source": None, "assignment_id": None}, trace=tr,
                 where=w + (131,))
        t += self.jit(15, 40)
        self.log("bos", t, lg, "BCS resolved pipeline successfully",
                 extra={"batch_id": b.id, "requested_pipeline": b.pipeline, "resolved_pipeline": resolved,
                        "pipeline_length": len(resolved), "correlation_id": f"UUID('{pc}')"}, trace=tr,
                 where=w + (189,))
        b.requested = resolved
        b.version += 1
        b.updated_at = t + ms(3)
        self.log("bos", t + ms(3), lg, "Updated batch pipeline state with BCS resolution",
                 extra={"batch_id": b.id, "resolved_pipeline": resolved, "requested_pipelines": resolved}, trace=tr,
                 where=w + (214,))
        self.log("bos", t + ms(4), "bos.pipeline.coordinator", f"Initiating resolved pipeline for batch {b.id}",
                 extra={"resolved_pipeline": resolved, "correlation_id": f"UUID('{pc}')"}, trace=tr,
                 where=("pipeline_phase_coordinator_impl.py", "initiate_resolved_pipeline", 402))
        follow = self.dispatch(b, t + ms(6), resolved[0], tr, first=True)
        self.log("bos", t + ms(30), lg, f"Pipeline initiation completed for batch {b.id}",
                 extra={"batch_id": b.id, "requested_pipeline": b.pipeline, "resolved_pipeline": resolved,
                        "first_phase_initiated": resolved[0], "correlation_id": f"UUID('{pc}')"}, trace=tr,
                 where=w + (243,))
        return follow

    def reject(self, b: Batch, t: datetime, tr: tuple[str, str], pc: str, ev_id: str, part: int, off: int) -> None:
        """The pipeline gate's rejection lines (SYSTEM.md §4.2), with their tracebacks."""
        lg = "bos.handlers.client_pipeline_request"
        msg = (f"[VALIDATION_ERROR] Batch {b.id} is not ready for pipeline execution. "
               f"Current status: {b.status}")
        self.log("bos", t, lg, f"Batch {b.id} not ready for pipeline execution", level="error",
                 extra={"batch_id": b.id, "current_status": b.status, "expected_status": "ready_for_pipeline_execution",
                        "requested_pipeline": b.pipeline, "correlation_id": f"UUID('{pc}')"}, trace=tr,
                 where=("client_pipeline_request_handler.py", "process_message", 156))
        tb_inner = (
            '  File "/app/services/batch_orchestrator_service/implementations/client_pipeline_request_handler.py", '
            'line 452, in handle_client_pipeline_request\n    await process_message()\n'
            '  File "/app/services/batch_orchestrator_service/implementations/client_pipeline_request_handler.py", '
            'line 166, in process_message\n    raise_validation_error(\n'
            '  File "/app/libs/huleedu_service_libs/src/huleedu_service_libs/error_handling/factories.py", '
            'line 209, in raise_validation_error\n    raise HuleEduError(error_detail)\n'
            f"huleedu_service_libs.error_handling.huleedu_error.HuleEduError: {msg}")
        exc1 = "Traceback (most recent call last):\n" + tb_inner
        exc2 = ("Traceback (most recent call last):\n  File \"/app/services/batch_orchestrator_service/kafka_consumer.py\","
                " line 270, in _handle_message\n    await self.client_pipeline_request_handler."
                "handle_client_pipeline_request(msg)\n" + tb_inner)
        self.log("bos", t + ms(1.5), lg, f"Error processing client pipeline request: {msg}", level="error",
                 extra={"topic": T_PIPE_REQ, "partition": part, "offset": off},
                 where=("client_pipeline_request_handler.py", "handle_client_pipeline_request", 458), exception=exc1)
        self.log("bos", t + ms(3), "bos.kafka.consumer", f"Error handling message from topic {T_PIPE_REQ}: {msg}",
                 level="error", where=("kafka_consumer.py", "_handle_message", 280), exception=exc2)
        self.log("bos", t + ms(4.5), "idempotency-v2", "Processing failed: Releasing idempotency lock for retry",
                 level="error",
                 extra={"service": "batch-service", "event_type": T_PIPE_REQ, "event_id": ev_id, "correlation_id": pc,
                        "source_service": "api_gateway_service", "kafka_topic": T_PIPE_REQ, "kafka_partition": part,
                        "kafka_offset": off, "action": "failed_releasing_lock", "error": msg,
                        "error_type": "HuleEduError"},
                 where=("idempotency_v2.py", "wrapper", 373))
        self.log("bos", t + ms(6), "bos.kafka.consumer", "Error processing message in BOS", level="error",
                 extra={"error": msg, "topic": T_PIPE_REQ, "partition": part, "offset": off},
                 where=("kafka_consumer.py", "_process_messages", 222))

    def phase_log(self, b: Batch, t: datetime, phase: str, status: str, prev: str,
                  started: datetime | None, completed: datetime | None, n_done: int) -> None:
        """One ``phase_status_log`` row."""
        self.rows[(BOS_DB, "phase_status_log")].append({
            "id": self.serial(BOS_DB, "phase_status_log", 200), "batch_id": b.id, "phase": phase, "status": status,
            "phase_started_at": started, "phase_completed_at": completed, "essays_processed": n_done,
            "essays_failed": 0, "error_message": None, "error_details": None, "correlation_id": b.pipe_corr,
            "processing_metadata": {"previous_status": prev}, "created_at": t, "updated_at": t})

    def dispatch(self, b: Batch, t: datetime, phase: str, tr: tuple[str, str], first: bool = False
                 ) -> list[tuple[datetime, str, Any]]:
        """BOS initiates a phase: outbox command, pipeline state, phase log."""
        pc = b.pipe_corr or ""
        cmd = T_SPELL_CMD if phase == "spellcheck" else T_CJ_CMD
        essays = [{"essay_id": e["essay_id"], "text_storage_id": e["content_reference"]["text_storage_id"]}
                  for e in b.bos_essays]
        if first:
            self.log("bos", t, "bos.pipeline.coordinator", f"Found first uncompleted phase {phase} for batch {b.id}",
                     extra={"correlation_id": f"UUID('{pc}')"}, trace=tr,
                     where=("pipeline_phase_coordinator_impl.py", "initiate_resolved_pipeline", 431))
        pub = self.outbox_add("bos", t + ms(2), cmd, b.id, "batch", pc,
                              {"event_name": f"batch.{phase}.initiate.command", "entity_id": b.id, "entity_type": "batch",
                               "parent_id": None, "timestamp": iso_z(t), "essays_to_process": essays,
                               "language": "en", "course_code": b.course_code}, trace=tr)
        b.phases[phase] = {"status": "dispatch_initiated", "started_at": t + ms(4)}
        b.version += 1
        b.updated_at = t + ms(4)
        self.log("bos", t + ms(4), "bos.repository.pipeline",
                 f"Atomically updated batch {b.id} phase PhaseName.{phase.upper()}: "
                 "PipelineExecutionStatus.PENDING_DEPENDENCIES -> PipelineExecutionStatus.DISPATCH_INITIATED",
                 trace=tr, where=("batch_pipeline_state_manager.py", "update_phase_status_atomically", 151))
        self.phase_log(b, t + ms(4), phase, "initiated", "pending_dependencies", t + ms(4), None, 0)
        self.log("bos", t + ms(6), "bos.pipeline.coordinator",
                 f"Successfully initiated phase {phase} for batch {b.id}" if first else
                 f"Successfully initiated {phase} pipeline for batch {b.id}",
                 extra={"correlation_id": f"UUID('{pc}')"}, trace=tr,
                 where=("pipeline_phase_coordinator_impl.py", "_initiate_phase", 512))
        return [(cast(datetime, pub) + self.jit(20, 60), f"els_{phase}", None)]

    def els_phase(self, b: Batch, t: datetime, phase: str) -> list[tuple[datetime, str, Any]]:
        """ELS runs a phase: essays through the state machine, service requests, results, outcome."""
        tr = self.span()
        pc = b.pipe_corr or ""
        corr = {"correlation_id": pc}
        n = len(b.essays)
        self.els_event_start(t, T_SPELL_CMD if phase == "spellcheck" else T_CJ_CMD, pc, SVC["bos"].service_name, tr)
        if phase == "spellcheck":
            self.log("els", t + ms(1), "spellcheck_command_handler",
                     "Processing spellcheck initiation command from BOS with State Machine",
                     extra={"batch_id": b.id, "essays_count": n, "language": "en", **corr}, trace=tr,
                     where=("spellcheck_command_handler.py", "process_initiate_spellcheck_command", 77))
            s1, s2, s3 = "awaiting_spellcheck", "spellchecking_in_progress", "spellchecked_success"
        else:
            self.log("els", t + ms(1), "cj_assessment_command_handler", "Processing CJ assessment initiation command from BOS",
                     extra={"batch_id": b.id, "essays_count": n, "language": "en", **corr}, trace=tr,
                     where=("cj_assessment_command_handler.py", "process_initiate_cj_assessment_command", 69))
            s1, s2, s3 = "awaiting_cj_assessment", "cj_assessment_processing_in_progress", "cj_assessment_success"
        t += ms(5)
        for eid in sorted(b.essays):
            t += self.jit(2, 6)
            self._essay_status(b, eid, s1, t, phase)
            if phase == "spellcheck":
                self.log("els", t, "spellcheck_command_handler",
                         f"Essay {eid} transitioned to {s1} via state machine.", extra={"batch_id": b.id, **corr},
                         trace=tr, where=("spellcheck_command_handler.py", "process_initiate_spellcheck_command", 118))
                self.outbox_add("els", t + ms(1), T_SPELL_REQ, eid, "essay", pc,
                                {"event_name": "essay.spellcheck.requested", "entity_id": eid, "entity_type": "essay",
                                 "parent_id": b.id, "timestamp": iso_z(t),
                                 "text_storage_id": b.essays[eid]["text_storage_id"], "language": "en"}, trace=tr)
            self._essay_status(b, eid, s2, t + ms(2), phase)
        if phase == "cj_assessment":
            self.outbox_add("els", t + ms(2), T_CJ_REQ, b.id, "batch", pc,
                            {"event_name": "els.cj_assessment.requested", "entity_id": b.id, "entity_type": "batch",
                             "parent_id": None, "timestamp": iso_z(t),
                             "essays_for_cj": [{"essay_id": e, "text_storage_id": r["text_storage_id"]}
                                               for e, r in sorted(b.essays.items())],
                             "language": "en", "course_code": b.course_code}, trace=tr)
            self.log("els", t + ms(4), "cj_assessment_command_handler",
                     "Successfully dispatched CJ assessment requests for transitioned essays",
                     extra={"batch_id": b.id, "transitioned_essays_count": n, **corr}, trace=tr,
                     where=("cj_assessment_command_handler.py", "process_initiate_cj_assessment_command", 131))
        self.log("els", t + ms(6), "batch_command_handlers", "Event processed successfully", extra=corr, trace=tr,
                 where=("batch_command_handlers.py", "process_single_message", 147))
        # results
        if phase == "spellcheck":
            for eid in sorted(b.essays):
                t += self.jit(700, 2200)
                tr2 = self.span()
                self.els_event_start(t, T_SPELL_DONE, pc, "spellchecker-service", tr2)
                self.log("els", t + ms(1), "spellcheck_result_handler", "Processing spellcheck phase completed (thin event)",
                         extra={"essay_id": eid, "batch_id": b.id, "status": "completed", "success": True, **corr},
                         trace=tr2, where=("spellcheck_result_handler.py", "handle_spellcheck_phase_completed", 64))
                self._essay_status(b, eid, s3, t + ms(4), phase)
                self.log("els", t + ms(6), "batch_command_handlers", "Event processed successfully", extra=corr,
                         trace=tr2, where=("batch_command_handlers.py", "process_single_message", 147))
        else:
            t += self.jit(6000, 14000)
            tr2 = self.span()
            self.els_event_start(t, T_CJ_DONE, pc, "cj_assessment_service", tr2)
            self.log("els", t + ms(1), "cj_result_handler", "Processing CJ assessment completion for batch",
                     extra={"batch_id": b.id, "job_id": str(self.rng.randint(90, 400)), "successful_count": n,
                            "failed_count": 0, **corr}, trace=tr2,
                     where=("cj_result_handler.py", "handle_cj_assessment_completed", 58))
            for eid in sorted(b.essays):
                t += self.jit(2, 5)
                self._essay_status(b, eid, s3, t, phase)
                self.log("els", t + ms(1), "cj_result_handler", "Successfully processed CJ assessment completion for essay",
                         extra={"essay_id": eid, "new_status": s3, **corr}, trace=tr2,
                         where=("cj_result_handler.py", "handle_cj_assessment_completed", 121))
        t += ms(10)
        pub = self.outbox_add("els", t, T_OUTCOME, b.id, "batch", pc,
                              {"batch_id": b.id, "phase_name": phase, "phase_status": "completed_successfully",
                               "processed_essays": [{"essay_id": e, "text_storage_id": r["text_storage_id"]}
                                                    for e, r in sorted(b.essays.items())],
                               "failed_essay_ids": [], "correlation_id": pc}, trace=tr)
        self.log("els", t + ms(2), "batch_phase_coordinator",
                 f"Published ELSBatchPhaseOutcomeV1 for batch {b.id}, phase {phase}: completed_successfully",
                 extra={"batch_id": b.id, "phase_name": phase, "processed_count": n, "failed_count": 0, **corr},
                 trace=tr, where=("batch_phase_coordinator_impl.py", "check_batch_completion", 207))
        if phase == "cj_assessment":
            self.log("els", t + ms(3), "batch_phase_coordinator",
                     f"Final phase completed for batch {b.id}, scheduling cleanup in 5 minutes", trace=tr,
                     where=("batch_phase_coordinator_impl.py", "check_batch_completion", 231))
        return [(cast(datetime, pub) + self.jit(20, 60), f"outcome_{phase}", None)]

    def _essay_status(self, b: Batch, eid: str, status: str, t: datetime, phase: str) -> None:
        r = b.essays[eid]
        r["current_status"] = status
        r["timeline"] = {**r["timeline"], status: iso_z(t)}
        r["processing_metadata"] = {**r["processing_metadata"], "current_phase": phase,
                                    "commanded_phases": sorted(set(r["processing_metadata"].get("commanded_phases", []))
                                                               | {phase})}
        r["version"] += 1
        r["updated_at"] = t

    def bos_outcome(self, b: Batch, t: datetime, phase: str) -> list[tuple[datetime, str, Any]]:
        """BOS handles an ELS phase outcome; next phase or BatchPipelineCompletedV1."""
        tr = self.span()
        pc = b.pipe_corr or ""
        self.log("bos", t, "bos.handlers.els_batch_phase_outcome",
                 f"Received ELS batch phase outcome: batch={b.id}, phase=PhaseName.{phase.upper()}, "
                 "status=BatchStatus.COMPLETED_SUCCESSFULLY", extra={"correlation_id": pc}, trace=tr,
                 where=("els_batch_phase_outcome_handler.py", "handle_els_batch_phase_outcome", 83))
        self.log("bos", t + ms(1), "bos.pipeline.coordinator",
                 f"Handling phase conclusion: batch={b.id}, phase={phase}, status=completed_successfully",
                 extra={"correlation_id": pc}, trace=tr,
                 where=("pipeline_phase_coordinator_impl.py", "handle_phase_concluded", 96))
        st = b.phases[phase]
        st.update(status="completed_successfully", completed_at=t + ms(4))
        b.version += 1
        b.updated_at = t + ms(4)
        self.log("bos", t + ms(4), "bos.repository.pipeline",
                 f"Atomically updated batch {b.id} phase PhaseName.{phase.upper()}: "
                 "PipelineExecutionStatus.DISPATCH_INITIATED -> PipelineExecutionStatus.COMPLETED_SUCCESSFULLY",
                 trace=tr, where=("batch_pipeline_state_manager.py", "update_phase_status_atomically", 151))
        self.phase_log(b, t + ms(4), phase, "completed", "dispatch_initiated", st["started_at"], t + ms(4),
                       len(b.essays))
        i = b.requested.index(phase)
        if i + 1 < len(b.requested):
            nxt = b.requested[i + 1]
            self.log("bos", t + ms(6), "bos.pipeline.coordinator",
                     f"Initiating next phase '{nxt}' for batch {b.id} after '{phase}'", extra={"correlation_id": pc},
                     trace=tr, where=("pipeline_phase_coordinator_impl.py", "handle_phase_concluded", 171))
            return self.dispatch(b, t + ms(8), nxt, tr)
        self.log("bos", t + ms(6), "bos.pipeline.coordinator",
                 f"Pipeline completed for batch {b.id} - no more phases after '{phase}'", trace=tr,
                 where=("pipeline_phase_coordinator_impl.py", "handle_phase_concluded", 162))
        dur = round((t - (b.t_pipe or t)).total_seconds(), 3)
        n = len(b.essays)
        self.outbox_add("bos", t + ms(8), T_PIPE_DONE, b.id, "batch", pc,
                        {"batch_id": b.id, "completed_phases": list(b.requested), "final_status": "completed_successfully",
                         "processing_duration_seconds": dur, "successful_essay_count": n, "failed_essay_count": 0,
                         "correlation_id": pc,
                         "metadata": {"batch_id": b.id, "completed_phases": list(b.requested),
                                      "final_status": "completed_successfully"}},
                        trace=tr, event_type=model.TOPICS[T_PIPE_DONE].short_event_type,
                        source="batch_orchestrator_service")
        self.log("bos", t + ms(10), "bos.pipeline.coordinator", f"Published BatchPipelineCompletedV1 for batch {b.id}",
                 extra={"completed_phases": list(b.requested), "final_status": "completed_successfully",
                        "duration_seconds": dur, "correlation_id": pc}, trace=tr,
                 where=("pipeline_phase_coordinator_impl.py", "_publish_pipeline_completed", 640))
        return []

    # ------------------------------------------------------------------ driver
    def run_batches(self, batches: list[Batch]) -> None:
        """Play every batch's flow, interleaving their events in time order."""
        queue: list[tuple[datetime, int, str, Batch, Any]] = []
        k = 0

        def push(items: list[tuple[datetime, str, Any]], b: Batch) -> None:
            nonlocal k
            for t, kind, payload in items:
                k += 1
                queue.append((t, k, kind, b, payload))

        for b in batches:
            push([(b.t_reg - ms(b.content_lead_s * 1000), "upload", None), (b.t_reg, "register", None)], b)
            if b.t_pipe is not None:
                push([(b.t_pipe, "pipe_request", None)], b)
        while queue:
            queue.sort(key=lambda x: (x[0], x[1]))
            t, _, kind, b, payload = queue.pop(0)
            if kind == "upload":
                push(self.file_uploads(b, t), b)
            elif kind == "register":
                push([(self.bos_register(b), "els_registered", None)], b)
            elif kind == "els_registered":
                push(self.els_registered(b, t), b)
            elif kind == "content":
                push(self.els_content(b, t, payload), b)
            elif kind == "vfail":
                self.els_vfail(b, t, payload)
            elif kind == "bos_completed":
                push(self.bos_completed(b, t), b)
            elif kind == "confirmed":
                push(self.confirmed(b, t), b)
            elif kind == "essays_ready":
                push(self.essays_ready(b, t), b)
            elif kind == "pipe_request":
                push(self.pipe_request(b, t), b)
            elif kind.startswith("els_"):
                push(self.els_phase(b, t, kind[4:]), b)
            elif kind.startswith("outcome_"):
                push(self.bos_outcome(b, t, kind[8:]), b)
        for b in batches:
            self._flush_batch(b)

    def _flush_batch(self, b: Batch) -> None:
        created = b.created_at or b.t_reg
        self.rows[(BOS_DB, "batches")].append({
            "id": b.id, "correlation_id": b.id, "name": f"{b.course_code} - {b.user_id}", "description": None,
            "class_id": b.class_id, "status": b.status, "requested_pipelines": None,
            "pipeline_configuration": self.pipeline_configuration(b, b.updated_at or created),
            "total_essays": len(b.essay_ids), "processed_essays": 0, "version": b.version, "created_at": created,
            "updated_at": b.updated_at or created, "completed_at": None,
            "processing_metadata": {"expected_essay_count": len(b.essay_ids), "essay_ids": None,
                                    "course_code": b.course_code, "student_prompt_ref": None, "user_id": b.user_id,
                                    "org_id": b.org_id, "class_id": b.class_id, "cj_default_llm_model": None,
                                    "cj_default_temperature": None, "assignment_id": None},
            "error_details": None})
        self.rows[(BOS_DB, "batch_essays")] += b.bos_essays
        if b.tracker is not None:
            self.rows[(ELS_DB, "batch_essay_trackers")].append(b.tracker)
        self.rows[(ELS_DB, "slot_assignments")] += list(b.slots.values())
        self.rows[(ELS_DB, "essay_states")] += list(b.essays.values())
        self.rows[(ELS_DB, "batch_pending_content")] += [{k: v for k, v in p.items() if k != "_file"}
                                                         for p in b.pending.values()]
        self.rows[(ELS_DB, "batch_validation_failures")] += b.vfail_rows

    # ------------------------------------------------------------------ relays and noise
    def relay(self, svc: str, t0: datetime, end: datetime) -> None:
        """The outbox relay of ``svc`` polling from ``t0`` to ``end`` (SYSTEM.md §2.3)."""
        interval, backoff = POLL[svc]
        rows = sorted(self.outbox[svc], key=lambda r: r["created_at"])
        attempts = {r["id"]: 0 for r in rows}
        wakes = sorted(r["published_at"] - ms(1) for r in rows if r["published_at"] is not None)
        wakes += sorted(r["created_at"] + ms(5) for r in rows if r["_poisoned"])
        wakes.sort()
        p = t0
        empty = 0
        svc_name = SVC[svc].service_name
        while p <= end:
            pending = [r for r in rows if r["created_at"] <= p and
                       (r["_poisoned"] or (r["published_at"] is not None and r["published_at"] - ms(1) <= p
                                           < r["published_at"]))]
            self.log(svc, p, "outbox_repository", f"Retrieved {len(pending)} unpublished events from outbox",
                     extra={"event_count": len(pending), "limit": 100},
                     where=("repository.py", "get_unpublished_events", 241))
            failed = False
            if pending:
                q = p + ms(1)
                self.log(svc, q, "outbox.event_relay_worker", f"Processing {len(pending)} unpublished events from outbox",
                         extra={"event_count": len(pending), "service": svc_name}, where=("relay.py", "_run", 166))
                for r in pending:
                    base = {"event_id": r["id"], "event_type": r["event_type"], "topic": r["topic"]}
                    if r["_poisoned"] and attempts[r["id"]] >= 5:
                        self.log(svc, q + ms(1), "outbox.event_relay_worker",
                                 "Event exceeded max retries, marking as failed", level="error",
                                 extra={**base, "retry_count": 5, "max_retries": 5, "service": svc_name},
                                 where=("relay.py", "_process_event", 262))
                        r["retry_count"], r["last_error"] = 5, "Exceeded max retries (5)"
                        q += ms(3)
                        continue
                    self.log(svc, q + ms(1), "outbox.event_relay_worker", "Publishing event from outbox to Kafka",
                             extra={**base, "aggregate_id": r["aggregate_id"], "retry_count": attempts[r["id"]],
                                    "headers_present": False, "service": svc_name},
                             where=("relay.py", "_process_event", 283))
                    if r["_poisoned"]:
                        err = (f"KafkaTimeoutError: Batch for TopicPartition(topic='{r['topic']}', "
                               f"partition={self.rng.randint(0, 2)}) containing 1 "
                               "message(s) has not been sent in 30000 ms")
                        attempts[r["id"]] += 1
                        self.log(svc, q + ms(30), "outbox.event_relay_worker", f"Failed to publish event to Kafka: {err}",
                                 level="error", extra={**base, "error": err, "service": svc_name},
                                 where=("relay.py", "_process_event", 330))
                        self.log(svc, q + ms(31), "outbox_repository", "Incremented retry count for outbox event",
                                 level="warning", extra={"event_id": r["id"], "retry_count": attempts[r["id"]],
                                                         "error": err[:200]},
                                 where=("repository.py", "increment_retry_count", 301))
                        r["retry_count"] = attempts[r["id"]]
                        r["last_error"] = f"Failed to publish event to Kafka: {err}"
                        failed = True
                        q += ms(32)
                        continue
                    self.log(svc, r["published_at"], "outbox_repository", "Marked outbox event as published",
                             extra={"event_id": r["id"]}, where=("repository.py", "mark_event_published", 272))
                    self.log(svc, r["published_at"] + ms(0.3), "outbox.event_relay_worker",
                             "Successfully published event from outbox", extra={**base, "service": svc_name},
                             where=("relay.py", "_process_event", 316))
                    q = max(q, r["published_at"] + ms(1))
                p = q
                empty = 0
                any_ok = any(not r["_poisoned"] for r in pending)
                step = backoff if failed else (0.1 if any_ok else interval)
            else:
                empty += 1
                step = 0.1 if empty <= 3 else (1.0 if empty <= 10 else interval)
            nxt = p + timedelta(seconds=step) + self.jit(0.2, 3)
            upcoming = [w for w in wakes if w > p + ms(2)]
            if upcoming and upcoming[0] < nxt:  # BLPOP on the wake key cuts the wait short
                nxt = upcoming[0]
            # never poll while a row waits for its (given) publish time: the relay was busy or asleep
            for r in rows:
                if r["published_at"] is not None and r["created_at"] <= nxt < r["published_at"] - ms(1):
                    nxt = r["published_at"] - ms(1)
            p = nxt

    def finish(self, *, end: datetime, description: str, target: dict[str, str], expected: dict[str, Any],
               els_restart: bool = True) -> World:
        """Add relays and container noise, and assemble the :class:`World`."""
        s = self.start
        bos_c, file_c = SVC["bos"].containers[0], SVC["file"].containers[0]
        els_w, els_api = SVC["els"].containers
        setup_c = SVC["infra"].containers[0]
        # topic bootstrap (one-shot)
        tt = s - timedelta(seconds=8)
        self.raw(setup_c, tt, "🚀 HuleEdu Kafka Topic Bootstrap")
        self.raw(setup_c, tt + ms(1), "📡 Connecting to: kafka:9092")
        self.raw(setup_c, tt + ms(2), "Attempting to connect to Kafka (attempt 1/10)...")
        self.raw(setup_c, tt + ms(4), "✅ Successfully connected to Kafka")
        self.raw(setup_c, tt + ms(5), f"📋 Discovered {len(model.TOPICS)} topics from common_core mapping:")
        for i, name in enumerate(sorted(model.TOPICS)):
            self.raw(setup_c, tt + ms(20 + 9 * i), f"✅ Created topic: {name}")
        t_setup_end = tt + ms(40 + 9 * len(model.TOPICS))
        self.raw(setup_c, t_setup_end, "🎉 Kafka topic bootstrap completed successfully")
        # databases
        for db in (BOS_DB, ELS_DB, FILE_DB):
            c = model.DATABASES[db].container
            # the databases came up a few minutes before the services, so a timed checkpoint falls in view
            d0 = s - timedelta(seconds=self.rng.uniform(230, 270))
            self.raw(c, d0, "PostgreSQL Database directory appears to contain a database; Skipping initialization")
            for i, m in enumerate(("starting PostgreSQL 15.15 (Debian 15.15-1.pgdg13+1) on x86_64-pc-linux-gnu, "
                                   "compiled by gcc (Debian 14.2.0-19) 14.2.0, 64-bit",
                                   'listening on IPv4 address "0.0.0.0", port 5432',
                                   'listening on IPv6 address "::", port 5432',
                                   'listening on Unix socket "/var/run/postgresql/.s.PGSQL.5432"')):
                self.pg(db, d0 + ms(40 + i), "LOG", m, pid=1)
            self.pg(db, d0 + ms(50), "LOG", f"database system was shut down at {(d0 - timedelta(minutes=37)):%Y-%m-%d %H:%M:%S} UTC",
                    pid=self.rng.randint(25, 30))
            self.pg(db, d0 + ms(58), "LOG", "database system is ready to accept connections", pid=1)
            cp = d0 + timedelta(minutes=5)
            while cp < end:
                self.pg(db, cp, "LOG", "checkpoint starting: time", pid=27)
                w = self.rng.uniform(2.5, 9.5)
                self.pg(db, cp + timedelta(seconds=w), "LOG",
                        f"checkpoint complete: wrote {self.rng.randint(20, 120)} buffers (0.{self.rng.randint(1, 9)}%); "
                        f"0 WAL file(s) added, 0 removed, 0 recycled; write={w - 0.004:.3f} s, sync=0.002 s, "
                        f"total={w:.3f} s; sync files={self.rng.randint(5, 20)}, longest=0.001 s, average=0.001 s; "
                        f"distance={self.rng.randint(100, 700)} kB, estimate={self.rng.randint(300, 800)} kB", pid=27)
                cp += timedelta(minutes=5)
            self.containers.append(ContainerState(c, "running", 0, d0, None, 0, "healthy", "postgres:15",
                                                  model.CONTAINERS[c].compose_service))
        # service startups
        self._startup_bos(s)
        self._startup_file(s + ms(150))
        api0 = s + ms(60)
        self.log("els_api", api0, "els.startup", "Database schema initialized and engine stored for health checks",
                 where=("startup_setup.py", "initialize_services", 72))
        self.log("els_api", api0 + ms(100), "els.app", "Essay Lifecycle Service API startup completed successfully",
                 where=("app.py", "startup", 41))
        self.raw(els_api, api0 + ms(120), f"[{api0:%Y-%m-%d %H:%M:%S} +0000] [7] [INFO] Running on http://0.0.0.0:6000 (CTRL + C to quit)")
        self.raw(els_api, api0 + ms(121), "Running on http://0.0.0.0:6000 (CTRL + C to quit)")
        hc = api0 + timedelta(seconds=15)
        while hc < end:
            self.raw(els_api, hc, console_line(hc, "els.api.health", "Health check requested",
                                               **{"deployment.environment": "production",
                                                  "service.name": "essay-lifecycle-service"}))
            self.raw(els_api, hc + ms(2), f"[{hc:%Y-%m-%d %H:%M:%S} +0000] [7] [INFO] 127.0.0.1:{self.rng.randint(30000, 60000)}"
                     f" - - [{hc:%d/%b/%Y:%H:%M:%S} +0000] \"GET /healthz 1.1\" 200 164 \"-\" \"curl/7.88.1\"")
            hc += timedelta(seconds=30)
        w0 = s + ms(200)
        if els_restart:
            self.log("els", w0, "worker_main", "Starting Essay Lifecycle Service Kafka Worker",
                     where=("worker_main.py", "main", 279))
            self.raw(els_w, w0 + ms(400), "Unable connect to \"kafka:9092\": [Errno 111] Connect call failed ('172.18.0.6', 9092)")
            self.log("els", w0 + ms(402), "worker_main", "Worker failed: KafkaConnectionError: Unable to bootstrap from [('kafka', 9092)]",
                     level="error", where=("worker_main.py", "main", 352))
            tb = ["Traceback (most recent call last):",
                  '  File "/app/services/essay_lifecycle_service/worker_main.py", line 362, in <module>',
                  "    asyncio.run(main())",
                  '  File "/usr/local/lib/python3.11/asyncio/runners.py", line 190, in run',
                  "    return runner.run(main)",
                  '  File "/app/services/essay_lifecycle_service/worker_main.py", line 318, in main',
                  "    consumer = await create_kafka_consumer(settings)",
                  '  File "/app/.venv/lib/python3.11/site-packages/aiokafka/client.py", line 268, in bootstrap',
                  '    raise KafkaConnectionError(f"Unable to bootstrap from {self.hosts}")',
                  "aiokafka.errors.KafkaConnectionError: KafkaConnectionError: Unable to bootstrap from [('kafka', 9092)]"]
            for i, line in enumerate(tb):
                self.raw(els_w, w0 + ms(404) + timedelta(microseconds=3 * i), line, "stderr")
            w0 = w0 + timedelta(seconds=6)
        self._startup_els(w0)
        # relays (after the startup lines, as the relay starts there)
        self.relay("bos", s + ms(330), end)
        self.relay("file", s + ms(470), end)
        self.relay("els", w0 + ms(260), end)
        self.containers += [
            ContainerState(bos_c, "running", 0, s - ms(300), None, 0, "healthy", "huledu-reboot-batch_orchestrator_service",
                           model.CONTAINERS[bos_c].compose_service),
            ContainerState(file_c, "running", 0, s - ms(150), None, 0, "healthy", "huledu-reboot-file_service",
                           model.CONTAINERS[file_c].compose_service),
            ContainerState(els_api, "running", 0, s - ms(240), None, 0, "healthy", "huledu-reboot-essay_lifecycle_api",
                           model.CONTAINERS[els_api].compose_service),
            ContainerState(els_w, "running", 0, w0 - ms(500), None, 1 if els_restart else 0, None,
                           "huledu-reboot-essay_lifecycle_worker", model.CONTAINERS[els_w].compose_service),
            ContainerState(setup_c, "exited", 0, tt - ms(300), t_setup_end + ms(50), 0, None,
                           "huledu-reboot-kafka_topic_setup", model.CONTAINERS[setup_c].compose_service),
        ]
        return World(name=self.name, databases=self._databases(), containers=self.containers, logs=self._logs(),
                     collected_at=end, description=description, target=target, expected=expected)

    def _kafka_join(self, container: str, t: datetime, group: str, topics: list[str]) -> None:
        fs = "{" + ", ".join(repr(x) for x in sorted(topics)) + "}"
        gen = self.rng.randint(5, 30)
        lines = [f"Updating subscribed topics to: frozenset({fs})", f"Subscribed to topic(s): {fs}",
                 f"Discovered coordinator 1 for group {group}",
                 f"Revoking previously assigned partitions set() for group {group}", f"(Re-)joining group {group}",
                 f"Joined group '{group}' (generation {gen}) with member_id aiokafka-0.11.0-{self.uuid()}",
                 "Elected group leader -- performing partition assignments using roundrobin",
                 f"Successfully synced group {group} with generation {gen}",
                 "Setting newly assigned partitions {" + ", ".join(
                     f"TopicPartition(topic='{x}', partition={p})" for x in sorted(topics) for p in range(3))
                 + f"}} for group {group}"]
        for i, line in enumerate(lines):
            self.raw(container, t + ms(30 * i + (3000 if i >= 5 else 0)), line)

    def _startup_bos(self, s: datetime) -> None:
        c = SVC["bos"].containers[0]
        self.raw(c, s, "INFO: Outbox settings for environment 'production': poll_interval=5.0s, wake_notifications=True")
        for i, (lg, ev, ln) in enumerate((("outbox_repository", "Initialized PostgreSQL outbox repository", 121),
                                          ("bos.startup", "Database schema initialized successfully", 70),
                                          ("bos.startup", "Distributed tracing initialized", 104))):
            self.log("bos", s + ms(100 + 50 * i), lg, ev, where=("startup_setup.py" if lg != "outbox_repository"
                                                                  else "repository.py", "initialize_services", ln))
        self.log("bos", s + ms(300), "bos.kafka.consumer", "BOS Kafka consumer started",
                 extra={"group_id": "batch-orchestrator-consumers", "topics": BOS_TOPICS},
                 where=("kafka_consumer.py", "start_consumer", 109))
        self.log("bos", s + ms(310), "outbox.event_relay_worker", "Event relay worker started",
                 extra={"service": "batch-service", "poll_interval": 5.0, "batch_size": 100, "max_retries": 5},
                 where=("relay.py", "start", 107))
        self.log("bos", s + ms(320), "bos.app", "Batch Orchestrator Service startup completed successfully",
                 where=("app.py", "startup", 34))
        self.raw(c, s + ms(340), f"[{s:%Y-%m-%d %H:%M:%S} +0000] [7] [INFO] Running on http://0.0.0.0:5000 (CTRL + C to quit)")
        self._kafka_join(c, s + ms(400), "batch-orchestrator-consumers", BOS_TOPICS)

    def _startup_file(self, s: datetime) -> None:
        c = SVC["file"].containers[0]
        self.raw(c, s, "INFO: Outbox settings for environment 'production': poll_interval=5.0s, wake_notifications=True")
        self.log("file", s + ms(100), "outbox_repository", "Initialized PostgreSQL outbox repository",
                 where=("repository.py", "__init__", 121))
        self.log("file", s + ms(300), "outbox.event_relay_worker", "Event relay worker started",
                 extra={"service": "file-service", "poll_interval": 5.0, "batch_size": 100, "max_retries": 5},
                 where=("relay.py", "start", 107))
        self.raw(c, s + ms(340), f"[{s:%Y-%m-%d %H:%M:%S} +0000] [7] [INFO] Running on http://0.0.0.0:7001 (CTRL + C to quit)")

    def _startup_els(self, s: datetime) -> None:
        c = SVC["els"].containers[0]
        self.log("els", s, "worker_main", "Starting Essay Lifecycle Service Kafka Worker",
                 where=("worker_main.py", "main", 279))
        self.log("els", s + ms(50), "worker_main", "Dependencies injected successfully", where=("worker_main.py", "main", 308))
        self.raw(c, s + ms(60), "INFO: Outbox settings for environment 'development': poll_interval=1.0s, wake_notifications=True")
        ok = "uploaded" in self.els_enums.get("essay_status_enum", [])
        if self.alembic and not ok:
            pass  # incident-era code: no enum validation at startup
        else:
            self.log("els", s + ms(120), "els.startup", "Enum validation passed for essay_status_enum",
                     where=("startup_setup.py", "validate_enums", 88))
        self.log("els", s + ms(250), "outbox.event_relay_worker", "Event relay worker started",
                 extra={"service": "essay-lifecycle-service", "poll_interval": 1.0, "batch_size": 100, "max_retries": 5},
                 where=("relay.py", "start", 107))
        self.log("els", s + ms(400), "worker_main", "Kafka consumer started",
                 extra={"group_id": "essay-lifecycle-service-group-v1.0", "topics": ELS_TOPICS},
                 where=("worker_main.py", "create_kafka_consumer", 101))
        self._kafka_join(c, s + ms(420), "essay-lifecycle-service-group-v1.0", ELS_TOPICS)
        self.log("els", s + ms(3400), "worker_main", "Starting message processing loop with enhanced idempotency v2",
                 where=("worker_main.py", "run_consumer_loop", 188))

    # ------------------------------------------------------------------ assembly
    def _databases(self) -> dict[str, DatabaseImage]:
        for svc, db in (("bos", BOS_DB), ("els", ELS_DB), ("file", FILE_DB)):
            self.rows[(db, "event_outbox")] = [{k: v for k, v in r.items() if k != "_poisoned"}
                                               for r in self.outbox[svc]]
        enums = {BOS_DB: self.bos_enums, ELS_DB: self.els_enums, FILE_DB: {}}
        out: dict[str, DatabaseImage] = {}
        for db in (BOS_DB, ELS_DB, FILE_DB):
            img = DatabaseImage(db, enums={k: list(v) for k, v in enums[db].items()},
                                ddl=ddlmod.build_ddl(db, enums[db], alembic=self.alembic))
            for (d, table), rows in self.rows.items():
                if d != db:
                    continue
                cols = ddlmod.column_names(db, table)
                tcol = model.TABLES[(db, table)].time_column
                rows = sorted(rows, key=lambda r: (r[tcol] if tcol else 0, str(r.get(cols[0]))))
                df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols, dtype=object)
                for c in ddlmod.integer_columns(db, table):
                    df[c] = pd.array([None if v is None else int(v) for v in df[c]], dtype="Int64")
                img.tables[table] = coerce_table(db, table, df)
            out[db] = img
        return out

    def _logs(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for c in model.CONTAINERS:
            if c not in self.lines and not any(x.name == c for x in self.containers):
                continue
            streams: dict[str, list[tuple[datetime, int, str]]] = {"stdout": [], "stderr": []}
            for t, seq, stream, text in sorted(self.lines.get(c, []), key=lambda x: (x[0], x[1])):
                nanos = int(hashlib.blake2s(f"{c}{seq}".encode(), digest_size=2).hexdigest(), 16) % 1000
                streams[stream].append((t, nanos, text))
            res: dict[str, list[str]] = {}
            for stream, items in streams.items():
                lines, last = [], None
                for t, nanos, text in items:
                    key = (t, nanos)
                    if last is not None and key <= last:  # keep stamps strictly increasing
                        t, nanos = last[0], last[1] + 1
                        if nanos > 999:
                            t, nanos = t + timedelta(microseconds=1), 0
                    last = (t, nanos)
                    lines.append(f"{docker_stamp(t, nanos)} {text}")
                res[stream] = lines
            out[c] = res
        return out

