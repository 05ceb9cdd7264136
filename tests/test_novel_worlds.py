"""Corpus worlds changed in ways no rule was written for: the verdict must still claim only what the
evidence shows, say `unknown` where it cannot tell, and name the source that is missing."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from huledu_forensics import cards, plots
from huledu_forensics.bundle import write_world_bundle
from huledu_forensics.errors import ScopeError
from huledu_forensics.investigation import investigate
from huledu_forensics.verdict import Verdict
from huledu_forensics.world import World, load_world_dir
from tests.support.corpus import full_batch_id, require_corpus

BOS = "huleedu_batch_orchestrator_service"
ELS_DB = "huleedu_essay_lifecycle_db"
SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"


def _verdict(world: World, batch: str, tmp_path: Path) -> dict[str, Any]:
    return investigate(write_world_bundle(world, tmp_path / "bundle"), batch).verdict.to_json()


def test_consumer_logs_that_end_before_the_event_leave_consumption_unknown(tmp_path: Path) -> None:
    """BOS's log was rotated before ELS published essays-ready: nobody can say BOS did not consume it."""
    world = copy.deepcopy(load_world_dir(require_corpus("healthy-regular")))
    batch = full_batch_id("healthy-regular", "03ccad95")
    published = "2026-01-20T14:26:52"  # ELS relayed huleedu.els.batch.essays.ready.v1 at 14:26:52.83
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = [ln for ln in lines if ln[:19] < published]
    v = _verdict(world, batch, tmp_path)
    aw = v["awaited"]
    assert v["status"] == "stuck" and aw["produced"] is True and aw["published"] is True
    assert aw["consumed"] is None and aw["consumed_state"] == "unknown"
    assert "end before the event was published" in aw["consumed_reason"]
    ids = {f["id"] for f in v["findings"]}
    assert "event.not_consumed" not in ids and "event.dropped" not in ids
    assert v["root_cause"] is None  # nothing in evidence explains it: no guess


def test_a_consumer_log_that_ends_before_the_event_makes_the_evidence_incomplete_not_complete(
        tmp_path: Path) -> None:
    """The same cut (novel-bos-cut): the bundle holds BOS's log in full as collected, but that log ends
    before the event BOS is asked about was published, so for this question it is partial. The card
    must not say "evidence complete"; it names the container, where its log ends and when the event
    was published."""
    world = copy.deepcopy(load_world_dir(require_corpus("healthy-regular")))
    batch = full_batch_id("healthy-regular", "03ccad95")
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = [ln for ln in lines if ln[:19] < "2026-01-20T14:26:52"]
    v = _verdict(world, batch, tmp_path)
    assert v["awaited"]["consumed_state"] == "unknown"
    assert v["completeness"][f"logs:{BOS}"] == "partial"
    note = v["completeness_notes"][f"logs:{BOS}"]
    # BOS's last kept line, and ELS's publication of essays.ready (its outbox row's published_at)
    for fact in (BOS, "end before", "huleedu.els.batch.essays.ready.v1", "2026-01-20T14:26:51.906",
                 "2026-01-20T14:26:52.836"):
        assert fact in note, note
    card = cards.verdict_card(v)
    assert "incomplete" in card.body and "were collected complete" not in card.body
    assert BOS in card.body and "2026-01-20T14:26:51.906" in card.body
    assert "evidence incomplete" in Verdict(v).summary_text()
    # against a healthy batch, BOS "shows nothing" only because its log ends first: not "unexplained"
    diff = v["differential"]
    assert diff["divergence"]["service"] == "bos" and diff["divergence"]["unseen"], diff
    assert "evidence cannot show it" in diff["text"] and "unexplained" not in diff["text"], diff["text"]
    assert diff["explained"] is None


