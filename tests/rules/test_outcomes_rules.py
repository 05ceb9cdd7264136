"""Handler outcomes, container lifecycle and evidence-linked root causes (issue 7), on the reference
corpus with one fact changed at a time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from huledu_forensics.model import names as N
from huledu_forensics.rules import all_rules
from huledu_forensics.verdict import causal_order, explained_by
from huledu_forensics.world import World
from tests.rules.test_rules import SEED, VALIDATION, _plain, found, run

DROPPED = "03ccad95-8169-4dab-ac81-590b378b078f"  # healthy-regular: BOS dropped BatchEssaysReady
READY = N.BATCHES[0]
BOS_DB = N.BATCHES[0]
ELS_DB = N.TRACKERS[0]
BOS_CONTAINER = "huleedu_batch_orchestrator_service"
T_READY = "huleedu.els.batch.essays.ready.v1"


def test_event_dropped_is_the_root_cause_not_consumer_lag() -> None:
    inv = _plain("healthy-regular", DROPPED)
    v = inv.verdict.to_json()
    aw = v["awaited"]
    assert aw["topic"] == T_READY
    assert (aw["consumed_state"], aw["outcome"], aw["outcome_cause"]) == ("yes", "dropped", "wrong_state")
    assert "awaiting_student_validation" in aw["outcome_detail"]
    assert found(inv, "event.not_consumed") == []
    (f,) = found(inv, "event.dropped")
    assert v["root_cause"]["finding"] == "event.dropped"
    assert v["responsible_service"] == "bos"
    assert {e.part for e in f.evidence} == {f"logs/{BOS_CONTAINER}/combined.log"}
    # the handling run starts with BOS's own handler line, at or after the event's publication
    assert aw["consumed_at"] >= aw["published_at"]
    h = inv.handlings()
    assert ((h["topic"] == T_READY) & (h["outcome"] == "dropped") & (h["service"] == "bos")).sum() == 1


def _without_logs(container: str, state: str | None = None):
    def mutate(w: World) -> None:
        w.logs = {c: v for c, v in w.logs.items() if c != container}
        if state is not None:
            w.containers = [dataclasses.replace(c, state=state, started_at=None)
                            if c.name == container else c for c in w.containers]
    return mutate


def test_consumed_is_unknown_without_the_consumers_logs(tmp_path: Path) -> None:
    inv = run("healthy-regular", DROPPED, tmp_path, _without_logs(BOS_CONTAINER))
    aw = inv.verdict.to_json()["awaited"]
    assert aw["consumed_state"] == "unknown" and aw["consumed"] is None
    assert "no logs" in aw["consumed_reason"]
    assert found(inv, "event.not_consumed") == [] and found(inv, "event.dropped") == []
    assert inv.verdict.to_json()["root_cause"] is None


def test_consumer_container_never_started_is_the_root_cause(tmp_path: Path) -> None:
    inv = run("healthy-regular", DROPPED, tmp_path, _without_logs(BOS_CONTAINER, "created"))
    v = inv.verdict.to_json()
    assert v["awaited"]["consumed_state"] == "unknown"
    assert "never ran" in v["awaited"]["consumed_reason"]
    (f,) = found(inv, "container.not_running", "error")
    assert f.facts["kind"] == "created" and f.facts["role"] == "consumer"
    assert v["root_cause"]["finding"] == "container.not_running"
    assert v["responsible_service"] == "bos"
    assert found(inv, "event.not_consumed") == []


def test_running_containers_give_no_container_finding() -> None:
    assert found(_plain("healthy-regular", DROPPED), "container.not_running") == []


def test_enum_drift_no_write_hit_does_not_outrank_direct_evidence(tmp_path: Path) -> None:
    def drift(w: World) -> None:  # BOS built by Alembic: batch_status_enum with 6 labels
        w.databases[BOS_DB].enums["batch_status_enum"] = [
            "awaiting_content_validation", "content_ingestion_failed", "awaiting_pipeline_configuration",
            "processing_pipelines", "completed_successfully", "failed_critically"]
    inv = run("validation-failure-never-completes", VALIDATION, tmp_path, drift)
    (drifted,) = [f for f in found(inv, "enum.label_missing", "critical")
                  if f.facts["missing_value"] == N.S_READY]
    assert drifted.facts["link"] == "awaited"
    assert inv.verdict.to_json()["root_cause"]["finding"] == "validation.failures_block_completion"


def test_unreadable_database_never_supplies_the_root_cause(tmp_path: Path) -> None:
    def els_unreachable(w: World) -> None:
        del w.databases[ELS_DB]
    inv = run("seed-variant-a", SEED, tmp_path, els_unreachable)
    v = inv.verdict.to_json()
    assert v["completeness"][f"database:{ELS_DB}"] == "missing"
    rc = v["root_cause"]
    assert rc is None or rc["facts"].get("database") != BOS_DB
    assert not (rc and rc["finding"] == "enum.label_missing")


def test_no_bos_evidence_is_unknown_not_healthy(tmp_path: Path) -> None:
    def no_bos(w: World) -> None:
        del w.databases[BOS_DB]
        w.logs = {c: v for c, v in w.logs.items() if not c.startswith("huleedu_batch_orchestrator")}
    inv = run("healthy-guest", "4f9d465a-d9c0-4fb0-9443-bebd5635474f", tmp_path, no_bos)
    v = inv.verdict.to_json()
    assert v["healthy"] is False and v["status"] == "unknown"
    assert v["current_state"] is None and v["flow"] == "unknown"


def test_every_rule_is_in_the_explains_graph() -> None:
    ids = {r.id for r in all_rules()}
    by = explained_by()
    for r in all_rules():
        assert r.explains is not None, f"{r.id} does not declare what it explains (explains=...)"
        assert set(r.explains) <= ids, (r.id, set(r.explains) - ids)
        assert r.id not in by.get(r.id, set()), f"{r.id} explains itself (a cycle)"
    assert set(causal_order()) == ids
    # the findings that can be a root cause explain something or are explained by nothing
    assert by["state.dwell_exceeded"] and by["event.not_produced"]


def test_seed_chain_follows_the_graph() -> None:
    order = causal_order()
    assert order.index("enum.label_missing") < order.index("consumer.handler_failed") < order.index(
        "event.not_produced")


# ---------------------------------------------------------------- content ledger

def test_content_lost_after_failed_assignment_is_unplaced() -> None:
    inv = _plain("seed-variant-a", "cd975dce-f28e-4c06-a82e-28eaf7fb5343")
    (f,) = found(inv, "content.unplaced")
    assert f.facts["unplaced"] == 5 and f.facts["places"] == {"lost": 5} and f.facts["expected"] == 5
    assert inv.verdict.to_json()["content"]["lost"] == 5
    # parked content is the pending rule's, not this one's
    assert found(_plain("seed-variant-a", SEED), "content.unplaced") == []
    assert _plain("seed-variant-a", SEED).verdict.to_json()["content"]["pending"] == 2


def test_validation_failure_has_a_final_place() -> None:
    inv = _plain("validation-failure-never-completes", VALIDATION)
    c = inv.verdict.to_json()["content"]
    assert (c["expected"], c["slot"], c["validation_failure"], c["lost"]) == (4, 3, 1, 0)
    assert c["essays_by_status"] == {"ready_for_processing": 3, "uploaded": 1}
    assert found(inv, "content.unplaced") == []


def test_excess_content_consumed_by_nobody(tmp_path: Path) -> None:
    import json

    import pandas as pd

    def excess(w: World) -> None:
        ob = w.databases[ELS_DB].tables["event_outbox"]
        row = ob.iloc[0].to_dict()
        row.update(id="0e0e0e0e-0000-4000-8000-000000000001", topic=N.T_EXCESS_CONTENT,
                   event_type=N.T_EXCESS_CONTENT, aggregate_id=VALIDATION, aggregate_type="batch",
                   event_data=json.dumps({"data": {"batch_id": VALIDATION,
                                                   "text_storage_id": "feedfeedfeedfeedfeedfeedfeedfeed"}}))
        w.databases[ELS_DB].tables["event_outbox"] = pd.concat([ob, pd.DataFrame([row])],
                                                               ignore_index=True)
    inv = run("validation-failure-never-completes", VALIDATION, tmp_path, excess)
    (f,) = found(inv, "content.excess_unconsumed")
    assert f.facts["consumers"] == [] and f.facts["events"] == 1
    assert found(_plain("validation-failure-never-completes", VALIDATION),
                 "content.excess_unconsumed") == []


# ---------------------------------------------------------------- differential diagnosis

def test_differential_names_the_first_divergence_from_a_healthy_batch() -> None:
    d = _plain("healthy-regular", DROPPED).verdict.to_json()["differential"]
    assert d["reference_batch"] and d["reference_batch"] != DROPPED
    div = d["divergence"]
    assert (div["service"], div["topic"], div["reference"]) == ("bos", T_READY, "handled")
    assert "dropped it (wrong_state)" in div["this"] and d["explained"] is True
    assert d["text"].startswith("A healthy REGULAR batch")


def test_differential_is_honest_without_a_healthy_batch() -> None:
    d = _plain("seed-variant-a", SEED).verdict.to_json()["differential"]
    assert d["reference_batch"] is None and d["divergence"] is None
    assert d["text"].startswith("No healthy GUEST batch")


def test_healthy_batch_at_rest_does_not_diverge() -> None:
    d = _plain("healthy-guest", "0df0b4f1-2829-42c6-a3c9-5e165d5e28fc").verdict.to_json()["differential"]
    assert d["divergence"] is None and d["aligned"] > 0


def test_swallowed_status_write_is_the_root_cause(tmp_path: Path) -> None:
    """GUEST content completed, BOS's status write rejected by a drifted enum and swallowed."""
    bid = "0df0b4f1-2829-42c6-a3c9-5e165d5e28fc"

    def swallow(w: World) -> None:
        bt = w.databases[BOS_DB].tables["batches"]
        bt.loc[bt["id"].astype(str) == bid, "status"] = "awaiting_content_validation"
        lines = w.logs[BOS_CONTAINER]["combined"]
        w.logs[BOS_CONTAINER]["combined"] = [
            ln.replace('"event": "Updated batch ' + bid + " status to BatchStatus.READY_FOR_PIPELINE_"
                       'EXECUTION", ', '"event": "Failed to update batch ' + bid + ' status: '
                       '(DBAPIError) invalid input value for enum batch_status_enum", ')
            .replace('"level": "info"', '"level": "error"')
            if f"Updated batch {bid} status to BatchStatus.READY" in ln else ln for ln in lines]
    inv = run("healthy-guest", bid, tmp_path, swallow)
    v = inv.verdict.to_json()
    (f,) = found(inv, "status.write_failed")
    assert f.facts["service"] == "bos"
    assert v["awaited"]["consumed_state"] == "yes" and v["awaited"]["outcome"] == "handled"
    assert v["root_cause"]["finding"] == "status.write_failed" and v["responsible_service"] == "bos"


