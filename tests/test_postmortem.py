"""write_postmortem: the Markdown postmortem and its PNG figures; plus the cell discipline of the
three notebooks of this part (correlation_trace, stuck_batches, postmortem) and a headless run of
the postmortem notebook."""

from __future__ import annotations

import ast
import json
import os
import re
import struct
from pathlib import Path

import nbformat
import pytest

from huledu_forensics import investigate, model, postmortem, report
from huledu_forensics.bundle import Bundle, write_world_bundle
from huledu_forensics.errors import ConfigError
from huledu_forensics.model import names as N
from huledu_forensics.simulate import build_world
from tests.support.env import unavailable

ROOT = Path(__file__).resolve().parents[1]
SEED_BATCH = "278f7fd9-37fe-406a-a735-f15128cb6b1f"
SEED_REG_CORR = "9437fe03-1195-4241-b532-91d36df0b1c2"
SEED_PIPE_CORR = "7242c19e-039b-43d3-b37f-b144133706c9"
SECRETS = ("S3cretPassw0rd", "Hunter2xyz")
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = ("correlation_trace", "stuck_batches", "postmortem")


def _with_secret_in_a_log(world):  # type: ignore[no-untyped-def]
    """Put a DSN with a password and a password=… pair into the ELS handler's error line."""
    container = model.SERVICES["els"].consumer_container
    lines = world.logs[container]["stdout"]
    for i, line in enumerate(lines):
        stamp, _, body = line.partition(" ")
        if any(m in body for m in model.handlers.CONSUMER_LOOPS["els"].failed) and SEED_REG_CORR in body:
            rec = json.loads(body)
            rec["extra"]["error"] = (rec["extra"].get("error", "") + f" (postgresql://huleedu:{SECRETS[0]}"
                                     f"@els_db:5432/x password={SECRETS[1]})")
            lines[i] = f"{stamp} {json.dumps(rec)}"
            return world
    raise AssertionError("no handler error line in the seed world")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    root = tmp_path_factory.mktemp("postmortem")
    return {"seed": write_world_bundle(_with_secret_in_a_log(build_world("seed_variant_a")), root / "seed"),
            "healthy": write_world_bundle(build_world("healthy_guest"), root / "healthy")}


