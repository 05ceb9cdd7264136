"""Handler outcomes: every handling of an event by its consumer, as one row, from the consumer's logs.

This is the kit's one detector of "was this event consumed, and what did the handler do with it".
Progress (the awaited transition), the rules, the correlation trace and the views all read it.

:func:`handler_runs` cuts each consumer container's log into *handling runs* (see
:mod:`huledu_forensics.model.handlers`): a run opens on a start line of the handler's own logger (or
the consumer loop's generic ``Processing event`` line with the event type) and collects that
container's following lines until the next start or a quiet gap, skipping lines whose ids contradict
the run's (another batch's REST call in the same process) and the relay's lines. Each run gets an
outcome:

- ``handled``: no refusal, no failure;
- ``dropped``: the handler refused the event (``wrong_state``, ``duplicate``, ``unknown_type``,
  ``denied``);
- ``failed``: an exception or a False return (``exception``, ``no_slot``), usually with the offset
  not committed (not for loops that commit after a failure, ``ConsumerLoop.commits_on_failure``);
- ``interrupted``: the container (re)started after the run began, with not one line of it between
  the run's last line and that start, and the run never reached the loop's success line: nothing
  shows the handling finished, so it is not counted ``handled`` (cause ``restart``).

A loop-level duplicate or failure line that names one of the loop's topics opens a run of its own
when no run of that topic is open: the idempotency check refuses a redelivered event before its
handler logs anything.

:func:`consumption` answers "did ``consumer`` consume ``topic`` for this batch, at or after it was
published": ``yes`` (with the run), ``no`` (the consumer's logs cover the time and hold no such
run), or ``unknown`` with the reason (no handler knowledge, container never ran, logs missing or
empty or not covering the publication (ending before it, beginning after it), or not one handling of any event recognised in the
consumer's whole log, so the kit cannot tell silence from a log format it does not know).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, cast

import pandas as pd

from . import _fields as F
from . import model
from ._frames import is_missing, records
from .model import handlers as H
from .scope import Scope, normalise_id

__all__ = ["OUTCOMES", "RUN_COLUMNS", "Consumption", "LogExtent", "consumption", "handler_runs", "log_gap",
           "log_gap_text", "recognised_containers", "runs_for_scope"]

OUTCOMES = ("handled", "dropped", "failed", "interrupted")
RUN_COLUMNS = ("service", "container", "topic", "event", "started_at", "ended_at", "outcome", "cause",
               "detail", "batch_ids", "correlation_ids", "ids", "partition", "offset",
               "offset_not_committed", "refs", "ref_times", "first_ref", "lines", "next_line_at",
               "confirmed")
_GAP_S = 2.0  # a line this long after the run's last line no longer belongs to it
_JOIN_S = 1.0  # a handler's own start line this soon after the loop's generic start joins it
_SKEW_S = 1.0  # tolerated clock skew between an outbox's published_at and the consumer's first line
_ID_COLS = F.ID_FIELDS


class LogExtent(NamedTuple):
    """What the bundle holds of one container's log: its number of lines and the first and last line's
    time (aware UTC; ``None`` when it has no line)."""

    lines: int
    first: datetime | None
    last: datetime | None


def log_gap(extent: LogExtent, at: datetime) -> tuple[str, datetime] | None:
    """Whether a log of ``extent`` can show what its container did at ``at``: ``("end", last)`` when it
    ends before ``at`` or less than the clocks' tolerance after it (on the producer's clock it may end
    before), ``("begin", first)`` when it begins after it, ``None`` when it covers ``at`` (or says
    nothing of its times)."""
    t = pd.Timestamp(at)
    if extent.last is not None and pd.Timestamp(extent.last) < t + pd.Timedelta(seconds=_SKEW_S):
        return "end", extent.last
    if extent.first is not None and pd.Timestamp(extent.first) > t:
        return "begin", extent.first
    return None


def log_gap_text(container: str, gap: tuple[str, datetime], event: str, at: datetime) -> str:
    """``the logs of C end before the event was published (last line T, published T')`` and the like."""
    edge, when = gap
    if edge == "end" and pd.Timestamp(when) >= pd.Timestamp(at):
        where = f"end less than {_SKEW_S:g} s (the clocks' tolerance) after"
    else:
        where = "end before" if edge == "end" else "begin after"
    line = "last" if edge == "end" else "first"
    return (f"the logs of {container} {where} {event} was published ({line} line "
            f"{pd.Timestamp(when).isoformat(timespec='milliseconds')}, published "
            f"{pd.Timestamp(at).isoformat(timespec='milliseconds')})")


def _s(v: object) -> str:
    return "" if is_missing(v) else str(v)


def _logger_in(logger: str, names: tuple[str, ...]) -> bool:
    return any(logger == n or logger.startswith(n + ".") for n in names)


@dataclass
class _Run:
    service: str
    container: str
    topic: str
    start: pd.Timestamp
    specific: bool
    lines: list[dict[str, object]] = field(default_factory=list)
    batch_ids: set[str] = field(default_factory=set)
    correlation_ids: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)

    def add(self, row: dict[str, object]) -> None:
        self.lines.append(row)
        for c in _ID_COLS:
            v = normalise_id(row.get(c))
            if v:
                self.ids.add(v)
                if c == F.BATCH_ID:
                    self.batch_ids.add(v)
                elif c == F.CORRELATION_ID:
                    self.correlation_ids.add(v)

    def conflicts(self, row: dict[str, object]) -> bool:
        b = normalise_id(row.get(F.BATCH_ID))
        c = normalise_id(row.get(F.CORRELATION_ID))
        return bool((b and self.batch_ids and b not in self.batch_ids)
                    or (c and self.correlation_ids and c not in self.correlation_ids))

    @property
    def last(self) -> pd.Timestamp:
        return self.lines[-1]["ts"]  # type: ignore[return-value]


