"""The ``huledu-forensics`` command line: thin commands over the library.

Each command parses its options, calls one library function, and prints a short summary and the paths
it wrote. Errors the kit raises on purpose are printed as one line (no traceback); usage errors exit 4.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from . import _fields as F
from . import report as _report
from ._time import parse_utc
from .errors import EvidenceIncomplete, ForensicsError, ReportError, SourceUnavailable
from .safety import check_id, printable

__all__ = ["cli", "main"]

def _fail(message: str, code: int) -> None:
    # one line, no escape sequence from a log line or a bundle, never a 100k-character echo
    click.echo(f"error: {printable(message, 1000)}", err=True)
    sys.exit(code)


class _Seconds(click.ParamType[Any]):
    """A finite number of seconds greater than 0 (0, negative or nan would silently disable a limit)."""

    name = "SECONDS"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        import math

        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{printable(value, 40)!r} is not a number of seconds.", param, ctx)
        if not math.isfinite(v) or v <= 0:
            self.fail(f"{printable(value, 40)!r} is not a limit: give a number of seconds greater than 0.",
                      param, ctx)
        return v


POSITIVE_SECONDS = _Seconds()
"""``--timeout``: a finite number of seconds greater than 0."""

COLLECT_SHARE = 0.6
"""Of ``report --profile``'s ``--timeout``, the share the live collection may use; the notebook gets the
rest. Collection stops by itself at its deadline and keeps what it read (evidence incomplete, exit 2)."""


def _incomplete_sources(bundle: Any) -> list[str]:
    """``name: completeness`` of every source of a bundle that is not complete."""
    return [f"{printable(s.name, 80)}: {s.completeness}" for s in bundle.sources
            if s.completeness != "complete"]


def _error_code(exc: ForensicsError) -> int:
    if isinstance(exc, EvidenceIncomplete):
        return _report.EXIT_INCOMPLETE
    if isinstance(exc, (ReportError, SourceUnavailable)):
        return _report.EXIT_KIT_FAILED
    return _report.EXIT_BAD_INPUT


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Group(click.Group):
    """A group whose usage errors exit 4 and whose kit errors print one line, never a traceback."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:  # noqa: D102
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" Run `{exc.ctx.command_path} --help`." if exc.ctx is not None else ""
            _fail(f"{exc.format_message()}{hint}", _report.EXIT_BAD_INPUT)
        except click.ClickException as exc:
            _fail(exc.format_message(), _report.EXIT_BAD_INPUT)
        except click.Abort:
            _fail("aborted.", 130)
        except ForensicsError as exc:
            _fail(_one_line(exc), _error_code(exc))
        except Exception as exc:  # noqa: BLE001 - a kit bug: one line, the traceback only on request
            if os.environ.get("HULEDU_FORENSICS_DEBUG"):
                raise
            _fail(f"internal error ({type(exc).__name__}: {_one_line(exc)}). Rerun with "
                  "HULEDU_FORENSICS_DEBUG=1 for the traceback and report it.", _report.EXIT_KIT_FAILED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


class _Time(click.ParamType[Any]):
    name = "TIME"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or hasattr(value, "tzinfo"):
            return value
        t = parse_utc(value)
        if t is None:
            self.fail(f"'{value}' is not a timestamp; use ISO 8601, e.g. 2025-09-20T10:00:00Z.", param, ctx)
        return t


TIME = _Time()


def _example(command: str) -> str:
    """Help epilog: every command's help ends with an example."""
    return f"\b\nExample:\n  {command}"


@click.group(cls=_Group, epilog=_example("huledu-forensics demo --out /tmp/huledu-demo"))
@click.version_option(package_name="huledu-forensics")
def cli() -> None:
    """Investigate a HuleEdu batch from any id: timeline, state progress, verdict."""


def _print_result(result: _report.ReportResult) -> None:
    click.echo(printable(result.summary, 4000, keep_newlines=True))  # the summary quotes evidence
    click.echo(f"verdict:  {result.verdict_path}")
    click.echo(f"report:   {result.html_path}")
    click.echo(f"notebook: {result.notebook_path}")
    if result.bundle_path is not None:
        click.echo(f"bundle:   {result.bundle_path}")


def _run_report(bundle: Path, any_id: str, out: Path, since: Any, until: Any, timeout: float,
                notebook: str = "batch_investigation", redact_ids: bool = False, show_code: bool = False) -> int:
    # the command's deadline (--timeout) is the limit; a cell's own timeout is a backstop just past it, so
    # the deadline always fires first with its one-line message (nbclient's cell timeout would race it)
    kw = dict(notebook=notebook, since=since, until=until, timeout_s=timeout + 5,
              progress=sys.stderr.isatty())
    if show_code:
        kw["show_code"] = True
    if redact_ids:
        from . import redact

        result = redact.run_redacted_report(bundle, any_id, out, **kw)
    else:
        result = _report.run_report(bundle, any_id, out, **kw)
    _print_result(result)
    return int(result.exit_code)


class _DeadlineExceeded(Exception):
    """The report's overall time limit passed."""


class _Deadline:
    """A hard limit on the whole command (SIGALRM in the main thread; a no-op elsewhere)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._old: Any = None

    def __enter__(self) -> _Deadline:
        import signal
        import threading

        if self.seconds > 0 and threading.current_thread() is threading.main_thread():
            def _expire(signum: int, frame: Any) -> None:
                raise _DeadlineExceeded()
            self._old = signal.signal(signal.SIGALRM, _expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)


def _from_deadline(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was caused by, the command's deadline (through any wrapping)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, _DeadlineExceeded):
            return True
        todo += [e.__cause__, e.__context__, getattr(e, "orig_exc", None)]
    return False


def _timed_out(out: Path, timeout: float) -> None:
    import logging

    # the notebook client's cell task, cut off by the deadline, dies with the kernel; asyncio would
    # print its 'Task exception was never retrieved' traceback at exit, after the one-line message
    logging.getLogger("asyncio").disabled = True
    _fail(f"the report did not finish within {timeout:g} s; what was written so far (the partly "
          f"executed notebook and its HTML) is in '{out}'. Raise --timeout or narrow --since/--until.",
          _report.EXIT_KIT_FAILED)


def _salvage(out: Path) -> None:
    """After a timeout: export whatever notebook was written so far to HTML."""
    nb = out / _report.REPORT_FILES["notebook"]
    if nb.exists():
        try:
            _report.export_html(nb, out / _report.REPORT_FILES["html"])
        except Exception:  # noqa: BLE001 - best effort; the partial notebook is still there
            pass


@cli.command(epilog=_example("huledu-forensics demo --out /tmp/huledu-demo"))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("huledu-demo"),
              show_default=True, help="Report directory; the bundle goes to OUT/bundle.")
@click.option("--timeout", type=POSITIVE_SECONDS, default=600, show_default=True,
              help="Longest one cell may run (s).")
@click.option("--show-code", is_flag=True, help="Keep the notebook's code cells in report.html (hidden by default).")
def demo(out: Path, timeout: float, show_code: bool) -> None:
    """Build the seed_variant_a demo bundle and run the report on its stuck batch.

    Needs no live stack. Exits 0 when the report was produced.
    """
    result = _report.run_demo(out, timeout_s=timeout, progress=sys.stderr.isatty(), show_code=show_code)
    _print_result(result)


@cli.command(epilog=_example(
    "huledu-forensics report --bundle ./bundle --id 278f7fd9-37fe-406a-a735-f15128cb6b1f --out ./out"))
@click.option("--bundle", type=click.Path(path_type=Path), help="Evidence bundle directory.")
@click.option("--profile", help="Collect live from this profile first (into OUT/bundle).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Profiles config file.")
@click.option("--id", "id_", help="Batch, correlation or essay id (not needed with --notebook stuck_batches).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Report directory.")
@click.option("--since", type=TIME, help="Window start (ISO 8601, UTC if no offset).")
@click.option("--until", type=TIME, help="Window end (ISO 8601).")
@click.option("--timeout", type=POSITIVE_SECONDS, default=900, show_default=True,
              help="Hard limit on the whole command, collection included (s).")
@click.option("--notebook", default="batch_investigation", show_default=True,
              help="Packaged notebook name or .ipynb path to run.")
@click.option("--redact-ids", is_flag=True,
              help="Replace user and org ids and file names by stable hashes in everything written.")
@click.option("--show-code", is_flag=True, help="Keep the notebook's code cells in report.html (hidden by default).")
def report(bundle: Path | None, profile: str | None, config_file: Path | None, id_: str | None, out: Path,
           since: Any, until: Any, timeout: float, notebook: str, redact_ids: bool, show_code: bool) -> None:
    """Run the investigation report for ID on a bundle (or collect one live with --profile).

    Writes OUT/verdict.json, OUT/report.ipynb and OUT/report.html.

    \b
    Exit codes:
      0  healthy: the batch went through its flow
      1  findings: the batch is stuck or something is wrong (see verdict.json)
      2  evidence incomplete: a source was missing or partial, so the verdict may be wrong
         (also when every source was unreachable: the partial bundle is kept in OUT/bundle)
      3  the kit itself failed (what it could is still written, e.g. the partial notebook)
      4  bad input: unknown id, invalid bundle, bad option
    """
    if (bundle is None) == (profile is None):
        _fail("give exactly one of --bundle PATH or --profile NAME. Run `huledu-forensics report --help`.",
              _report.EXIT_BAD_INPUT)
    if not id_:
        if "scan" not in _report.notebook_parameters(_report.resolve_notebook(notebook)):
            _fail(f"--id is required for notebook '{notebook}' (only whole-stack notebooks such as "
                  "stuck_batches run without one). Run `huledu-forensics report --help`.", _report.EXIT_BAD_INPUT)
        if redact_ids:
            _fail("--redact-ids needs --id.", _report.EXIT_BAD_INPUT)
    else:
        id_ = check_id(id_)
    _report.check_report_dir(out)
    raw_dir: Path | None = None
    try:
        with _Deadline(timeout):
            if not id_:
                sys.exit(_run_stack_report(bundle, profile, config_file, out, since, timeout, notebook))
            if profile is not None:
                import tempfile

                from . import collect, profiles

                prof = profiles.load_profile(profile, config_file)
                out.mkdir(parents=True, exist_ok=True)  # the partial output named on a timeout exists
                if redact_ids:  # raw evidence stays in a private temporary directory, never in OUT
                    raw_dir = Path(tempfile.mkdtemp(prefix="huledu-forensics-raw-"))
                    bundle = raw_dir / _report.BUNDLE_DIR
                else:
                    bundle = out / _report.BUNDLE_DIR
                collected = collect.snapshot(prof, id_, bundle, since=since, until=until, progress=True,
                                             deadline_s=timeout * COLLECT_SHARE)
                found = (collected.manifest.get("scope") or {}).get("found") or {}
                if found and not found.get("rows") and not found.get("service_lines"):
                    where = "" if raw_dir is not None else \
                        f"; the bundle records what failed: {collected.path}/manifest.json"
                    _fail(f"nothing about the id could be collected: sources unreachable or incomplete "
                          f"({'; '.join(_incomplete_sources(collected)) or 'see the manifest'}){where}. "
                          f"Run `huledu-forensics check --profile {printable(prof.name, 60)}`.",
                          _report.EXIT_INCOMPLETE)
            assert bundle is not None
            code = _run_report(bundle, id_, out, since, until, timeout, notebook, redact_ids, show_code)
    except _DeadlineExceeded:
        _salvage(out)
        _timed_out(out, timeout)
    except ReportError as exc:
        if _from_deadline(exc):
            _timed_out(out, timeout)
        _fail(_one_line(exc), _report.EXIT_KIT_FAILED)
    except Exception as exc:  # the alarm may surface wrapped by a library (e.g. lark's VisitError)
        if not _from_deadline(exc):
            raise
        _salvage(out)
        _timed_out(out, timeout)
    finally:
        if raw_dir is not None:
            shutil.rmtree(raw_dir, ignore_errors=True)
    sys.exit(code)


LIVE_GROUPS_INVESTIGATED = 10
"""``report --notebook stuck_batches --profile``: how many signature groups (the largest) get one batch
collected and investigated; the other groups show the scan's error class only."""


def _collect_representatives(prof: Any, result: Any, scan_dir: Path, since: Any, budget_s: float) -> None:
    """Collect one bundle per signature group of a live scan (its example batch, the largest groups first)
    beside ``scan.json``, so the notebook investigates one batch per group and never every batch."""
    from . import collect
    from .overview import REPRESENTATIVES_DIR

    examples = [str(b) for b in result.groups["example_batch"].head(LIVE_GROUPS_INVESTIGATED)]
    for i, bid in enumerate(examples, start=1):
        click.echo(f"[report] collecting group {i}/{len(examples)}'s example batch {bid}", err=True)
        try:
            collect.snapshot(prof, bid, scan_dir / REPRESENTATIVES_DIR / bid, since=since, progress=True,
                             deadline_s=budget_s / len(examples))
        except ForensicsError as exc:  # the group keeps the scan's error class; the report says so
            click.echo(f"[report] batch {bid} not collected: {_one_line(exc)}", err=True)


def _group_line(group: dict[str, Any]) -> str:
    """One signature group of a live stuck-batches report: the scan's class (rows only), then the root
    cause found on the one batch investigated for it, said to be that batch's."""
    inv = group.get("investigated")
    found = (f"root cause on investigated batch {inv[F.BATCH_ID]}: {inv.get('root_cause') or 'none found'}"
             if inv else "not investigated (no bundle collected for it)")
    return f"group:    {group.get('count')} x {group.get('error_class')} -> {found}"


def _run_stack_report(bundle: Path | None, profile: str | None, config_file: Path | None, out: Path,
                      since: Any, timeout: float, notebook: str) -> int:
    """``report`` without ``--id``: a whole-stack notebook on a bundle, or on a live scan (--profile)."""
    from . import scan as _scan

    if profile is not None:
        from . import profiles

        prof = profiles.load_profile(profile, config_file)
        result = _scan.scan_profile(prof, since=since, progress=True)
        scan_dir = out / "scan"
        result.write(scan_dir)
        _collect_representatives(prof, result, scan_dir, since, timeout * COLLECT_SHARE)
        rep = _scan.run_scan_report(scan_dir, out, notebook=notebook, timeout_s=timeout,
                                    progress=sys.stderr.isatty())
        click.echo(result.render().splitlines()[0])
        for g in rep.verdict.get("groups") or []:
            click.echo(_group_line(g))
        click.echo(f"verdict:  {rep.verdict_path}")
        click.echo(f"report:   {rep.html_path}")
        click.echo(f"notebook: {rep.notebook_path}")
        click.echo(f"scan:     {scan_dir / _scan.SCAN_FILES['json']}")
        return int(rep.exit_code)
    assert bundle is not None
    rep = _report.run_report(bundle, None, out, notebook=notebook, since=since, timeout_s=timeout,  # type: ignore[arg-type]
                             progress=sys.stderr.isatty())
    counts = rep.verdict.get("counts") or {}
    click.echo("batches: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none"))
    click.echo(f"verdict:  {rep.verdict_path}")
    click.echo(f"report:   {rep.html_path}")
    click.echo(f"notebook: {rep.notebook_path}")
    if rep.bundle_path is not None:
        click.echo(f"bundle:   {rep.bundle_path}")
    return int(rep.exit_code)


