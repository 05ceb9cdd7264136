"""Which batches are stuck right now? Every batch of a stack (or a bundle), classified, stuck ones grouped.

:func:`scan_profile` classifies every batch in BOS, ELS and the File Service with SQL that runs in each
PostgreSQL database: the state machine's steps (:data:`huledu_forensics.model.FLOWS`) go in as bound
arrays, so the state, step, time in the step and its expected dwell are computed by the server and only
the batches past their dwell (or in a failed state) come back. The three databases are separate, so the
join happens in Python, on those few candidates only, with ``= ANY(...)`` lookups that use the
indexes: the ELS tracker, essay, pending-content and validation-failure counts, the File Service upload
counts, and whether the awaited event's outbox row exists in its producer's database and is published.

Each stuck batch gets an ``error_class`` from that evidence (an enum label the step needs is missing, the
awaited outbox row is unpublished, validation failures, no essay rows, ...; :data:`ERROR_CLASSES` says
what each states). The scan reads rows only, never logs, so no class claims consumption or handling;
a class resting on an absent row needs that table read, and where a database or table was not read the
batches it decides are ``unknown.not_read:<source>``. Batches with the same
state, awaited event and error class form one group: 300 batches stuck by one enum drift read as one
incident with a count and a first and last time.

:func:`scan_bundle` does the same on an evidence bundle (pandas instead of SQL), so the stuck-batches
report works offline. Every time is aware UTC; the database sessions are read-only with timeouts.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from . import _fields as F
from . import model
from ._time import parse_option_time, parse_utc, utcnow
from .bundle import Bundle
from .errors import ConfigError, SourceUnavailable
from .model import columns as C
from .model import names as N
from .model.services import BOS_DB, ELS_DB, FILE_DB
from .model.states import PHASE_EXPECTED_DWELL_S

if TYPE_CHECKING:
    from .overview import ScanOverview

__all__ = ["BATCH_COLUMNS", "ERROR_CLASSES", "GROUP_COLUMNS", "SCAN_FILES", "ScanResult", "error_class_meaning",
           "load_scan", "scan_bundle", "scan_profile"]

BATCH_COLUMNS = (F.BATCH_ID, "flow", "state", "step", "awaited_event", "producer", "outbox_row",
                 "entered_at", "age_s", "expected_dwell_s", "essays_expected", "essays", "essays_assigned",
                 "pending_content", "validation_failures", "files", "files_failed", "error_class",
                 "known_to")
"""Columns of :attr:`ScanResult.batches` (one row per stuck or unhealthy batch)."""

GROUP_COLUMNS = ("signature", "state", "awaited_event", "error_class", "error_class_means", "count", "first_at",
                 "last_at", "oldest_age_s", "example_batch")
"""Columns of :attr:`ScanResult.groups` (one row per signature, biggest first); ``error_class_means`` is
what the class states (:func:`error_class_meaning`)."""

SCAN_FILES = {"json": "scan.json", "stuck": "stuck_batches.csv", "groups": "groups.csv"}
"""What :meth:`ScanResult.write` puts in a directory."""

UNKNOWN = "unknown"
"""The prefix of every error class the scan cannot decide from the rows it read (``unknown.<why>:<source>``)."""

NOT_READ = f"{UNKNOWN}.not_read"
"""``unknown.not_read:<database>[.<table>]``: the source the classification needed was not read."""

ERROR_CLASSES: dict[str, str] = {
    "bos.batch_row_missing": "ELS or the File Service holds the batch; BOS was read and has no batches row",
    "batch": "BOS batches.status is a failed status",
    "enum.label_missing": "the database's enum lacks a label the batch's step writes",
    "outbox.unpublished": "the awaited event's outbox row exists with no published_at",
    "outbox.unpublished.retries_exhausted": "the awaited event's outbox row is unpublished and its "
                                            "retry_count reached the relay's limit",
    "outbox.published.state_not_advanced": "published, consumer's state not advanced (consumption not checked: "
                                           "scan reads no logs)",
    "validation.failures": "ELS holds validation-failure rows for the batch",
    "file.upload_failed": "the File Service holds failed upload rows for the batch",
    "phase.no_outcome": "the last phase_status_log row is open past its dwell; the producer's outbox was read "
                        "and holds no outcome row",
    "els.tracker_missing": "ELS was read and holds no tracker row for the batch",
    "els.no_essay_rows": "the ELS tracker exists, with no essay_states row",
    "els.orphaned_content": "ELS holds pending-content rows for the batch",
    "els.content_incomplete": "fewer essay rows have content than the batch expects",
    "event.not_produced": "the producer's outbox table was read and holds no row of the awaited event",
    NOT_READ: "unknown: a source the classification needs was not read (named after the colon)",
    f"{UNKNOWN}.no_cause_in_rows": "unknown: past its dwell, and no row the scan reads explains why",
}
"""What each error class states, and nothing more: the rows that show it. A scan reads database rows
only, so no class claims what only logs show (consumed, handled, rejected); the class before ``:`` is
the key (``validation.failures:EMPTY_CONTENT`` -> ``validation.failures``)."""

SCAN_FORMAT = "huledu-forensics-scan"
_STEP_OF_PHASES = "pipeline_requested"  # the flow step whose progress lives in phase_status_log
Progress = Callable[[str], None]


# ------------------------------------------------------------------------------------------- result
@dataclass
class ScanResult:
    """What a scan found.

    Attributes:
        batches: one row per stuck or unhealthy batch (:data:`BATCH_COLUMNS`), oldest first.
        groups: one row per signature (same state + same awaited event + same error class), biggest
            first (:data:`GROUP_COLUMNS`).
        total: how many batches were examined.
        scanned_at: the "now" ages are measured to (the database server's clock, or the bundle's
            collection time).
        since: only batches registered at or after this were examined (``None``: all).
        source: where the scan ran (``{"kind": "live", "profile": ...}`` or ``{"kind": "bundle", ...}``).
        warnings: what could not be read (a database down, a table missing); the scan is then partial.
        not_assessed: BOS batches in a state the model does not describe as a step of their flow (e.g.
            ``processing_pipelines``), by state: the scan has no dwell to hold them to, so it says
            nothing about them (neither stuck nor healthy).
        enum_drift: one entry per enum type whose label set differs from the one the model declares
            (``database``, ``enum``, ``labels`` held, ``missing_known``: declared labels absent that a
            known step writes, ``missing_unknown``: declared labels absent the kit cannot place on a step,
            ``extra``: labels the model does not declare). Drift alone marks no batch stuck.
        enums_not_read: the databases whose enums the model declares and the scan did not read.
    """

    batches: pd.DataFrame
    groups: pd.DataFrame
    total: int
    scanned_at: datetime
    since: datetime | None = None
    source: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    not_assessed: dict[str, int] = field(default_factory=dict)
    enum_drift: list[dict[str, Any]] = field(default_factory=list)
    enums_not_read: list[str] = field(default_factory=list)

    @property
    def stuck(self) -> int:
        """How many batches are stuck or unhealthy."""
        return len(self.batches)

    @property
    def unknown(self) -> int:
        """How many listed batches the scan could not classify from the rows it read (``unknown.*``)."""
        return int(self.batches["error_class"].astype(str).str.startswith(f"{UNKNOWN}.").sum())

    @property
    def not_assessed_count(self) -> int:
        """How many batches the scan did not assess (:attr:`not_assessed`)."""
        return sum(self.not_assessed.values())

    @property
    def not_stuck(self) -> int:
        """How many examined batches the scan assessed and did not list (neither stuck nor not assessed)."""
        return max(int(self.total) - self.stuck - self.not_assessed_count, 0)

    @property
    def complete(self) -> bool:
        """Whether every source was read (no warning)."""
        return not self.warnings

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 UTC)."""
        return {"format": SCAN_FORMAT, "tool": "huledu-forensics", "scanned_at": self.scanned_at.isoformat(),
                "since": self.since.isoformat() if self.since else None, "source": self.source,
                "total": int(self.total), "stuck": self.stuck, "not_assessed": dict(self.not_assessed),
                "complete": self.complete,
                "warnings": list(self.warnings), "groups": _records(self.groups),
                "enum_drift": [dict(d) for d in self.enum_drift], "enums_not_read": list(self.enums_not_read),
                "stuck_batches": _records(self.batches)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScanResult:
        """Rebuild a result from :meth:`to_json` output."""
        if not isinstance(data, dict) or data.get("format") != SCAN_FORMAT:
            raise ConfigError("This is not a scan.json written by `huledu-forensics scan --out`.")
        batches = pd.DataFrame(data.get("stuck_batches") or [], columns=list(BATCH_COLUMNS))
        groups = pd.DataFrame(data.get("groups") or [], columns=list(GROUP_COLUMNS))
        for df, cols in ((batches, ("entered_at",)), (groups, ("first_at", "last_at"))):
            for c in cols:
                df[c] = pd.to_datetime(df[c], utc=True)
        scanned = parse_utc(data.get("scanned_at")) or utcnow()
        return cls(batches=_typed(batches), groups=groups, total=int(data.get("total") or 0),
                   scanned_at=scanned, since=parse_utc(data.get("since")), source=dict(data.get("source") or {}),
                   warnings=list(data.get("warnings") or []),
                   not_assessed={str(k): int(v) for k, v in (data.get("not_assessed") or {}).items()},
                   enum_drift=[dict(d) for d in data.get("enum_drift") or [] if isinstance(d, dict)],
                   enums_not_read=[str(x) for x in data.get("enums_not_read") or []])

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``scan.json``, ``stuck_batches.csv`` and ``groups.csv`` into ``out_dir``; return their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / v for k, v in SCAN_FILES.items()}
        tmp = paths["json"].with_name(paths["json"].name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, paths["json"])
        self.batches.to_csv(paths["stuck"], index=False)
        self.groups.to_csv(paths["groups"], index=False)
        return paths

    def render(self, *, limit: int = 20) -> str:
        """The terminal view: one line of totals, the groups, then the oldest stuck batches."""
        lines = [f"scanned {self.total} batch(es) at {self.scanned_at:%Y-%m-%d %H:%M:%S} UTC: "
                 f"{self.stuck} stuck or unhealthy in {len(self.groups)} group(s)"
                 + (f", {self.unknown} of them unknown" if self.unknown else "")
                 + (f"; {self.not_assessed_count} not assessed ({_states(self.not_assessed)}: "
                    "states the model does not describe as a step, so neither stuck nor healthy)"
                    if self.not_assessed else "")]
        if not self.groups.empty:
            lines.append("")
            g = self.groups
            rows = [(str(r["count"]), str(r["state"]), str(r["awaited_event"] or "-"), str(r["error_class"]),
                     _hm(r["first_at"]), _hm(r["last_at"]), str(r["example_batch"])) for _, r in g.iterrows()]
            lines += _table(("COUNT", "STATE", "AWAITING", "ERROR CLASS", "FIRST", "LAST", "EXAMPLE BATCH"), rows)
            lines += ["", "error classes (what the rows show; the scan reads no logs):"]
            lines += [f"  {c}: {error_class_meaning(c)}"
                      for c in dict.fromkeys(str(x).split(":", 1)[0] for x in g["error_class"])]
        lines += _drift_lines(self.enum_drift, self.enums_not_read)
        if not self.batches.empty:
            lines.append("")
            b = self.batches.head(limit)
            rows = [(str(r[F.BATCH_ID]), str(r["flow"] or "?"), str(r["state"] or "?"), str(r["step"] or "?"),
                     _age(r["age_s"], r["expected_dwell_s"]), str(r["outbox_row"]), str(r["error_class"]))
                    for _, r in b.iterrows()]
            lines += _table(("BATCH", "FLOW", "STATE", "STEP", "AGE/DWELL", "OUTBOX", "ERROR CLASS"), rows)
            if len(self.batches) > limit:
                lines.append(f"... and {len(self.batches) - limit} more (scan --out DIR writes them all)")
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


