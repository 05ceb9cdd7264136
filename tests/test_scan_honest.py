"""`scan` says only what the rows it read show: no claim that needs logs (consumed, handled), no claim
that rests on an absent row unless that table was read, and no "healthy" from a partial scan."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from huledu_forensics import cards, overview
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.model import names as N
from huledu_forensics.model.services import BOS_DB, ELS_DB, FILE_DB
from huledu_forensics.scan import (
    ERROR_CLASSES,
    ScanResult,
    error_class_meaning,
    scan_bundle,
    scan_profile,
    scan_verdict,
)
from huledu_forensics.simulate import build_world
from tests.support.pg_world import load_world_into_postgres, profile_for

DOWN = "postgresql+psycopg://nobody@127.0.0.1:1/none"
# What only a consumer's logs can show; a scan reads no log, so none of these may appear as its claim
LOG_CLAIMS = re.compile(r"not[_ .]consumed|never consumed|not[_ .]handled|rejected|dropped", re.I)


def _sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _classes(result: ScanResult) -> set[str]:
    return set(result.batches["error_class"])


def _says(result: ScanResult) -> str:
    """Everything a user reads from a scan: the terminal view and scan.json."""
    return result.render() + json.dumps(result.to_json(), default=str)


def test_every_error_class_the_scan_can_emit_states_rows_only() -> None:
    for cls, means in ERROR_CLASSES.items():
        assert means, cls
        assert not LOG_CLAIMS.search(cls) and not LOG_CLAIMS.search(means), (cls, means)
    assert "consumption not checked" in error_class_meaning("outbox.published.state_not_advanced")
    assert error_class_meaning("validation.failures:EMPTY_CONTENT") == ERROR_CLASSES["validation.failures"]


def test_a_published_awaited_event_is_not_called_unconsumed(make_pg_database: Any) -> None:
    world = build_world("outbox_poisoned")
    dsns = load_world_into_postgres(world, make_pg_database)
    _sql(dsns[ELS_DB], f'UPDATE "{N.ELS_OUTBOX[1]}" SET published_at = now() WHERE published_at IS NULL')
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert result.complete and result.stuck == 1
    row = result.batches.iloc[0]
    assert row["outbox_row"] == "published"
    assert row["error_class"] == "outbox.published.state_not_advanced"
    said = _says(result)
    assert not LOG_CLAIMS.search(said), LOG_CLAIMS.search(said)
    assert "consumption not checked: scan reads no logs" in result.render()


@pytest.mark.parametrize("down, source", [(ELS_DB, ELS_DB), (BOS_DB, BOS_DB)])
def test_a_database_down_makes_its_batches_unknown_with_the_source_named(
        down: str, source: str, make_pg_database: Any) -> None:
    world = build_world("seed_variant_a")
    dsns = load_world_into_postgres(world, make_pg_database)
    dsns[down] = DOWN
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert not result.complete and result.stuck == 6 and result.unknown == 6
    assert _classes(result) == {f"unknown.not_read:{source}"}
    v = scan_verdict(result)
    assert v["status"] == "unknown" and v["healthy"] is False and v["completeness"] == {"scan": "partial"}
    assert "unknown" in result.render().splitlines()[0]
    assert result.groups.iloc[0]["error_class_means"].startswith("unknown: a source")
    ov = overview.scan_overview(result)
    assert set(ov.frame["status"]) == {"unknown"}
    card = cards.overview_card(ov)
    assert "6 batch(es) could not be classified" in card.body and "6 stuck, 6 of them unknown" in card.text


def test_a_bundle_without_a_table_makes_the_batches_it_decides_unknown(tmp_path: Path) -> None:
    b = write_world_bundle(build_world("seed_variant_a"), tmp_path / "b")
    rel = f"tables/{N.TRACKERS[0]}/{N.TRACKERS[1]}.parquet"
    manifest = json.loads((b.path / "manifest.json").read_text())
    del manifest["files"][rel]
    (b.path / "manifest.json").write_text(json.dumps(manifest))
    (b.path / rel).unlink()
    result = scan_bundle(Bundle.open(b.path))
    assert not result.complete and any(N.TRACKERS[1] in w for w in result.warnings)
    assert _classes(result) == {f"unknown.not_read:{ELS_DB}.{N.TRACKERS[1]}"}
    assert scan_verdict(result)["status"] == "unknown"


def test_a_missing_table_makes_the_batches_unknown_with_the_table_named(make_pg_database: Any) -> None:
    world = build_world("seed_variant_a")
    dsns = load_world_into_postgres(world, make_pg_database)
    _sql(dsns[ELS_DB], f'DROP TABLE "{N.PENDING_CONTENT[1]}"')
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert not result.complete and any(N.PENDING_CONTENT[1] in w for w in result.warnings)
    assert _classes(result) == {f"unknown.not_read:{ELS_DB}.{N.PENDING_CONTENT[1]}"}


def test_an_outbox_the_scan_does_not_read_is_unknown_not_never_produced(make_pg_database: Any) -> None:
    """A REGULAR batch waits for CMS's confirmation; the scan reads no CMS database, so no 'not produced'."""
    world = build_world("healthy_regular")
    dsns = load_world_into_postgres(world, make_pg_database)
    stale = (world.collected_at - timedelta(days=3)).replace(tzinfo=None)
    _sql(dsns[BOS_DB], f"UPDATE \"{N.BATCHES[1]}\" SET status = 'awaiting_student_validation', "
                       f"updated_at = '{stale.isoformat()}' WHERE class_id IS NOT NULL")
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert result.complete and result.stuck == 3
    assert _classes(result) == {"unknown.not_read:huleedu_class_management.event_outbox"}
    assert set(result.batches["outbox_row"]) == {"not read"}
    assert "event.not_produced" not in _says(result)
    assert scan_verdict(result)["status"] == "unknown"