@cli.command(epilog=_example("huledu-forensics scan --profile dev --since 2025-11-20T00:00:00Z --out ./scan"))
@click.option("--profile", help="Scan the live stack of this profile (read-only).")
@click.option("--bundle", type=click.Path(path_type=Path), help="Scan an evidence bundle instead.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Profiles config file.")
@click.option("--since", type=TIME, help="Only batches registered at or after this time (ISO 8601).")
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Write scan.json, stuck_batches.csv and groups.csv into this directory.")
@click.option("--limit", type=int, default=20, show_default=True, help="Stuck batches listed in the terminal.")
def scan(profile: str | None, bundle: Path | None, config_file: Path | None, since: Any, out: Path | None,
         limit: int) -> None:
    """List the stuck batches of a stack: every batch in BOS, ELS and the File Service, classified in SQL.

    Stuck batches are grouped by signature (state + awaited event + error class), biggest group first,
    then listed oldest first. Each error class says what database rows show (the scan reads no logs);
    batches a database or table that could not be read would decide are unknown.not_read:<source>.
    Progress goes to stderr.

    \b
    Exit codes:
      0  no batch is stuck
      1  stuck or failed batches were found
      2  a database could not be read, so the list may be incomplete
      3  the kit itself failed
      4  bad input
    """
    from . import scan as _scan

    if (bundle is None) == (profile is None):
        _fail("give exactly one of --profile NAME or --bundle PATH. Run `huledu-forensics scan --help`.",
              _report.EXIT_BAD_INPUT)
    if profile is not None:
        from . import profiles

        result = _scan.scan_profile(profiles.load_profile(profile, config_file), since=since, progress=True)
    else:
        assert bundle is not None
        result = _scan.scan_bundle(bundle, since=since, progress=True)
    click.echo(result.render(limit=limit))
    if out is not None:
        paths = result.write(out)
        click.echo(f"scan:     {paths['json']}")
        click.echo(f"stuck:    {paths['stuck']}")
        click.echo(f"groups:   {paths['groups']}")
    if not result.groups.empty:
        where = f"--profile {profile}" if profile else f"--bundle {bundle}"
        click.echo(f"next:     huledu-forensics why {result.groups.iloc[0]['example_batch']} {where}")
        click.echo("          (the scan read database rows only; `why` investigates that batch, logs included)")
    code = (_report.EXIT_INCOMPLETE if not result.complete
            else _report.EXIT_FINDINGS if result.stuck else _report.EXIT_HEALTHY)
    sys.exit(code)


