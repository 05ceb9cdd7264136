"""`scan` reports enum drift fleet-wide: every enum label set it reads against the model's declared one
(the comparison the enum rules use), per database, without marking any batch stuck for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from huledu_forensics import cards, model, overview
from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.model.services import BOS_DB, ELS_DB
from huledu_forensics.rules.enums import enum_drift
from huledu_forensics.scan import ScanResult, scan_bundle, scan_profile, scan_verdict
from tests.support.pg_world import load_world_into_postgres, profile_for
from tests.test_novel_worlds import _corpus
from tests.test_novel_worlds2 import _drop_label

EXE = Path(sys.executable).with_name("huledu-forensics")
ENUM = "essay_status_enum"
LABEL = "essay_critical_failure"  # declared, and no known step writes it


def _drifted_guest() -> Any:
    assert LABEL in model.PYTHON_ENUMS[(ELS_DB, ENUM)]
    assert not [w for w in model.ENUM_WRITES if w.value == LABEL]
    world = _corpus("healthy-guest")
    _drop_label(world, ELS_DB, ENUM, LABEL)
    return world


def _section(result: ScanResult) -> list[str]:
    lines = result.render().splitlines()
    starts = [i for i, x in enumerate(lines) if x.startswith("enum drift")]
    if not starts:
        return []
    out = []
    for x in lines[starts[0]:]:
        if not x.strip():
            break
        out.append(x)
    return out


def _same_batches(a: ScanResult, b: ScanResult) -> None:
    """Drift alone marks no batch stuck: the drifted world lists the batches the undrifted one does,
    with the same classes and verdict status."""
    assert list(a.batches["batch_id"]) == list(b.batches["batch_id"])
    assert list(a.batches["error_class"]) == list(b.batches["error_class"])
    assert scan_verdict(a)["status"] == scan_verdict(b)["status"]


def _assert_drift_named(result: ScanResult) -> None:
    (els,) = [d for d in result.enum_drift if d["database"] == ELS_DB and d["enum"] == ENUM]
    assert els["missing_unknown"] == [LABEL] and els["missing_known"] == []
    section = "\n".join(_section(result))
    line = next(x for x in section.splitlines() if f"{ELS_DB}.{ENUM}:" in x)
    assert LABEL in line and "the kit cannot place" in line, section
    data = json.loads(json.dumps(result.to_json(), default=str))
    assert data["enum_drift"] == result.enum_drift
    assert ScanResult.from_json(data).enum_drift == result.enum_drift  # the report reads scan.json
    card = cards.overview_card(overview.scan_overview(result))
    assert "<div>Enum drift</div>" in card.body and LABEL in card.body and LABEL in card.text


def test_a_live_scan_names_the_database_enum_and_missing_label(make_pg_database: Any) -> None:
    world = _drifted_guest()
    dsns = load_world_into_postgres(world, make_pg_database)
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert result.complete
    _assert_drift_named(result)
    assert result.enums_not_read == []
    plain = _corpus("healthy-guest")
    before = scan_profile(profile_for(load_world_into_postgres(plain, make_pg_database)), at=plain.collected_at)
    assert not [d for d in before.enum_drift if LABEL in d["missing_unknown"]]
    _same_batches(result, before)


def test_a_bundle_scan_shows_the_same_drift(tmp_path: Path, make_pg_database: Any) -> None:
    world = _drifted_guest()
    write_world_bundle(world, tmp_path / "b")
    result = scan_bundle(tmp_path / "b")
    _assert_drift_named(result)
    live = scan_profile(profile_for(load_world_into_postgres(world, make_pg_database)), at=world.collected_at)
    assert result.enum_drift == live.enum_drift
    write_world_bundle(_corpus("healthy-guest"), tmp_path / "plain")
    plain = scan_bundle(tmp_path / "plain")
    _same_batches(result, plain)
    # through the console script: the section is printed and the exit code keeps its meaning
    codes = []
    for b in ("b", "plain"):
        proc = subprocess.run([str(EXE), "scan", "--bundle", str(tmp_path / b)], capture_output=True, text=True,
                              timeout=300, env=dict(os.environ))
        codes.append(proc.returncode)
    assert codes[0] == codes[1] == (1 if plain.stuck else 0), proc.stderr
    proc = subprocess.run([str(EXE), "scan", "--bundle", str(tmp_path / "b")], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert "enum drift" in proc.stdout and f"{ELS_DB}.{ENUM}:" in proc.stdout and LABEL in proc.stdout


def test_without_drift_there_is_no_section(make_pg_database: Any, tmp_path: Path) -> None:
    world = _corpus("healthy-regular")  # its enums are exactly the declared label sets
    assert all(not d.drifted for d in enum_drift({db: img.enums for db, img in world.databases.items()}))
    result = scan_profile(profile_for(load_world_into_postgres(world, make_pg_database)), at=world.collected_at)
    assert result.enum_drift == [] and _section(result) == [] and "enum drift" not in result.render()
    assert result.to_json()["enum_drift"] == []
    assert "Enum drift" not in cards.overview_card(overview.scan_overview(result)).body


def test_a_database_whose_enums_were_not_read_is_named(make_pg_database: Any) -> None:
    world = _drifted_guest()
    dsns = load_world_into_postgres(world, make_pg_database)
    dsns[BOS_DB] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = scan_profile(profile_for(dsns), at=world.collected_at)
    assert result.enums_not_read == [BOS_DB]
    assert f"enums not read: {BOS_DB}" in "\n".join(_section(result))
