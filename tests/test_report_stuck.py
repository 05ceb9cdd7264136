"""The stuck-batches report on a fleet: the scan finds and groups the stuck batches, and only one batch
per signature group is investigated (on a bundle and on a live profile); notebook parameters as
papermill reads them."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from huledu_forensics import cards, overview, report, scan
from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.errors import ReportError
from huledu_forensics.simulate import build_world
from tests.support.pg_world import load_world_into_postgres

SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
EXE = Path(sys.executable).with_name("huledu-forensics")


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """seed_variant_a: six batches stuck by one enum drift, so one signature group."""
    path = tmp_path_factory.mktemp("stuck") / "seed"
    write_world_bundle(build_world("seed_variant_a"), path)
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every batch id the overview investigates, in order."""
    seen: list[str] = []
    real = overview.investigate

    def spy(bundle: Any, id: str, **kw: Any) -> Any:
        seen.append(id)
        return real(bundle, id, **kw)

    monkeypatch.setattr(overview, "investigate", spy)
    return seen


def test_one_batch_per_signature_group_is_investigated_and_the_others_say_so(seed: Path, counted: list[str]) -> None:
    sc = scan.scan_bundle(seed)
    assert sc.stuck == 6 and len(sc.groups) == 1
    ov = overview.scan_overview(sc, seed)
    rep = str(sc.groups["example_batch"][0])
    assert counted == [rep]
    assert set(ov.frame["root_cause_of"]) == {rep} and set(ov.frame["root_cause"]) == {"enum.label_missing"}
    others = ov.frame[ov.frame["batch_id"] != rep]
    assert len(others) == 5 and others["root_cause_summary"].str.startswith("not investigated itself").all()
    groups = overview.signature_groups(sc, ov)
    assert groups[["count", "investigated_batch", "root_cause"]].values.tolist() == [[6, rep, "enum.label_missing"]]
    text = cards.overview_card(ov).text
    assert "scanned 6 batches, 6 stuck" in text and "investigated 1 batch(es), one per signature group" in text


def test_the_batch_asked_about_is_its_groups_investigated_batch_and_is_investigated_once(
        seed: Path, counted: list[str], tmp_path: Path) -> None:
    sc = scan.scan_bundle(seed)
    assert str(sc.groups["example_batch"][0]) != SEED_BATCH  # so the choice below is the id's doing
    ov = overview.scan_overview(sc, seed, id=SEED_BATCH)
    path = overview.write_overview_verdict(tmp_path / "v.json", ov, seed, SEED_BATCH)
    assert counted == [SEED_BATCH]
    v = json.loads(Path(str(path)).read_text())
    assert v["batch_id"] == SEED_BATCH and v["root_cause"]["finding"] == "enum.label_missing"
    assert v["overview"]["counts"] == {"stuck": 6} and len(v["overview"]["batch_summaries"]) == 6


def test_a_healthy_bundle_counts_its_batches_as_not_stuck(counted: list[str], tmp_path: Path) -> None:
    b = write_world_bundle(build_world("healthy_guest"), tmp_path / "b")
    sc = scan.scan_bundle(b)
    ov = overview.scan_overview(sc, b)
    assert ov.frame.empty and counted == []
    v = overview.overview_verdict(ov)
    assert v["healthy"] is True and v["counts"] == {"not stuck": sc.total} and sc.total > 0
    assert cards.overview_card(ov).text == f"scanned {sc.total} batches, none stuck"  # not "no batches"


def test_with_bundles_per_batch_only_batches_with_a_bundle_are_investigated(seed: Path, counted: list[str]) -> None:
    sc = scan.scan_bundle(seed)
    last = str(sc.batches["batch_id"].iloc[-1])
    ov = overview.scan_overview(sc, {last: seed})
    assert counted == [last] and set(ov.frame["root_cause_of"]) == {last}
    bare = overview.scan_overview(sc, None)
    assert counted == [last] and set(bare.frame["root_cause_of"]) == {""}
    assert set(bare.frame["root_cause"]) == set(sc.batches["error_class"])  # the scan's error class stands in


