"""Redaction: bundles and reports that can be attached to a ticket without personal data or secrets.

Three guarantees, each with a function that enforces it and one that checks it:

* **Personal ids and file names** (:func:`redact_bundle`). User ids and organisation ids (BOS
  ``batches.name`` ``"<course> - <user_id>"``, ``processing_metadata.user_id/org_id``, the ELS tracker's
  ``user_id``/``org_id``, the File Service's ``file_uploads.user_id``, ``user_id``/``org_id`` anywhere in
  an outbox ``event_data``, and every occurrence of those values in any log line) become stable tokens
  ``user-<8 hex>`` / ``org-<8 hex>``; file names (``filename``, ``original_file_name``, ``file_name``),
  which may carry student names, become ``file-<8 hex>.<ext>``. The same value always gets the same
  token, in tables and in logs, so joins still work. Scope ids (batch, correlation, essay, storage,
  upload ids) are not personal data and are kept, so the redacted bundle investigates exactly like the
  original.
* **Essay text** (:data:`ESSAY_TEXT_FIELDS`). The kit never collects stored content; should a payload
  or a log line carry a field named ``text``, ``content``, ``essay_text`` or ``content_data`` anyway,
  :func:`redact_bundle` removes its value. :func:`find_text` greps a directory for known sentences.
* **Secrets** (:func:`scrub_secrets`, :func:`find_secrets`, :func:`assert_no_secrets`). Database
  passwords come from the profile's ``password_env`` variables (:func:`profile_secrets`); no file the
  kit writes may contain one, in plain, URL-encoded or JSON-escaped form.

The token of a value is ``sha256(key + kind + value)`` truncated to 8 hex digits; pass ``key`` to make
tokens unguessable for someone who can enumerate candidate user ids (the default key is empty, so
tokens are reproducible across bundles).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pandas as pd

from . import _fields as F
from . import model
from .bundle import Bundle, BundleWriter, SourceReport
from .errors import BundleInvalid, ConfigError, ForensicsError

__all__ = [
    "ESSAY_TEXT_FIELDS",
    "FILE_NAME_KEYS",
    "ORG_KEYS",
    "REDACTED_TEXT",
    "USER_KEYS",
    "Redactor",
    "assert_no_secrets",
    "find_secrets",
    "find_text",
    "is_redacted",
    "profile_secrets",
    "redact_bundle",
    "run_redacted_report",
    "scrub_secrets",
]

USER_KEYS = model.privacy.USER_KEYS
"""Keys (columns, JSON keys, log fields) whose values are user ids (declared in the model)."""
ORG_KEYS = model.privacy.ORG_KEYS
"""Keys whose values are organisation ids (declared in the model)."""
FILE_NAME_KEYS = model.privacy.FILE_NAME_KEYS
"""Keys whose values are uploaded file names (declared in the model). A ``filename`` ending in ``.py`` is
structlog's call site (the Python module that logged), not an upload, and is kept."""
ESSAY_TEXT_FIELDS = model.privacy.ESSAY_TEXT_FIELDS
"""Payload and log fields that could hold essay text (declared in the model); their values are removed."""
REDACTED_TEXT = "[removed: possible essay text]"
"""What replaces the value of an :data:`ESSAY_TEXT_FIELDS` field in a log line."""
SECRET_MASK = "***"

_MIN_SUBSTRING = 4  # shorter values are replaced only where a key names them, never as substrings
_PERSONAL_KEYS = "|".join(map(re.escape, USER_KEYS + ORG_KEYS + FILE_NAME_KEYS))
_ESSAY_TEXT_KEYS = "|".join(map(re.escape, ESSAY_TEXT_FIELDS))
_KEY_VALUE_RE = re.compile(
    rf"""(?P<q>["'])(?P<key>{_PERSONAL_KEYS})(?P=q)\s*:\s*"""
    r"""(?P<vq>["'])(?P<value>(?:\\.|(?!(?P=vq)).)*?)(?P=vq)""")
