"""Each rule: it fires (with its exact evidence), it stays silent on healthy batches, and it reports
``not_evaluated`` when its evidence is missing. Cases are built from the reference corpus, some with
one fact changed, so the rules are checked against data the kit did not generate."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from huledu_forensics import model
from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.investigation import Investigation, investigate
from huledu_forensics.model import names as N
from huledu_forensics.world import World, load_world_dir
from tests.support.corpus import shared_dir
from tests.support.env import unavailable

SEED = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
POISONED = "37e88dff-166c-4847-9701-a5b145a32fa6"
VALIDATION = "1f60ded5-5c8f-45f3-b6be-96a5c9cc4c66"
HEALTHY = "4f9d465a-d9c0-4fb0-9443-bebd5635474f"
ELS_DB = model.names.ELS_OUTBOX[0]


def _world(name: str) -> World:
    shared = shared_dir()
    if shared is None:
        unavailable("shared/corpus is not next to this checkout; set HULEDU_SHARED_DIR")
    return load_world_dir(shared / "corpus" / name)


_tmp_counter = iter(range(10_000))


def run(world: str, batch: str, tmp: Path, mutate: Callable[[World], None] | None = None
        ) -> Investigation:
    w = _world(world)
    if mutate is not None:
        mutate(w)
    b = write_world_bundle(w, tmp / f"b{next(_tmp_counter)}")
    return investigate(b, batch)


@functools.cache
def _plain(world: str, batch: str) -> Investigation:
    import tempfile
    return run(world, batch, Path(tempfile.mkdtemp()))


def found(inv: Investigation, rule_id: str, severity: str | None = None) -> list:
    return [f for f in inv.findings if f.id == rule_id and (severity is None or f.severity == severity)]


def not_evaluated(inv: Investigation) -> set[str]:
    return {n["rule"] for n in inv.not_evaluated}


def serious(inv: Investigation) -> list[str]:
    return [f.id for f in inv.findings if f.severity in ("critical", "error", "warning")]


# ---------------------------------------------------------------- enums

def test_enum_label_missing_fires_with_enum_and_rejection_evidence() -> None:
    inv = _plain("seed-variant-a", SEED)
    (f,) = [x for x in found(inv, "enum.label_missing", "critical")
            if x.facts["missing_value"] == "uploaded"]
    assert str(f.evidence[0]) == f"enums.json#{ELS_DB}.essay_status_enum"
    assert [str(e) for e in f.evidence[1:]] == ["logs/huleedu_essay_lifecycle_db/combined.log#L47"]
    assert f.facts["linked_rejections"] == 1


def test_enum_drift_off_the_path_is_only_info() -> None:
    inv = _plain("healthy-guest", HEALTHY)   # BOS pipeline_phase_enum lacks nlp: never written here
    assert {f.severity for f in found(inv, "enum.label_missing")} <= {"info"}
    assert serious(inv) == []


def test_enum_rules_not_evaluated_without_enums_or_db_logs(tmp_path: Path) -> None:
    def strip(w: World) -> None:
        for img in w.databases.values():
            img.enums = {}
        for c in [c for c in w.logs if c.endswith("_db")]:
            del w.logs[c]
    inv = run("seed-variant-a", SEED, tmp_path, strip)
    assert {"enum.label_missing", "db.enum_value_rejected"} <= not_evaluated(inv)
    assert inv.verdict.to_json()["completeness"][f"enums:{ELS_DB}"] == "missing"


def test_db_enum_value_rejected_links_the_batch() -> None:
    inv = _plain("seed-variant-a", SEED)
    (f,) = found(inv, "db.enum_value_rejected", "error")
    assert f.facts["value"] == "uploaded" and f.facts["table"] == "essay_states"
    assert str(f.evidence[0]) == "logs/huleedu_essay_lifecycle_db/combined.log#L47"
    assert found(_plain("healthy-guest", HEALTHY), "db.enum_value_rejected") == []


# ---------------------------------------------------------------- consumers

def test_consumer_handler_failed_names_topic_partition_offset() -> None:
    (f,) = found(_plain("seed-variant-a", SEED), "consumer.handler_failed")
    assert f.facts["topic"] == N.T_REGISTERED
    assert (f.facts["partition"], f.facts["offset"]) == (2, 12)
    assert "not a retry" in f.summary or "does not mean a retry" in f.summary
    refs = [e.part for e in f.evidence]
    assert set(refs) == {"logs/huleedu_essay_lifecycle_worker/combined.log"}
    # the handling run: Processing event, Error routing event, Event processing failed, offset not
    # committed
    assert len(f.evidence) == 4


def test_logs_rules_not_evaluated_without_service_logs(tmp_path: Path) -> None:
    def strip(w: World) -> None:
        w.logs = {c: v for c, v in w.logs.items() if c.endswith("_db")}
    inv = run("seed-variant-a", SEED, tmp_path, strip)
    assert {"consumer.handler_failed", "pipeline.request_rejected",
            "event.not_consumed"} <= not_evaluated(inv)
    # the tables still carry the story
    assert inv.verdict.to_json()["root_cause"]["finding"] == "enum.label_missing"


def test_pipeline_request_rejected() -> None:
    (f,) = found(_plain("seed-variant-a", SEED), "pipeline.request_rejected")
    assert f.facts["pipeline_correlation_id"] == "7242c19e-039b-43d3-b37f-b144133706c9"
    assert f.facts["current_status"] == "awaiting_content_validation"
    assert found(_plain("healthy-guest", HEALTHY), "pipeline.request_rejected") == []


# ---------------------------------------------------------------- tracker, pending, validation

def test_tracker_registered_without_essays() -> None:
    (f,) = found(_plain("seed-variant-a", SEED), "tracker.registered_without_essays")
    assert f.facts == {"tracker": True, "expected_count": 2, "essay_state_rows": 0, "slot_rows": 2}
    assert str(f.evidence[0]).startswith(f"tables/{ELS_DB}/batch_essay_trackers.parquet#id=")
    assert found(_plain("healthy-guest", HEALTHY), "tracker.registered_without_essays") == []


def _variant_b(w: World) -> None:
    """Variant B (post-9f693272): the registration rolled back whole, no tracker, no slots."""
    tables = w.databases[ELS_DB].tables
    tr = tables["batch_essay_trackers"]
    tid = tr.loc[tr["batch_id"] == SEED, "id"].tolist()
    tables["batch_essay_trackers"] = tr[tr["batch_id"] != SEED]
    sa = tables["slot_assignments"]
    tables["slot_assignments"] = sa[~sa["batch_tracker_id"].isin(tid)]


def test_tracker_missing_and_pending_orphaned_in_variant_b(tmp_path: Path) -> None:
    inv = run("seed-variant-a", SEED, tmp_path, _variant_b)
    assert found(inv, "tracker.missing") and not found(inv, "tracker.registered_without_essays")
    (p,) = found(inv, "pending.orphaned_content")
    assert p.facts["pending_content"] == 2 and p.facts["tracker"] is False
    assert inv.verdict.to_json()["root_cause"]["finding"] == "enum.label_missing"


def test_tracker_rules_not_evaluated_without_els_tables(tmp_path: Path) -> None:
    def strip(w: World) -> None:
        del w.databases[ELS_DB]
    inv = run("seed-variant-a", SEED, tmp_path, strip)
    assert {"tracker.registered_without_essays", "tracker.missing", "pending.orphaned_content",
            "validation.failures_block_completion"} <= not_evaluated(inv)
    assert inv.verdict.to_json()["completeness"][f"database:{ELS_DB}"] == "missing"


def test_pending_orphaned_content_silent_on_healthy() -> None:
    assert found(_plain("healthy-guest", HEALTHY), "pending.orphaned_content") == []
    assert found(_plain("seed-variant-a", SEED), "pending.orphaned_content")[0].facts[
        "text_storage_ids"] == ["cf3ea970ffc94727b79cdb6051f76e6a", "b2f1d444e90243fc8a79c2285242c352"]


def test_validation_failures_block_completion() -> None:
    inv = _plain("validation-failure-never-completes", VALIDATION)
    (f,) = found(inv, "validation.failures_block_completion")
    assert f.facts["failed_files"] >= 1 and f.facts["open_slots"] == f.facts["failed_files"]
    assert any(e.part.endswith("batch_validation_failures.parquet") for e in f.evidence)
    assert found(_plain("healthy-guest", HEALTHY), "validation.failures_block_completion") == []


# ---------------------------------------------------------------- outbox and flow

def test_outbox_poisoned_is_the_root_cause() -> None:
    inv = _plain("outbox-poisoned", POISONED)
    crit = found(inv, "outbox.poisoned", "critical")
    assert len(crit) == 1 and crit[0].facts["topic"] == N.T_CONTENT_COMPLETED
    assert crit[0].facts["retry_count"] == 5
    assert found(inv, "event.not_published")
    assert found(_plain("healthy-guest", HEALTHY), "outbox.poisoned") == []


def test_outbox_unpublished_without_retries(tmp_path: Path) -> None:
    def stall(w: World) -> None:
        ob = w.databases[ELS_DB].tables["event_outbox"]
        mask = (ob["aggregate_id"] == POISONED) & (ob["topic"] == N.T_CONTENT_COMPLETED)
        ob.loc[mask, "retry_count"] = 0
        ob.loc[mask, "last_error"] = None
    inv = run("outbox-poisoned", POISONED, tmp_path, stall)
    (f,) = found(inv, "outbox.unpublished")
    assert f.facts["topic"] == N.T_CONTENT_COMPLETED
    assert not found(inv, "outbox.poisoned", "critical")
    assert found(_plain("healthy-guest", HEALTHY), "outbox.unpublished") == []


def test_outbox_rules_not_evaluated_without_any_outbox(tmp_path: Path) -> None:
    def strip(w: World) -> None:
        for img in w.databases.values():
            img.tables.pop("event_outbox", None)
    inv = run("outbox-poisoned", POISONED, tmp_path, strip)
    assert {"outbox.poisoned", "outbox.unpublished", "event.not_produced",
            "event.not_published"} <= not_evaluated(inv)


def test_event_not_produced() -> None:
    (f,) = found(_plain("seed-variant-a", SEED), "event.not_produced")
    assert f.facts == {"topic": N.T_CONTENT_COMPLETED, "producer": "els", "step":
                       "ready_for_pipeline_execution", "produced": False}
    assert found(_plain("healthy-guest", HEALTHY), "event.not_produced") == []


def test_event_not_consumed(tmp_path: Path) -> None:
    """Content completion published by ELS, but BOS never logged handling it."""
    def publish_and_drop_consumer(w: World) -> None:
        ob = w.databases[ELS_DB].tables["event_outbox"]
        mask = (ob["aggregate_id"] == POISONED) & (ob["topic"] == N.T_CONTENT_COMPLETED)
        ob.loc[mask, "published_at"] = ob.loc[mask, "created_at"]
        ob.loc[mask, "retry_count"] = 0
        ob.loc[mask, "last_error"] = None
    inv = run("outbox-poisoned", POISONED, tmp_path, publish_and_drop_consumer)
    (f,) = found(inv, "event.not_consumed")
    assert f.facts["consumer"] == "bos" and f.facts["published"] is True
    assert found(_plain("healthy-guest", HEALTHY), "event.not_consumed") == []


def test_state_dwell_exceeded() -> None:
    (f,) = found(_plain("seed-variant-a", SEED), "state.dwell_exceeded")
    assert f.facts["step"] == "registered" and f.facts["waited_s"] > f.facts["expected_dwell_s"]
    assert found(_plain("healthy-guest", HEALTHY), "state.dwell_exceeded") == []


def test_dwell_not_exceeded_when_collected_early(tmp_path: Path) -> None:
    inv = investigate(_plain("seed-variant-a", SEED).bundle, SEED,
                      until=pd.Timestamp("2025-11-20T18:41:55Z"))
    assert found(inv, "state.dwell_exceeded") == []
