"""The views drawn from an Investigation: checked as plotly objects and frames, built from hand-made frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import ClassVar

import pandas as pd
import plotly.io as pio
import pytest

from huledu_forensics import model, plots

T0 = datetime(2025, 9, 20, 10, 0, tzinfo=UTC)
BATCH = "b-1111"


def _ts(seconds: float) -> pd.Timestamp:
    return pd.Timestamp(T0 + timedelta(seconds=seconds))


def _timeline() -> pd.DataFrame:
    rows = [
        (0, "table", "bos", "db:bos_db", "row", None, "batch registered", None, "tables/bos_db/b.parquet#id=1"),
        (1, "outbox", "bos", "db:bos_db", "outbox_created", None, "outbox row", "topic.a",
         "tables/bos_db/o.parquet#id=7"),
        (2, "log", "file", "file_app", "log", "info", "uploaded file", None, "logs/file_app/stdout.log#L10"),
        (3, "log", "els", "els_worker", "log", "warning", "slow consumer", None, "logs/els_worker/stdout.log#L20"),
        (4, "log", "els", "els_db", "log", "error", 'invalid input value for enum: "uploaded"', None,
         "logs/els_db/stdout.log#L5"),
        (5, "container", "els", "els_worker", "container_started", None, "started", None, "containers.json#els"),
    ]
    return pd.DataFrame(
        [{"ts": _ts(s), "source": src, "service": svc, "lane": lane, "kind": kind, "level": lvl, "label": lab,
          "topic": topic, "batch_id": BATCH, "correlation_id": None, "essay_id": None, "ref": ref}
         for s, src, svc, lane, kind, lvl, lab, topic, ref in rows])


def _steps() -> pd.DataFrame:
    return pd.DataFrame([
        {"step": "registered", "label": "Batch registered", "batch_status": "registered",
         "trigger_topic": "t.register", "producer": "gateway", "consumer": "bos", "expected_dwell_s": 5.0,
         "reached": True, "entered_at": _ts(0), "dwell_s": 2.0, "state": "done"},
        {"step": "content", "label": "Content validation", "batch_status": "awaiting_content_validation",
         "trigger_topic": "t.ready", "producer": "els", "consumer": "bos", "expected_dwell_s": 60.0,
         "reached": True, "entered_at": _ts(2), "dwell_s": 3 * 3600 + 120.0, "state": "stuck"},
        {"step": "ready", "label": "Ready for pipeline", "batch_status": "ready",
         "trigger_topic": "t.pipe", "producer": "bos", "consumer": "els", "expected_dwell_s": 30.0,
         "reached": False, "entered_at": pd.NaT, "dwell_s": float("nan"), "state": "pending"},
    ])


def _awaited() -> SimpleNamespace:
    return SimpleNamespace(step="content", topic="t.ready", producer="els", consumer="bos", produced=True,
                           produced_at=_ts(3), published=False, published_at=None, consumed=False,
                           consumed_at=None, waited_s=3 * 3600 + 120.0)


def _inv(**over: object) -> SimpleNamespace:
    progress = SimpleNamespace(
        flow="GUEST", current_state="awaiting_content_validation", current_step="content", stuck=True,
        steps=_steps(), awaited=_awaited(),
        content={"expected": 3, "expected_from": "huleedu_essay_lifecycle/batch_essay_trackers.expected_count"},
        essays=pd.DataFrame([
            {"essay_id": "e-aaaaaaaa-1", "current_status": "uploaded", "text_storage_id": "ts-1",
             "created_at": _ts(1), "updated_at": _ts(2)},
            {"essay_id": "e-bbbbbbbb-2", "current_status": "ready_for_processing", "text_storage_id": "ts-2",
             "created_at": _ts(1), "updated_at": _ts(2)},
        ]),
        pending=pd.DataFrame([{"text_storage_id": "ts-3", "created_at": _ts(2), "file_upload_id": "fu-3"}]),
    )
    logs = pd.DataFrame([
        {"ts": _ts(4), "container": "els_db", "stream": "stdout", "level": "error", "line_no": 5,
         "message": 'invalid input value for enum essay_status_enum: "uploaded"'},
        {"ts": _ts(3), "container": "els_worker", "stream": "stdout", "level": "warning", "line_no": 20,
         "message": "slow consumer"},
        {"ts": _ts(2), "container": "file_app", "stream": "stdout", "level": "info", "line_no": 10,
         "message": "uploaded file"},
    ])
    finding = SimpleNamespace(id="enum-drift", severity="critical", title="enum drift", summary="...",
                              evidence=[SimpleNamespace(part="logs/els_db/stdout.log", key="L5", ts=_ts(4),
                                                        note="pg error")])
    inv = SimpleNamespace(timeline=_timeline(), progress=progress, logs=logs, findings=[finding],
                          bundle=SimpleNamespace(collected_at=T0 + timedelta(hours=4)),
                          scope=SimpleNamespace(batch_id=BATCH))
    for k, v in over.items():
        setattr(inv, k, v)
    return inv


def _annotations(fig) -> str:  # noqa: ANN001
    return " | ".join(a.text for a in fig.layout.annotations)


# -- swimlane -------------------------------------------------------------------------------------
def test_swimlane_has_one_lane_per_container_and_database_and_axis_titles() -> None:
    fig = plots.swimlane(_inv())
    lanes = {y for tr in fig.data for y in tr.y}
    assert lanes == {"db:bos_db", "file_app", "els_worker", "els_db"}
    assert fig.layout.xaxis.title.text == "time (UTC)"
    assert "lane" in fig.layout.yaxis.title.text
    names = {tr.name for tr in fig.data}
    assert {"table", "outbox", "log", "container", "errors", "warnings"} <= names


def test_swimlane_marks_errors_as_red_x_and_hover_names_the_source_ref() -> None:
    fig = plots.swimlane(_inv())
    errors = next(tr for tr in fig.data if tr.name == "errors")
    assert errors.marker.symbol == "x"
    assert errors.marker.color.lower() in ("#d50000", "red")
    assert list(errors.y) == ["els_db"]
    assert "logs/els_db/stdout.log#L5" in errors.hovertext[0]
    assert 'enum: "uploaded"' in errors.hovertext[0]
    outbox = next(tr for tr in fig.data if tr.name == "outbox")
    assert "tables/bos_db/o.parquet#id=7" in outbox.hovertext[0] and "topic: topic.a" in outbox.hovertext[0]
    # errors are not also drawn as ordinary log markers
    assert all("L5" not in h for tr in fig.data if tr.name == "log" for h in tr.hovertext)


def test_swimlane_marks_the_stuck_point_and_collection_time() -> None:
    fig = plots.swimlane(_inv())
    shapes = {s.name: s for s in fig.layout.shapes}
    assert set(shapes) == {"stuck point", "collected at"}
    assert pd.Timestamp(shapes["stuck point"].x0) == _ts(2)
    assert pd.Timestamp(shapes["collected at"].x0) == pd.Timestamp(T0 + timedelta(hours=4))
    assert "stuck: Content validation" in _annotations(fig)


@pytest.mark.parametrize("timeline", [pd.DataFrame(), None, pd.DataFrame({"ts": [pd.NaT], "lane": ["x"]})])
def test_swimlane_without_timeline_says_what_is_missing(timeline: object) -> None:
    fig = plots.swimlane(_inv(timeline=timeline))
    assert len(fig.data) == 0
    assert "timeline" in _annotations(fig).lower()


def test_swimlane_tolerates_missing_columns_and_progress() -> None:
    tl = pd.DataFrame({"ts": [_ts(1)], "lane": ["a"]})
    fig = plots.swimlane(SimpleNamespace(timeline=tl))
    assert [list(tr.y) for tr in fig.data] == [["a"]]
    assert "source: (no ref)" in fig.data[0].hovertext[0]


# -- state progress -------------------------------------------------------------------------------
def test_essay_slots_per_essay_status_pending_and_expected_count() -> None:
    fig = plots.essay_slots(_inv())
    names = {tr.name for tr in fig.data}
    assert names == {"essay: uploaded", "essay: ready_for_processing", "pending content"}
    assert "expected 3" in fig.layout.title.text and "holds 2 essay row" in fig.layout.title.text
    uploaded = next(tr for tr in fig.data if tr.name == "essay: uploaded")
    assert "e-aaaaaaaa-1" in uploaded.hovertext[0] and "source:" in uploaded.hovertext[0]
    pending = next(tr for tr in fig.data if tr.name == "pending content")
    assert "fu-3" in pending.hovertext[0]
    assert "expected 3 · in ELS 2 · pending 1" in _annotations(fig)


def test_essay_slots_names_where_the_expected_count_comes_from_and_says_when_none_holds_it() -> None:
    title = plots.essay_slots(_inv()).layout.title.text
    assert "expected 3" in title and "expected count from huleedu_essay_lifecycle/batch_essay_trackers" in title
    inv = _inv()
    inv.progress.content = {"expected": None}
    title = plots.essay_slots(inv).layout.title.text
    assert "expected ?" in title and "expected count unknown" in title


def test_essay_slots_without_essays_says_so() -> None:
    inv = _inv()
    inv.progress.essays = pd.DataFrame()
    inv.progress.pending = pd.DataFrame()
    fig = plots.essay_slots(inv)
    assert len(fig.data) == 0
    assert "No essay rows" in _annotations(fig) and "expects 3" in _annotations(fig)


# -- tables ---------------------------------------------------------------------------------------
def test_awaited_checks_lists_each_trigger_check() -> None:
    df = plots.awaited_checks(_inv())
    assert list(df["check"]) == ["produced", "published", "consumed", "waited"]
    assert list(df["ok"][:3]) == [True, False, False]
    assert "3h02m" in df["detail"].iloc[3]


def test_awaited_checks_when_nothing_is_awaited() -> None:
    inv = _inv()
    inv.progress.awaited = None
    inv.progress.stuck = False
    df = plots.awaited_checks(inv)
    assert len(df) == 1 and "not waiting" in df["detail"].iloc[0]


def test_evidence_log_lines_follow_the_findings_refs() -> None:
    df = plots.evidence_log_lines(_inv())
    assert list(df["finding"]) == ["enum-drift"]
    assert df["ref"].iloc[0] == "logs/els_db/stdout.log#L5"
    assert "essay_status_enum" in df["message"].iloc[0]


def test_evidence_log_lines_fall_back_to_error_and_warning_lines() -> None:
    df = plots.evidence_log_lines(_inv(findings=[]))
    assert list(df["level"]) == ["warning", "error"]  # sorted by time, info left out
    # no finding cites them, and the table says so (they are not a finding's evidence)
    assert set(df["finding"]) == {"none (a warning or error of the scope)"}
    assert plots.evidence_log_lines(_inv(logs=pd.DataFrame())).empty


# -- renderer -------------------------------------------------------------------------------------
def test_setup_notebook_selects_mimetype_and_offline_inline_html() -> None:
    before = pio.renderers.default
    try:
        assert plots.setup_notebook() == "plotly_mimetype+huledu_offline"
        bundle = pio.renderers._build_mime_bundle(plots.swimlane(_inv()).to_dict())
        assert "application/vnd.plotly.v1+json" in bundle
        html = bundle["text/html"]
        assert "Plotly.newPlot" in html
        assert "<script src=" not in html  # no MathJax or plotly.js from a CDN per figure
    finally:
        pio.renderers.default = before


def test_evidence_log_lines_read_cited_lines_missing_from_scoped_logs_from_the_bundle() -> None:
    lines = ["2025-09-20T10:00:01.000000000Z plain startup line",
             '2025-09-20T10:00:04.000000000Z 2025-09-20 10:00:04.000 UTC [77] ERROR:  invalid input value '
             'for enum essay_status_enum: "uploaded"']

    class FakeBundle:
        collected_at = T0

        def iter_log_lines(self, container: str, stream: str):  # noqa: ANN201
            assert (container, stream) == ("els_db", "combined")
            yield from lines

    finding = SimpleNamespace(id="db.enum", evidence=[SimpleNamespace(part="logs/els_db/combined.log", key="L2")])
    df = plots.evidence_log_lines(_inv(findings=[finding], bundle=FakeBundle()))
    assert list(df["ref"]) == ["logs/els_db/combined.log#L2"]
    assert 'essay_status_enum: "uploaded"' in df["message"].iloc[0]


def test_state_graph_measures_an_open_stuck_step_to_collection_time() -> None:
    inv = _inv()
    inv.progress.steps.loc[1, "dwell_s"] = float("nan")  # still in the step: no dwell recorded
    text = " ".join(a.text or "" for a in plots.state_graph(inv).layout.annotations)
    assert "waiting 3h59m" in text  # entered at +2 s, collected at +4 h


# -- state graph ----------------------------------------------------------------------------------
def _names(fig, prefix: str) -> list[str]:  # noqa: ANN001
    return [x.name for x in list(fig.layout.annotations) + list(fig.layout.shapes)
            if (x.name or "").startswith(prefix)]


def test_state_graph_draws_the_awaited_edge_of_a_batch_within_its_dwell_blue_not_red() -> None:
    """The awaited edge is red only past the step's expected dwell; within it (the current step, blue),
    the batch is in flight and its edge is blue like its node."""
    stuck = plots.state_graph(_inv())
    assert [s.line.color for s in stuck.layout.shapes if s.name == "missing edge"] == ["#c62828"]
    inv = _inv()
    inv.progress.stuck = False
    inv.progress.steps.loc[inv.progress.steps["state"] == "stuck", "state"] = "current"
    fig = plots.state_graph(inv)
    assert [s.line.color for s in fig.layout.shapes if s.name == "missing edge"] == ["#1565c0"]
    label = next(a for a in fig.layout.annotations if (a.name or "") == "trigger ready")
    assert label.font.color == "#1565c0"


def test_state_graph_draws_each_step_as_a_node_with_the_path_taken_and_the_missing_edge() -> None:
    fig = plots.state_graph(_inv())
    nodes = {s.name: s for s in fig.layout.shapes if (s.name or "").startswith("node ")}
    assert list(nodes) == ["node registered", "node content", "node ready"]
    assert nodes["node registered"].line.color == "#2e7d32"  # done: green
    assert nodes["node content"].line.color == "#c62828"  # stuck: red
    assert nodes["node ready"].line.dash == "dot"  # not reached: dotted grey
    edges = _names(fig, "edge ")
    assert edges == ["edge registered->content taken", "edge content->ready missing"]
    assert any(s.name == "missing edge" and s.line.dash == "dash" for s in fig.layout.shapes)
    text = _annotations(fig)
    # the awaited edge is labelled with its trigger and its checks; the stuck node with its dwell
    assert "t.ready" in text and "produced ✓ · published ✗ · consumed ✗" in text
    assert "✗ STUCK · waiting 3h02m" in text and "healthy ≤ 1m00s" in text
    assert "not reached" in text and "✓ 2s" in text


def test_state_graph_shows_unknown_checks_as_question_marks_not_as_no() -> None:
    inv = _inv()
    inv.progress.awaited.consumed = None
    assert "consumed ?" in _annotations(plots.state_graph(inv))


def test_state_graph_without_steps_says_batch_unknown() -> None:
    fig = plots.state_graph(_inv(progress=None))
    assert len(fig.data) == 0 and "batch row was not found" in _annotations(fig)


def test_state_graph_names_documented_statuses_the_implementation_never_writes() -> None:
    inv = _inv()
    inv.progress.flow = "GUEST"
    assert "awaiting_pipeline_configuration" in _annotations(plots.state_graph(inv))


# -- swimlane focus ---------------------------------------------------------------------------------
def _incident_timeline() -> pd.DataFrame:
    """Container starts 10 minutes before a 4-second incident, one lane quiet during it."""
    tl = _timeline()
    extra = pd.DataFrame([
        {"ts": _ts(-600), "source": "container", "service": "x", "lane": "quiet_app", "kind": "container_started",
         "level": None, "label": "started", "topic": None, "batch_id": None, "correlation_id": None,
         "essay_id": None, "ref": "containers.json#quiet_app"},
        {"ts": _ts(0.5), "source": "outbox", "service": "bos", "lane": "db:bos_db", "kind": "outbox_published",
         "level": None, "label": "relayed", "topic": "topic.a", "batch_id": BATCH, "correlation_id": "c-1",
         "essay_id": None, "ref": "tables/bos_db/o.parquet#id=7"},
        {"ts": _ts(2.5), "source": "log", "service": "els", "lane": "els_worker", "kind": "log", "level": "info",
         "label": "handled topic.a", "topic": "topic.a", "batch_id": BATCH, "correlation_id": "c-1",
         "essay_id": None, "ref": "logs/els_worker/stdout.log#L21"},
    ])
    return pd.concat([tl, extra], ignore_index=True)


def test_swimlane_opens_on_the_incident_window_not_on_container_starts() -> None:
    inv = _inv(timeline=_incident_timeline())
    lo, hi = plots.incident_window(inv)
    assert lo > T0 - timedelta(seconds=2) and hi < T0 + timedelta(seconds=10)
    fig = plots.swimlane(inv)
    assert [pd.Timestamp(x) for x in fig.layout.xaxis.range] == [pd.Timestamp(lo), pd.Timestamp(hi)]
    buttons = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert buttons == ["incident window", "all context"]
    full = fig.layout.updatemenus[0].buttons[1].args[0]["xaxis.range"]
    assert pd.Timestamp(full[0]) == _ts(-600)  # the context toggle reaches the container start
    assert "incident window" in fig.layout.title.text


def test_swimlane_folds_lanes_quiet_in_the_window() -> None:
    fig = plots.swimlane(_inv(timeline=_incident_timeline()))
    lanes = list(fig.layout.yaxis.categoryarray)
    assert "quiet_app" not in lanes and lanes[0].startswith("(folded")
    container = next(tr for tr in fig.data if tr.name == "container")
    assert any("lane: quiet_app" in h for h in container.hovertext)  # a folded event says where it came from


def test_swimlane_colours_ordinary_events_apart_from_warnings_and_errors() -> None:
    fig = plots.swimlane(_inv())
    colours = {tr.name: tr.marker.color for tr in fig.data if tr.mode == "markers"}
    assert colours["errors"] == "#d50000" and colours["warnings"] == "#ef6c00"
    ordinary = {colours[n] for n in ("table", "outbox", "log", "container")}
    assert not ordinary & {"#d50000", "#ef6c00"}  # a plain log line is never drawn red


def test_swimlane_links_each_event_from_producer_to_consumer() -> None:
    fig = plots.swimlane(_inv(timeline=_incident_timeline()))
    hops = next(tr for tr in fig.data if tr.name.startswith("event hops"))
    points = [(pd.Timestamp(x), y) for x, y in zip(hops.x, hops.y) if y is not None]
    assert points == [(_ts(0.5), "db:bos_db"), (_ts(2.5), "els_worker")]


def test_awaited_checks_keep_unknown_apart_from_no() -> None:
    inv = _inv()
    inv.progress.awaited.consumed = None
    df = plots.awaited_checks(inv)
    assert df["ok"].iloc[2] is None and "unknown" in df["detail"].iloc[2]
    assert df["ok"].iloc[1] is False and "unknown" not in df["detail"].iloc[1]


def test_awaited_checks_details_state_the_result_not_the_question() -> None:
    """A row read without its ✓/✗ must still say the right thing: a 'no' row never reads 'the relay
    published it', and an unknown row says it is unknown before anything else."""
    df = plots.awaited_checks(_inv()).set_index("check")["detail"]  # produced yes, published no, consumed no
    assert df["produced"] == "els wrote t.ready to its outbox"
    assert "has not published t.ready" in df["published"] and "relay published" not in df["published"]
    assert df["consumed"].startswith("bos did not consume t.ready")
    inv = _inv()
    inv.progress.awaited.produced = inv.progress.awaited.published = False
    df = plots.awaited_checks(inv).set_index("check")["detail"]
    assert df["produced"] == "els wrote no t.ready outbox row for this batch"
    assert df["published"] == "not published: els never produced it"
    inv.progress.awaited.consumed = None
    assert plots.awaited_checks(inv)["detail"].iloc[2].startswith("unknown whether bos consumed t.ready: ")


