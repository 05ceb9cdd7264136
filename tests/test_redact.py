"""Redaction: personal ids and file names become stable tokens, essay text and secrets never land."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics import model
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.errors import BundleNotFound, ConfigError
from huledu_forensics.investigation import investigate
from huledu_forensics.profiles import load_profile
from huledu_forensics.redact import (
    REDACTED_TEXT,
    Redactor,
    assert_no_secrets,
    find_secrets,
    find_text,
    is_redacted,
    profile_secrets,
    redact_bundle,
    run_redacted_report,
    scrub_secrets,
)
from huledu_forensics.simulate import build_world
from huledu_forensics.world import World

BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
REG_CORRELATION = "9437fe03-1195-4241-b532-91d36df0b1c2"
ESSAY_SENTENCE = "Mitt namn är Greta Andersson och min uppsats handlar om älgar i Dalarna."
BOS, ELS, FILE = (db for db in model.DATABASES)
OUTBOX = model.OUTBOX_TABLE


def _table(spec_db: str, id_col: str, kind: str) -> str:
    """The model table of ``spec_db`` whose ``id_col`` holds ids of ``kind`` (no literal names)."""
    return next(t for (db, t), s in model.TABLES.items()
                if db == spec_db and s.id_columns.get(id_col) == kind)


BATCHES = _table(BOS, "id", "batch")
UPLOADS = _table(FILE, "file_upload_id", "file_upload")
TRACKERS = next(t for (db, t), s in model.TABLES.items()
                if db == ELS and "expected_essay_ids" in s.json_columns)
PENDING = next(t for (db, t), s in model.TABLES.items()
               if db == ELS and "content_metadata" in s.json_columns)


def _personal_values(world: World) -> dict[str, set[str]]:
    """User ids, org ids and file names of a world, read straight from its rows (not via redact)."""
    out: dict[str, set[str]] = {"user": set(), "org": set(), "file": set()}
    up = world.table(FILE, UPLOADS)
    out["user"] |= set(up["user_id"].dropna())
    out["file"] |= set(up["filename"].dropna())
    tr = world.table(ELS, TRACKERS)
    out["user"] |= set(tr["user_id"].dropna())
    out["org"] |= set(tr["org_id"].dropna())
    for raw in world.table(BOS, BATCHES)["processing_metadata"].dropna():
        meta = json.loads(raw)
        out["user"] |= {meta["user_id"]} if meta.get("user_id") else set()
        out["org"] |= {meta["org_id"]} if meta.get("org_id") else set()
    return out


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Bundle, Bundle]]:
    root = tmp_path_factory.mktemp("redact")
    world = build_world("seed_variant_a")
    original = write_world_bundle(world, root / "original")
    yield world, original, redact_bundle(original, root / "redacted")


def test_no_user_id_org_id_or_file_name_is_left_in_any_file(seed: tuple[World, Bundle, Bundle]) -> None:
    world, original, redacted = seed
    values = _personal_values(world)
    needles = sorted(values["user"] | values["org"] | values["file"])
    assert len(values["user"]) >= 3 and values["org"] and len(values["file"]) >= 10
    assert find_text(original.path, needles), "the planted values must be findable in the original"
    assert find_text(redacted.path, needles) == []
    Bundle.open(redacted.path)  # the copy is a valid, verified bundle


def test_tokens_are_stable_and_the_same_in_tables_payloads_and_logs(
        seed: tuple[World, Bundle, Bundle], tmp_path: Path) -> None:
    world, original, redacted = seed
    up = world.table(FILE, UPLOADS)
    row = up[up["batch_id"] == BATCH].iloc[0]
    red = Redactor()
    user_tok, file_tok = red.token("user", row["user_id"]), red.token("file", row["filename"])
    assert user_tok.startswith("user-") and len(user_tok) == 13
    assert file_tok.startswith("file-") and file_tok.endswith(".docx")

    r_up = redacted.table(FILE, UPLOADS)
    assert set(r_up.loc[r_up["batch_id"] == BATCH, "user_id"]) == {user_tok}
    assert file_tok in set(r_up["filename"])
    r_tr = redacted.table(ELS, TRACKERS)
    assert set(r_tr.loc[r_tr["batch_id"] == BATCH, "user_id"]) == {user_tok}
    r_b = redacted.table(BOS, BATCHES).set_index("id")
    assert r_b.loc[BATCH, "name"].endswith(f" - {user_tok}")
    assert json.loads(r_b.loc[BATCH, "processing_metadata"])["user_id"] == user_tok
    pending = redacted.table(ELS, PENDING)["content_metadata"].map(json.loads)
    assert file_tok in {m["original_file_name"] for m in pending}
    payloads = [json.loads(v) for v in redacted.table(FILE, OUTBOX)["event_data"]]
    assert user_tok in {p["data"].get("user_id") for p in payloads}
    assert file_tok in {p["data"].get("original_file_name") for p in payloads}
    logs = "\n".join(line for c, s, _ in redacted.log_files() for line in redacted.iter_log_lines(c, s))
    assert file_tok in logs
    assert '"filename": "repository.py"' in logs  # structlog's call site is code, not an upload

    again = redact_bundle(original, tmp_path / "again")
    for db, table in redacted.tables():
        pd.testing.assert_frame_equal(again.table(db, table), redacted.table(db, table))


def test_scope_ids_are_kept_and_the_investigation_reaches_the_same_verdict(
        seed: tuple[World, Bundle, Bundle]) -> None:
    _, original, redacted = seed
    before = investigate(original, BATCH).verdict.to_json()
    after = investigate(redacted, REG_CORRELATION).verdict.to_json()
    assert after["batch_id"] == BATCH
    assert after["root_cause"]["finding"] == "enum.label_missing"
    assert [c["finding"] for c in after["chain"]] == [c["finding"] for c in before["chain"]]
    assert (after["current_state"], after["awaited_event"]) == (before["current_state"],
                                                                 before["awaited_event"])
    assert is_redacted(redacted) and not is_redacted(original)
    info = redacted.manifest["origin"]["redaction"]
    assert info["ids_hashed"] is True and info["user_ids"] >= 3 and info["file_names"] >= 10
    assert [s.completeness for s in redacted.sources] == [s.completeness for s in original.sources]


def test_hash_ids_false_keeps_ids_but_still_replaces_file_names(
        seed: tuple[World, Bundle, Bundle], tmp_path: Path) -> None:
    world, original, _ = seed
    values = _personal_values(world)
    kept = redact_bundle(original, tmp_path / "kept", hash_ids=False)
    assert {p.name for p, _ in find_text(kept.path, sorted(values["user"]))}
    assert find_text(kept.path, sorted(values["file"])) == []
    assert kept.manifest["origin"]["redaction"]["ids_hashed"] is False


def test_a_keyed_hash_gives_other_tokens() -> None:
    assert Redactor().token("user", "u1") == Redactor().token("user", "u1")
    assert Redactor(key="k").token("user", "u1") != Redactor().token("user", "u1")
    assert Redactor().token("org", "o1").startswith("org-")


def test_bad_destinations_are_clear_errors(seed: tuple[World, Bundle, Bundle], tmp_path: Path) -> None:
    _, original, _ = seed
    with pytest.raises(ConfigError, match="onto itself"):
        redact_bundle(original, original.path)
    with pytest.raises(BundleNotFound, match="No bundle at"):
        redact_bundle(tmp_path / "nothing", tmp_path / "out")


def _plant_essay_text(world: World) -> World:
    """A careless collector's world: essay text in an outbox payload and in a content-service log."""
    outbox = world.table(FILE, OUTBOX).copy()
    data = json.loads(outbox.loc[0, "event_data"])
    data["data"]["text"] = ESSAY_SENTENCE
    data["data"]["content_data"] = {"paragraphs": [ESSAY_SENTENCE]}
    outbox.loc[0, "event_data"] = json.dumps(data)
    world.databases[FILE].tables[OUTBOX] = outbox
    line = json.dumps({"logger_name": "content.api", "extra": {"batch_id": BATCH, "content": ESSAY_SENTENCE},
                       "event": "Stored content", "level": "info", "timestamp": "2025-11-20T18:41:08Z"},
                      ensure_ascii=False)
    world.logs["huleedu_content_store_not_in_model"] = {
        "stdout": [f"2025-11-20T18:41:08.000000000Z {line}",
                   f"2025-11-20T18:41:08.100000000Z 2025-11-20 [info] Stored content "
                   f"extra={{'batch_id': '{BATCH}', 'essay_text': '{ESSAY_SENTENCE}'}}"]}
    return world


