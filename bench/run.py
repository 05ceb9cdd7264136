"""huledu-forensics benchmarks: ratios against baselines, measured in one run on the same data.

    make bench                      # full size: 1 GB of logs, 100k batches
    make bench BENCH_SCALE=0.1      # a tenth of it (100 MB, 10k batches), for development
    python bench/run.py --scale 0.1 --only logs

Everything is generated here (logs inflated from a simulator world; a world inflated to N batches in
PostgreSQL) into a temporary directory and temporary databases, and removed at the end. Timings are
the best of a few runs on a warm page cache; each ratio compares two measurements taken in this run.
Peak RSS is the child process's own ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLI = [PY, "-m", "huledu_forensics.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
WORKER = "huleedu_essay_lifecycle_worker"
GB = 1 << 30


@dataclass
class Row:
    name: str
    ours: str
    baseline: str
    ratio: str
    target: str
    met: str


ROWS: list[Row] = []


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def best(fn: Callable[[], float], n: int) -> float:
    return min(fn() for _ in range(max(1, n)))


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last (time, rss, ...)."""
    out = subprocess.run([PY, "-c", code], env=ENV, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child failed: {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_s(s: float) -> str:
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def add(name: str, ours: str, baseline: str, ratio: float | None, target: str, ok: bool | None) -> None:
    ROWS.append(Row(name, ours, baseline, "n/a" if ratio is None else f"{ratio:.2f}x", target,
                    "n/a" if ok is None else ("yes" if ok else "NO")))


def na(name: str, why: str, target: str) -> None:
    ROWS.append(Row(name, why, "", "", target, "n/a"))


# ---------------------------------------------------------------------------------------------
# Data: logs inflated from a simulator world


def inflate_logs(dest: Path, size: int) -> tuple[Path, str, int]:
    """Write the ELS worker log of ``seed_variant_a`` copied until ``size`` bytes: every copy on later
    days with its own batch id, except one copy in the middle that keeps the target batch id."""
    from huledu_forensics.simulate import build_world

    w = build_world("seed_variant_a")
    target = str(w.target["batch_id"])
    lines = w.logs[WORKER]["stdout"]
    text = "\n".join(lines) + "\n"
    dates = sorted(set(re.findall(r"\d{4}-\d\d-\d\d(?=[T ])", text)))
    import datetime as _dt

    base = [_dt.date.fromisoformat(d) for d in dates]
    span = (base[-1] - base[0]).days + 1
    date_re = re.compile("|".join(re.escape(d) for d in dates))
    copies = max(1, size // len(text.encode()))
    mid = copies // 2
    n_lines = 0
    with open(dest, "w", encoding="utf-8", newline="\n") as fh:
        for k in range(copies):
            shift = _dt.timedelta(days=k * span)
            mp = {d: (b + shift).isoformat() for d, b in zip(dates, base)}
            t = date_re.sub(lambda m, mp=mp: mp[m.group()], text)
            if k != mid:
                t = t.replace(target, str(uuid.UUID(int=k + 1)))
            fh.write(t)
            n_lines += len(lines)
    return dest, target, n_lines


def json_bodies(src: Path, dest: Path, max_bytes: int) -> tuple[Path, Path, int]:
    """The first ``max_bytes`` of ``src`` (whole lines), stamped, and the same lines' JSON bodies."""
    stamped = dest / "sample.log"
    bodies = dest / "sample.jsonl"
    n = 0
    with open(src, "rb") as fin, open(stamped, "wb") as fs, open(bodies, "wb") as fb:
        total = 0
        for line in fin:
            sp = line.find(b" ")
            body = line[sp + 1 :]
            if not body.startswith(b"{"):
                continue
            fs.write(line)
            fb.write(body)
            n += 1
            total += len(line)
            if total >= max_bytes:
                break
    return stamped, bodies, n


# ---------------------------------------------------------------------------------------------
# Benchmarks: logs


_PARSE_OURS = """
import json, time
from huledu_forensics.logs import parse_file
t = time.perf_counter(); df = parse_file({sample!r}, container={worker!r}); s = time.perf_counter() - t
print(json.dumps({{"s": s, "rows": len(df)}}))
"""
_PARSE_DUCK = """
import json, time, duckdb
t = time.perf_counter()
df = duckdb.connect().sql("SELECT * FROM read_json({bodies!r}, format='newline_delimited')").df()
print(json.dumps({{"s": time.perf_counter() - t, "rows": len(df)}}))
"""
_PARSE_ARROW = """
import json, time
import pyarrow.json as pj
t = time.perf_counter()
table = pj.read_json({bodies!r})
print(json.dumps({{"s": time.perf_counter() - t, "rows": table.num_rows}}))
"""
_PARSE_NAIVE = """
import json, time
import pandas as pd
t = time.perf_counter()
recs = []
with open({sample!r}, encoding="utf-8") as fh:
    for line in fh:
        recs.append(json.loads(line.split(" ", 1)[1]))
df = pd.DataFrame(recs)
print(json.dumps({{"s": time.perf_counter() - t, "rows": len(df)}}))
"""
_SCOPED_OURS = """
import json, resource, time
from huledu_forensics.logs import read_scoped
t = time.perf_counter(); df = read_scoped({big!r}, [{target!r}], container={worker!r}); s = time.perf_counter() - t
print(json.dumps({{"s": s, "rows": len(df), "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def interleaved(runs: dict[str, Callable[[], dict]], repeat: int) -> dict[str, dict]:
    """Run each measurement ``repeat`` times, taking turns (so a change in machine load hits every
    side alike); keep each side's fastest run."""
    out: dict[str, dict] = {}
    for _ in range(max(1, repeat)):
        for name, fn in runs.items():
            r = fn()
            if name not in out or r["s"] < out[name]["s"]:
                out[name] = r
    return out


def bench_full_parse(sample: Path, bodies: Path, n_lines: int, repeat: int) -> None:
    say(f"full parse of {n_lines} lines ({sample.stat().st_size / 1e6:.0f} MB)")
    kw = {"sample": str(sample), "bodies": str(bodies), "worker": WORKER}
    res = interleaved({
        "ours": lambda: child(_PARSE_OURS.format(**kw)),
        "duck": lambda: child(_PARSE_DUCK.format(**kw)),
        "naive": lambda: child(_PARSE_NAIVE.format(**kw)),
        "arrow": lambda: child(_PARSE_ARROW.format(**kw)),
    }, repeat)
    ours, duck, naive, arrow = res["ours"], res["duck"], res["naive"], res["arrow"]
    assert ours["rows"] == duck["rows"] == naive["rows"] == arrow["rows"] == n_lines, (ours, duck, naive, arrow, n_lines)
    lps = n_lines / ours["s"]
    r_duck = duck["s"] / ours["s"]
    r_naive = naive["s"] / ours["s"]
    add("full parse vs DuckDB read_json -> DataFrame (speed)", f"{fmt_s(ours['s'])} ({lps / 1e3:.0f}k lines/s)",
        fmt_s(duck["s"]), r_duck, ">= 0.7x", r_duck >= 0.7)
    add("full parse vs naive json.loads loop (speed)", fmt_s(ours["s"]), fmt_s(naive["s"]), r_naive,
        ">= 5x", r_naive >= 5)
    # the ceiling of the row above: Arrow's JSON decode of the same bodies alone (a Table: no ids,
    # levels, times, frame), as fast as the 5x row could get with that decoder
    add("decode floor: pyarrow read_json of the bodies alone vs naive loop", fmt_s(arrow["s"]), fmt_s(naive["s"]),
        naive["s"] / arrow["s"], "(ceiling of the 5x row)", None)


def bench_scoped(big: Path, target: str, n_lines: int, repeat: int) -> None:
    size = big.stat().st_size
    say(f"scoped read of {size / 1e6:.0f} MB vs grep -F")
    subprocess.run(["grep", "-cF", target, str(big)], capture_output=True, check=False)  # warm cache

    # grep's matches go to a file: GNU grep writing to /dev/null stops at the first match (as -q
    # does), which here is halfway through the file; the kit must find every line, so must grep
    hits = big.with_name("grep.out")

    def grep() -> dict:
        t = time.perf_counter()
        with open(hits, "wb") as out:
            subprocess.run(["grep", "-F", target, str(big)], stdout=out, check=False)
        return {"s": time.perf_counter() - t}

    kw = {"big": str(big), "target": target, "worker": WORKER}
    res = interleaved({"ours": lambda: child(_SCOPED_OURS.format(**kw)), "grep": grep}, repeat)
    ours, g = res["ours"], res["grep"]["s"]
    base_rss = child("""
import json, resource
import huledu_forensics.logs
print(json.dumps({"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")["rss"]
    r = ours["s"] / g
    add(f"scoped read {size / GB:.2f} GB ({n_lines / 1e6:.1f}M lines, {ours['rows']} rows) vs grep -F > file (time)",
        fmt_s(ours["s"]), fmt_s(g), r, "<= 3x", r <= 3)
    add("scoped read peak RSS (process, incl. imports)", f"{ours['rss']:.0f} MB",
        f"{base_rss:.0f} MB imports alone", None, "<= 300 MB", ours["rss"] <= 300)


# ---------------------------------------------------------------------------------------------
# Benchmarks: report, why


_FLOOR = """
import json, sys, time, nbformat, papermill
from nbconvert import HTMLExporter
t = time.perf_counter()
nb = nbformat.v4.new_notebook(); nb.cells.append(nbformat.v4.new_code_cell("pass"))
src, out = sys.argv[1] + "/empty.ipynb", sys.argv[1] + "/empty.out.ipynb"
nbformat.write(nb, src)
papermill.execute_notebook(src, out, kernel_name="python3", progress_bar=False, log_output=False)
html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
open(sys.argv[1] + "/empty.html", "w").write(html)
print(json.dumps({"s": time.perf_counter() - t}))
"""


def bench_report(work: Path, repeat: int) -> float | None:
    from huledu_forensics.bundle import write_world_bundle
    from huledu_forensics.simulate import build_world

    w = build_world("seed_variant_a")
    bundle = write_world_bundle(w, work / "demo-bundle").path
    batch = str(w.target["batch_id"])
    say("report vs the papermill + nbconvert floor")

    def floor() -> float:
        d = Path(tempfile.mkdtemp(dir=work))
        t = time.perf_counter()
        subprocess.run([PY, "-c", _FLOOR, str(d)], env=ENV, check=True, capture_output=True)
        return time.perf_counter() - t

    def report() -> float:
        d = work / f"report-{uuid.uuid4().hex[:6]}"
        t = time.perf_counter()
        p = subprocess.run([*CLI, "report", "--bundle", str(bundle), "--id", batch, "--out", str(d)],
                           env=ENV, capture_output=True, text=True, check=False)
        s = time.perf_counter() - t
        if p.returncode not in (0, 1, 2):
            raise RuntimeError(f"report exited {p.returncode}: {p.stderr.strip()[-500:]}")
        report.size = (d / "report.html").stat().st_size  # type: ignore[attr-defined]
        return s

    f = r = 1e9
    for _ in range(max(1, repeat)):  # taking turns, as interleaved()
        f, r = min(f, floor()), min(r, report())
    size = report.size / 1e6  # type: ignore[attr-defined]
    add("report (demo bundle) vs papermill+nbconvert on an empty notebook", fmt_s(r), fmt_s(f), r / f,
        "<= 1.5x", r / f <= 1.5)
    add("report.html size (demo)", f"{size:.1f} MB", "", None, "<= 3 MB", size <= 3)
    # why vs report
    probe = subprocess.run([*CLI, "why", "--help"], env=ENV, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        na("why vs report", "n/a (needs scan: `huledu-forensics why`)", "<= 1/3")
        return r

    def why() -> float:
        t = time.perf_counter()
        p = subprocess.run([*CLI, "why", batch, "--bundle", str(bundle)], env=ENV, capture_output=True,
                           text=True, check=False)
        s = time.perf_counter() - t
        if p.returncode not in (0, 1, 2):
            raise RuntimeError(f"why exited {p.returncode}: {p.stderr.strip()[-500:]}")
        return s

    y = best(why, repeat)
    add("why vs report (same bundle, same id)", fmt_s(y), fmt_s(r), y / r, "<= 0.33x", y / r <= 1 / 3)
    return r


# ---------------------------------------------------------------------------------------------
# Benchmarks: databases (scan, snapshot) -- need the scan module and simulate.inflate


def bench_db(work: Path, n_batches: int, repeat: int) -> None:
    try:
        from huledu_forensics.scan import scan_profile  # noqa: F401
        from huledu_forensics.simulate.inflate import inflate_world_into_postgres  # noqa: F401
    except ImportError:
        for name, target in (("scan of N batches vs pulling the tables into pandas", ">= 20x"),
                             ("single-batch snapshot on N vs 8 batches", "<= 2x")):
            na(name, "n/a (needs scan)", target)
        return
    from db import bench_db as run  # bench/db.py

    run(work, n_batches, repeat, add, na, say)


# ---------------------------------------------------------------------------------------------


def print_table(scale: float, started: float) -> None:
    head = ("benchmark", "ours", "baseline", "ratio", "target", "met")
    rows = [head] + [(r.name, r.ours, r.baseline, r.ratio, r.target, r.met) for r in ROWS]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    print(f"\nhuledu-forensics bench, scale {scale:g}, {os.cpu_count()} cores, "
          f"{time.time() - started:.0f} s in all")
    for i, r in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1")),
                    help="1 = 1 GB of logs and 100k batches (default); 0.1 for a quick run")
    ap.add_argument("--only", choices=("logs", "report", "db"), action="append",
                    help="run only these parts (repeatable)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (the best counts)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data (printed path)")
    args = ap.parse_args()
    parts = set(args.only or ("logs", "report", "db"))
    started = time.time()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    work = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    try:
        if "logs" in parts:
            size = int(GB * args.scale)
            say(f"generating {size / 1e6:.0f} MB of logs in {work}")
            big, target, n_lines = inflate_logs(work / f"{WORKER}.log", size)
            sample, bodies, n = json_bodies(big, work, max(8 << 20, size // 8))
            bench_full_parse(sample, bodies, n, args.repeat)
            bench_scoped(big, target, n_lines, args.repeat)
            big.unlink()
        if "report" in parts:
            bench_report(work, args.repeat)
        if "db" in parts:
            bench_db(work, max(16, int(100_000 * args.scale)), args.repeat)
    finally:
        if args.keep:
            say(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(args.scale, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
