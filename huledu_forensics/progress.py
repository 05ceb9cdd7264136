"""How far a batch got through its state machine, what it waits for, and for how long.

The batch's status is BOS ``batches.status``; pipeline progress is ``batches.pipeline_configuration``
and ``phase_status_log`` (BOS never writes ``processing_pipelines`` or terminal statuses, SYSTEM.md
§4.1). Slot fulfilment is ELS ``essay_states.current_status`` (``uploaded`` = empty slot), not
``available_slots``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import cast

import pandas as pd

from . import _fields as F
from . import model
from ._frames import is_missing
from ._time import parse_utc
from .evidence import Evidence, payload, records
from .ledger import content_ledger, ledger_counts
from .model import columns as C
from .model import names as N
from .outcomes import Consumption, consumption

__all__ = ["AwaitedTransition", "Progress", "batch_expected_count", "compute_progress"]


@dataclass
class AwaitedTransition:
    """The next transition and the life of its trigger event.

    ``produced``/``published``/``consumed`` are ``True``/``False``, or ``None`` when the evidence
    needed to tell is not in the bundle. ``consumed_state`` says the same as yes/no/unknown with
    ``consumed_reason``; when consumed, ``outcome`` (handled/dropped/failed), ``outcome_cause`` and
    ``outcome_detail`` say what the consumer's handler did with it (:mod:`huledu_forensics.outcomes`). Times are aware UTC; ``waited_s`` runs from entering the
    current step to the collection time.
    """

    step: str
    label: str
    topic: str | None
    producer: str | None
    consumer: str | None
    produced: bool | None = None
    produced_at: datetime | None = None
    published: bool | None = None
    published_at: datetime | None = None
    consumed: bool | None = None
    consumed_at: datetime | None = None
    waited_s: float | None = None
    expected_dwell_s: float | None = None
    evidence: list[str] = field(default_factory=list)
    consumed_state: str = "unknown"
    consumed_reason: str = ""
    outcome: str | None = None
    outcome_cause: str | None = None
    outcome_detail: str | None = None
    handling_refs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        d = asdict(self)
        for k in ("produced_at", F.PUBLISHED_AT, "consumed_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


@dataclass
class Progress:
    """Where the batch stands. ``steps`` columns: step, label, batch_status, trigger_topic, producer,
    consumer, expected_dwell_s, reached, entered_at, dwell_s, state (done/current/stuck/pending)."""

    flow: str
    current_state: str | None
    current_step: str | None
    steps: pd.DataFrame
    awaited: AwaitedTransition | None
    waited_s: float | None
    dwell_exceeded: bool
    phases: pd.DataFrame
    essays: pd.DataFrame
    pending: pd.DataFrame
    requested_pipelines: list[str]
    notes: list[str] = field(default_factory=list)
    stuck: bool = False
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)
    content: dict[str, object] = field(default_factory=dict)
    flow_known: bool = True
    state_on_flow: bool = True
    """False when BOS's status is none of the flow's step statuses (e.g. ``cancelled``,
    ``failed_critically``): the kit cannot place the batch on its state machine."""


def _flow_of(ev: Evidence) -> tuple[str, list[str]]:
    notes: list[str] = []
    b = ev.batch()
    if b is not None:
        return ("REGULAR" if b.get(C.CLASS_ID) else "GUEST"), notes
    reg = ev.outbox_for_batch(N.T_REGISTERED)
    for r in reg.pipe(records):
        data = payload(r.get(C.EVENT_DATA)).get("data")
        if isinstance(data, dict):
            notes.append("No BOS batches row; flow taken from the BatchEssaysRegistered payload.")
            return ("REGULAR" if data.get(C.CLASS_ID) else "GUEST"), notes
    notes.append("No BOS batches row and no registration event: the flow is unknown (the steps are "
                 "laid out as GUEST's).")
    return "GUEST", notes


def _pipeline_state(ev: Evidence) -> tuple[dict[str, dict[str, object]], list[str]]:
    b = ev.batch()
    if b is None:
        return {}, []
    cfg = b.get(C.PIPELINE_CONFIGURATION)
    try:
        conf = json.loads(cfg) if isinstance(cfg, str) else (cfg or {})
    except ValueError:
        conf = {}
    if not isinstance(conf, dict):
        return {}, []
    requested = [p for p in conf.get(C.REQUESTED_PIPELINES) or [] if isinstance(p, str)]
    phases = {p: conf[p] for p in model.PIPELINE_PHASES if isinstance(conf.get(p), dict)}
    return phases, requested


def _consumption(ev: Evidence, aw: AwaitedTransition) -> Consumption:
    return consumption(ev.runs, aw.topic, aw.consumer, published_at=aw.published_at,
                       containers=ev.containers, log_extent=ev.log_extent, recognised=ev.recognised)


def compute_progress(ev: Evidence) -> Progress:
    """Compute the batch's path, current step, awaited transition and per-essay slot progress."""
    flow_name, notes = _flow_of(ev)
    flow = model.FLOWS[flow_name]
    b = ev.batch()
    status = str(b[C.STATUS]) if b and b.get(C.STATUS) is not None else None
    phases, requested = _pipeline_state(ev)
    plog = ev.batch_rows(N.PHASE_STATUS_LOG)
    status_order = [s.batch_status for s in flow.steps]
    on_flow = status is None or status in status_order
    if not on_flow:
        notes.append(f"BOS status '{status}' is not a step of the implemented {flow_name} flow "
                     f"(its statuses: {', '.join(str(x) for x in status_order if x)}): the kit cannot "
                     "place the batch on its state machine, so it does not call it healthy.")

    reached: dict[str, datetime | None] = {}
    reg_rows = ev.outbox_for_batch(N.T_REGISTERED, "bos")
    if b is not None or not reg_rows.empty:
        reached["registered"] = parse_utc(b.get(C.CREATED_AT)) if b else parse_utc(reg_rows[C.CREATED_AT].min())
    # status steps: BOS statuses only move forward along the flow
    if status is not None and status in status_order:  # (pipeline steps have no status: None)
        cur_i = status_order.index(status)
        for s in flow.steps[1: cur_i + 1]:
            if s.batch_status is None:
                continue
            lines = ev.log_lines(f"{N.M_STATUS_UPDATED}{s.batch_status.upper()}")
            at = parse_utc(lines["ts"].min()) if not lines.empty else None
            if at is None and s.trigger_topic:
                ob = ev.outbox_for_batch(s.trigger_topic)
                if not ob.empty and ob[C.PUBLISHED_AT].notna().any():
                    at = parse_utc(ob[C.PUBLISHED_AT].min())
            reached[s.id] = at or (parse_utc(b.get(C.UPDATED_AT)) if b else None)
    # pipeline steps
    active = {p: d for p, d in phases.items() if d.get("status") not in N.PHASE_INACTIVE_STATUSES
              and d.get("status") != N.PHASE_WAITING_STATUS}
    if active or not plog.empty:
        starts = [parse_utc(d.get("started_at")) for d in active.values() if d.get("started_at")]
        if not plog.empty:
            starts.append(parse_utc(plog[C.CREATED_AT].min()))
        known = [s for s in starts if s is not None]
        reached["pipeline_requested"] = min(known) if known else None
    done_ob = ev.outbox_for_batch(N.T_PIPELINE_COMPLETED, "bos")
    wanted = [p for p in requested if p in phases] or list(active)
    all_done = bool(wanted) and all(phases[p].get("status") in N.PHASE_DONE_STATUSES for p in wanted)
    if not done_ob.empty or all_done:
        reached["pipeline_completed"] = (parse_utc(done_ob[C.CREATED_AT].min()) if not done_ob.empty else
                                         max((cast(datetime, parse_utc(phases[p].get(C.COMPLETED_AT))) for p in wanted
                                              if phases[p].get(C.COMPLETED_AT)), default=None))
    current = None
    for s in flow.steps:
        if s.id in reached:
            current = s.id
    collected = ev.collected_at
    entered = reached.get(current) if current else None
    waited = (collected - entered).total_seconds() if entered else None
    cur_step = flow.step(current) if current else None
    exceeded = bool(cur_step and cur_step.expected_dwell_s is not None and waited is not None
                    and waited > cur_step.expected_dwell_s)

    # the awaited transition
    awaited: AwaitedTransition | None = None
    idx = flow.index(current) if current else -1
    nxt = flow.steps[idx + 1] if idx + 1 < len(flow.steps) else None
    if current == "pipeline_requested":
        pending_phase = next((p for p in wanted if phases.get(p, {}).get("status")
                              not in N.PHASE_DONE_STATUSES), None)
        if pending_phase is not None:
            cmd, outcome = model.PIPELINE_PHASES[pending_phase]
            st = phases[pending_phase].get("status")
            topic = outcome if st == N.PHASE_DISPATCHED_STATUS else (cmd or None)
            t = model.TOPICS.get(topic) if topic else None
            awaited = AwaitedTransition(f"phase:{pending_phase}", f"{pending_phase} phase outcome",
                                        topic, t.producer if t else None,
                                        "bos" if topic == outcome else (t.consumers[0] if t else None),
                                        expected_dwell_s=model.states.PHASE_EXPECTED_DWELL_S)
            exceeded = waited is not None and waited > model.states.PHASE_EXPECTED_DWELL_S
    elif nxt is not None and not (nxt.id == "pipeline_requested" and cur_step is not None
                                  and cur_step.expected_dwell_s is None):
        awaited = AwaitedTransition(nxt.id, nxt.label, nxt.trigger_topic, nxt.producer, nxt.consumer,
                                    expected_dwell_s=cur_step.expected_dwell_s if cur_step else None)
    elif nxt is not None:
        notes.append("The batch is ready and waits for the client's pipeline request; that wait has "
                     "no expected limit.")
    if awaited is not None:
        awaited.waited_s = waited
        _trigger_checks(ev, awaited)

    steps = []
    for s in flow.steps:
        at = reached.get(s.id)
        is_reached = s.id in reached
        state = "done" if is_reached else "pending"
        if s.id == current:
            state = "stuck" if exceeded else "current"
        steps.append({"step": s.id, "label": s.label, "batch_status": s.batch_status,
                      "trigger_topic": s.trigger_topic, "producer": s.producer, "consumer": s.consumer,
                      "expected_dwell_s": s.expected_dwell_s, "reached": is_reached,
                      "entered_at": at, "dwell_s": None, "state": state})
    steps_df = pd.DataFrame(steps)
    steps_df["entered_at"] = pd.to_datetime(steps_df["entered_at"], utc=True)
    nxt_times = list(steps_df["entered_at"].iloc[1:]) + [pd.Timestamp(collected)]
    dwells = [((n - e).total_seconds() if pd.notna(e) and pd.notna(n) else None) if r else None
              for e, n, r in zip(steps_df["entered_at"], nxt_times, steps_df["reached"])]
    if any(d is not None and d < 0 for d in dwells):  # entry times come from several clocks (DB
        # rows, each container's log): a step entered after the next one shows they disagree
        notes.append("Step entry times are out of order (the sources' clocks disagree): the dwell "
                     "of the steps around them is unknown.")
    steps_df["dwell_s"] = [d if d is None or d >= 0 else None for d in dwells]

    phase_rows = [{"phase": p, "status": d.get("status"), "started_at": d.get("started_at"),
                   C.COMPLETED_AT: d.get(C.COMPLETED_AT), "requested": p in requested}
                  for p, d in phases.items()]
    phases_df = pd.DataFrame(phase_rows, columns=["phase", "status", "started_at", C.COMPLETED_AT,
                                                  "requested"])
    for c in ("started_at", C.COMPLETED_AT):
        phases_df[c] = pd.to_datetime(phases_df[c], utc=True, errors="coerce")

    return Progress(
        flow=flow_name, current_state=status, current_step=current, steps=steps_df, awaited=awaited,
        waited_s=waited, dwell_exceeded=exceeded, phases=phases_df, essays=_essays(ev),
        pending=_pending(ev), requested_pipelines=requested, notes=notes, stuck=exceeded,
        ledger=(ledger := content_ledger(ev)), content=_content(ev, ledger),
        flow_known=not any(n.startswith("No BOS batches row and no registration") for n in notes),
        state_on_flow=on_flow,
    )


