"""The verdict card and the report's tables: what they show, what they never show, and what they escape."""

from __future__ import annotations

import pandas as pd

from huledu_forensics import cards

ROOT = ("The huleedu_essay_lifecycle enum type essay_status_enum lacks 'uploaded' (10 labels), which ELS "
        "writes into essay_states: ELS cannot create the batch's essay rows. PostgreSQL rejected it 6 times.")


def _verdict(**over: object) -> dict:
    v = {
        "batch_id": "b-1", "flow": "GUEST", "healthy": False, "status": "stuck",
        "current_state": "awaiting_content_validation", "current_step": "registered", "waited_s": 36.4,
        "awaited": {"topic": "t.ready", "producer": "els", "consumer": "bos", "produced": False,
                    "published": False, "consumed": False, "expected_dwell_s": 30.0},
        "root_cause": {"finding": "enum.label_missing", "severity": "critical", "summary": ROOT,
                       "facts": {"enum": "essay_status_enum", "missing_value": "uploaded",
                                 "database": "huleedu_essay_lifecycle"}},
        "chain": [{"finding": "enum.label_missing", "severity": "critical", "summary": ROOT},
                  {"finding": "event.not_produced", "severity": "error", "summary": "never produced"}],
        "findings": [
            {"id": "event.not_produced", "severity": "error", "title": "not produced", "summary": "never produced",
             "evidence": [{"part": "logs/els/stdout.log", "key": "L5"}]},
            {"id": "enum.label_missing", "severity": "critical", "title": "enum lacks a label", "summary": ROOT,
             "evidence": [{"part": "logs/els_db/stderr.log", "key": "L21"}]},
            {"id": "enum.label_missing", "severity": "critical", "title": "enum lacks a label",
             "summary": "batch_status_enum lacks 'ready_for_pipeline_execution'", "evidence": []},
        ],
        "completeness": {"database:bos": "complete", "logs:els": "complete"},
    }
    v.update(over)
    return v


def test_card_leads_with_status_state_awaited_checks_root_cause_chain_action_and_completeness() -> None:
    html = cards.verdict_card(_verdict())._repr_html_().replace("<wbr>", "")
    for needle in ("stuck", "b-1", "GUEST", "awaiting_content_validation", "36 s", "t.ready",
                   "produced ✗ no", "published ✗ no", "consumed ✗ no", "healthy batches move on within 30 s",
                   "enum.label_missing", "lacks &#x27;uploaded&#x27;", "event.not_produced", "Do now",
                   "ALTER TYPE essay_status_enum ADD VALUE IF NOT EXISTS &#x27;uploaded&#x27;",
                   "all 2 sources the verdict rests on were collected complete"):
        assert needle in html, needle
    # the root cause and each chain link jump to their finding row
    assert "href='#hf-finding-1'" in html
    # a critical finding outside the chain is named on the card, not left for the reader to find
    assert "Also critical" in html and "href='#hf-finding-2'" in html and "ready_for_pipeline_execution" in html


def test_card_shows_unknown_checks_as_unknown_never_as_no() -> None:
    aw = {"topic": "t.ready", "produced": True, "published": None, "consumed": "unknown"}
    html = cards.verdict_card(_verdict(awaited=aw))._repr_html_().replace("<wbr>", "")
    assert "produced ✓ yes" in html and "published ? unknown" in html and "consumed ? unknown" in html
    assert "✗ no" not in html
    text = str(cards.verdict_card(_verdict(awaited=aw)))
    assert "published unknown" in text and "consumed unknown" in text


def test_card_says_which_sources_are_missing_and_renders_fields_it_does_not_know() -> None:
    v = _verdict(completeness={"database:bos": "complete", "logs:els": "missing"},
                 hypotheses=[{"hypothesis": "consumer down", "ruled_out_by": "handler lines at 18:41"}])
    v.pop("root_cause")
    html = cards.verdict_card(v)._repr_html_().replace("<wbr>", "")
    assert "incomplete" in html and "logs:els: missing" in html
    assert "Root cause: unknown" in html
    assert "hypotheses" in html and "consumer down" in html  # a newer kit's field, shown as it is


def test_card_and_tables_escape_log_text_and_mask_credentials() -> None:
    evil = "<script>alert(1)</script> postgresql://huleedu:S3cret@db:5432/x password=Hunter2"
    v = _verdict(findings=[{"id": "x", "severity": "error", "summary": evil, "evidence": []}],
                 chain=[{"finding": "x", "severity": "error", "summary": evil}],
                 root_cause={"finding": "x", "severity": "error", "summary": evil})
    for html in (cards.verdict_card(v)._repr_html_().replace("<wbr>", ""), cards.findings_table(v)._repr_html_().replace("<wbr>", ""),
                 cards.table(pd.DataFrame({"message": [evil]}))._repr_html_().replace("<wbr>", "")):
        assert "<script>alert" not in html and "&lt;script&gt;" in html
        assert "S3cret" not in html and "Hunter2" not in html


