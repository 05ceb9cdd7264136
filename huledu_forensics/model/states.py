"""The batch and essay state machines as HuleEdu actually implements them, and the enum label sets.

Source: SYSTEM.md §4 (status_enums.py, BOS handlers, ELS batch_coordination_handler_impl.py,
assignment_sql.py [code]) and §1.2/§1.3 for the database enum histories. The documented GUEST flow passes
through ``awaiting_pipeline_configuration``; the implemented one does not, and BOS never writes
``processing_pipelines`` or a terminal status: pipeline progress lives in ``pipeline_configuration`` and
``phase_status_log``. The flows below are the implemented ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from .services import BOS_DB, ELS_DB

__all__ = [
    "ALEMBIC_INITIAL_ENUMS",
    "ENUM_WRITES",
    "FILE_PROCESSING_STATUSES",
    "FLOWS",
    "PIPELINE_EXECUTION_STATUSES",
    "PIPELINE_PHASES",
    "PYTHON_ENUMS",
    "EnumWrite",
    "Flow",
    "Step",
]


@dataclass(frozen=True)
class Step:
    """One step of a batch's path.

    A step is reached when its ``trigger_topic`` was consumed by ``consumer`` (and, for steps with a
    ``batch_status``, BOS wrote that status). ``expected_dwell_s`` is how long a healthy batch stays at
    this step before the *next* step's trigger arrives; ``None`` means it may wait indefinitely (for
    example for a client's pipeline request).
    """

    id: str
    label: str
    batch_status: str | None
    trigger_topic: str | None
    producer: str | None
    consumer: str | None
    expected_dwell_s: float | None
    note: str = ""
    source: str = ""


@dataclass(frozen=True)
class Flow:
    """A batch flow: GUEST (BOS: ``class_id`` NULL) or REGULAR (``class_id`` set)."""

    name: str
    steps: tuple[Step, ...]
    documented: tuple[str, ...]

    def step(self, step_id: str) -> Step:
        """Return the step with id ``step_id``."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def index(self, step_id: str) -> int:
        """Return the position of ``step_id`` in the path."""
        return [s.id for s in self.steps].index(step_id)


_REGISTERED = Step(
    "registered", "Registered, awaiting content validation", "awaiting_content_validation",
    None, "gateway", "bos", 30.0,
    note="BOS row created by POST /v1/batches/register; BOS publishes BatchEssaysRegistered, File "
    "Service publishes EssayContentProvisionedV1 per file, ELS assigns content to essay slots.",
    source="bos batch_routes.py / store_batch_context [code]",
)
_PIPELINE_STEPS = (
    Step("pipeline_requested", "Pipeline requested by the client", None,
         "huleedu.commands.batch.pipeline.v1", "gateway", "bos", 60.0,
         note="BOS accepts it only when batches.status == ready_for_pipeline_execution.",
         source="client_pipeline_request_handler.py [code]"),
    Step("pipeline_completed", "Pipeline completed", None, "huleedu.batch.pipeline.completed.v1",
         "bos", "ras", None, note="BOS publishes BatchPipelineCompletedV1; batches.status stays "
         "ready_for_pipeline_execution.", source="pipeline coordinator [code]"),
)

FLOWS: dict[str, Flow] = {
    "GUEST": Flow(
        "GUEST",
        (
            _REGISTERED,
            Step("ready_for_pipeline_execution", "Content provisioned, ready for pipeline execution",
                 "ready_for_pipeline_execution", "huleedu.batch.content.provisioning.completed.v1",
                 "els", "bos", None,
                 note="awaiting_pipeline_configuration is skipped in the implementation; the batch "
                 "waits for the client's pipeline request.",
                 source="batch_content_provisioning_completed_handler.py [code]"),
            *_PIPELINE_STEPS,
        ),
        documented=("awaiting_content_validation", "awaiting_pipeline_configuration",
                    "ready_for_pipeline_execution", "processing_pipelines", "completed_successfully"),
    ),
    "REGULAR": Flow(
        "REGULAR",
        (
            _REGISTERED,
            Step("awaiting_student_validation", "Content provisioned, awaiting student validation",
                 "awaiting_student_validation", "huleedu.batch.content.provisioning.completed.v1",
                 "els", "bos", 86400.0,
                 note="BOS stores the essays and sends the student-matching initiate command; a "
                 "teacher confirms, or CMS auto-confirms after 24 h.",
                 source="batch_content_provisioning_completed_handler.py [code]"),
            Step("student_validation_completed", "Student associations confirmed",
                 "student_validation_completed", "huleedu.class.student.associations.confirmed.v1",
                 "cms", "bos", 120.0, source="student_associations_confirmed_handler.py [code]"),
            Step("ready_for_pipeline_execution", "Essays ready, ready for pipeline execution",
                 "ready_for_pipeline_execution", "huleedu.els.batch.essays.ready.v1", "els", "bos", None,
                 source="batch_essays_ready_handler.py [code]"),
            *_PIPELINE_STEPS,
        ),
        documented=("awaiting_content_validation", "awaiting_student_validation",
                    "student_validation_completed", "ready_for_pipeline_execution",
                    "processing_pipelines", "completed_successfully"),
    ),
}