def _classify(run: _Run, loop: H.ConsumerLoop, handler: H.Handler | None) -> dict[str, object]:
    outcome, cause, detail = "handled", None, ""
    failed_line: dict[str, object] | None = None
    offset_line: dict[str, object] | None = None
    for r in run.lines:
        msg = _s(r.get("message"))
        if handler is not None and outcome != "dropped":
            hit = next((c for frag, c in handler.dropped if frag in msg), None)
            if hit:
                outcome, cause, detail = "dropped", hit, msg
                continue
        if outcome == "handled" and any(msg.startswith(m) for m in loop.duplicate):
            outcome, cause, detail = "dropped", H.DUPLICATE, msg
            continue
        if outcome == "handled" and any(msg.startswith(m) for m in loop.unknown_type):
            outcome, cause, detail = "dropped", H.UNKNOWN_TYPE, msg
            continue
        if handler is not None:
            hit = next((c for frag, c in handler.failed if frag in msg), None)
            if hit and outcome != "dropped":
                outcome, cause, detail = "failed", hit, msg
        if any(msg.startswith(m) for m in loop.offset_not_committed):
            offset_line = offset_line or r
        if handler is not None and any(frag in msg for frag in handler.reported_errors):
            continue  # an error-level line that reports the event's content, not a failure
        swallowed = next((c for frag, c in loop.swallowed if msg.startswith(frag)), None)
        if swallowed:
            if outcome == "handled" and cause is None:
                cause, detail = swallowed, msg
            continue
        is_fail = any(msg.startswith(m) for m in loop.failed) or _s(r.get("level")) in ("error",
                                                                                         "critical")
        if is_fail and failed_line is None:
            failed_line = r
    if failed_line is not None and outcome == "handled":
        err = _s(failed_line.get("error"))
        outcome, cause = "failed", H.EXCEPTION
        detail = _s(failed_line.get("message")) + (f": {err}" if err else "")
    elif failed_line is not None and outcome == "failed" and not detail:
        detail = _s(failed_line.get("message"))
    part = off = None
    for r in ([offset_line] if offset_line else []) + run.lines:
        p, o = r.get("partition"), r.get("offset")
        if _s(p) and _s(o):
            part, off = int(p), int(o)  # type: ignore[call-overload]  # log fields: JSON numbers or digit text
            break
    keep = [run.lines[0]] + [r for r in run.lines[1:] if _s(r.get("level")) in ("warning", "error",
                                                                                 "critical")]
    if run.lines[-1] not in keep:
        keep.append(run.lines[-1])
    refs = [f"{r.get('source_file')}#L{r.get('line_no')}" for r in keep]
    t = model.TOPICS.get(run.topic)
    return {"service": run.service, "container": run.container, "topic": run.topic,
            "event": t.event if t else run.topic, "started_at": run.start, "ended_at": run.last,
            "outcome": outcome, "cause": cause, "detail": detail[:300],
            "batch_ids": tuple(sorted(run.batch_ids)), "correlation_ids": tuple(sorted(run.correlation_ids)),
            "ids": frozenset(run.ids), "partition": part, "offset": off,
            "offset_not_committed": offset_line is not None or (
                outcome == "failed" and not loop.offset_not_committed and not loop.commits_on_failure),
            "refs": refs, "ref_times": [r.get("ts") for r in keep], "first_ref": refs[0],
            "lines": [f"{r.get('source_file')}#L{r.get('line_no')}" for r in run.lines],
            "next_line_at": None,
            "confirmed": any(_s(r.get("message")).startswith(m) for r in run.lines for m in loop.handled)}