@pytest.fixture(scope="module")
def seed_md(bundles: dict[str, Bundle], tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("pm-seed")
    path = postmortem.write_postmortem(bundles["seed"], None, out, figures=False)  # id from the manifest
    assert path == out / postmortem.POSTMORTEM_FILE
    return path.read_text(encoding="utf-8")


def _section(md: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", md, flags=re.M | re.S)
    assert m, f"no section {heading!r}"
    return m.group(1)


def test_root_cause_is_the_enum_lacking_uploaded(seed_md: str) -> None:
    assert seed_md.startswith(f"# Postmortem: GUEST batch `{SEED_BATCH}` stuck in `{N.S_AWAITING_CONTENT}`")
    for heading in ("Executive summary", "Root cause"):
        body = _section(seed_md, heading)
        assert "enum.label_missing" in body
        assert "essay_status_enum lacks 'uploaded'" in body
    assert "huleedu_essay_lifecycle" in _section(seed_md, "Root cause")


def test_identifiers_name_batch_both_correlations_essays_and_window(seed_md: str, bundles) -> None:  # type: ignore[no-untyped-def]
    ids = _section(seed_md, "Identifiers")
    reg = re.search(r"\| Registration correlation id \| (.*) \|", ids).group(1)  # type: ignore[union-attr]
    pipe = re.search(r"\| Pipeline-request correlation id\(s\) \| (.*) \|", ids).group(1)  # type: ignore[union-attr]
    assert SEED_REG_CORR in reg and SEED_PIPE_CORR not in reg
    assert SEED_PIPE_CORR in pipe and SEED_REG_CORR not in pipe
    inv = investigate(bundles["seed"], SEED_BATCH)
    for essay in inv.scope.ids["essay"]:
        assert essay in ids
    assert "| Window |" in ids and "(collection)" in ids


def test_evidence_chain_follows_the_verdict_in_order(seed_md: str, bundles) -> None:  # type: ignore[no-untyped-def]
    chain = [c["finding"] for c in investigate(bundles["seed"], SEED_BATCH).verdict.data["chain"]]
    assert chain[0] == "enum.label_missing" and len(chain) >= 5
    body = _section(seed_md, "Evidence chain")
    found = re.findall(r"^### \d+\. .* \(`([a-z_.]+)`, \w+\)$", body, flags=re.M)
    assert found == chain


def test_reproduce_blocks_hold_the_exact_queries(seed_md: str) -> None:
    body = _section(seed_md, "Evidence chain")
    for key in (N.TRACKERS, N.ESSAY_STATES, N.PENDING_CONTENT):
        assert f"SELECT * FROM {key[1]} WHERE batch_id = '{SEED_BATCH}';" in body, key
        assert f"-- database {key[0]}" in body
    assert "WHERE t.typname = 'essay_status_enum'" in body and "FROM pg_enum" in body
    db_container = model.DATABASES[N.ESSAY_STATES[0]].container
    assert f"docker logs {db_container} 2>&1 | grep" in body
    worker = model.SERVICES["els"].consumer_container
    assert f"docker logs {worker} 2>&1 | grep {SEED_REG_CORR}" in body
    assert "```sql" in body and "```sh" in body


def test_timeline_next_steps_and_missing_evidence(seed_md: str) -> None:
    tl = _section(seed_md, "Timeline (key events, UTC)")
    rows = [ln for ln in tl.splitlines() if ln.startswith("| 20")]
    assert 5 <= len(rows) <= 50
    stamps = [ln.split(" | ")[0].lstrip("| ") for ln in rows]
    assert stamps == sorted(stamps) and all(s.endswith("Z") for s in stamps)
    assert any(N.M_PG_INVALID_ENUM in ln for ln in rows)
    steps = _section(seed_md, "Next steps")
    assert steps.lstrip().startswith("1. **Root cause**")
    assert "ALTER TYPE essay_status_enum ADD VALUE IF NOT EXISTS 'uploaded'" in steps
    assert "pg_enum" in steps  # the enum validation check
    # every drifted label gets its fix, not only the one this batch hit first: fixing one would let the
    # next stop the batch again (the co-occurring critical findings are named as such)
    for enum, label in (("essay_status_enum", "ready_for_processing"), ("batch_status_enum",
                                                                       "ready_for_pipeline_execution")):
        assert f"ALTER TYPE {enum} ADD VALUE IF NOT EXISTS '{label}'" in steps
    numbered = [ln for ln in steps.splitlines() if ln[:1].isdigit()]
    assert numbered[1].startswith("2. **Same fault, also critical**")  # fixed with the cause, next to it
    # and every finding of the chain has its step
    for rule in ("db.enum_value_rejected", "consumer.handler_failed", "tracker.registered_without_essays",
                 "pending.orphaned_content", "event.not_produced", "pipeline.request_rejected"):
        assert f"`{rule}`" in steps, rule
    assert "Nothing" in _section(seed_md, "Missing evidence")
    assert "Figures were not rendered: disabled" in _section(seed_md, "Figures")


def test_no_secrets_in_the_postmortem(seed_md: str) -> None:
    for s in SECRETS:
        assert s not in seed_md
    assert "postgresql://huleedu:***@" in seed_md


def test_healthy_batch_postmortem_says_so(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    target = bundles["healthy"].manifest["scope"]["target"]["batch_id"]
    md = postmortem.write_postmortem(bundles["healthy"], target, tmp_path, figures=False).read_text()
    assert "is **healthy**" in md and "No fault was found" in md
    assert "Nothing to fix" in _section(md, "Next steps")


def test_default_id_needs_a_target(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    assert postmortem.default_id(bundles["seed"]) == SEED_BATCH
    w = build_world("seed_variant_a")
    w.target = {}
    b = write_world_bundle(w, tmp_path / "untargeted")
    assert not b.manifest.get("scope", {}).get("target")
    with pytest.raises(ConfigError, match="--id"):
        postmortem.write_postmortem(b, None, tmp_path / "out", figures=False)


def test_without_a_browser_the_document_is_still_written(bundles: dict[str, Bundle], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postmortem, "find_browser", lambda: None)
    md = postmortem.write_postmortem(bundles["seed"], SEED_BATCH, tmp_path).read_text()
    assert "Figures were not rendered" in md and "Chromium" in md
    assert not (tmp_path / "figures").exists() or not list((tmp_path / "figures").glob("*.png"))


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.browser
def test_figures_are_real_pngs_linked_relatively(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        unavailable("/usr/bin/chromium is missing: apt-get install -y chromium")
    before = os.environ.get("BROWSER_PATH")
    md_path = postmortem.write_postmortem(bundles["seed"], SEED_BATCH, tmp_path / "pm")
    assert os.environ.get("BROWSER_PATH") == before  # set only inside the call
    md = md_path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(links) == sorted(f"figures/{n}.png" for n in postmortem.FIGURES)
    for rel in links:
        png = md_path.parent / rel
        assert png.is_file() and png.stat().st_size > 10_000
        w, h = _png_size(png)
        assert w >= 800 and h >= 400


# ---- the three notebooks: committed clean, parameterized for the runner, thin, narrated ----------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_copy_params_and_clean_outputs(name: str) -> None:
    canonical = ROOT / "huledu_forensics" / "notebooks" / f"{name}.ipynb"
    assert (ROOT / "notebooks" / f"{name}.ipynb").resolve() == canonical.resolve()
    assert report.resolve_notebook(name).resolve() == canonical.resolve()
    nb = nbformat.read(canonical, as_version=4)
    nbformat.validate(nb)
    whole_stack = ["scan"] if name == "stuck_batches" else []  # runs on a live scan, without --id
    assert report.notebook_parameters(canonical) == list(report.NOTEBOOK_PARAMETERS) + whole_stack
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    ns: dict[str, object] = {}
    exec(params[0].source, ns)  # noqa: S102 - plain assignments, checked above
    assert ns["bundle"] is None and ns["verdict_path"] is None  # runs on the demo bundle
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_thin_and_narrated(name: str) -> None:
    nb = nbformat.read(ROOT / "huledu_forensics" / "notebooks" / f"{name}.ipynb", as_version=4)
    assert nb.cells[0].cell_type == "markdown" and "**Question:**" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    imports = [c for c in code if any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.parse(c.source).body)]
    assert len(imports) == 1 and imports[0] is code[0]
    assert all(n.module == "huledu_forensics" for n in ast.walk(ast.parse(code[0].source))
               if isinstance(n, ast.ImportFrom))
    for cell in code[1:]:
        assert len(cell.source.strip().splitlines()) <= 5, cell.source
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Lambda, ast.For, ast.While,
                                         ast.ListComp, ast.DictComp, ast.Import, ast.ImportFrom)), cell.source
        assert "select " not in cell.source.lower() and "re." not in cell.source
        assert isinstance(tree.body[-1], ast.Expr), cell.source
    for prev, cell in zip(nb.cells, nb.cells[1:]):
        if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", []):
            assert prev.cell_type == "markdown", f"no markdown before: {cell.source}"
    sections = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert sum("normal" in c.source.lower() for c in sections) >= len(sections) - 1  # all but verdict.json
    assert "verdict_path" in code[-1].source


@pytest.mark.slow
def test_postmortem_notebook_runs_through_the_report_runner(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    res = report.run_report(bundles["seed"], SEED_BATCH, tmp_path / "out", notebook="postmortem")
    assert res.verdict["root_cause"]["finding"] == "enum.label_missing"
    html = res.html_path.read_text(encoding="utf-8")
    assert "essay_status_enum" in html and "Reproduce on a live stack" in html
    for s in SECRETS:
        assert s not in html


def test_a_stuck_batch_with_no_known_cause_is_not_told_there_is_nothing_to_fix(tmp_path: Path) -> None:
    """outbox-poisoned without ELS's event_outbox table: the verdict's root cause is unknown. The
    postmortem must say unknown in every section (never 'nothing to fix', never 'no finding of error
    severity' beside an error finding) and name the missing table where it says the evidence is
    incomplete."""
    import copy

    from huledu_forensics.world import load_world_dir
    from tests.support.corpus import require_corpus

    world = copy.deepcopy(load_world_dir(require_corpus("outbox-poisoned")))
    del world.databases["huleedu_essay_lifecycle"].tables["event_outbox"]
    inv = investigate(write_world_bundle(world, tmp_path / "bundle"), "37e88dff-166c-4847-9701-a5b145a32fa6")
    assert inv.verdict.data["root_cause"] is None and inv.verdict.data["status"] == "stuck"
    md = postmortem.postmortem_markdown(inv)
    assert "Nothing to fix" not in md and "no finding of error severity" not in md
    assert "**Root cause: unknown.**" in md and "The cause is unknown" in md
    assert "missing tables: event_outbox): the conclusion may be wrong" in md
    assert "`pipeline.request_rejected` (error)" in postmortem.section_markdown(inv, "chain")


def test_a_cited_line_whose_error_is_its_message_is_quoted_once(seed_md: str) -> None:
    """PostgreSQL's line is all error: the Where list must not print the same text twice."""
    line = next(ln for ln in seed_md.splitlines()
                if ln.startswith("- `logs/") and "_db/" in ln and "invalid input value" in ln)
    assert line.count("invalid input value for enum") == 1, line