_KV_PLAIN_RE = re.compile(rf"(?<![\w.])(?P<key>{_PERSONAL_KEYS})="
                          r"(?P<value>[^\s,'\"}]+)")
_TEXT_FIELD_RE = re.compile(
    rf"""(?P<head>(?P<q>["'])(?:{_ESSAY_TEXT_KEYS})(?P=q)\s*:\s*)"""
    r"""(?P<vq>["'])(?:\\.|(?!(?P=vq)).)*(?P=vq)""")
# columns whose text embeds personal values, by table: (column, pattern whose user/org/file groups hold them)
_COMPOSED = {c.table: (c.column, re.compile(c.pattern)) for c in model.privacy.COMPOSED_NAMES}
_KIND_BY_KEY = {**{k: "user" for k in USER_KEYS}, **{k: "org" for k in ORG_KEYS},
                **{k: "file" for k in FILE_NAME_KEYS}}


def _is_code_file(value: str) -> bool:
    return value.endswith(".py")


@dataclass
class Redactor:
    """Maps personal values to stable tokens and rewrites text, JSON and frames with the map.

    Args:
        hash_ids: replace user and org ids (``False`` keeps them; file names and essay text are
            still removed).
        key: optional secret mixed into every hash.
    """

    hash_ids: bool = True
    key: str = ""
    values: dict[str, str] = field(default_factory=dict)  # original -> token
    counts: dict[str, int] = field(default_factory=lambda: {"user": 0, "org": 0, "file": 0})
    dropped_fields: int = 0
    _pattern: re.Pattern[str] | None = None

    # -- the map ---------------------------------------------------------------------------------
    def token(self, kind: str, value: str) -> str:
        """Return the token of ``value`` (``user-…``, ``org-…``, ``file-….ext``)."""
        digest = hashlib.sha256(f"{self.key}\x00{kind}\x00{value}".encode()).hexdigest()[:8]
        if kind == "file":
            ext = Path(value).suffix.lower()
            ext = ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ""
            return f"file-{digest}{ext}"
        return f"{kind}-{digest}"

    def learn(self, kind: str, value: Any) -> None:
        """Add a personal value of ``kind`` (``user``, ``org``, ``file``) to the map."""
        if not isinstance(value, str):
            if value is None or isinstance(value, (bool, dict, list, float)):
                return
            value = str(value)
        value = value.strip()
        if not value or value in self.values or _TOKEN_RE.fullmatch(value):
            return
        if kind == "file" and _is_code_file(value):
            return
        if kind in ("user", "org") and not self.hash_ids:
            return
        self.values[value] = self.token(kind, value)
        self.counts[kind] += 1
        self._pattern = None

    def learn_json(self, obj: Any) -> None:
        """Learn every personal value under a known key anywhere in a JSON value."""
        if isinstance(obj, dict):
            for k, v in obj.items():
                kind = _KIND_BY_KEY.get(str(k))
                if kind and isinstance(v, (str, int)) and not isinstance(v, bool):
                    self.learn(kind, v)
                else:
                    self.learn_json(v)
        elif isinstance(obj, list):
            for v in obj:
                self.learn_json(v)

    def learn_text(self, text: str) -> None:
        """Learn values written as ``"key": "value"``, ``'key': 'value'`` or ``key=value`` in a line."""
        for m in _KEY_VALUE_RE.finditer(text):
            self.learn(_KIND_BY_KEY[m.group("key")], m.group("value"))
        for m in _KV_PLAIN_RE.finditer(text):
            self.learn(_KIND_BY_KEY[m.group("key")], m.group("value"))

    # -- rewriting -------------------------------------------------------------------------------
    def _regex(self) -> re.Pattern[str] | None:
        if self._pattern is None:
            long = sorted((v for v in self.values if len(v) >= _MIN_SUBSTRING), key=len, reverse=True)
            forms: dict[str, str] = {}
            for v in long:
                forms.setdefault(v, self.values[v])
                escaped = json.dumps(v)[1:-1]
                forms.setdefault(escaped, self.values[v])
            self._forms = forms
            # whole values only: a short user id must never rewrite part of a batch or essay id
            self._pattern = re.compile("(?<![A-Za-z0-9])(?:" + "|".join(re.escape(f) for f in forms)
                                       + ")(?![A-Za-z0-9])") if forms else None
        return self._pattern

    def text(self, text: str) -> str:
        """Replace every known personal value in ``text`` and blank essay-text fields."""
        pattern = self._regex()
        if pattern is not None:
            text = pattern.sub(lambda m: self._forms[m.group(0)], text)
        return self._blank_text_fields(text)

    def _blank_text_fields(self, text: str) -> str:
        if not any(f'{q}{k}{q}' in text for k in ESSAY_TEXT_FIELDS for q in ('"', "'")):
            return text

        def blank(m: re.Match[str]) -> str:
            if REDACTED_TEXT in m.group(0):
                return m.group(0)
            self.dropped_fields += 1
            return f"{m.group('head')}{m.group('vq')}{REDACTED_TEXT}{m.group('vq')}"

        return _TEXT_FIELD_RE.sub(blank, text)

    def json(self, obj: Any) -> Any:
        """Return ``obj`` with known-key values tokenised, essay-text fields dropped, strings rewritten."""
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in ESSAY_TEXT_FIELDS:
                    self.dropped_fields += 1
                    continue
                kind = _KIND_BY_KEY.get(str(k))
                if kind and isinstance(v, str) and v.strip() in self.values:
                    out[k] = self.values[v.strip()]
                else:
                    out[k] = self.json(v)
            return out
        if isinstance(obj, list):
            return [self.json(v) for v in obj]
        if isinstance(obj, str):
            if obj.strip() in self.values:
                return self.values[obj.strip()]
            return self.text(obj)
        return obj

    def cell(self, value: Any, *, column: str, json_column: bool) -> Any:
        """Rewrite one table cell."""
        if value is None or not isinstance(value, str):
            return value
        if json_column:
            try:
                parsed = json.loads(value)
            except ValueError:
                return self.text(value)
            return json.dumps(self.json(parsed))
        if _KIND_BY_KEY.get(column) and value.strip() in self.values:
            return self.values[value.strip()]
        return self.text(value)

    def frame(self, database: str, table: str, df: pd.DataFrame) -> pd.DataFrame:
        """Return a rewritten copy of one table."""
        spec = model.TABLES.get((database, table))
        json_cols = set(spec.json_columns) if spec else set()
        out = df.copy()
        for col in out.columns:
            s = out[col]
            if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                is_json = col in json_cols or _looks_json(s)
                out[col] = s.map(lambda v, c=col, j=is_json: self.cell(v, column=c, json_column=j),
                                 na_action="ignore").astype(s.dtype if s.dtype != object else object)
        return out

    def learn_frame(self, database: str, table: str, df: pd.DataFrame) -> None:
        """Learn the personal values of one table (key columns, JSON keys, BOS batch names)."""
        for col in df.columns:
            s = df[col]
            if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
                continue
            kind = _KIND_BY_KEY.get(col)
            for v in s.dropna():
                if not isinstance(v, str):
                    continue
                if kind:
                    self.learn(kind, v)
                elif v[:1] in "{[":
                    try:
                        self.learn_json(json.loads(v))
                    except ValueError:
                        self.learn_text(v)
                else:
                    self.learn_text(v)
        column, pattern = _COMPOSED.get((database, table), ("", None))
        if pattern is not None and column in df.columns:
            for v in df[column].dropna():
                m = pattern.match(str(v))
                for kind, value in (m.groupdict() if m else {}).items():
                    if kind in self.counts:
                        self.learn(kind, value)


