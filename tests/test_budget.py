"""The polite budget, the client's retries and the continuation protocol, on virtual time."""

from __future__ import annotations

import email.utils
import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import trio
import trio.testing

from harvester.budget import BudgetPolicy, PoliteBudget
from harvester.client import ApiClient, ClientSettings, open_client, parse_retry_after
from harvester.continuation import iterate_query
from harvester.discovery import discover_api
from harvester.errors import (
    ApiError,
    ContinuationLoopError,
    RemoteError,
    RetriesExhaustedError,
)
from tests.fakewiki import FakeWiki, make_pages

UNLIMITED = {"per_second": None, "per_minute": None}


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@asynccontextmanager
async def client_for(wiki: FakeWiki, **policy: object) -> AsyncIterator[ApiClient]:
    budget = PoliteBudget(BudgetPolicy(**{**UNLIMITED, **policy}), rng=random.Random(7))
    settings = ClientSettings(contact="ops@example.org")
    async with open_client(wiki.api_url, budget, settings, wiki.transport()) as client:
        client.api_url = wiki.api_url
        yield client


def start_times(wiki: FakeWiki) -> list[float]:
    return [t for t, _, _ in wiki.requests]


def siteinfo_call(client: ApiClient) -> object:
    return client.call({"action": "query", "meta": "siteinfo"})


def fail_first(n: int, response: httpx.Response):  # type: ignore[no-untyped-def]
    left = [n]

    def fault(request: httpx.Request, params: dict[str, str]) -> httpx.Response | None:
        if left[0] > 0:
            left[0] -= 1
            return response
        return None

    return fault


