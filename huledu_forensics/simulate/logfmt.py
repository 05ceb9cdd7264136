"""Log-line renderers for simulated containers (SYSTEM.md §5.2 shapes, Docker ``--timestamps`` wrapping).

Every renderer returns the line *without* the Docker stamp; :func:`docker_stamp` adds it when a world's
logs are assembled. Key order of JSON lines follows structlog's insertion order: ``logger_name``,
``extra``, ``event``, ``service.name``, ``deployment.environment``, ``trace_id``/``span_id``, ``timestamp``,
``level``, ``filename``, ``func_name``, ``lineno``, ``exception``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "console_line",
    "docker_stamp",
    "iso_z",
    "json_line",
    "pg_line",
]


def iso_z(t: datetime) -> str:
    """Render an aware time as ISO 8601 UTC with microseconds and a trailing ``Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def docker_stamp(t: datetime, nanos: int) -> str:
    """Render Docker's RFC3339Nano stamp: ``t`` to the microsecond plus 3 extra digits ``nanos``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{nanos % 1000:03d}Z"


def json_line(t: datetime, logger: str, event: str, *, service: str, env: str, level: str = "info",
              extra: dict[str, Any] | None = None, trace: tuple[str, str] | None = None,
              filename: str = "", func: str = "", lineno: int = 0, exception: str | None = None) -> str:
    """Render one structlog JSON line as HuleEdu's services write it."""
    d: dict[str, Any] = {"logger_name": logger}
    if extra is not None:
        d["extra"] = extra
    d["event"] = event
    d["service.name"] = service
    d["deployment.environment"] = env
    if trace is not None:
        d["trace_id"], d["span_id"] = trace
    d["timestamp"] = iso_z(t)
    d["level"] = level
    d["filename"] = filename
    d["func_name"] = func
    d["lineno"] = lineno
    if exception is not None:
        d["exception"] = exception
    return json.dumps(d, ensure_ascii=False)


def console_line(t: datetime, logger: str, event: str, *, level: str = "info", **kv: Any) -> str:
    """Render one structlog console line (configured renderer, colours off)."""
    pairs = " ".join(f"{k}={v}" for k, v in sorted(kv.items()))
    return f"{iso_z(t)} [{level:<9}] {event:<30} [{logger}]" + (f" {pairs}" if pairs else "")


def pg_line(t: datetime, pid: int, severity: str, message: str) -> str:
    """Render one PostgreSQL server log line (default ``log_line_prefix`` of the postgres image)."""
    u = t.astimezone(UTC)
    return f"{u.strftime('%Y-%m-%d %H:%M:%S')}.{u.microsecond // 1000:03d} UTC [{pid}] {severity}:  {message}"
