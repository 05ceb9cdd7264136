"""huledu-forensics: from any HuleEdu id to a cross-service timeline, a state-machine view and a verdict.

The public surface, used by the notebooks and the command line::

    from huledu_forensics import investigate
    inv = investigate("bundles/b1", "278f7fd9-37fe-406a-a735-f15128cb6b1f")
    inv.verdict.summary_text()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .bundle import Bundle, BundleWriter, write_world_bundle
from .errors import (
    BundleError,
    BundleInvalid,
    BundleNotFound,
    ConfigError,
    ForensicsError,
    ReportError,
    ScopeError,
    SourceUnavailable,
)
from .investigation import Investigation, investigate
from .rules import Finding, all_rules
from .scope import Scope, discover
from .verdict import Verdict
from .world import World, load_world_dir, save_world_dir

if TYPE_CHECKING:
    from .overview import batch_overview
    from .postmortem import write_postmortem
    from .report import run_report
    from .trace import correlation_trace

# Imported on first use: they pull in plotly and the report machinery, which `huledu-forensics why`
# and a plain investigate() never need (about a tenth of the `why` command's start-up).
_LAZY = {"batch_overview": "overview", "correlation_trace": "trace", "run_report": "report",
         "write_postmortem": "postmortem"}

__all__ = [
    "Bundle",
    "BundleError",
    "BundleInvalid",
    "BundleNotFound",
    "BundleWriter",
    "ConfigError",
    "Finding",
    "ForensicsError",
    "Investigation",
    "ReportError",
    "Scope",
    "ScopeError",
    "SourceUnavailable",
    "Verdict",
    "World",
    "__version__",
    "all_rules",
    "batch_overview",
    "correlation_trace",
    "discover",
    "investigate",
    "load_world_dir",
    "run_report",
    "save_world_dir",
    "write_postmortem",
    "write_world_bundle",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