def test_a_consumer_log_that_begins_after_the_event_leaves_consumption_unknown(tmp_path: Path) -> None:
    """healthy-regular with BOS's log starting a second after ELS published essays-ready (a recreated
    container, a window cut): BOS's handling of it, if any, happened before the first line kept. Must:
    consumed unknown (never no), no finding that BOS did not consume it, BOS's log partial for it."""
    world = copy.deepcopy(load_world_dir(require_corpus("healthy-regular")))
    batch = full_batch_id("healthy-regular", "03ccad95")
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = [ln for ln in lines if ln[:19] >= "2026-01-20T14:26:53"]
    v = _verdict(world, batch, tmp_path)
    aw = v["awaited"]
    assert aw["published"] is True and aw["consumed"] is None and aw["consumed_state"] == "unknown"
    assert "begin after the event was published" in aw["consumed_reason"]
    assert "event.not_consumed" not in {f["id"] for f in v["findings"]}
    assert v["completeness"][f"logs:{BOS}"] == "partial"
    assert "begin after huleedu.els.batch.essays.ready.v1" in v["completeness_notes"][f"logs:{BOS}"]


def test_without_the_database_log_enum_rejections_are_not_evaluated_not_absent(tmp_path: Path) -> None:
    """The ELS database container's log (where PostgreSQL names the rejected label) was not captured."""
    world = copy.deepcopy(load_world_dir(require_corpus("seed-variant-a")))
    del world.logs[ELS_DB]
    v = _verdict(world, SEED_BATCH, tmp_path)
    reasons = {n["rule"]: n["reason"] for n in v["not_evaluated"]}
    assert f"logs:{ELS_DB}" in reasons.get("db.enum_value_rejected", "")
    assert "db.enum_value_rejected" not in [c["finding"] for c in v["chain"]]
    # the drift is still linked to this batch through ELS's own failed handling of its registration
    assert v["root_cause"]["finding"] == "enum.label_missing" and v["responsible_service"] == "els"
    assert v["chain"][1]["finding"] == "consumer.handler_failed"


# ---- more worlds, each changed by hand. The expectation of each was written from the raw rows and
# lines and SYSTEM.md before the kit was run on it (the docstring says what an honest verdict must and
# must not say).

ELS = "huleedu_essay_lifecycle"
FILE_DB = "huleedu_file_service"
ELS_WORKER = "huleedu_essay_lifecycle_worker"
POISONED_BATCH = "37e88dff-166c-4847-9701-a5b145a32fa6"
POISONED_ROW = "4112af9d-0a08-46cc-bfcf-822f8e88f57d"  # ELS outbox row of provisioning.completed
VALIDATION_BATCH = "1f60ded5-5c8f-45f3-b6be-96a5c9cc4c66"
GUEST_BATCH = "4f9d465a-d9c0-4fb0-9443-bebd5635474f"
COMPLETED = "huleedu.batch.content.provisioning.completed.v1"


def _corpus(name: str) -> World:
    return copy.deepcopy(_loaded(name))


@functools.cache
def _loaded(name: str) -> World:
    return load_world_dir(require_corpus(name))


def _stamp(line: str) -> pd.Timestamp:
    return pd.Timestamp(line.split(" ", 1)[0])


def _cut_at(world: World, t: pd.Timestamp) -> None:
    """The world as a collection at ``t`` would have seen it: rows created later are gone, later
    timestamps (publication, updates) not yet written, later log lines not yet printed."""
    for img in world.databases.values():
        for name, df in img.tables.items():
            df = df.copy()
            if "created_at" in df:
                df = df[~(pd.to_datetime(df["created_at"], utc=True) > t)]
            for col in df.columns:
                if pd.api.types.is_datetime64_any_dtype(df[col]):
                    df[col] = df[col].where(~(df[col] > t))
            img.tables[name] = df
    for streams in world.logs.values():
        for stream, lines in streams.items():
            streams[stream] = [ln for ln in lines if _stamp(ln) <= t]
    # the relay's retry columns as its own lines up to ``t`` left them (SYSTEM.md §2.3)
    retries: dict[str, tuple[int, str]] = {}
    for streams in world.logs.values():
        for ln in streams.get("combined", []):
            if "Incremented retry count for outbox event" in ln:
                extra = json.loads(ln.split(" ", 1)[1])["extra"]
                retries[extra["event_id"]] = (int(extra["new_retry_count"]), str(extra["error"]))
    for img in world.databases.values():
        ob = img.tables.get("event_outbox")
        if ob is not None:
            for i in ob.index[ob["published_at"].isna()]:
                n, err = retries.get(str(ob.at[i, "id"]), (0, None))
                ob.at[i, "retry_count"], ob.at[i, "last_error"] = n, err
    world.collected_at = t.to_pydatetime()