def test_els_worker_never_started_is_the_root_cause_not_tracker_missing(tmp_path: Path) -> None:
    """ELS's worker was Created and never ran: BOS registered the batch, nothing in ELS."""
    def els_never_ran(w: World) -> None:
        _without_logs("huleedu_essay_lifecycle_worker", "created")(w)
        for t in ("batch_essay_trackers", "slot_assignments", "batch_pending_content", "essay_states"):
            df = w.databases[ELS_DB].tables[t]
            if "batch_id" in df:
                w.databases[ELS_DB].tables[t] = df[df["batch_id"].astype(str) != SEED]
        trk = w.databases[ELS_DB].tables["batch_essay_trackers"]
        sl = w.databases[ELS_DB].tables["slot_assignments"]
        w.databases[ELS_DB].tables["slot_assignments"] = sl[sl["batch_tracker_id"].isin(trk["id"])]
    inv = run("seed-variant-a", SEED, tmp_path, els_never_ran)
    v = inv.verdict.to_json()
    assert found(inv, "tracker.missing")
    (f,) = found(inv, "container.not_running", "error")
    assert f.facts["service"] == "els" and f.facts["kind"] == "created"
    assert v["root_cause"]["finding"] == "container.not_running"
    assert v["responsible_service"] == "els"
    uploaded = [x for x in found(inv, "enum.label_missing") if x.facts["missing_value"] == "uploaded"]
    assert uploaded and uploaded[0].facts["link"] == "none"


