"""Worlds: reading the corpus layout, enum label sets from DDL, dtypes, and a save/load round trip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from huledu_forensics.world import coerce_table, enums_from_ddl, load_world_dir, save_world_dir
from tests.support.corpus import corpus_bundle, shared_dir
from tests.support.env import unavailable


def test_enums_from_ddl_keeps_order_and_quotes() -> None:
    ddl = ("CREATE TYPE essay_status_enum AS ENUM ('unregistered', 'it''s');\n"
           "CREATE TYPE x AS ENUM (\n 'a',\n 'b'\n);")
    assert enums_from_ddl(ddl) == {"essay_status_enum": ["unregistered", "it's"], "x": ["a", "b"]}


def test_naive_and_aware_timestamps_become_utc() -> None:
    df = coerce_table("huleedu_essay_lifecycle", "event_outbox", pd.DataFrame({
        "id": ["1"], "created_at": ["2025-11-20 18:41:51.1"],
        "published_at": ["2025-11-20 19:41:51+01"], "retry_count": ["5"]}))
    assert str(df["created_at"].dt.tz) == "UTC"
    assert df["created_at"][0] == pd.Timestamp("2025-11-20T18:41:51.1Z")
    assert df["published_at"][0] == pd.Timestamp("2025-11-20T18:41:51Z")
    assert df["retry_count"].dtype == "Int64"


def test_corpus_world_reads_and_round_trips(tmp_path: Path) -> None:
    shared = shared_dir()
    if shared is None:
        unavailable("shared/corpus is not next to this checkout; set HULEDU_SHARED_DIR")
    w = load_world_dir(shared / "corpus" / "seed-variant-a")
    assert w.databases["huleedu_essay_lifecycle"].enums["essay_status_enum"][0] == "unregistered"
    assert "huleedu_essay_lifecycle_db" in w.logs
    back = load_world_dir(save_world_dir(w, tmp_path / "w"))
    assert back.collected_at == w.collected_at
    a = w.databases["huleedu_essay_lifecycle"].tables["batch_pending_content"]
    b = back.databases["huleedu_essay_lifecycle"].tables["batch_pending_content"]
    assert len(a) == len(b) and list(a["created_at"]) == list(b["created_at"])
    assert back.logs["huleedu_essay_lifecycle_db"] == w.logs["huleedu_essay_lifecycle_db"]
    assert corpus_bundle("seed-variant-a").manifest["scope"]["mode"] == "full"
