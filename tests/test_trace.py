"""correlation_trace / trace_figure: one correlation id followed outbox → relay → consumer → handler,
on simulator worlds and on the independently made corpus, plus the correlation_trace notebook run
headless through the report runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from huledu_forensics import model, report
from huledu_forensics._time import parse_utc
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.errors import ConfigError, ScopeError
from huledu_forensics.evidence import payload, records
from huledu_forensics.investigation import investigate
from huledu_forensics.model import names as N
from huledu_forensics.outcomes import consumption
from huledu_forensics.scope import normalise_id
from huledu_forensics.simulate import build_world
from huledu_forensics.trace import OUTCOMES, TRACE_COLUMNS, correlation_trace, trace_figure, trace_table
from tests.support.corpus import CORPUS_TARGETS, corpus_bundle

SEED_REG_CORR = "9437fe03-1195-4241-b532-91d36df0b1c2"
SEED_PIPE_CORR = "7242c19e-039b-43d3-b37f-b144133706c9"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    root = tmp_path_factory.mktemp("trace")
    return {name: write_world_bundle(build_world(name), root / name)
            for name in ("seed_variant_a", "outbox_poisoned", "healthy_guest")}


def _target(b: Bundle) -> dict[str, str]:
    return b.manifest["scope"]["target"]


def test_seed_registration_trace_shows_the_failed_registration_handler(bundles: dict[str, Bundle]) -> None:
    tr = correlation_trace(bundles["seed_variant_a"], SEED_REG_CORR)
    assert list(tr.columns) == list(TRACE_COLUMNS)
    assert set(tr["outcome"]) <= set(OUTCOMES)
    reg = tr[(tr["topic"] == N.T_REGISTERED) & (tr["consumer"] == "els")]
    assert len(reg) == 1
    r = reg.iloc[0]
    assert r["producer"] == "bos" and r["outcome"] == "failed"
    assert "DBAPIError" in r["detail"]
    # the waterfall is ordered: written, relayed, consumed, handled
    assert r["written_at"] < r["relayed_at"] < r["consumed_at"] <= r["handled_at"]
    assert str(r["written_at"].tz) == "UTC"
    # refs point at the outbox row, the relay line and the handler's lines in the bundle
    refs = r["refs"].split("; ")
    assert refs[0].startswith(f"tables/{N.BOS_OUTBOX[0]}/{N.BOS_OUTBOX[1]}.parquet#id=")
    els_worker = model.SERVICES["els"].consumer_container
    assert any(x.startswith(f"logs/{els_worker}/") for x in refs)
    # the two content uploads were consumed fine (parked as pending) before the registration arrived
    content = tr[tr["topic"] == N.T_CONTENT_PROVISIONED]
    assert len(content) == 2 and set(content["outcome"]) == {"ok"}
    assert (content["handled_at"] < r["consumed_at"]).all()


def test_join_is_not_on_event_id(bundles: dict[str, Bundle]) -> None:
    """The relay re-wraps envelopes: the outbox event_id never appears on the consumer side, yet the
    trace links outbox row and handler (SYSTEM.md §2.3)."""
    b = bundles["seed_variant_a"]
    out = b.table(*N.BOS_OUTBOX)
    row = out[out["event_data"].map(lambda d: payload(d).get("correlation_id") == SEED_REG_CORR)].iloc[0]
    envelope_id = payload(row["event_data"])["event_id"]
    tr = correlation_trace(b, SEED_REG_CORR)
    linked = tr[tr["refs"].str.contains(str(row["id"])) & (tr["consumer"] == "els")]
    assert len(linked) == 1 and pd.notna(linked.iloc[0]["consumed_at"])
    assert envelope_id not in linked.iloc[0]["refs"]


def test_pipeline_request_has_no_outbox_row_and_was_rejected(bundles: dict[str, Bundle]) -> None:
    tr = correlation_trace(bundles["seed_variant_a"], SEED_PIPE_CORR.upper())  # ids compare case-blind
    assert len(tr) == 1
    r = tr.iloc[0]
    assert r["topic"] == N.T_PIPELINE_REQUEST and r["producer"] == "gateway" and r["consumer"] == "bos"
    assert pd.isna(r["written_at"]) and pd.isna(r["relayed_at"]) and pd.notna(r["consumed_at"])
    assert r["outcome"] == "dropped" and r["detail"].startswith("wrong_state")
    assert N.M_NOT_READY in r["detail"]


def test_poisoned_outbox_row_is_not_published(bundles: dict[str, Bundle]) -> None:
    b = bundles["outbox_poisoned"]
    tr = correlation_trace(b, _target(b)["registration_correlation_id"])
    done = tr[tr["topic"] == N.T_CONTENT_COMPLETED]
    assert len(done) == 1
    assert done.iloc[0]["outcome"] == "not published"
    assert pd.isna(done.iloc[0]["relayed_at"]) and pd.notna(done.iloc[0]["written_at"])
    assert "max retries" in done.iloc[0]["detail"]
    # the relay's own Kafka errors in the same process are not blamed on an event handler
    assert not tr["detail"].str.contains("Failed to publish").any()


def test_healthy_trace_has_no_failures(bundles: dict[str, Bundle]) -> None:
    b = bundles["healthy_guest"]
    tr = correlation_trace(b, _target(b)["registration_correlation_id"])
    assert not tr["outcome"].isin(["failed", "not published", "not consumed"]).any()
    done = tr[(tr["topic"] == N.T_CONTENT_COMPLETED) & (tr["consumer"] == "bos")]
    assert len(done) == 1 and done.iloc[0]["outcome"] == "ok"
    # consumers whose logs were not collected are "unknown", not "not consumed"
    assert (tr.loc[tr["outcome"] == "unknown", "detail"].str.startswith("no logs of")).all()


def test_window_limits_the_trace(bundles: dict[str, Bundle]) -> None:
    b = bundles["seed_variant_a"]
    full = correlation_trace(b, SEED_REG_CORR)
    cut = full["written_at"].dropna().sort_values().iloc[2]
    part = correlation_trace(b, SEED_REG_CORR, since=cut.isoformat())
    assert 0 < len(part) < len(full)
    assert (part[["written_at", "relayed_at", "consumed_at"]].min(axis=1) >= cut).all()


def test_corpus_seed_trace_finds_the_same_failure() -> None:
    """On the independently made corpus world, in the real log format."""
    tr = correlation_trace(corpus_bundle("seed-variant-a"), SEED_REG_CORR)
    reg = tr[(tr["topic"] == N.T_REGISTERED) & (tr["consumer"] == "els")]
    assert list(reg["outcome"]) == ["failed"]
    assert "DBAPIError" in reg.iloc[0]["detail"]
    assert set(tr.loc[tr["topic"] == N.T_CONTENT_PROVISIONED, "outcome"]) == {"ok"}


def test_corpus_outbox_poisoned_trace() -> None:
    b = corpus_bundle("outbox-poisoned")
    corr = b.table(*N.TRACKERS)
    bid = "37e88dff-166c-4847-9701-a5b145a32fa6"
    cid = str(corr.loc[corr["batch_id"] == bid, "correlation_id"].iloc[0])
    tr = correlation_trace(b, cid)
    done = tr[tr["topic"] == N.T_CONTENT_COMPLETED]
    assert list(done["outcome"]) == ["not published"]
    assert "failed" not in set(tr["outcome"])  # Kafka client errors are not handler failures


def test_bad_ids_give_one_line_errors(bundles: dict[str, Bundle]) -> None:
    with pytest.raises(ConfigError, match="No correlation id"):
        correlation_trace(bundles["seed_variant_a"], "  ")
    with pytest.raises(ScopeError) as exc:
        correlation_trace(bundles["seed_variant_a"], "00000000-0000-0000-0000-000000000000")
    assert "\n" not in str(exc.value) and "correlation id" in str(exc.value)


def test_trace_figure_draws_one_row_per_event_and_marks_failures(bundles: dict[str, Bundle]) -> None:
    b = bundles["outbox_poisoned"]
    tr = correlation_trace(b, _target(b)["registration_correlation_id"])
    fig = trace_figure(tr)
    names = {t.name for t in fig.data}
    assert {"in outbox", "on Kafka", "handled", "not published"} <= names
    rows = {y for t in fig.data for y in t.y}
    assert len(rows) == len(tr)
    seed = trace_figure(correlation_trace(bundles["seed_variant_a"], SEED_REG_CORR))
    failed = [t for t in seed.data if t.name == "handler failed"]
    assert failed and failed[0].line.color == "#e53935"
    empty = trace_figure(tr.iloc[0:0])
    assert not empty.data and "no events" in empty.layout.title.text


def test_the_trace_table_fits_a_page_times_of_day_under_their_date_one_ref_a_line(
        bundles: dict[str, Bundle]) -> None:
    """Twelve columns of full ISO times and unbreakable event names pushed the refs off the page: the
    table shows the hop in one column, times of day under one line naming their UTC date, the refs
    one a line; the rows where it broke are the same rows as the frame's."""
    tr = correlation_trace(bundles["seed_variant_a"], SEED_REG_CORR)
    html = trace_table(tr).body.replace("<wbr>", "")
    day = pd.to_datetime(tr["written_at"], utc=True).dropna().iloc[0]
    assert f"Times are UTC on {day.date().isoformat()}" in html
    assert "+00:00" not in html and day.strftime("%H:%M:%S.%f")[:-3] in html
    assert "<th>hop</th>" in html and "<th>event</th>" not in html and "<th>producer</th>" not in html
    first = tr["refs"].iloc[0].split("; ")
    assert "<br>".join(first[:2]) in html  # one ref a line
    broken = trace_table(tr, only_broken=True).body
    assert broken.count("<tr>") - 1 == int((tr["outcome"] != "ok").sum())
    assert "Every hop is ok." in trace_table(tr[tr["outcome"] == "ok"], only_broken=True).body


