"""Enum drift: database enum types that lack values the services write (SYSTEM.md §1.1, §8.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import pandas as pd

from .. import model
from ..evidence import records
from ..model import handlers as H
from ._engine import Context, EvidenceRef, Finding, rule

__all__ = ["EnumDrift", "enum_drift", "enum_rejections"]

_REJECT = re.compile(re.escape(model.names.M_PG_INVALID_ENUM) + r' (\w+): "([^"]*)"')
_LINK_WINDOW_S = 3.0


def enum_rejections(ctx: Context) -> pd.DataFrame:
    """Database-log lines where PostgreSQL rejected an enum value, with the database, enum, value
    and whether a scoped service error happened within a few seconds (``linked``)."""
    dbl = ctx.ev.db_logs
    cols = ["ts", "container", "database", "enum", "value", "linked", "ref", "detail"]
    if dbl.empty:
        return pd.DataFrame(columns=cols)
    hits = dbl[dbl["message"].astype(str).str.contains(model.names.M_PG_INVALID_ENUM, regex=False)]
    db_by_container = {d.container: d.name for d in model.DATABASES.values()}
    svc_by_db = {d.name: d.service for d in model.DATABASES.values()}
    errs = ctx.ev.logs
    errs = errs.loc[errs["level"].isin(["error", "critical"]), ["service", "ts"]] if not errs.empty else errs
    rows = []
    for r in hits.pipe(records):
        m = _REJECT.search(str(r.get("message")))
        if not m:
            continue
        db = db_by_container.get(str(r.get("container")))
        linked = False
        if db is not None and not errs.empty:
            near = (errs["service"] == svc_by_db.get(db)) & (
                (errs["ts"] - cast(pd.Timestamp, r["ts"])).abs() <= pd.Timedelta(seconds=_LINK_WINDOW_S))
            linked = bool(near.any())
        rows.append({"ts": r["ts"], "container": r.get("container"), "database": db,
                     "enum": m.group(1), "value": m.group(2), "linked": linked,
                     "ref": f"{r.get('source_file')}#L{r.get('line_no')}", "detail": r.get("detail")})
    return pd.DataFrame(rows, columns=cols)


def _path_link(ctx: Context, w: model.EnumWrite, passed: bool) -> str:
    """"path" when the batch went through the step that makes the write and the writer acted on it
    there (a handling run of the write's event, or no logs of the writer to tell); "awaited" when the
    write is still ahead; "none" when the writer's container never ran (so no write was made)."""
    loop = H.CONSUMER_LOOPS.get(w.writer)
    if loop is not None:
        c = ctx.ev.container_state(loop.container)
        if c is not None and c.state in ("created", "missing"):
            return "none"
    if not passed:
        return "awaited"
    if loop is None or not ctx.ev.has(f"logs:{loop.container}") or w.topic is None:
        return "path"
    runs = ctx.ev.runs
    acted = not runs.empty and bool(((runs["service"] == w.writer) & (runs["topic"] == w.topic)).any())
    return "path" if acted else "awaited"


@rule("enum.label_missing", severity="critical", needs=("enums",),
      explains=("db.enum_value_rejected", "consumer.handler_failed",
                "tracker.registered_without_essays", "tracker.missing", "event.not_produced",
                "event.dropped", "status.write_failed"))
def label_missing(ctx: Context) -> list[Finding]:
    """A database enum type lacks a value its service writes.

    **Fires when** a label set collected from ``pg_enum`` (or the DDL) lacks a value that
    ``model.ENUM_WRITES`` says a service writes. Critical when the write sits on the batch's path at or
    before the awaited step, or PostgreSQL was seen rejecting it for this batch; a warning when the
    write lies further along the path; info when the batch's flow never writes it.
    **Evidence** the enum label set; the database log lines rejecting the value.
    **Usually means** the database was built by Alembic before the catch-up migrations and
    ``create_all`` never alters existing types: every INSERT/UPDATE with that value fails.
    """
    out: list[Finding] = []
    flow = model.FLOWS[ctx.progress.flow]
    path = [s.id for s in flow.steps]
    cur = ctx.progress.current_step
    nxt_i = (path.index(cur) + 1) if cur in path else 0
    cur_i = path.index(cur) if cur in path else -1
    rej = enum_rejections(ctx)
    for w in model.ENUM_WRITES:
        labels = ctx.ev.enums.get(w.database, {}).get(w.enum)
        if labels is None or w.value in labels:
            continue
        phase_value = w.enum == "pipeline_phase_enum"
        phase = w.phase or (w.value if phase_value else None)
        on_path = w.step in path and (phase is None or phase in ctx.progress.requested_pipelines)
        mine = rej[(rej["enum"] == w.enum) & (rej["value"] == w.value)] if not rej.empty else rej
        linked = mine[mine["linked"]] if not mine.empty else mine
        if on_path and (path.index(w.step) <= nxt_i or not linked.empty):
            sev = "critical"
        elif on_path:
            sev = "warning"
        else:
            sev = "info"
        ev = [EvidenceRef("enums.json", f"{w.database}.{w.enum}",
                          note=f"{len(labels)} labels, '{w.value}' absent")]
        ev += [EvidenceRef.parse(str(r["ref"]), r["ts"], "PostgreSQL rejected the value")
               for r in (linked if not linked.empty else mine).head(5).pipe(records)]
        svc = model.SERVICES[w.writer].title
        out.append(Finding(
            id="enum.label_missing", severity=sev,
            title="A database enum lacks a value its service writes",
            summary=(f"The {w.database} enum type {w.enum} lacks '{w.value}' ({len(labels)} labels), "
                     f"which {svc} writes into {w.table}: {w.effect}."
                     + (f" PostgreSQL rejected it {len(mine)} time(s) in the window, "
                        f"{len(linked)} next to this batch's errors." if not mine.empty else "")),
            evidence=ev,
            facts={"database": w.database, "enum": w.enum, "missing_value": w.value,
                   "labels": list(labels), "writer": w.writer, "table": w.table, "step": w.step,
                   "topic": w.topic, "rejections": int(len(mine)), "linked_rejections": int(len(linked)),
                   "on_path": on_path, "step_index": path.index(w.step) if w.step in path else 99,
                   "service": w.writer,
                   # how this drift is tied to the batch: PostgreSQL rejected this batch's write
                   # ("batch"); the batch went through the step that makes the write, so its write
                   # hit the gap ("path"); the write lies on the transition the batch waits for and
                   # was not made yet ("awaited"); or neither
                   "link": ("batch" if not linked.empty else
                            _path_link(ctx, w, path.index(w.step) <= cur_i)
                            if sev == "critical" else "none")},
            explanation=w.source,
        ))
    return out


@dataclass(frozen=True)
class EnumDrift:
    """One enum type's label set compared with the label set the model declares for it.

    Attributes:
        database, enum: where the enum type lives.
        labels: the labels the database holds, in its order.
        missing_known: declared labels the database lacks that a known step writes (``model.ENUM_WRITES``).
        missing_unknown: declared labels the database lacks that no known write places on a step.
        extra: labels the database holds that the model does not declare.
    """

    database: str
    enum: str
    labels: tuple[str, ...]
    missing_known: tuple[str, ...]
    missing_unknown: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        """Whether the label set differs from the declared one (a label missing or extra)."""
        return bool(self.missing_known or self.missing_unknown or self.extra)


def enum_drift(enums: Mapping[str, Mapping[str, Sequence[str]]]) -> list[EnumDrift]:
    """Compare every enum in ``enums`` (database -> enum type -> labels, as ``pg_enum`` or the DDL gives
    them) whose label set the model declares (``model.PYTHON_ENUMS``) with that declared set, in
    (database, enum) order; enums the model does not declare are left out. The one comparison the
    enum rules and the fleet scan share."""
    known = {(w.database, w.enum, w.value) for w in model.ENUM_WRITES}
    out = []
    for db, types in sorted(enums.items()):
        for enum, labels in sorted(types.items()):
            declared = model.PYTHON_ENUMS.get((db, enum))
            if declared is None:
                continue
            held = tuple(str(x) for x in labels)
            missing = [x for x in declared if x not in held]
            out.append(EnumDrift(db, enum, held,
                                 missing_known=tuple(x for x in missing if (db, enum, x) in known),
                                 missing_unknown=tuple(x for x in missing if (db, enum, x) not in known),
                                 extra=tuple(x for x in held if x not in declared)))
    return out


@rule("enum.label_missing_unknown_step", severity="warning", needs=("enums",),
      explains=("db.enum_value_rejected",))
def label_missing_unknown_step(ctx: Context) -> list[Finding]:
    """A database enum type lacks a label the model declares, and the kit does not know which step writes it.

    **Fires when** a label set collected from ``pg_enum`` (or the DDL) lacks a label of the model's
    declared set for that enum (``model.PYTHON_ENUMS``) that no ``model.ENUM_WRITES`` entry places on a
    step (those are ``enum.label_missing``). One finding per enum, naming every such label. A warning
    carried as a caveat: the batch's verdict is not changed by it, but a healthy verdict says it.
    **Evidence** the enum label set.
    **Usually means** the database was built by Alembic before the catch-up migrations (or a
    migration was skipped): any batch of the service may fail when it reaches the step that writes
    the label, and the kit cannot say which step that is.
    """
    out: list[Finding] = []
    for d in enum_drift(ctx.ev.enums):
        db, enum, labels, missing = d.database, d.enum, list(d.labels), list(d.missing_unknown)
        if not missing:
            continue
        svc = model.DATABASES[db].service if db in model.DATABASES else None
        title = model.SERVICES[svc].title if svc in model.SERVICES else db
        shown = ", ".join(f"'{x}'" for x in missing[:8]) + (f" and {len(missing) - 8} more"
                                                            if len(missing) > 8 else "")
        out.append(Finding(
            id="enum.label_missing_unknown_step", severity="warning",
            title="A database enum lacks declared labels no known step writes",
            summary=(f"The {db} enum type {enum} lacks {len(missing)} label(s) the model declares: {shown}. "
                     f"The kit does not know which step writes them, so any {title} batch may fail when "
                     "it gets there."),
            evidence=[EvidenceRef("enums.json", f"{db}.{enum}",
                                  note=f"{len(labels)} labels, {len(missing)} declared ones absent")],
            facts={"database": db, "enum": enum, "missing_values": missing, "labels": labels,
                   "service": svc, "link": "none", "caveat": True},
        ))
    return out


@rule("enum.label_extra", severity="info", needs=("enums",), explains=())
def label_extra(ctx: Context) -> list[Finding]:
    """A database enum type has labels the model does not declare.

    **Fires when** a label set collected from ``pg_enum`` (or the DDL) holds labels outside the model's
    declared set for that enum (``model.PYTHON_ENUMS``). Always info: an extra label breaks no write.
    Labels of the Alembic initial schema (``model.ALEMBIC_INITIAL_ENUMS``) are named as legacy ones.
    **Evidence** the enum label set.
    **Usually means** legacy labels left by the Alembic history (PostgreSQL cannot drop enum labels);
    otherwise the database is newer than the kit's model, which may need the new labels.
    """
    out: list[Finding] = []
    for d in enum_drift(ctx.ev.enums):
        db, enum, extra = d.database, d.enum, list(d.extra)
        if not extra:
            continue
        initial = model.ALEMBIC_INITIAL_ENUMS.get((db, enum), ())
        legacy = [x for x in extra if x in initial]
        unknown = [x for x in extra if x not in initial]
        parts = []
        if unknown:
            parts.append(f"{', '.join(repr(x) for x in unknown)} the model does not know: the model may be "
                         "older than the database")
        if legacy:
            parts.append(f"{len(legacy)} legacy label(s) of the Alembic initial schema "
                         f"({', '.join(repr(x) for x in legacy)}), which the code no longer writes")
        out.append(Finding(
            id="enum.label_extra", severity="info",
            title="A database enum has labels the model does not declare",
            summary=f"The {db} enum type {enum} has " + "; and ".join(parts) + ".",
            evidence=[EvidenceRef("enums.json", f"{db}.{enum}", note=f"{len(extra)} undeclared labels")],
            facts={"database": db, "enum": enum, "extra_values": extra, "unknown_values": unknown,
                   "legacy_values": legacy, "link": "none"},
        ))
    return out


@rule("db.enum_value_rejected", severity="error", needs=("db_logs",),
      explains=("consumer.handler_failed", "tracker.registered_without_essays", "tracker.missing",
                "status.write_failed"))
def enum_value_rejected(ctx: Context) -> list[Finding]:
    """PostgreSQL rejected an enum value while this batch was being handled.

    **Fires when** a database container logged ``invalid input value for enum`` within a few seconds of
    an error logged by the same service for this batch (info when only other batches were affected).
    **Evidence** the PostgreSQL ERROR line with its STATEMENT; the service's error line. Without the
    log of a database whose enum lacks a written value, the rule is reported not evaluated for it.
    **Usually means** enum drift; the service log shows only ``DBAPIError`` and the real text is here.
    """
    for drifted in sorted({w.database for w in model.ENUM_WRITES
                           if (labels := ctx.ev.enums.get(w.database, {}).get(w.enum)) is not None
                           and w.value not in labels}):
        container = model.DATABASES[drifted].container
        if not ctx.ev.has(f"logs:{container}"):  # its rejections would be logged there and only there
            ctx.not_evaluated("db.enum_value_rejected",
                              f"missing from the bundle: logs:{container} (the {drifted} database's own log, "
                              "where PostgreSQL logs each rejected enum value)")
    rej = enum_rejections(ctx)
    if rej.empty:
        return []
    out = []
    for (db, enum, value), grp in rej.groupby(["database", "enum", "value"], dropna=False):
        linked = grp[grp["linked"]]
        sev = "error" if not linked.empty else "info"
        shown = linked if not linked.empty else grp
        first = shown.iloc[0]
        stmt = str(first.get("detail") or "")
        table = re.search(r"(?:INSERT INTO|UPDATE)\s+(\w+)", stmt)
        out.append(Finding(
            id="db.enum_value_rejected", severity=sev,
            title="PostgreSQL rejected an enum value",
            summary=(f"{first['container']} logged ERROR: {model.names.M_PG_INVALID_ENUM} {enum}: "
                     f"\"{value}\"" + (f" on {table.group(1)}" if table else "")
                     + f" at {pd.Timestamp(first['ts']).isoformat()}"
                     + (" — next to this batch's error" if not linked.empty else "")
                     + f"; {len(grp)} such line(s) in the window."),
            evidence=[EvidenceRef.parse(str(r["ref"]), r["ts"]) for r in shown.head(5).pipe(records)],
            facts={"database": db, "enum": enum, "value": value, "count": int(len(grp)),
                   "linked": int(len(linked)), "table": table.group(1) if table else None,
                   "link": "batch" if not linked.empty else "none"},
        ))
    return out
