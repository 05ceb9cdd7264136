"""More corpus worlds changed by hand, different in kind from tests/test_novel_worlds.py: restarts,
rotated logs, partial phase failures, duplicate relays, small clock skews, a consumer the model does not
know, an emptied outbox, a batch seen only in logs, another enum drift, a status that is not a step.

Each docstring was written from the raw rows and lines and SYSTEM.md before the kit was run on the
world: what an honest verdict must say, and what it must not claim.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.investigation import Investigation, investigate
from huledu_forensics.world import World
from tests.support.corpus import full_batch_id
from tests.test_novel_worlds import _corpus, _cut_at, _shift, _stamp

BOS = "huleedu_batch_orchestrator_service"
BOS_DB = "huleedu_batch_orchestrator"
ELS = "huleedu_essay_lifecycle"
ELS_WORKER = "huleedu_essay_lifecycle_worker"
ELS_API = "huleedu_essay_lifecycle_api"
FILE_DB = "huleedu_file_service"
FILE = "huleedu_file_service"
GUEST_BATCH = "4f9d465a-d9c0-4fb0-9443-bebd5635474f"
GUEST_CORR = "8f0d9bbd-0c64-4940-b025-a8c4efb706b3"
SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
VALIDATION_BATCH = "1f60ded5-5c8f-45f3-b6be-96a5c9cc4c66"
COMPLETED = "huleedu.batch.content.provisioning.completed.v1"
READY = "huleedu.els.batch.essays.ready.v1"
SERIOUS = ("critical", "error")


def _inv(world: World, batch: str, tmp_path: Path) -> Investigation:
    return investigate(write_world_bundle(world, tmp_path / "bundle"), batch)


def _ids(v: dict[str, Any]) -> set[str]:
    return {f["id"] for f in v["findings"]}


def _moved(line: str, to: pd.Timestamp) -> str:
    """``line`` as printed at ``to`` (Docker's stamp and the JSON ``timestamp`` both)."""
    return _shift([line], to - _stamp(line))[0]


def _guest_waiting_for_bos(world: World) -> None:
    """BOS's batches row of the guest batch as it was before BOS handled provisioning.completed."""
    batches = world.databases[BOS_DB].tables["batches"]
    row = batches["id"].astype(str) == GUEST_BATCH
    batches.loc[row, "status"] = "awaiting_content_validation"
    batches.loc[row, "pipeline_configuration"] = json.dumps(
        {"batch_id": GUEST_BATCH, "requested_pipelines": ["spellcheck"]})


# ---- 1. a consumer container restarted in the middle of handling the awaited event

def test_a_handling_cut_by_a_restart_is_not_called_handled(tmp_path: Path) -> None:
    """healthy-guest: BOS logged the start of its provisioning.completed handling for the batch
    (09:53:39.754 'Processing content provisioning completed', then 'identified as GUEST batch'),
    never the status update or the stored essays, and 3 s later the container started again
    (its startup lines, containers.json started_at, restart_count 1). BOS's row still reads
    awaiting_content_validation ten minutes later.
    Must: produced yes, published yes, consumed yes (BOS took the event: its handler logged it) but
    the outcome is not 'handled' (nothing shows the handling finished); no finding may say BOS
    handled the event and did not transition (event.handled_no_transition rests on a completed
    handling). Must not: claim event.not_consumed."""
    world = _corpus("healthy-guest")
    lines = world.logs[BOS]["combined"]
    start = next(i for i, ln in enumerate(lines)
                 if "bos.handlers.content_provisioning_completed" in ln and GUEST_BATCH in ln)
    cut = _stamp(lines[start + 1]) + pd.Timedelta(microseconds=10)
    startup = [ln for ln in lines[:40] if "bos.startup" in ln or "bos.kafka.consumer" in ln]
    _cut_at(world, cut)
    restart = cut + pd.Timedelta(seconds=3)
    world.logs[BOS]["combined"] = world.logs[BOS]["combined"] + [
        _moved(ln, restart + pd.Timedelta(milliseconds=10 * k)) for k, ln in enumerate(startup)]
    _guest_waiting_for_bos(world)
    for c in world.containers:
        if c.name == BOS:
            c.started_at, c.restart_count = (restart - pd.Timedelta(milliseconds=300)).to_pydatetime(), 1
    world.collected_at = (cut + pd.Timedelta(minutes=10)).to_pydatetime()
    inv = _inv(world, GUEST_BATCH, tmp_path)
    v = inv.verdict.to_json()
    aw = v["awaited"]
    assert v["awaited_event"] == COMPLETED and aw["produced"] is True and aw["published"] is True
    assert aw["consumed"] is not False
    assert aw["outcome"] != "handled", aw
    assert "event.handled_no_transition" not in _ids(v)
    assert "event.not_consumed" not in _ids(v)
    assert v["status"] == "stuck"
    # the restart that cut the handling is evidence (containers.json, the run's last line); nothing
    # else may be named
    assert (v["root_cause"] or {}).get("finding") in (None, "container.not_running")


# ---- 2. the consumer's log was rotated: it starts after the awaited event was published

def test_a_consumer_log_that_starts_after_the_event_leaves_consumption_unknown(tmp_path: Path) -> None:
    """healthy-regular, batch 03ccad95 (stuck at student_validation_completed, waiting for
    essays.ready): BOS's log was rotated so it starts at 14:26:53, after ELS published essays.ready
    (14:26:52.83) and after BOS's own handling of it (14:26:52.86-.87). The log that would show the
    consumption is gone. Must: consumed unknown, the reason says BOS's log starts after the
    publication; no event.not_consumed; no root cause resting on a handling nobody can see.
    Must not: say BOS did not consume essays.ready."""
    world = _corpus("healthy-regular")
    batch = full_batch_id("healthy-regular", "03ccad95")
    rotated = pd.Timestamp("2026-01-20T14:26:53Z")
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = [ln for ln in lines if _stamp(ln) >= rotated]
    v = _inv(world, batch, tmp_path).verdict.to_json()
    aw = v["awaited"]
    assert v["awaited_event"] == READY and aw["produced"] is True and aw["published"] is True
    assert aw["consumed"] is None and aw["consumed_state"] == "unknown", aw
    assert "begin after" in aw["consumed_reason"] and BOS in aw["consumed_reason"], aw["consumed_reason"]
    assert "event.not_consumed" not in _ids(v)
    assert (v["root_cause"] or {}).get("finding") not in ("event.not_consumed", "event.dropped")


# ---- 3. one batch, three essays: one failed in the spellchecker, the others succeeded

def test_one_essay_failing_spellcheck_is_accounted_not_lost(tmp_path: Path) -> None:
    """healthy-guest, the guest batch's spellcheck phase as ELS reports a partial failure: essay
    a7afa990 is spellcheck_failed, the other two spellchecked_success; ELS's phase outcome says
    completed_with_failures, processed 2, failed 1; BOS moved the phase to completed_successfully
    (SYSTEM.md §4.3: the compare-and-set covers completed_with_failures). The pipeline ran to its
    end. Must: current step pipeline_completed, not stuck, no root cause, every content item in a
    slot (none lost or not provisioned), the failed essay visible in the essay counts."""
    world = _corpus("healthy-guest")
    es = world.databases[ELS].tables["essay_states"]
    es.loc[es["essay_id"].astype(str) == "a7afa990-1c65-4627-8205-64cff60f8c35",
           "current_status"] = "spellcheck_failed"
    ob = world.databases[ELS].tables["event_outbox"]
    row = (ob["aggregate_id"].astype(str) == GUEST_BATCH) & (
        ob["event_type"] == "huleedu.els.batch.phase.outcome.v1")
    i = ob.index[row][0]
    ob.at[i, "event_data"] = str(ob.at[i, "event_data"]).replace(
        '"completed_successfully"', '"completed_with_failures"')
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    assert v["current_step"] == "pipeline_completed" and v["status"] != "stuck"
    assert v["root_cause"] is None
    c = v["content"]
    assert c["slot"] == 3 and c["lost"] == 0 and c["not_provisioned"] == 0, c
    assert c["essays_by_status"].get("spellcheck_failed") == 1, c


# ---- 4. one outbox row relayed twice (the relay's mark failed): two rows' worth of consumption

def test_an_event_relayed_twice_and_handled_twice_is_healthy(tmp_path: Path) -> None:
    """healthy-guest: ELS's provisioning.completed for the batch was published twice (a second
    outbox row, the same envelope, published 0.4 s after the first: SYSTEM.md §2.3, a publish whose
    mark failed is published again with a fresh event_id, so idempotency does not catch it), and
    BOS handled both deliveries (its handler lines twice, the second 0.5 s after the first ended).
    The batch is ready and its pipeline completed. Must: healthy, no root cause, consumed yes,
    handled; no warning or error finding. Must not: count the second handling as a failure."""
    world = _corpus("healthy-guest")
    ob = world.databases[ELS].tables["event_outbox"]
    dup = ob[(ob["aggregate_id"].astype(str) == GUEST_BATCH) & (ob["event_type"] == COMPLETED)].copy()
    assert len(dup) == 1
    dup["id"] = "0d7e1c55-6c1e-4f7a-9b55-3f1f2d6c9a01"
    dup["published_at"] = dup["published_at"] + pd.Timedelta(milliseconds=400)
    world.databases[ELS].tables["event_outbox"] = pd.concat([ob, dup], ignore_index=True)
    lines = world.logs[BOS]["combined"]
    run = [i for i, ln in enumerate(lines) if GUEST_BATCH in ln and (
        "bos.handlers.content_provisioning_completed" in ln or "bos.repository.crud" in ln
        or "bos.repository.batch_essays" in ln) and _stamp(ln) < pd.Timestamp("2025-12-15T09:53:40Z")]
    again = _stamp(lines[run[-1]]) + pd.Timedelta(milliseconds=500)
    second = [_moved(lines[i], again + (_stamp(lines[i]) - _stamp(lines[run[0]]))) for i in run]
    lines[run[-1] + 1:run[-1] + 1] = second
    inv = _inv(world, GUEST_BATCH, tmp_path)
    v = inv.verdict.to_json()
    assert v["status"] == "healthy" and v["root_cause"] is None
    assert not [f["id"] for f in v["findings"] if f["severity"] != "info"], v["findings"]
    runs = inv.handlings()
    mine = runs[(runs["topic"] == COMPLETED) & (runs["service"] == "bos")]
    assert list(mine["outcome"]) == ["handled", "handled"], mine


# ---- 5. ELS worker's clock a few seconds ahead of its database's

def test_a_few_seconds_of_skew_does_not_flip_the_seed_cause(tmp_path: Path) -> None:
    """seed-variant-a with the ELS worker's clock 3 s ahead: its failed handling of the batch's
    registration now appears 3 s after PostgreSQL (the ELS database container's log) rejected the
    'uploaded' label. The rows are unchanged: the enum lacks 'uploaded', the tracker has no essays,
    provisioning.completed was never produced. Must: root cause enum.label_missing, ELS responsible,
    the ELS handler failure in the chain; produced no. Must not: make the skewed order a new cause
    or say the handling came before the registration was published."""
    world = _corpus("seed-variant-a")
    for stream, lines in world.logs[ELS_WORKER].items():
        world.logs[ELS_WORKER][stream] = _shift(lines, pd.Timedelta(seconds=3))
    v = _inv(world, SEED_BATCH, tmp_path).verdict.to_json()
    assert v["root_cause"]["finding"] == "enum.label_missing" and v["responsible_service"] == "els"
    assert "consumer.handler_failed" in [c["finding"] for c in v["chain"]]
    assert v["awaited"]["produced"] is False and v["status"] == "stuck"


# ---- 6. the awaited event handled by a container that is not its consumer

def test_a_handling_by_another_consumer_is_not_the_awaited_consumption(tmp_path: Path) -> None:
    """healthy-guest as collected ten minutes after ELS published provisioning.completed, with BOS's
    handling of it gone from BOS's log and the status not written (the batch still
    awaiting_content_validation), and the ELS API container logging a consumer's 'Processing event'
    line for provisioning.completed (a service of the wrong consumer group read the topic). BOS's
    log covers the time after the publication and shows it handling other batches' events. Must: consumed no (BOS, the model's consumer, logged
    no handling), never yes on the strength of another service's line; stuck."""
    world = _corpus("healthy-guest")
    published = pd.Timestamp("2025-12-15T09:53:39.730827Z")
    lines = world.logs[BOS]["combined"]
    world.logs[BOS]["combined"] = [
        ln for ln in lines if not (GUEST_BATCH in ln and pd.Timestamp("2025-12-15T09:53:39.7Z")
                                   < _stamp(ln) < pd.Timestamp("2025-12-15T09:53:40Z"))]
    later = [ln for ln in world.logs[BOS]["combined"]
             if _stamp(ln) > pd.Timestamp("2025-12-15T09:53:45Z") and GUEST_BATCH not in ln
             and "32826395" not in ln]  # BOS's lines about other batches' work
    _cut_at(world, pd.Timestamp("2025-12-15T09:53:45Z"))
    world.logs[BOS]["combined"] += later  # BOS kept logging (and handling others' events)
    _guest_waiting_for_bos(world)
    s = (published + pd.Timedelta(milliseconds=30)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    world.logs.setdefault(ELS_API, {}).setdefault("combined", []).append(
        f'{s}000Z {{"logger_name": "els.kafka.consumer", "extra": {{"event_type": "{COMPLETED}", '
        f'"topic": "{COMPLETED}", "batch_id": "{GUEST_BATCH}", "correlation_id": "{GUEST_CORR}"}}, '
        f'"event": "Processing event", "level": "info", "timestamp": "{s}Z"}}')
    world.collected_at = (published + pd.Timedelta(minutes=10)).to_pydatetime()
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    aw = v["awaited"]
    assert aw["produced"] is True and aw["published"] is True
    assert aw["consumed"] is False, aw
    assert v["status"] == "stuck"


# ---- 7. the File Service database answers but its outbox table is empty; its log shows publishing

def test_an_empty_file_outbox_beside_a_log_of_publishing_is_not_not_provisioned(tmp_path: Path) -> None:
    """validation-failure-never-completes with the File Service's event_outbox collected empty (the
    table answered with no rows; HuleEdu never deletes outbox rows, SYSTEM.md §2) while the File
    Service's log shows it storing and relaying the batch's provisioned and validation-failed
    events. The uploads still say which files completed and which failed. Must: no content item
    counted not_provisioned (the log contradicts an empty table), the root cause as without the
    change (validation.failures_block_completion, from ELS's rows). Must not: make 'the File
    Service never produced the provisioned event' a finding."""
    world = _corpus("validation-failure-never-completes")
    ob = world.databases[FILE_DB].tables["event_outbox"]
    world.databases[FILE_DB].tables["event_outbox"] = ob.iloc[0:0]
    v = _inv(world, VALIDATION_BATCH, tmp_path).verdict.to_json()
    c = v["content"]
    assert c["not_provisioned"] == 0, c
    assert v["root_cause"]["finding"] == "validation.failures_block_completion"
    for f in v["findings"]:
        assert f["id"] != "content.unplaced", f


# ---- 8. a batch id that only logs mention: no row in any database

def _erase_rows(world: World, ids: set[str]) -> None:
    for img in world.databases.values():
        for name, df in img.tables.items():
            if df.empty:
                continue
            text = pd.Series("", index=df.index)
            for col in df.columns:
                text = text + " " + df[col].map(str)
            hit = pd.Series(False, index=df.index)
            for i in ids:
                hit |= text.str.contains(i, regex=False)
            img.tables[name] = df[~hit]


def test_a_batch_only_logs_mention_gets_no_state_and_no_health(tmp_path: Path) -> None:
    """healthy-guest with every row of the guest batch gone from every database (its batches row,
    essays, trackers, outbox rows, uploads), while the logs still show its whole story. The
    databases answered; they hold nothing about it. Must: current state unknown (None), not healthy,
    no root cause. Must not: read the missing rows as 'never registered/never produced' for a batch
    whose registration the logs show, nor present a content ledger of zero items as a fact."""
    world = _corpus("healthy-guest")
    es = world.databases[ELS].tables["essay_states"]
    essays = set(es.loc[es["batch_id"].astype(str) == GUEST_BATCH, "essay_id"].astype(str))
    _erase_rows(world, {GUEST_BATCH, GUEST_CORR, *essays})
    inv = _inv(world, GUEST_BATCH, tmp_path)
    v = inv.verdict.to_json()
    assert v["current_state"] is None and v["healthy"] is False
    # no status row: no step is read off the flow (a missing status once matched the pipeline
    # steps, which have none, and the batch was said to be ready and waiting for its request)
    assert v["current_step"] is None, v["current_step"]
    assert not any("waits for the client" in n for n in inv.progress.notes), inv.progress.notes
    assert v["status"] in ("unknown", "degraded"), v["status"]
    assert v["root_cause"] is None
    assert not [f["id"] for f in v["findings"] if f["severity"] in SERIOUS], v["findings"]


# ---- 9. an enum drift on a label only the other flow writes

def _drop_label(world: World, db: str, enum: str, label: str) -> None:
    img = world.databases[db]
    img.enums[enum] = [x for x in img.enums[enum] if x != label]
    img.ddl = (img.ddl or "").replace(f", '{label}'", "").replace(f"'{label}', ", "")


def test_enum_drift_on_a_label_the_batch_never_writes_is_not_its_cause(tmp_path: Path) -> None:
    """healthy-guest with BOS's batch_status_enum lacking 'awaiting_student_validation' (unlike the
    seed's ELS 'uploaded'): only a REGULAR batch's content-completed handling writes it (SYSTEM.md
    §4.1); the guest batch went through its flow and its pipeline completed, and no rejection of that
    label is in BOS's database log. Must: the batch's pipeline completed, not stuck, no root cause;
    the drift, reported, is not linked to this batch as if a write of it had failed, nor of error
    severity for it."""
    world = _corpus("healthy-guest")
    label = "awaiting_student_validation"
    assert label in world.databases[BOS_DB].enums["batch_status_enum"]
    _drop_label(world, BOS_DB, "batch_status_enum", label)
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    assert v["current_step"] == "pipeline_completed" and v["status"] != "stuck"
    assert v["root_cause"] is None
    drift = [f for f in v["findings"] if f["id"] == "enum.label_missing"
             and f["facts"].get("missing_value") == label]
    assert drift, [f["facts"] for f in v["findings"]]  # the drift is seen
    for f in drift:
        assert f["facts"].get("link", "batch") != "batch" and f["severity"] not in SERIOUS, f


# ---- 10. a BOS status the implemented state machine has no step for

def test_a_status_that_is_no_step_of_the_flow_is_not_healthy(tmp_path: Path) -> None:
    """healthy-guest with the guest batch's batches.status set to 'cancelled' (a BatchStatus value no
    implemented transition writes, SYSTEM.md §4.1) and everything else as it was (pipeline completed
    in pipeline_configuration). The kit's model cannot place 'cancelled' on the GUEST flow. Must:
    report current_state 'cancelled', never healthy, no root cause invented; a note says the status
    is not a step of the flow."""
    world = _corpus("healthy-guest")
    batches = world.databases[BOS_DB].tables["batches"]
    batches.loc[batches["id"].astype(str) == GUEST_BATCH, "status"] = "cancelled"
    inv = _inv(world, GUEST_BATCH, tmp_path)
    v = inv.verdict.to_json()
    assert v["current_state"] == "cancelled"
    assert v["healthy"] is False and v["status"] != "healthy", v["status"]
    assert v["root_cause"] is None
    assert any("cancelled" in n for n in inv.progress.notes), inv.progress.notes


# ---- 11. content in flight: one item's provisioned event still in the File outbox

def _guest_mid_provisioning(world: World) -> None:
    """healthy-guest as collected at 09:53:38.600: two of the three files' provisioned events were
    published and ELS put them in slots; the third (File outbox row created 09:53:38.557, published
    only at 38.674) still waits in the outbox, its slot (essay e5e08f41, assigned at 38.71) empty."""
    _cut_at(world, pd.Timestamp("2025-12-15T09:53:38.600Z"))
    _guest_waiting_for_bos(world)
    es = world.databases[ELS].tables["essay_states"]
    row = es["essay_id"].astype(str) == "e5e08f41-278b-4ab5-945f-72da6245693b"
    es.loc[row, "current_status"] = "uploaded"
    es.loc[row, "text_storage_id"] = None


def test_an_item_whose_event_waits_in_the_outbox_is_not_lost(tmp_path: Path) -> None:
    """The world of :func:`_guest_mid_provisioning`. The rows say: produced (outbox row), not yet
    published (published_at NULL 43 ms after it was written), ELS holds it nowhere because nothing
    has reached ELS. Must: no item counted lost or not provisioned, no content.unplaced, no root
    cause, not stuck (the batch entered its step 1.6 s ago)."""
    world = _corpus("healthy-guest")
    _guest_mid_provisioning(world)
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    c = v["content"]
    assert c["slot"] == 2 and c["lost"] == 0 and c["not_provisioned"] == 0, c
    assert c["unpublished"] == 1, c
    assert "content.unplaced" not in _ids(v)
    assert v["root_cause"] is None and v["status"] != "stuck"


def test_an_emptied_file_outbox_does_not_make_items_unprovisioned(tmp_path: Path) -> None:
    """As above, with the File Service's event_outbox collected empty (the table answered, zero rows)
    while the File Service's relay lines still name each file's provisioned event. Nothing in the
    bundle says whether the third file's event was published; its log line says it was produced.
    Must: no item lost or not provisioned; that item is unknown; no content.unplaced."""
    world = _corpus("healthy-guest")
    _guest_mid_provisioning(world)
    world.databases[FILE_DB].tables["event_outbox"] = world.databases[FILE_DB].tables["event_outbox"].iloc[0:0]
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    c = v["content"]
    assert c["lost"] == 0 and c["not_provisioned"] == 0 and c["unknown"] == 1, c
    assert "content.unplaced" not in _ids(v)
    assert v["root_cause"] is None


def test_an_item_published_moments_before_collection_is_not_lost(tmp_path: Path) -> None:
    """healthy-guest collected at 09:53:38.680, 6 ms after the File relay published the third file's
    provisioned event (38.674) and before ELS handled it (38.698): ELS's log ends 1 ms after the
    publication, its slot is empty. Nothing shows ELS failed to place it; on Kafka it is in flight.
    Must: the item not lost (unknown), no content.unplaced, no root cause, not stuck."""
    world = _corpus("healthy-guest")
    _guest_mid_provisioning(world)
    fresh = _corpus("healthy-guest")  # the File outbox and logs as they stood at 38.680
    _cut_at(fresh, pd.Timestamp("2025-12-15T09:53:38.680Z"))
    world.databases[FILE_DB].tables["event_outbox"] = fresh.databases[FILE_DB].tables["event_outbox"]
    world.logs, world.collected_at = fresh.logs, fresh.collected_at
    v = _inv(world, GUEST_BATCH, tmp_path).verdict.to_json()
    c = v["content"]
    assert c["slot"] == 2 and c["lost"] == 0 and c["unknown"] == 1, c
    assert "content.unplaced" not in _ids(v)
    assert v["root_cause"] is None and v["status"] != "stuck"