def test_findings_table_marks_the_root_cause_first_then_the_chain_and_keeps_every_word() -> None:
    html = cards.findings_table(_verdict(), cited_refs=["logs/els_db/stderr.log#L21"])._repr_html_().replace("<wbr>", "")
    rows = html.split("<tr id=")[1:]
    assert "★ root cause" in rows[0] and "lacks &#x27;uploaded&#x27;" in rows[0]
    assert "chain #2" in rows[1] and "event.not_produced" in rows[1]
    assert "ready_for_pipeline_execution" in rows[2]  # the co-occurring critical finding is listed too
    assert "href='#hf-ref-logs-els_db-stderr.log-L21'" in rows[0]  # a cited line shown below is a link
    assert "href='#hf-ref-logs-els-stdout.log-L5'" not in html  # a line not shown is not


def test_long_tokens_may_wrap_at_separators_without_changing_the_text() -> None:
    topic = "huleedu.batch.content.provisioning.completed.v1"
    raw = cards.table(pd.DataFrame({"topic": [topic], "quote": ["it's <b>"]}))._repr_html_()
    assert "huleedu.<wbr>batch.<wbr>content." in raw and raw.replace("<wbr>", "").count(topic) == 1
    assert "it&#x27;s &lt;b&gt;" in raw  # entities are never split


def test_table_never_cuts_long_text_and_anchors_rows_by_ref() -> None:
    long = "x" * 500 + " the end"
    html = cards.table(pd.DataFrame({"ref": ["logs/a/stdout.log#L1"], "message": [long]}), anchors="ref")._repr_html_().replace("<wbr>", "")
    assert long in html and "…" not in html and "<wbr>" not in html  # no separator to break at: left whole
    assert "id='hf-ref-logs-a-stdout.log-L1'" in html


def test_completeness_table_folds_only_when_everything_is_complete() -> None:
    done = pd.DataFrame({"source": ["a", "b"], "completeness": ["complete", "complete"]})
    assert "<details" in cards.completeness_table(done)._repr_html_().replace("<wbr>", "")
    part = pd.DataFrame({"source": ["a", "b"], "completeness": ["complete", "partial"]})
    html = cards.completeness_table(part)._repr_html_().replace("<wbr>", "")
    assert "<details" not in html and html.index(">b<") < html.index(">a<")  # the partial source first


def test_overview_card_counts_batches_and_root_causes() -> None:
    ov = pd.DataFrame({"batch_id": ["b-1", "b-2", "b-3"], "status": ["stuck", "stuck", "unknown"],
                       "root_cause": ["enum.label_missing", "enum.label_missing", None],
                       "waited_s": [79.0, 40.0, None], "current_state": ["awaiting_content_validation"] * 3,
                       "awaited_event": ["t.ready"] * 3})
    html = cards.overview_card(ov)._repr_html_().replace("<wbr>", "")
    assert "<b>2</b> stuck" in html and "<b>1</b> unknown" in html
    assert "enum.label_missing</code> — 2 batch(es)" in html and "b-1" in html and "1 min 19 s" in html
    assert "could not be investigated" in html


def test_card_says_what_the_consumer_did_who_is_responsible_and_where_the_content_went() -> None:
    """A dropped event reads as dropped (not lag), with the responsible service and the content ledger."""
    from huledu_forensics.investigation import investigate
    from tests.support.corpus import corpus_bundle, full_batch_id

    bundle = corpus_bundle("healthy-regular")
    v = investigate(bundle, full_batch_id("healthy-regular", "03ccad95")).verdict.to_json()
    card = cards.verdict_card(v)
    html = card._repr_html_().replace("<wbr>", "")
    assert "bos dropped it (wrong_state)" in html and "awaiting_student_validation" in html
    assert "Responsible" in html and "<code>bos</code>" in html
    assert "2 item(s) for 2 expected: 2 slot" in html
    assert '"expected"' not in html  # the ledger is a sentence, not raw JSON
    text = str(card)
    assert text.index("waiting for") < text.index("bos dropped it")