def _count(value: object) -> int | None:
    """A count from a row or payload value (``None`` when missing or not a whole number)."""
    if value is None or is_missing(value) or isinstance(value, bool):
        return None
    try:
        n = int(value)  # type: ignore[call-overload]  # a JSON value; a non-number raises into the except
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def batch_expected_count(ev: Evidence) -> tuple[int | None, str | None]:
    """How many essays the batch expects, and the evidence that says so: ELS's tracker
    (``expected_count``), else BOS's ``batches`` row (``total_essays``), else the registration event
    BOS wrote to its outbox (``expected_essay_count``). ``(None, None)`` when none holds it."""
    tr, b = ev.tracker(), ev.batch()
    n = _count((tr or {}).get(C.EXPECTED_COUNT))
    if n:
        return n, f"{N.TRACKERS[0]}/{N.TRACKERS[1]}.{C.EXPECTED_COUNT}"
    n = _count((b or {}).get(C.TOTAL_ESSAYS))
    if n:
        return n, f"{N.BATCHES[0]}/{N.BATCHES[1]}.{C.TOTAL_ESSAYS}"
    for r in ev.outbox_for_batch(N.T_REGISTERED, "bos").pipe(records):
        data = payload(r.get(C.EVENT_DATA)).get("data")
        n = _count(data.get(N.K_EXPECTED_ESSAY_COUNT)) if isinstance(data, dict) else None
        if n:
            return n, f"{N.T_REGISTERED} ({N.K_EXPECTED_ESSAY_COUNT}, BOS outbox)"
    return None, None