# Pipeline phases (pipeline_configuration keys) with the command BOS sends and the outcome ELS returns.
PIPELINE_PHASES: dict[str, tuple[str, str]] = {
    "spellcheck": ("huleedu.els.spellcheck.initiate.command.v1", "huleedu.els.batch.phase.outcome.v1"),
    "cj_assessment": ("huleedu.batch.cj_assessment.initiate.command.v1",
                      "huleedu.els.batch.phase.outcome.v1"),
    "nlp": ("huleedu.batch.nlp.initiate.command.v2", "huleedu.els.batch.phase.outcome.v1"),
    "ai_feedback": ("", "huleedu.els.batch.phase.outcome.v1"),
}
PHASE_EXPECTED_DWELL_S = 600.0

# A phase's status inside batches.pipeline_configuration: PipelineExecutionStatus (SYSTEM.md §4.3 [code]).
PIPELINE_EXECUTION_STATUSES = (
    "requested_by_user", "pending_dependencies", "dispatch_initiated", "in_progress", "completed_successfully",
    "completed_with_partial_success", "failed", "skipped_due_to_dependency_failure", "skipped_by_user_config",
    "cancelled")

# file_uploads.processing_status: lower-case ProcessingStatus values, and the upper-case server default
# (SYSTEM.md §1.4 [code]).
FILE_PROCESSING_STATUSES = ("pending", "in_progress", "completed", "failed", "PENDING")

_PHASE_QUARTETS = ("spellcheck", "nlp", "ai_feedback", "editor_revision", "grammar_check", "cj_assessment")


def _essay_python_values() -> tuple[str, ...]:
    vals = ["uploaded", "text_extracted", "content_ingesting", "content_ingestion_failed",
            "ready_for_processing"]
    for p in _PHASE_QUARTETS:
        if p == "spellcheck":
            vals += ["awaiting_spellcheck", "spellchecking_in_progress", "spellchecked_success",
                     "spellcheck_failed"]
        else:
            vals += [f"awaiting_{p}", f"{p}_processing_in_progress", f"{p}_success", f"{p}_failed"]
    return tuple(vals + ["all_processing_completed", "essay_critical_failure"])


# (database, enum type) -> the label set HuleEdu's Python code uses (create_all builds exactly these).
PYTHON_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    (ELS_DB, "essay_status_enum"): _essay_python_values(),
    (BOS_DB, "batch_status_enum"): (
        "awaiting_content_validation", "content_ingestion_failed", "awaiting_pipeline_configuration",
        "ready_for_pipeline_execution", "processing_pipelines", "awaiting_student_validation",
        "student_validation_completed", "validation_timeout_processed", "completed_successfully",
        "completed_with_failures", "failed_critically", "cancelled"),
    (BOS_DB, "pipeline_phase_enum"): ("spellcheck", "ai_feedback", "cj_assessment", "nlp",
                                      "student_matching"),
    (BOS_DB, "phase_status_enum"): ("pending", "initiated", "in_progress", "completed", "failed",
                                    "cancelled"),
}

# The label sets an Alembic-built database started with (before the 2025-11-21 catch-up migrations).
ALEMBIC_INITIAL_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    (ELS_DB, "essay_status_enum"): (
        "unregistered", "awaiting_content", "content_provided", "processing", "spellcheck_complete",
        "nlp_complete", "cj_assessment_complete", "ai_feedback_complete", "completed", "failed"),
    (BOS_DB, "batch_status_enum"): ("awaiting_content_validation", "processing", "completed", "failed",
                                    "cancelled", "student_validation_completed"),
    (BOS_DB, "pipeline_phase_enum"): ("spellcheck", "nlp_analysis", "cj_assessment", "ai_feedback"),
    (BOS_DB, "phase_status_enum"): PYTHON_ENUMS[(BOS_DB, "phase_status_enum")],
}


@dataclass(frozen=True)
class EnumWrite:
    """A value a service writes into a database enum column, and at which step of the path.

    ``step`` is the flow step whose transition needs the write; ``topic`` is the event whose handling
    performs it; ``effect`` says what breaks when the label is missing; ``phase``, when set, is the
    pipeline phase whose run makes the write (on a batch's path only when that phase was requested).
    """

    database: str
    enum: str
    value: str
    writer: str  # service key
    table: str
    step: str
    topic: str | None
    effect: str
    source: str = ""
    phase: str | None = None