def _reset_retries(world: World, row_id: str | None = None) -> None:
    """ELS outbox rows (or one) as a relay that never tried them leaves them: no retry, no error."""
    ob = world.databases[ELS].tables["event_outbox"]
    row = ob["id"].astype(str) == row_id if row_id else ob["published_at"].isna()
    ob.loc[row, "retry_count"] = 0
    ob.loc[row, "last_error"] = None


def test_a_batch_inside_its_expected_dwell_is_not_stuck(tmp_path: Path) -> None:
    """outbox-poisoned, collected 0.1 s after ELS wrote the provisioning.completed outbox row (before
    the relay's first attempt at 11:47:10.295). The rows say: produced, not yet published, the batch
    entered its step moments ago. Must: produced=yes, published=no, not stuck, no root cause, no
    finding of error severity. Must not: call the unpublished row poisoned or the batch stuck."""
    world = _corpus("outbox-poisoned")
    created = world.databases[ELS].tables["event_outbox"].set_index("id").loc[POISONED_ROW, "created_at"]
    _cut_at(world, pd.Timestamp(created) + pd.Timedelta(milliseconds=100))
    v = _verdict(world, POISONED_BATCH, tmp_path)
    aw = v["awaited"]
    assert v["awaited_event"] == COMPLETED and aw["produced"] is True and aw["published"] is False
    assert v["status"] != "stuck" and v["root_cause"] is None
    assert not [f["id"] for f in v["findings"] if f["severity"] in ("critical", "error")]


def test_an_unpublished_row_without_its_relay_log_has_no_cause_named(tmp_path: Path) -> None:
    """outbox-poisoned with the ELS worker's log (the relay's only voice) gone and the rows' retry
    columns blank: the row says produced and unpublished 44 s later, nothing says why. Must: produced
    yes, published no (published_at NULL is the DB's word), the missing log named. Must not: call it
    poisoned (no retry, no error anywhere), nor say ELS did not consume anything (its log is gone)."""
    world = _corpus("outbox-poisoned")
    del world.logs[ELS_WORKER]
    _reset_retries(world)
    v = _verdict(world, POISONED_BATCH, tmp_path)
    aw = v["awaited"]
    assert aw["produced"] is True and aw["published"] is False
    assert "outbox.poisoned" not in {f["id"] for f in v["findings"]}
    assert (v["root_cause"] or {}).get("finding") != "outbox.poisoned"
    assert v["completeness"].get(f"logs:{ELS_WORKER}") != "complete"
    for f in v["findings"]:  # nothing may rest on what ELS did or did not log
        assert not (f["id"].startswith("consumer.") and f["facts"].get("service") == "els"), f


def test_a_poisoned_sibling_row_does_not_explain_the_awaited_rows_silence(tmp_path: Path) -> None:
    """As above, but only the awaited row's retry columns are blank: the batch's slot-assigned rows
    still read retry_count 5, 'Exceeded max retries' (poisoned, the DB's word). Nothing says why the
    provisioning.completed row, a different row, is unpublished (the relay fetches every unpublished
    row each poll: a poisoned sibling does not hold it back, SYSTEM.md §2.3). Must: report the
    poisoned siblings; must not make them the cause of the awaited row's non-publication."""
    world = _corpus("outbox-poisoned")
    del world.logs[ELS_WORKER]
    _reset_retries(world, POISONED_ROW)
    v = _verdict(world, POISONED_BATCH, tmp_path)
    poisoned = [f for f in v["findings"] if f["id"] == "outbox.poisoned"]
    assert poisoned and all(f["facts"]["outbox_id"] != POISONED_ROW for f in poisoned)
    assert (v["root_cause"] or {}).get("finding") != "outbox.poisoned"
    assert "outbox.poisoned" not in [c["finding"] for c in v["chain"]]