def test_a_long_root_cause_is_never_cut_inside_a_quoted_log_message() -> None:
    """The dropped-event summary quotes BOS's log line, which itself holds a colon: the card must cut
    before the quotation, not turn the quoted colon into a full stop and lose the quote's end."""
    quoted = '"Batch 03ccad95-8169-4dab-ac81-590b378b078f in unexpected state: awaiting_student_validation"'
    summary = ("Batch Orchestrator (BOS) handled huleedu.els.batch.essays.ready.v1 for batch "
               "03ccad95-8169-4dab-ac81-590b378b078f at 2026-01-20T14:26:52.857276+00:00 and dropped it "
               f"(wrong_state): {quoted}. The batch stayed in student_validation_completed.")
    v = _verdict(root_cause={"finding": "event.dropped", "severity": "error", "summary": summary})
    text = str(cards.verdict_card(v))
    head = next(ln for ln in text.splitlines() if ln.startswith("root cause:"))
    assert head.endswith("dropped it (wrong_state).") and "unexpected state." not in head
    html = cards.verdict_card(v)._repr_html_()
    assert "awaiting_student_validation&quot;" in html  # the whole quotation is one click away, intact


def test_a_content_ledger_whose_items_cannot_be_read_is_not_shown_as_zero_items() -> None:
    content = {"expected": 4, "items": 0, "slot": 0, "pending": 0, "unknown": 4}
    html = cards.verdict_card(_verdict(content=content))._repr_html_()
    assert "0 item(s)" not in html and "4 expected: 4 unknown" in html and "missing" in html


def test_a_partial_database_names_the_tables_that_are_missing() -> None:
    v = _verdict(completeness={"database:els_db": "partial", "logs:els": "complete"},
                 not_evaluated=[{"rule": "content.excess_unconsumed",
                                 "reason": "missing from the bundle: els_db/event_outbox"},
                                {"rule": "x.other", "reason": "missing from the bundle: bos_db/batches, "
                                                              "els_db/essay_states"}])
    html = cards.verdict_card(v)._repr_html_().replace("<wbr>", "")
    assert "database:els_db: partial</code> — missing: event_outbox, essay_states" in html
    assert "batches" not in html.split("incomplete")[1].split("</div>")[0]  # another database's table


def test_an_event_consumed_then_dropped_is_not_a_green_tick() -> None:
    """consumed is yes (the handler ran), but it dropped the event: the check must carry the outcome
    and not be coloured like a healthy hop."""
    aw = {"topic": "t.ready", "produced": True, "published": True, "consumed": True, "consumer": "bos",
          "outcome": "dropped", "outcome_cause": "wrong_state", "consumed_state": "yes"}
    card = cards.verdict_card(_verdict(awaited=aw))
    html = card._repr_html_()
    assert "<span class='hf-check hf-warn' title='consumed, then dropped'>consumed ✓ yes · dropped</span>" in html
    assert "hf-yes' title='consumed" not in html
    assert "consumed yes (dropped)" in str(card)


def test_an_incomplete_source_says_why_and_a_gap_is_not_shown_as_raw_json() -> None:
    """The card lists each source that is not complete with the verdict's note on it, and a collection
    gap as its part and reason, not as a JSON object."""
    v = _verdict(completeness={"logs:bos": "partial", "logs:els": "complete"},
                 completeness_notes={"logs:bos": "the logs of bos end before t.ready was published"},
                 gaps=[{"part": "logs/els", "reason": "Docker engine not reachable", "source": "docker"}])
    card = cards.verdict_card(v)
    html = card._repr_html_().replace("<wbr>", "")
    assert "logs:bos: partial</code> — the logs of bos end before t.ready was published" in html
    assert "gap: logs/els</code> — Docker engine not reachable" in html and "{&quot;part" not in html
    assert "completeness notes" not in html.lower()  # a known field, not an extra row
    assert "end before t.ready" in str(card)


def test_a_no_within_the_expected_dwell_reads_not_yet_not_a_red_failure() -> None:
    """A batch 1 s into a 30 s step has not published yet: that is a batch in flight, and the card must
    not show it with the red ✗ of a failure; the same checks on a stuck batch stay red."""
    aw = {"topic": "t.ready", "producer": "els", "consumer": "bos", "produced": True, "published": False,
          "consumed": False, "waited_s": 1.0, "expected_dwell_s": 30.0}
    html = cards.verdict_card(_verdict(status="healthy", healthy=True, root_cause=None, chain=[],
                                       awaited=aw))._repr_html_()
    assert "published … not yet" in html and "consumed … not yet" in html and "published ✗ no" not in html
    assert "produced ✓ yes" in html
    stuck = cards.verdict_card(_verdict(awaited={**aw, "waited_s": 45.0}))._repr_html_()
    assert "published ✗ no" in stuck and "not yet" not in stuck