def test_a_partial_scan_of_a_quiet_stack_is_unknown_not_healthy(make_pg_database: Any) -> None:
    world = build_world("healthy_guest")
    dsns = load_world_into_postgres(world, make_pg_database)
    dsns[FILE_DB] = DOWN
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert result.stuck == 0 and not result.complete
    v = scan_verdict(result)
    assert v["status"] == "unknown" and v["healthy"] is False
    ov = overview.scan_overview(result)
    card = cards.overview_card(ov)
    assert "unknown" in card.text and FILE_DB in card.text and "none stuck" in card.text
    assert "healthy" not in card.body.split("</h2>")[0]
    assert "not stuck" not in overview.overview_verdict(ov)["counts"]


def test_a_complete_scan_of_a_quiet_stack_is_healthy(tmp_path: Path) -> None:
    """The other side: the same checks can say healthy when every source was read."""
    result = scan_bundle(write_world_bundle(build_world("healthy_guest"), tmp_path / "b"))
    assert result.complete and scan_verdict(result)["status"] == "healthy"
    assert cards.overview_card(overview.scan_overview(result)).text.endswith("none stuck")


def test_scan_verdict_carries_the_root_cause_investigated_on_one_batch_per_group(tmp_path: Path) -> None:
    seed = write_world_bundle(build_world("seed_variant_a"), tmp_path / "seed")
    sc = scan_bundle(seed)
    ov = overview.scan_overview(sc, Bundle.open(seed.path))
    v = scan_verdict(sc, ov)
    (g,) = v["groups"]
    inv = g["investigated"]
    assert inv["batch_id"] == ov.representatives[g["signature"]]
    assert inv["root_cause"] == "enum.label_missing" and inv["root_cause_summary"]
    assert "one representative batch" in inv["scope"] and "other 5 batch(es)" in inv["scope"]
    assert g["error_class_means"] == error_class_meaning(g["error_class"])
    assert "investigated" not in scan_verdict(sc)["groups"][0]  # no overview: nothing claimed investigated
    bare = scan_verdict(sc, overview.scan_overview(sc, None))
    assert bare["groups"][0]["investigated"] is None