def _labels(xs: Sequence[str], n: int = 3) -> str:
    return ", ".join(xs[:n]) + (f", +{len(xs) - n}" if len(xs) > n else "")


def drift_summary(d: Mapping[str, Any]) -> str:
    """One enum's drift in one short line: ``<db>.<enum>: N missing that a known step writes (a, b, c,
    +k); M missing the kit cannot place on a step (...); E extra`` (scan.json holds every label)."""
    parts = []
    if d.get("missing_known"):
        parts.append(f"{len(d['missing_known'])} missing that a known step writes ({_labels(d['missing_known'])})")
    if d.get("missing_unknown"):
        parts.append(f"{len(d['missing_unknown'])} missing the kit cannot place on a step "
                     f"({_labels(d['missing_unknown'])})")
    if d.get("extra"):
        parts.append(f"{len(d['extra'])} extra")
    return f"{d.get('database')}.{d.get('enum')}: " + "; ".join(parts)


def _drift_lines(drift: Sequence[Mapping[str, Any]], not_read: Sequence[str]) -> list[str]:
    """The terminal's enum drift section: nothing when no enum read has drifted."""
    if not drift:
        return []
    lines = ["", "enum drift (database enum labels against the model's declared ones; marks no batch stuck):"]
    lines += [f"  {drift_summary(d)}" for d in drift]
    if not_read:
        lines.append(f"  enums not read: {', '.join(not_read)}")
    return lines