@cli.command(epilog=_example("huledu-forensics why 278f7fd9-37fe-406a-a735-f15128cb6b1f --bundle ./bundle"))
@click.argument("id_", metavar="ID")
@click.option("--bundle", type=click.Path(path_type=Path), help="Evidence bundle directory.")
@click.option("--profile", help="Collect live from this profile first (read-only).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Profiles config file.")
@click.option("--since", type=TIME, help="Window start (ISO 8601, UTC if no offset).")
@click.option("--until", type=TIME, help="Window end (ISO 8601).")
@click.option("--keep", type=click.Path(path_type=Path), help="With --profile: keep the collected bundle here.")
def why(id_: str, bundle: Path | None, profile: str | None, config_file: Path | None, since: Any, until: Any,
        keep: Path | None) -> None:
    """Print the verdict for ID in the terminal (no notebook, no kernel).

    \b
    Exit codes (as report's):
      0  healthy
      1  findings: the batch is stuck or something is wrong
      2  evidence incomplete: the verdict may be wrong
      3  the kit itself failed
      4  bad input: unknown id, invalid bundle, bad option
    """
    import tempfile

    from .investigation import investigate

    if (bundle is None) == (profile is None):
        _fail("give exactly one of --bundle PATH or --profile NAME. Run `huledu-forensics why --help`.",
              _report.EXIT_BAD_INPUT)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if profile is not None:
            from . import collect, profiles

            prof = profiles.load_profile(profile, config_file)
            if keep is None:
                tmp = tempfile.TemporaryDirectory(prefix="huledu-why-")
                bundle = Path(tmp.name) / "bundle"
            else:
                bundle = keep
            collect.snapshot(prof, id_, bundle, since=since, until=until, progress=True)
        assert bundle is not None
        verdict = investigate(bundle, id_, since=since, until=until).verdict.to_json()
    finally:
        if tmp is not None:
            tmp.cleanup()
    click.echo(_report.verdict_summary(dict(verdict)))
    sys.exit(_report.exit_code_for_verdict(dict(verdict)))