def _content(ev: Evidence, ledger: pd.DataFrame) -> dict[str, object]:
    """Ledger counts against the batch's expected count (with ``expected_from``, the evidence that
    holds it), and essay_states by status."""
    exp, exp_from = batch_expected_count(ev)
    out = ledger_counts(ledger, exp, uploads_known=ev.has(N.FILE_UPLOADS))
    out["expected_from"] = exp_from
    essays = _essays(ev)
    out["essays_by_status"] = ({str(k): int(v) for k, v in essays.loc[essays["has_row"], C.CURRENT_STATUS]
                            .value_counts().items()} if not essays.empty else {})
    return out


def _trigger_checks(ev: Evidence, aw: AwaitedTransition) -> None:
    if aw.topic is None:
        return
    t = model.TOPICS.get(aw.topic)
    producer_outbox = N.OUTBOXES.get(aw.producer or "")
    if t is not None and t.via_outbox and producer_outbox is not None:  # noqa: SIM102 - topic test, then evidence test
        if ev.has(producer_outbox):
            rows = ev.outbox_for_batch(aw.topic, aw.producer)
            aw.produced = not rows.empty
            if not rows.empty:
                aw.produced_at = parse_utc(rows[C.CREATED_AT].min())
                pub = rows[rows[C.PUBLISHED_AT].notna()]
                aw.published = not pub.empty
                aw.published_at = parse_utc(pub[C.PUBLISHED_AT].min()) if not pub.empty else None
                aw.evidence += [f"tables/{producer_outbox[0]}/{producer_outbox[1]}.parquet#id={i}"
                                for i in rows[C.ID]]
            else:
                aw.published = False
    c = _consumption(ev, aw)
    aw.consumed, aw.consumed_state, aw.consumed_reason = c.consumed, c.state, c.reason
    if c.run is not None:
        aw.consumed_at = parse_utc(c.run["started_at"])
        aw.outcome, aw.outcome_cause = str(c.run["outcome"]), c.run["cause"]  # type: ignore[assignment]
        aw.outcome_detail = str(c.run["detail"] or "") or None
        aw.handling_refs = [str(r) for r in cast(list[object], c.run["refs"])]
        aw.evidence.append(str(c.run["first_ref"]))
    if aw.consumed and aw.produced is None:
        aw.produced = aw.published = True