def _els_phase_writes(phase: str, command: str, result: str, labels: tuple[str, str, str, str],
                      handlers: tuple[str, str], source: str) -> tuple[EnumWrite, ...]:
    """The four essay_status_enum writes of one pipeline phase in ELS: the phase's initiate command
    moves each essay from ready_for_processing to awaiting_*, then (after dispatch) to *_in_progress;
    the phase's result event moves it to *_success or *_failed. All lie before the pipeline completes."""
    waiting, running, ok, failed = labels
    cmd_h, res_h = handlers
    return (
        EnumWrite(ELS_DB, "essay_status_enum", waiting, "els", "essay_states", "pipeline_completed", command,
                  f"ELS cannot move the essays to {waiting} when BOS initiates {phase}, so it dispatches "
                  f"no {phase} request for them and the phase never completes",
                  f"{cmd_h} {source}", phase),
        EnumWrite(ELS_DB, "essay_status_enum", running, "els", "essay_states", "pipeline_completed", command,
                  f"ELS cannot mark the essays {running} after dispatching {phase}; the handler's unit of "
                  f"work fails with the requests already dispatched",
                  f"{cmd_h} {source}", phase),
        EnumWrite(ELS_DB, "essay_status_enum", ok, "els", "essay_states", "pipeline_completed", result,
                  f"ELS cannot record a successful {phase} result: the essay never reaches {ok}, the "
                  f"batch's phase outcome is never published and the pipeline never completes",
                  f"{res_h} {source}", phase),
        EnumWrite(ELS_DB, "essay_status_enum", failed, "els", "essay_states", "pipeline_completed", result,
                  f"ELS cannot record a failed {phase} result, so the phase outcome is never published",
                  f"{res_h} {source}", phase),
    )


ENUM_WRITES: tuple[EnumWrite, ...] = (
    EnumWrite(ELS_DB, "essay_status_enum", "uploaded", "els", "essay_states", "registered",
              "huleedu.batch.essays.registered.v1",
              "ELS cannot create the batch's essay rows (slots) when it handles BatchEssaysRegistered, "
              "so no content is ever assigned and BatchContentProvisioningCompletedV1 is never produced",
              "batch_coordination_handler_impl.py create_essay_records_batch [code]"),
    EnumWrite(ELS_DB, "essay_status_enum", "ready_for_processing", "els", "essay_states", "registered",
              "huleedu.file.essay.content.provisioned.v1",
              "ELS cannot assign content to a slot (Option B assignment) nor count assigned essays",
              "assignment_sql.py [code]"),
    EnumWrite(BOS_DB, "batch_status_enum", "ready_for_pipeline_execution", "bos", "batches",
              "ready_for_pipeline_execution", "huleedu.batch.content.provisioning.completed.v1",
              "BOS cannot move the batch to ready_for_pipeline_execution; update_batch_status swallows "
              "the error and the batch stays in awaiting_content_validation",
              "batch_crud_operations.py update_batch_status [code]"),
    EnumWrite(BOS_DB, "batch_status_enum", "awaiting_student_validation", "bos", "batches",
              "awaiting_student_validation", "huleedu.batch.content.provisioning.completed.v1",
              "BOS cannot move a REGULAR batch to awaiting_student_validation", "[code]"),
    EnumWrite(BOS_DB, "batch_status_enum", "student_validation_completed", "bos", "batches",
              "student_validation_completed", "huleedu.class.student.associations.confirmed.v1",
              "BOS cannot record confirmed student associations", "[code]"),
    EnumWrite(BOS_DB, "pipeline_phase_enum", "spellcheck", "bos", "phase_status_log",
              "pipeline_requested", "huleedu.commands.batch.pipeline.v1",
              "phase_status_log inserts for spellcheck fail", "[inferred]"),
    EnumWrite(BOS_DB, "pipeline_phase_enum", "cj_assessment", "bos", "phase_status_log",
              "pipeline_requested", "huleedu.commands.batch.pipeline.v1",
              "phase_status_log inserts for cj_assessment fail", "[inferred]"),
    EnumWrite(BOS_DB, "pipeline_phase_enum", "nlp", "bos", "phase_status_log", "pipeline_requested",
              "huleedu.commands.batch.pipeline.v1",
              "phase_status_log inserts for the nlp phase fail (Alembic has nlp_analysis)", "[inferred]"),
    EnumWrite(BOS_DB, "pipeline_phase_enum", "student_matching", "bos", "phase_status_log",
              "awaiting_student_validation", "huleedu.batch.content.provisioning.completed.v1",
              "phase_status_log inserts for student_matching fail", "[inferred]"),
    # after slot assignment: the pipeline phases ELS drives (essay_state_machine.py transitions)
    *_els_phase_writes("spellcheck", "huleedu.els.spellcheck.initiate.command.v1",
                       "huleedu.batch.spellcheck.phase.completed.v1",
                       ("awaiting_spellcheck", "spellchecking_in_progress", "spellchecked_success",
                        "spellcheck_failed"),
                       ("spellcheck_command_handler.py", "spellcheck_result_handler.py"),
                       "update_essay_status_via_machine [code]"),
    *_els_phase_writes("cj_assessment", "huleedu.batch.cj_assessment.initiate.command.v1",
                       "huleedu.cj_assessment.completed.v1",
                       ("awaiting_cj_assessment", "cj_assessment_processing_in_progress",
                        "cj_assessment_success", "cj_assessment_failed"),
                       ("cj_assessment_command_handler.py", "cj_result_handler.py"),
                       "update_essay_status_via_machine [code; the result side inferred from the "
                       "state machine's CJ succeeded/failed transitions]"),
)
