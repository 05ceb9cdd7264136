"""Differential diagnosis: line the batch up against a healthy batch of the same flow in the bundle.

Both batches become a sequence of handling runs (:mod:`huledu_forensics.outcomes`: which consumer
handled which event, with what outcome), collapsed so that repeated handlings of the same event
(one per content item) count once. Walking the healthy batch's sequence, the first step this batch
does not show, or shows with another outcome, is the *first divergence*: "a healthy GUEST batch shows
X next; this one shows nothing / shows Y". When the root cause does not account for it, the verdict
says so: unexplained. When the diverging consumer's log ends before this batch's last handling (or
the bundle holds none of it), "shows nothing" is not evidence: the divergence is reported as one the
logs cannot show, not as unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import model
from ._frames import records
from .model import columns as C
from .model import names as N
from .outcomes import LogExtent
from .scope import normalise_id

__all__ = ["differential", "handling_sequence"]


def handling_sequence(runs: pd.DataFrame, batch_id: str) -> list[dict[str, object]]:
    """The batch's handling runs in time order, one entry per (consumer, event) with its outcomes."""
    if runs.empty:
        return []
    mine = runs[[batch_id in b for b in runs["batch_ids"]]].sort_values("started_at", kind="stable")
    seq: dict[tuple[str, str], dict[str, object]] = {}
    for r in records(mine):
        key = (str(r["service"]), str(r["topic"]))
        e = seq.setdefault(key, {"service": key[0], "topic": key[1], "event": r["event"],
                                 "first_at": r["started_at"], "outcomes": {}, "cause": None,
                                 "ref": r["first_ref"], "container": r["container"]})
        oc: dict[str, int] = e["outcomes"]  # type: ignore[assignment]
        oc[str(r["outcome"])] = oc.get(str(r["outcome"]), 0) + 1
        if r["outcome"] != "handled" and e["cause"] is None:
            e["cause"], e["ref"] = r["cause"], r["first_ref"]
    return list(seq.values())


def _verdict_of(e: dict[str, object]) -> str:
    oc: dict[str, int] = e["outcomes"]  # type: ignore[assignment]
    if oc.get("handled") and len(oc) == 1:
        return "handled"
    bad = next((o for o in ("failed", "dropped", "interrupted") if oc.get(o)), "handled")
    return f"{bad} ({e['cause']})" if e.get("cause") else bad


def _title(svc: str) -> str:
    return model.SERVICES[svc].title if svc in model.SERVICES else svc


def _blind(container: str, mine: list[dict[str, object]], log_extent: Mapping[str, LogExtent] | None
           ) -> str | None:
    """Why ``container``'s log cannot show a handling this batch would have made after its last
    one (``None`` when it can): the bundle holds none of it, or it ends before that last handling."""
    if log_extent is None:
        return None
    ext = log_extent.get(container)
    if ext is None or ext.lines == 0 or ext.last is None:
        return f"the bundle holds no lines of {container}"
    last_mine = max((pd.Timestamp(e["first_at"]) for e in mine), default=None)  # type: ignore[arg-type]
    if last_mine is not None and pd.Timestamp(ext.last) < last_mine:
        return (f"the logs of {container} end at {pd.Timestamp(ext.last).isoformat(timespec='milliseconds')}, "
                f"before this batch's last handling ({last_mine.isoformat(timespec='milliseconds')})")
    return None


