"""Container logs from Grafana Loki (HuleEdu ships container stdout there through Promtail).

:class:`LokiSource` implements :class:`~huledu_forensics.sources.base.LogSource` over Loki's HTTP API
(``/loki/api/v1/query_range``, ``/loki/api/v1/label/<name>/values``, ``/ready``) with the standard
library only. HuleEdu's Promtail labels each stream with ``container`` (the container name) and keeps the
original line, so a container's lines are ``{container="<name>"}``; the scope's ids are pushed down as a
case-insensitive line filter ``|~ "(?i)id1|id2|…"`` so Loki only returns lines that can matter.

A line filter alone would lose the id-less lines the other sources keep: a traceback after a scoped error
line, or "offset not committed" after a handler failure. With ``follow=True`` (as
:class:`~huledu_forensics.sources.files.FilesSource` has) the filtered query only *finds* the matches;
the source then reads every line of the time ranges around them (from the start of the match's block, a
traceback's head however long before the line naming the id, to :data:`CONTEXT_AFTER` after it, which
covers :data:`huledu_forensics.logs.LINK_SECONDS`), so the one scope decision (collection's, or
:func:`huledu_forensics.logs.scope_filter` offline) sees the same neighbourhood it sees in a file. A
match that is not itself a block's first line costs one backward request to find that line, bounded by
:data:`BLOCK_LOOKBACK` and :data:`BLOCK_LOOKBACK_LINES`.

A window is read forward in pages of ``page_limit`` entries: the next page starts at the last entry's
time (Loki's ``start`` is inclusive), and entries already yielded at that boundary are skipped, so
entries sharing a timestamp across a page boundary are neither duplicated nor lost. Long windows are
split into spans no longer than ``max_query_span`` (Loki rejects longer ones). Each entry is yielded as
``"<RFC3339Nano stamp> <line>"``, exactly as ``docker logs --timestamps`` prints it, so downstream parsing
is the same as for Docker.

Anything that makes the result incomplete (a server limit, more same-time entries than a page holds, the
``max_lines`` cap, an open window start) is recorded in :attr:`LokiSource.warnings` (and passed to
``on_warning``); collection records those as partial completeness in the bundle manifest.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from .._time import utcnow
from ..errors import ConfigError, SourceUnavailable
from ..logs import LINK_SECONDS, _is_block_start
from .base import LogLine, Window
from .files import docker_stamp, to_ns

__all__ = ["BLOCK_LOOKBACK", "BLOCK_LOOKBACK_LINES", "CONTEXT_AFTER", "CONTEXT_BEFORE", "MERGE_GAP", "LokiSource",
           "logql_string", "regex_alternation"]

log = logging.getLogger(__name__)

_MAX_ENTRIES_RE = re.compile(r"max entries limit.*?\((\d+)\s*>\s*(\d+)\)", re.IGNORECASE | re.DOTALL)
_TIME_RANGE_RE = re.compile(r"query time range exceeds the limit|the query time range", re.IGNORECASE)
_RE2_META = set("\\.+*?()|[]{}^$")
_MIN_NS = -(2**63) + 1  # pandas' datetime64[ns] range: years 1677..2262
_MAX_NS = 2**63 - 1
_MAX_BODY = 256 << 20  # one answer larger than this is refused rather than held in memory

CONTEXT_BEFORE = timedelta(seconds=LINK_SECONDS)
"""With ``follow``, lines this long before a match are read too: the head of a block whose continuation
line names the id (Docker stamps a block's lines within milliseconds of each other)."""
CONTEXT_AFTER = timedelta(seconds=2 * LINK_SECONDS)
"""With ``follow``, lines this long after a match are read too: every id-less warning/error block that
may link to it (at most :data:`~huledu_forensics.logs.LINK_SECONDS` later) with its continuation lines."""
BLOCK_LOOKBACK = timedelta(minutes=5)
"""With ``follow``, how far before a match that continues a block (a traceback frame, a PostgreSQL
DETAIL line) its block's first line is looked for (as the files source looks back to the block start)."""
BLOCK_LOOKBACK_LINES = 1000
"""With ``follow``, how many lines before such a match are looked at for its block's first line."""
MERGE_GAP = timedelta(seconds=30)
"""With ``follow``, ranges closer than this are read as one (fewer requests for a few more lines)."""


def regex_alternation(values: Iterable[str]) -> str:
    """An RE2 alternation matching any of ``values`` literally (metacharacters escaped)."""
    return "|".join("".join("\\" + c if c in _RE2_META else c for c in v) for v in values)


def logql_string(value: str) -> str:
    """``value`` as a double-quoted LogQL string literal (backslashes and quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _ns_delta(delta: timedelta) -> int:
    return (delta // timedelta(microseconds=1)) * 1000


class LokiSource:
    """A :class:`~huledu_forensics.sources.base.LogSource` reading Loki's HTTP API.

    Args:
        url: Loki's base URL, e.g. ``http://localhost:3100``. ``user:password@`` in the URL is sent as
            basic auth and never shown in names, messages or warnings.
        page_limit: entries per ``query_range`` request (Loki's ``max_entries_limit_per_query`` defaults
            to 5000; a smaller server limit is detected and adopted with a warning).
        timeout: seconds per HTTP request.
        max_query_span: longest time span one request covers (Loki's ``max_query_length`` defaults to
            721 h); longer windows are split, and spans are halved if Loki still refuses.
        lookback: how far back an open-started window (or :meth:`containers`) reads.
        max_lines: stop a container after this many lines, with a warning (``None``: no cap).
        tenant: value of the ``X-Scope-OrgID`` header for multi-tenant Loki (``None``: not sent).
        on_warning: called with each completeness warning as it is recorded.

    Attributes:
        warnings: one-line completeness warnings recorded while reading.

    Raises:
        ConfigError: the URL is not an ``http(s)://host[:port]`` URL.
    """

    kind = "loki"

    def __init__(self, url: str, *, page_limit: int = 1000, timeout: float = 30.0,
                 max_query_span: timedelta = timedelta(hours=720), lookback: timedelta = timedelta(days=30),
                 max_lines: int | None = None, tenant: str | None = None,
                 on_warning: Callable[[str], None] | None = None) -> None:
        parts: SplitResult | None
        try:
            parts = urlsplit(url.strip()) if isinstance(url, str) else None
            port = parts.port if parts is not None else None  # 'notaport' raises ValueError here
        except ValueError:
            parts = port = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"Loki URL {_redact(str(url))!r} is not an http(s)://host:port URL; pass "
                              "Loki's base address, e.g. http://localhost:3100.")
        if page_limit < 1:
            raise ValueError("page_limit must be at least 1")
        self._auth: str | None = None
        if parts.username is not None:
            cred = f"{parts.username}:{parts.password or ''}".encode()
            self._auth = "Basic " + base64.b64encode(cred).decode()
        netloc = parts.hostname + (f":{port}" if port else "")
        self.url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.name = f"loki:{self.url}"
        self.page_limit = page_limit
        self.timeout = timeout
        self.max_query_span = max_query_span
        self.lookback = lookback
        self.max_lines = max_lines
        self.tenant = tenant
        self.warnings: list[str] = []
        self._on_warning = on_warning
        self.deadline: float | None = None
        """``time.monotonic()`` value after which no request is sent (the collection's own deadline);
        every request's timeout is cut to the time left."""
        self._down: str | None = None  # set once a request timed out: later requests fail at once

    # ------------------------------------------------------------------ HTTP
    def _request(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """GET ``path``; returns (status, body) for HTTP answers, raises SourceUnavailable otherwise."""
        full = self.url + path + ("?" + urlencode(params) if params else "")
        req = urllib.request.Request(full, headers={"Accept": "application/json",
                                                    "User-Agent": "huledu-forensics"})
        if self._auth:
            req.add_header("Authorization", self._auth)
        if self.tenant:
            req.add_header("X-Scope-OrgID", self.tenant)
        if self._down is not None:
            raise SourceUnavailable(self._down, source=self.name)
        timeout = self.timeout
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise SourceUnavailable(f"Loki at {self.url} was not asked: the collection's deadline had "
                                        "passed; what was read before is kept.", source=self.name)
            timeout = max(0.05, min(timeout, left))
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
                body = resp.read(_MAX_BODY + 1)
                if len(body) > _MAX_BODY:
                    raise SourceUnavailable(f"Loki at {self.url} sent more than {_MAX_BODY >> 20} MiB for "
                                            f"{path}; lower page_limit.", source=self.name)
                return resp.status, body
        except urllib.error.HTTPError as exc:
            body = exc.read(_MAX_BODY) if exc.fp is not None else b""
            return exc.code, body
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (socket.timeout, TimeoutError)) or isinstance(exc, (socket.timeout,
                                                                                        TimeoutError)):
                # a hung Loki: do not wait again for every container and page
                self._down = (f"Loki at {self.url} did not answer within {time.monotonic() - started:.1f} s "
                              "(timed out); later requests were not sent. Check that Loki is healthy.")
                raise SourceUnavailable(self._down, source=self.name) from exc
            raise SourceUnavailable(
                f"Cannot reach Loki at {self.url} ({reason}); check the URL and that Loki is up "
                f"(GET {self.url}/ready should answer 'ready').", source=self.name) from exc

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        status, body = self._request(path, params)
        if status != 200:
            raise SourceUnavailable(
                f"Loki at {self.url} answered HTTP {status} to {path}: {_short(body)}; check the Loki "
                "version (3.x expected) and its limits.", source=self.name)
        return self._decode(path, body)

    def _decode(self, path: str, body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise SourceUnavailable(f"Loki at {self.url} sent a non-JSON answer to {path} "
                                    f"({_short(body)}); is the URL really Loki's?", source=self.name) from exc
        if not isinstance(doc, dict) or doc.get("status") != "success":
            raise SourceUnavailable(f"Loki at {self.url} reported a failure for {path}: {_short(body)}.",
                                    source=self.name)
        return doc

    def _warn(self, message: str) -> None:
        if message in self.warnings:
            return
        self.warnings.append(message)
        log.warning("%s", message)
        if self._on_warning is not None:
            self._on_warning(message)

    # ------------------------------------------------------------------ API
    def ready(self) -> tuple[bool, str]:
        """Ask ``GET /ready``; returns ``(True, "ready")`` or ``(False, why)``. Never raises."""
        try:
            status, body = self._request("/ready")
        except SourceUnavailable as exc:
            return False, str(exc)
        text = body.decode("utf-8", "replace").strip()
        if status == 200 and text == "ready":
            return True, "ready"
        return False, f"Loki at {self.url} is not ready (HTTP {status}: {text[:200]})"

    def probe(self) -> tuple[bool, str]:
        """Ask ``/ready`` *and* the query API (label values and a one-entry ``query_range`` over the
        last hour): a Loki whose ``/ready`` answers while its queries fail is not usable. Never raises."""
        ok, why = self.ready()
        if not ok:
            return False, why
        try:
            now = utcnow()
            names = self.containers(Window(now - timedelta(hours=1), now))
            end = to_ns(now)
            doc = self._get_json("/loki/api/v1/query_range", {
                "query": '{container=~".+"}', "start": end - 3600 * 1_000_000_000, "end": end,
                "limit": 1, "direction": "forward"})
            self._entries(doc, "probe")
        except SourceUnavailable as exc:
            return False, f"/ready answers but the query API fails: {str(exc)[:300]}"
        return True, f"ready; the query API answers ({len(names)} container label(s) in the last hour)"

    def containers(self, window: Window | None = None) -> list[str]:
        """Values of the ``container`` label within ``window`` (default: the last ``lookback``).

        Raises:
            SourceUnavailable: Loki cannot be reached or refuses the request.
        """
        start, end = self._bounds(window or Window(), warn=False)
        doc = self._get_json("/loki/api/v1/label/container/values", {"start": start, "end": end})
        data = doc.get("data") or []
        if not isinstance(data, list):
            raise SourceUnavailable(f"Loki at {self.url} answered the label query with "
                                    f"{type(data).__name__} instead of a list.", source=self.name)
        return sorted(str(v) for v in data if isinstance(v, (str, int)))

    def query(self, container: str, contains_any: Iterable[str] | None = None) -> str:
        """The LogQL query :meth:`iter_lines` sends for ``container`` and the scope ids."""
        q = "{container=" + logql_string(container) + "}"
        ids = sorted({s.lower() for s in (contains_any or ()) if s})
        if ids:
            q += " |~ " + logql_string("(?i)" + regex_alternation(ids))
        return q

    def iter_lines(self, container: str, window: Window = Window(),
                   contains_any: Iterable[str] | None = None, *, follow: bool = False) -> Iterator[LogLine]:
        """Yield the container's entries in ``[window.since, window.until)``, oldest first.

        ``contains_any`` (``None`` or empty: no filter) is pushed down as a case-insensitive regex line
        filter (ids are matched regardless of case, as collection's own prefilter does). With ``follow``
        the filter only locates the matches, and every line from the first line of a match's block (at
        least :data:`CONTEXT_BEFORE` before it; looked for up to :data:`BLOCK_LOOKBACK` /
        :data:`BLOCK_LOOKBACK_LINES` back, with a warning when not found there) to :data:`CONTEXT_AFTER`
        after it is yielded (ranges closer than :data:`MERGE_GAP` read as one):
        the id-less lines after a scoped line (tracebacks, "offset not committed") are there for the
        scope decision, as :class:`~huledu_forensics.sources.files.FilesSource` yields them with
        ``follow``. The stream is the entry's ``stream`` label when it is ``stdout``/``stderr``, else
        ``combined``. ``max_lines`` caps the matches and the lines yielded alike.

        Raises:
            SourceUnavailable: Loki cannot be reached, or refuses a request for a reason other than a
                limit the source can work around.
        """
        ids = [s for s in (contains_any or ()) if s]
        start, end = self._bounds(window, warn=True, container=container)
        if follow and ids:
            return self._follow(container, self.query(container, ids), start, end)
        entries = self._iter(container, self.query(container, ids), start, end, self.max_lines)
        return (LogLine(container, stream, f"{docker_stamp(ns)} {line}") for ns, stream, line in entries)

    def _follow(self, container: str, hit_query: str, start: int, end: int) -> Iterator[LogLine]:
        """Every line of the ranges around the matches of ``hit_query`` (see :meth:`iter_lines`).

        Matches are read page by page and each range is read as soon as the next match falls beyond
        it, so memory holds one range's bounds, and what was read before a failure or the deadline has
        already been yielded.
        """
        before, after = _ns_delta(CONTEXT_BEFORE), _ns_delta(CONTEXT_AFTER)
        gap = _ns_delta(MERGE_GAP)
        every = self.query(container)
        left = self.max_lines  # lines still allowed (None: no cap)
        span: tuple[int, int] | None = None  # the range being grown, [lo, hi); ranges never overlap
        head: int | None = None  # the time of a block's first line inside span (later matches' blocks start after it)
        done = start  # everything before this was yielded (or is outside the window)

        def read(lo: int, hi: int) -> Iterator[LogLine]:
            nonlocal left
            for ns, stream, line in self._iter(container, every, lo, hi, left):
                if left is not None:
                    left -= 1
                yield LogLine(container, stream, f"{docker_stamp(ns)} {line}")

        for ns, _stream, line in self._iter(container, hit_query, start, end, self.max_lines):
            lo, hi = max(done, ns - before), min(end, ns + after)
            joins = span is not None and lo - span[1] <= gap
            if _is_block_start(line.encode("utf-8", "surrogateescape"), False):
                at = ns
            elif joins and head is not None and head <= ns:
                at = head  # the block starts at or after a first line already inside the range
            else:
                at = self._block_head(container, every, ns, max(done, start))
                lo = max(done, min(lo, at))
                joins = span is not None and lo - span[1] <= gap
            if span is not None and joins:
                span = (min(span[0], lo), max(span[1], hi))
                head = at if head is None else min(head, at)
                continue
            if span is not None:
                yield from read(*span)
                done = span[1]
                if left is not None and left <= 0:
                    return
            span, head = (max(done, lo), hi), at
        if span is not None and (left is None or left > 0):
            yield from read(*span)

    def _block_head(self, container: str, query: str, ns: int, floor: int) -> int:
        """The time of the first line of the block the line at ``ns`` continues: the latest line before
        it where a block starts (:func:`huledu_forensics.logs._is_block_start`), looked for no further
        back than ``floor``, :data:`BLOCK_LOOKBACK` and :data:`BLOCK_LOOKBACK_LINES` (one backward
        request). Not found within those bounds: the oldest line looked at, with a warning unless the
        window's start was reached."""
        lo = max(floor, ns - _ns_delta(BLOCK_LOOKBACK))
        if lo >= ns:
            return ns
        params: dict[str, Any] = {"query": query, "start": lo, "end": ns, "limit": min(self.page_limit, BLOCK_LOOKBACK_LINES),
                  "direction": "backward"}

        def adapt(params: dict[str, Any], _text: str) -> None:  # a smaller limit the server asked for
            params["limit"] = min(params["limit"], self.page_limit)

        entries = [e for e in self._query_range(container, params, adapt) if lo <= e[0] < ns]
        limit = params["limit"]
        for t, _stream, text in reversed(entries):
            if _is_block_start(text.encode("utf-8", "surrogateescape"), False):
                return t
        if len(entries) < limit and lo == floor:
            return floor  # every line back to the window's start continues the block
        self._warn(f"{container}: no block start within {BLOCK_LOOKBACK} or {limit} lines before the line at "
                   f"{docker_stamp(ns)}; its block was read from {docker_stamp(entries[0][0] if entries else lo)} "
                   "and may lack its first lines.")
        return entries[0][0] if entries else lo

    # ------------------------------------------------------------------ paging
    def _bounds(self, window: Window, *, warn: bool, container: str = "") -> tuple[int, int]:
        end = to_ns(window.until) if window.until is not None else to_ns(utcnow()) + 1_000_000_000
        if window.since is not None:
            start = to_ns(window.since)
        else:
            start = end - _ns_delta(self.lookback)
            if warn:
                self._warn(f"{container}: the window has no start, so Loki was read for the last "
                           f"{self.lookback} before its end only; give a window start to read further back.")
        return start, max(start, end)

    def _iter(self, container: str, query: str, start: int, end: int, cap: int | None
              ) -> Iterator[tuple[int, str, str]]:
        """``(ns, stream, line)`` of the entries of ``query`` in ``[start, end)``, oldest first, at most
        ``cap`` of them (``None``: no cap; reaching it is a completeness warning)."""
        span = max(1, _ns_delta(self.max_query_span))

        def adapt(params: dict[str, Any], text: str) -> None:  # a smaller limit or time range, as asked
            if _TIME_RANGE_RE.search(text):
                half = max(1, (params["end"] - params["start"]) // 2)
                params["end"] = min(end, params["start"] + half)
            params["limit"] = self.page_limit

        last_ts = -1  # everything before last_ts, and seen entries at last_ts, were already yielded
        seen_at_last: set[tuple[str, str]] = set()
        yielded = 0
        pages = 0
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + span)
            page_start = max(chunk_start, last_ts)
            while True:
                params: dict[str, Any] = {"query": query, "start": page_start, "end": chunk_end,
                          "limit": self.page_limit, "direction": "forward"}
                entries = self._query_range(container, params, adapt)
                if params["end"] != chunk_end:  # the server asked for a shorter time range: keep to it
                    chunk_end = params["end"]
                    span = chunk_end - page_start
                pages += 1
                new = 0
                for ns, stream, line in entries:
                    if ns < page_start or ns >= chunk_end:  # Loki answered outside what was asked
                        self._warn(f"{container}: Loki sent entries outside the requested window; they "
                                   "were dropped (the server does not honour start/end).")
                        continue
                    if ns < last_ts:
                        continue
                    key = (stream, line)
                    if ns == last_ts:
                        if key in seen_at_last:
                            continue
                        seen_at_last.add(key)
                    else:
                        last_ts, seen_at_last = ns, {key}
                    new += 1
                    yielded += 1
                    yield ns, stream, line
                    if cap is not None and yielded >= cap:
                        self._warn(f"{container}: stopped after {yielded} lines (max_lines) at "
                                   f"{docker_stamp(ns)}; later lines in the window were not read. Narrow "
                                   "the window or raise max_lines.")
                        return
                log.debug("loki %s: page %d, %d entries, %d new", container, pages, len(entries), new)
                if len(entries) < self.page_limit:
                    break  # this span is exhausted
                if new == 0:
                    # a full page of entries all at last_ts that were already yielded: more entries share
                    # that nanosecond than a page holds; step past it rather than loop forever
                    self._warn(f"{container}: more than {self.page_limit} entries share the time "
                               f"{docker_stamp(last_ts)}; some of them may be missing. Raise page_limit.")
                    page_start = last_ts + 1
                    last_ts, seen_at_last = last_ts + 1, set()
                    if page_start >= chunk_end:
                        break
                    continue
                page_start = last_ts
            chunk_start = chunk_end
        if pages > 1:
            log.info("loki %s: %d lines in %d pages", container, yielded, pages)

    def _query_range(self, container: str, params: dict[str, Any], adapt: Callable[[dict[str, Any], str], None]
                     ) -> list[tuple[int, str, str]]:
        """The entries of one ``query_range`` request for ``container``. A 400 the source can adapt to
        (:meth:`_adapt_to_limit`) calls ``adapt(params, error text)``, which updates ``params`` in
        place, and asks again; any other answer than 200 is :class:`SourceUnavailable`."""
        while True:
            status, body = self._request("/loki/api/v1/query_range", params)
            if status == 400 and self._adapt_to_limit(body, container):
                adapt(params, body.decode("utf-8", "replace"))
                continue
            if status != 200:
                raise SourceUnavailable(
                    f"Loki at {self.url} answered HTTP {status} to a query for container "
                    f"'{container}': {_short(body)}; check the query limits of that Loki.",
                    source=self.name)
            return self._entries(self._decode("/loki/api/v1/query_range", body), container)

    def _adapt_to_limit(self, body: bytes, container: str) -> bool:
        """React to a Loki limit error; True when the request should be retried."""
        text = body.decode("utf-8", "replace")
        m = _MAX_ENTRIES_RE.search(text)
        if m is not None and int(m.group(2)) >= 1 and int(m.group(2)) < self.page_limit:
            server_max = int(m.group(2))
            self._warn(f"{container}: Loki's max_entries_limit_per_query is {server_max}, below the "
                       f"page limit {self.page_limit}; reading on with pages of {server_max} "
                       "(more requests, same lines).")
            self.page_limit = server_max
            return True
        if _TIME_RANGE_RE.search(text):
            self._warn(f"{container}: Loki refused a query span as longer than its max_query_length; "
                       "reading on in shorter spans (more requests, same lines).")
            return True
        return False

    def _entries(self, doc: dict[str, Any], container: str = "") -> list[tuple[int, str, str]]:
        """All (ns, stream, line) of a ``streams`` answer, merged across streams in time order.

        Entries that are not ``[<ns as decimal text>, <line text>]`` with a time Docker can stamp
        (years 1678..2261) are skipped with a warning: one malformed entry never discards the others.

        Raises:
            SourceUnavailable: the answer is not a ``streams`` result at all.
        """
        data = doc.get("data") or {}
        if not isinstance(data, dict) or data.get("resultType", "streams") != "streams" or \
                not isinstance(data.get("result") or [], list):
            what = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise SourceUnavailable(f"Loki at {self.url} answered a log query with resultType "
                                    f"{str(what)[:40]!r} instead of 'streams'.", source=self.name)
        out: list[tuple[int, str, str]] = []
        bad = 0
        for s in data.get("result") or []:
            labels = s.get("stream") if isinstance(s, dict) else None
            values = s.get("values") if isinstance(s, dict) else None
            if not isinstance(values, list):
                bad += 1
                continue
            stream = labels.get("stream") if isinstance(labels, dict) else None
            stream = stream if stream in ("stdout", "stderr") else "combined"
            for v in values:
                try:
                    ns = int(v[0]) if isinstance(v[0], (str, int)) and not isinstance(v[0], bool) else None
                    line = v[1]
                except (TypeError, ValueError, IndexError, KeyError):
                    ns = line = None
                if ns is None or not isinstance(line, str) or not _MIN_NS <= ns <= _MAX_NS:
                    bad += 1
                    continue
                out.append((ns, stream, line))
        if bad:
            self._warn(f"{container or 'loki'}: Loki sent {bad} malformed entr{'y' if bad == 1 else 'ies'} "
                       "(not [time, line] or a time out of range); skipped, the other entries are kept.")
        out.sort(key=lambda e: e[0])  # stable: a stream's own order is kept for equal times
        return out


def _short(body: bytes, n: int = 300) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= n else text[:n] + "…"


def _redact(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    return re.sub(r"//[^/@]*@", "//", url)

