"""A fault-injecting HTTP proxy on 127.0.0.1, in front of a real MediaWiki.

The fault tests point the harvester at the proxy instead of the wiki. Each
request is forwarded to the wiki unchanged, unless the proxy decides to answer
it with a fault instead (or to damage the wiki's answer)::

    with FaultProxy(server.api_url, FaultPlan(rate=0.2, seed=7)) as proxy:
        ... crawl proxy.api_url ...
    proxy.counts()          # faults injected, by kind
    proxy.log               # every request: arrival, connection, outcome, Retry-After

Which requests are faulted: with ``rate``, a draw from a random generator
seeded with the plan's seed, the request itself (method and parameters) and
how many times the proxy has seen that same request, so the decision does not
depend on the order in which concurrent workers' requests arrive and a run
that sends the same requests meets the same faults; with ``every=N``, exactly
every Nth request (a fixed share, whatever the run's length); with
``schedule``, the requests of the given numbers. The kind of each fault is
dealt from a seeded shuffle of the plan's kinds, so that every kind is used
once before any is used twice; ``then_kinds`` may narrow the later rounds.

Fault kinds (``FAULT_KINDS``): HTTP 429 and 503, each without ``Retry-After``
and with it in seconds and in HTTP-date form; the API's ``maxlag`` error with
the headers MediaWiki sends (``Retry-After``, ``X-Database-Lag``,
``MediaWiki-API-Error``), its ``ratelimited`` and ``readonly`` errors; an HTML
error page with status 200; truncated and invalid JSON; a connection reset in
the middle of the body; and a stall longer than the client's timeout. Apart
from those, ``FaultPlan.repeat_continue`` makes the proxy hand back the same
``continue`` block on every response of the walks it selects, and
``FaultPlan.latency`` holds back every answer (or those ``slow`` selects), as
a distant wiki would.
"""

from __future__ import annotations

import email.utils
import http.client
import itertools
import json
import math
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PASS = "pass"
REPEAT_CONTINUE = "repeat_continue"

# Signals that mean "you are too fast": the harvester slows every worker on these.
THROTTLE_KINDS = (
    "http429", "http429_retry_seconds", "http429_retry_date",
    "http503", "http503_retry_seconds", "http503_retry_date",
    "maxlag", "ratelimited",
)
OTHER_KINDS = (
    "readonly", "html_page", "truncated_json", "invalid_json", "reset_mid_body", "stall",
)
FAULT_KINDS = THROTTLE_KINDS + OTHER_KINDS

# Faults that are answered from the wiki's own response, damaged on the way back.
DAMAGING_KINDS = frozenset({"truncated_json", "invalid_json", "reset_mid_body"})

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    "accept-encoding", "content-encoding",
})
UPSTREAM_TIMEOUT = 60.0  # seconds; only a wedged wiki hits it

HTML_ERROR_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Internal error - Wiki</title></head>\n"
    "<body><h1>Internal error</h1><p>[a1b2c3] Database error: too many connections."
    "</p></body></html>\n"
)


Params = dict[str, str]
Selector = Callable[[str, Params], bool]


@dataclass
class FaultPlan:
    """What to inject: see the module docstring."""

    rate: float = 0.0  # probability that a request (not spared) is faulted
    every: int | None = None  # or: fault every Nth request that is not spared, exactly
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    then_kinds: tuple[str, ...] | None = None  # dealt after the first round (default: kinds)
    # request number (1-based, in arrival order) -> kind, on top of the random faults
    schedule: Mapping[int, str] = field(default_factory=dict)
    # requests that are never faulted, e.g. lambda method, params: "maxlag" not in params
    spare: Selector | None = None
    # walks whose every response carries the first continue block the proxy saw for them
    repeat_continue: Selector | None = None
    retry_after: int = 1  # seconds announced by the faults that announce any
    database_lag: int = 7  # the X-Database-Lag of a maxlag error
    stall_seconds: float = 3.0  # how long a stalled request is held before the proxy hangs up
    # seconds every answer is held back, as from a wiki on another continent; only
    # for the requests ``slow`` selects, when given
    latency: float = 0.0
    slow: Selector | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) | set(self.then_kinds or ()) | set(self.schedule.values())
        unknown -= set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")


@dataclass
class LogEntry:
    number: int  # 1-based, in arrival order
    arrived: float  # time.monotonic() when the request had been read
    answered: float  # time.monotonic() when the proxy was done with it
    connection: int  # serial number of the client's TCP connection
    peer: str
    method: str
    params: Params
    walk: str  # which walk (stream) the request belongs to
    outcome: str  # PASS, REPEAT_CONTINUE or a fault kind
    status: int | None  # None when no status line was sent (stall)
    retry_after: str | None = None  # the Retry-After header as sent
    retry_until: float | None = None  # monotonic time before which the client must wait
    body_bytes: int = 0  # of the answer, as sent to the client