@cli.command(epilog=_example(
    "huledu-forensics snapshot --profile dev --id 278f7fd9-37fe-406a-a735-f15128cb6b1f --out ./bundle"))
@click.option("--profile", required=True, help="Profile naming the stack's databases and Docker.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Profiles config file.")
@click.option("--id", "id_", required=True, help="Batch, correlation or essay id.")
@click.option("--since", type=TIME, help="Window start (ISO 8601).")
@click.option("--until", type=TIME, help="Window end (ISO 8601).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Bundle directory to write.")
@click.option("--timeout", type=POSITIVE_SECONDS, default=600, show_default=True,
              help="Collection deadline (s): sources still unread then are recorded as gaps.")
def snapshot(profile: str, config_file: Path | None, id_: str, since: Any, until: Any, out: Path,
             timeout: float) -> None:
    """Collect an evidence bundle for ID from a live stack (read-only).

    \b
    Exit codes:
      0  every source was read completely
      2  evidence incomplete: a source was missing or partial (the bundle says which and why)
      4  bad input: bad id, profile, DSN or option
    """
    from . import collect, profiles

    id_ = check_id(id_)
    prof = profiles.load_profile(profile, config_file)
    result = collect.snapshot(prof, id_, out, since=since, until=until, deadline_s=timeout)
    path = getattr(result, "path", out)
    click.echo(f"bundle: {printable(path)}")
    incomplete = _incomplete_sources(result)
    if incomplete:
        click.echo(f"evidence incomplete: {'; '.join(incomplete)} (see {printable(path)}/manifest.json)")
        sys.exit(_report.EXIT_INCOMPLETE)