def differential(runs: pd.DataFrame, batches: pd.DataFrame | None, batch_id: str | None, flow: str,
                 root: str | None, log_extent: Mapping[str, LogExtent] | None = None) -> dict[str, object]:
    """Compare ``batch_id`` with the earliest healthy batch of ``flow`` (BOS status ready for pipeline
    execution) in the bundle. ``runs`` are the bundle's handling runs, ``batches`` BOS's rows,
    ``log_extent`` what the bundle holds of each container's log (``None``: not weighed)."""
    out: dict[str, object] = {"reference_batch": None, "aligned": 0, "divergence": None,
                              "explained": None, "text": ""}
    if batch_id is None or batches is None or batches.empty or runs.empty:
        out["text"] = "No handling runs or no BOS batches in the bundle: nothing to compare with."
        return out
    b = batches.assign(_id=batches[C.ID].map(normalise_id))
    regular = b[C.CLASS_ID].notna() if C.CLASS_ID in b else pd.Series(False, index=b.index)
    same = b[(regular if flow == "REGULAR" else ~regular) & (b["_id"] != batch_id)
             & (b[C.STATUS].astype(str) == N.S_READY)]
    if C.CREATED_AT in same:
        same = same.sort_values(C.CREATED_AT, kind="stable")
    mine = handling_sequence(runs, batch_id)
    ref_seq: list[dict[str, object]] = []
    ref_id = None
    for rid in same["_id"]:
        ref_seq = handling_sequence(runs, str(rid))
        if ref_seq:
            ref_id = str(rid)
            break
    if ref_id is None:
        out["text"] = (f"No healthy {flow} batch in this bundle to compare with"
                       + (": unexplained." if root is None else "."))
        out["explained"] = root is not None
        return out
    out["reference_batch"] = ref_id
    have = {(str(e["service"]), str(e["topic"])): e for e in mine}
    # the client's pipeline request is owed by nobody: without one, compare only what comes before it
    if not any(str(e["topic"]) == N.T_PIPELINE_REQUEST for e in mine):
        cut = next((i for i, e in enumerate(ref_seq) if str(e["topic"]) == N.T_PIPELINE_REQUEST),
                   len(ref_seq))
        ref_seq = ref_seq[:cut]
    else:  # after the request, phases the reference ran and this batch did not request are not a
        # divergence: keep the reference's later steps this batch also shows, and its phase outcomes
        cut = next((i for i, e in enumerate(ref_seq) if str(e["topic"]) == N.T_PIPELINE_REQUEST),
                   len(ref_seq))
        ref_seq = ref_seq[:cut + 1] + [e for e in ref_seq[cut + 1:]
                                       if (str(e["service"]), str(e["topic"])) in have]
    t0 = pd.Timestamp(ref_seq[0]["first_at"])  # type: ignore[arg-type]
    aligned = 0
    for e in ref_seq:
        key = (str(e["service"]), str(e["topic"]))
        ours = have.get(key)
        theirs = _verdict_of(e)
        if ours is not None and _verdict_of(ours) == theirs:
            aligned += 1
            continue
        at = (pd.Timestamp(e["first_at"]) - t0).total_seconds()  # type: ignore[arg-type]
        blind = _blind(str(e.get("container")), mine, log_extent) if ours is None else None
        if blind is not None:
            shows = f"nothing, and its evidence cannot show it: {blind}"
        elif ours is None:
            shows = "nothing"
        else:
            verb, _, cause = _verdict_of(ours).partition(" ")
            shows = f"{_title(key[0])} {verb} it" + (f" {cause}" if cause else "")
        out["divergence"] = {"service": key[0], "topic": key[1], "event": e["event"],
                             "reference": theirs, "reference_at_s": at, "this": shows,
                             "this_ref": ours["ref"] if ours else None, "reference_ref": e["ref"],
                             "unseen": blind}
        out["text"] = (f"A healthy {flow} batch ({ref_id}) shows {_title(key[0])} {theirs} "
                       f"{e['event']} next (+{at:.1f} s after its first handling); this one shows "
                       f"{shows}.")
        break
    out["aligned"] = aligned
    if out["divergence"] is None:
        out["text"] = (f"This batch's handlings match the healthy {flow} batch {ref_id} step for step"
                       f" ({aligned} steps); it has not diverged in what its consumers logged.")
    explained = root is not None
    out["explained"] = explained
    div = out["divergence"]
    if isinstance(div, dict) and div.get("unseen"):
        out["explained"] = None  # the logs cannot show whether it diverged at all
    elif not explained and div is not None:
        out["text"] = str(out["text"]) + " No finding explains this divergence: unexplained."
    return out