def test_the_scan_counts_are_fields_of_the_result_so_a_frame_operation_cannot_change_them(tmp_path: Path) -> None:
    """The counts once rode in DataFrame.attrs, which a row selection or a concat drops, silently turning
    the verdict's "not stuck" count into nothing."""
    b = write_world_bundle(build_world("healthy_guest"), tmp_path / "b")
    sc = scan.scan_bundle(b)
    ov = overview.scan_overview(sc, b)
    assert isinstance(ov, overview.ScanOverview) and ov.scanned == sc.total > 0 and ov.frame.attrs == {}
    reshaped = dataclasses.replace(ov, frame=pd.concat([ov.frame.iloc[:0], ov.frame]).reset_index(drop=True))
    assert overview.overview_verdict(reshaped)["counts"] == overview.overview_verdict(ov)["counts"] \
        == {"not stuck": sc.total}
    assert cards.overview_card(reshaped).text == cards.overview_card(ov).text


def test_nothing_in_the_kit_or_its_notebooks_rides_in_dataframe_attrs() -> None:
    root = Path(overview.__file__).parent
    used = [str(p.relative_to(root)) for p in [*root.rglob("*.py"), *root.rglob("*.ipynb")]
            if re.search(r"\.attrs\b", p.read_text(encoding="utf-8"))]
    assert not used, used


def test_a_groups_summary_is_written_once_and_the_others_point_to_the_investigated_batch(seed: Path) -> None:
    sc = scan.scan_bundle(seed)
    ov = overview.scan_overview(sc, seed)
    rep = str(sc.groups["example_batch"][0])
    rows = ov.frame.set_index("batch_id")
    mine = str(rows.loc[rep, "root_cause_summary"])
    assert mine.startswith("investigated for its signature group of 6 (") and len(mine) > 100
    others = rows.drop(index=rep)["root_cause_summary"]
    assert set(others) == {f"not investigated itself: same as {rep[:8]}…"}  # short, and names the batch
    assert set(rows.drop(index=rep)["root_cause_of"]) == {rep}
    bare = overview.scan_overview(sc, None).frame.set_index("batch_id")["root_cause_summary"]
    first = str(sc.batches["batch_id"][sc.batches["batch_id"].isin(bare.index)].iloc[0])
    assert bare[first].startswith("scan, not investigated: the database's enum")  # once, on the group's first
    assert set(bare.drop(index=first)) == {f"scan, not investigated: same as {first[:8]}…"}


@pytest.fixture
def live_config(tmp_path: Path, make_pg_database: Any) -> Path:
    """A profile `stucklab` whose databases hold the seed world."""
    dsns = load_world_into_postgres(build_world("seed_variant_a"), make_pg_database)
    lines = ["[profiles.stucklab]", "docker = false"]
    for db, dsn in dsns.items():
        lines += [f"[profiles.stucklab.databases.{db}]", f'dsn = "{dsn}"']
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_live_stuck_report_collects_and_investigates_one_batch_per_group(live_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = subprocess.run([str(EXE), "report", "--notebook", "stuck_batches", "--profile", "stucklab",
                           "--config", str(live_config), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert proc.returncode == 1, proc.stderr
    collected = sorted(p.name for p in (out / "scan" / overview.REPRESENTATIVES_DIR).iterdir())
    groups = json.loads((out / "scan" / "scan.json").read_text())["groups"]
    assert collected == [groups[0]["example_batch"]] and groups[0]["count"] == 6
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "one per signature group" in html and "not investigated itself" in html
    assert "enum.label_missing" in html


# -- notebook parameters (papermill.inspect_notebook) ---------------------------------------------
def _notebook(tmp_path: Path, *cells: nbformat.NotebookNode) -> Path:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_parameters_are_read_as_papermill_reads_them(tmp_path: Path) -> None:
    cell = nbformat.v4.new_code_cell('bundle = None  # where\nid: str = "x"  # what\n\nsince = None\nuntil = None\n'
                                     "verdict_path = None\n", metadata={"tags": ["parameters"]})
    path = _notebook(tmp_path, nbformat.v4.new_markdown_cell("# t"), cell)
    assert report.notebook_parameters(path) == ["bundle", "id", "since", "until", "verdict_path"]


def test_a_notebook_without_parameters_is_refused(tmp_path: Path) -> None:
    path = _notebook(tmp_path, nbformat.v4.new_code_cell("x = 1"))
    with pytest.raises(ReportError, match="declares no parameters"):
        report.notebook_parameters(path)