def test_without_the_outbox_table_the_relay_log_alone_speaks_for_publication(tmp_path: Path) -> None:
    """outbox-poisoned without ELS's event_outbox table. The relay's log still shows the row added
    and every publish attempt failing. Must: never say published=yes; never claim produced=no (the log
    shows it added); name the missing table; any root cause must cite only evidence in the bundle."""
    world = _corpus("outbox-poisoned")
    del world.databases[ELS].tables["event_outbox"]
    verdict = investigate(write_world_bundle(world, tmp_path / "bundle"), POISONED_BATCH).verdict
    v = verdict.to_json()
    aw = v["awaited"]
    assert aw["published"] is not True and aw["produced"] is not False
    assert v["completeness"][f"database:{ELS}"] == "partial"
    assert any(f"{ELS}/event_outbox" in n["reason"] for n in v["not_evaluated"])
    # the kit has no rule reading the relay's lines alone: the cause is unknown, and an effect of
    # the wait (the rejected pipeline request) is not promoted to cause
    assert v["root_cause"] is None and v["status"] == "stuck"
    assert "root cause: unknown" in verdict.summary_text()


def test_without_the_file_service_database_the_content_ledger_is_unknown(tmp_path: Path) -> None:
    """validation-failure-never-completes without the File Service database. ELS still holds the
    validation failure and the essay left 'uploaded', so the root cause stands. The uploads and their
    provisioning cannot be read: must not count any file as lost or not provisioned, must not present
    '0 items' as a fact, must name the File Service tables as missing."""
    world = _corpus("validation-failure-never-completes")
    del world.databases[FILE_DB]
    v = _verdict(world, VALIDATION_BATCH, tmp_path)
    c = v["content"]
    assert c["lost"] == 0 and c["not_provisioned"] == 0
    assert c["items"] is None or c["unknown"] == c["expected"], c  # the count is unknown, not zero
    assert v["completeness"].get(f"database:{FILE_DB}") == "missing"
    assert v["root_cause"]["finding"] == "validation.failures_block_completion"


def _shift(lines: list[str], by: pd.Timedelta) -> list[str]:
    """The lines as a container whose clock runs ``by`` off would print them (Docker's stamp and the
    JSON ``timestamp`` both)."""
    def moved(m: re.Match[str]) -> str:
        return m.group(1) + (pd.Timestamp(m.group(2)) + by).strftime("%Y-%m-%dT%H:%M:%S.%f") + m.group(3)

    out = []
    for ln in lines:
        stamp, _, rest = ln.partition(" ")
        new = (pd.Timestamp(stamp) + by).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(f"{new} {_TS_FIELD.sub(moved, rest)}")
    assert out == lines or any(_TS_FIELD.search(ln) for ln in lines)  # the JSON field did move
    return out


_TS_FIELD = re.compile(r'("timestamp": ")(\d{4}-\d\d-\d\dT[\d:.]+)((?:Z|\+00:00)?")')


def test_a_consumer_clock_minutes_behind_makes_no_ordering_claim(tmp_path: Path) -> None:
    """healthy-regular with BOS's clock 4 minutes behind: BOS now appears to handle ELS's events before
    ELS published them. The DB says the batch is ready and its pipeline completed. Must: stay healthy,
    no root cause, no warning. Must not: conclude anything was not consumed or consumed early, nor
    state a step's dwell that the disagreeing clocks make negative."""
    world = _corpus("healthy-regular")
    batch = full_batch_id("healthy-regular", "1da22e84")
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = _shift(lines, pd.Timedelta(minutes=-4))
    inv = investigate(write_world_bundle(world, tmp_path / "bundle"), batch)
    v = inv.verdict.to_json()
    assert v["status"] == "healthy" and v["root_cause"] is None
    assert not [f["id"] for f in v["findings"] if f["severity"] != "info"]
    # BOS's status lines now put 'awaiting_student_validation' before 'registered' (a DB time): no
    # step may be said to have lasted a negative time
    assert not (inv.progress.steps["dwell_s"].dropna() < 0).any(), inv.progress.steps
    assert any("out of order" in n for n in inv.progress.notes)


