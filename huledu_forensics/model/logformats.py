"""Log-format facts: logger-name routing, ``service.name`` values, level maps and line shapes.

Sources: shared/huleedu/SYSTEM.md §5.1-5.4 (logging), §2.3 (relay log lines), §6.5 (PostgreSQL container
lines), §10 (gotchas); where the fact sheet is silent, HuleEdu's source (``paunchygent/huleedu``, entries
tagged ``[code]`` with the file) or, for what no HuleEdu file states (third-party library messages),
the reference corpus (shared/corpus/*/logs, tagged ``[corpus]``). The parser
(:mod:`huledu_forensics.logs`) reads these tables and never hard-codes them; when HuleEdu's logging
changes, this module changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .services import CONTAINERS, SERVICES

__all__ = [
    "AGGREGATE_ID_COLUMNS",
    "CANONICAL_LEVELS",
    "EMOJI_LEVELS",
    "ID_KEY_COLUMNS",
    "LEVEL_ALIASES",
    "LOGGER_ROUTES",
    "OUTBOX_ROW_ID_LOGGERS",
    "PLAIN_LEVEL_PREFIXES",
    "PLAIN_MESSAGE_FACTS",
    "POSTGRES_CONTINUATION_KEYWORDS",
    "POSTGRES_SEVERITY_LEVELS",
    "SERVICE_NAME_TO_KEY",
    "SHARED_LOGGERS",
    "LoggerRoute",
    "PlainMessageFact",
    "container_for_logger",
    "normalise_level",
    "route_logger",
    "service_for_logger",
    "service_for_service_name",
]

# ---------------------------------------------------------------------------------------------
# Levels

CANONICAL_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
"""The kit's level vocabulary (structlog ``add_log_level`` output, SYSTEM.md §5.1 step 5)."""

LEVEL_ALIASES: dict[str, str] = {
    "debug": "debug",
    "info": "info",
    "notice": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "err": "error",
    "exception": "error",  # structlog's log.exception() level name in some renderers
    "critical": "critical",
    "fatal": "critical",
    "panic": "critical",
    "trace": "debug",
}
"""Any level spelling seen in a line (lower-cased) → a canonical level."""

POSTGRES_SEVERITY_LEVELS: dict[str, str] = {
    "DEBUG1": "debug",
    "DEBUG2": "debug",
    "DEBUG3": "debug",
    "DEBUG4": "debug",
    "DEBUG5": "debug",
    "DEBUG": "debug",
    "INFO": "info",
    "NOTICE": "info",
    "LOG": "info",
    "WARNING": "warning",
    "ERROR": "error",
    "FATAL": "critical",
    "PANIC": "critical",
}
"""PostgreSQL severities that start a message (SYSTEM.md §6.5; postgres:15 default log_line_prefix)."""

POSTGRES_CONTINUATION_KEYWORDS: frozenset[str] = frozenset(
    {"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"}
)
"""PostgreSQL keywords that continue the preceding message of the same backend (same pid)."""

PLAIN_LEVEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("INFO:", "info"),
    ("WARNING:", "warning"),
    ("WARN:", "warning"),
    ("ERROR:", "error"),
    ("CRITICAL:", "critical"),
    ("DEBUG:", "debug"),
)
"""``print()`` lines that carry their own level prefix, e.g. the relay's
``INFO: Outbox settings for environment 'development': ...`` (SYSTEM.md §2.3)."""

EMOJI_LEVELS: tuple[tuple[str, str], ...] = (
    ("✅", "info"),
    ("ℹ", "info"),  # noqa: RUF001 - the information-source emoji, not a letter
    ("🚀", "info"),
    ("📡", "info"),
    ("📋", "info"),
    ("📊", "info"),
    ("🎉", "info"),
    ("🔧", "info"),
    ("⚠", "warning"),
    ("❌", "error"),
    ("💥", "error"),
)
"""Leading emoji of the Kafka topic bootstrap prints (``huleedu_kafka_topic_setup``) → level: its
``print`` lines in scripts/kafka_topic_bootstrap.py [code] (❌ on failures, ⚠ on retries and skips, the
others on progress); 🔧 and 💥 are not in that script [corpus]."""


