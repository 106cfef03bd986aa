"""robots.txt and the dumps-first rule: each case of the site's rules, and no API request
sent when the answer is no."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from harvester import robots
from harvester.budget import BudgetPolicy, PoliteBudget
from harvester.client import ClientSettings, open_client
from harvester.errors import PolicyRefusal
from jobs import site_policy
from jobs.crawl import run_crawl
from jobs.outcome import EXIT_REFUSED, exit_code_for
from jobs.site_policy import DUMPS_FIRST_EDITS, ROBOTS_KEY, ROBOTS_MAX_AGE, read_robots
from storage.mirror import recorded_meta
from tests.fakewiki import FakeWiki, make_pages
from tests.helpers import crawl_settings, settings_for


def api_requests(wiki: FakeWiki) -> list[httpx.Request]:
    return [r for _, _, r in wiki.requests if r.url.path.endswith("api.php")]


def robots_requests(wiki: FakeWiki) -> list[httpx.Request]:
    return [r for _, _, r in wiki.requests if r.url.path == "/robots.txt"]


def small_wiki() -> FakeWiki:
    return FakeWiki(make_pages(3, 4))


async def crawl(wiki: FakeWiki, mirror: Path, **extra: Any) -> Any:
    return await run_crawl(settings_for(wiki, mirror, **extra), transport=wiki.transport())


# -- reading robots.txt ---------------------------------------------------------------


def test_own_group_applies_in_full_and_names_the_rule() -> None:
    text = "User-agent: *\nDisallow:\n\nUser-agent: Harvester\nDisallow: /w/\n"
    reason = robots.refusal(text, "/w/api.php", "http://w/robots.txt")
    assert reason is not None and "line 5, 'Disallow: /w/'" in reason
    assert "User-agent: harvester" in reason
    # the longest rule wins: a longer Allow lets the API through
    text += "Allow: /w/api.php\n"
    assert robots.refusal(text, "/w/api.php", "u") is None
    # our own group, when there is one, is the only one that counts
    assert robots.refusal("User-agent: harvester\nAllow: /\n\nUser-agent: *\nDisallow: /\n",
                          "/w/api.php", "u") is None


def test_star_group_stops_only_a_whole_site_ban() -> None:
    assert robots.refusal("User-agent: *\nDisallow: /\n", "/w/api.php", "u") is not None
    # Wikipedia's: /w/ is closed to web crawlers, the API's own rules govern API clients
    assert robots.refusal("User-agent: *\nDisallow: /w/\n", "/w/api.php", "u") is None
    # the whole site closed except the API
    assert robots.refusal("User-agent: *\nDisallow: /\nAllow: /w/api.php$\n",
                          "/w/api.php", "u") is None
    # a ban addressed to some other robot is not addressed to us
    assert robots.refusal("User-agent: OtherBot\nDisallow: /\n", "/w/api.php", "u") is None
    # agents of one group share its rules; comments and wildcards are understood
    text = "User-agent: a\nUser-agent: harvester # us\nDisallow: /*.php\n"
    assert robots.refusal(text, "/w/api.php", "u") is not None


def test_a_refusal_has_its_own_exit_code() -> None:
    assert exit_code_for(PolicyRefusal("refused")) == EXIT_REFUSED == 8


# -- the crawl obeys it ---------------------------------------------------------------


@pytest.mark.parametrize("text, rule", [
    ("User-agent: harvester\nDisallow: /w/api.php\n", "'Disallow: /w/api.php'"),
    ("User-agent: *\nDisallow: /\n", "'Disallow: /'"),
])
async def test_refused_before_any_api_request(tmp_path: Path, text: str, rule: str) -> None:
    wiki = small_wiki()
    wiki.robots = text
    with pytest.raises(PolicyRefusal, match=rule) as caught:
        await crawl(wiki, tmp_path / "m")
    assert "--ignore-robots-txt" in str(caught.value)
    assert len(robots_requests(wiki)) == 1 and api_requests(wiki) == []
    assert not (tmp_path / "m").exists()  # nothing left behind


@pytest.mark.parametrize("answer", [
    "User-agent: *\nDisallow: /w/\nDisallow: /wiki/Special:\n",  # part of the site
    "User-agent: *\nAllow: /\n",  # allowed
    404,  # missing
    500,  # unreadable
    httpx.ConnectError("connection refused"),  # unreachable
])
async def test_crawled_when_robots_txt_allows_or_says_nothing(
    tmp_path: Path, answer: str | int | Exception
) -> None:
    wiki = small_wiki()
    wiki.robots = answer
    summary = await crawl(wiki, tmp_path / "m")
    assert summary.revisions == 12
    assert len(robots_requests(wiki)) == 1  # once: a failed read is not retried


async def test_the_override_goes_ahead(tmp_path: Path) -> None:
    wiki = small_wiki()
    wiki.robots = "User-agent: *\nDisallow: /\n"
    summary = await crawl(wiki, tmp_path / "m", ignore_robots_txt=True)
    assert summary.revisions == 12


async def test_robots_txt_is_kept_in_the_mirror_for_a_day(tmp_path: Path) -> None:
    wiki = small_wiki()
    wiki.robots = "User-agent: *\nDisallow: /w/\n"
    await crawl(wiki, tmp_path / "m")
    kept = recorded_meta(tmp_path / "m", ROBOTS_KEY)
    assert kept is not None and "Disallow: /w/" in kept
    wiki.robots = "User-agent: *\nDisallow: /\n"  # changed: not read again today
    await crawl(wiki, tmp_path / "m")
    assert len(robots_requests(wiki)) == 1
    # a day later it is read again, and now it says no
    budget = PoliteBudget(BudgetPolicy(per_second=None, per_minute=None))
    async with open_client(wiki.api_url, budget, ClientSettings(), wiki.transport()) as client:
        copy = await read_robots(client, wiki.api_url, tmp_path / "m",
                                 now=lambda: time.time() + ROBOTS_MAX_AGE + 60)
    assert copy.fresh and len(robots_requests(wiki)) == 2 and "Disallow: /\n" in copy.text


# -- dumps first on Wikimedia's big wikis ---------------------------------------------


def wikimedia(host: str) -> bool:
    return host == "wiki.test"


async def test_a_big_wikimedia_history_is_refused(tmp_path: Path) -> None:
    wiki = small_wiki()
    wiki.extra_edits = DUMPS_FIRST_EDITS
    with pytest.raises(PolicyRefusal) as caught:
        await run_crawl(settings_for(wiki, tmp_path / "m", contact="me@example.org"),
                        transport=wiki.transport(), wikimedia=wikimedia)
    message = str(caught.value)
    assert "Robot_policy" in message and "harvester bootstrap" in message
    assert "--live-history" in message and f"{DUMPS_FIRST_EDITS + 12:,} edits" in message
    walked = [p for _, p, _ in wiki.requests if "list" in p and p["list"] == "allrevisions"]
    assert walked == [] and not (tmp_path / "m").exists()


@pytest.mark.parametrize("extra", [
    {"live_history": True}, {"current_only": True},
])
async def test_what_the_dumps_first_rule_lets_through(tmp_path: Path,
                                                      extra: dict[str, Any]) -> None:
    wiki = small_wiki()
    wiki.extra_edits = DUMPS_FIRST_EDITS
    summary = await run_crawl(
        settings_for(wiki, tmp_path / "m", contact="me@example.org", **extra),
        transport=wiki.transport(), wikimedia=wikimedia)
    assert summary.pages == 3


async def test_small_or_other_wikis_are_crawled(tmp_path: Path) -> None:
    wiki = small_wiki()
    summary = await run_crawl(settings_for(wiki, tmp_path / "small", contact="me@example.org"),
                              transport=wiki.transport(), wikimedia=wikimedia)
    assert summary.revisions == 12
    wiki.extra_edits = DUMPS_FIRST_EDITS  # big, but not Wikimedia's
    summary = await crawl(wiki, tmp_path / "other")
    assert summary.revisions == 12


@pytest.mark.mediawiki
async def test_dumps_first_on_a_real_wiki_counted_as_wikimedia(
    shared_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On loopback: the fixture wiki, told to be a Wikimedia host with a big history."""
    monkeypatch.setattr(site_policy, "DUMPS_FIRST_EDITS", 100)
    settings = crawl_settings(shared_server.api_url, tmp_path / "m", contact="me@example.org")
    with pytest.raises(PolicyRefusal, match="harvester bootstrap"):
        await run_crawl(settings, wikimedia=lambda host: host == "127.0.0.1")
    assert not (tmp_path / "m").exists()
    summary = await run_crawl(replace(settings, live_history=True),
                              wikimedia=lambda host: host == "127.0.0.1")
    assert summary.new_revisions > 100