@pytest.mark.slow
def test_correlation_trace_notebook_runs_through_the_report_runner(
        bundles: dict[str, Bundle], tmp_path: Path) -> None:
    res = report.run_report(bundles["seed_variant_a"], SEED_REG_CORR, tmp_path / "out",
                            notebook="correlation_trace")
    assert res.verdict["batch_id"] == "278f7fd9-37fe-406a-a735-f15128cb6b1f"
    assert res.verdict["status"] == "stuck" and res.exit_code == report.EXIT_FINDINGS
    html = res.html_path.read_text(encoding="utf-8")
    assert "Waterfall across services" in html and "DBAPIError" in html


def _outbox_id(refs: str) -> str | None:
    first = refs.split("; ")[0]
    return first.split("#id=")[1] if first.startswith("tables/") and "#id=" in first else None


@pytest.mark.parametrize("world", sorted(CORPUS_TARGETS))
def test_every_trace_row_says_what_the_verdicts_consumption_detector_says(world: str) -> None:
    """The trace never decides consumption itself: for every event of every batch of the corpus world,
    its trace row's ``consumed`` is the answer of the detector the verdict reads (outcomes.consumption
    on the batch's evidence, as progress asks it), and the batch's awaited event reads the same."""
    b = corpus_bundle(world)
    traces: dict[str, pd.DataFrame] = {}
    checked: set[tuple[str, str]] = set()
    batches = b.table(*N.BATCHES)
    assert batches is not None
    for bid in batches["id"]:
        inv = investigate(b, str(bid))
        ev, aw = inv.evidence, inv.progress.awaited
        for key in N.OUTBOXES.values():
            for row in records(ev.rows(key)):
                t = model.TOPICS.get(str(row["topic"]))
                cid = normalise_id(payload(row["event_data"]).get("correlation_id"))
                if t is None or not cid:
                    continue
                tr = traces.get(cid)
                if tr is None:
                    tr = traces[cid] = correlation_trace(b, cid)
                mine = tr[[_outbox_id(r) == str(row["id"]) for r in tr["refs"]]]
                published = parse_utc(row["published_at"])
                for consumer in t.consumers:
                    (got,) = mine.loc[mine["consumer"] == consumer, "consumed"]
                    want = consumption(ev.runs, t.name, consumer, published_at=published,
                                       containers=ev.containers, log_extent=ev.log_extent,
                                       recognised=ev.recognised)
                    assert got == want.state, (bid, t.name, consumer, want.reason)
                    checked.add((str(row["id"]), consumer))
                    if aw is not None and (aw.topic, aw.consumer, aw.published_at) == (t.name, consumer, published):
                        assert got == aw.consumed_state
    # every trace row that follows an outbox row to a consumer was checked against a batch's verdict
    rows = [(_outbox_id(r["refs"]), str(r["consumer"])) for tr in traces.values() for r in records(tr)
            if r["consumer"] and _outbox_id(r["refs"])]
    assert rows and set(rows) <= checked


def test_corpus_cj_request_the_kit_cannot_read_is_unknown_with_the_reason() -> None:
    """The corpus CJ container logs its handling in lines the kit does not recognise: the trace says
    unknown and why, as the verdict's detector does, never "not consumed"."""
    tr = correlation_trace(corpus_bundle("healthy-guest"), "5e066a50-2f89-45af-801b-647f9ffbf7ff")
    (cj,) = records(tr[tr["consumer"] == "cj"])
    assert cj["topic"] == "huleedu.els.cj_assessment.requested.v1"
    assert (cj["outcome"], cj["consumed"]) == ("unknown", "unknown")
    assert cj["detail"].startswith("the kit recognises no handling of any event in the logs of "
                                   + model.SERVICES["cj"].consumer_container)