@dataclass(frozen=True)
class PlainMessageFact:
    """A bare third-party message (stdlib logger rendered as ``%(message)s``) the kit recognises."""

    prefix: str
    logger: str | None
    level: str
    source: str = "[corpus]"


PLAIN_MESSAGE_FACTS: tuple[PlainMessageFact, ...] = (
    PlainMessageFact("Unable connect to", "aiokafka", "error"),
    PlainMessageFact("Elected group leader", "aiokafka", "info"),
    PlainMessageFact("Discovered coordinator", "aiokafka", "info"),
    PlainMessageFact("(Re-)joining group", "aiokafka", "info"),
    PlainMessageFact("Successfully synced group", "aiokafka", "info"),
    PlainMessageFact("Setting newly assigned partitions", "aiokafka", "info"),
    PlainMessageFact("Revoking previously assigned partitions", "aiokafka", "info"),
    PlainMessageFact("Subscribed to topic(s)", "aiokafka", "info"),
    PlainMessageFact("Updating subscribed topics to", "aiokafka", "info"),
    PlainMessageFact("Heartbeat failed", "aiokafka", "warning"),
    PlainMessageFact("OffsetCommit failed", "aiokafka", "warning"),
    PlainMessageFact("Running on http", "hypercorn", "info"),
    PlainMessageFact("Attempting to connect to Kafka", "kafka_topic_setup", "info",
                     "scripts/kafka_topic_bootstrap.py [code]"),
    PlainMessageFact("PostgreSQL Database directory appears to contain a database", "postgres", "info"),
    PlainMessageFact("PostgreSQL init process complete", "postgres", "info"),
)
"""Known bare messages (aiokafka, Quart/Hypercorn prints, the postgres entrypoint). Logger names are
the library, not an exact module path [inferred from the message text]."""


