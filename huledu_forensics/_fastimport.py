"""Skip one wasteful import on the report path: jsonschema's optional ``rfc3987_syntax``.

papermill (in the CLI process) and plotly's renderers (in the report kernel) import nbformat, which
imports jsonschema, which imports ``rfc3987_syntax`` when it is installed, only to register a checker
for the ``iri`` string format; that module builds a Lark grammar at import time, about 2.5 s on the
bench machine, paid once in each process. No schema the kit validates (notebooks, nbformat's own)
uses the ``iri`` format, so :func:`without_iri_checker` imports jsonschema with that module hidden:
jsonschema treats it as not installed (the checker it would register is simply absent).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["without_iri_checker"]

_SLOW = "rfc3987_syntax"


@contextmanager
def without_iri_checker() -> Iterator[None]:
    """Within the block, a first import of jsonschema does not load ``rfc3987_syntax``.

    Does nothing when jsonschema (or the module) is already imported, so a process that has the
    ``iri`` checker keeps it.
    """
    if "jsonschema" in sys.modules or _SLOW in sys.modules:
        yield
        return
    sys.modules[_SLOW] = None  # type: ignore[assignment]  # import raises ImportError: "not installed"
    try:
        yield
    finally:
        if sys.modules.get(_SLOW, 0) is None:
            del sys.modules[_SLOW]
