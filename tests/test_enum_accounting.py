"""Enum accounting: every enum the bundle holds is compared with the model's whole declared label set,
not only with the writes the model knows (``model.ENUM_WRITES``). healthy-guest worlds changed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from huledu_forensics import cards, model, report
from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.report import verdict_summary
from tests.support.corpus import full_batch_id
from tests.test_novel_worlds import _corpus
from tests.test_novel_worlds2 import ELS, GUEST_BATCH, _drop_label, _inv


def _found(v: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [f for f in v["findings"] if f["id"] == rule_id]


def test_a_declared_label_no_known_step_writes_is_a_caveat_on_a_healthy_verdict(tmp_path: Path) -> None:
    """healthy-guest with ELS essay_status_enum lacking 'essay_critical_failure', a label of the model's
    declared set that no ENUM_WRITES entry places on a step. Must: the finding names the enum and the
    label at warning severity; the verdict stays healthy (nothing of this batch failed) but carries the
    caveat, and `why`'s text says it; no root cause invented."""
    label = "essay_critical_failure"
    assert label in model.PYTHON_ENUMS[(ELS, "essay_status_enum")]
    assert not [w for w in model.ENUM_WRITES if w.value == label]
    world = _corpus("healthy-guest")
    _drop_label(world, ELS, "essay_status_enum", label)
    inv = _inv(world, GUEST_BATCH, tmp_path)
    v = inv.verdict.to_json()
    (f,) = _found(v, "enum.label_missing_unknown_step")
    assert f["severity"] == "warning"
    assert f["facts"]["database"] == ELS and f["facts"]["enum"] == "essay_status_enum"
    assert f["facts"]["missing_values"] == [label]
    assert "essay_status_enum" in f["summary"] and label in f["summary"]
    assert v["status"] == "healthy" and v["root_cause"] is None
    assert [c["finding"] for c in v["caveats"]] == ["enum.label_missing_unknown_step"]
    text = verdict_summary(v)
    assert "HEALTHY" in text and "caveat:" in text and label in text, text
    assert label in str(cards.findings_table(inv))  # the report's findings section
    card = cards.verdict_card(v)  # the card's own row, not a raw JSON dump of the field
    assert "<div>Caveats</div>" in card.body and label in card.body and '"finding"' not in card.body
    assert "caveat:" in card.text
    # no known write of it: the per-write rule does not name it
    assert not [x for x in _found(v, "enum.label_missing") if x["facts"]["missing_value"] == label]


def test_a_known_write_of_a_phase_label_follows_the_requested_pipelines(tmp_path: Path) -> None:
    """healthy-guest with ELS essay_status_enum lacking 'nlp_success' (no known write: a caveat) and
    'spellchecked_success' (ELS's spellcheck result handler writes it, ENUM_WRITES knows it). The guest
    batch requested spellcheck and its pipeline completed: the known write is placed on its path by
    enum.label_missing, and only the unknown one is in the caveat."""
    world = _corpus("healthy-guest")
    for label in ("nlp_success", "spellchecked_success"):
        _drop_label(world, ELS, "essay_status_enum", label)
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    (u,) = _found(v, "enum.label_missing_unknown_step")
    assert u["facts"]["missing_values"] == ["nlp_success"]
    (k,) = [f for f in _found(v, "enum.label_missing") if f["facts"]["missing_value"] == "spellchecked_success"]
    assert k["facts"]["on_path"] is True and k["facts"]["writer"] == "els"
    assert v["status"] != "healthy"  # a write the batch's own spellcheck needed is missing


def test_a_phase_label_of_a_phase_the_batch_never_ran_is_only_info(tmp_path: Path) -> None:
    """healthy-regular's guest batch 5785662f requested spellcheck only and its pipeline completed; ELS
    essay_status_enum lacks 'cj_assessment_success' (ELS's CJ result handling writes it). The write
    is known but not on this batch's path: info, the verdict stays healthy without a caveat."""
    batch = full_batch_id("healthy-regular", "5785662f")
    world = _corpus("healthy-regular")
    _drop_label(world, ELS, "essay_status_enum", "cj_assessment_success")
    v = _inv(world, batch, tmp_path).verdict.to_json()
    (k,) = _found(v, "enum.label_missing")
    assert k["facts"]["missing_value"] == "cj_assessment_success" and k["severity"] == "info"
    assert k["facts"]["on_path"] is False
    assert (v["status"], v["caveats"]) == ("healthy", [])


def test_an_extra_label_is_an_info_note_only(tmp_path: Path) -> None:
    """healthy-regular (its enums are exactly the declared sets) with one label added to ELS
    essay_status_enum that the model does not know. Must: one info note naming it (the model may be
    older than the database), verdict unchanged (healthy, no caveat)."""
    world = _corpus("healthy-regular")
    batch = full_batch_id("healthy-regular", "1da22e84")
    before = _inv(_corpus("healthy-regular"), batch, tmp_path / "a").verdict.to_json()
    world.databases[ELS].enums["essay_status_enum"].append("peer_review_success")
    v = _inv(world, batch, tmp_path / "b").verdict.to_json()
    (f,) = _found(v, "enum.label_extra")
    assert f["severity"] == "info" and f["facts"]["unknown_values"] == ["peer_review_success"]
    assert "older than the database" in f["summary"]
    assert not _found(before, "enum.label_extra")
    assert (v["status"], v["healthy"], v["root_cause"], v["caveats"]) == (
        before["status"], before["healthy"], before["root_cause"], before["caveats"]) == ("healthy", True, None, [])


def test_legacy_alembic_labels_are_named_as_such(tmp_path: Path) -> None:
    """healthy-guest's ELS enum holds the ten Alembic initial labels beside the declared ones."""
    v = _inv(_corpus("healthy-guest"), GUEST_BATCH, tmp_path).verdict.to_json()
    (f,) = [x for x in _found(v, "enum.label_extra") if x["facts"]["enum"] == "essay_status_enum"]
    assert f["facts"]["unknown_values"] == [] and "unregistered" in f["facts"]["legacy_values"]
    assert v["status"] == "healthy" and v["caveats"] == []


@pytest.mark.slow
def test_the_rendered_report_of_a_healthy_batch_carries_the_caveat(tmp_path: Path) -> None:
    """The headless HTML report (papermill) of the healthy guest batch, ELS lacking a declared label no
    known step writes: healthy exit code, and the page names the enum and the label."""
    world = _corpus("healthy-guest")
    _drop_label(world, ELS, "essay_status_enum", "essay_critical_failure")
    bundle = write_world_bundle(world, tmp_path / "bundle")
    res = report.run_report(bundle, GUEST_BATCH, tmp_path / "out")
    assert res.verdict["status"] == "healthy" and res.verdict["caveats"]
    page = res.html_path.read_text()
    assert "enum.label_missing_unknown_step" in page and "essay_critical_failure" in page
