"""Corpus worlds changed in ways no rule was written for: the verdict must still claim only what the
evidence shows, say `unknown` where it cannot tell, and name the source that is missing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.investigation import investigate
from huledu_forensics.world import World, load_world_dir
from tests.support.corpus import full_batch_id, require_corpus

BOS = "huleedu_batch_orchestrator_service"
ELS_DB = "huleedu_essay_lifecycle_db"
SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"


def _verdict(world: World, batch: str, tmp_path: Path) -> dict[str, Any]:
    return investigate(write_world_bundle(world, tmp_path / "bundle"), batch).verdict.to_json()


def test_consumer_logs_that_end_before_the_event_leave_consumption_unknown(tmp_path: Path) -> None:
    """BOS's log was rotated before ELS published essays-ready: nobody can say BOS did not consume it."""
    world = copy.deepcopy(load_world_dir(require_corpus("healthy-regular")))
    batch = full_batch_id("healthy-regular", "03ccad95")
    published = "2026-01-20T14:26:52"  # ELS relayed huleedu.els.batch.essays.ready.v1 at 14:26:52.83
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = [ln for ln in lines if ln[:19] < published]
    v = _verdict(world, batch, tmp_path)
    aw = v["awaited"]
    assert v["status"] == "stuck" and aw["produced"] is True and aw["published"] is True
    assert aw["consumed"] is None and aw["consumed_state"] == "unknown"
    assert "end before the event was published" in aw["consumed_reason"]
    ids = {f["id"] for f in v["findings"]}
    assert "event.not_consumed" not in ids and "event.dropped" not in ids
    assert v["root_cause"] is None  # nothing in evidence explains it: no guess


def test_without_the_database_log_enum_rejections_are_not_evaluated_not_absent(tmp_path: Path) -> None:
    """The ELS database container's log (where PostgreSQL names the rejected label) was not captured."""
    world = copy.deepcopy(load_world_dir(require_corpus("seed-variant-a")))
    del world.logs[ELS_DB]
    v = _verdict(world, SEED_BATCH, tmp_path)
    reasons = {n["rule"]: n["reason"] for n in v["not_evaluated"]}
    assert f"logs:{ELS_DB}" in reasons.get("db.enum_value_rejected", "")
    assert "db.enum_value_rejected" not in [c["finding"] for c in v["chain"]]
    # the drift is still linked to this batch through ELS's own failed handling of its registration
    assert v["root_cause"]["finding"] == "enum.label_missing" and v["responsible_service"] == "els"
    assert v["chain"][1]["finding"] == "consumer.handler_failed"
