"""The fault-injecting proxy itself: each fault on the wire, its log, its repeatability.

The upstream here is a tiny local HTTP server that echoes the request's
parameters with a fresh ``continue`` block, so that what the proxy changed is
plain to see; the real-MediaWiki tests are in test_faults_mediawiki.py.
"""

from __future__ import annotations

import itertools
import json
import random
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from harvester.budget import BudgetPolicy, PoliteBudget
from harvester.client import ApiClient, ClientSettings, open_client
from harvester.errors import (
    BadResponseError,
    MaxLagError,
    RateLimitedError,
    ReadOnlyError,
    RetriesExhaustedError,
    TransportError,
)
from tests.faultproxy import FAULT_KINDS, PASS, REPEAT_CONTINUE, FaultPlan, FaultProxy


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = itertools.count(1)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.reply()

    def do_POST(self) -> None:
        self.reply()

    def reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        params = dict(parse_qsl(urlsplit(self.path).query))
        params.update(parse_qsl(self.rfile.read(length).decode()))
        body = json.dumps({
            "batchcomplete": True, "echo": params, "path": urlsplit(self.path).path,
            "continue": {"xcontinue": str(next(self.counter)), "continue": "-||"},
            "query": {"padding": "x" * 2000},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Set-Cookie", "session=abc; path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/w/api.php"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@asynccontextmanager
async def api_client(url: str, *, timeout: float = 5.0) -> AsyncIterator[ApiClient]:
    policy = BudgetPolicy(per_second=None, per_minute=None, max_retries=0)
    budget = PoliteBudget(policy, rng=random.Random(1))
    settings = ClientSettings(request_timeout=timeout)
    async with open_client(url, budget, settings) as client:
        client.api_url = url
        yield client


def test_passes_requests_and_answers_through(upstream: str) -> None:
    with FaultProxy(upstream) as proxy, httpx.Client() as http:
        got = http.get(proxy.api_url, params={"action": "query", "title": "Zoë & co"})
        posted = http.post(proxy.api_url, data={"action": "login", "lgname": "A@b"})
    assert got.status_code == 200 and got.json()["echo"] == {"action": "query",
                                                             "title": "Zoë & co"}
    assert got.json()["path"] == "/w/api.php" and got.cookies["session"] == "abc"
    assert posted.json()["echo"] == {"action": "login", "lgname": "A@b"}
    first, second = proxy.entries()
    assert (first.outcome, first.status, first.method) == (PASS, 200, "GET")
    assert second.params == {"action": "login", "lgname": "A@b"}
    assert first.connection == second.connection  # one keep-alive connection
    assert proxy.counts() == {}


EXPECTED: dict[str, tuple[type[Exception], float | None]] = {
    "http429": (RateLimitedError, None),
    "http429_retry_seconds": (RateLimitedError, 1.0),
    "http429_retry_date": (RateLimitedError, 1.0),
    "http503": (RateLimitedError, None),
    "http503_retry_seconds": (RateLimitedError, 1.0),
    "http503_retry_date": (RateLimitedError, 1.0),
    "maxlag": (MaxLagError, 1.0),
    "ratelimited": (RateLimitedError, None),
    "readonly": (ReadOnlyError, None),
    "html_page": (BadResponseError, None),
    "truncated_json": (BadResponseError, None),
    "invalid_json": (BadResponseError, None),
    "reset_mid_body": (TransportError, None),
    "stall": (TransportError, None),
}
assert set(EXPECTED) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
async def test_each_fault_reaches_the_client_as_its_error(upstream: str, kind: str) -> None:
    plan = FaultPlan(schedule={1: kind}, stall_seconds=1.5)
    with FaultProxy(upstream, plan) as proxy:
        async with api_client(proxy.api_url, timeout=0.5) as client:
            with pytest.raises(RetriesExhaustedError) as failed:
                await client.call({"action": "query"})
            assert (await client.call({"action": "query"}))["echo"]["action"] == "query"
    error_class, retry_after = EXPECTED[kind]
    assert type(failed.value.last) is error_class, failed.value.last
    if retry_after is None:
        assert failed.value.last.retry_after is None
    else:  # an HTTP date has whole seconds: the proxy rounds it up, never down
        longest = retry_after + (1.0 if kind.endswith("date") else 0.0)
        assert retry_after - 0.1 <= (failed.value.last.retry_after or -1) <= longest
    faulted, passed = proxy.entries()
    assert (faulted.outcome, passed.outcome) == (kind, PASS)
    assert (faulted.retry_after is not None) == (retry_after is not None)
    if faulted.retry_until is not None:
        assert faulted.retry_until >= faulted.arrived + (retry_after or 0)
    assert proxy.counts() == {kind: 1}


def test_maxlag_carries_mediawikis_headers(upstream: str) -> None:
    with FaultProxy(upstream, FaultPlan(schedule={1: "maxlag"}, retry_after=2)) as proxy:
        answer = httpx.get(proxy.api_url, params={"action": "query", "maxlag": "5"})
    assert answer.status_code == 200
    assert answer.headers["Retry-After"] == "2" and answer.headers["X-Database-Lag"] == "7"
    assert answer.headers["MediaWiki-API-Error"] == "maxlag"
    assert answer.json()["error"]["code"] == "maxlag"


def test_reset_sends_part_of_the_body_then_resets(upstream: str) -> None:
    with FaultProxy(upstream, FaultPlan(schedule={1: "reset_mid_body"})) as proxy, \
            httpx.Client() as http, http.stream("GET", proxy.api_url) as response:
        received = bytearray()
        with pytest.raises(httpx.TransportError):
            for chunk in response.iter_bytes():
                received += chunk
    assert response.status_code == 200
    assert 0 < len(received) < int(response.headers["Content-Length"])


def outcomes(upstream: str, plan: FaultPlan, requests: int, distinct: int = 50) -> list[str]:
    with FaultProxy(upstream, plan) as proxy, httpx.Client() as http:
        for i in range(requests):
            http.get(proxy.api_url, params={"action": "query", "n": str(i % distinct)})
    return [e.outcome for e in proxy.entries()]


def test_faults_repeat_with_the_seed_and_deal_every_kind(upstream: str) -> None:
    cheap = tuple(k for k in FAULT_KINDS if k not in ("stall", "reset_mid_body"))
    first = outcomes(upstream, FaultPlan(rate=0.3, seed=11, kinds=cheap), 200)
    again = outcomes(upstream, FaultPlan(rate=0.3, seed=11, kinds=cheap), 200)
    other = outcomes(upstream, FaultPlan(rate=0.3, seed=12, kinds=cheap), 200)
    assert first == again and first != other
    faults = [o for o in first if o != PASS]
    assert 0.2 * 200 < len(faults) < 0.4 * 200
    # dealt from a shuffled deck: every kind once before any kind twice
    assert sorted(faults[: len(cheap)]) == sorted(cheap)
    # the same request seen again gets a fresh draw, so no request is faulted forever
    same = outcomes(upstream, FaultPlan(rate=0.5, seed=3, kinds=cheap), 30, distinct=1)
    assert 0 < same.count(PASS) < 30


def test_every_nth_request_and_narrower_later_rounds(upstream: str) -> None:
    plan = FaultPlan(every=4, seed=5, kinds=("http429", "readonly", "html_page"),
                     then_kinds=("readonly",))
    seen = outcomes(upstream, plan, 40)
    assert [i for i, o in enumerate(seen, 1) if o != PASS] == list(range(4, 41, 4))
    assert sorted(seen[3:12:4]) == ["html_page", "http429", "readonly"]
    assert {o for o in seen[12:] if o != PASS} == {"readonly"}


def test_spared_requests_are_never_faulted(upstream: str) -> None:
    plan = FaultPlan(rate=1.0, kinds=("http503",), spare=lambda method, p: "maxlag" not in p)
    with FaultProxy(upstream, plan) as proxy, httpx.Client() as http:
        assert http.get(proxy.api_url, params={"action": "query"}).status_code == 200
        assert http.get(proxy.api_url, params={"maxlag": "5"}).status_code == 503


def test_repeat_continue_hands_back_the_first_token(upstream: str) -> None:
    plan = FaultPlan(repeat_continue=lambda method, p: p.get("list") == "allrevisions")
    with FaultProxy(upstream, plan) as proxy, httpx.Client() as http:
        walk = [http.get(proxy.api_url, params={"list": "allrevisions", "c": str(i)}).json()
                for i in range(3)]
        other = http.get(proxy.api_url, params={"list": "allpages"}).json()
    assert walk[0]["continue"] == walk[1]["continue"] == walk[2]["continue"]
    assert other["continue"] != walk[0]["continue"]
    assert [e.outcome for e in proxy.entries()] == [PASS, REPEAT_CONTINUE, REPEAT_CONTINUE, PASS]


def test_log_tells_connections_apart(upstream: str) -> None:
    with FaultProxy(upstream) as proxy:
        with httpx.Client() as one:
            one.get(proxy.api_url)
            one.get(proxy.api_url)
        with httpx.Client() as two:
            two.get(proxy.api_url)
    a, b, c = proxy.entries()
    assert a.connection == b.connection != c.connection
    assert a.arrived <= a.answered <= b.arrived <= c.arrived


def test_only_loopback_upstreams() -> None:
    with pytest.raises(ValueError):
        FaultProxy("http://example.org/w/api.php")
    with pytest.raises(ValueError):
        FaultPlan(kinds=("http418",))
