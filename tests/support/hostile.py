"""A generated hostile corpus: log lines, bundles and payloads built to break a forensics kit.

Nothing here is a hand-picked line. :func:`hostile_lines` builds, for every kind in :data:`KINDS`, lines
from a seeded generator that combines the kind's damage (encoding, framing, size, nesting, time,
control characters, markup) with the ids of the batch under investigation, so the lines are *in scope*
and travel all the way into timelines, verdicts, postmortems, notebooks and HTML. Each line is
``bytes`` (a log file is bytes; invalid UTF-8 must survive), without its terminating ``\\n``.

:func:`hostile_world` appends those lines to a simulator world's service logs and returns it with the
exact bytes per log file, so a test can check the bundle holds every input line byte for byte.
:func:`damaged_bundles` derives broken bundles (symlinks, ``../`` manifest paths, absolute paths,
altered hashes) from a good one.

Markup payloads call ``alert()`` *and* set ``window.__hf_pwned``: a browser test counts dialogs and reads
that flag, so any payload that executes is seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

CANARY = "Canary-Pw-7c1e9d"  # a password that must never appear in any output or child env

_JS = "window.__hf_pwned=(window.__hf_pwned||0)+1;alert(1)"
# HTML/JS/Markdown payload templates; {js} is the code, {n} a per-line nonce.
MARKUP_PAYLOADS: tuple[str, ...] = (
    "<script>{js}</script>",
    "<svg onload=\"{js}\"></svg>",
    "<img src=x{n} onerror=\"{js}\">",
    "<iframe srcdoc=\"<script>parent.{js}</script>\"></iframe>",
    "<a href=\"javascript:{js}\">click {n}</a>",
    "[click {n}](javascript:{js})",
    "![x{n}](javascript:{js})",
    "<details open ontoggle=\"{js}\">",
    "`</code><script>{js}</script>`",
    "``` </pre><script>{js}</script>",
    "| cell | <b onmouseover=\"{js}\">x</b> |",
    "\"><script>{js}</script>",
    "'><svg/onload={js}>",
    "<style>@import 'http://evil.invalid/{n}.css';</style>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"{js}\">",
    "$$\\href{{javascript:{js}}}{{x}}$$",
)
# Terminal control sequences: title set (OSC), clear screen (CSI), C1 CSI, bell, backspace.
ESCAPES: tuple[str, ...] = (
    "\x1b]0;pwned-title\x07", "\x1b[2J\x1b[H", "\x1b[31mRED\x1b[0m", "\x9b6n", "\x07", "\x08\x08\x08",
    "\x1bP+q\x1b\\", "\u202eevil\u202c", "\x00",
)

BAD_UTF8 = (b"\xff\xfe", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80")


@dataclass(frozen=True)
class Ctx:
    """What a generator needs: the scope's ids, a base time, a container and a seeded random."""

    batch_id: str
    correlation_id: str
    base: datetime
    rng: random.Random


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _json_line(ctx: Ctx, t: datetime, event: str, level: str = "error", **extra: object) -> str:
    rec = {"timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z", "level": level,
           "logger_name": "huleedu.hostile", "event": event, "batch_id": ctx.batch_id,
           "correlation_id": ctx.correlation_id, **extra}
    return json.dumps(rec, ensure_ascii=False)


def _t(ctx: Ctx, i: int) -> datetime:
    return ctx.base + timedelta(milliseconds=7 * i + ctx.rng.randint(0, 5))


def _payload(ctx: Ctx, i: int) -> str:
    tpl = MARKUP_PAYLOADS[i % len(MARKUP_PAYLOADS)]
    return tpl.format(js=_JS, n=ctx.rng.randint(0, 10**6))