def _essays(ev: Evidence) -> pd.DataFrame:
    cols = [C.ESSAY_ID, C.CURRENT_STATUS, C.TEXT_STORAGE_ID, C.CREATED_AT, C.UPDATED_AT, "has_row"]
    expected: list[str] = []
    tr = ev.tracker()
    if tr is not None:
        try:
            expected = [str(e).lower() for e in json.loads(str(tr.get(C.EXPECTED_ESSAY_IDS) or "[]"))]
        except ValueError:
            expected = []
    if not expected:
        b = ev.batch()
        meta = payload(b.get(C.PROCESSING_METADATA)) if b else {}
        listed = meta.get("essay_ids")
        expected = [str(e).lower() for e in listed] if isinstance(listed, list) else []
    if not expected:
        for r in ev.outbox_for_batch(N.T_REGISTERED, "bos").pipe(records):
            data = payload(r.get(C.EVENT_DATA)).get("data")
            if isinstance(data, dict) and isinstance(data.get("essay_ids"), list):
                expected = [str(e).lower() for e in data["essay_ids"]]
    es = ev.rows(N.ESSAY_STATES)
    if not es.empty:
        ids = set(expected) | ev.scope.ids.get("essay", set())
        es = es[es[C.ESSAY_ID].astype(str).str.lower().isin(ids) |
                (es[C.BATCH_ID].astype(object).map(lambda v: str(v).lower() if v else "")
                 == (ev.scope.batch_id or "-"))]
    rows = [{**{c: r.get(c) for c in cols[:-1]}, "has_row": True} for r in es.pipe(records)]
    seen = {str(r[C.ESSAY_ID]).lower() for r in rows}
    rows += [{C.ESSAY_ID: e, C.CURRENT_STATUS: None, C.TEXT_STORAGE_ID: None, C.CREATED_AT: None,
              C.UPDATED_AT: None, "has_row": False} for e in expected if e not in seen]
    df = pd.DataFrame(rows, columns=cols)
    for c in (C.CREATED_AT, C.UPDATED_AT):
        df[c] = pd.to_datetime(df[c], utc=True, errors="coerce")
    return df


def _pending(ev: Evidence) -> pd.DataFrame:
    df = ev.batch_rows(N.PENDING_CONTENT)
    out = pd.DataFrame({
        C.TEXT_STORAGE_ID: df[C.TEXT_STORAGE_ID] if not df.empty else [],
        C.CREATED_AT: df[C.CREATED_AT] if not df.empty else [],
        C.FILE_UPLOAD_ID: [payload(m).get(C.FILE_UPLOAD_ID) for m in df[C.CONTENT_METADATA]]
        if not df.empty and C.CONTENT_METADATA in df else [],
        "ref": [f"tables/{N.PENDING_CONTENT[0]}/{N.PENDING_CONTENT[1]}.parquet#id={i}"
                for i in df[C.ID]] if not df.empty else [],
    })
    out[C.CREATED_AT] = pd.to_datetime(out[C.CREATED_AT], utc=True, errors="coerce")
    return out
