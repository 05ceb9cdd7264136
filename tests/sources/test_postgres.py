"""PostgresSource against the real PostgreSQL 15: read-only sessions, timeouts, bound parameters,
schema tolerance, enum labels and UTC timestamps."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from huledu_forensics.errors import SourceUnavailable
from huledu_forensics.sources.base import TableSource
from huledu_forensics.sources.postgres import PostgresSource
from huledu_forensics.world import load_world_dir
from tests.support.corpus import CORPUS_DIR
from tests.support.pg_world import DatabaseFactory, load_world_into_postgres, sqlalchemy_url

pytestmark = pytest.mark.postgres

CORPUS = str(CORPUS_DIR)
BOS, ELS, FILE = "huleedu_batch_orchestrator", "huleedu_essay_lifecycle", "huleedu_file_service"
BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
REG_CORRELATION = "9437fe03-1195-4241-b532-91d36df0b1c2"


@pytest.fixture(scope="module")
def seed_a(pg_admin_dsn: str) -> Iterator[dict[str, str]]:
    """seed-variant-a loaded once for this module's read-only tests: {model database: URL}."""
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        yield load_world_into_postgres(load_world_dir(f"{CORPUS}/seed-variant-a"), factory)
    finally:
        factory.drop_all()


def _admin(url: str) -> psycopg.Connection:
    from sqlalchemy.engine import make_url

    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False),
                           autocommit=True)


def test_implements_the_table_source_protocol(seed_a: dict[str, str]) -> None:
    src = PostgresSource("postgres:els", ELS, seed_a[ELS])
    assert isinstance(src, TableSource)
    assert "batch_essay_trackers" in src.tables()


def test_session_refuses_writes(seed_a: dict[str, str]) -> None:
    src = PostgresSource("postgres:els", ELS, seed_a[ELS])
    with src.session() as conn:
        assert conn.execute(text("SHOW transaction_read_only")).scalar() == "on"
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("DELETE FROM batch_essay_trackers"))
    with src.session() as conn:  # even a fresh transaction on the same connection is read only
        conn.commit()
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("CREATE TABLE intruder (a int)"))
    # nothing was deleted
    with _admin(seed_a[ELS]) as conn:
        assert conn.execute("SELECT count(*) FROM batch_essay_trackers").fetchone()[0] > 0