NOT_A_STEP = "processing_pipelines"  # a BOS status the model describes as no step of either flow


def _not_a_step_world() -> Any:
    """healthy_guest with two GUEST batches moved to a BOS state the model does not describe as a step."""
    world = build_world("healthy_guest")
    batches = world.table(*N.BATCHES)
    assert batches is not None
    guests = batches.index[batches["class_id"].isna()][:2]
    batches.loc[guests, "status"] = NOT_A_STEP
    return world


def test_a_batch_in_a_state_the_model_does_not_describe_is_not_assessed_not_healthy(tmp_path: Path) -> None:
    result = scan_bundle(write_world_bundle(_not_a_step_world(), tmp_path / "b"))
    assert result.complete and result.stuck == 0 and result.not_assessed == {NOT_A_STEP: 2}
    assert result.not_stuck == result.total - 2
    head = result.render().splitlines()[0]
    assert "2 not assessed" in head and NOT_A_STEP in head and "neither stuck nor healthy" in head
    v = scan_verdict(result)
    assert v["status"] == "unknown" and v["healthy"] is False
    assert v["not_assessed"] == 2 and v["not_assessed_states"] == {NOT_A_STEP: 2}
    assert v["not_stuck"] == result.total - 2 and "does not describe" not in v["not_stuck_means"]
    assert "neither stuck nor healthy" in v["not_assessed_means"]
    assert ScanResult.from_json(json.loads(json.dumps(result.to_json(), default=str))).not_assessed == {NOT_A_STEP: 2}
    ov = overview.scan_overview(result)
    counts = overview.overview_verdict(ov)
    assert counts["counts"] == {"not stuck": result.total - 2, "not assessed": 2}
    assert counts["healthy"] is False and counts["status"] == "unknown"
    card = cards.overview_card(ov)
    assert "healthy" not in card.body.split("</h2>")[0] and "2 not assessed" in card.text
    assert NOT_A_STEP in card.body and "none stuck" in card.text


def test_a_live_scan_counts_the_batches_it_does_not_assess(make_pg_database: Any) -> None:
    world = _not_a_step_world()
    dsns = load_world_into_postgres(world, make_pg_database)
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert result.complete and result.stuck == 0 and result.not_assessed == {NOT_A_STEP: 2}
    assert result.render().splitlines()[0].endswith(
        f"0 stuck or unhealthy in 0 group(s); 2 not assessed ({NOT_A_STEP} 2: states the model does not describe "
        "as a step, so neither stuck nor healthy)")
    assert scan_verdict(result)["status"] == "unknown"
    card = cards.overview_card(overview.scan_overview(result)).text
    assert card == f"scanned {result.total} batches, none stuck in the sources read; 2 not assessed ({NOT_A_STEP} 2)"


def test_the_stuck_batches_card_counts_the_batches_not_assessed_beside_the_stuck_ones(tmp_path: Path) -> None:
    world = build_world("seed_variant_a")
    batches = world.table(*N.BATCHES)
    assert batches is not None
    batches.loc[batches.index[0], "status"] = NOT_A_STEP
    result = scan_bundle(write_world_bundle(world, tmp_path / "b"))
    assert result.stuck == 5 and result.not_assessed == {NOT_A_STEP: 1} and result.not_stuck == 0
    ov = overview.scan_overview(result)
    card = cards.overview_card(ov)
    assert card.text.startswith(f"scanned 6 batches, 5 stuck, 1 not assessed ({NOT_A_STEP} 1)")
    assert "neither stuck nor healthy" in card.body
    v = overview.overview_verdict(ov)
    assert v["status"] == "stuck" and v["counts"] == {"stuck": 5, "not assessed": 1}