def test_a_handling_that_a_skewed_clock_puts_before_publication_is_not_absent(tmp_path: Path) -> None:
    """healthy-guest as collected ten minutes after BOS handled provisioning.completed, with BOS's
    status write lost (still awaiting_content_validation, no pipeline yet) and BOS's clock 4 minutes
    behind. BOS's log shows the handling for this batch; by its clock it ran before ELS published the
    event, and its log runs on past the publication. Must: consumed is yes or unknown, never no; no
    finding says BOS did not consume it."""
    world = _corpus("healthy-guest")
    later = [ln for ln in world.logs[BOS]["combined"] if _stamp(ln) > pd.Timestamp("2025-12-15T09:53:45Z")
             and GUEST_BATCH not in ln and "32826395" not in ln]  # BOS's lines about other work
    _cut_at(world, pd.Timestamp("2025-12-15T09:53:45Z"))  # after the handling, before the pipeline
    world.logs[BOS]["combined"] += later  # BOS kept logging past the publication
    batches = world.databases["huleedu_batch_orchestrator"].tables["batches"]
    row = batches["id"].astype(str) == GUEST_BATCH
    batches.loc[row, "status"] = "awaiting_content_validation"
    batches.loc[row, "pipeline_configuration"] = json.dumps(
        {"batch_id": GUEST_BATCH, "requested_pipelines": ["spellcheck"]})
    world.collected_at = (pd.Timestamp("2025-12-15T10:03:45Z")).to_pydatetime()
    for stream, lines in world.logs[BOS].items():
        world.logs[BOS][stream] = _shift(lines, pd.Timedelta(minutes=-4))
    v = _verdict(world, GUEST_BATCH, tmp_path)
    aw = v["awaited"]
    assert v["awaited_event"] == COMPLETED and aw["published"] is True
    assert aw["consumed"] is not False, aw
    assert "event.not_consumed" not in {f["id"] for f in v["findings"]}


def _dup_lines(after: str, corr: str) -> list[str]:
    """A redelivery that BOS's idempotency skips (SYSTEM.md §2.5, §2.6), 0.5 s after ``after``."""
    t = (pd.Timestamp(after.split(" ", 1)[0]) + pd.Timedelta(milliseconds=500))
    s = t.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    return [
        f'{s} {{"logger_name": "huleedu_service_libs.idempotency_v2", "extra": {{"correlation_id": '
        f'"{corr}", "event_type": "{COMPLETED}"}}, "event": "DUPLICATE_EVENT_DETECTED: Event already '
        f'completed", "level": "warning", "timestamp": "{s[:26]}Z"}}',
        f'{s} {{"logger_name": "bos.kafka.consumer", "extra": {{"topic": "{COMPLETED}", "partition": 0, '
        f'"offset": 7}}, "event": "Duplicate message skipped, not committing offset", "level": "info", '
        f'"timestamp": "{s[:26]}Z"}}',
    ]


def test_a_duplicate_delivery_after_success_is_not_a_drop(tmp_path: Path) -> None:
    """healthy-guest: BOS handled provisioning.completed for the batch at 09:53:39.75-.77; half a second
    later the same event is redelivered and skipped as a duplicate. Must: the batch stays healthy, the
    first handling stays 'handled', no finding says BOS dropped the event."""
    world = _corpus("healthy-guest")
    lines = world.logs[BOS]["combined"]
    last = max(i for i, ln in enumerate(lines)
               if "bos.handlers.content_provisioning_completed" in ln and GUEST_BATCH in ln)
    lines[last + 1:last + 1] = _dup_lines(lines[last], "8f0d9bbd-0c64-4940-b025-a8c4efb706b3")
    inv = investigate(write_world_bundle(world, tmp_path / "bundle"), GUEST_BATCH)
    v = inv.verdict.to_json()
    assert v["status"] == "healthy" and not [f for f in v["findings"] if f["severity"] != "info"]
    runs = inv.handlings()
    mine = runs[(runs["topic"] == COMPLETED) & (runs["service"] == "bos")]
    # the first delivery was handled; the redelivery is its own (dropped, duplicate) handling
    assert list(zip(mine["outcome"], mine["cause"].fillna(""))) == [("handled", ""), ("dropped", "duplicate")], \
        mine[["started_at", "outcome", "cause"]]
    assert v["differential"]["divergence"] is None