@cli.command(epilog=_example("huledu-forensics check --profile dev"))
@click.option("--profile", required=True, help="Profile to check.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="Profiles config file.")
def check(profile: str, config_file: Path | None) -> None:
    """Check that every source of a profile can be reached (databases, Docker, logs).

    Exits 0 when all are reachable, 3 otherwise.
    """
    from . import profiles

    prof = profiles.load_profile(profile, config_file)
    result = profiles.check(prof)
    click.echo(printable(result.render(), keep_newlines=True))
    sys.exit(0 if result.ok else _report.EXIT_KIT_FAILED)


@cli.command(epilog=_example("huledu-forensics postmortem --bundle out/demo/bundle --out out/postmortem"))
@click.option("--bundle", type=click.Path(path_type=Path), required=True, help="Evidence bundle directory.")
@click.option("--id", "id_", help="Batch, correlation or essay id (default: the bundle's target batch).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Directory for postmortem.md and figures/.")
@click.option("--since", type=TIME, help="Window start (ISO 8601, UTC if no offset).")
@click.option("--until", type=TIME, help="Window end (ISO 8601).")
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures (no Chromium needed).")
def postmortem(bundle: Path, id_: str | None, out: Path, since: Any, until: Any, no_figures: bool) -> None:
    """Write a postmortem in Markdown, with PNG figures, for the batch in a bundle.

    The document follows the shape of a hand-written incident report: summary, identifiers, timeline,
    evidence chain with the queries to reproduce each piece, root cause, impact and next steps.
    """
    from .postmortem import write_postmortem

    if id_ is not None:
        id_ = check_id(id_)
    path = write_postmortem(bundle, id_, out, since=since, until=until, figures=not no_figures)
    click.echo(f"postmortem: {printable(path)}")
    figs = sorted((path.parent / "figures").glob("*.png"))
    for f in figs:
        click.echo(f"figure:     {printable(f)}")


@cli.command(epilog=_example("huledu-forensics scenarios"))
def scenarios() -> None:
    """List the simulator's scenarios (the demo runs seed_variant_a; the tests use all of them).
    """
    from . import simulate

    for name, description in simulate.SCENARIOS.items():
        click.echo(f"{name}\t{description}")


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