def _named_topic(row: dict[str, object]) -> str:
    return _s(row.get("topic")) or _s(row.get(F.EVENT_TYPE))


def _refusal_topic(row: dict[str, object], msg: str, loop: H.ConsumerLoop,
                   handlers: dict[str, H.Handler]) -> str | None:
    """The topic of a loop-level duplicate or failure line that names one of the loop's topics: the
    idempotency check and the consumer loop refuse or fail an event before (or without) its handler's
    start line, so such a line opens the handling itself."""
    topic = _named_topic(row)
    if topic not in handlers:
        return None
    if any(msg.startswith(m) for m in (*loop.duplicate, *loop.failed)):
        return topic
    return None


def _container_runs(lg: pd.DataFrame, loop: H.ConsumerLoop) -> list[dict[str, object]]:
    handlers = H.handlers_for(loop.service)
    out: list[dict[str, object]] = []
    cur: _Run | None = None

    def close() -> None:
        nonlocal cur
        if cur is not None:
            out.append(_classify(cur, loop, handlers.get(cur.topic)))
        cur = None

    for row in records(lg):
        logger = _s(row.get("logger"))
        msg = _s(row.get("message"))
        ts = cast(pd.Timestamp, row["ts"])  # the parsed-log frame's ts column is datetime64[ns, UTC]
        topic: str | None = None
        specific = False
        if (loop.generic_start and msg.strip() == loop.generic_start
                and _logger_in(logger, loop.generic_loggers)):
            et = _s(row.get(F.EVENT_TYPE)) or _s(row.get("topic"))
            topic = et if et in handlers else None
        else:
            for h in handlers.values():
                if h.start and _logger_in(logger, h.loggers) and msg.startswith(h.start):
                    topic, specific = h.topic, True
                    break
        # the idempotency skip of a redelivery comes before any handler: once the handler has run,
        # a duplicate line belongs to a later delivery, not to this handling
        redelivery = bool(cur is not None and cur.specific
                          and any(msg.startswith(m) for m in loop.duplicate))
        if topic is None and (cur is None or (ts - cur.last).total_seconds() > _GAP_S
                              or cur.topic != _named_topic(row) or redelivery):
            topic = _refusal_topic(row, msg, loop, handlers)
        if topic is not None:
            if (specific and cur is not None and cur.topic == topic and not cur.specific
                    and (ts - cur.start).total_seconds() <= _JOIN_S):
                cur.specific = True
                cur.add(row)
                continue
            if (specific and cur is not None and cur.topic == topic and cur.specific
                    and topic in {h.topic for h in handlers.values() if len(h.start) > 1}
                    and (ts - cur.last).total_seconds() <= _GAP_S and not cur.conflicts(row)):
                cur.add(row)  # a second start line of the same handler (BOS phase outcome)
                continue
            close()
            cur = _Run(loop.service, loop.container, topic, ts, specific)
            cur.add(row)
            continue
        if cur is None:
            continue
        if (ts - cur.last).total_seconds() > _GAP_S:
            close()
            continue
        if cur.conflicts(row) or not logger:
            continue  # another batch's line, or a library's bare line (aiokafka), not the handler's
        if redelivery:  # (naming no topic, it cannot open the later delivery's handling)
            close()
            continue
        cur.add(row)
        if any(msg.startswith(m) for m in loop.handled):
            close()  # the loop's success line ends the handling
    close()
    return out


