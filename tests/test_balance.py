"""Concurrency that follows the edits: the walk on virtual time, however edits fall in time.

The fake wiki answers every request after a fixed latency of trio time, and a
MockClock jumps over the waits, so a crawl's duration is counted in request
latencies, exactly and without waiting. Writes run inline (no worker thread),
so they take no virtual time: what is measured is the walk's schedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import trio
import trio.testing

import jobs.crawl
from jobs.crawl import run_crawl
from tests.fakewiki import FakePage, FakeRevision, FakeWiki, InlineWriter
from tests.helpers import export, settings_for

T = TypeVar("T")

LATENCY = 1.0  # seconds of virtual time per request
LIMIT = 10  # revisions per request: many requests from a small wiki
REVISIONS = 3000  # 300 requests at the floor
NOW = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())  # the fake wiki's clock
YEAR = 365 * 86400


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def even(rng: random.Random) -> list[int]:
    return [NOW - 5 * YEAR + rng.randrange(5 * YEAR) for _ in range(REVISIONS)]


def one_day(rng: random.Random) -> list[int]:
    day = NOW - 3 * YEAR
    return [day + rng.randrange(86400) for _ in range(REVISIONS)]


def exponential(rng: random.Random) -> list[int]:
    # activity doubling every half year for ten years: the last year holds 3/4 of it
    rate = math.log(2) / (YEAR / 2)
    span = 10 * YEAR
    return [NOW - span + int(math.log1p(rng.random() * math.expm1(rate * span)) / rate)
            for _ in range(REVISIONS)]


def burst_at_end(rng: random.Random) -> list[int]:
    quiet = [NOW - 8 * YEAR + rng.randrange(8 * YEAR) for _ in range(REVISIONS // 10)]
    return quiet + [NOW - 2 * 86400 + rng.randrange(2 * 86400)
                    for _ in range(REVISIONS - len(quiet))]


def burst_at_start(rng: random.Random) -> list[int]:
    start = NOW - 8 * YEAR
    burst = [start + rng.randrange(2 * 86400) for _ in range(REVISIONS * 9 // 10)]
    return burst + [start + rng.randrange(8 * YEAR) for _ in range(REVISIONS - len(burst))]


DISTRIBUTIONS: dict[str, Callable[[random.Random], list[int]]] = {
    "even": even, "one day": one_day, "exponential": exponential,
    "burst at the end": burst_at_end, "burst at the start": burst_at_start,
}


def wiki_with(times: list[int], pages: int = 40) -> FakeWiki:
    """A wiki whose revisions were saved at ``times``, spread over ``pages`` pages."""
    wiki_pages = [FakePage(pageid=i + 1, ns=0, title=f"Page {i + 1:03d}", revisions=[])
                  for i in range(pages)]
    for revid, when in enumerate(sorted(times), start=1):
        page = wiki_pages[revid % pages]
        page.revisions.append(FakeRevision(revid=revid, timestamp=iso(when),
                                           text=f"{page.title} at revision {revid}"))
    wiki = FakeWiki(wiki_pages, limit=LIMIT)
    wiki.latency = LATENCY
    return wiki


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture(autouse=True)
def inline_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.crawl, "SerialWriter", InlineWriter)


async def timed_crawl(wiki: FakeWiki, mirror: Path, workers: int) -> float:
    began = trio.current_time()
    await run_crawl(settings_for(wiki, mirror, concurrency=workers), transport=wiki.transport())
    return trio.current_time() - began


def content_requests(wiki: FakeWiki) -> int:
    return sum(1 for _, p, _ in wiki.requests
               if p.get("list") == "allrevisions" and p.get("arvprop") != "timestamp")


@pytest.mark.parametrize("shape", DISTRIBUTIONS)
async def test_four_workers_take_under_a_third_of_the_time_of_one(
    tmp_path: Path, clock: trio.testing.MockClock, shape: str
) -> None:
    times = DISTRIBUTIONS[shape](random.Random(shape))
    serial, parallel = wiki_with(times), wiki_with(times)
    one = await timed_crawl(serial, tmp_path / "one", 1)
    four = await timed_crawl(parallel, tmp_path / "four", 4)
    floor = math.ceil(REVISIONS / LIMIT)
    assert content_requests(serial) == floor
    assert content_requests(parallel) <= floor * 1.05, content_requests(parallel)
    assert four <= 0.3 * one, (four, one)
    assert export(tmp_path / "four") == export(tmp_path / "one")
    assert len(export(tmp_path / "four")) == REVISIONS


async def test_page_histories_are_shared_out_too(
    tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    """A wiki without allrevisions: histories page by page, a few pages holding most."""
    rng = random.Random(5)
    sizes = [int(rng.paretovariate(1.2) * 8) for _ in range(60)]  # a few long histories
    times = sorted(NOW - rng.randrange(5 * YEAR) for _ in range(sum(sizes)))

    def old_wiki() -> FakeWiki:
        pages, revid = [], 0
        for index, size in enumerate(sizes):
            page = FakePage(pageid=index + 1, ns=0, title=f"Page {index + 1:03d}", revisions=[])
            for _ in range(size):
                revid += 1
                page.revisions.append(FakeRevision(revid=revid, timestamp=iso(times[revid - 1]),
                                                   text=f"{page.title} at revision {revid}"))
            pages.append(page)
        wiki = FakeWiki(pages, generator="MediaWiki 1.26.4", limit=LIMIT)
        wiki.latency = LATENCY
        return wiki

    serial, parallel = old_wiki(), old_wiki()
    one = await timed_crawl(serial, tmp_path / "one", 1)
    four = await timed_crawl(parallel, tmp_path / "four", 4)
    floor = sum(math.ceil(size / LIMIT) for size in sizes if size)
    histories = [sum(1 for _, p, _ in wiki.requests if p.get("prop") == "revisions")
                 for wiki in (serial, parallel)]
    assert histories == [floor, floor]  # a split costs no request
    assert four <= 0.3 * one, (four, one, sorted(sizes)[-5:])
    assert export(tmp_path / "four") == export(tmp_path / "one")


def pages_titled(titles: list[str]) -> list[FakePage]:
    return [FakePage(pageid=i + 1, ns=0, title=title, revisions=[FakeRevision(
        revid=i + 1, timestamp=iso(NOW - YEAR + i), text=f"Text of {title}")])
        for i, title in enumerate(titles)]


@pytest.mark.parametrize("mode", ["current only", "catalogue"])
async def test_title_ranges_are_shared_out_too(
    tmp_path: Path, clock: trio.testing.MockClock, mode: str
) -> None:
    """The allpages walks: titles bunched under a few beginnings, some outside ASCII."""
    rng = random.Random(7)
    starts = ["List of", "List of", "List of", "Albert", "Zebra", "2010 in", "Ölfeld", "Łódź"]
    titles = sorted({f"{rng.choice(starts)} {rng.randrange(10**6)}" for _ in range(REVISIONS)})

    def wiki() -> FakeWiki:
        made = FakeWiki(pages_titled(titles), limit=LIMIT)
        made.latency = LATENCY
        if mode == "catalogue":
            made.limit = 1  # catalogue requests of ten pages
        return made

    serial, parallel = wiki(), wiki()
    extra = {"current_only": True} if mode == "current only" else {"history_mode": "pages"}
    walks = []
    for made, name, workers in ((serial, "one", 1), (parallel, "four", 4)):
        began = trio.current_time()
        settings = settings_for(made, tmp_path / name, concurrency=workers, **extra)
        await run_crawl(settings, transport=made.transport())
        walks.append(trio.current_time() - began)
    per_request = LIMIT if mode == "current only" else 10
    floor = math.ceil(len(titles) / per_request) + 1  # and namespace 1, empty
    listed = [sum(1 for _, p, _ in made.requests if p.get("generator") == "allpages")
              for made in (serial, parallel)]
    assert listed[0] == floor and listed[1] <= floor * 1.05, (listed, floor)
    one, four = walks
    # a third of the titles share "List of ", which a cut of six characters cannot
    # divide: the bound is that range, not the splitting (0.39 measured)
    assert four <= 0.45 * one, (four, one)
    assert export(tmp_path / "four") == export(tmp_path / "one")
