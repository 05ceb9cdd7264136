"""The scoped evidence of one investigation, with the small lookups rules and progress share."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from . import model
from ._frames import records
from .model import columns as C
from .model import names as N
from .outcomes import LogExtent
from .scope import Scope
from .world import ContainerState

__all__ = ["Evidence", "payload", "records"]


def payload(value: object) -> dict[str, object]:
    """Parse an outbox ``event_data`` (JSON text or dict) into a dict; ``{}`` when unparseable."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            out = json.loads(value)
            return out if isinstance(out, dict) else {}
        except ValueError:
            return {}
    return {}


@dataclass
class Evidence:
    """What one investigation sees.

    ``tables`` hold only the rows in scope; ``logs`` the scoped log rows; ``db_logs`` every database
    container line in the investigation window; ``enums`` the collected enum label sets; ``present``
    the parts the bundle holds (``(database, table)`` keys, ``"enums:<db>"``, ``"logs:<container>"``);
    ``runs`` the scope's handling runs (:mod:`huledu_forensics.outcomes`); ``recognised`` the consumer
    containers with at least one recognised handling anywhere in the bundle; ``log_extent`` per
    container the number of its lines in the bundle and the time of the first and the last one.
    """

    scope: Scope
    tables: dict[tuple[str, str], pd.DataFrame]
    logs: pd.DataFrame
    db_logs: pd.DataFrame
    enums: dict[str, dict[str, list[str]]]
    containers: list[ContainerState]
    collected_at: datetime
    present: set[object] = field(default_factory=set)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    recognised: frozenset[str] = frozenset()
    log_extent: dict[str, LogExtent] = field(default_factory=dict)

    # ---- tables
    def rows(self, key: tuple[str, str]) -> pd.DataFrame:
        """Scoped rows of a table (an empty frame when the bundle lacks the table)."""
        df = self.tables.get(key)
        return df if df is not None else pd.DataFrame()

    def has(self, part: object) -> bool:
        """Whether the bundle holds ``part`` (see ``present``)."""
        return part in self.present

    def batch_rows(self, key: tuple[str, str], column: str = C.BATCH_ID) -> pd.DataFrame:
        """Scoped rows of ``key`` whose ``column`` is the scope's batch."""
        df = self.rows(key)
        if df.empty or column not in df.columns or self.scope.batch_id is None:
            return df.iloc[0:0]
        return df[df[column].astype(object).map(lambda v: str(v).lower() if v else v)
                  == self.scope.batch_id]

    def batch(self) -> dict[str, object] | None:
        """The BOS ``batches`` row of the scope's batch, or ``None``."""
        df = self.batch_rows(N.BATCHES, C.ID)
        return None if df.empty else records(df)[0]

    def tracker(self) -> dict[str, object] | None:
        """The ELS tracker row of the scope's batch, or ``None``."""
        df = self.batch_rows(N.TRACKERS)
        return None if df.empty else records(df)[0]

    def outbox(self, service: str | None = None, topic: str | None = None) -> pd.DataFrame:
        """Scoped outbox rows (all services, or one), optionally for one topic; adds ``service``."""
        frames = []
        for svc, key in N.OUTBOXES.items():
            if service is not None and svc != service:
                continue
            df = self.rows(key)
            if df.empty:
                continue
            df = df.assign(service=svc)
            if topic is not None:
                t = df[C.TOPIC].where(df[C.TOPIC].notna(), df[C.EVENT_TYPE]) if C.TOPIC in df else \
                    df[C.EVENT_TYPE]
                short = model.TOPICS[topic].short_event_type if topic in model.TOPICS else None
                df = df[(t == topic) | ((df[C.EVENT_TYPE] == short) if short else False)]
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def outbox_for_batch(self, topic: str, service: str | None = None) -> pd.DataFrame:
        """Outbox rows of ``topic`` that concern the scope's batch (aggregate, data.batch_id or
        data.entity_id)."""
        df = self.outbox(service, topic)
        if df.empty or self.scope.batch_id is None:
            return df
        b = self.scope.batch_id

        def about(row: dict[str, object]) -> bool:
            if str(row.get(C.AGGREGATE_ID) or "").lower() == b:
                return True
            data = payload(row.get(C.EVENT_DATA)).get("data")
            if isinstance(data, dict):
                return any(str(data.get(k) or "").lower() == b for k in (C.BATCH_ID, "entity_id"))
            return False

        return df[[about(r) for r in df.pipe(records)]]

    def container_state(self, name: str) -> ContainerState | None:
        """The collected state of container ``name`` (``None`` when the bundle has none)."""
        return next((c for c in self.containers if c.name == name), None)

    # ---- logs
    def log_lines(self, message: str | tuple[str, ...], *, startswith: bool = False,
                  level: str | None = None) -> pd.DataFrame:
        """Scoped log rows whose message contains (or starts with) ``message`` (one or several)."""
        lg = self.logs
        if lg.empty:
            return lg
        msgs = (message,) if isinstance(message, str) else message
        text = lg["message"].astype(object).fillna("").astype(str)
        mask = pd.Series(False, index=lg.index)
        for m in msgs:
            mask |= text.str.startswith(m) if startswith else text.str.contains(m, regex=False)
        if level is not None:
            mask &= lg["level"] == level
        return lg[mask]

    @staticmethod
    def ref(row: dict[str, object]) -> str:
        """The evidence reference of a normalised log row."""
        return f"{row.get('source_file')}#L{row.get('line_no')}"
