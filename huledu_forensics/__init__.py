"""huledu-forensics: from any HuleEdu id to a cross-service timeline, a state-machine view and a verdict."""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__"]
