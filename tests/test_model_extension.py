"""A new HuleEdu table or topic is added by editing ``model/`` alone.

The fixture declares, in the model's registries only, a new ELS table (``batch_feedback_notes``, with
an id and a batch id) and a new topic (ELS → BOS) with BOS's handler for it. Nothing else in the kit
is told. The simulator then creates the table from the model (its DDL is generated from the model's
columns), the world is loaded into real PostgreSQL databases, and a live snapshot, the investigation
and the correlation trace pick the table and the topic up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics import model
from huledu_forensics.collect import snapshot
from huledu_forensics.investigation import investigate
from huledu_forensics.model.handlers import Handler
from huledu_forensics.model.schema import Column
from huledu_forensics.model.services import Table
from huledu_forensics.model.topics import Topic
from huledu_forensics.simulate import build_world
from huledu_forensics.trace import correlation_trace
from huledu_forensics.world import World, coerce_table, save_world_dir
from tests.support.pg_world import DatabaseFactory, load_world_into_postgres, profile_for

pytestmark = pytest.mark.postgres

ELS, BOS = model.services.ELS_DB, model.services.BOS_DB
NEW_TABLE = "batch_feedback_notes"
NEW_TOPIC = "huleedu.els.batch.feedback.ready.v1"
NEW_LOGGER = "bos.handlers.batch_feedback_ready"
NEW_START = "Received BatchFeedbackReady for batch"
CORRELATION = "5b1e0f3c-9d2a-4c47-8e11-3f6a2d7c9b40"


@pytest.fixture
def extended_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Declare one more table, topic and handler in the model's registries, nowhere else."""
    monkeypatch.setitem(model.TABLES, (ELS, NEW_TABLE), Table(
        ELS, NEW_TABLE, ("id",), id_columns={"batch_id": "batch"},
        columns=(Column("id", "serial", "NOT NULL"), Column("batch_id", "varchar(255)", "NOT NULL"),
                 Column("note", "text"), Column("details", "jsonb"),
                 Column("created_at", "timestamptz", "DEFAULT now() NOT NULL")),
        time_column="created_at", source="test: a table HuleEdu might add"))
    monkeypatch.setitem(model.TOPICS, NEW_TOPIC, Topic(NEW_TOPIC, "BatchFeedbackReadyV1", "els", ("bos",)))
    monkeypatch.setattr(model.handlers, "HANDLERS", (*model.handlers.HANDLERS, Handler(
        "bos", NEW_TOPIC, (NEW_LOGGER,), (NEW_START,))))
    yield


def _bos_line(ts: pd.Timestamp, message: str, batch: str) -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return f"{stamp} " + json.dumps({
        "logger_name": NEW_LOGGER, "extra": {"correlation_id": CORRELATION}, "event": f"{message} {batch}",
        "service.name": "batch-service", "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "level": "info"})


def _world_with_new_table_and_topic() -> tuple[World, str]:
    """A simulated world, built with the extended model, holding rows of the new table and one event
    on the new topic: written to ELS's outbox, relayed, and handled by BOS."""
    w = build_world("healthy_regular", 0)
    els = w.databases[ELS]
    assert NEW_TABLE in els.tables and f"CREATE TABLE {NEW_TABLE} (" in (els.ddl or "")  # from the model
    batch, other = (str(b) for b in w.table(BOS, "batches")["id"].iloc[:2])
    t0 = max(pd.Timestamp(ts) for ts in w.table(ELS, "event_outbox")["created_at"]) + timedelta(seconds=5)
    notes = pd.DataFrame([
        {"id": 1, "batch_id": batch, "note": "first", "details": '{"n": 1}', "created_at": t0},
        {"id": 2, "batch_id": other, "note": "someone else's", "details": None, "created_at": t0},
        {"id": 3, "batch_id": batch, "note": "second", "details": None, "created_at": t0 + timedelta(seconds=1)},
    ])
    els.tables[NEW_TABLE] = coerce_table(ELS, NEW_TABLE, notes)
    event = {"event_id": str(uuid.uuid4()), "event_type": NEW_TOPIC, "source_service": "essay-lifecycle-service",
             "correlation_id": CORRELATION, "data": {"batch_id": batch}, "topic": NEW_TOPIC}
    outbox = w.table(ELS, "event_outbox")
    assert outbox is not None
    row = {"id": str(uuid.uuid4()), "aggregate_id": batch, "aggregate_type": "batch", "event_type": NEW_TOPIC,
           "event_data": json.dumps(event), "event_key": batch, "topic": NEW_TOPIC, "created_at": t0,
           "published_at": t0 + timedelta(milliseconds=20), "retry_count": 0, "last_error": None}
    els.tables["event_outbox"] = coerce_table(ELS, "event_outbox", pd.concat(
        [outbox, pd.DataFrame([row])], ignore_index=True))
    bos_logs = w.logs[model.SERVICES["bos"].containers[0]]["stdout"]
    bos_logs.append(_bos_line(t0 + timedelta(milliseconds=40), NEW_START, batch))
    return w, batch


def test_a_table_and_a_topic_added_to_the_model_alone_are_collected_and_traced(
        extended_model: None, pg_admin_dsn: str, tmp_path: Path) -> None:
    world, batch = _world_with_new_table_and_topic()
    factory = DatabaseFactory(pg_admin_dsn)
    try:
        dsns = load_world_into_postgres(world, factory)
        save_world_dir(world, tmp_path / "world")
        bundle = snapshot(profile_for(dsns, logs_dir=tmp_path / "world" / "logs"), batch,
                          tmp_path / "bundle", progress=False)
    finally:
        factory.drop_all()

    # the snapshot collected the new table's rows of this batch, and only those, typed by the model
    notes = bundle.table(ELS, NEW_TABLE)
    assert notes is not None
    assert sorted(notes["note"]) == ["first", "second"] and set(notes["batch_id"]) == {batch}
    assert str(notes["created_at"].dtype) == "datetime64[ns, UTC]"

    # the investigation's timeline shows the new rows and the event on the new topic, by service
    tl = investigate(bundle, batch).timeline
    rows = tl[tl["ref"].astype(str).str.contains(f"/{NEW_TABLE}.parquet#")]
    assert len(rows) == 2 and set(rows["service"]) == {"els"}
    written = tl[(tl["kind"] == "outbox_created") & (tl["topic"] == NEW_TOPIC)]
    assert list(written["service"]) == ["els"]
    handled = tl[(tl["source"] == "log") & tl["label"].astype(str).str.startswith(NEW_START)]
    assert list(handled["service"]) == ["bos"]

    # the correlation trace attributes the event to its producer and consumer, and reads BOS's handling
    trace = correlation_trace(bundle, CORRELATION)
    (row,) = trace[trace["topic"] == NEW_TOPIC].to_dict("records")
    assert (row["event"], row["producer"], row["consumer"], row["outcome"]) == (
        "BatchFeedbackReadyV1", "els", "bos", "ok")
    assert not pd.isna(row["handled_at"])


def test_without_the_model_entry_the_kit_does_not_know_the_table(tmp_path: Path) -> None:
    # the check above can fail: the same world built from the unextended model has no such table
    w = build_world("healthy_regular", 0)
    assert NEW_TABLE not in w.databases[ELS].tables
    assert NEW_TOPIC not in model.TOPICS
