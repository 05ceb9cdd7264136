"""The evidence bundle: atomic writes, validation, clear errors for damaged, partial or foreign ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics.bundle import Bundle, BundleWriter, write_world_bundle
from huledu_forensics.errors import BundleInvalid, BundleNotFound
from huledu_forensics.world import ContainerState

T0 = datetime(2025, 11, 20, 18, 41, 50, tzinfo=UTC)


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
    with pytest.raises(RuntimeError), BundleWriter(tmp_path / "b") as w:
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
    with pytest.raises(BundleInvalid, match=r"no manifest\.json"):
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
    with pytest.raises(BundleInvalid, match=r"missing 'enums\.json'"):
        Bundle.open(b.path)


def test_garbage_manifest(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleInvalid, match="not valid JSON"):
        Bundle.open(tmp_path / "b")


def _strip_parsed(src: Path, dest: Path) -> Path:
    """A copy of bundle ``src`` as an older kit wrote it: no parsed-log Parquet in files or manifest."""
    import shutil

    shutil.copytree(src, dest)
    manifest = json.loads((dest / "manifest.json").read_text())
    for rel in [r for r in manifest["files"] if r.endswith(".parsed.parquet")]:
        (dest / rel).unlink()
        del manifest["files"][rel]
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_bundle_keeps_each_log_parsed_once_as_hashed_parquet(tmp_path: Path) -> None:
    from huledu_forensics.logs import parse_file
    from huledu_forensics.simulate import build_world

    b = write_world_bundle(build_world("seed_variant_a"), tmp_path / "b")
    files = b.manifest["files"]
    logs = b.log_files()
    assert logs
    for container, stream, path in logs:
        rel = path.relative_to(b.path).as_posix()
        prel = rel[: -len(".log")] + ".parsed.parquet"
        assert prel in files and files[prel]["sha256"]
        kept = b.parsed_log(container, stream)
        assert kept is not None
        parsed = parse_file(path, container=container, stream=stream, source_file=rel)
        pd.testing.assert_frame_equal(kept, parsed)
    # a changed Parquet file is caught like any other file
    victim = next(iter(r for r in files if r.endswith(".parsed.parquet")))
    (b.path / victim).write_bytes(b"PAR1 not really")
    with pytest.raises(BundleInvalid):
        Bundle.open(b.path)


def test_bundle_with_parsed_logs_gives_the_same_investigation_as_one_without(tmp_path: Path) -> None:
    from huledu_forensics import investigate
    from huledu_forensics.simulate import build_world

    w = build_world("outbox_poisoned")
    new = write_world_bundle(w, tmp_path / "new")
    old = Bundle.open(_strip_parsed(new.path, tmp_path / "old"))
    assert old.parsed_log(*old.log_files()[0][:2]) is None  # the old layout still loads
    batch = str(w.target["batch_id"])
    a, b = investigate(Bundle.open(new.path), batch), investigate(old, batch)
    va, vb = a.verdict.to_json(), b.verdict.to_json()
    va.pop("bundle"), vb.pop("bundle")
    assert va == vb
    assert va["root_cause"]
    pd.testing.assert_frame_equal(a.logs, b.logs)
    pd.testing.assert_frame_equal(a.timeline, b.timeline)


def test_parsed_logs_read_together_equal_the_files_read_one_by_one(tmp_path: Path) -> None:
    from huledu_forensics.simulate import build_world

    # a directory named key=value above the bundle is not read as a partition column
    b = write_world_bundle(build_world("seed_variant_a"), tmp_path / "run=1" / "b")
    streams = [(c, s) for c, s, _p in b.log_files()]
    assert len(streams) > 2
    together = b.parsed_logs(streams)
    assert together is not None
    one_by_one = pd.concat([b.parsed_log(c, s) for c, s in streams], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
    # a stream without kept rows (an older bundle): None, the caller parses file by file
    old = Bundle.open(_strip_parsed(b.path, tmp_path / "old"))
    assert old.parsed_logs(streams) is None
    # a damaged Parquet file: None (the one-by-one read names it and parses the text)
    victim = b.path / b.log_files()[1][2].relative_to(b.path).as_posix().replace(".log", ".parsed.parquet")
    victim.write_bytes(b"PAR1 not really")
    assert Bundle.open(b.path, verify=False).parsed_logs(streams) is None