def test_essay_text_never_reaches_a_redacted_report(tmp_path: Path) -> None:
    world = _plant_essay_text(build_world("seed_variant_a"))
    original = write_world_bundle(world, tmp_path / "careless")
    assert find_text(original.path, [ESSAY_SENTENCE]), "the sentence must be planted"

    result = run_redacted_report(original, BATCH, tmp_path / "report", timeout_s=300)
    assert result.verdict["root_cause"]["finding"] == "enum.label_missing"
    assert (tmp_path / "report" / "bundle" / "manifest.json").is_file()
    assert result.html_path.is_file() and result.notebook_path.is_file()
    assert find_text(tmp_path / "report", [ESSAY_SENTENCE, "Greta Andersson"]) == []
    red = Bundle.open(tmp_path / "report" / "bundle")
    payload = json.loads(red.table(FILE, OUTBOX).loc[0, "event_data"])
    assert "text" not in payload["data"] and "content_data" not in payload["data"]
    lines = list(red.iter_log_lines("huleedu_content_store_not_in_model", "stdout"))
    assert all(REDACTED_TEXT in ln for ln in lines) and BATCH in lines[0]
    assert red.manifest["origin"]["redaction"]["essay_text_fields_removed"] == 4


def test_scrub_secrets_masks_plain_url_encoded_and_json_escaped_forms() -> None:
    secret = 'p@ss/w"rd 42'
    text = (f"dsn=postgresql://u:p%40ss%2Fw%22rd%2042@h/db plain={secret} "
            f'json="p@ss/w\\"rd 42" plus=p%40ss%2Fw%22rd+42')
    out = scrub_secrets(text, [secret, None, ""])
    assert "p@ss" not in out and "p%40ss" not in out and out.count("***") == 4
    assert scrub_secrets("nothing here", [secret]) == "nothing here"