_TOKEN_RE = re.compile(r"(user|org)-[0-9a-f]{8}|file-[0-9a-f]{8}(\.[a-z0-9]{1,8})?")


def _looks_json(s: pd.Series) -> bool:
    sample = s.dropna().head(5)
    return bool(len(sample)) and all(isinstance(v, str) and v[:1] in "{[" for v in sample)


def _log_line(red: Redactor, line: str) -> str:
    """Rewrite one ``<docker ts> <payload>`` line; JSON payloads lose essay-text fields."""
    head, sep, payload = line.partition(" ")
    if not sep:
        head, payload = "", line
    body = payload.lstrip()
    if body.startswith("{") and any(f'"{k}"' in body for k in ESSAY_TEXT_FIELDS):
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            payload = json.dumps(_blank_json(red, obj))
    new = red.text(payload)
    return f"{head}{sep}{new}" if sep else new


def _blank_json(red: Redactor, obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ESSAY_TEXT_FIELDS and isinstance(v, (str, dict, list)):
                red.dropped_fields += 1
                out[k] = REDACTED_TEXT
            else:
                out[k] = _blank_json(red, v)
        return out
    if isinstance(obj, list):
        return [_blank_json(red, v) for v in obj]
    return obj


def _progress(enabled: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if enabled:
            print(f"[redact] {message}", file=sys.stderr, flush=True)
    return say


def redact_bundle(src: str | Path | Bundle, dst: str | Path, *, hash_ids: bool = True, key: str = "",
                  overwrite: bool = False, progress: bool = False) -> Bundle:
    """Write a redacted copy of bundle ``src`` to ``dst`` and return it.

    User and org ids become ``user-<hash>`` / ``org-<hash>``, file names ``file-<hash>.<ext>``, in
    every table and every log line (the same value gets the same token everywhere); payload fields that
    could hold essay text (:data:`ESSAY_TEXT_FIELDS`) are dropped from JSON columns and blanked in log
    lines. Scope ids, timestamps, enum label sets, container states, completeness reports and gaps are
    kept, so an investigation of the copy reaches the same verdict. The manifest's ``origin.redaction``
    records what was done (counts only, never the original values).

    Args:
        src: the bundle to redact (a directory or an opened bundle; it is verified first).
        dst: the directory of the redacted bundle.
        hash_ids: replace user and org ids (``False`` keeps them; file names and text still go).
        key: optional secret mixed into every token hash.
        overwrite: replace an existing bundle at ``dst``.
        progress: print one line per table / log file to stderr.

    Raises:
        BundleNotFound / BundleInvalid: ``src`` cannot be opened, or ``dst`` exists.
        ConfigError: ``dst`` is ``src``.
    """
    bundle = src if isinstance(src, Bundle) else Bundle.open(src)
    if Path(dst).resolve() == Path(bundle.path).resolve():
        raise ConfigError(f"Cannot redact bundle '{bundle.path}' onto itself. Pass another "
                          "destination directory.")
    say = _progress(progress)
    red = Redactor(hash_ids=hash_ids, key=key)
    tables = bundle.tables()
    logs = bundle.log_files()
    # pass 1: learn every personal value, so a value first seen in a log is also replaced in tables
    for db, table in tables:
        df = bundle.table(db, table)
        if df is not None:
            red.learn_frame(db, table, df)
    for container, stream, _ in logs:
        for line in bundle.iter_log_lines(container, stream):
            red.learn_text(line)
    say(f"{red.counts['user']} user id(s), {red.counts['org']} org id(s), {red.counts['file']} file "
        f"name(s) to replace in {len(tables)} table(s) and {len(logs)} log file(s)")
    # pass 2: write
    with BundleWriter(dst, overwrite=overwrite) as w:
        reports: dict[str, SourceReport] = {}
        for s in bundle.sources:
            rep = w.source(s.name, s.kind)
            rep.completeness = s.completeness
            rep.warnings = [red.text(x) for x in s.warnings]
            reports[s.name] = rep
        owner = {part: s.name for s in bundle.sources for part in s.parts}
        fallback = w.source("redact", "redact")

        def source_of(part: str) -> SourceReport:
            name = owner.get(part)
            return reports.get(name, fallback) if name is not None else fallback

        for i, (db, table) in enumerate(tables, 1):
            df = bundle.table(db, table)
            if df is None:
                continue
            say(f"table {i}/{len(tables)}: {db}.{table} ({len(df)} rows)")
            w.add_table(db, table, red.frame(db, table, df), source=source_of(f"tables/{db}/{table}.parquet"))
        for db, enums in bundle.enums.items():
            w.add_enums(db, enums, source=source_of(f"enums/{db}"))
        for c in bundle.containers:
            w.add_container(c, source=source_of("containers.json"))
        for i, (container, stream, _) in enumerate(logs, 1):
            say(f"log {i}/{len(logs)}: {container}/{stream}")
            w.add_log_lines(container, stream,
                            (_log_line(red, ln) for ln in bundle.iter_log_lines(container, stream)),
                            source=source_of(f"logs/{container}/{stream}.log"))
        for gap in bundle.gaps:
            gap_rep = reports.get(gap.get("source", ""))
            reason = red.text(str(gap.get("reason", "")))
            before = list(gap_rep.warnings) if gap_rep else []
            w.gap(str(gap.get("part", "")), reason, source=gap_rep)
            if gap_rep is not None:  # the original warnings already carry this gap
                gap_rep.warnings = before
        for s in bundle.sources:  # gap() may have marked a source partial: keep the original
            reports[s.name].completeness = s.completeness
        if not fallback.parts:
            w._sources.pop(fallback.name, None)  # noqa: SLF001 - an empty helper source says nothing
        manifest = bundle.manifest
        origin = json.loads(red.text(json.dumps(manifest.get("origin") or {})))
        origin["redaction"] = {
            "redacted": True,
            "ids_hashed": hash_ids,
            "keyed": bool(key),
            "method": "sha256, 8 hex digits",
            "user_ids": red.counts["user"],
            "org_ids": red.counts["org"],
            "file_names": red.counts["file"],
            "essay_text_fields_removed": red.dropped_fields,
            "source_bundle_created_at": manifest.get(F.CREATED_AT),
        }
        scope = json.loads(red.text(json.dumps(manifest.get("scope") or {})))
        out = w.finish(scope=scope, window=bundle.window, collected_at=bundle.collected_at, origin=origin)
    say(f"redacted bundle written to {out.path}")
    return out


def is_redacted(bundle: str | Path | Bundle) -> bool:
    """Whether a bundle was written by :func:`redact_bundle`."""
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle, verify=False)
    return bool(((b.manifest.get("origin") or {}).get("redaction") or {}).get("redacted"))


def run_redacted_report(bundle: str | Path | Bundle, any_id: str, out_dir: str | Path, *,
                        hash_ids: bool = True, key: str = "", **kw: Any) -> Any:
    """Redact ``bundle`` into ``<out_dir>/bundle``, then run the report on that copy.

    This is ``huledu-forensics report --redact-ids``: the report directory holds only redacted
    evidence. ``kw`` goes to :func:`huledu_forensics.report.run_report` (``since``, ``until``,
    ``timeout_s``, ``notebook``, ``progress``).

    Returns:
        The :class:`~huledu_forensics.report.ReportResult` (its ``bundle_path`` is the redacted copy).
    """
    from .report import BUNDLE_DIR, check_report_dir, run_report

    out = Path(out_dir)
    check_report_dir(out)
    dest = out / BUNDLE_DIR
    if dest.exists() or dest.is_symlink():  # replace only an earlier redacted copy, never a user's bundle
        try:
            replaceable = not dest.is_symlink() and is_redacted(dest)
        except ForensicsError:
            replaceable = False
        if not replaceable:
            raise BundleInvalid(f"'{dest}' already holds a bundle that is not a redacted copy; the kit "
                                "does not replace it. Pass another --out, or move it away.", path=str(dest))
    out.mkdir(parents=True, exist_ok=True)
    red = redact_bundle(bundle, dest, hash_ids=hash_ids, key=key, overwrite=True,
                        progress=bool(kw.get("progress", False)))
    return run_report(red, any_id, out, **kw)


# -- secrets ----------------------------------------------------------------------------------------
def _secret_forms(secret: str) -> list[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return sorted((f for f in forms if f), key=len, reverse=True)


def _clean(secrets: Iterable[str | None]) -> list[str]:
    return sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)


def profile_secrets(profile: Any) -> list[str]:
    """Return the passwords a profile can reach: its ``password_env`` values and DSN passwords."""
    import os

    from sqlalchemy.engine import make_url

    out: list[str | None] = []
    for t in getattr(profile, "databases", {}).values():
        if t.password_env:
            out.append(os.environ.get(t.password_env))
        try:
            out.append(make_url(t.dsn).password)
        except Exception:  # noqa: BLE001 - an unparseable DSN holds no password we can name
            pass
    for url in (getattr(profile, "loki_url", None), getattr(profile, "docker_url", None)):
        if url and "@" in url and "://" in url:
            creds = url.split("://", 1)[1].rsplit("@", 1)[0]
            if ":" in creds:
                out.append(creds.split(":", 1)[1])
    return _clean(out)


def scrub_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every secret (plain, URL-encoded, JSON-escaped) in ``text`` with ``***``."""
    for s in _clean(secrets):
        for form in _secret_forms(s):
            text = text.replace(form, SECRET_MASK)
    return text


def _contents(path: Path) -> bytes:
    """A file's bytes; for Parquet also its decoded rows (compression could hide a value)."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        try:
            data += b"\n" + pd.read_parquet(path).to_csv(index=False).encode()
        except Exception:  # noqa: BLE001 - an unreadable file is searched as bytes only
            pass
    return data


def _files(directory: str | Path) -> Iterator[Path]:
    root = Path(directory)
    if root.is_file():
        yield root
        return
    for p in sorted(root.rglob("*")):
        if p.is_file():
            yield p


def find_text(directory: str | Path, needles: Iterable[str]) -> list[tuple[Path, str]]:
    """Return ``(file, needle)`` for every needle found in any file under ``directory``.

    Files are searched as bytes (Parquet files also as their decoded rows), so tables, logs, HTML and
    notebooks are all covered; needles are looked for as UTF-8 and in their JSON-escaped form.
    """
    wanted = [(n, {n.encode(), json.dumps(n)[1:-1].encode()}) for n in needles if n]
    hits: list[tuple[Path, str]] = []
    for p in _files(directory):
        data = _contents(p)
        for n, forms in wanted:
            if any(f in data for f in forms):
                hits.append((p, n))
    return hits


def find_secrets(directory: str | Path, secrets: Iterable[str | None]) -> list[Path]:
    """Return every file under ``directory`` holding a secret (plain, URL-encoded or JSON-escaped)."""
    found: list[Path] = []
    forms = [f.encode() for s in _clean(secrets) for f in _secret_forms(s)]
    if not forms:
        return found
    for p in _files(directory):
        data = _contents(p)
        if any(f in data for f in forms):
            found.append(p)
    return found


def assert_no_secrets(directory: str | Path, secrets: Iterable[str | None]) -> None:
    """Raise ``AssertionError`` naming the files (never the secret) when any holds a secret."""
    found = find_secrets(directory, secrets)
    if found:
        raise AssertionError(f"{len(found)} file(s) under {directory} contain a secret: "
                             + ", ".join(str(p) for p in found[:20]))