def test_evidence_rows_show_cited_rows_and_enum_labels_without_json_or_text() -> None:
    db, name = next((k for k, t in model.TABLES.items() if t.json_columns and t.key == ("id",)))
    json_col = model.TABLES[(db, name)].json_columns[0]
    frame = pd.DataFrame({"id": [7, 8], "status": ["available", "taken"], json_col: ['{"a": 1}', "{}"],
                          "text": ["essay words", "more words"]})

    class FakeBundle:
        collected_at = T0
        enums: ClassVar[dict[str, dict[str, list[str]]]] = {"els_db": {"status_enum": ["a", "b"]}}

        def table(self, d: str, t: str) -> pd.DataFrame | None:
            return frame if (d, t) == (db, name) else None

    findings = [SimpleNamespace(id="rule.a", evidence=[SimpleNamespace(part=f"tables/{db}/{name}.parquet", key="id=8"),
                                                       SimpleNamespace(part="enums.json", key="els_db.status_enum")]),
                SimpleNamespace(id="rule.b", evidence=[SimpleNamespace(part=f"tables/{db}/{name}.parquet", key="id=8"),
                                                       SimpleNamespace(part=f"tables/{db}/{name}.parquet", key="id=9")])]
    df = plots.evidence_rows(_inv(findings=findings, bundle=FakeBundle()))
    rows = dict(zip(df["ref"], df["row"]))
    row8 = rows[f"tables/{db}/{name}.parquet#id=8"]
    assert "status=taken" in row8 and json_col not in row8 and "essay words" not in row8 and "text=" not in row8
    assert rows["enums.json#els_db.status_enum"] == "labels: a, b"
    assert "absence" in rows[f"tables/{db}/{name}.parquet#id=9"]
    assert df.set_index("ref").loc[f"tables/{db}/{name}.parquet#id=8", "finding"] == "rule.a, rule.b"