def test_timeouts_are_set_in_every_session(seed_a: dict[str, str]) -> None:
    src = PostgresSource("postgres:bos", BOS, seed_a[BOS])
    with src.session() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "15s"
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "2s"
    quick = PostgresSource("postgres:bos", BOS, seed_a[BOS], statement_timeout_ms=150, lock_timeout_ms=50)
    with quick.session() as conn:
        assert conn.execute(text("SHOW lock_timeout")).scalar() == "50ms"
        with pytest.raises(DBAPIError, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(2)"))


def test_ids_are_bound_parameters(seed_a: dict[str, str]) -> None:
    quoted = "o'brien'); DROP TABLE file_uploads; --"
    with _admin(seed_a[FILE]) as conn:
        conn.execute("INSERT INTO file_uploads (file_upload_id, batch_id, user_id, filename, "
                     "upload_timestamp, processing_status) VALUES (%s, %s, 'u', 'f.txt', now(), "
                     "'PENDING')", ("fu-quote", quoted))
    src = PostgresSource("postgres:file", FILE, seed_a[FILE])
    hit = src.rows("file_uploads", {"batch_id": [quoted]})
    assert hit["file_upload_id"].tolist() == ["fu-quote"]
    none = src.rows("file_uploads", {"batch_id": ["x' OR '1'='1"], "event_data->>correlation_id": []})
    assert none.empty
    assert "file_uploads" in src.tables()


def test_json_paths_find_outbox_rows_by_payload(seed_a: dict[str, str]) -> None:
    bos = PostgresSource("postgres:bos", BOS, seed_a[BOS])
    by_corr = bos.rows("event_outbox", {"event_data->>correlation_id": [REG_CORRELATION]})
    assert len(by_corr) == 1
    by_entity = bos.rows("event_outbox", {"event_data->data->>entity_id": [BATCH]})
    assert by_entity["id"].tolist() == by_corr["id"].tolist()
    essays = bos.rows("event_outbox", {"event_data->data->essay_ids[]":
                                       ["fc35b304-58eb-44b6-936a-789055876b56"]})
    assert essays["id"].tolist() == by_corr["id"].tolist()
    # the ELS tracker's plain JSON array of expected essay ids
    els = PostgresSource("postgres:els", ELS, seed_a[ELS])
    trackers = els.rows("batch_essay_trackers",
                        {"expected_essay_ids[]": ["62431c17-f141-444a-b709-6c08e7c6eff2"]})
    assert trackers["batch_id"].tolist() == [BATCH]
    assert isinstance(trackers["expected_essay_ids"].iloc[0], str)  # JSON as JSON text


def test_missing_table_and_column_are_warnings(make_pg_database: Callable[..., str]) -> None:
    url = sqlalchemy_url(make_pg_database("cut"))
    with _admin(url) as conn:  # a create_all-era essay_states without text_storage_id
        conn.execute("CREATE TABLE essay_states (essay_id varchar(255) PRIMARY KEY, batch_id "
                     "varchar(255), created_at timestamp, updated_at timestamp)")
        conn.execute("INSERT INTO essay_states VALUES ('e1', 'b1', '2025-01-01 10:00', "
                     "'2025-01-01 10:00')")
    src = PostgresSource("postgres:els", ELS, url)
    frame = src.rows("essay_states", {"batch_id": ["b1"], "text_storage_id": ["t1"]})
    assert frame["essay_id"].tolist() == ["e1"]
    assert "text_storage_id" not in frame.columns
    gone = src.rows("slot_assignments", {"internal_essay_id": ["e1"]})
    assert gone.empty
    warnings = src.take_warnings()
    assert any("text_storage_id" in w for w in warnings)
    assert any("slot_assignments does not exist" in w for w in warnings)


def test_enum_labels_of_a_drifted_database(seed_a: dict[str, str]) -> None:
    enums = PostgresSource("postgres:els", ELS, seed_a[ELS]).enums()
    labels = enums["essay_status_enum"]
    assert len(labels) == 10
    assert labels[0] == "unregistered" and labels[-1] == "failed"
    assert "uploaded" not in labels


def test_naive_and_aware_timestamps_come_back_utc(make_pg_database: Callable[..., str]) -> None:
    url = sqlalchemy_url(make_pg_database("ts"))
    with _admin(url) as conn:
        dbname = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(f'ALTER DATABASE "{dbname}" SET TimeZone = \'Asia/Tokyo\'')
        conn.execute("CREATE TABLE t (id text, naive timestamp, aware timestamptz)")
        conn.execute("INSERT INTO t VALUES ('a', '2025-11-20 18:41:50.5', "
                     "'2025-11-20 20:41:50.5+02:00')")
    frame = PostgresSource("postgres:x", "x", url).rows("t", {"id": ["a"]})
    want = pd.Timestamp("2025-11-20T18:41:50.5Z")
    for col in ("naive", "aware"):
        assert str(frame[col].dtype) == "datetime64[ns, UTC]"
        assert frame[col].iloc[0] == want


def test_unreachable_database_is_one_line_without_the_password() -> None:
    src = PostgresSource("postgres:bos", BOS,
                         "postgresql+psycopg://huleedu_user:Sup3rS3cret@127.0.0.1:1/huleedu_batch_orchestrator",
                         connect_timeout_s=2)
    assert "Sup3rS3cret" not in repr(src)
    with pytest.raises(SourceUnavailable) as err:
        src.tables()
    msg = str(err.value)
    assert "Sup3rS3cret" not in msg and "\n" not in msg
    assert "127.0.0.1:1" in msg and BOS in msg


def test_missing_database_is_source_unavailable() -> None:
    src = PostgresSource("postgres:bos", BOS, "postgresql+psycopg://postgres@127.0.0.1:5432/hf_no_such_db")
    with pytest.raises(SourceUnavailable, match="does not exist"):
        src.enums()
