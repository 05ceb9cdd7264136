"""A small in-memory Loki for tests: real HTTP on 127.0.0.1, Loki's documented JSON shapes.

:class:`FakeLoki` serves the part of Loki's HTTP API the kit (and similar clients) use:

- ``GET /ready`` → ``200 ready``
- ``GET /loki/api/v1/query_range`` with ``query``, ``start`` (inclusive), ``end`` (exclusive), ``limit``
  (default 100), ``direction`` (``forward``/``backward``, default backward) → ``resultType: streams``
- ``GET /loki/api/v1/labels`` and ``GET /loki/api/v1/label/<name>/values`` (``start``/``end`` default
  to the last 6 hours, as in Loki; optional ``query`` selector)
- ``POST /loki/api/v1/push`` with a JSON ``{"streams": [{"stream": {...}, "values": [[ns, line]]}]}``

LogQL subset: a stream selector ``{a="x", b!="y", c=~"re", d!~"re"}`` (regexes fully anchored, as in
Loki) followed by any chain of line filters ``|= "s"``, ``!= "s"``, ``|~ "re"``, ``!~ "re"``; strings in
double quotes (Go escapes) or backticks. Server limits: ``max_entries_limit_per_query`` (HTTP 400 when
``limit`` exceeds it) and ``max_query_length`` (HTTP 400 when ``end - start`` exceeds it), with Loki
3.1's error texts. Every request served is recorded in :attr:`FakeLoki.requests`.

Example::

    with FakeLoki() as loki:
        loki.load_world(world)
        src = LokiSource(loki.url)
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .. import model
from ..sources.files import split_docker_stamp, to_ns
from ..world import World

__all__ = ["FAULTS", "FakeLoki", "LogQLError", "ServedRequest", "parse_logql"]

_DEFAULT_LABEL_LOOKBACK_NS = 6 * 3600 * 1_000_000_000
_DEFAULT_QUERY_LOOKBACK_NS = 3600 * 1_000_000_000


class LogQLError(ValueError):
    """The query is outside the LogQL subset the fake understands (served as HTTP 400)."""


@dataclass(frozen=True)
class ServedRequest:
    """One request the fake served: method, path, decoded query parameters and the status sent."""

    method: str
    path: str
    params: dict[str, str]
    status: int


@dataclass
class _Query:
    matchers: list[tuple[str, str, str]]  # (label, op, value)
    filters: list[tuple[str, str]]  # (op, value)
    _compiled: dict[str, re.Pattern[str]] = field(default_factory=dict)

    def _re(self, pattern: str, anchored: bool) -> re.Pattern[str]:
        key = ("^" if anchored else "") + pattern
        if key not in self._compiled:
            try:
                self._compiled[key] = re.compile(f"(?:{pattern})\\Z" if anchored else pattern)
            except re.error as exc:
                raise LogQLError(f"parse error : invalid regexp {pattern!r}: {exc}") from exc
        return self._compiled[key]

    def selects(self, labels: Mapping[str, str]) -> bool:
        for name, op, value in self.matchers:
            have = labels.get(name, "")
            if op == "=" and have != value:
                return False
            if op == "!=" and have == value:
                return False
            if op == "=~" and not self._re(value, True).match(have):
                return False
            if op == "!~" and self._re(value, True).match(have):
                return False
        return True

    def keeps(self, line: str) -> bool:
        for op, value in self.filters:
            if op == "|=" and value not in line:
                return False
            if op == "!=" and value in line:
                return False
            if op == "|~" and not self._re(value, False).search(line):
                return False
            if op == "!~" and self._re(value, False).search(line):
                return False
        return True


_TOKEN_RE = re.compile(r"\s*(?:(\|=|\|~|!=|!~|=~|=)|([A-Za-z_][A-Za-z0-9_]*)|(\"(?:[^\"\\]|\\.)*\"|`[^`]*`)"
                       r"|([{},]))", re.DOTALL)


def _unquote(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]
    try:
        return str(json.loads(tok))
    except json.JSONDecodeError:
        # Go allows escapes JSON does not (\a, \v, \'); fall back to a literal reading of the rest
        return re.sub(r"\\(.)", r"\1", tok[1:-1])


def parse_logql(query: str) -> _Query:
    """Parse the supported LogQL subset; raise :class:`LogQLError` with Loki-like text otherwise."""
    toks: list[tuple[str, str]] = []
    pos = 0
    q = query.strip()
    while pos < len(q):
        m = _TOKEN_RE.match(q, pos)
        if m is None or m.end() == pos:
            raise LogQLError(f"parse error at line 1, col {pos + 1}: syntax error: unexpected "
                             f"{q[pos:pos + 10]!r}")
        op, ident, string, punct = m.groups()
        if op:
            toks.append(("op", op))
        elif ident:
            toks.append(("ident", ident))
        elif string:
            toks.append(("str", _unquote(string)))
        elif punct:
            toks.append((punct, punct))
        pos = m.end()
        while pos < len(q) and q[pos].isspace():
            pos += 1
    if not toks or toks[0][0] != "{":
        raise LogQLError("parse error : queries require a stream selector such as {container=\"x\"}")
    i, matchers = 1, []
    while i < len(toks) and toks[i][0] != "}":
        if i + 2 >= len(toks) or toks[i][0] != "ident" or toks[i + 1][0] != "op" or toks[i + 2][0] != "str" \
                or toks[i + 1][1] not in ("=", "!=", "=~", "!~"):
            raise LogQLError(f"parse error : syntax error in stream selector of {query!r}")
        matchers.append((toks[i][1], toks[i + 1][1], toks[i + 2][1]))
        i += 3
        if i < len(toks) and toks[i][0] == ",":
            i += 1
    if i >= len(toks):
        raise LogQLError(f"parse error : unclosed stream selector in {query!r}")
    if not matchers:
        raise LogQLError("parse error : queries require at least one regexp or equality matcher that does "
                         "not have an empty-compatible value. For instance, app=~\".*\" does not meet this "
                         "requirement, but app=~\".+\" will")
    i += 1
    filters = []
    while i < len(toks):
        if toks[i][0] != "op" or toks[i][1] not in ("|=", "!=", "|~", "!~") or i + 1 >= len(toks) \
                or toks[i + 1][0] != "str":
            raise LogQLError(f"parse error : unsupported pipeline stage in {query!r} (the fake knows line "
                             "filters |= != |~ !~ only)")
        filters.append((toks[i][1], toks[i + 1][1]))
        i += 2
    out = _Query(matchers, filters)
    for _name, op, value in matchers:  # compile now so a bad regexp is a 400, not a 500
        if op in ("=~", "!~"):
            out._re(value, True)
    for op, value in filters:
        if op in ("|~", "!~"):
            out._re(value, False)
    return out


def _parse_time(value: str | None, default: int) -> int:
    """Loki's time parameter: integer ns (or seconds if <= 10 digits), float seconds, or RFC3339."""
    if value is None or value == "":
        return default
    if re.fullmatch(r"-?\d+", value):
        n = int(value)
        return n * 1_000_000_000 if len(value.lstrip("-")) <= 10 else n
    if re.fullmatch(r"-?\d+\.\d*", value):
        whole, _, frac = value.partition(".")
        return int(whole) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])
    split = split_docker_stamp(value)
    if split is None or split[1]:
        raise ValueError(f'invalid parameter "{value}": cannot parse as a timestamp')
    return split[0]