def test_assert_no_secrets_names_the_files_but_never_the_secret(tmp_path: Path) -> None:
    secret = "Pw-never-on-disk-9981"
    (tmp_path / "clean.txt").write_text("all fine")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leak.json").write_text(json.dumps({"dsn": f"postgresql://u:{secret}@h/db"}))
    pd.DataFrame({"v": [f"x{secret}x"] * 50}).to_parquet(tmp_path / "t.parquet")
    assert sorted(p.name for p in find_secrets(tmp_path, [secret])) == ["leak.json", "t.parquet"]
    with pytest.raises(AssertionError, match="2 file") as exc:
        assert_no_secrets(tmp_path, [secret])
    assert secret not in str(exc.value)
    assert_no_secrets(tmp_path / "clean.txt", [secret])


def test_profile_secrets_come_from_the_password_env_vars(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.prod]\nhost = "10.0.0.5"\npassword_env = "HF_TEST_PROD_PW"\n')
    monkeypatch.setenv("HULEEDU_DB_PASSWORD", "dev-secret-123")
    monkeypatch.setenv("HF_TEST_PROD_PW", "prod-secret-456")
    assert profile_secrets(load_profile("dev", config)) == ["dev-secret-123"]
    assert profile_secrets(load_profile("prod", config)) == ["prod-secret-456"]
    monkeypatch.delenv("HULEEDU_DB_PASSWORD")
    assert profile_secrets(load_profile("dev", config)) == []


def test_a_short_user_id_never_rewrites_part_of_another_id() -> None:
    red = Redactor()
    red.learn("user", "1234")
    red.learn("file", "Greta Andersson uppsats.docx")
    line = 'batch 1234abcd-0000 by 1234: {"user_id": "1234", "filename": "Greta Andersson uppsats.docx"}'
    tok = red.token("user", "1234")
    assert red.text(line) == (f'batch 1234abcd-0000 by {tok}: {{"user_id": "{tok}", '
                              f'"filename": "{red.token("file", "Greta Andersson uppsats.docx")}"}}')