def walk_of(params: Params) -> str:
    """A label for the walk a request belongs to: one per crawl stream, say."""
    if params.get("list") == "allrevisions" and params.get("arvprop") != "timestamp":
        return f"allrevisions {params.get('arvstart', '')}..{params.get('arvend', '')}"
    if params.get("generator") == "allpages":
        return f"allpages ns={params.get('gapnamespace', '')}"
    what = params.get("list") or params.get("prop") or params.get("meta") or ""
    return f"{params.get('action', '')} {what}".strip()


class FaultProxy:
    """The proxy server; a context manager that serves on a thread per connection."""

    def __init__(self, upstream_api_url: str, plan: FaultPlan | None = None, *,
                 listen: str = "127.0.0.1") -> None:
        """``listen``: a loopback address (127.0.0.0/8): proxies on 127.0.0.2, .3, ...
        are wikis on hosts of their own, each under its own polite budget."""
        parts = urlsplit(upstream_api_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to loopback")
        if not listen.startswith("127."):
            raise ValueError("the fault proxy only listens on loopback")
        self.listen = listen
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.api_path = parts.path
        self.plan = plan or FaultPlan()
        self.log: list[LogEntry] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._connections = itertools.count(1)
        self._seen: Counter[str] = Counter()
        self._deck: list[str] = []
        self._rounds = 0
        self._candidates = 0  # requests that could have been faulted
        self._first_continue: dict[str, Any] = {}
        self._stopping = threading.Event()
        self._server = _Server((listen, 0), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://{self.listen}:{self.port}{self.api_path}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # stalled handlers give up at once
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def configure(self, plan: FaultPlan) -> None:
        """Switch to another plan; the log and the counts carry on."""
        with self._lock:
            self.plan = plan
            self._deck, self._rounds, self._candidates = [], 0, 0
            self._first_continue = {}

    # -- what the log says ------------------------------------------------------

    def counts(self) -> Counter[str]:
        """Faults injected, by kind (REPEAT_CONTINUE included; passed requests not)."""
        with self._lock:
            return Counter(e.outcome for e in self.log if e.outcome != PASS)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return sorted(self.log, key=lambda e: e.arrived)

    def summary(self) -> str:
        entries = self.entries()
        faults = self.counts()
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(faults.items())) or "none"
        return (f"{len(entries)} requests, {sum(faults.values())} faulted "
                f"({100 * sum(faults.values()) / max(1, len(entries)):.0f}%): {kinds}")

    # -- deciding ---------------------------------------------------------------

    def decide(self, method: str, params: Params) -> tuple[int, str]:
        """The request's number and what to do with it (PASS or a fault kind)."""
        signature = method + " " + json.dumps(sorted(params.items()))
        with self._lock:
            number = next(self._numbers)
            self._seen[signature] += 1
            plan = self.plan
            if plan.spare is not None and plan.spare(method, params):
                return number, PASS
            if number in plan.schedule:
                return number, plan.schedule[number]
            self._candidates += 1
            if plan.every:
                faulted = self._candidates % plan.every == 0
            else:
                seen = self._seen[signature]
                faulted = random.Random(f"{plan.seed}|{signature}|{seen}").random() < plan.rate
            if not faulted or not plan.kinds:
                return number, PASS
            if not self._deck:
                self._rounds += 1
                again = plan.then_kinds if plan.then_kinds is not None else plan.kinds
                self._deck = list(plan.kinds if self._rounds == 1 else again)
                random.Random(f"{plan.seed}|deck|{self._rounds}").shuffle(self._deck)
            return number, self._deck.pop()

    def repeated_continue(self, method: str, params: Params, body: bytes) -> bytes | None:
        """The body with its continue block replaced by the walk's first one, when selected."""
        plan = self.plan
        if plan.repeat_continue is None or not plan.repeat_continue(method, params):
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("continue"), dict):
            return None
        with self._lock:
            first = self._first_continue.setdefault(walk_of(params), data["continue"])
        if first is data["continue"]:
            return None  # the walk's first token goes out as it is
        data["continue"] = first
        return json.dumps(data).encode()

    def record(self, entry: LogEntry) -> None:
        with self._lock:
            self.log.append(entry)

    def next_connection(self) -> int:
        with self._lock:
            return next(self._connections)

    def hold(self, method: str, params: Params) -> None:
        """Wait out the plan's latency (each connection has its own thread)."""
        plan = self.plan
        if plan.latency and (plan.slow is None or plan.slow(method, params)):
            self._stopping.wait(plan.latency)

    def stall(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


@dataclass
class _Answer:
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    retry_after: str | None = None
    retry_until: float | None = None
    cut_at: int | None = None  # send only this many body bytes, then reset the connection


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server offers
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm
        # and delayed ACKs add 40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_id = self.server.proxy.next_connection()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the proxy keeps its own log

    def do_GET(self) -> None:
        self.handle_api_request()

    def do_POST(self) -> None:
        self.handle_api_request()

    def handle_api_request(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        arrived = time.monotonic()
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        if self.command == "POST":
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        number, outcome = proxy.decide(self.command, params)
        proxy.hold(self.command, params)
        answer = self.answer(outcome, body, params)
        if outcome == PASS and answer.status == 200:
            repeated = proxy.repeated_continue(self.command, params, answer.body)
            if repeated is not None:
                outcome, answer.body = REPEAT_CONTINUE, repeated
        try:
            self.send(answer)
        except OSError:
            self.close_connection = True  # the client went away first (it timed out)
        host, port = self.client_address[:2]
        proxy.record(LogEntry(
            number=number, arrived=arrived, answered=time.monotonic(),
            connection=self.connection_id, peer=f"{host}:{port}",
            method=self.command, params=params, walk=walk_of(params), outcome=outcome,
            status=answer.status, retry_after=answer.retry_after,
            retry_until=answer.retry_until,
            body_bytes=len(answer.body) if answer.cut_at is None else answer.cut_at,
        ))

    # -- building answers ---------------------------------------------------------

    def answer(self, outcome: str, body: bytes, params: Params) -> _Answer:
        plan = self.server.proxy.plan
        if outcome == "stall":
            self.server.proxy.stall(plan.stall_seconds)
            return _Answer(None, [], b"")
        if outcome == PASS or outcome in DAMAGING_KINDS:
            real = self.forward(body)
            return damage(outcome, real) if outcome != PASS else real
        if outcome.startswith("http"):
            return throttled(outcome, plan.retry_after)
        if outcome == "html_page":
            return html_page()
        return api_error(outcome, plan)

    def forward(self, body: bytes) -> _Answer:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        # identity, so that bodies can be cut and rewritten
        headers["Accept-Encoding"] = "identity"
        if body:
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                              timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            content = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP
                    and k.lower() not in ("date", "server")]
            return _Answer(response.status, kept, content)
        finally:
            upstream.close()

    def send(self, answer: _Answer) -> None:
        if answer.status is None:  # a stall: hang up without a word
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.cut_at is None:
            self.wfile.write(answer.body)
            return
        self.wfile.write(answer.body[:answer.cut_at])
        self.wfile.flush()
        # SO_LINGER 0: close() sends RST instead of FIN, as a crashed peer would
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


def retry_after_header(form: str, seconds: int) -> tuple[str, float]:
    """A Retry-After value and the monotonic time until which it tells the client to wait."""
    now_wall, now_mono = time.time(), time.monotonic()
    if form == "date":
        when = math.ceil(now_wall + seconds)  # HTTP dates have whole seconds: never shorter
        return email.utils.formatdate(when, usegmt=True), now_mono + (when - now_wall)
    return str(seconds), now_mono + seconds


def throttled(kind: str, seconds: int) -> _Answer:
    status = 429 if kind.startswith("http429") else 503
    headers = [("Content-Type", "text/html; charset=utf-8")]
    body = f"<html><body><h1>{status}</h1><p>Slow down.</p></body></html>\n".encode()
    if kind.endswith("_retry_seconds") or kind.endswith("_retry_date"):
        value, until = retry_after_header("date" if kind.endswith("date") else "seconds", seconds)
        return _Answer(status, [*headers, ("Retry-After", value)], body, value, until)
    return _Answer(status, headers, body)


def api_error(kind: str, plan: FaultPlan) -> _Answer:
    """The API's error objects as MediaWiki 1.39 sends them (status 200, formatversion 2)."""
    headers = [("Content-Type", "application/json; charset=utf-8"),
               ("MediaWiki-API-Error", kind)]
    docref = "See http://127.0.0.1/api.php for API usage."
    retry_after = until = None
    if kind == "maxlag":
        # ApiMain::checkMaxLag; MediaWiki announces max(maxlag, 5) s, kept short here
        retry_after, until = retry_after_header("seconds", plan.retry_after)
        headers += [("Retry-After", retry_after), ("X-Database-Lag", str(plan.database_lag))]
        error: dict[str, Any] = {
            "code": "maxlag", "info": f"Waiting for a database server: {plan.database_lag} "
            "seconds lagged.", "host": "localhost", "lag": plan.database_lag, "type": "db"}
    elif kind == "ratelimited":
        error = {"code": "ratelimited", "info": "You've exceeded your rate limit. "
                 "Please wait some time and try again."}
    elif kind == "readonly":
        error = {"code": "readonly", "info": "The wiki is currently in read-only mode.",
                 "readonlyreason": "Database maintenance, back shortly."}
    else:
        raise ValueError(f"not an API error kind: {kind}")
    body = json.dumps({"error": {**error, "docref": docref}, "servedby": "fault-proxy"})
    return _Answer(200, headers, body.encode(), retry_after, until)


def damage(kind: str, real: _Answer) -> _Answer:
    body = real.body
    if kind == "truncated_json":
        return _Answer(real.status, real.headers, body[: max(1, len(body) // 2)])
    if kind == "invalid_json":
        # a PHP notice printed before the JSON, as a misconfigured wiki does
        notice = b"<br />\n<b>Warning</b>:  Undefined array key in <b>Api.php</b>\n"
        return _Answer(real.status, real.headers, notice + body)
    return _Answer(real.status, real.headers, body, cut_at=len(body) // 2)


def html_page() -> _Answer:
    return _Answer(200, [("Content-Type", "text/html; charset=utf-8")], HTML_ERROR_PAGE.encode())