def test_awaited_checks_name_the_missing_outbox_table_when_produced_is_unknown() -> None:
    """produced / published unknown because the producer's outbox table was not collected: the detail
    names that table (what to collect), not only 'the evidence is not in the bundle'."""
    class NoOutbox(SimpleNamespace):
        def has_table(self, database: str, table: str) -> bool:
            return table != "event_outbox"

    inv = _inv(bundle=NoOutbox(collected_at=T0))
    inv.progress.awaited.produced = None
    inv.progress.awaited.published = None
    inv.progress.awaited.producer = "els"
    df = plots.awaited_checks(inv)
    assert df["ok"].iloc[0] is None and df["ok"].iloc[1] is None
    for detail in df["detail"].iloc[:2]:
        assert detail.startswith("unknown whether ") and \
            detail.endswith(": the producer's outbox table huleedu_essay_lifecycle/event_outbox is not in the bundle")


def test_essay_slots_title_says_unknown_when_the_els_tables_were_not_collected() -> None:
    """Without ELS's essay_states / batch_pending_content the counts were never read: '?' and the
    missing tables named, never 'ELS holds 0 essay row(s)' as if ELS had none."""
    class NoEls(SimpleNamespace):
        def has_table(self, database: str, table: str) -> bool:
            return database != "huleedu_essay_lifecycle"

    inv = _inv(bundle=NoEls(collected_at=T0))
    inv.progress.essays = pd.DataFrame()
    inv.progress.pending = pd.DataFrame()
    title = plots.essay_slots(inv).layout.title.text
    assert "ELS holds ? essay row(s)" in title and "pending content ?" in title and "holds 0" not in title
    assert "not in the bundle: huleedu_essay_lifecycle/essay_states, " \
           "huleedu_essay_lifecycle/batch_pending_content" in title
    assert "holds 2 essay row(s)" in plots.essay_slots(_inv()).layout.title.text  # collected: counted
    # an expected essay whose ELS row could not be read is not drawn as 'slot never created'
    inv.progress.essays = pd.DataFrame([{"essay_id": "e-cccccccc-3", "current_status": None}])
    names = {tr.name for tr in plots.essay_slots(inv).data}
    assert "essay: ELS row unknown (essay_states not collected)" in names
    assert not any("never created" in n for n in names)


def test_state_graph_names_a_dropped_awaited_event_on_its_edge() -> None:
    """consumed ✓ alone on the stuck edge reads as 'fine'; the outcome says where it stopped."""
    inv = _inv()
    inv.progress.awaited.published = True
    inv.progress.awaited.consumed = True
    inv.progress.awaited.outcome = "dropped"
    text = " ".join(a.text or "" for a in plots.state_graph(inv).layout.annotations)
    assert "consumed ✓ · dropped</b>" in text
    inv.progress.awaited.outcome = "handled"
    text = " ".join(a.text or "" for a in plots.state_graph(inv).layout.annotations)
    assert "consumed ✓</b>" in text and "handled" not in text
