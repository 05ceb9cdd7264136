"""The scan's SQL names HuleEdu columns only through model/columns.py (issue 11): rename every column
there and no query the live scan sends still spells an old name."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from huledu_forensics.model import columns as C
from huledu_forensics.model.services import BOS_DB, ELS_DB, FILE_DB
from huledu_forensics.scan import _PgFacts

KIT_ALIAS_REFERENCES = {"c.batch_id"}  # a CTE's own column, named by the kit's frame (AS batch_id)


class _Recorder:
    """Stands in for a PostgresSource: records the SQL, returns no rows."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    def query(self, sql: str, params: Any = None, *, doing: str = "") -> pd.DataFrame:
        self.sent.append(sql)
        return pd.DataFrame()


def _identifiers(sql: str) -> list[str]:
    """Identifiers the SQL reads (not the kit's own ``AS alias`` names, not quoted text or parameters)."""
    sql = re.sub(r"'[^']*'", "", sql)
    sql = re.sub(r"\bAS\s+[a-z_]+", "", sql, flags=re.I)
    sql = re.sub(r":[a-z_]+", "", sql)
    return [t for t in re.findall(r"\b(?:[a-z]{1,2}\.)?[a-z_][a-z0-9_]*\b", sql) if t not in KIT_ALIAS_REFERENCES]


def _sent_sql() -> list[str]:
    sent: list[str] = []
    facts = _PgFacts({db: _Recorder(sent) for db in (BOS_DB, ELS_DB, FILE_DB)}, datetime(2025, 1, 1, tzinfo=UTC), {})
    calls = (lambda: facts.bos_candidates(None), lambda: facts.bos_states(None), lambda: facts.els_candidates(None),
             lambda: facts.file_candidates(None), lambda: facts.bos_rows(["x"]), lambda: facts.els_details(["x"]),
             lambda: facts.file_details(["x"]), lambda: facts.outbox(ELS_DB, ["x"], ["t"]))
    for call in calls:
        with contextlib.suppress(KeyError):  # frames keep the names read at import; only the SQL sent matters
            call()
    assert len(sent) == len(calls)
    return sent


def test_every_column_the_scan_reads_comes_from_model_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    originals = {name: getattr(C, name) for name in C.__all__ if isinstance(getattr(C, name), str)}
    before = {t.split(".")[-1] for sql in _sent_sql() for t in _identifiers(sql)}
    used = set(originals.values()) & before
    assert {C.BATCH_ID, C.CREATED_AT, C.AGGREGATE_ID, C.PROCESSING_STATUS, C.STATUS} <= used  # the check sees them
    for name, value in originals.items():
        monkeypatch.setattr(C, name, f"zz_{value}")
    after = [t.split(".")[-1] for sql in _sent_sql() for t in _identifiers(sql)]
    assert not used & set(after), sorted(used & set(after))
    assert {f"zz_{v}" for v in used} <= set(after)