def normalise_level(value: object) -> str | None:
    """Return the canonical level for any spelling (``"WARN"`` → ``"warning"``), else ``None``."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    return LEVEL_ALIASES.get(text) or POSTGRES_SEVERITY_LEVELS.get(text.upper())


# ---------------------------------------------------------------------------------------------
# service.name → service key

def _service_name_map() -> dict[str, str]:
    out: dict[str, str] = {s.service_name: s.key for s in SERVICES.values()}
    # OTel tracer names (SYSTEM.md §6.3) and hard-coded source_service values (§1) that also show up
    # as ``service.name`` / ``source_service`` / ``extra.service``.
    aliases = {
        "batch_orchestrator_service": "bos",
        "batch-orchestrator-service": "bos",
        "essay_lifecycle_service": "els",
        "essay_lifecycle_api": "els",
        "essay_lifecycle_worker": "els",
        "file_service": "file",
        "cj_assessment_service": "cj",
        "api_gateway_service": "gateway",
        "spellchecker_service": "spellchecker",
        "result_aggregator_service": "ras",
        "batch_conductor_service": "bcs",
        "class_management_service": "cms",
        "nlp_service": "nlp",
        "kafka_topic_setup": "infra",
    }
    for name, key in aliases.items():
        if key in SERVICES:
            out.setdefault(name, key)
    return out


SERVICE_NAME_TO_KEY: dict[str, str] = _service_name_map()
"""``service.name`` / ``source_service`` value → kit service key (SYSTEM.md §1, §5.4, §6.3)."""


def service_for_service_name(name: str | None) -> str | None:
    """Return the kit service key for a ``service.name`` value, or ``None`` when unknown."""
    if not name:
        return None
    return SERVICE_NAME_TO_KEY.get(name) or SERVICE_NAME_TO_KEY.get(name.strip().lower())


# ---------------------------------------------------------------------------------------------
# Logger-name routing (SYSTEM.md §5.4)

def _container_of(service_key: str, role: str | None = None) -> str | None:
    """Container of ``service_key`` with ``role`` from the services model (no re-typed names)."""
    for c in CONTAINERS.values():
        if c.service == service_key and c.role != "db" and (role is None or c.role == role):
            return c.name
    svc = SERVICES.get(service_key)
    return svc.containers[0] if svc and svc.containers else None


@dataclass(frozen=True)
class LoggerRoute:
    """One routing rule: a logger name matching ``pattern`` belongs to ``service`` / ``container``.

    ``kind`` is ``exact`` (the whole name), ``prefix`` (the name or ``pattern.<anything>``; a pattern
    ending in ``.`` matches anything after it) or ``suffix``. ``container`` is ``None`` when the
    logger is shared by several containers; ``service`` is ``None`` for shared-library loggers that
    every service uses.
    """

    kind: str
    pattern: str
    service: str | None
    container: str | None
    source: str = "SYSTEM.md §5.4"

    def matches(self, name: str) -> bool:
        """Return True when logger ``name`` matches this rule."""
        if self.kind == "exact":
            return name == self.pattern
        if self.kind == "suffix":
            return name.endswith(self.pattern)
        p = self.pattern
        if p.endswith("."):
            return name.startswith(p)
        return name == p or name.startswith(p + ".")


_BOS = _container_of("bos")
_ELS_WORKER = _container_of("els", "worker")
_ELS_API = _container_of("els", "api")
_FILE = _container_of("file")

_R = LoggerRoute
LOGGER_ROUTES: tuple[LoggerRoute, ...] = (
    # Shared-library loggers appear in every service container.
    _R("exact", "outbox.event_relay_worker", None, None),
    _R("exact", "outbox_repository", None, None),
    _R("exact", "shared.outbox_manager", None, None),
    _R("prefix", "outbox.", None, None),
    _R("prefix", "idempotency", None, None, "SYSTEM.md §5.4 (idempotency loggers)"),
    _R("exact", "idempotency-v2", None, None,
       "libs/huleedu_service_libs/src/huleedu_service_libs/idempotency_v2.py [code]"),
    # ELS API before the broader els.* rule.
    _R("exact", "els.app", "els", _ELS_API),
    _R("prefix", "els.api", "els", _ELS_API),
    _R("prefix", "essay_lifecycle_service.api", "els", _ELS_API),
    # els.startup logs in both ELS containers: service known, container ambiguous.
    _R("exact", "els.startup", "els", None, "services/essay_lifecycle_service/startup_setup.py [code]; "
       "[corpus] seen in both huleedu_essay_lifecycle_api and _worker"),
    _R("prefix", "bos.", "bos", _BOS),
    _R("prefix", "batch_orchestrator_service", "bos", _BOS),
    _R("prefix", "file_service", "file", _FILE),
    _R("prefix", "els.", "els", _ELS_WORKER),
    _R("prefix", "essay_lifecycle_service", "els", _ELS_WORKER),
    *(
        _R("prefix", prefix, key, _container_of(key), "SYSTEM.md §1 service names")
        for key, prefix in (
            ("cj", "cj_assessment_service"),
            ("gateway", "api_gateway_service"),
            ("spellchecker", "spellchecker_service"),
            ("ras", "result_aggregator_service"),
            ("bcs", "batch_conductor_service"),
            ("cms", "class_management_service"),
            ("nlp", "nlp_service"),
        )
        if key in SERVICES
    ),
    *(
        _R("exact", name, "els", _ELS_WORKER)
        for name in (
            "worker_main",
            "batch_command_handlers",
            "batch_coordination_handler",
            "batch_tracker",
            "batch_tracker_persistence",
            "content_assignment_service",
            "batch_phase_coordinator",
            "student_association_handler",
        )
    ),
    _R("exact", "specialized_service_dispatcher", "els", _ELS_WORKER,
       "services/essay_lifecycle_service/implementations/service_request_dispatcher.py [code]"),
    _R("suffix", "_command_handler", "els", _ELS_WORKER),
    _R("suffix", "_result_handler", "els", _ELS_WORKER),
)
"""Ordered rules; the first match wins."""
del _R

SHARED_LOGGERS: frozenset[str] = frozenset(
    {"outbox.event_relay_worker", "outbox_repository", "shared.outbox_manager", "idempotency-v2"}
)
"""Shared-library loggers: they say nothing about which service wrote the line."""

OUTBOX_ROW_ID_LOGGERS: frozenset[str] = frozenset({"outbox.event_relay_worker", "outbox_repository"})
"""Loggers whose ``extra.event_id`` is the outbox **row id** (``event_outbox.id``), not an envelope
event id (SYSTEM.md §2.1, §2.3). ``outbox_repository`` uses ``outbox_id`` on "Added event to outbox" but
``event_id`` on "Marked outbox event as published/permanently failed" and "Incremented retry count"
(libs/huleedu_service_libs/src/huleedu_service_libs/outbox/repository.py [code])."""


def route_logger(name: str | None) -> LoggerRoute | None:
    """Return the first :data:`LOGGER_ROUTES` rule matching logger ``name``, or ``None``."""
    if not name:
        return None
    for route in LOGGER_ROUTES:
        if route.matches(name):
            return route
    return None


def container_for_logger(name: str | None) -> str | None:
    """Return the container a logger name routes to, or ``None`` (unknown, shared or ambiguous)."""
    route = route_logger(name)
    return route.container if route else None


def service_for_logger(name: str | None) -> str | None:
    """Return the kit service key a logger name routes to, or ``None`` (unknown or shared)."""
    route = route_logger(name)
    return route.service if route else None


# ---------------------------------------------------------------------------------------------
# Where ids sit in a structured line

ID_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "batch_id": ("batch_id", "entity_id", "bos_batch_id"),
    "correlation_id": ("correlation_id",),
    "essay_id": ("essay_id", "final_essay_id", "internal_essay_id"),
    "text_storage_id": ("text_storage_id",),
    "file_upload_id": ("file_upload_id",),
    "event_id": ("event_id",),
    "outbox_id": ("outbox_id",),
    "trace_id": ("trace_id",),
}
"""Log column → keys (in ``extra`` first, then top level) that hold it, in priority order
(SYSTEM.md §5.1: most context sits in the nested ``extra`` object; ``entity_id`` is a batch id, §3.3)."""

AGGREGATE_ID_COLUMNS: dict[str, str] = {
    "batch": "batch_id",
    "file_upload": "file_upload_id",
    "essay": "essay_id",
}
"""Outbox ``aggregate_type`` → the log column its ``aggregate_id`` fills (SYSTEM.md §2.1, §10.3).
``cj_batch`` (CJ's integer batch id), ``pipeline`` and ``unknown`` fill nothing."""


# ---------------------------------------------------------------------------------------------
# Message texts the parser and the trace read (exact texts or stable fragments; more in .names, .handlers)

M_RELAY_PUBLISHING = "Publishing event from outbox to Kafka"
"""The relay's line before it sends an outbox row to Kafka (SYSTEM.md §2.3): the row's relay time."""

M_FROM_TOPIC = "from topic"
"""Consumer-loop messages name the topic they read after this fragment (``... from topic <topic>``)."""

M_ESSAY_RECORDS_FOR_BATCH = "essay records for batch"
"""BOS's message naming a batch id and then its essay ids in brackets (SYSTEM.md §5.3) [corpus]."""

M_PLAINTEXT_STORAGE_ID = "(type: extracted_plaintext), storage_id:"
"""The File Service's message naming the text storage id of an extracted plaintext [corpus]."""
