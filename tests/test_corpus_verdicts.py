"""The kit's verdicts on the five reference worlds produced outside the project."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from huledu_forensics.investigation import investigate
from tests.support.corpus import CORPUS_TARGETS, corpus_bundle, full_batch_id

SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
SEED_REGISTRATION = "9437fe03-1195-4241-b532-91d36df0b1c2"
SEED_PIPELINE = "7242c19e-039b-43d3-b37f-b144133706c9"
# The expected verdict of every corpus batch, derived from the raw rows and lines without the kit
# (corpus_expected.md explains each row).
EXPECTED = list(csv.DictReader((Path(__file__).parent / "support" / "corpus_expected.csv").open()))


def _slug_to_rule(slug: str) -> tuple[str | None, dict[str, object]]:
    """The table's root-cause slug (written independently of the kit) as a rule id and the facts
    the root cause's finding must carry."""
    kind, _, rest = slug.partition(":")
    if kind == "none":
        return None, {}
    if kind == "validation_failures_block_completion":
        return "validation.failures_block_completion", {}
    if kind == "outbox_retry_exhausted":
        svc, topic = rest.split(":", 1)
        return "outbox.poisoned", {"service": svc, "topic": topic}
    if kind == "enum_label_missing":
        where, value = rest.rsplit(":", 1)
        db, enum = where.split(".")
        return "enum.label_missing", {"database": db, "enum": enum, "missing_value": value}
    if kind == "handler_dropped_wrong_state":
        svc, topic, state = rest.split(":")
        return "event.dropped", {"service": svc, "topic": topic, "cause": "wrong_state",
                                 "detail": state}
    raise AssertionError(f"root-cause slug {slug!r} has no rule in the kit")


def _yn(v: object) -> str:
    return {True: "yes", False: "no", None: "unknown"}[v]  # type: ignore[index]


@pytest.mark.parametrize("row", EXPECTED, ids=[f"{r['world']}:{r['batch_id'][:8]}" for r in EXPECTED])
def test_corpus_batch_verdict(row: dict[str, str]) -> None:
    """Every batch of the corpus gets the verdict of the independently derived table."""
    v = investigate(corpus_bundle(row["world"]), row["batch_id"]).verdict.to_json()
    assert v["batch_id"] == row["batch_id"]
    assert v["flow"] == row["flow"]
    assert v["current_state"] == row["bos_status"]
    healthy = row["healthy"] == "yes"
    assert v["healthy"] is healthy
    assert v["status"] == ("healthy" if healthy else "stuck")
    progress = row["progress"]
    if progress.startswith("pipeline_completed"):
        assert v["current_step"] == "pipeline_completed"
    elif progress == "ready_awaiting_client_pipeline_request":
        assert v["current_step"] == "ready_for_pipeline_execution"
    assert v["awaited_event"] == (row["awaited_event"] or None)
    aw = v["awaited"] or {}
    for k in ("produced", "published"):
        if row[k]:
            assert _yn(aw.get(k)) == row[k], k
    if row["consumed"]:
        assert aw["consumed_state"] == row["consumed"]
    if row["consumed_outcome"]:
        outcome, _, cause = row["consumed_outcome"].partition("_")
        assert aw["outcome"] == outcome
        assert (aw["outcome_cause"] or "") == (cause.replace("wrong_state", "wrong_state") or "")
    rule, facts = _slug_to_rule(row["root_cause"])
    assert (v["root_cause"] or {}).get("finding") == rule
    if rule is None:
        assert not [f for f in v["findings"] if f["severity"] in ("critical", "error", "warning")]
        assert v["responsible_service"] is None
    else:
        assert v["chain"][0]["finding"] == rule
        got = v["root_cause"]["facts"]
        for k, want in facts.items():
            assert want in str(got.get(k)) if k == "detail" else got.get(k) == want, k
        assert v["responsible_service"] == row["responsible_service"]


def test_table_covers_every_batch_of_the_corpus() -> None:
    in_table = {(r["world"], r["batch_id"]) for r in EXPECTED}
    in_corpus = {(w, str(b)) for w in CORPUS_TARGETS
                 for b in corpus_bundle(w).table("huleedu_batch_orchestrator", "batches")["id"]}
    assert in_table == in_corpus


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
