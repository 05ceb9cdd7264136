"""Container lifecycle: the service that should act on the batch's awaited event was not running."""

from __future__ import annotations

from datetime import datetime

from .. import model
from ..model import handlers as H
from ._engine import Context, EvidenceRef, Finding, rule

__all__: list[str] = []

_SIGKILL = 137  # exit code of a container killed by SIGKILL, the OOM killer's signal


def _problem(c: object, published_at: datetime | None) -> tuple[str, str] | None:
    st = str(getattr(c, "state", "") or "")
    code = getattr(c, "exit_code", None)
    restarts = int(getattr(c, "restart_count", 0) or 0)
    started = getattr(c, "started_at", None)
    if st in ("created", "missing"):
        return st, "was never started" if st == "created" else "does not exist"
    if st in ("exited", "dead"):
        if code == _SIGKILL:
            return "oom_killed", f"was killed (exit code {code}, SIGKILL: usually the OOM killer)"
        return st, f"has {st} (exit code {code})"
    if st == "restarting":
        return "restarting", f"is restarting ({restarts} restart(s))"
    if started is not None and published_at is not None and started > published_at:
        return "started_late", (f"started at {started.isoformat()}, after the awaited event was "
                                f"published at {published_at.isoformat()}")
    return None


@rule("container.not_running", severity="error", needs=("containers",),
      explains=("event.not_consumed", "event.not_produced", "event.not_published",
                "outbox.unpublished", "tracker.missing", "pending.orphaned_content",
                "content.unplaced"))
def not_running(ctx: Context) -> list[Finding]:
    """A container of a service that should act on the batch was not running.

    **Fires when** the collected container state of the awaited event's consumer or producer (or of
    another consumer process) is Created (never started), Exited, dead, restarting, OOM-killed (exit
    137), or it (re)started only after the awaited event was published. A restart before that is
    not a finding (the ELS worker often restarts once at startup while Kafka comes up). A start
    after the publication is an error only when it cut the consumer's handling of the awaited event
    short (the handling ``interrupted``); otherwise the restarted consumer may have consumed it.
    **Evidence** ``containers.json`` (state, exit code, restart count, start time).
    **Usually means** that service could not act: an error (the root cause) when it is the service the
    batch waits on, a warning otherwise. A consumer whose container never ran has *unknown*
    consumption, not "logs missing".
    """
    aw = ctx.progress.awaited
    acting: dict[str, str] = {}
    if aw is not None:
        if aw.producer:
            acting.setdefault(aw.producer, "producer")
        if aw.consumer:
            acting[aw.consumer] = "consumer"
    consumer_containers = {loop.container: loop.service for loop in H.CONSUMER_LOOPS.values()}
    out: list[Finding] = []
    for c in ctx.ev.containers:
        svc = model.services.service_for_container(c.name)
        if svc is None:
            continue
        role = acting.get(svc)
        if role is None and c.name not in consumer_containers:
            continue
        if role == "consumer" and c.name not in consumer_containers and svc in {
                s for s in consumer_containers.values()}:
            continue  # e.g. the ELS API container: the worker is the consumer
        prob = _problem(c, aw.published_at if aw else None)
        if prob is None:
            continue
        kind, text = prob
        # a start after the publication is on the awaited path only when it cut the consumer's
        # handling of the awaited event short (outcomes: ``interrupted`` by this restart)
        cut = bool(kind == "started_late" and role == "consumer" and aw is not None
                   and aw.outcome == "interrupted")
        on_awaited = role is not None and (kind != "started_late" or cut)
        title = model.SERVICES[svc].title if svc in model.SERVICES else svc
        out.append(Finding(
            id="container.not_running", severity="error" if on_awaited else "warning",
            title="Container not running",
            summary=(f"{c.name} ({title}) {text}"
                     + (f"; it is the {role} of {aw.topic}, which batch {ctx.ev.scope.batch_id} "
                        "waits for." if role and aw else ".")),
            evidence=[EvidenceRef("containers.json", c.name,
                                  note=f"state {c.state}, exit code {c.exit_code}, "
                                       f"restarts {c.restart_count}")],
            facts={"container": c.name, "service": svc, "state": c.state, "kind": kind,
                   "exit_code": c.exit_code, "restart_count": c.restart_count, "role": role,
                   "topic": aw.topic if aw and role else None,
                   # the service the batch waits on could not act: tied to this batch's stall
                   "link": "path" if on_awaited else "none"},
        ))
    return out