def test_an_essay_id_leads_to_its_batch_verdict(tmp_path: Path) -> None:
    """validation-failure-never-completes asked about the essay left 'uploaded': the verdict is its
    batch's, with the same root cause, and says which id was asked."""
    world = _corpus("validation-failure-never-completes")
    es = world.databases[ELS].tables["essay_states"]
    essay = str(es.loc[es["current_status"] == "uploaded", "essay_id"].iloc[0])
    v = _verdict(world, essay, tmp_path)
    assert v["batch_id"] == VALIDATION_BATCH and v["requested_id"] == essay
    assert v["status"] == "stuck"
    assert v["root_cause"]["finding"] == "validation.failures_block_completion"


def test_a_correlation_id_two_batches_share_is_refused_not_guessed(tmp_path: Path) -> None:
    """healthy-guest where a second batch reuses the target's registration correlation id. The id
    names two batches: the kit must not answer for one of them as if the id were unique. It refuses
    with both batch ids in the message."""
    world = _corpus("healthy-guest")
    corr = "8f0d9bbd-0c64-4940-b025-a8c4efb706b3"  # the target's registration correlation id
    assert _verdict(world, corr, tmp_path / "unique")["batch_id"] == GUEST_BATCH  # unique: answered
    bos_out = world.databases["huleedu_batch_orchestrator"].tables["event_outbox"]
    other = next(r for r in bos_out.to_dict("records")
                 if r["event_type"] == "huleedu.batch.essays.registered.v1" and r["aggregate_id"] != GUEST_BATCH)
    other_batch = str(other["aggregate_id"])
    other_corr = json.loads(other["event_data"])["correlation_id"]
    for img in world.databases.values():
        for name, df in img.tables.items():
            img.tables[name] = df.map(lambda x: x.replace(other_corr, corr) if isinstance(x, str) else x)
    for streams in world.logs.values():
        for stream, lines in streams.items():
            streams[stream] = [ln.replace(other_corr, corr) for ln in lines]
    with pytest.raises(ScopeError) as e:
        _verdict(world, corr, tmp_path)
    assert GUEST_BATCH in str(e.value) and other_batch in str(e.value)


def test_without_the_els_database_a_rejection_in_it_makes_els_responsible_not_the_waiting_consumer(
        tmp_path: Path) -> None:
    """seed-variant-a without ELS's database: PostgreSQL's rejection in ELS's database log becomes the
    root cause. The service responsible is ELS (whose database refused the write), not BOS, which
    only waits for the event."""
    world = copy.deepcopy(load_world_dir(require_corpus("seed-variant-a")))
    del world.databases[ELS]
    v = _verdict(world, SEED_BATCH, tmp_path)
    assert v["root_cause"]["finding"] == "db.enum_value_rejected"
    assert v["responsible_service"] == "els"


def test_without_the_els_database_the_expected_count_comes_from_bos_and_says_so(tmp_path: Path) -> None:
    """seed-variant-a without ELS's database: the tracker's expected_count is gone, but BOS's batches
    row still holds total_essays 2 (and its registration event expected_essay_count 2). The essays view
    and the card show 2 expected and where it comes from, not 'expected ?'; what ELS holds stays '?'."""
    world = copy.deepcopy(load_world_dir(require_corpus("seed-variant-a")))
    del world.databases[ELS]
    inv = investigate(write_world_bundle(world, tmp_path / "bundle"), SEED_BATCH)
    content = inv.verdict.to_json()["content"]
    assert content["expected"] == 2 and content["expected_from"] == "huleedu_batch_orchestrator/batches.total_essays"
    title = plots.essay_slots(inv).layout.title.text
    assert "expected 2" in title and "expected ?" not in title and "ELS holds ? essay row(s)" in title
    assert "expected count from huleedu_batch_orchestrator/batches.total_essays" in title
    assert "in ELS ?" in " ".join(a.text for a in plots.essay_slots(inv).layout.annotations)
    assert "batches.total_essays" in cards.verdict_card(inv).body.replace("<wbr>", "")
    # without the batches row too, the registration event BOS wrote still says how many
    bos = world.databases["huleedu_batch_orchestrator"].tables
    bos["batches"] = bos["batches"][bos["batches"]["id"].astype(str) != SEED_BATCH]
    content = _verdict(world, SEED_BATCH, tmp_path / "no-row")["content"]
    assert content["expected"] == 2 and "huleedu.batch.essays.registered.v1" in content["expected_from"]