async def test_per_second_ceiling_spaces_request_starts(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    async with client_for(wiki, per_second=2.0) as client:
        for _ in range(5):
            await siteinfo_call(client)
    gaps = [b - a for a, b in zip(start_times(wiki), start_times(wiki)[1:], strict=False)]
    assert len(gaps) == 4
    assert all(gap >= 0.5 - 1e-9 for gap in gaps)


async def test_per_minute_ceiling(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    async with client_for(wiki, per_minute=3) as client:
        for _ in range(7):
            await siteinfo_call(client)
    times = start_times(wiki)
    for i in range(3, 7):
        assert times[i] - times[i - 3] >= 60.0 - 1e-9
    assert times[3] < 61.0  # and not much slower than the ceiling


async def test_concurrency_cap_holds_across_workers(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.latency = 1.0
    async with client_for(wiki, concurrency=2) as client, trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(siteinfo_call, client)
    assert wiki.max_in_flight == 2
    assert len(wiki.requests) == 8


async def test_retry_after_seconds_is_honoured(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.faults.append(fail_first(1, httpx.Response(429, headers={"Retry-After": "7"})))
    async with client_for(wiki) as client:
        await siteinfo_call(client)
    first, second = start_times(wiki)
    assert second - first >= 7.0


async def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    wait = parse_retry_after(later)
    assert wait is not None and 85 <= wait <= 90  # whole seconds, and a moment has passed
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("soon") is None


async def test_one_429_slows_every_worker(clock: trio.testing.MockClock) -> None:
    """A Retry-After told to one worker holds back the others too, and spacing recovers."""
    wiki = FakeWiki(make_pages(1, 1))
    wiki.latency = 0.1
    told = trio.current_time()
    wiki.faults.append(fail_first(1, httpx.Response(429, headers={"Retry-After": "30"})))
    async with client_for(wiki, concurrency=3) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(siteinfo_call, client)
        assert client.budget.stats.pushbacks == 1
        for _ in range(10):
            await siteinfo_call(client)
        recovered = client.budget.extra_spacing
    first_fault_time = start_times(wiki)[0]
    later = [t for t in start_times(wiki)[1:] if t > first_fault_time + 0.05]
    # the other workers had started already (at the same instant) or waited out the 30 s
    assert all(t >= told + 30.0 for t in later)
    gaps = [b - a for a, b in itertools.pairwise(later)]
    # right after the pause every worker is spaced out, then the spacing shrinks again
    assert gaps[0] >= 0.8 - 1e-9
    assert gaps[-1] < gaps[0] / 4
    assert recovered < 0.05


async def test_maxlag_error_pauses_then_succeeds(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    lagged = httpx.Response(200, headers={"Retry-After": "5"},
                            json={"error": {"code": "maxlag", "info": "Waiting: 6 s lagged"}})
    wiki.faults.append(fail_first(2, lagged))
    async with client_for(wiki) as client:
        await siteinfo_call(client)
        assert client.budget.stats.by_error == {"MaxLagError": 2}
    times = start_times(wiki)
    assert times[1] - times[0] >= 5.0 and times[2] - times[1] >= 5.0
    assert all(p.get("maxlag") == "5" for _, p, _ in wiki.requests)


async def test_backoff_grows_exponentially_and_gives_up(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.faults.append(lambda request, params: httpx.Response(500, text="boom"))
    async with client_for(wiki, max_retries=4) as client:
        with pytest.raises(RetriesExhaustedError):
            await siteinfo_call(client)
    times = start_times(wiki)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 5
    # attempt k waits between half and all of 2**k seconds
    for k, gap in enumerate(gaps):
        assert 2.0**k / 2 <= gap <= 2.0**k + 1e-9


async def test_html_error_page_is_retried(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.faults.append(fail_first(1, httpx.Response(200, html="<html>Error 502</html>")))
    async with client_for(wiki) as client:
        data = await siteinfo_call(client)
    assert isinstance(data, dict) and "query" in data
    assert len(wiki.requests) == 2


async def test_api_error_is_not_retried(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    async with client_for(wiki) as client:
        with pytest.raises(ApiError, match="badparams"):
            await client.call({"action": "query", "list": "nothing"})
    assert len(wiki.requests) == 1


async def test_redirect_to_other_host_is_refused(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.faults.append(lambda r, p: httpx.Response(302, headers={"Location": "http://evil.test/"}))
    async with client_for(wiki) as client:
        with pytest.raises(RemoteError, match=r"evil\.test"):
            await siteinfo_call(client)


async def test_oversized_response_is_refused(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.faults.append(lambda r, p: httpx.Response(200, content=b"x" * 5000))
    budget = PoliteBudget(BudgetPolicy(**UNLIMITED))  # type: ignore[arg-type]
    settings = ClientSettings(max_response_bytes=1000)
    async with open_client(wiki.api_url, budget, settings, wiki.transport()) as client:
        client.api_url = wiki.api_url
        with pytest.raises(RemoteError, match="exceeds"):
            await siteinfo_call(client)


async def test_headers_identify_the_client(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    budget = PoliteBudget(BudgetPolicy(**UNLIMITED))  # type: ignore[arg-type]
    settings = ClientSettings(contact="ops@example.org", bearer_token="t0ken")
    async with open_client(wiki.api_url, budget, settings, wiki.transport()) as client:
        client.api_url = wiki.api_url
        await siteinfo_call(client)
    request = wiki.requests[0][2]
    assert request.headers["User-Agent"].startswith("harvester/")
    assert "(ops@example.org)" in request.headers["User-Agent"]
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert "gzip" in request.headers["Accept-Encoding"]


async def test_timeout_is_retried(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))
    wiki.latency = 500.0
    budget = PoliteBudget(BudgetPolicy(**UNLIMITED, max_retries=1))  # type: ignore[arg-type]
    settings = ClientSettings(request_timeout=10.0)
    async with open_client(wiki.api_url, budget, settings, wiki.transport()) as client:
        client.api_url = wiki.api_url
        with pytest.raises(RetriesExhaustedError, match="within 10 s"):
            await siteinfo_call(client)
    assert len(wiki.requests) == 2


async def test_continuation_resumes_and_detects_loops(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(3, 40))  # 120 revisions, 50 per request
    params = {"action": "query", "list": "allrevisions", "arvlimit": "max", "arvprop": "ids"}
    async with client_for(wiki) as client:
        tokens = [nxt async for _, nxt in iterate_query(client, params)]
        assert len(tokens) == 3 and tokens[-1] is None
        resumed = [resp async for resp, _ in iterate_query(client, params, tokens[0])]
        assert len(resumed) == 2
        looping = {"continue": {"arvcontinue": "x|1", "continue": "-||"}, "query": {}}
        wiki.faults.append(lambda r, p: httpx.Response(200, json=looping))
        with pytest.raises(ContinuationLoopError):
            async for _ in iterate_query(client, params):
                pass


def test_wikimedia_defaults_stay_inside_published_limits() -> None:
    policy = BudgetPolicy.for_host("en.wikipedia.org", concurrency=8)
    assert policy.concurrency == 3
    assert policy.per_minute == 200
    local = BudgetPolicy.for_host("127.0.0.1", concurrency=8, per_second=0)
    assert local.concurrency == 8 and not local.per_second


async def test_discovery_waits_out_throttling_and_lag(clock: trio.testing.MockClock) -> None:
    """The first contact is retried like any call: a 503 with Retry-After, a maxlag
    error and a reset connection do not make a wiki look like no wiki at all."""
    wiki = FakeWiki(make_pages(1, 1))
    lagged = httpx.Response(200, json={"error": {"code": "maxlag", "info": "lag"}},
                            headers={"Retry-After": "2"})
    wiki.faults.append(fail_first(1, httpx.Response(503, headers={"Retry-After": "5"})))
    wiki.faults.append(fail_first(1, lagged))

    def reset_once(request: httpx.Request, params: dict[str, str]) -> None:
        if len(wiki.requests) == 3:
            raise httpx.ReadError("connection reset by peer")

    wiki.faults.append(reset_once)
    async with client_for(wiki) as client:
        assert await discover_api(client, wiki.api_url) == wiki.api_url
    first, *_, last = start_times(wiki)
    assert len(wiki.requests) == 4
    assert last - first >= 5.0 + 2.0


async def test_discovery_of_nothing_listening_fails_at_once(clock: trio.testing.MockClock) -> None:
    wiki = FakeWiki(make_pages(1, 1))

    def refused(request: httpx.Request, params: dict[str, str]) -> None:
        raise httpx.ConnectError("connection refused")

    wiki.faults.append(refused)
    async with client_for(wiki) as client:
        with pytest.raises(RemoteError, match="cannot reach"):
            await discover_api(client, wiki.api_url)
    assert len(wiki.requests) == 1
