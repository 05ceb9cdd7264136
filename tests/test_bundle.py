"""The evidence bundle: atomic writes, validation, clear errors for damaged, partial or foreign ones."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics.bundle import Bundle, BundleWriter
from huledu_forensics.errors import BundleInvalid, BundleNotFound
from huledu_forensics.world import ContainerState

T0 = datetime(2025, 11, 20, 18, 41, 50, tzinfo=timezone.utc)


def _small(path: Path) -> Bundle:
    with BundleWriter(path) as w:
        src = w.source("postgres:huleedu_essay_lifecycle", "postgres")
        w.add_table("huleedu_essay_lifecycle", "batch_pending_content", pd.DataFrame({
            "id": [1], "batch_id": ["b1"], "text_storage_id": ["t1"],
            "content_metadata": [{"file_upload_id": "f1"}],
            "created_at": pd.to_datetime([T0], utc=True)}), source=src)
        w.add_enums("huleedu_essay_lifecycle", {"essay_status_enum": ["uploaded"]}, source=src)
        logs = w.source("docker:huleedu_essay_lifecycle_worker", "docker")
        w.add_log_lines("huleedu_essay_lifecycle_worker", "stdout",
                        ["2025-11-20T18:41:51.000000000Z hello b1"], source=logs)
        w.add_container(ContainerState("huleedu_essay_lifecycle_worker", "running", started_at=T0),
                        source=logs)
        w.gap("tables/huleedu_essay_lifecycle/essay_states", "permission denied", source=src)
        return w.finish(scope={"requested_id": "b1", "ids": {"batch": ["b1"]}, "mode": "scoped"},
                        window=(T0, None), collected_at=T0)


def test_round_trip(tmp_path: Path) -> None:
    b = Bundle.open(_small(tmp_path / "b").path)
    df = b.table("huleedu_essay_lifecycle", "batch_pending_content")
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]" or "UTC" in str(df["created_at"].dtype)
    assert json.loads(df["content_metadata"][0]) == {"file_upload_id": "f1"}
    assert b.enums == {"huleedu_essay_lifecycle": {"essay_status_enum": ["uploaded"]}}
    assert b.containers[0].started_at == T0
    assert list(b.iter_log_lines("huleedu_essay_lifecycle_worker", "stdout")) == [
        "2025-11-20T18:41:51.000000000Z hello b1"]
    assert b.collected_at == T0 and b.window == (T0, None)
    src = {s.name: s for s in b.sources}["postgres:huleedu_essay_lifecycle"]
    assert src.completeness == "partial" and "permission denied" in src.warnings[0]
    assert b.gaps[0]["part"] == "tables/huleedu_essay_lifecycle/essay_states"
    m = b.manifest
    assert m["format"] == "huledu-forensics-bundle" and m["tool_version"]
    assert all(len(v["sha256"]) == 64 for v in m["files"].values())


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with BundleWriter(tmp_path / "b") as w:
            w.add_log_lines("c", "stdout", ["x"], source=w.source("s", "files"))
            raise RuntimeError("collector crashed")
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_not_overwritten_by_default(tmp_path: Path) -> None:
    _small(tmp_path / "b")
    with pytest.raises(BundleInvalid, match="already exists"):
        BundleWriter(tmp_path / "b")


def test_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFound, match="No bundle at"):
        Bundle.open(tmp_path / "nope")


def test_partial_bundle_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "b" / "tables").mkdir(parents=True)
    with pytest.raises(BundleInvalid, match="no manifest.json"):
        Bundle.open(tmp_path / "b")


def test_foreign_bundle(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleInvalid, match="not a huledu-forensics bundle"):
        Bundle.open(tmp_path / "b")


def test_newer_format_version(tmp_path: Path) -> None:
    b = _small(tmp_path / "b")
    m = json.loads((b.path / "manifest.json").read_text())
    m["format_version"] = 99
    (b.path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleInvalid, match="format version 99"):
        Bundle.open(b.path)


def test_damaged_file_detected(tmp_path: Path) -> None:
    b = _small(tmp_path / "b")
    log = b.path / "logs" / "huleedu_essay_lifecycle_worker" / "stdout.log"
    log.write_text(log.read_text() + "tampered\n")
    with pytest.raises(BundleInvalid, match="does not match its recorded hash"):
        Bundle.open(b.path)


def test_missing_listed_file_detected(tmp_path: Path) -> None:
    b = _small(tmp_path / "b")
    (b.path / "enums.json").unlink()
    with pytest.raises(BundleInvalid, match="missing 'enums.json'"):
        Bundle.open(b.path)


def test_garbage_manifest(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleInvalid, match="not valid JSON"):
        Bundle.open(tmp_path / "b")
