"""No verdict claims produced / published / consumed without the row or line that shows it.

Every batch of the reference corpus: each claim of the awaited transition is checked against the
evidence refs the verdict gives, resolved in the bundle (the outbox row, the consumer's log line)."""

from __future__ import annotations

import pandas as pd
import pytest

from huledu_forensics import model
from huledu_forensics.investigation import investigate, service_logs
from huledu_forensics.model import handlers as H
from huledu_forensics.model import names as N
from tests.support.corpus import CORPUS_TARGETS, corpus_bundle

WORLDS = sorted(CORPUS_TARGETS)


def _batches(world: str) -> list[str]:
    return [str(b) for b in corpus_bundle(world).table(*N.BATCHES)["id"]]


def _outbox_row(b, ref: str) -> dict[str, object] | None:
    part, _, key = ref.partition("#id=")
    if not part.startswith("tables/") or not part.endswith(f"/{model.OUTBOX_TABLE}.parquet"):
        return None
    db = part.split("/")[1]
    df = b.table(db, model.OUTBOX_TABLE)
    hit = df[df["id"].astype(str) == key]
    return None if hit.empty else hit.iloc[0].to_dict()


def _log_line(b, ref: str) -> dict[str, object] | None:
    part, _, key = ref.partition("#L")
    if not part.startswith("logs/") or not key.isdigit():
        return None
    lg = service_logs(b)
    hit = lg[(lg["source_file"] == part) & (lg["line_no"] == int(key))]
    return None if hit.empty else hit.iloc[0].to_dict()


@pytest.mark.parametrize("world", WORLDS)
def test_every_claim_has_its_evidence(world: str) -> None:
    b = corpus_bundle(world)
    checked = 0
    for bid in _batches(world):
        inv = investigate(b, bid)
        aw = inv.verdict.to_json()["awaited"]
        if aw is None:
            continue
        refs = list(aw["evidence"])
        rows = [r for r in (_outbox_row(b, x) for x in refs) if r is not None]
        rows = [r for r in rows if aw["topic"] in (r.get("topic"), r.get("event_type"))]
        consumer_container = H.CONSUMER_LOOPS[aw["consumer"]].container if aw["consumer"] in \
            H.CONSUMER_LOOPS else None
        handling = [ln for ln in (_log_line(b, x) for x in aw["handling_refs"]) if ln is not None]
        if aw["produced"]:
            assert rows or handling, (bid, "produced without an outbox row or a handling line")
        if aw["published"]:
            assert any(pd.notna(r.get("published_at")) for r in rows) or handling, (
                bid, "published without published_at or a handling line")
        if aw["produced"] is False:
            assert inv.evidence.has(N.OUTBOXES[aw["producer"]]), (bid, "not produced, outbox unread")
        if aw["consumed"]:
            assert aw["consumed_state"] == "yes"
            assert handling and all(ln["container"] == consumer_container for ln in handling), bid
            assert str(aw["evidence"][-1]) == aw["handling_refs"][0]
            if aw["published_at"]:
                assert handling[0]["ts"] >= pd.Timestamp(aw["published_at"]) - pd.Timedelta(seconds=1)
        if aw["consumed"] is False:
            assert aw["consumed_state"] == "no"
            assert inv.evidence.has(f"logs:{consumer_container}"), (bid, "not consumed, logs unread")
        if aw["consumed"] is None:
            assert aw["consumed_state"] == "unknown" and aw["consumed_reason"]
        checked += 1
    assert checked  # every world has at least one batch with an awaited event