def handler_runs(logs: pd.DataFrame, containers: Sequence[object] = ()) -> pd.DataFrame:
    """Every handling run in ``logs`` (normalised service-container lines), one row each; columns
    :data:`RUN_COLUMNS`. Run it on the whole bundle's logs (runs end where the next event starts).
    ``containers`` (the bundle's container states) lets a run cut by a restart be ``interrupted``."""
    rows: list[dict[str, object]] = []
    if not logs.empty:
        by_container = {loop.container: loop for loop in H.CONSUMER_LOOPS.values()}
        lg = logs[logs["container"].isin(list(by_container))]
        # every line of each container (the relay's too) in time order: what followed a run
        times = {str(c): pd.DatetimeIndex(pd.to_datetime(g, utc=True)).sort_values()
                 for c, g in lg.groupby("container")["ts"]} if not lg.empty else {}
        if not lg.empty:
            logger = lg["logger"].astype(object).fillna("").astype(str)
            foreign = pd.Series(False, index=lg.index)
            for loop in by_container.values():
                for n in loop.foreign_loggers:
                    foreign |= (lg["container"] == loop.container) & (
                        (logger == n) | logger.str.startswith(n + "."))
            if "outbox_id" in lg.columns:
                foreign |= lg["outbox_id"].notna()
            lg = lg[~foreign]
            for container, grp in lg.groupby("container", sort=True):
                rows += _container_runs(grp.sort_values(["ts", "line_no"], kind="stable"),
                                        by_container[str(container)])
    for r in rows:
        ts = times.get(str(r["container"]))
        if ts is not None:
            i = int(ts.searchsorted(pd.Timestamp(cast(pd.Timestamp, r["ended_at"])), side="right"))
            r["next_line_at"] = ts[i] if i < len(ts) else None
    _mark_interrupted(rows, containers)
    df = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    for c in ("started_at", "ended_at", "next_line_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df.sort_values("started_at", kind="stable").reset_index(drop=True)


def _mark_interrupted(rows: list[dict[str, object]], containers: Sequence[object]) -> None:
    """A ``handled`` run that its container's (re)start cut off becomes ``interrupted``: the container
    started after the run began, it printed nothing between the run's last line and that start, and
    the run never reached the loop's success line. Docker keeps only the latest start time."""
    started = {str(getattr(c, "name", "")): getattr(c, "started_at", None) for c in containers}
    for r in rows:
        at = started.get(str(r["container"]))
        if at is None or r["outcome"] != "handled" or r["confirmed"]:
            continue
        start = pd.Timestamp(at)
        start = start.tz_localize("UTC") if start.tzinfo is None else start
        nxt = r["next_line_at"]
        # (a line's own timestamp may run a little ahead of Docker's start time)
        if pd.Timestamp(cast(pd.Timestamp, r["started_at"])) < start and (
                nxt is None or pd.Timestamp(cast(pd.Timestamp, nxt)) >= start - pd.Timedelta(seconds=_SKEW_S)):
            r["outcome"], r["cause"] = "interrupted", "restart"
            r["detail"] = (f"{r['container']} started again at {start.isoformat()} with no line "
                           "after this handling's last: nothing shows the handling finished")


def recognised_containers(all_runs: pd.DataFrame) -> frozenset[str]:
    """The consumer containers in which the kit recognised at least one handling of any event (of any
    batch): ``all_runs`` is :func:`handler_runs` of the whole bundle, before any scoping."""
    if all_runs.empty:
        return frozenset()
    return frozenset(str(c) for c in all_runs["container"].unique())


def runs_for_scope(runs: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    """The runs that concern the scope's batch: they carry one of its ids and no other batch's id
    instead of its own."""
    if runs.empty:
        return runs
    ids = scope.all_ids
    me = scope.batch_id

    def mine(r_ids: frozenset[str], batches: tuple[str, ...]) -> bool:
        if not (r_ids & ids):
            return False
        return not (batches and me not in batches)

    keep = [mine(i, b) for i, b in zip(runs["ids"], runs["batch_ids"])]
    return runs[keep].reset_index(drop=True)


@dataclass
class Consumption:
    """Whether a consumer consumed a topic for the batch: ``state`` yes/no/unknown, ``reason`` (for
    no/unknown), ``run`` (the decisive handling run as a dict) and ``runs`` (all of them)."""

    state: str
    reason: str = ""
    run: dict[str, object] | None = None
    runs: list[dict[str, object]] = field(default_factory=list)

    @property
    def consumed(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.state)


def consumer_container(service: str | None) -> str | None:
    """The container whose logs show ``service``'s handlers (``None``: no handler knowledge)."""
    loop = H.CONSUMER_LOOPS.get(service or "")
    return loop.container if loop else None


def container_ran(containers: list[object], name: str) -> tuple[bool | None, str]:
    """Whether container ``name`` ran, from the bundle's container states: ``(False, why)`` when it
    was Created and never started or is missing, ``(None, "")`` when the bundle says nothing."""
    for c in containers:
        if getattr(c, "name", None) == name:
            st = str(getattr(c, "state", "") or "")
            if st in ("created", "missing"):
                return False, f"container {name} is {st}: it never ran"
            return True, st
    return None, ""


def consumption(runs: pd.DataFrame, topic: str | None, consumer: str | None, *,
                published_at: datetime | None, containers: Sequence[object],
                log_extent: Mapping[str, LogExtent],
                recognised: Collection[str]) -> Consumption:
    """Did ``consumer`` consume ``topic`` (see the module doc)? The one place that decides it:
    progress (the awaited event) and the correlation trace (every event) both ask here.

    Args:
        runs: the handling runs that concern the question (the scope's, or one correlation id's).
        published_at: when the relay published the event (``None``: any run counts).
        containers: the bundle's container states (:class:`~huledu_forensics.world.ContainerState`).
        log_extent: per container whose logs the bundle holds, its :class:`LogExtent`; a container
            missing here has no logs in the bundle.
        recognised: :func:`recognised_containers` of the whole bundle's runs.
    """
    if topic is None or consumer is None:
        return Consumption("unknown", "no consumer for this event in the model")
    if topic not in H.handlers_for(consumer):
        return Consumption("unknown", f"the kit has no handler knowledge for {consumer} on {topic}")
    container = consumer_container(consumer) or ""
    ran, why = container_ran(list(containers), container)
    if ran is False:
        return Consumption("unknown", why)
    if container not in log_extent:
        return Consumption("unknown", f"no logs of {container} in the bundle")
    extent = log_extent[container]
    if extent.lines == 0:
        return Consumption("unknown", f"the logs of {container} are empty")
    mine = runs[(runs["topic"] == topic) & (runs["service"] == consumer)] if not runs.empty else runs
    before = mine
    if not mine.empty and published_at is not None:
        mine = mine[mine["started_at"] >= pd.Timestamp(published_at) - pd.Timedelta(seconds=_SKEW_S)]
    if mine.empty:
        gap = log_gap(extent, published_at) if published_at is not None else None
        if gap is not None and published_at is not None:
            # the log does not cover the time the consumer would have handled it: it cannot say
            return Consumption("unknown", log_gap_text(container, gap, "the event", published_at))
        if container not in recognised:
            # not one handling of any event in the whole log: the consumer never got an event, or this
            # HuleEdu version logs its handlers differently from what the kit knows; "no" would be a guess
            return Consumption("unknown", f"the kit recognises no handling of any event in the logs of "
                               f"{container}: this version of {consumer} may log its handlers differently "
                               "from the kit's knowledge (model/handlers.py), or it received no event")
        if published_at is not None and not before.empty:
            # two clocks are compared: a handling before publication is an earlier delivery or a
            # clock running behind; either way "not consumed" is not shown
            return Consumption("unknown", f"{container} logged handling {topic} for this batch at "
                               f"{pd.Timestamp(before['started_at'].max()).isoformat()}, before its "
                               f"publication at {pd.Timestamp(published_at).isoformat()}: an earlier "
                               "delivery, or its clock runs behind the producer's")
        return Consumption("no", f"{container} logged no handling of {topic} for this batch"
                           + (" after its publication" if published_at is not None else ""))
    rs = records(mine)
    handled = [r for r in rs if r["outcome"] == "handled"]
    return Consumption("yes", "", (handled or rs)[-1], rs)
