"""Tests of the scenario simulator: determinism, scenario signatures, log realism, and a real PostgreSQL load."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict
from datetime import datetime
from functools import cache

import pandas as pd
import pytest

from huledu_forensics import model
from huledu_forensics.simulate import SCENARIOS, build_world, scenario_names
from huledu_forensics.simulate.scenarios import EXPECTED
from huledu_forensics.world import World, enums_from_ddl, load_world_dir, save_world_dir
from tests.support.env import unavailable

BOS, ELS, FILE = model.services.BOS_DB, model.services.ELS_DB, model.services.FILE_DB
COMPLETED = "huleedu.batch.content.provisioning.completed.v1"
REGISTERED = "huleedu.batch.essays.registered.v1"
STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9})Z (.*)$")
SEED = {"batch": "278f7fd9-37fe-406a-a735-f15128cb6b1f", "reg": "9437fe03-1195-4241-b532-91d36df0b1c2",
        "pipe": "7242c19e-039b-43d3-b37f-b144133706c9",
        "essays": {"62431c17-f141-444a-b709-6c08e7c6eff2", "fc35b304-58eb-44b6-936a-789055876b56"},
        "tsids": {"cf3ea970ffc94727b79cdb6051f76e6a", "b2f1d444e90243fc8a79c2285242c352"},
        "events": {"995af3ca-9792-4289-b9f5-30a99d17f3ac", "ae052486-f25f-4f38-b9f8-84a4e8fec939"}}
JSON_KEYS = ["logger_name", "extra", "event", "service.name", "deployment.environment", "trace_id", "span_id",
             "timestamp", "level", "filename", "func_name", "lineno", "exception"]


@cache
def world(name: str, seed: int = 0) -> World:
    return build_world(name, seed)


def rows(w: World, db: str, table: str, batch: str | None = None) -> pd.DataFrame:
    df = w.table(db, table)
    assert df is not None, f"{db}.{table} missing"
    if batch is None:
        return df
    if "batch_id" in df.columns:
        return df[df["batch_id"] == batch]
    if table == "batches":
        return df[df["id"] == batch]
    if table == "event_outbox":
        return df[df["event_data"].map(lambda s: batch in s)]
    if table == "slot_assignments":
        trackers = rows(w, ELS, "batch_essay_trackers", batch)
        return df[df["batch_tracker_id"].isin(list(trackers["id"]))]
    raise AssertionError(table)


def all_lines(w: World, container: str | None = None) -> list[str]:
    return [l for c, st in w.logs.items() if container in (None, c) for s in st.values() for l in s]


def events(w: World, container: str) -> list[dict]:
    out = []
    for line in w.logs[container]["stdout"]:
        text = line.split(" ", 1)[1]
        if text.startswith("{"):
            out.append(json.loads(text))
    return out


# ---------------------------------------------------------------- API and determinism

def test_scenario_names_and_unknown_name_error() -> None:
    assert scenario_names() == ["healthy_guest", "healthy_regular", "seed_variant_a", "seed_variant_b",
                                "outbox_poisoned", "validation_failure"]
    assert all(SCENARIOS[n] for n in scenario_names())
    assert list(EXPECTED) == scenario_names()
    with pytest.raises(ValueError, match=r"Valid scenarios: .*healthy_guest.*validation_failure"):
        build_world("no_such_scenario")


@pytest.mark.parametrize("name", ["healthy_regular", "seed_variant_a", "outbox_poisoned"])
def test_same_seed_gives_identical_world(name: str) -> None:
    a, b = build_world(name, 7), build_world(name, 7)
    assert a.logs == b.logs
    assert a.target == b.target and a.expected == b.expected and a.collected_at == b.collected_at
    assert [c.to_json() for c in a.containers] == [c.to_json() for c in b.containers]
    for db, img in a.databases.items():
        assert img.ddl == b.databases[db].ddl and img.enums == b.databases[db].enums
        for t, df in img.tables.items():
            pd.testing.assert_frame_equal(df, b.databases[db].tables[t])


def test_different_seed_changes_background_but_seed_ids_stay() -> None:
    a, b = world("seed_variant_a", 0), world("seed_variant_a", 1)
    assert a.target == b.target == {"batch_id": SEED["batch"], "registration_correlation_id": SEED["reg"],
                                    "pipeline_correlation_id": SEED["pipe"]}
    ids_a = set(rows(a, BOS, "batches")["id"]) - {SEED["batch"]}
    ids_b = set(rows(b, BOS, "batches")["id"]) - {SEED["batch"]}
    assert ids_a and ids_b and not ids_a & ids_b
    h0, h1 = world("healthy_guest", 0), world("healthy_guest", 1)
    assert h0.target["batch_id"] != h1.target["batch_id"]


def test_every_id_is_a_valid_uuid_or_storage_hex() -> None:
    w = world("healthy_guest")
    for col in ("id", "correlation_id"):
        for v in rows(w, BOS, "batches")[col]:
            assert uuid.UUID(v).version == 4
    for v in rows(w, FILE, "file_uploads")["text_storage_id"]:
        assert re.fullmatch(r"[0-9a-f]{32}", v)


# ---------------------------------------------------------------- scenario signatures

@pytest.mark.parametrize("name", scenario_names())
def test_target_batch_is_in_the_declared_state(name: str) -> None:
    """The simulator puts the target where EXPECTED says, and the world carries that declaration."""
    w = world(name)
    e, want = w.expected, EXPECTED[name]
    assert e["batch_id"] == w.target["batch_id"]
    assert set(w.target) == {"batch_id", "registration_correlation_id", "pipeline_correlation_id"}
    assert all(w.target.values())
    batch = rows(w, BOS, "batches", e["batch_id"]).iloc[0]
    assert batch["status"] == want.current_state
    assert e["flow"] == ("GUEST" if batch["class_id"] is None else "REGULAR")
    assert e["essay_count"] == batch["total_essays"]
    assert {k: e[k] for k in asdict(want)} == asdict(want)


@pytest.mark.parametrize("name,flow", [("healthy_guest", "GUEST"), ("healthy_regular", "REGULAR")])
def test_healthy_signature(name: str, flow: str) -> None:
    w = world(name)
    b = w.target["batch_id"]
    n = w.expected["essay_count"]
    batch = rows(w, BOS, "batches", b).iloc[0]
    assert batch["status"] == "ready_for_pipeline_execution"  # BOS never writes terminal statuses
    assert w.expected["flow"] == flow
    pc = json.loads(batch["pipeline_configuration"])
    assert pc["requested_pipelines"] == ["spellcheck", "cj_assessment"]
    assert pc["spellcheck"]["status"] == pc["cj_assessment"]["status"] == "completed_successfully"
    assert pc["nlp"]["status"] == "skipped_by_user_config"
    assert len(rows(w, BOS, "batch_essays", b)) == n
    psl = rows(w, BOS, "phase_status_log", b)
    assert sorted(zip(psl["phase"], psl["status"])) == [("cj_assessment", "completed"), ("cj_assessment", "initiated"),
                                                        ("spellcheck", "completed"), ("spellcheck", "initiated")]
    assert set(psl["correlation_id"]) == {w.target["pipeline_correlation_id"]}
    es = rows(w, ELS, "essay_states", b)
    assert len(es) == n and set(es["current_status"]) == {"cj_assessment_success"}
    assert es["text_storage_id"].notna().all()
    assert len(rows(w, ELS, "batch_pending_content", b)) == 0
    tracker = rows(w, ELS, "batch_essay_trackers", b).iloc[0]
    assert tracker["correlation_id"] == w.target["registration_correlation_id"]
    assert pd.notna(tracker["completed_at"])
    bos_ob = rows(w, BOS, "event_outbox", b)
    assert bos_ob["published_at"].notna().all()
    done = bos_ob[bos_ob["topic"] == "huleedu.batch.pipeline.completed.v1"]
    assert list(done["event_type"]) == ["batch.pipeline.completed"]
    assert json.loads(done.iloc[0]["event_data"])["correlation_id"] == w.target["pipeline_correlation_id"]
    assert {REGISTERED, "huleedu.els.spellcheck.initiate.command.v1",
            "huleedu.batch.cj_assessment.initiate.command.v1"} <= set(bos_ob["topic"])
    els_ob = rows(w, ELS, "event_outbox", b)
    comp = els_ob[els_ob["topic"] == COMPLETED]
    assert len(comp) == 1 and comp["published_at"].notna().all()
    env = json.loads(comp.iloc[0]["event_data"])
    assert env["topic"] == COMPLETED and env["correlation_id"] == w.target["registration_correlation_id"]
    assert env["source_service"] == "essay-lifecycle-service" and env["data"]["provisioned_count"] == n
    if flow == "REGULAR":
        assert batch["class_id"] is not None
        assert (els_ob["topic"] == "huleedu.els.batch.essays.ready.v1").sum() == 1
        bos_events = [e["event"] for e in events(w, "huleedu_batch_orchestrator_service")]
        assert f"Batch {b} transitioned to STUDENT_VALIDATION_COMPLETED" in bos_events
    else:
        assert batch["class_id"] is None
    for img in w.databases.values():  # aligned databases: create_all enums
        for t, labels in img.enums.items():
            assert tuple(labels) == model.PYTHON_ENUMS[(img.name, t)]


def test_seed_variant_a_signature() -> None:
    w = world("seed_variant_a")
    b = SEED["batch"]
    batch = rows(w, BOS, "batches", b).iloc[0]
    assert batch["status"] == "awaiting_content_validation" and batch["total_essays"] == 2
    assert batch["class_id"] is None and batch["correlation_id"] == b
    assert len(rows(w, BOS, "batch_essays", b)) == 0
    ob = rows(w, BOS, "event_outbox", b)
    reg = ob[ob["topic"] == REGISTERED]
    assert len(reg) == 1 and reg["published_at"].notna().all()
    env = json.loads(reg.iloc[0]["event_data"])
    assert env["correlation_id"] == SEED["reg"] and set(env["data"]["essay_ids"]) == SEED["essays"]
    tracker = rows(w, ELS, "batch_essay_trackers", b)
    assert len(tracker) == 1 and tracker.iloc[0]["correlation_id"] == SEED["reg"]
    slots = rows(w, ELS, "slot_assignments", b)
    assert len(slots) == 2 and set(slots["status"]) == {"available"}
    assert len(rows(w, ELS, "essay_states", b)) == 0
    pend = rows(w, ELS, "batch_pending_content", b)
    assert set(pend["text_storage_id"]) == SEED["tsids"] and w.expected["pending_content"] == 2
    assert pend["created_at"].min() >= pd.Timestamp("2025-11-20 18:41:50", tz="UTC")
    assert len(rows(w, ELS, "event_outbox", b)) == 0
    fu = rows(w, FILE, "file_uploads", b)
    assert set(fu["processing_status"]) == {"completed"} and set(fu["text_storage_id"]) == SEED["tsids"]
    fo = rows(w, FILE, "event_outbox", b)
    assert fo["published_at"].notna().all()
    prov = fo[fo["topic"] == "huleedu.file.essay.content.provisioned.v1"]
    assert set(prov["aggregate_id"]) == set(fu["file_upload_id"])  # File aggregate = file_upload_id
    assert {json.loads(s)["event_id"] for s in prov["event_data"]} == SEED["events"]
    # drifted enums, in DDL and in the enum sets
    els_enum = w.databases[ELS].enums["essay_status_enum"]
    assert tuple(els_enum) == model.ALEMBIC_INITIAL_ENUMS[(ELS, "essay_status_enum")] and "uploaded" not in els_enum
    assert enums_from_ddl(w.databases[ELS].ddl or "")["essay_status_enum"] == els_enum
    assert "ready_for_pipeline_execution" not in w.databases[BOS].enums["batch_status_enum"]
    assert w.collected_at == datetime.fromisoformat("2025-11-20T18:42:26.412+00:00")


def test_seed_variant_a_logs() -> None:
    w = world("seed_variant_a")
    b = SEED["batch"]
    els = events(w, "huleedu_essay_lifecycle_worker")
    msgs = [e["event"] for e in els if b in json.dumps(e) or SEED["reg"] in json.dumps(e)]
    order = ["Processing BatchEssaysRegistered event", f"Registered batch {b} in database with 2 slots, course: ENG5",
             f"Creating batch of 2 essay records for batch {b}: ['62431c17-f141-444a-b709-6c08e7c6eff2', "
             "'fc35b304-58eb-44b6-936a-789055876b56']", "Error routing event", "Event processing failed"]
    idx = [msgs.index(m) for m in order]
    assert idx == sorted(idx)
    err = next(e for e in els if e["event"] == "Error routing event" and e["extra"]["correlation_id"] == SEED["reg"])
    assert err["extra"]["error"] == "[PROCESSING_ERROR] Database error during batch essay creation: DBAPIError"
    assert err["extra"]["event_type"] == REGISTERED and err["level"] == "error"
    assert err["timestamp"].startswith("2025-11-20T18:41:51")
    assert list(err) == [k for k in JSON_KEYS if k in err]
    fail = [e for e in els if e["event"] == "Message processing failed - offset not committed"
            and e["extra"] == {"topic": REGISTERED, "partition": 2, "offset": 12}]
    assert len(fail) == 1
    pending = [e for e in els if e["event"] == "Batch not registered yet, storing content as pending"
               and e["extra"]["batch_id"] == b]
    assert len(pending) == 2 and all(e["timestamp"].startswith("2025-11-20T18:41:50") for e in pending)
    db = w.logs["huleedu_essay_lifecycle_db"]["stderr"]
    hit = [i for i, l in enumerate(db) if 'UTC [65] ERROR:  invalid input value for enum essay_status_enum: "uploaded"'
           in l and "18:41:51" in l]
    assert hit and "CONTEXT:  unnamed portal parameter $3" in db[hit[0] + 1]
    assert "STATEMENT:  INSERT INTO essay_states" in db[hit[0] + 2]
    bos = events(w, "huleedu_batch_orchestrator_service")
    rej = next(e for e in bos if e["event"] == f"Batch {b} not ready for pipeline execution")
    assert rej["extra"]["current_status"] == "awaiting_content_validation"
    assert rej["extra"]["expected_status"] == "ready_for_pipeline_execution"
    assert rej["extra"]["correlation_id"] == f"UUID('{SEED['pipe']}')"
    assert rej["timestamp"].startswith("2025-11-20T18:41:59")
    verr = [e for e in bos if e["event"].startswith("Error processing client pipeline request: [VALIDATION_ERROR]")]
    assert len(verr) == 1 and "Current status: awaiting_content_validation" in verr[0]["event"]
    handling = next(e for e in bos if e["event"].startswith("Error handling message from topic"))
    assert handling["exception"].startswith("Traceback (most recent call last):") and "\n" in handling["exception"]
    fs = [e["event"] for e in events(w, "huleedu_file_service")]
    assert sum(f"storage_id: {t}" in m for m in fs for t in SEED["tsids"]) >= 2


def test_seed_variant_b_signature() -> None:
    w = world("seed_variant_b")
    b = w.target["batch_id"]
    assert rows(w, BOS, "batches", b).iloc[0]["status"] == "awaiting_content_validation"
    assert len(rows(w, ELS, "batch_essay_trackers", b)) == 0
    assert len(rows(w, ELS, "batch_essay_trackers")) == 0  # full rollback for every batch
    assert len(rows(w, ELS, "slot_assignments")) == 0
    assert len(rows(w, ELS, "essay_states", b)) == 0
    assert len(rows(w, ELS, "batch_pending_content", b)) == w.expected["pending_content"] == 2
    assert "uploaded" not in w.databases[ELS].enums["essay_status_enum"]
    assert any('enum essay_status_enum: "uploaded"' in l for l in w.logs["huleedu_essay_lifecycle_db"]["stderr"])
    assert any(e["event"] == "Error routing event" and e["extra"]["correlation_id"] == w.target["registration_correlation_id"]
               for e in events(w, "huleedu_essay_lifecycle_worker"))


def test_outbox_poisoned_signature() -> None:
    w = world("outbox_poisoned")
    b = w.target["batch_id"]
    assert rows(w, BOS, "batches", b).iloc[0]["status"] == "awaiting_content_validation"
    assert len(rows(w, BOS, "batch_essays", b)) == 0
    es = rows(w, ELS, "essay_states", b)
    assert len(es) == w.expected["essay_count"] and set(es["current_status"]) == {"ready_for_processing"}
    ob = rows(w, ELS, "event_outbox", b)
    comp = ob[ob["topic"] == COMPLETED]
    assert len(comp) == 1
    row = comp.iloc[0]
    assert row["retry_count"] == 5 and row["last_error"] == "Exceeded max retries (5)" and pd.isna(row["published_at"])
    others = ob[ob["topic"] != COMPLETED]
    assert len(others) and others["published_at"].notna().all()
    els = events(w, "huleedu_essay_lifecycle_worker")
    oid = row["id"]
    mine = [e for e in els if (e.get("extra") or {}).get("event_id") == oid]
    kinds = [e["event"] for e in mine]
    assert sum(k.startswith("Failed to publish event to Kafka: ") for k in kinds) == 5
    assert kinds.count("Incremented retry count for outbox event") == 5
    assert kinds.count("Event exceeded max retries, marking as failed") >= 3
    first_exceeded = kinds.index("Event exceeded max retries, marking as failed")
    assert all(not k.startswith("Failed to publish") for k in kinds[first_exceeded:])
    assert not any(e["event"].startswith(f"Processing content provisioning completed for batch {b}")
                   for e in events(w, "huleedu_batch_orchestrator_service"))


def test_validation_failure_signature() -> None:
    w = world("validation_failure")
    b = w.target["batch_id"]
    k = w.expected["failed_files"]
    assert k >= 1
    fu = rows(w, FILE, "file_uploads", b)
    failed = fu[fu["processing_status"] == "failed"]
    assert len(failed) == k and set(failed["validation_error_code"]) == {"EMPTY_CONTENT"}
    fo = rows(w, FILE, "event_outbox", b)
    vf = fo[fo["topic"] == "huleedu.file.essay.validation.failed.v1"]
    assert set(vf["aggregate_id"]) == set(failed["file_upload_id"])
    bvf = rows(w, ELS, "batch_validation_failures", b)
    assert len(bvf) == k and set(bvf["file_upload_id"]) == set(failed["file_upload_id"])
    slots = rows(w, ELS, "slot_assignments", b)
    assert (slots["status"] == "failed").sum() == k
    es = rows(w, ELS, "essay_states", b)
    assert (es["current_status"] == "uploaded").sum() == k
    assert (es["current_status"] == "ready_for_processing").sum() == w.expected["essay_count"] - k
    assert (rows(w, ELS, "event_outbox", b)["topic"] == COMPLETED).sum() == 0
    assert rows(w, BOS, "batches", b).iloc[0]["status"] == "awaiting_content_validation"


# ---------------------------------------------------------------- logs

@pytest.mark.parametrize("name", scenario_names())
def test_log_lines_stamped_and_ordered(name: str) -> None:
    w = world(name)
    total = 0
    for c, streams in w.logs.items():
        assert c in model.CONTAINERS
        assert set(streams) == {"stdout", "stderr"}
        for stream, lines in streams.items():
            stamps = []
            for line in lines:
                m = STAMP.match(line)
                assert m, f"{c}/{stream}: bad docker stamp: {line[:80]!r}"
                stamps.append(m.group(1))
            assert stamps == sorted(stamps), f"{c}/{stream} not in time order"
            total += len(lines)
            if stamps:
                assert stamps[-1] <= w.collected_at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "999"
    assert 500 < total < 5000
    for line in w.logs["huleedu_batch_orchestrator_service"]["stdout"]:
        text = line.split(" ", 1)[1]
        if text.startswith("{"):
            d = json.loads(text)
            assert list(d) == [k for k in JSON_KEYS if k in d]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", d["timestamp"])
            assert d["level"] in {"debug", "info", "warning", "error", "critical"}
            # the docker stamp is at or just after the inner timestamp
            assert line[:26] >= d["timestamp"][:26]


@pytest.mark.parametrize("name", ["healthy_guest", "seed_variant_a"])
def test_realistic_noise_present(name: str) -> None:
    w = world(name)
    text = "\n".join(all_lines(w))
    assert "Retrieved 0 unpublished events from outbox" in text
    assert "not found in ProcessingEvent enum, using as topic name directly" in text
    assert re.search(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\] \[7\] \[INFO\] Running on http://0.0.0.0:5000", text)
    assert '"GET /healthz 1.1" 200' in text
    assert "INFO: Outbox settings for environment 'production': poll_interval=5.0s, wake_notifications=True" in text
    assert "INFO: Outbox settings for environment 'development'" in text
    created = [l for l in w.logs["huleedu_kafka_topic_setup"]["stdout"] if "✅ Created topic: " in l]
    assert {l.split("✅ Created topic: ")[1] for l in created} == set(model.TOPICS)
    assert re.search(r"Z \d{4}-\d\d-\d\dT[\d:.]+Z \[info     \] Health check requested\s+\[els.api.health\]", text)
    tb = w.logs["huleedu_essay_lifecycle_worker"]["stderr"]
    assert tb[0].endswith("Traceback (most recent call last):") and "KafkaConnectionError" in tb[-1]
    for db in model.DATABASES.values():
        err = w.logs[db.container]["stderr"]
        assert any("LOG:  database system is ready to accept connections" in l for l in err)
        assert any("LOG:  checkpoint complete: wrote" in l for l in err)
        assert not any("{" in l.split(" ", 1)[1][:1] for l in err)
    # relay environments as in SYSTEM.md §5.1: the ELS worker says development
    assert {e["deployment.environment"] for e in events(w, "huleedu_essay_lifecycle_worker")} == {"development"}
    assert {e["deployment.environment"] for e in events(w, "huleedu_batch_orchestrator_service")} == {"production"}


@pytest.mark.parametrize("name", scenario_names())
def test_background_batches_present_and_interleaved(name: str) -> None:
    w = world(name)
    target = w.target["batch_id"]
    batches = rows(w, BOS, "batches")
    others = [b for b in batches["id"] if b != target]
    assert 3 <= len(others) <= 5
    flows = {"GUEST" if c is None else "REGULAR" for c in batches[batches["id"] != target]["class_id"]}
    assert flows == {"GUEST", "REGULAR"}
    # every background batch left log lines; some of them fall inside the target's own log window
    bos_lines = all_lines(w, "huleedu_batch_orchestrator_service") + all_lines(w, "huleedu_essay_lifecycle_worker")
    tgt = sorted(l[:30] for l in bos_lines if target in l)
    inside = set()
    for b in others:
        mine = [l[:30] for l in bos_lines if b in l]
        assert mine, f"background batch {b} has no log lines"
        if any(tgt[0] < s < tgt[-1] for s in mine):
            inside.add(b)
    assert inside
    # background rows are healthy wherever the databases are aligned
    if not name.startswith("seed"):
        bg = batches[batches["id"] != target]
        assert set(bg["status"]) <= {"ready_for_pipeline_execution"}


def test_containers() -> None:
    w = world("healthy_guest")
    by = {c.name: c for c in w.containers}
    assert set(by) == {"huleedu_batch_orchestrator_service", "huleedu_batch_orchestrator_db",
                       "huleedu_essay_lifecycle_worker", "huleedu_essay_lifecycle_api", "huleedu_essay_lifecycle_db",
                       "huleedu_file_service", "huleedu_file_service_db", "huleedu_kafka_topic_setup"}
    assert by["huleedu_kafka_topic_setup"].state == "exited" and by["huleedu_kafka_topic_setup"].exit_code == 0
    assert by["huleedu_kafka_topic_setup"].finished_at is not None
    for c in w.containers:
        assert c.started_at is not None and c.started_at.tzinfo is not None and c.started_at < w.collected_at
        if c.name != "huleedu_kafka_topic_setup":
            assert c.state == "running"
    assert by["huleedu_essay_lifecycle_worker"].restart_count == 1


@pytest.mark.parametrize("name", scenario_names())
def test_frames_have_kit_dtypes(name: str) -> None:
    w = world(name)
    for (db, t), spec in model.TABLES.items():
        df = w.table(db, t)
        assert df is not None, f"{db}.{t}"
        for col in spec.timestamp_columns:
            assert str(df[col].dtype) == "datetime64[ns, UTC]", (db, t, col)
        for col in spec.json_columns:
            for v in df[col].dropna():
                json.loads(v)


@pytest.mark.parametrize("name", scenario_names())
def test_every_line_parses(name: str) -> None:
    from huledu_forensics import logs as logparse

    w = world(name)
    for c, streams in w.logs.items():
        for stream, lines in streams.items():
            if not lines:
                continue
            df = logparse.parse_lines(lines, container=c, stream=stream)
            assert len(df) == len(lines)
            bad = df[~df["parsed"].astype(bool)]
            assert bad.empty, f"{c}/{stream}: {list(bad['raw'])[:3]}"


def test_world_writes_as_a_valid_bundle(tmp_path) -> None:
    from huledu_forensics.bundle import Bundle, write_world_bundle

    w = world("seed_variant_a")
    write_world_bundle(w, tmp_path / "b")
    b = Bundle.open(tmp_path / "b")
    assert b.enums[ELS]["essay_status_enum"] == w.databases[ELS].enums["essay_status_enum"]
    pend = b.table(ELS, "batch_pending_content")
    assert pend is not None and len(pend) == len(w.databases[ELS].tables["batch_pending_content"])
    assert {c for c, _, _ in b.log_files()} == set(w.logs)


def test_round_trip_through_world_dir(tmp_path) -> None:
    w = world("validation_failure")
    back = load_world_dir(save_world_dir(w, tmp_path / "w"))
    assert back.target == w.target and back.expected == w.expected
    for db, img in w.databases.items():
        assert back.databases[db].enums == img.enums
        for t, df in img.tables.items():
            assert len(back.databases[db].tables[t]) == len(df)


# ---------------------------------------------------------------- real PostgreSQL

def _pg_value(v: object) -> object:
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    try:
        if pd.isna(v):  # type: ignore[arg-type]
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        return v.item()  # numpy scalars
    return v


@pytest.mark.parametrize("name", scenario_names())
def test_ddl_and_rows_load_into_postgresql(name: str) -> None:
    import psycopg
    from psycopg import sql

    w = world(name)
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True,
                                connect_timeout=5)
    except psycopg.OperationalError as e:  # pragma: no cover - environment without PostgreSQL
        unavailable(f"PostgreSQL not reachable: {e}")
    with admin:
        for img in w.databases.values():
            dbname = f"sim_{img.name[8:]}_{uuid.uuid4().hex[:10]}"
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            try:
                with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}") as conn:
                    conn.execute("SET TimeZone = 'UTC'")
                    conn.execute(img.ddl or "")
                    for t, df in img.tables.items():
                        if df.empty:
                            continue
                        cols = list(df.columns)
                        stmt = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                            sql.Identifier(t), sql.SQL(", ").join(map(sql.Identifier, cols)),
                            sql.SQL(", ").join(sql.Placeholder() * len(cols)))
                        with conn.cursor() as cur:
                            cur.executemany(stmt, [[_pg_value(v) for v in r] for r in df.itertuples(index=False)])
                    conn.commit()
                    for t, df in img.tables.items():
                        n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()
                        assert n is not None and n[0] == len(df), (img.name, t)
                    labels = conn.execute(
                        "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
                        "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname").fetchall()
                    assert dict(labels) == img.enums
                    if "event_outbox" in img.tables and len(img.tables["event_outbox"]):
                        # the outbox payload round-trips as JSON with its top-level topic key
                        row = conn.execute("SELECT event_data->>'topic', topic FROM event_outbox LIMIT 1").fetchone()
                        assert row is not None and row[0] == row[1]
                    if img.name == ELS and name == "seed_variant_a":
                        # the drifted type rejects the label ELS writes, as it did in the incident
                        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
                            conn.execute("INSERT INTO essay_states (essay_id, current_status, processing_metadata, "
                                         "timeline, storage_references, version) VALUES "
                                         "('x', 'uploaded', '{}', '{}', '{}', 1)")
                        conn.rollback()
            finally:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.mark.parametrize("name", scenario_names())
def test_kit_reaches_the_expected_verdict(name: str, tmp_path) -> None:
    """End to end: the world, written as a bundle, investigates to the verdict EXPECTED declares."""
    from huledu_forensics.bundle import write_world_bundle
    from huledu_forensics.investigation import investigate

    w = world(name)
    write_world_bundle(w, tmp_path / name)
    got = investigate(tmp_path / name, w.target["batch_id"]).verdict.to_json()
    root = got["root_cause"]
    got["root_cause"] = root.get("finding") if isinstance(root, dict) else root
    want = asdict(EXPECTED[name])
    assert {k: got[k] for k in want} == want
    batch = rows(w, BOS, "batches", w.target["batch_id"]).iloc[0]
    assert got["flow"] == ("GUEST" if batch["class_id"] is None else "REGULAR")
