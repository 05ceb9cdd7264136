"""batch_overview and friends: every batch of a bundle, where each stands, stuck first; the
bundle-wide verdict; and the stuck_batches notebook run headless through the report runner."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from huledu_forensics import report
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.model import names as N
from huledu_forensics.overview import (
    OVERVIEW_COLUMNS,
    batch_ids,
    batch_overview,
    overview_figure,
    overview_verdict,
    root_cause_counts,
    write_overview_verdict,
)
from huledu_forensics.simulate import build_world

SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    root = tmp_path_factory.mktemp("overview")
    out = {name: write_world_bundle(build_world(name), root / name)
           for name in ("seed_variant_a", "validation_failure", "healthy_guest")}
    # a world where BOS lost one batch's row: only ELS and the File Service still know it
    w = build_world("seed_variant_a")
    batches = w.databases[N.BATCHES[0]].tables[N.BATCHES[1]]
    w.databases[N.BATCHES[0]].tables[N.BATCHES[1]] = batches[batches["id"] != SEED_BATCH].reset_index(drop=True)
    out["bos_row_lost"] = write_world_bundle(w, root / "bos_row_lost")
    return out


@pytest.fixture(scope="module")
def seed_overview(bundles: dict[str, Bundle]):  # type: ignore[no-untyped-def]
    return batch_overview(bundles["seed_variant_a"], progress=False)


def test_every_batch_of_the_seed_world_is_stuck_on_the_enum(seed_overview) -> None:  # type: ignore[no-untyped-def]
    df = seed_overview
    assert list(df.columns) == list(OVERVIEW_COLUMNS)
    assert len(df) == 6 and SEED_BATCH in set(df["batch_id"])
    assert set(df["status"]) == {"stuck"}
    assert set(df["root_cause"]) == {"enum.label_missing"}
    assert set(df["awaited_event"]) == {N.T_CONTENT_COMPLETED}
    assert set(df["current_state"]) == {N.S_AWAITING_CONTENT}
    # longest wait first
    assert df["waited_s"].is_monotonic_decreasing
    assert (df["error"] == "").all()


def test_stuck_batches_come_first(bundles: dict[str, Bundle]) -> None:
    df = batch_overview(bundles["validation_failure"], progress=False)
    statuses = list(df["status"])
    assert statuses[0] == "stuck" and set(statuses[1:]) == {"healthy"}
    assert df.iloc[0]["root_cause"] == "validation.failures_block_completion"
    assert df.iloc[0]["flow"] in ("GUEST", "REGULAR")
    assert df.loc[df["status"] == "healthy", "root_cause"].isna().all()


def test_batch_only_els_knows_is_listed(bundles: dict[str, Bundle]) -> None:
    b = bundles["bos_row_lost"]
    known = batch_ids(b)
    assert SEED_BATCH in known and N.BATCHES[0] not in known[SEED_BATCH]
    assert N.TRACKERS[0] in known[SEED_BATCH]
    df = batch_overview(b, progress=False)
    row = df[df["batch_id"] == SEED_BATCH].iloc[0]
    assert N.BATCHES[0] not in row["known_to"] and row["status"] in ("stuck", "degraded", "unknown")


def test_progress_counter_goes_to_the_given_stream(bundles: dict[str, Bundle]) -> None:
    buf = io.StringIO()
    batch_overview(bundles["healthy_guest"], progress=True, stream=buf)
    text = buf.getvalue()
    n = len(batch_ids(bundles["healthy_guest"]))
    assert f"batch 1/{n}" in text and f"investigated {n} batches" in text
    quiet = io.StringIO()
    batch_overview(bundles["healthy_guest"], progress=False, stream=quiet)
    assert quiet.getvalue() == ""


def test_root_cause_counts_group_the_stuck_batches(seed_overview, bundles) -> None:  # type: ignore[no-untyped-def]
    rc = root_cause_counts(seed_overview)
    assert list(rc["root_cause"]) == ["enum.label_missing"] and int(rc.iloc[0]["batch_count"]) == 6
    assert rc.iloc[0]["longest_wait_s"] == pytest.approx(seed_overview["waited_s"].max())
    healthy = root_cause_counts(batch_overview(bundles["healthy_guest"], progress=False))
    assert list(healthy["root_cause"]) == ["-"] and list(healthy["status"]) == ["healthy"]


def test_bundle_wide_verdict_drives_the_exit_code(seed_overview, bundles, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v = overview_verdict(seed_overview)
    assert v["healthy"] is False and v["status"] == "stuck" and v["counts"] == {"stuck": 6}
    assert report.exit_code_for_verdict(v) == report.EXIT_FINDINGS
    ok = overview_verdict(batch_overview(bundles["healthy_guest"], progress=False))
    assert ok["healthy"] is True and report.exit_code_for_verdict(ok) == report.EXIT_HEALTHY
    # written without an id: the bundle-wide verdict; with one: that batch's verdict + the overview
    assert write_overview_verdict(None, seed_overview, bundles["seed_variant_a"]) is None
    p = write_overview_verdict(tmp_path / "all.json", seed_overview, bundles["seed_variant_a"])
    assert json.loads(Path(p).read_text())["kind"] == "overview"
    p = write_overview_verdict(tmp_path / "one.json", seed_overview, bundles["seed_variant_a"], SEED_BATCH)
    one = json.loads(Path(p).read_text())
    assert one["batch_id"] == SEED_BATCH and one["root_cause"]["finding"] == "enum.label_missing"
    assert len(one["overview"]["batch_summaries"]) == 6


def test_overview_figure_has_a_bar_per_batch(seed_overview, bundles) -> None:  # type: ignore[no-untyped-def]
    fig = overview_figure(seed_overview)
    assert [t.name for t in fig.data] == ["stuck"] and len(fig.data[0].y) == 6
    mixed = overview_figure(batch_overview(bundles["validation_failure"], progress=False))
    assert {t.name for t in mixed.data} == {"stuck", "healthy"}
    assert not overview_figure(seed_overview.iloc[0:0]).data


@pytest.mark.slow
def test_stuck_batches_notebook_runs_through_the_report_runner(bundles: dict[str, Bundle],
                                                              tmp_path: Path) -> None:
    res = report.run_report(bundles["seed_variant_a"], SEED_BATCH, tmp_path / "out", notebook="stuck_batches")
    assert res.verdict["batch_id"] == SEED_BATCH and len(res.verdict["overview"]["batch_summaries"]) == 6
    assert res.exit_code == report.EXIT_FINDINGS
    html = res.html_path.read_text(encoding="utf-8")
    assert "Stuck batches by root cause" in html and "enum.label_missing" in html