# ---- generators: each yields bytes lines --------------------------------------------------------
def gen_invalid_utf8(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        body = _json_line(ctx, t, f"bytes follow {i}:").encode()
        bad = ctx.rng.choice(BAD_UTF8)
        cut = body.index(b":", body.index(b"bytes follow")) + 1
        yield f"{_stamp(t)} ".encode() + body[:cut] + bad + body[cut:]
        yield f"{_stamp(t)} plain {ctx.batch_id} ".encode() + bad * (i + 1)


def gen_huge_line(ctx: Ctx, n: int, size: int = 10 * 1024 * 1024) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        filler = "".join(ctx.rng.choice("abcdef0123456789") for _ in range(64)) * (size // 64)
        yield f"{_stamp(t)} ".encode() + _json_line(ctx, t, "huge " + filler[:size]).encode()


def gen_nul(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        # raw NUL inside a JSON string (not valid JSON any more) and NUL outside JSON
        yield (f"{_stamp(t)} ".encode()
               + _json_line(ctx, t, f"nul\x00inside {i}").replace("\\u0000", "\x00").encode())
        yield f"{_stamp(t)} raw\x00nul {ctx.batch_id}\x00".encode()


def gen_crlf(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        yield f"{_stamp(t)} ".encode() + _json_line(ctx, t, f"crlf {i}").encode() + b"\r"


def gen_lone_cr(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        yield (f"{_stamp(t)} ".encode() + _json_line(ctx, t, f"before\rafter {i}").replace("\\r", "\r")
               .encode())
        yield f"{_stamp(t)} text {ctx.batch_id} one\rtwo\r".encode() + b"three"


def gen_out_of_order(ctx: Ctx, n: int) -> Iterator[bytes]:
    times = [_t(ctx, i) for i in range(n)]
    ctx.rng.shuffle(times)
    for i, t in enumerate(times):
        inner = t - timedelta(hours=ctx.rng.choice([-30, -1, 0, 1, 26]))
        yield f"{_stamp(t)} ".encode() + _json_line(ctx, inner, f"out of order {i}").encode()


def gen_deep_json(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        depth = ctx.rng.choice([1_000, 10_000, 100_000])
        head = f'{{"batch_id": "{ctx.batch_id}", "level": "error", "event": "deep {i:d}", "x": '
        yield f"{_stamp(t)} ".encode() + (head + "[" * depth + "]" * depth + "}").encode()
        yield f"{_stamp(t)} ".encode() + (head + '{"a":' * depth + "1" + "}" * depth + "}").encode()


def gen_extreme_years(ctx: Ctx, n: int) -> Iterator[bytes]:
    stamps = ("9999-12-31T23:59:59.999999999Z", "0001-01-01T00:00:00.000000001Z",
              "2262-04-12T00:00:00.000000000Z", "1677-09-21T00:00:00.000000000Z",
              "0000-00-00T00:00:00.000000000Z", "2025-13-45T25:61:61.000000000Z")
    for i in range(n):
        s = stamps[i % len(stamps)]
        rec = {"timestamp": s.replace("999999999Z", "999999Z"), "level": "error", "event": f"year {i}",
               "batch_id": ctx.batch_id}
        yield f"{s} {json.dumps(rec)}".encode()
        yield f"{_stamp(_t(ctx, i))} ".encode() + json.dumps(rec).encode()


def gen_escapes(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        esc = ESCAPES[i % len(ESCAPES)]
        yield f"{_stamp(t)} ".encode() + _json_line(
            ctx, t, f"escape {esc} in message", error=f"err {esc}", exception=f"Boom{esc}: x").encode()
        yield f"{_stamp(t)} [error    ] raw escape {esc} batch {ctx.batch_id}".encode()


def gen_markup(ctx: Ctx, n: int) -> Iterator[bytes]:
    for i in range(n):
        t = _t(ctx, i)
        p = _payload(ctx, i)
        yield f"{_stamp(t)} ".encode() + _json_line(
            ctx, t, f"Error routing event {p}", error=f"{p}", exception=f"ValueError: {p}",
            event_type=p, topic=f"huleedu.{p}", logger_name=f"huleedu.{p}").encode()
        yield f"{_stamp(t)} [error    ] {p} batch_id={ctx.batch_id}".encode()


KINDS: dict[str, tuple[Callable[..., Iterator[bytes]], int]] = {
    "invalid_utf8": (gen_invalid_utf8, 6),
    "huge_line": (gen_huge_line, 1),
    "nul": (gen_nul, 4),
    "crlf": (gen_crlf, 4),
    "lone_cr": (gen_lone_cr, 4),
    "out_of_order": (gen_out_of_order, 12),
    "deep_json": (gen_deep_json, 3),
    "extreme_years": (gen_extreme_years, 6),
    "escapes": (gen_escapes, len(ESCAPES)),
    "markup": (gen_markup, len(MARKUP_PAYLOADS)),
}
"""Every hostile kind: generator and how many rounds it runs."""


def hostile_lines(batch_id: str, correlation_id: str, base: datetime, *, seed: int = 0,
                  kinds: tuple[str, ...] | None = None, huge_size: int = 10 * 1024 * 1024,
                  ) -> dict[str, list[bytes]]:
    """``{kind: [line bytes]}`` for every kind (or ``kinds``), deterministic for a seed."""
    out: dict[str, list[bytes]] = {}
    for k in kinds or tuple(KINDS):
        fn, n = KINDS[k]
        ctx = Ctx(batch_id, correlation_id, base, random.Random(f"{seed}:{k}"))
        out[k] = list(fn(ctx, n, huge_size) if k == "huge_line" else fn(ctx, n))
    return out


def as_text(line: bytes) -> str:
    """A line as the kit holds it in memory: UTF-8 with undecodable bytes kept (surrogateescape)."""
    return line.decode("utf-8", "surrogateescape")


def hostile_world(scenario: str = "seed_variant_a", *, container: str | None = None, seed: int = 0,
                  kinds: tuple[str, ...] | None = None, huge_size: int = 10 * 1024 * 1024):  # type: ignore[no-untyped-def]
    """A simulator world whose service log carries every hostile kind, and the lines added.

    Returns ``(world, container, stream, added)`` where ``added`` is ``[line bytes]`` in file order.
    """
    from huledu_forensics.simulate import build_world

    world = build_world(scenario, seed=0)
    batch = str(world.target.get("batch_id"))
    corr = str(world.target.get("registration_correlation_id") or world.target.get("correlation_id")
               or batch)
    names = sorted(world.logs)
    container = container or next((c for c in names if "batch_orchestrator" in c and "db" not in c),
                                  names[0])
    stream = sorted(world.logs[container])[0]
    base = world.collected_at - timedelta(minutes=5)
    added: list[bytes] = []
    for lines in hostile_lines(batch, corr, base, seed=seed, kinds=kinds, huge_size=huge_size).values():
        added.extend(lines)
    world.logs[container][stream] = list(world.logs[container][stream]) + [as_text(b) for b in added]
    return world, container, stream, added


# ---- damaged bundles -------------------------------------------------------------------------------
def _rewrite_manifest(bundle: Path, edit: Callable[[dict], None]) -> None:
    mp = bundle / "manifest.json"
    m = json.loads(mp.read_text())
    edit(m)
    mp.write_text(json.dumps(m))


def damaged_bundles(good: Path, root: Path, secret_file: Path) -> dict[str, Path]:
    """Copies of bundle ``good`` under ``root``, each damaged one way; ``secret_file`` is outside.

    Kinds: a log file replaced by a symlink to ``secret_file``; a symlinked directory; a manifest
    listing ``../`` and absolute paths (to ``secret_file``); a manifest that is not an object; a
    truncated Parquet file with its hash updated; a manifest whose file list is not a mapping.
    """
    out: dict[str, Path] = {}

    def copy(name: str) -> Path:
        dest = root / name
        shutil.copytree(good, dest, symlinks=True)
        out[name] = dest
        return dest

    m = json.loads((good / "manifest.json").read_text())
    some_log = next(r for r in m["files"] if r.startswith("logs/"))
    some_table = next(r for r in m["files"] if r.startswith("tables/"))

    b = copy("symlinked_log")
    (b / some_log).unlink()
    os.symlink(secret_file, b / some_log)
    b = copy("symlinked_log_unlisted")
    os.symlink(secret_file, b / "logs" / "zz_secret.log")
    b = copy("symlinked_dir")
    os.symlink(secret_file.parent, b / "logs" / "outside")
    b = copy("dotdot_path")
    rel = os.path.relpath(secret_file, b)
    _rewrite_manifest(b, lambda m: m["files"].__setitem__(rel, {"sha256": "0" * 64, "bytes": 1}))
    b = copy("dotdot_log_path")
    _rewrite_manifest(b, lambda m: m["files"].__setitem__(
        "logs/../../" + os.path.relpath(secret_file, b.parent), {"sha256": "0" * 64, "bytes": 1}))
    b = copy("absolute_path")
    _rewrite_manifest(b, lambda m: m["files"].__setitem__(str(secret_file), {"sha256": "0" * 64}))
    b = copy("manifest_not_object")
    (b / "manifest.json").write_text("[1, 2, 3]")
    b = copy("files_not_mapping")
    _rewrite_manifest(b, lambda m: m.__setitem__("files", ["a", "b"]))
    b = copy("deep_manifest")
    (b / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    b = copy("truncated_parquet")
    (b / some_table).write_bytes((b / some_table).read_bytes()[:20])
    b = copy("truncated_parquet_rehashed")  # damaged, yet its manifest agrees: only reading finds it
    every = [r for r in m["files"] if r.startswith("tables/")]
    for rel in every:
        (b / rel).write_bytes((b / rel).read_bytes()[:20])
    digests = {rel: hashlib.sha256((b / rel).read_bytes()).hexdigest() for rel in every}
    _rewrite_manifest(b, lambda m: [m["files"][r].update(sha256=d, bytes=20) for r, d in digests.items()])
    return out