def _enum_drift(enums: Mapping[str, Mapping[str, Sequence[str]]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The drifted enums among ``enums`` (:func:`huledu_forensics.rules.enums.enum_drift`), and the
    databases with declared enums that ``enums`` does not hold (not read)."""
    from .rules.enums import enum_drift

    drift = [{"database": d.database, "enum": d.enum, "labels": list(d.labels),
              "missing_known": list(d.missing_known), "missing_unknown": list(d.missing_unknown),
              "extra": list(d.extra)} for d in enum_drift(enums) if d.drifted]
    not_read = sorted({db for db, _e in model.PYTHON_ENUMS if db not in enums})
    return drift, not_read


def _states(counts: dict[str, int]) -> str:
    """``{state: n}`` as ``state n, other m``."""
    return ", ".join(f"{s} {n}" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def error_class_meaning(error_class: str) -> str:
    """What ``error_class`` states (:data:`ERROR_CLASSES`), e.g. for a legend under a table."""
    key = str(error_class).split(":", 1)[0]
    while key and key not in ERROR_CLASSES:
        key = key.rpartition(".")[0]
    return ERROR_CLASSES.get(key, "")


def _hm(t: Any) -> str:
    return "-" if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def _age(age: Any, dwell: Any) -> str:
    a = "?" if age is None or pd.isna(age) else _dur(float(age))
    d = "-" if dwell is None or pd.isna(dwell) else _dur(float(dwell))
    return f"{a}/{d}"


def _dur(s: float) -> str:
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]


def _dict_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """``df.to_dict("records")`` typed: the scan's frames have str column names."""
    return cast(list[dict[str, Any]], df.to_dict("records"))


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in _dict_rows(df):
        row: dict[str, Any] = {}
        for k, v in rec.items():
            if isinstance(v, pd.Timestamp):
                row[k] = None if pd.isna(v) else v.isoformat()
            elif v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
                row[k] = None
            elif hasattr(v, "item"):
                row[k] = v.item()
            else:
                row[k] = v
        out.append(row)
    return out


def load_scan(path: str | Path) -> ScanResult:
    """Read a ``scan.json`` (or a directory holding one) written by :meth:`ScanResult.write`."""
    p = Path(path)
    if p.is_dir():
        p = p / SCAN_FILES["json"]
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"No scan at '{p}'. Run `huledu-forensics scan --profile P --out DIR` first.") from None
    except ValueError as exc:
        raise ConfigError(f"'{p}' is not valid JSON ({exc}). Run the scan again.") from None
    return ScanResult.from_json(data)


# ------------------------------------------------------------------------------------- the model side
@dataclass(frozen=True)
class _StepRow:
    flow: str
    state: str
    step: str
    awaited: str | None
    producer: str | None
    dwell: float | None


def _steps() -> list[_StepRow]:
    """Each (flow, BOS status): the step, the event that moves it on, its producer and expected dwell."""
    out = []
    for fname, fl in model.FLOWS.items():
        for i, st in enumerate(fl.steps):
            if st.batch_status is None:
                continue
            nxt = fl.steps[i + 1] if i + 1 < len(fl.steps) else None
            out.append(_StepRow(fname, st.batch_status, st.id, nxt.trigger_topic if nxt else None,
                                nxt.producer if nxt else None, st.expected_dwell_s))
    return out


def _phase_step() -> _StepRow:
    return _StepRow("", N.S_READY, _STEP_OF_PHASES, N.T_PHASE_OUTCOME, "els", PHASE_EXPECTED_DWELL_S)


_PRODUCER_DB = {s.key: s.database for s in model.SERVICES.values() if s.database in (BOS_DB, ELS_DB, FILE_DB)}
_REGISTERED_DWELL = min(s.dwell for s in _steps() if s.dwell is not None)


def _enum_missing(step: str | None, next_step: str | None, enums: dict[str, dict[str, list[str]]],
                  unread: dict[str, str]) -> str | None:
    """The first enum write the batch's step (then its next step) needs whose label the database lacks;
    ``unknown.not_read:<db>`` when that write's database was not read before one was found."""
    for want in (step, next_step):
        if not want:
            continue
        for w in model.ENUM_WRITES:
            # a phase's writes need the batch's requested pipelines, which the scan does not read
            if w.step != want or w.phase is not None:
                continue
            if w.database in unread:
                return f"{NOT_READ}:{unread[w.database]}"
            labels = (enums.get(w.database) or {}).get(w.enum)
            if labels is not None and w.value not in labels:
                return f"enum.label_missing:{w.database}.{w.enum}.{w.value}"
    return None


def _next_step(flow: str | None, step: str | None) -> str | None:
    if not flow or not step or flow not in model.FLOWS:
        return None
    ids = [s.id for s in model.FLOWS[flow].steps]
    if step not in ids:
        return None
    i = ids.index(step)
    return ids[i + 1] if i + 1 < len(ids) else None


# --------------------------------------------------------------------------------------------- facts
class _Facts:
    """What the classification needs, from SQL (live) or pandas (bundle). Frames, small ones."""

    now: datetime
    warnings: list[str]
    where: str  # where the classification runs, for progress lines
    unread: dict[str, str]  # database -> the source not read ("db" or "db.table"), named in unknown.not_read

    def bos_candidates(self, since: datetime | None) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def bos_states(self, since: datetime | None) -> dict[tuple[str, str], int]:
        """How many BOS batches are in each (flow, state)."""
        raise NotImplementedError

    def els_candidates(self, since: datetime | None) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def file_candidates(self, since: datetime | None) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def bos_rows(self, ids: list[str]) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def els_details(self, ids: list[str]) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def file_details(self, ids: list[str]) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def outbox(self, db: str, ids: list[str], topics: list[str]) -> pd.DataFrame:  # noqa: D102
        raise NotImplementedError

    def enums(self) -> dict[str, dict[str, list[str]]]:  # noqa: D102
        raise NotImplementedError

    def has(self, db: str) -> bool:
        """Whether every table of ``db`` the scan reads was read (so an absent row is evidence)."""
        return db not in self.unread


_BOS_CAND_COLS = [F.BATCH_ID, "flow", "state", "step", "awaited_event", "producer", "entered_at", "age_s",
                  "expected_dwell_s", "essays_expected", C.CREATED_AT]
_ELS_COLS = [F.BATCH_ID, "tracker", "tracker_created_at", "essays_expected", "essays", "essays_assigned",
             "pending_content", "validation_failures", "failure_code"]
_FILE_COLS = [F.BATCH_ID, "files", "files_failed", "files_stalled", "file_error_code", "first_upload_at"]
_OUTBOX_COLS = [F.BATCH_ID, "topic", "published", C.RETRY_COUNT]


def _q(key: tuple[str, str]) -> str:
    """The table of a model ``(database, table)`` key as an SQL identifier, quoted by SQLAlchemy."""
    from .sources.postgres import quote_identifier

    return quote_identifier(key[1])


def _source_name(db: str, missing_tables: Sequence[str]) -> str:
    """How ``unknown.not_read:<source>`` names a database, or the tables of it that were missing."""
    return f"{db}.{'+'.join(missing_tables)}" if missing_tables else db


class _Columns:
    """HuleEdu column names (:mod:`huledu_forensics.model.columns`) as SQL identifiers, for the scan's SQL
    text (``{_c.batch_id}``): a renamed column is edited in ``model/`` alone. Quoted only where PostgreSQL
    needs it, so the text, and the plans, are what the plain names give."""

    def __getattr__(self, name: str) -> str:
        from .sources.postgres import quote_identifier

        return quote_identifier(getattr(C, name.upper()))


_c = _Columns()


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


class _PgFacts(_Facts):
    """The facts from live databases: aggregates and the dwell test run in PostgreSQL."""

    where = "in SQL"

    def __init__(self, sources: dict[str, Any], now: datetime | None, unread: dict[str, str]) -> None:
        self.src = sources
        self._enums: dict[str, dict[str, list[str]]] | None = None
        self.warnings: list[str] = []
        self.unread = {**unread, **{db: db for db in (BOS_DB, ELS_DB, FILE_DB) if db not in sources and db not in unread}}
        if now is None:
            src = next(iter(sources.values()), None)
            now = parse_utc(src.query("SELECT now() AS now", doing="read the clock of")["now"].iloc[0]) \
                if src is not None else None
        self.now = now or utcnow()

    def _run(self, db: str, sql: str, params: dict[str, Any], what: str, cols: list[str]) -> pd.DataFrame:
        src = self.src.get(db)
        if src is None:
            return pd.DataFrame(columns=cols)
        try:
            out: pd.DataFrame = src.query(sql, params, doing=what)
            return out
        except SourceUnavailable as exc:
            self.warnings.append(str(exc))
            self.unread.setdefault(db, db)  # a failed query: its absent rows are no evidence
            return pd.DataFrame(columns=cols)

    def _times(self, since: datetime | None) -> dict[str, Any]:
        return {"now_n": _naive(self.now), "now_a": self.now,
                "since_n": _naive(since) if since else None, "since_a": since}

    def bos_candidates(self, since: datetime | None) -> pd.DataFrame:
        steps = _steps()
        ph = _phase_step()
        params = {
            "s_flow": [s.flow for s in steps], "s_state": [s.state for s in steps],
            "s_step": [s.step for s in steps], "s_topic": [s.awaited for s in steps],
            "s_prod": [s.producer for s in steps], "s_dwell": [s.dwell for s in steps],
            "known": sorted({s.state for s in steps}), "failed": list(N.BATCH_FAILED_STATUSES),
            "ready": N.S_READY, "open": list(N.PHASE_LOG_OPEN_STATUSES),
            "ph_failed": N.PHASE_LOG_FAILED_STATUS, "ph_step": ph.step, "ph_topic": ph.awaited,
            "ph_prod": ph.producer, "ph_dwell": ph.dwell, "done_topic": N.T_PIPELINE_COMPLETED,
            "agg": list(N.BOS_AGGREGATE_TYPES),
            **self._times(since)}
        b, psl, ob = _q(N.BATCHES), _q(N.PHASE_STATUS_LOG), _q(N.BOS_OUTBOX)
        sql = f"""
WITH steps AS (
  SELECT * FROM unnest(CAST(:s_flow AS text[]), CAST(:s_state AS text[]), CAST(:s_step AS text[]),
                       CAST(:s_topic AS text[]), CAST(:s_prod AS text[]), CAST(:s_dwell AS float8[]))
         AS s(flow, state, step, awaited, producer, dwell)
), b AS MATERIALIZED (
  SELECT {_c.id}, CAST({_c.status} AS text) AS state, CASE WHEN {_c.class_id} IS NULL THEN 'GUEST' ELSE 'REGULAR' END AS flow,
         {_c.created_at}, {_c.updated_at}, {_c.total_essays}
  FROM {b}
  WHERE CAST(:since_n AS timestamp) IS NULL OR {_c.created_at} >= CAST(:since_n AS timestamp)
), by_step AS (
  SELECT b.{_c.id} AS batch_id, b.flow, b.state, s.step, s.awaited AS awaited_event, s.producer,
         b.{_c.updated_at} AS entered_at, s.dwell AS expected_dwell_s, b.{_c.total_essays} AS essays_expected, b.{_c.created_at}
  FROM b LEFT JOIN steps s ON s.flow = b.flow AND s.state = b.state
  WHERE (s.dwell IS NOT NULL AND b.{_c.updated_at} < CAST(:now_n AS timestamp) - make_interval(secs => s.dwell))
     OR b.state = ANY(CAST(:failed AS text[]))
), last_phase AS (
  SELECT DISTINCT ON (p.{_c.batch_id}) p.{_c.batch_id}, CAST(p.{_c.status} AS text) AS phase_status,
         COALESCE(p.{_c.updated_at}, p.{_c.created_at}) AS at
  FROM {psl} p JOIN b ON b.{_c.id} = p.{_c.batch_id} AND b.state = :ready
  ORDER BY p.{_c.batch_id}, p.{_c.id} DESC
), ph_cand AS MATERIALIZED (
  SELECT b.{_c.id} AS batch_id, b.flow, b.state, CAST(:ph_step AS text) AS step,
         CAST(:ph_topic AS text) AS awaited_event, CAST(:ph_prod AS text) AS producer, lp.at AS entered_at,
         CAST(:ph_dwell AS float8) AS expected_dwell_s, b.{_c.total_essays} AS essays_expected, b.{_c.created_at}
  FROM b JOIN last_phase lp ON lp.{_c.batch_id} = b.{_c.id}
  WHERE lp.phase_status = ANY(CAST(:open AS text[])) AND lp.at < CAST(:now_n AS timestamp)
                                                       - make_interval(secs => CAST(:ph_dwell AS float8))
         OR lp.phase_status = :ph_failed
), in_phase AS (
  SELECT c.* FROM ph_cand c
  WHERE NOT EXISTS (SELECT 1 FROM {ob} o WHERE o.{_c.aggregate_type} = ANY(CAST(:agg AS text[]))
                    AND o.{_c.aggregate_id} = c.batch_id AND o.{_c.topic} = :done_topic)
)
SELECT *, EXTRACT(EPOCH FROM (CAST(:now_n AS timestamp) - entered_at)) AS age_s FROM by_step
UNION ALL
SELECT *, EXTRACT(EPOCH FROM (CAST(:now_n AS timestamp) - entered_at)) AS age_s FROM in_phase
"""
        df = self._run(BOS_DB, sql, params, "scan the batches of", _BOS_CAND_COLS)
        return _norm_bos(df)

    def bos_states(self, since: datetime | None) -> dict[tuple[str, str], int]:
        sql = (f"SELECT CASE WHEN {_c.class_id} IS NULL THEN 'GUEST' ELSE 'REGULAR' END AS flow, "
               f"CAST({_c.status} AS text) AS state, count(*) AS n FROM {_q(N.BATCHES)} "
               f"WHERE CAST(:since_n AS timestamp) IS NULL OR {_c.created_at} >= CAST(:since_n AS timestamp) "
               "GROUP BY 1, 2")
        df = self._run(BOS_DB, sql, self._times(since), "count the batches of", ["flow", "state", "n"])
        return {(str(r["flow"]), str(r["state"])): int(r["n"]) for r in _dict_rows(df)}

    def _els_select(self, where: str) -> str:
        t, e, p, f = _q(N.TRACKERS), _q(N.ESSAY_STATES), _q(N.PENDING_CONTENT), _q(N.VALIDATION_FAILURES)
        return f"""
SELECT t.{_c.batch_id} AS batch_id, true AS tracker, t.{_c.created_at} AS tracker_created_at, t.{_c.expected_count} AS essays_expected,
  (SELECT count(*) FROM {e} e WHERE e.{_c.batch_id} = t.{_c.batch_id}) AS essays,
  (SELECT count(*) FROM {e} e WHERE e.{_c.batch_id} = t.{_c.batch_id} AND e.{_c.text_storage_id} IS NOT NULL) AS essays_assigned,
  (SELECT count(*) FROM {p} p WHERE p.{_c.batch_id} = t.{_c.batch_id}) AS pending_content,
  (SELECT count(*) FROM {f} f WHERE f.{_c.batch_id} = t.{_c.batch_id}) AS validation_failures,
  (SELECT min(f.{_c.validation_error_code}) FROM {f} f WHERE f.{_c.batch_id} = t.{_c.batch_id}) AS failure_code
FROM {t} t WHERE {where}
"""

    def _els_orphans(self, where: str) -> str:
        t, p = _q(N.TRACKERS), _q(N.PENDING_CONTENT)
        return f"""
SELECT p.{_c.batch_id} AS batch_id, false AS tracker, NULL::timestamp AS tracker_created_at, NULL::int AS essays_expected,
       0::bigint AS essays, 0::bigint AS essays_assigned, count(*) AS pending_content,
       0::bigint AS validation_failures, NULL::text AS failure_code
FROM {p} p
WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE t.{_c.batch_id} = p.{_c.batch_id}) AND {where}
GROUP BY p.{_c.batch_id}
"""

    def els_candidates(self, since: datetime | None) -> pd.DataFrame:
        params = {**self._times(since), "dwell": _REGISTERED_DWELL}
        where = (f"t.{_c.completed_at} IS NULL AND t.{_c.created_at} < CAST(:now_n AS timestamp) - make_interval(secs => "
                 f":dwell) AND (CAST(:since_n AS timestamp) IS NULL OR t.{_c.created_at} >= CAST(:since_n AS timestamp))")
        inner = self._els_select(where)
        sql = (f"SELECT * FROM ({inner}) x WHERE x.essays_assigned < x.essays_expected OR x.essays = 0 "
               "OR x.pending_content > 0 OR x.validation_failures > 0")
        owhere = (f"p.{_c.created_at} < CAST(:now_a AS timestamptz) - make_interval(secs => :dwell) AND "
                  f"(CAST(:since_a AS timestamptz) IS NULL OR p.{_c.created_at} >= CAST(:since_a AS timestamptz))")
        sql += " UNION ALL " + self._els_orphans(owhere)
        return _norm_els(self._run(ELS_DB, sql, params, "scan the trackers of", _ELS_COLS))

    def file_candidates(self, since: datetime | None) -> pd.DataFrame:
        fu = _q(N.FILE_UPLOADS)
        sql = f"""
SELECT {_c.batch_id} AS batch_id, count(*) AS files,
       count(*) FILTER (WHERE {_c.processing_status} = :failed) AS files_failed,
       count(*) FILTER (WHERE {_c.processing_status} = ANY(CAST(:open AS text[]))
                          AND {_c.upload_timestamp} < CAST(:now_a AS timestamptz) - make_interval(secs => :dwell))
         AS files_stalled,
       min({_c.validation_error_code}) AS file_error_code, min({_c.upload_timestamp}) AS first_upload_at
FROM {fu}
WHERE CAST(:since_a AS timestamptz) IS NULL OR {_c.upload_timestamp} >= CAST(:since_a AS timestamptz)
GROUP BY {_c.batch_id}
HAVING count(*) FILTER (WHERE {_c.processing_status} = :failed) > 0
    OR count(*) FILTER (WHERE {_c.processing_status} = ANY(CAST(:open AS text[]))
                          AND {_c.upload_timestamp} < CAST(:now_a AS timestamptz) - make_interval(secs => :dwell)) > 0
"""
        params = {**self._times(since), "failed": N.FILE_FAILED_STATUS, "open": list(N.FILE_OPEN_STATUSES),
                  "dwell": _REGISTERED_DWELL}
        return _norm_file(self._run(FILE_DB, sql, params, "scan the uploads of", _FILE_COLS))

    def bos_rows(self, ids: list[str]) -> pd.DataFrame:
        sql = (f"SELECT {_c.id} AS batch_id, CASE WHEN {_c.class_id} IS NULL THEN 'GUEST' ELSE 'REGULAR' END AS flow, "
               f"CAST({_c.status} AS text) AS state, {_c.updated_at} AS entered_at, {_c.total_essays} AS essays_expected "
               f"FROM {_q(N.BATCHES)} WHERE {_c.id} = ANY(CAST(:ids AS text[]))")
        df = self._run(BOS_DB, sql, {"ids": ids}, "read batches of",
                       [F.BATCH_ID, "flow", "state", "entered_at", "essays_expected"])
        if not df.empty:
            df["entered_at"] = pd.to_datetime(df["entered_at"], utc=True)
        return df

    def els_details(self, ids: list[str]) -> pd.DataFrame:
        sql = (self._els_select(f"t.{_c.batch_id} = ANY(CAST(:ids AS text[]))") + " UNION ALL "
               + self._els_orphans(f"p.{_c.batch_id} = ANY(CAST(:ids AS text[]))"))
        df = _norm_els(self._run(ELS_DB, sql, {"ids": ids}, "read trackers of", _ELS_COLS))
        return df.sort_values("tracker", ascending=False).drop_duplicates(F.BATCH_ID)

    def file_details(self, ids: list[str]) -> pd.DataFrame:
        sql = f"""
SELECT {_c.batch_id} AS batch_id, count(*) AS files, count(*) FILTER (WHERE {_c.processing_status} = :failed) AS files_failed,
       0::bigint AS files_stalled, min({_c.validation_error_code}) AS file_error_code,
       min({_c.upload_timestamp}) AS first_upload_at
FROM {_q(N.FILE_UPLOADS)} WHERE {_c.batch_id} = ANY(CAST(:ids AS text[])) GROUP BY {_c.batch_id}
"""
        return _norm_file(self._run(FILE_DB, sql, {"ids": ids, "failed": N.FILE_FAILED_STATUS},
                                    "read uploads of", _FILE_COLS))

    def outbox(self, db: str, ids: list[str], topics: list[str]) -> pd.DataFrame:
        ob = _q((db, model.OUTBOX_TABLE))
        sql = (f"SELECT {_c.aggregate_id} AS batch_id, {_c.topic} AS topic, {_c.published_at} IS NOT NULL AS published, "
               f"{_c.retry_count} FROM {ob} "
               f"WHERE {_c.topic} = ANY(CAST(:topics AS text[])) AND {_c.aggregate_id} = ANY(CAST(:ids AS text[]))")
        return self._run(db, sql, {"ids": ids, "topics": topics}, "read the outbox of", _OUTBOX_COLS)

    def enums(self) -> dict[str, dict[str, list[str]]]:
        if self._enums is not None:  # read once: the classification and the drift section share it
            return self._enums
        out = {}
        for db, src in self.src.items():
            try:
                out[db] = src.enums()
            except SourceUnavailable as exc:
                self.warnings.append(str(exc))
                self.unread.setdefault(db, db)
        self._enums = out
        return out


def _norm_bos(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex(columns=_BOS_CAND_COLS) if not df.empty else pd.DataFrame(columns=_BOS_CAND_COLS)
    for c in ("entered_at", C.CREATED_AT):
        df[c] = pd.to_datetime(df[c], utc=True)
    df["age_s"] = pd.to_numeric(df["age_s"], errors="coerce").astype(float)
    df[F.BATCH_ID] = df[F.BATCH_ID].astype(str).str.lower()
    return df


def _norm_els(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex(columns=_ELS_COLS) if not df.empty else pd.DataFrame(columns=_ELS_COLS)
    df[F.BATCH_ID] = df[F.BATCH_ID].astype(str).str.lower()
    df["tracker_created_at"] = pd.to_datetime(df["tracker_created_at"], utc=True)
    return df


def _norm_file(df: pd.DataFrame) -> pd.DataFrame:
    df = df.reindex(columns=_FILE_COLS) if not df.empty else pd.DataFrame(columns=_FILE_COLS)
    df[F.BATCH_ID] = df[F.BATCH_ID].astype(str).str.lower()
    df["first_upload_at"] = pd.to_datetime(df["first_upload_at"], utc=True)
    return df


class _BundleFacts(_Facts):
    """The same facts from a bundle's tables (pandas); ``now`` is the collection time."""

    where = "in the bundle"

    def __init__(self, bundle: Bundle) -> None:
        self.b = bundle
        self.now = bundle.collected_at
        self.warnings = [f"{g.get('part')}: {g.get('reason')}" for g in bundle.gaps]
        held = set(bundle.tables())
        self.unread = {}
        for db in (BOS_DB, ELS_DB, FILE_DB):
            missing = [t for t in model.DATABASES[db].tables if (db, t) not in held]
            if missing:
                self.unread[db] = _source_name(db, missing)
                self.warnings.append(f"the bundle lacks {db} table(s) {', '.join(missing)}")

    def _t(self, key: tuple[str, str]) -> pd.DataFrame | None:
        df = self.b.table(*key)
        return None if df is None else df.copy()

    def _batches(self, since: datetime | None) -> pd.DataFrame:
        b = self._t(N.BATCHES)
        if b is None or b.empty:
            return pd.DataFrame(columns=[C.ID, "state", "flow", C.CREATED_AT, C.UPDATED_AT, C.TOTAL_ESSAYS])
        b = b.assign(id=b[C.ID].astype(str).str.lower(), state=b[C.STATUS].astype(str),
                     flow=b[C.CLASS_ID].map(lambda v: "GUEST" if v is None or pd.isna(v) else "REGULAR"),
                     created_at=pd.to_datetime(b[C.CREATED_AT], utc=True),
                     updated_at=pd.to_datetime(b[C.UPDATED_AT], utc=True))
        if since is not None:
            b = b[b[C.CREATED_AT] >= pd.Timestamp(since)]
        return b

    def bos_states(self, since: datetime | None) -> dict[tuple[str, str], int]:
        b = self._batches(since)
        if b.empty:
            return {}
        sizes = b.groupby(["flow", "state"]).size()
        return {(str(k[0]), str(k[1])): int(n) for k, n in zip(sizes.index, sizes.to_numpy())}

    def bos_candidates(self, since: datetime | None) -> pd.DataFrame:
        b = self._batches(since)
        now = pd.Timestamp(self.now)
        rows = []
        steps = {(s.flow, s.state): s for s in _steps()}
        ph = _phase_step()
        psl = self._t(N.PHASE_STATUS_LOG)
        ob = self._t(N.BOS_OUTBOX)
        done = set() if ob is None or ob.empty else set(
            ob.loc[ob[C.TOPIC] == N.T_PIPELINE_COMPLETED, C.AGGREGATE_ID].astype(str).str.lower())
        last: dict[str, tuple[str, pd.Timestamp]] = {}
        if psl is not None and not psl.empty:
            p = psl.assign(batch_id=psl[C.BATCH_ID].astype(str).str.lower(),
                           at=pd.to_datetime(psl[C.UPDATED_AT], utc=True).fillna(
                               pd.to_datetime(psl[C.CREATED_AT], utc=True)))
            for r in p.sort_values(C.ID).to_dict("records"):
                last[r[C.BATCH_ID]] = (str(r[C.STATUS]), r["at"])
        for r in b.to_dict("records"):
            s = steps.get((r["flow"], r["state"]))
            base = {F.BATCH_ID: r[C.ID], "flow": r["flow"], "state": r["state"], "essays_expected": r[C.TOTAL_ESSAYS],
                    C.CREATED_AT: r[C.CREATED_AT]}
            if (s is not None and s.dwell is not None and r[C.UPDATED_AT] < now - pd.Timedelta(seconds=s.dwell)) \
                    or r["state"] in N.BATCH_FAILED_STATUSES:
                rows.append({**base, "step": s.step if s else None, "awaited_event": s.awaited if s else None,
                             "producer": s.producer if s else None, "entered_at": r[C.UPDATED_AT],
                             "expected_dwell_s": s.dwell if s else None})
            elif r["state"] == N.S_READY and r[C.ID] in last and r[C.ID] not in done:
                status, at = last[r[C.ID]]
                if (status in N.PHASE_LOG_OPEN_STATUSES and at < now - pd.Timedelta(seconds=ph.dwell or 0)) \
                        or status == N.PHASE_LOG_FAILED_STATUS:
                    rows.append({**base, "step": ph.step, "awaited_event": ph.awaited, "producer": ph.producer,
                                 "entered_at": at, "expected_dwell_s": ph.dwell})
        df = pd.DataFrame(rows, columns=_BOS_CAND_COLS)
        df["entered_at"] = pd.to_datetime(df["entered_at"], utc=True)
        df["age_s"] = (now - df["entered_at"]).dt.total_seconds()
        return _norm_bos(df)

    def _els_frame(self) -> pd.DataFrame:
        t = self._t(N.TRACKERS)
        e = self._t(N.ESSAY_STATES)
        p = self._t(N.PENDING_CONTENT)
        f = self._t(N.VALIDATION_FAILURES)

        def counts(df: pd.DataFrame | None, mask: Any = None) -> pd.Series:
            if df is None or df.empty:
                return pd.Series(dtype="int64")
            d = df if mask is None else df[mask(df)]
            return d[C.BATCH_ID].dropna().astype(str).str.lower().value_counts()

        ne = counts(e)
        na = counts(e, lambda d: d[C.TEXT_STORAGE_ID].notna())
        npc = counts(p)
        nf = counts(f)
        code = (f.assign(batch_id=f[C.BATCH_ID].astype(str).str.lower()).groupby(C.BATCH_ID)[
            C.VALIDATION_ERROR_CODE].min() if f is not None and not f.empty else pd.Series(dtype=object))
        rows = []
        tracked = set()
        if t is not None and not t.empty:
            for r in t.to_dict("records"):
                bid = str(r[C.BATCH_ID]).lower()
                tracked.add(bid)
                rows.append({F.BATCH_ID: bid, "tracker": True, "tracker_created_at": r[C.CREATED_AT],
                             C.COMPLETED_AT: r.get(C.COMPLETED_AT), "essays_expected": r[C.EXPECTED_COUNT],
                             "essays": int(ne.get(bid, 0)), "essays_assigned": int(na.get(bid, 0)),
                             "pending_content": int(npc.get(bid, 0)), "validation_failures": int(nf.get(bid, 0)),
                             "failure_code": code.get(bid)})
        if p is not None and not p.empty:
            p = p.assign(batch_id=p[C.BATCH_ID].astype(str).str.lower(),
                         created_at=pd.to_datetime(p[C.CREATED_AT], utc=True))
            for pending_bid, g in p[~p[C.BATCH_ID].isin(tracked)].groupby(C.BATCH_ID):
                rows.append({F.BATCH_ID: pending_bid, "tracker": False, "tracker_created_at": None, C.COMPLETED_AT: None,
                             "essays_expected": None, "essays": 0, "essays_assigned": 0,
                             "pending_content": len(g), "validation_failures": 0, "failure_code": None,
                             "_first": g[C.CREATED_AT].min()})
        df = pd.DataFrame(rows, columns=_ELS_COLS + [C.COMPLETED_AT, "_first"])
        df["tracker_created_at"] = pd.to_datetime(df["tracker_created_at"], utc=True)
        df[C.COMPLETED_AT] = pd.to_datetime(df[C.COMPLETED_AT], utc=True)
        for c in ("essays_expected", "essays", "essays_assigned", "pending_content", "validation_failures"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
        return df

    def els_candidates(self, since: datetime | None) -> pd.DataFrame:
        df = self._els_frame()
        if df.empty:
            return _norm_els(df)
        limit = pd.Timestamp(self.now) - pd.Timedelta(seconds=_REGISTERED_DWELL)
        tr = df["tracker"].astype(bool)
        created = df["tracker_created_at"].where(tr, pd.to_datetime(df["_first"], utc=True))
        ok = created < limit
        if since is not None:
            ok &= created >= pd.Timestamp(since)
        bad = (~tr) | (df[C.COMPLETED_AT].isna() & (
            (df["essays_assigned"] < df["essays_expected"]) | (df["essays"] == 0) | (df["pending_content"] > 0)
            | (df["validation_failures"] > 0)))
        return _norm_els(df[ok & bad])

    def _file_frame(self) -> pd.DataFrame:
        fu = self._t(N.FILE_UPLOADS)
        if fu is None or fu.empty:
            return pd.DataFrame(columns=_FILE_COLS)
        fu = fu.assign(batch_id=fu[C.BATCH_ID].astype(str).str.lower(),
                       upload_timestamp=pd.to_datetime(fu[C.UPLOAD_TIMESTAMP], utc=True))
        limit = pd.Timestamp(self.now) - pd.Timedelta(seconds=_REGISTERED_DWELL)
        fu["_failed"] = fu[C.PROCESSING_STATUS] == N.FILE_FAILED_STATUS
        fu["_stalled"] = fu[C.PROCESSING_STATUS].isin(N.FILE_OPEN_STATUSES) & (fu[C.UPLOAD_TIMESTAMP] < limit)
        g = fu.groupby(C.BATCH_ID).agg(files=(C.BATCH_ID, "size"), files_failed=("_failed", "sum"),
                                       files_stalled=("_stalled", "sum"),
                                       file_error_code=(C.VALIDATION_ERROR_CODE, "min"),
                                       first_upload_at=(C.UPLOAD_TIMESTAMP, "min")).reset_index()
        return _norm_file(g)

    def file_candidates(self, since: datetime | None) -> pd.DataFrame:
        g = self._file_frame()
        if since is not None and not g.empty:
            g = g[g["first_upload_at"] >= pd.Timestamp(since)]
        return g[(g["files_failed"] > 0) | (g["files_stalled"] > 0)]

    def bos_rows(self, ids: list[str]) -> pd.DataFrame:
        b = self._batches(None)
        b = b[b[C.ID].isin(ids)]
        return pd.DataFrame({F.BATCH_ID: b[C.ID], "flow": b["flow"], "state": b["state"],
                             "entered_at": b[C.UPDATED_AT], "essays_expected": b[C.TOTAL_ESSAYS]})

    def els_details(self, ids: list[str]) -> pd.DataFrame:
        df = self._els_frame()
        return _norm_els(df[df[F.BATCH_ID].isin(ids)])

    def file_details(self, ids: list[str]) -> pd.DataFrame:
        g = self._file_frame()
        return g[g[F.BATCH_ID].isin(ids)]

    def outbox(self, db: str, ids: list[str], topics: list[str]) -> pd.DataFrame:
        ob = self._t((db, model.OUTBOX_TABLE))
        if ob is None or ob.empty:
            return pd.DataFrame(columns=_OUTBOX_COLS)
        ob = ob.assign(batch_id=ob[C.AGGREGATE_ID].astype(str).str.lower())
        ob = ob[ob[C.TOPIC].isin(topics) & ob[F.BATCH_ID].isin(ids)]
        return pd.DataFrame({F.BATCH_ID: ob[F.BATCH_ID], "topic": ob[C.TOPIC],
                             "published": ob[C.PUBLISHED_AT].notna(), C.RETRY_COUNT: ob[C.RETRY_COUNT]})

    def enums(self) -> dict[str, dict[str, list[str]]]:
        return self.b.enums


# ----------------------------------------------------------------------------------- classification
def _int(v: Any) -> int | None:
    try:
        return None if v is None or pd.isna(v) else int(v)
    except (TypeError, ValueError):
        return None


def _not_assessed(states: dict[tuple[str, str], int]) -> dict[str, int]:
    """The batches in a state the model does not describe as a step of their flow (nor a failed state),
    by state: the scan has no dwell for them, so it cannot say stuck or not."""
    described = {(s.flow, s.state) for s in _steps()}
    out: dict[str, int] = {}
    for (flow, state), n in states.items():
        if (flow, state) not in described and state not in N.BATCH_FAILED_STATUSES:
            out[state] = out.get(state, 0) + n
    return out


def _classify(facts: _Facts, since: datetime | None,
              say: Progress) -> tuple[pd.DataFrame, int, dict[str, int]]:
    say(f"BOS: classifying every batch {facts.where} …")
    bos = facts.bos_candidates(since)
    states = facts.bos_states(since)
    total = sum(states.values())
    not_assessed = _not_assessed(states)
    say(f"BOS: {total} batch(es), {len(bos)} past their step's dwell or failed"
        + (f", {sum(not_assessed.values())} in a state the model does not describe (not assessed)"
           if not_assessed else ""))
    say("ELS: trackers, essays, pending content, validation failures …")
    els = facts.els_candidates(since)
    say(f"ELS: {len(els)} incomplete tracker(s) past the registration dwell")
    say("File Service: uploads …")
    files = facts.file_candidates(since)
    say(f"File Service: {len(files)} batch(es) with failed or stalled uploads")

    cand = list(dict.fromkeys([*bos[F.BATCH_ID], *els[F.BATCH_ID], *files[F.BATCH_ID]]))
    in_bos = set(bos[F.BATCH_ID])
    other = [i for i in cand if i not in in_bos]
    # an id ELS or the File Service flags but BOS holds and does not flag: BOS is authoritative
    bos_known = facts.bos_rows(other) if other and facts.has(BOS_DB) else pd.DataFrame(columns=[F.BATCH_ID])
    healthy_in_bos = set(bos_known[F.BATCH_ID].astype(str).str.lower())
    only_elsewhere = [i for i in other if i not in healthy_in_bos]
    ids = [*bos[F.BATCH_ID], *only_elsewhere]
    total += len(only_elsewhere)
    say(f"joining {len(ids)} candidate(s) across the databases …")
    if not ids:
        return pd.DataFrame(columns=list(BATCH_COLUMNS)), total, not_assessed

    ed = {r[F.BATCH_ID]: r for r in _dict_rows(facts.els_details(ids))} if facts.has(ELS_DB) else {}
    fd = {r[F.BATCH_ID]: r for r in _dict_rows(facts.file_details(ids))} if facts.has(FILE_DB) else {}
    awaited: dict[tuple[str, str], tuple[bool, int]] = {}
    by_prod: dict[str, tuple[list[str], set[str]]] = {}
    for r in _dict_rows(bos):
        db = _PRODUCER_DB.get(str(r["producer"]))
        if db and r["awaited_event"]:
            by_prod.setdefault(db, ([], set()))[0].append(r[F.BATCH_ID])
            by_prod[db][1].add(r["awaited_event"])
    for db, (bids, topics) in by_prod.items():
        if not facts.has(db):
            continue
        ob = facts.outbox(db, bids, sorted(topics))
        for o in ob.to_dict("records"):
            k = (str(o[F.BATCH_ID]).lower(), str(o["topic"]))
            pub, retries = awaited.get(k, (False, 0))
            awaited[k] = (pub or bool(o["published"]), max(retries, _int(o[C.RETRY_COUNT]) or 0))
    enums = facts.enums()

    rows = []
    elsewhere: list[dict[str, Any]] = [{F.BATCH_ID: i} for i in only_elsewhere]
    for r in [*_dict_rows(bos), *elsewhere]:
        bid = r[F.BATCH_ID]
        e = ed.get(bid) or {}
        f = fd.get(bid) or {}
        row: dict[str, Any] = {c: r.get(c) for c in BATCH_COLUMNS if c in r}
        row.setdefault("flow", None)
        row.setdefault("state", None)
        row["known_to"] = ", ".join(db for db, ok in ((BOS_DB, bid in in_bos),
                                                      (ELS_DB, bool(e)), (FILE_DB, bool(f))) if ok)
        row["essays_expected"] = _int(r.get("essays_expected")) if _int(r.get("essays_expected")) is not None \
            else _int(e.get("essays_expected"))
        row["essays"] = _int(e.get("essays"))
        row["essays_assigned"] = _int(e.get("essays_assigned"))
        row["pending_content"] = _int(e.get("pending_content"))
        row["validation_failures"] = _int(e.get("validation_failures"))
        row["files"] = _int(f.get("files"))
        row["files_failed"] = _int(f.get("files_failed"))
        prod_db = _PRODUCER_DB.get(str(r.get("producer")))
        if not r.get("awaited_event"):
            row["outbox_row"] = "-"
        elif prod_db is None or not facts.has(prod_db):
            row["outbox_row"] = "not read"  # the producer's outbox is not scanned (CMS, gateway) or unreadable
        else:
            hit = awaited.get((bid, str(r["awaited_event"])))
            row["outbox_row"] = "missing" if hit is None else ("published" if hit[0] else "unpublished")
        if bid not in in_bos:
            first = [t for t in (e.get("tracker_created_at"), f.get("first_upload_at")) if t is not None
                     and not pd.isna(t)]
            row["entered_at"] = min(first) if first else pd.NaT
            row["age_s"] = (pd.Timestamp(facts.now) - row["entered_at"]).total_seconds() if first else None
        row["error_class"] = _error_class(row, r, e, f, awaited, enums, facts.unread)
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(BATCH_COLUMNS))
    df["entered_at"] = pd.to_datetime(df["entered_at"], utc=True)
    df = _typed(df)
    df = df.sort_values(["entered_at", F.BATCH_ID], kind="stable", na_position="first").reset_index(drop=True)
    return df, total, not_assessed


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("age_s", "expected_dwell_s"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    for c in ("essays_expected", "essays", "essays_assigned", "pending_content", "validation_failures", "files",
              "files_failed"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    return df


def _outbox_source(producer: str | None, unread: dict[str, str]) -> str:
    """The outbox a producer writes, as ``unknown.not_read`` names it (the scan reads BOS, ELS, File only)."""
    svc = model.SERVICES.get(str(producer))
    db = svc.database if svc is not None else None
    if db is None:
        return f"{producer or '?'} (no database)"
    return unread.get(db, f"{db}.{model.OUTBOX_TABLE}")


def _error_class(row: dict[str, Any], r: dict[str, Any], e: dict[str, Any], f: dict[str, Any],
                 awaited: dict[tuple[str, str], tuple[bool, int]], enums: dict[str, dict[str, list[str]]],
                 unread: dict[str, str]) -> str:
    """The evidence-backed reason class of one stuck batch (first match wins; :data:`ERROR_CLASSES`).

    A class that rests on an absent row (no BOS row, no tracker, no outbox row) is given only when the
    table was read; otherwise the class is ``unknown.not_read:<source>``. No class rests on logs.
    """
    def not_read(db: str) -> str:
        return f"{NOT_READ}:{unread.get(db, db)}"

    if not row.get("state"):
        return not_read(BOS_DB) if BOS_DB in unread else "bos.batch_row_missing"
    if row["state"] in N.BATCH_FAILED_STATUSES:
        return f"batch.{row['state']}"
    missing = _enum_missing(r.get("step"), _next_step(row.get("flow"), r.get("step")), enums, unread)
    if missing:
        return missing
    if row["outbox_row"] == "unpublished":
        hit = awaited.get((row[F.BATCH_ID], str(r.get("awaited_event"))))
        exhausted = hit is not None and hit[1] >= N.OUTBOX_MAX_RETRIES
        return "outbox.unpublished" + (".retries_exhausted" if exhausted else "")
    if row["outbox_row"] == "published":
        return "outbox.published.state_not_advanced"
    if (row.get("validation_failures") or 0) > 0:
        return f"validation.failures:{e.get('failure_code') or '?'}"
    if (row.get("files_failed") or 0) > 0:
        return f"file.upload_failed:{f.get('file_error_code') or '?'}"
    no_row = row["outbox_row"] == "missing"  # the producer's outbox was read and has no awaited row
    if r.get("step") == _STEP_OF_PHASES:
        return "phase.no_outcome" if no_row else f"{NOT_READ}:{_outbox_source(r.get('producer'), unread)}"
    if ELS_DB in unread:  # every class below rests on ELS rows, or on their absence
        return not_read(ELS_DB)
    if not e or not e.get("tracker"):
        return "els.tracker_missing"
    if (row.get("essays") or 0) == 0:
        return "els.no_essay_rows"
    if (row.get("pending_content") or 0) > 0:
        return "els.orphaned_content"
    if row.get("essays_expected") is not None and (row.get("essays_assigned") or 0) < row["essays_expected"]:
        return "els.content_incomplete"
    if no_row:
        return "event.not_produced"
    if row["outbox_row"] == "not read":
        return f"{NOT_READ}:{_outbox_source(r.get('producer'), unread)}"
    return f"{UNKNOWN}.no_cause_in_rows"


def _groups(batches: pd.DataFrame) -> pd.DataFrame:
    if batches.empty:
        return pd.DataFrame(columns=list(GROUP_COLUMNS))
    d = batches.assign(_aw=batches["awaited_event"].fillna("-"), _st=batches["state"].fillna("-"))
    g = d.groupby(["_st", "_aw", "error_class"], sort=False, dropna=False).agg(
        count=(F.BATCH_ID, "size"), first_at=("entered_at", "min"), last_at=("entered_at", "max"),
        oldest_age_s=("age_s", "max"), example_batch=(F.BATCH_ID, "first")).reset_index()
    g = g.rename(columns={"_st": "state", "_aw": "awaited_event"})
    g["signature"] = g["state"] + " | " + g["awaited_event"] + " | " + g["error_class"]
    g["error_class_means"] = [error_class_meaning(c) for c in g["error_class"]]
    g = g.sort_values(["count", "first_at"], ascending=[False, True], kind="stable")
    return g[list(GROUP_COLUMNS)].reset_index(drop=True)


def _say(progress: Progress | bool | None) -> Progress:
    if callable(progress):
        return progress
    if progress:
        return lambda m: print(f"[scan] {m}", file=sys.stderr, flush=True)
    return lambda m: None


# ------------------------------------------------------------------------------------------ entry points
def scan_profile(profile: Any, *, since: datetime | str | None = None, progress: Progress | bool | None = None,
                 at: datetime | None = None, statement_timeout_ms: int | None = None) -> ScanResult:
    """Scan every batch of the live stack ``profile`` points at (read-only); return the stuck ones.

    Args:
        profile: a :class:`~huledu_forensics.profiles.Profile` (from ``profiles.load_profile``).
        since: only batches registered at or after this time (aware UTC, or ISO text).
        progress: a callable taking one line, or ``True`` to print ``[scan] ...`` lines on stderr.
        at: measure ages to this time instead of the BOS server's clock (tests, replays).
        statement_timeout_ms: per-statement timeout (default: the source's 15 s).

    Raises:
        SourceUnavailable: no database of the profile can be reached.
        ConfigError: ``since`` is not a time.
    """
    from .sources.postgres import PostgresSource

    say = _say(progress)
    t_since = parse_option_time(since, "since")
    sources: dict[str, Any] = {}
    warnings: list[str] = []
    unread: dict[str, str] = {}
    for db in (BOS_DB, ELS_DB, FILE_DB):
        target = profile.databases.get(db) if hasattr(profile.databases, "get") else None
        if target is None:
            warnings.append(f"profile '{profile.name}' has no database {db}; not scanned")
            continue
        kw: dict[str, Any] = {"statement_timeout_ms": statement_timeout_ms} if statement_timeout_ms else {}
        try:
            src = PostgresSource(f"postgres:{db}", db, target.url(), **kw)
            tables = set(src.tables())
        except (SourceUnavailable, ConfigError) as exc:
            warnings.append(str(exc))
            say(f"{db}: unreachable ({target.masked_dsn()})")
            continue
        missing = [t for t in model.DATABASES[db].tables if t not in tables]
        if missing:
            warnings.append(f"{db} lacks table(s) {', '.join(missing)}; not scanned")
            unread[db] = _source_name(db, missing)
            src.close()
            continue
        sources[db] = src
        say(f"{db}: connected")
    if not sources:
        raise SourceUnavailable(f"No database of profile '{profile.name}' could be scanned: "
                                + "; ".join(warnings), source="postgres")
    try:
        facts = _PgFacts(sources, at, unread)
        batches, total, not_assessed = _classify(facts, t_since, say)
        drift, enums_not_read = _enum_drift(facts.enums())
        warnings += facts.warnings
    finally:
        for src in sources.values():
            src.close()
    groups = _groups(batches)
    say(f"done: {total} batch(es), {len(batches)} stuck in {len(groups)} group(s)")
    return ScanResult(batches=batches, groups=groups, total=total, scanned_at=facts.now, since=t_since,
                      source={"kind": "live", "profile": profile.name}, warnings=warnings,
                      not_assessed=not_assessed, enum_drift=drift, enums_not_read=enums_not_read)


def scan_bundle(bundle: str | Path | Bundle, *, since: datetime | str | None = None,
                progress: Progress | bool | None = None) -> ScanResult:
    """Scan every batch an evidence bundle holds, the same way as :func:`scan_profile` (ages to collection).

    Raises:
        BundleNotFound, BundleInvalid: the bundle cannot be read.
    """
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    say = _say(progress)
    t_since = parse_option_time(since, "since")
    facts = _BundleFacts(b)
    batches, total, not_assessed = _classify(facts, t_since, say)
    drift, enums_not_read = _enum_drift(facts.enums())
    groups = _groups(batches)
    return ScanResult(batches=batches, groups=groups, total=total, scanned_at=facts.now, since=t_since,
                      source={"kind": "bundle", "bundle": str(b.path)}, warnings=facts.warnings,
                      not_assessed=not_assessed, enum_drift=drift, enums_not_read=enums_not_read)


# ----------------------------------------------------------------------------------- report helpers
def overview_frame(result: ScanResult) -> pd.DataFrame:
    """The scan's stuck batches in :data:`huledu_forensics.overview.OVERVIEW_COLUMNS` form.

    So the stuck-batches notebook's figure and root-cause table work on a live scan too; the error class
    stands in for the root cause (a scan runs no rules), and a batch whose class is ``unknown.*`` has
    status ``unknown``, not stuck.
    """
    from .overview import OVERVIEW_COLUMNS

    b = result.batches
    df = pd.DataFrame({
        F.BATCH_ID: b[F.BATCH_ID], "flow": b["flow"],
        "status": [_status(s, c) for s, c in zip(b["state"], b["error_class"])],
        "current_state": b["state"], "current_step": b["step"], "awaited_event": b["awaited_event"],
        "waited_s": b["age_s"], "root_cause": b["error_class"],
        "root_cause_summary": [f"scan, not investigated: {error_class_meaning(c)}" for c in b["error_class"]],
        "findings": pd.array([None] * len(b), dtype="Int64"), "registered_at": pd.NaT,
        "known_to": b["known_to"], "error": ""}, columns=list(OVERVIEW_COLUMNS))
    df["registered_at"] = pd.to_datetime(df["registered_at"], utc=True)
    return df.sort_values("waited_s", ascending=False, kind="stable").reset_index(drop=True)


def _status(state: Any, error_class: Any) -> str:
    if str(error_class).startswith(f"{UNKNOWN}."):
        return UNKNOWN
    return "failed" if str(state) in N.BATCH_FAILED_STATUSES else "stuck"


NOT_STUCK_MEANS = ("no row the scan read puts the batch past its step's expected dwell or in a failed state: "
                   "BOS updated it within the dwell, or its step has no expected dwell (waiting for the client)")
"""What the scan's ``not stuck`` count states (verdict.json ``not_stuck_means``)."""

NOT_ASSESSED_MEANS = ("the batch's BOS state is not a step the model describes for its flow, so the scan has no "
                      "dwell to hold it to: neither stuck nor healthy; open the batch's own report")
"""What the scan's ``not assessed`` count states (verdict.json ``not_assessed_means``)."""


def scan_verdict(result: ScanResult, overview: ScanOverview | None = None) -> dict[str, Any]:
    """A ``verdict.json`` for a scan: healthy only when every source was read, every batch assessed and
    no batch is listed.

    ``status`` is ``stuck`` when a batch is stuck or failed, else ``unknown`` when a batch could not be
    classified, a source was not read or a batch's state is one the model does not describe (counted as
    ``not_assessed``, by state in ``not_assessed_states``), else ``healthy``. Each group carries what its error class
    states (``error_class_means``) and, with ``overview`` (:func:`huledu_forensics.overview.scan_overview`),
    ``investigated``: the root cause found by investigating ONE representative batch of the group (logs
    and rows), which the group's other batches share by signature only (``None``: nobody investigated).
    ``huledu-forensics report`` derives its exit code from it as from a batch verdict.
    """
    sure = result.stuck - result.unknown
    status = "stuck" if sure else (UNKNOWN if result.unknown or not result.complete or result.not_assessed
                                   else "healthy")
    groups = _records(result.groups)
    reps = overview.representatives if overview is not None else {}
    verdicts = overview.verdicts if overview is not None else {}
    for g in groups:
        if overview is not None:
            g["investigated"] = _investigated(reps.get(str(g["signature"])), verdicts, int(g["count"]))
    return {"tool": "huledu-forensics", "kind": "scan", "healthy": status == "healthy", "status": status,
            "scanned_at": result.scanned_at.isoformat(), "total": int(result.total), "stuck": result.stuck,
            "unknown": result.unknown, "not_stuck": result.not_stuck,
            "not_stuck_means": NOT_STUCK_MEANS, "not_assessed": result.not_assessed_count,
            "not_assessed_states": dict(result.not_assessed), "not_assessed_means": NOT_ASSESSED_MEANS,
            "completeness": {"scan": "complete" if result.complete else "partial"},
            "warnings": list(result.warnings), "groups": groups,
            "enum_drift": [dict(d) for d in result.enum_drift], "enums_not_read": list(result.enums_not_read)}


def _investigated(rep: str | None, verdicts: Mapping[str, Any], count: int) -> dict[str, Any] | None:
    """One group's investigated root cause, marked as found on one representative batch."""
    if not rep:
        return None
    v = verdicts.get(rep) or {}
    rc = v.get("root_cause") or {}
    return {F.BATCH_ID: rep, "scope": f"investigated for this one representative batch; the group's other "
                                      f"{count - 1} batch(es) share its signature and were not investigated",
            "status": v.get("status"), "root_cause": rc.get("finding"), "root_cause_summary": rc.get("summary"),
            "completeness": v.get("completeness")}


def write_scan_verdict(path: str | Path | None, result: ScanResult,
                       overview: ScanOverview | None = None) -> str | None:
    """Write :func:`scan_verdict` (with ``overview``: each group's investigated root cause) to ``path``
    atomically (nothing when ``path`` is empty)."""
    if not path:
        return None
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(scan_verdict(result, overview), indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return str(p)


def run_scan_report(scan_dir: str | Path, out_dir: str | Path, *, notebook: str | Path = "stuck_batches",
                    timeout_s: float = 600, progress: bool = False) -> Any:
    """Run the stuck-batches notebook on a written scan (no bundle, no id); return a ``ReportResult``.

    Writes ``verdict.json`` (:func:`scan_verdict`), ``report.ipynb`` and ``report.html`` into ``out_dir``.

    Raises:
        ReportError: the notebook has no ``scan`` parameter or a cell failed.
    """
    from . import report as R

    R._papermill()
    from papermill.exceptions import PapermillExecutionError

    from .errors import ReportError

    scan_json = Path(scan_dir) / SCAN_FILES["json"] if Path(scan_dir).is_dir() else Path(scan_dir)
    load_scan(scan_json)  # bad input fails here, before a kernel starts
    nb_path = R.resolve_notebook(notebook)
    declared = R.notebook_parameters(nb_path)
    if "scan" not in declared:
        raise ReportError(f"Notebook '{nb_path.name}' has no 'scan' parameter, so it cannot run on a scan; "
                          "use --notebook stuck_batches or pass --id.", notebook=str(nb_path))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = R.ReportResult(out_dir=out, verdict_path=out / R.REPORT_FILES["verdict"],
                            notebook_path=out / R.REPORT_FILES["notebook"], html_path=out / R.REPORT_FILES["html"],
                            bundle_path=None)
    for name in R.REPORT_FILES.values():
        (out / name).unlink(missing_ok=True)
    params = {"scan": str(scan_json.resolve()), "verdict_path": str(result.verdict_path.resolve())}
    try:
        R.execute_notebook(nb_path, result, params, timeout_s=timeout_s, progress=progress)
    except PapermillExecutionError as exc:
        R._try_export(result)
        raise ReportError(f"Notebook '{nb_path.name}' failed: {exc.ename}: "
                          f"{(exc.evalue or '').strip().splitlines()[0] if exc.evalue else ''}. See "
                          f"{result.notebook_path}.", notebook=str(nb_path)) from exc
    R._try_export(result)
    if not result.verdict_path.is_file():
        raise ReportError(f"Notebook '{nb_path.name}' wrote no {R.REPORT_FILES['verdict']}.", notebook=str(nb_path))
    result.verdict = json.loads(result.verdict_path.read_text(encoding="utf-8"))
    return result