def test_every_rule_has_a_next_step_in_the_postmortem() -> None:
    # the model declares one remedy per failure class (rule id): none missing, none for a rule that is gone
    from huledu_forensics import model
    from huledu_forensics.postmortem import NEXT_STEPS
    assert {r.id for r in all_rules()} == set(model.remediation.REMEDIATION) == set(NEXT_STEPS)


def test_failed_phase_is_a_finding(tmp_path: Path) -> None:
    import json
    bid = "4f9d465a-d9c0-4fb0-9443-bebd5635474f"

    def fail(w: World) -> None:
        bt = w.databases[BOS_DB].tables["batches"]
        i = bt.index[bt["id"].astype(str) == bid][0]
        conf = json.loads(bt.at[i, "pipeline_configuration"])
        conf["spellcheck"]["status"] = "failed"
        bt.at[i, "pipeline_configuration"] = json.dumps(conf)
    inv = run("healthy-guest", bid, tmp_path, fail)
    (f,) = found(inv, "pipeline.phase_failed")
    assert f.facts["phases"] == {"spellcheck": "failed"}
    assert inv.verdict.to_json()["healthy"] is False
    assert found(_plain("healthy-guest", bid), "pipeline.phase_failed") == []


def test_a_rest_line_is_not_a_consumption(tmp_path: Path) -> None:
    """A REGULAR batch waiting for StudentAssociationsConfirmed: BOS REST lines starting with
    "Batch " must not count as BOS consuming it; only BOS's handler logger does."""
    bid = "1369d3b0-94eb-4f76-a0a0-272417ae3e9f"

    def waiting(w: World) -> None:
        bt = w.databases[BOS_DB].tables["batches"]
        bt.loc[bt["id"].astype(str) == bid, "status"] = "awaiting_student_validation"
        lines = w.logs[BOS_CONTAINER]["combined"]
        w.logs[BOS_CONTAINER]["combined"] = [
            ln for ln in lines if not (bid in ln and ("student_associations_confirmed" in ln
                                                      or "batch_essays_ready" in ln
                                                      or "client_pipeline_request" in ln))]
    inv = run("healthy-regular", bid, tmp_path, waiting)
    aw = inv.verdict.to_json()["awaited"]
    assert aw["topic"] == "huleedu.class.student.associations.confirmed.v1"
    assert aw["consumed_state"] == "no" and aw["consumed"] is False
    # BOS did log REST lines about this batch ("Batch … registered successfully via service layer")
    assert inv.logs["message"].astype(str).str.startswith("Batch ").any()


def test_handled_without_transition(tmp_path: Path) -> None:
    """BOS handled BatchEssaysReady and logged no refusal, yet the batch did not move."""
    def silent(w: World) -> None:
        lines = w.logs[BOS_CONTAINER]["combined"]
        w.logs[BOS_CONTAINER]["combined"] = [ln for ln in lines if not (
            DROPPED in ln and "in unexpected state" in ln)]
    inv = run("healthy-regular", DROPPED, tmp_path, silent)
    v = inv.verdict.to_json()
    assert (v["awaited"]["consumed_state"], v["awaited"]["outcome"]) == ("yes", "handled")
    assert found(inv, "event.dropped") == []
    assert v["root_cause"]["finding"] == "event.handled_no_transition"
    assert v["responsible_service"] == "bos"
    assert [c["finding"] for c in v["chain"]][1:] == ["pipeline.request_rejected", "state.dwell_exceeded"]
