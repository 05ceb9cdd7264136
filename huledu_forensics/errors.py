"""Errors raised by huledu-forensics.

Every error the kit raises on purpose derives from one base, grouped by what the caller can do::

    ForensicsError
    ├── ScopeError          the id given matches nothing in the evidence
    ├── SourceUnavailable   a database, Docker engine, Loki or log directory cannot be read
    ├── ConfigError         a profile or config file is missing or malformed
    ├── BundleError
    │   ├── BundleNotFound  no bundle at the path given
    │   └── BundleInvalid   damaged, partial, foreign, or from an incompatible kit version
    └── ReportError         the notebook or report could not be produced

Messages say what happened, with the value, then what to do next. Programming mistakes stay
``TypeError``/``ValueError``.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "BundleInvalid",
    "BundleNotFound",
    "ConfigError",
    "ForensicsError",
    "ReportError",
    "ScopeError",
    "SourceUnavailable",
]


class ForensicsError(Exception):
    """Base class of every error the kit raises on purpose."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (self.__class__, self.args, self.__dict__)


class ScopeError(ForensicsError):
    """Raised when an id matches no row or log line in the evidence."""

    def __init__(self, message: str, *, id: str | None = None) -> None:
        super().__init__(message)
        self.id = id


class SourceUnavailable(ForensicsError):
    """Raised when a whole source (database, Docker, Loki, log directory) cannot be reached."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class ConfigError(ForensicsError):
    """Raised when a profile or configuration file is missing or malformed."""


class EvidenceIncomplete(ForensicsError):
    """Raised when nothing about the id could be collected because sources were unreachable: the
    answer is unknown, not "no such id" (``report`` exits 2). ``bundle`` is the partial bundle kept."""

    def __init__(self, message: str, *, bundle: str | None = None) -> None:
        super().__init__(message)
        self.bundle = bundle


class BundleError(ForensicsError):
    """Base class for evidence-bundle problems."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class BundleNotFound(BundleError):
    """Raised when no bundle exists at the path given."""


class BundleInvalid(BundleError):
    """Raised when a bundle is damaged, partial, foreign or from an incompatible version."""


class ReportError(ForensicsError):
    """Raised when a notebook or report cannot be produced; carries the notebook and cell."""

    def __init__(
        self, message: str, *, notebook: str | None = None, cell_index: int | None = None
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
