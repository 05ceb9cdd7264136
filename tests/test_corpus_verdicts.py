"""The kit's verdicts on the five reference worlds produced outside the project."""

from __future__ import annotations

import pytest

from huledu_forensics.investigation import investigate
from tests.support.corpus import CORPUS_TARGETS, corpus_bundle, full_batch_id

SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
SEED_REGISTRATION = "9437fe03-1195-4241-b532-91d36df0b1c2"
SEED_PIPELINE = "7242c19e-039b-43d3-b37f-b144133706c9"


@pytest.mark.parametrize("world", sorted(CORPUS_TARGETS))
def test_target_verdict(world: str) -> None:
    prefix, state, awaited, root = CORPUS_TARGETS[world]
    bid = full_batch_id(world, prefix)
    v = investigate(corpus_bundle(world), bid).verdict.to_json()
    assert v["batch_id"] == bid
    assert v["current_state"] == state
    assert v["awaited_event"] == awaited
    assert (v["root_cause"] or {}).get("finding") == root
    if root is None:
        assert v["healthy"] is True
        assert not [f for f in v["findings"] if f["severity"] in ("critical", "error", "warning")]
    else:
        assert v["healthy"] is False and v["status"] == "stuck"
        assert v["chain"][0]["finding"] == root


@pytest.mark.parametrize("start", [SEED_BATCH, SEED_REGISTRATION, SEED_PIPELINE,
                                   "62431c17-f141-444a-b709-6c08e7c6eff2",
                                   "cf3ea970ffc94727b79cdb6051f76e6a"])
def test_seed_incident_from_any_id(start: str) -> None:
    inv = investigate(corpus_bundle("seed-variant-a"), start)
    v = inv.verdict.to_json()
    assert v["batch_id"] == SEED_BATCH
    assert v["flow"] == "GUEST"
    rc = v["root_cause"]
    assert rc["finding"] == "enum.label_missing"
    assert rc["facts"]["database"] == "huleedu_essay_lifecycle"
    assert rc["facts"]["enum"] == "essay_status_enum"
    assert rc["facts"]["missing_value"] == "uploaded"
    chain = [c["finding"] for c in v["chain"]]
    assert chain == ["enum.label_missing", "db.enum_value_rejected", "consumer.handler_failed",
                     "tracker.registered_without_essays", "pending.orphaned_content",
                     "event.not_produced", "pipeline.request_rejected", "state.dwell_exceeded"]
    facts = {c["finding"]: c["facts"] for c in v["chain"]}
    assert facts["tracker.registered_without_essays"]["tracker"] is True
    assert facts["tracker.registered_without_essays"]["essay_state_rows"] == 0
    assert facts["pending.orphaned_content"]["pending_content"] == 2
    assert facts["event.not_produced"]["topic"] == "huleedu.batch.content.provisioning.completed.v1"
    assert facts["pipeline.request_rejected"]["pipeline_correlation_id"] == SEED_PIPELINE
    assert facts["consumer.handler_failed"]["partition"] == 2
    assert facts["consumer.handler_failed"]["offset"] == 12


def test_seed_scope_finds_both_correlations_and_essays() -> None:
    scope = investigate(corpus_bundle("seed-variant-a"), SEED_BATCH).scope
    assert scope.ids["correlation"] == {SEED_REGISTRATION, SEED_PIPELINE}
    assert scope.ids["essay"] == {"62431c17-f141-444a-b709-6c08e7c6eff2",
                                  "fc35b304-58eb-44b6-936a-789055876b56"}
    assert scope.ids["text_storage"] == {"cf3ea970ffc94727b79cdb6051f76e6a",
                                         "b2f1d444e90243fc8a79c2285242c352"}
    assert scope.other_batches == set()


def test_db_log_error_is_in_the_evidence_and_timeline() -> None:
    inv = investigate(corpus_bundle("seed-variant-a"), SEED_BATCH)
    rejected = next(f for f in inv.findings if f.id == "db.enum_value_rejected"
                    and f.severity == "error")
    assert rejected.evidence[0].part == "logs/huleedu_essay_lifecycle_db/combined.log"
    lanes = set(inv.timeline["lane"])
    assert "huleedu_essay_lifecycle_db" in lanes
    lines = inv.evidence_lines()
    assert lines["message"].str.contains('invalid input value for enum essay_status_enum: "uploaded"',
                                         regex=False).any()


def test_completed_batch_without_tracker_is_not_flagged() -> None:
    """ELS deletes the tracker ~5 min after cj_assessment: that is cleanup, not a fault."""
    b = corpus_bundle("healthy-guest")
    v = investigate(b, full_batch_id("healthy-guest", "25e2ef2d")).verdict.to_json()
    assert "tracker.missing" not in [f["finding"] for f in v["chain"]]


def test_every_batch_of_every_world_gets_a_verdict() -> None:
    for world in CORPUS_TARGETS:
        b = corpus_bundle(world)
        batches = b.table("huleedu_batch_orchestrator", "batches")
        for bid in batches["id"]:
            v = investigate(b, str(bid)).verdict.to_json()
            assert v["status"] in ("healthy", "stuck", "degraded")
            assert v["current_state"] is not None