def _go_duration(ns: int) -> str:
    secs = ns // 1_000_000_000
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m}m{s}s"


class _Stream:
    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.entries: list[tuple[int, int, str]] = []  # (ns, seq, line), sorted
        self.keys: set[tuple[int, str]] = set()


class FakeLoki:
    """An in-memory Loki serving real HTTP on ``127.0.0.1`` (an ephemeral port by default).

    Args:
        max_entries_limit_per_query: requests with a larger ``limit`` get Loki's HTTP 400 (default 5000).
        max_query_length: requests spanning more than this get Loki's HTTP 400 (default 721 h, as in
            Loki 3.1); ``None`` disables the check.
        port: TCP port; 0 picks a free one.

    Attributes:
        requests: every request served, in order (:class:`ServedRequest`).
        ready: what ``GET /ready`` reports; set ``False`` to simulate a starting Loki (503).
        fault: ``None`` (a healthy Loki) or one of :data:`FAULTS`, applied to the query API
            (``query_range`` and label endpoints; ``/ready`` keeps answering ``ready``):

            - ``empty``: every answer is a success with no data;
            - ``slow``: every answer comes after ``fault_delay_s`` seconds;
            - ``hung``: no answer at all until the fake is stopped;
            - ``query_fails``: HTTP 500, as a Loki whose storage is broken;
            - ``malformed``: real entries mixed with malformed ones (not ``[ns, line]``, times out
              of range, non-string lines, streams without values);
            - ``wrong_type``: a ``matrix`` result instead of ``streams``;
            - ``not_json``: HTTP 200 with an HTML body;
            - ``deep_json``: HTTP 200 with JSON nested 100 000 levels deep;
            - ``out_of_window``: real entries plus entries far outside the requested window.
        fault_after: the number of query API requests (label and ``query_range``) answered normally
            before ``fault`` applies (to test that what was read before a fault is kept).
        fault_delay_s: the delay of ``slow``.
    """

    def __init__(self, *, max_entries_limit_per_query: int = 5000,
                 max_query_length: timedelta | None = timedelta(hours=721), port: int = 0) -> None:
        self.max_entries_limit_per_query = max_entries_limit_per_query
        self.max_query_length = max_query_length
        self.requests: list[ServedRequest] = []
        self.ready = True
        self.fault: str | None = None
        self.fault_after = 0
        self.fault_delay_s = 0.5
        self._release = threading.Event()
        self._served_queries = 0
        self._streams: dict[tuple[tuple[str, str], ...], _Stream] = {}
        self._seq = 0
        self._lock = threading.RLock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43121`` (the server must be started)."""
        if self._server is None:
            raise RuntimeError("FakeLoki is not running; call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLoki:
        """Start serving in a background thread; returns ``self``."""
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            owner = fake

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-loki", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (requests held by the ``hung`` fault are let go)."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLoki:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ data
    def push(self, labels: Mapping[str, str], entries: Iterable[tuple[datetime | int, str]]) -> int:
        """Add entries to the stream with ``labels``; times are aware datetimes or epoch ns.

        Like Loki, an entry identical to one already in the stream (same time, same line) is dropped.
        Returns the number of entries stored.
        """
        key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        if not key:
            raise ValueError("a Loki stream needs at least one label")
        stored = 0
        with self._lock:
            stream = self._streams.setdefault(key, _Stream(dict(key)))
            for ts, line in entries:
                ns = to_ns(ts) if isinstance(ts, datetime) else int(ts)
                if (ns, line) in stream.keys:
                    continue
                stream.keys.add((ns, line))
                self._seq += 1
                bisect.insort(stream.entries, (ns, self._seq, line))
                stored += 1
        return stored

    def load_world(self, world: World) -> int:
        """Push every container log of ``world`` as Promtail would ship it; returns entries stored.

        Each line's Docker stamp becomes the entry time and is stripped from the line. Labels:
        ``container`` (the name), ``service`` (the compose service from the model), ``stream``
        (``stdout``/``stderr`` when the world keeps that stream apart; absent for interleaved logs,
        whose stream is unknown) and ``level`` (from a JSON line's ``level``, as HuleEdu's Promtail
        does). A line without a stamp takes the previous line's time.
        """
        total = 0
        for cname, streams in world.logs.items():
            spec = model.CONTAINERS.get(cname)
            base = {"container": cname, "service": spec.compose_service if spec else cname}
            for stream, lines in streams.items():
                labels = dict(base)
                if stream in ("stdout", "stderr"):
                    labels["stream"] = stream
                batches: dict[str | None, list[tuple[int, str]]] = {}
                prev: int | None = None
                for line in lines:
                    split = split_docker_stamp(line)
                    if split is None:
                        if prev is None:
                            continue
                        split = (prev, line)
                    prev, text = split
                    batches.setdefault(_json_level(text), []).append((prev, text))
                for level, entries in batches.items():
                    total += self.push({**labels, "level": level} if level else labels, entries)
        return total

    def entry_count(self) -> int:
        """Number of entries held."""
        with self._lock:
            return sum(len(s.entries) for s in self._streams.values())

    def queries(self) -> list[str]:
        """The LogQL ``query`` of every ``query_range`` request served, in order."""
        return [r.params.get("query", "") for r in self.requests if r.path.endswith("/query_range")]

    # ------------------------------------------------------------------ API
    def _record(self, method: str, path: str, params: dict[str, str], status: int) -> None:
        with self._lock:
            self.requests.append(ServedRequest(method, path, params, status))

    def _query_range(self, params: dict[str, str]) -> tuple[int, Any]:
        now = time.time_ns()
        try:
            end = _parse_time(params.get("end"), now)
            start = _parse_time(params.get("start"), end - _DEFAULT_QUERY_LOOKBACK_NS)
            limit = int(params.get("limit") or 100)
        except ValueError as exc:
            return 400, str(exc)
        direction = (params.get("direction") or "backward").lower()
        if direction not in ("forward", "backward"):
            return 400, f'invalid parameter "direction": must be forward or backward, got {direction}'
        if end < start:
            return 400, "end timestamp must not be before or equal to start time"
        if limit <= 0:
            return 400, "limit must be a positive value"
        if limit > self.max_entries_limit_per_query:
            return 400, (f"max entries limit per query exceeded, limit > max_entries_limit "
                         f"({limit} > {self.max_entries_limit_per_query})")
        if self.max_query_length is not None:
            max_ns = _ns_delta(self.max_query_length)
            if end - start > max_ns:
                return 400, (f"the query time range exceeds the limit (query length: "
                             f"{_go_duration(end - start)}, limit: {_go_duration(max_ns)})")
        try:
            q = parse_logql(params.get("query", ""))
        except LogQLError as exc:
            return 400, str(exc)
        hits: list[tuple[int, int, str, tuple[tuple[str, str], ...]]] = []
        scanned = 0
        with self._lock:
            for key, stream in self._streams.items():
                if not q.selects(stream.labels):
                    continue
                lo = bisect.bisect_left(stream.entries, (start, -1, ""))
                hi = bisect.bisect_left(stream.entries, (end, -1, ""))
                idx = range(lo, hi) if direction == "forward" else range(hi - 1, lo - 1, -1)
                kept = 0
                for i in idx:  # at most `limit` from each stream can make the merged answer
                    ns, seq, line = stream.entries[i]
                    scanned += 1
                    if q.keeps(line):
                        hits.append((ns, seq, line, key))
                        kept += 1
                        if kept >= limit:
                            break
        hits.sort(key=lambda h: (h[0], h[1]), reverse=direction == "backward")
        hits = hits[:limit]
        by_stream: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for ns, _seq, line, key in hits:
            by_stream.setdefault(key, []).append([str(ns), line])
        result = [{"stream": dict(key), "values": values} for key, values in by_stream.items()]
        stats = {"summary": {"totalEntriesReturned": len(hits), "totalLinesProcessed": scanned,
                             "execTime": 0.0, "queueTime": 0.0, "subqueries": 0}}
        return 200, {"status": "success",
                     "data": {"resultType": "streams", "result": result, "stats": stats}}

    def _label_scope(self, params: dict[str, str]) -> tuple[int, Any]:
        now = time.time_ns()
        try:
            end = _parse_time(params.get("end"), now)
            start = _parse_time(params.get("start"), end - _DEFAULT_LABEL_LOOKBACK_NS)
            q = parse_logql(params["query"]) if params.get("query") else None
        except (ValueError, LogQLError) as exc:
            return 400, str(exc)
        streams = []
        with self._lock:
            for stream in self._streams.values():
                if q is not None and not q.selects(stream.labels):
                    continue
                lo = bisect.bisect_left(stream.entries, (start, -1, ""))
                if lo < len(stream.entries) and stream.entries[lo][0] < end:
                    streams.append(stream.labels)
        return 200, streams

    def _push(self, body: bytes, content_type: str) -> tuple[int, Any]:
        if "json" not in content_type:
            return 415, f"unsupported Content-Type {content_type!r}: the fake accepts application/json only"
        try:
            doc = json.loads(body)
            for s in doc["streams"]:
                self.push(s["stream"], [(int(v[0]), str(v[1])) for v in s["values"]])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return 400, f"loghttp.PushRequest: invalid push body: {exc}"
        return 204, None


def _ns_delta(delta: timedelta) -> int:
    """A timedelta as integer nanoseconds."""
    return (delta // timedelta(microseconds=1)) * 1000


def _json_level(text: str) -> str | None:
    if not text.startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    level = doc.get("level") if isinstance(doc, dict) else None
    return level if isinstance(level, str) and level else None


FAULTS = ("empty", "slow", "hung", "query_fails", "malformed", "wrong_type", "not_json", "deep_json",
          "out_of_window")
"""The fault modes of :attr:`FakeLoki.fault`."""


def _malformed(payload: Any) -> Any:
    """A ``streams`` answer with malformed entries mixed into the real ones."""
    result = list(((payload or {}).get("data") or {}).get("result") or [])
    bad_values = [["not-a-number", "bad time"], [1], ["12", None], ["99999999999999999999999", "far"],
                  [None, "no time"], "not a pair", {"ts": 1}, [True, "bool time"]]
    if result:
        first = dict(result[0])
        first["values"] = bad_values[:4] + list(first.get("values") or []) + bad_values[4:]
        result[0] = first
    else:
        result.append({"stream": {"container": "x"}, "values": bad_values})
    result += [{"stream": {"container": "x"}}, {"stream": "oops", "values": "nope"}, "not a stream"]
    return {"status": "success", "data": {"resultType": "streams", "result": result}}


def _out_of_window(payload: Any, params: dict[str, str]) -> Any:
    result = list(((payload or {}).get("data") or {}).get("result") or [])
    start = int(params.get("start") or 0)
    far = [[str(start - 10 * 86400 * 10**9), "long before the window"],
           [str(start + 400 * 86400 * 10**9), "long after the window"]]
    result.append({"stream": {"container": "x", "stream": "stdout"}, "values": far})
    return {"status": "success", "data": {"resultType": "streams", "result": result}}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeLoki
    protocol_version = "HTTP/1.1"
    server_version = "FakeLoki/3.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def _send(self, method: str, path: str, params: dict[str, str], status: int, payload: Any) -> None:
        self.owner._record(method, path, params, status)
        if payload is None:
            body, ctype = b"", "text/plain; charset=utf-8"
        elif isinstance(payload, str):
            body, ctype = (payload + "\n").encode(), "text/plain; charset=utf-8"
        else:
            body, ctype = json.dumps(payload).encode(), "application/json; charset=UTF-8"
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        path = parts.path
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        owner = self.owner
        if path == "/ready":
            if owner.ready:
                self._send("GET", path, params, 200, "ready")
            else:
                self._send("GET", path, params, 503, "Ingester not ready: waiting for 15s after being ready")
            return
        if path.startswith("/loki/api/v1/") and owner.fault is not None and self._fault(path, params):
            return
        if path == "/loki/api/v1/query_range":
            status, payload = owner._query_range(params)
            self._send("GET", path, params, status, payload)
            return
        if path == "/loki/api/v1/labels":
            status, payload = owner._label_scope(params)
            if status == 200:
                payload = {"status": "success", "data": sorted({k for s in payload for k in s})}
            self._send("GET", path, params, status, payload)
            return
        m = re.fullmatch(r"/loki/api/v1/label/([^/]+)/values", path)
        if m:
            name = unquote(m.group(1))
            status, payload = owner._label_scope(params)
            if status == 200:
                payload = {"status": "success", "data": sorted({s[name] for s in payload if name in s})}
            self._send("GET", path, params, status, payload)
            return
        self._send("GET", path, params, 404, "404 page not found")

    def _fault(self, path: str, params: dict[str, str]) -> bool:
        """Answer with the owner's fault; ``False`` when this request is to be served normally."""
        owner = self.owner
        with owner._lock:
            owner._served_queries += 1
            if owner._served_queries <= owner.fault_after:
                return False
        fault = owner.fault
        if fault == "slow":
            owner._release.wait(owner.fault_delay_s)
            return False
        if fault == "hung":
            owner._record("GET", path, params, 0)
            owner._release.wait(300)
            self.close_connection = True
            return True
        if fault == "empty":
            data: Any = {"resultType": "streams", "result": []} if path.endswith("query_range") else []
            self._send("GET", path, params, 200, {"status": "success", "data": data})
            return True
        if fault == "query_fails":
            self._send("GET", path, params, 500, "internal error: failed to get chunk: storage unavailable")
            return True
        if fault == "not_json":
            self._send("GET", path, params, 200, "<html><body>502 Bad Gateway</body></html>")
            return True
        if fault == "deep_json":
            self._send("GET", path, params, 200, "[" * 100_000 + "]" * 100_000)
            return True
        if path != "/loki/api/v1/query_range":
            return False
        status, payload = owner._query_range(params)
        if status == 200 and fault == "wrong_type":
            payload = {"status": "success", "data": {"resultType": "matrix", "result": []}}
        elif status == 200 and fault == "malformed":
            payload = _malformed(payload)
        elif status == 200 and fault == "out_of_window":
            payload = _out_of_window(payload, params)
        self._send("GET", path, params, status, payload)
        return True

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path == "/loki/api/v1/push":
            status, payload = self.owner._push(body, self.headers.get("Content-Type") or "")
            self._send("POST", parts.path, params, status, payload)
            return
        self._send("POST", parts.path, params, 404, "404 page not found")
