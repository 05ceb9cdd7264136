"""Where HuleEdu keeps personal data, as data: the keys and formats :mod:`huledu_forensics.redact` rewrites.

Sources: SYSTEM.md §1.2-§1.4 (``user_id``/``org_id`` columns of BOS, ELS and the File Service, upload
file names), §3 (the same keys inside event payloads and log ``extra``), and BOS's batch name, which the
API gateway composes as ``"<course> - <user_id>"`` [corpus]. When HuleEdu stores a new personal field,
this module changes and redaction follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import columns as C
from .services import BOS_DB, TABLES

__all__ = ["COMPOSED_NAMES", "ESSAY_TEXT_FIELDS", "FILE_NAME_KEYS", "ORG_KEYS", "USER_KEYS", "ComposedName"]

USER_KEYS: tuple[str, ...] = (C.USER_ID,)
"""Keys (columns, JSON keys, log fields) whose values are user ids."""

ORG_KEYS: tuple[str, ...] = (C.ORG_ID,)
"""Keys whose values are organisation ids."""

FILE_NAME_KEYS: tuple[str, ...] = (C.FILENAME, C.ORIGINAL_FILE_NAME, "file_name")
"""Keys whose values are uploaded file names (they may carry student names). A ``filename`` ending in
``.py`` is structlog's call site (the Python module that logged), not an upload."""

ESSAY_TEXT_FIELDS: tuple[str, ...] = ("text", "content", "essay_text", "content_data")
"""Payload and log fields that could hold essay text."""


@dataclass(frozen=True)
class ComposedName:
    """A column whose value embeds personal values: ``pattern``'s groups named ``user``, ``org`` or
    ``file`` hold them (other groups do not)."""

    table: tuple[str, str]
    column: str
    pattern: str
    source: str = "[corpus]"


COMPOSED_NAMES: tuple[ComposedName, ...] = (
    ComposedName((BOS_DB, "batches"), "name", r"^(?P<course>.*) - (?P<user>\S+)$",
                 "BOS batches.name, composed by the API gateway as '<course> - <user_id>' [corpus]"),
)
"""Columns with personal values inside a composed text."""

for _c in COMPOSED_NAMES:  # a composed name on a table the model does not know is a typo
    assert _c.table in TABLES, _c
