"""crawl --all and sync --all: wikis side by side (--jobs), one budget per host, shards."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import jobs.crawl
from harvester.config import Settings
from harvester.errors import ConfigError
from jobs.crawl import CrawlSummary, run_crawl
from jobs.fleet import by_mirror, in_shard, parse_shard, run_fleet, select_wikis
from storage.export_jsonl import write_jsonl
from storage.mirror import Mirror
from tests.fakewiki import FakeWiki, InlineWriter, make_pages


def dispatch(wikis: list[FakeWiki]) -> httpx.MockTransport:
    """One transport for several fake wikis: by host, then by script path."""
    async def handle(request: httpx.Request) -> httpx.Response:
        for wiki in wikis:
            if request.url.host == wiki.host and request.url.path.startswith(wiki.script_path):
                return await wiki.handle(request)
        return httpx.Response(404, text="no such wiki")

    return httpx.MockTransport(handle)


def fleet_settings(wiki: FakeWiki, mirror: Path) -> Settings:
    return Settings(api=wiki.api_url, mirror=str(mirror), quiet=True,
                    max_requests_per_second=0, max_requests_per_minute=0)


@pytest.fixture(autouse=True)
def inline_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs.crawl, "SerialWriter", InlineWriter)


def crawl_fleet(wikis: list[FakeWiki], tmp: Path, jobs: int) -> tuple[float, list[Any]]:
    """Virtual seconds and results of crawling every wiki ``jobs`` at a time."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    named = [(f"wiki{i}", fleet_settings(w, tmp / f"m{i}")) for i, w in enumerate(wikis)]

    async def main() -> tuple[float, list[Any]]:
        results = await run_fleet(run_crawl, named, jobs, transport=dispatch(wikis))
        return trio.current_time(), results

    return trio.run(main, clock=clock)


def exported(mirror: Path) -> list[str]:
    out = io.StringIO()
    with Mirror.open(mirror, create=False) as m:
        write_jsonl(m, out)
    return sorted(json.dumps({k: v for k, v in json.loads(line).items()})
                  for line in out.getvalue().splitlines())


def test_four_wikis_at_once_take_a_quarter_of_the_time(tmp_path: Path) -> None:
    def wikis() -> list[FakeWiki]:
        made = [FakeWiki(make_pages(10, 20), host=f"wiki{i}.test") for i in range(4)]
        for wiki in made:
            wiki.latency = 1.0  # a second an answer: the wikis' time, not ours
        return made

    one_by_one, results_1 = crawl_fleet(wikis(), tmp_path / "one", jobs=1)
    together, results_4 = crawl_fleet(wikis(), tmp_path / "four", jobs=4)
    assert all(isinstance(r, CrawlSummary) and r.revisions == 200 for _, r in results_4)
    assert [name for name, _ in results_4] == ["wiki0", "wiki1", "wiki2", "wiki3"]
    assert together <= 0.3 * one_by_one, (together, one_by_one)
    for i in range(4):
        assert exported(tmp_path / "four" / f"m{i}") == exported(tmp_path / "one" / f"m{i}")
    # each wiki's request count is its own, not its host's budget's
    assert [r.requests for _, r in results_4] == [r.requests for _, r in results_1]


def test_wikis_on_one_host_share_its_budget(tmp_path: Path) -> None:
    farm = [FakeWiki(make_pages(10, 20), host="farm.test", script_path=f"/w{i}")
            for i in range(3)]
    in_flight = {"now": 0, "most": 0}
    for wiki in farm:
        wiki.latency = 1.0
    original = FakeWiki.handle

    async def counting(self: FakeWiki, request: httpx.Request) -> httpx.Response:
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        try:
            return await original(self, request)
        finally:
            in_flight["now"] -= 1

    pytest.MonkeyPatch().setattr(FakeWiki, "handle", counting)
    try:
        _, results = crawl_fleet(farm, tmp_path, jobs=3)
    finally:
        FakeWiki.handle = original  # type: ignore[method-assign]
    assert all(isinstance(r, CrawlSummary) for _, r in results)
    assert in_flight["most"] == 1  # the host's concurrency (1), for the three wikis together


def test_a_failing_wiki_stops_only_itself(tmp_path: Path) -> None:
    good = FakeWiki(make_pages(3, 2), host="good.test")
    bad = FakeWiki(make_pages(3, 2), host="bad.test")
    bad.faults.append(lambda request, params: httpx.Response(403, text="go away"))
    _, results = crawl_fleet([bad, good], tmp_path, jobs=2)
    assert isinstance(results[0][1], Exception) and isinstance(results[1][1], CrawlSummary)


def test_shards_split_a_fleet_stably() -> None:
    names = [f"wiki-{i}" for i in range(200)]
    shards = [[n for n in names if in_shard(n, (k, 4))] for k in range(4)]
    assert sorted(n for shard in shards for n in shard) == sorted(names)  # each in one shard
    assert all(30 <= len(shard) <= 70 for shard in shards)
    more = [*names, *(f"new-{i}" for i in range(50))]  # adding wikis moves none
    assert [[n for n in more if in_shard(n, (k, 4)) and n in names] for k in range(4)] == shards
    assert parse_shard("3/4") == (3, 4)
    for wrong in ("4/4", "1", "-1/4", "a/b", "1/0"):
        with pytest.raises(ConfigError):
            parse_shard(wrong)


def test_two_wikis_with_one_name_are_refused_and_one_mirror_is_taken_in_turn(
        tmp_path: Path) -> None:
    one = Settings(api="http://a.test/api.php", mirror=str(tmp_path / "m"))
    other = Settings(api="http://b.test/api.php", mirror=str(tmp_path / "m"))
    with pytest.raises(ConfigError, match="same name"):
        select_wikis([("a", one), ("a", other)], None)
    groups = by_mirror([("a", one), ("c", Settings(mirror=str(tmp_path / "n"))), ("b", other)])
    assert [[name for name, _ in group] for group in groups] == [["a", "b"], ["c"]]


def test_the_worked_example_of_docs_fleet_md_is_what_the_shards_do() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "fleet.md").read_text()
    for name in ("fr-cooking", "de-trains", "en-birds", "nl-maps"):
        k = next(k for k in range(2) if in_shard(name, (k, 2)))
        assert f"    {name} {k}\n" in doc
