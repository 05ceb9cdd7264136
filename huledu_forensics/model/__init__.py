"""Everything the kit knows about HuleEdu, as data, in one place.

When HuleEdu changes, this package changes; rules, the timeline and plots read it and never hard-code
table, topic or container names.
"""

from __future__ import annotations

from . import columns, handlers, logformats, names, privacy, remediation, schema, services, states, topics
from .services import (
    CONTAINERS,
    DATABASES,
    OUTBOX_TABLE,
    SERVICES,
    TABLES,
    Container,
    Database,
    Service,
    Table,
)
from .states import (
    ALEMBIC_INITIAL_ENUMS,
    ENUM_WRITES,
    FLOWS,
    PIPELINE_PHASES,
    PYTHON_ENUMS,
    EnumWrite,
    Flow,
    Step,
)
from .topics import TOPICS, Topic

__all__ = [
    "ALEMBIC_INITIAL_ENUMS",
    "CONTAINERS",
    "DATABASES",
    "ENUM_WRITES",
    "FLOWS",
    "OUTBOX_TABLE",
    "PIPELINE_PHASES",
    "PYTHON_ENUMS",
    "SERVICES",
    "TABLES",
    "TOPICS",
    "Container",
    "Database",
    "EnumWrite",
    "Flow",
    "Service",
    "Step",
    "Table",
    "Topic",
    "columns",
    "handlers",
    "logformats",
    "names",
    "privacy",
    "remediation",
    "schema",
    "services",
    "states",
    "topics",
]
