"""The crawl job against the fake wiki: protocol paths a real server can't be made to take."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from harvester.errors import ConfigError, RetriesExhaustedError
from jobs.crawl import run_crawl
from jobs.streams import epoch, iso
from storage.errors import MirrorMismatchError
from storage.mirror import Mirror
from tests.fakewiki import FakeWiki, make_pages, sha1
from tests.helpers import export, settings_for


def expected(wiki: FakeWiki) -> list[tuple[int, int, str | None]]:
    return sorted(
        (p.pageid, r.revid, None if "text" in r.hidden else r.text)
        for p in wiki.pages
        for r in p.revisions
    )


def got(records: list[dict[str, Any]]) -> list[tuple[int, int, str | None]]:
    return sorted((r["pageid"], r["revid"], r.get("text")) for r in records)


def requests_for(wiki: FakeWiki, **match: str) -> list[dict[str, str]]:
    return [p for _, p, _ in wiki.requests if all(p.get(k) == v for k, v in match.items())]


async def test_full_history_with_hidden_fields_and_slots(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(6, 30, namespaces=(0, 1)))  # 180 revisions, 50 per request
    wiki.pages[0].revisions[3].hidden = ("text", "user")
    wiki.pages[1].revisions[5].hidden = ("comment",)
    wiki.pages[2].revisions[7].extra_slots = {"mediainfo": '{"labels": {}}'}
    summary = await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    records = export(tmp_path / "m")
    assert got(records) == expected(wiki)
    assert summary.revisions == 180 and summary.new_revisions == 180
    with Mirror.open(tmp_path / "m", create=False) as mirror:
        # the server's clock at crawl start, where a later sync catches up from
        assert mirror.get_meta("crawl_started") == "2030-01-01T00:00:00Z"
        assert mirror.get_siteinfo("general")["wikiid"] == "fakewiki"
        assert mirror.get_meta("bot_users") == '["FixBot"]'  # for attribution --no-bots
    hidden = next(r for r in records if r["revid"] == wiki.pages[0].revisions[3].revid)
    assert "text" not in hidden and "user" not in hidden and "userid" not in hidden
    assert set(hidden["hidden"]) == {"text", "user"}
    uncommented = next(r for r in records if r["revid"] == wiki.pages[1].revisions[5].revid)
    assert "comment" not in uncommented and uncommented["user"] == "Alice"
    slotted = next(r for r in records if r["revid"] == wiki.pages[2].revisions[7].revid)
    assert slotted["slots"]["mediainfo"]["text"] == '{"labels": {}}'
    assert slotted["sha1"] == sha1(wiki.pages[2].revisions[7].text)
    # the fewest requests: ceil(180 / 50) allrevisions, one catalogue request per namespace
    assert len(requests_for(wiki, list="allrevisions")) == 4
    assert len(requests_for(wiki, generator="allpages")) == 2
    assert all(
        p["arvlimit"] == "max" and p["arvslots"] == "*"
        for p in requests_for(wiki, list="allrevisions")
    )


async def test_logged_in_bot_gets_500_revision_batches(tmp_path: Path, monkeypatch: Any) -> None:
    wiki = FakeWiki(make_pages(20, 60))  # 1,200 revisions
    wiki.high_limit_users.add("Bot")
    settings = settings_for(wiki, tmp_path / "m", user="Bot@harvest", password="secret")
    summary = await run_crawl(settings, transport=wiki.transport())
    assert summary.identity == "Bot"
    assert len(requests_for(wiki, list="allrevisions")) == 3  # 500 + 500 + 200
    login = requests_for(wiki, action="login")
    assert (
        len(login) == 1
        and wiki.requests[[p for _, p, _ in wiki.requests].index(login[0])][2].method == "POST"
    )
    assert got(export(tmp_path / "m")) == expected(wiki)


async def test_wrong_password_is_an_auth_error(tmp_path: Path) -> None:
    from harvester.errors import AuthError

    wiki = FakeWiki(make_pages(1, 1))
    settings = settings_for(wiki, tmp_path / "m", user="Bot@harvest", password="wrong")
    with pytest.raises(AuthError, match="Incorrect username"):
        await run_crawl(settings, transport=wiki.transport())


async def test_old_wiki_falls_back_to_page_histories(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(4, 70, namespaces=(0, 4)), generator="MediaWiki 1.26.4")
    await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    assert got(export(tmp_path / "m")) == expected(wiki)
    assert not requests_for(wiki, list="allrevisions")
    assert len(requests_for(wiki, prop="revisions")) == 4 * 2  # 70 revisions = 2 requests each


async def test_concurrency_splits_the_walk_over_workers(tmp_path: Path) -> None:
    # 4,000 revisions: a quarter over four days, then three quarters in one hour, so
    # the last of four slices of equal length holds most of them, and is split
    wiki = FakeWiki(make_pages(10, 400))
    burst = epoch("2020-02-01T00:00:00Z")
    for page in wiki.pages:
        for rev in page.revisions[100:]:
            rev.timestamp = iso(burst + rev.revid - 1000)  # revids follow time
    wiki.latency = 0.02
    settings = settings_for(wiki, tmp_path / "m", concurrency=4)
    await run_crawl(settings, transport=wiki.transport())
    assert got(export(tmp_path / "m")) == expected(wiki)
    assert wiki.max_in_flight >= 3
    with Mirror.open(tmp_path / "m", create=False) as mirror:
        slices = [cp.state["spec"] for cp in mirror.list_checkpoints("crawl/revisions/")
                  if cp.state]
        counted = sum(cp.items for cp in mirror.list_checkpoints("crawl/revisions/"))
    assert len(slices) > 4
    # the slices tile time: each starts one second after the one before ends
    ranges = sorted((s["start"] or "", s["end"]) for s in slices)
    assert ranges[0][0] == "" and ranges[-1][1] is None
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end is not None and iso(epoch(end) + 1) == start
    assert counted == 4000  # every revision stored once
    # each slice ends in a partial batch: at most 5% above the floor of 80 requests
    assert len(requests_for(wiki, arvslots="*")) <= 84


async def test_resume_after_failure_refetches_nothing(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(5, 60))  # 300 revisions = 6 allrevisions requests
    calls = {"n": 0}

    def die_on_fourth(request: httpx.Request, params: dict[str, str]) -> httpx.Response | None:
        if params.get("list") == "allrevisions":
            calls["n"] += 1
            if calls["n"] == 4:
                return httpx.Response(503, text="down")
        return None

    wiki.faults.append(die_on_fourth)
    with pytest.raises(RetriesExhaustedError):
        await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    with Mirror.open(tmp_path / "m", create=False) as mirror:
        assert mirror.count_revisions() == 150
    wiki.requests.clear()
    summary = await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    assert summary.new_revisions == 150
    assert len(requests_for(wiki, list="allrevisions")) == 3  # resumed at batch 4
    reference = FakeWiki(make_pages(5, 60))
    await run_crawl(settings_for(reference, tmp_path / "ref"), transport=reference.transport())
    assert export(tmp_path / "m") == export(tmp_path / "ref")


async def test_current_only(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(7, 5))
    await run_crawl(
        settings_for(wiki, tmp_path / "m", current_only=True), transport=wiki.transport()
    )
    records = export(tmp_path / "m")
    assert sorted(r["revid"] for r in records) == sorted(p.revisions[-1].revid for p in wiki.pages)


async def test_wikimedia_host_needs_a_contact(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(1, 1), host="en.wikipedia.org")
    with pytest.raises(ConfigError, match="contact"):
        await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    assert wiki.requests == []


async def test_mirror_of_another_wiki_is_refused(tmp_path: Path) -> None:
    first = FakeWiki(make_pages(2, 2), host="one.test")
    await run_crawl(settings_for(first, tmp_path / "m"), transport=first.transport())
    second = FakeWiki(make_pages(2, 2), host="two.test")
    with pytest.raises(MirrorMismatchError):
        await run_crawl(settings_for(second, tmp_path / "m"), transport=second.transport())


async def test_a_scope_that_leaves_part_of_the_mirror_out_is_refused(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(4, 2, namespaces=(0, 1)))
    await run_crawl(settings_for(wiki, tmp_path / "m", namespaces=[0]), transport=wiki.transport())
    assert {r["ns"] for r in export(tmp_path / "m")} == {0}
    before = len(wiki.requests)
    for narrower in ({"namespaces": [1]}, {"namespaces": [0], "current_only": True}):
        with pytest.raises(ConfigError, match="only ever widened"):
            await run_crawl(settings_for(wiki, tmp_path / "m", **narrower),
                            transport=wiki.transport())
    assert all(p.get("list") != "allrevisions" for _, p, _ in wiki.requests[before:])


async def test_wider_namespaces_fetch_only_what_the_mirror_lacks(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(40, 5, namespaces=(0, 1, 4)))
    await run_crawl(settings_for(wiki, tmp_path / "m", namespaces=[0]), transport=wiki.transport())
    before = len(wiki.requests)
    await run_crawl(settings_for(wiki, tmp_path / "m", namespaces=[0, 1]),
                    transport=wiki.transport())
    widening = [p for _, p, _ in wiki.requests[before:]]
    walked = [p for p in widening if p.get("list") == "allrevisions"]
    assert walked and all(p.get("arvnamespace") == "1" for p in walked)
    assert all(p.get("gapnamespace") in (None, "1") for p in widening)
    fresh = FakeWiki(make_pages(40, 5, namespaces=(0, 1, 4)))
    await run_crawl(settings_for(fresh, tmp_path / "f", namespaces=[0, 1]),
                    transport=fresh.transport())
    assert got(export(tmp_path / "m")) == got(export(tmp_path / "f"))
    assert len(widening) < len(fresh.requests)
    # the same command again: nothing left to fetch
    before = len(wiki.requests)
    await run_crawl(settings_for(wiki, tmp_path / "m", namespaces=[0, 1]),
                    transport=wiki.transport())
    assert not [p for _, p, _ in wiki.requests[before:] if p.get("list") == "allrevisions"]


async def test_a_current_only_mirror_takes_the_histories_when_asked(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(10, 4))
    await run_crawl(settings_for(wiki, tmp_path / "m", current_only=True),
                    transport=wiki.transport())
    assert len(export(tmp_path / "m")) == 10
    await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    assert got(export(tmp_path / "m")) == expected(wiki)


async def test_oauth_bearer_token(tmp_path: Path) -> None:
    from harvester.errors import AuthError

    wiki = FakeWiki(make_pages(2, 3))
    wiki.high_limit_users.add("OAuthUser")
    settings = settings_for(wiki, tmp_path / "m", oauth_token="good-token")
    summary = await run_crawl(settings, transport=wiki.transport())
    assert summary.identity == "OAuthUser"
    assert all(r.headers["Authorization"] == "Bearer good-token" for _, _, r in wiki.requests)
    other = FakeWiki(make_pages(2, 3))
    with pytest.raises(AuthError, match="not accepted"):
        await run_crawl(settings_for(other, tmp_path / "n", oauth_token="bad-token"),
                        transport=other.transport())


def test_time_slices_cost_at_most_five_percent_more_requests() -> None:
    from jobs.streams import slice_budget, slice_count

    assert slice_budget(4, 27_789, 500) == 3  # logged in: 56 requests, 3 slices
    assert slice_budget(4, 27_789, 50) == 28  # anonymous: 556 requests
    assert slice_budget(4, 3_072, 500) == 1
    assert slice_budget(3, None, 50) == 12  # no statistics: four a worker
    assert slice_count(4, 27_789, 50) == 4  # one a worker to start with
    assert slice_count(4, 27_789, 500) == 3
    for workers, revisions, per_request in [(4, 10**6, 500), (8, 12_345, 50), (2, 999, 50)]:
        budget = slice_budget(workers, revisions, per_request)
        assert 1 <= slice_count(workers, revisions, per_request) <= min(workers, budget)
        assert budget - 1 <= revisions / per_request * 0.05


async def test_idle_workers_never_miss_the_end_of_the_walk(tmp_path: Path) -> None:
    """A worker that tried a split while the last piece finished must still see the end
    (it once waited forever). Several namespaces, page histories, three workers."""
    for run in range(6):
        wiki = FakeWiki(make_pages(12, 70, namespaces=(0, 4, 10)), generator="MediaWiki 1.26.4")
        wiki.latency = 0.001
        with trio.fail_after(30):
            await run_crawl(settings_for(wiki, tmp_path / f"m{run}", concurrency=3),
                            transport=wiki.transport())
        assert got(export(tmp_path / f"m{run}")) == expected(wiki)


async def test_the_mirror_remembers_its_wiki(tmp_path: Path) -> None:
    """`crawl --mirror DIR` without a URL goes on with the recorded wiki; `stats` names it."""
    from jobs import read

    wiki = FakeWiki(make_pages(3, 4))
    await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    summary = await run_crawl(settings_for(wiki, tmp_path / "m", api=None),
                              transport=wiki.transport())
    assert summary.api_url == wiki.api_url and summary.revisions == 12
    out = io.StringIO()
    stats = read.run_stats(str(tmp_path / "m"), out, as_json=True)
    assert stats["wiki"] == {"name": "Fake", "database": "fakewiki", "api": wiki.api_url}
    assert stats["last_run"]["command"] == "crawl"
    text = io.StringIO()
    read.run_stats(str(tmp_path / "m"), text, as_json=False)
    assert f"wiki       Fake (fakewiki), {wiki.api_url}" in text.getvalue()
    with pytest.raises(ConfigError, match="records none"):
        await run_crawl(settings_for(wiki, tmp_path / "new", api=None),
                        transport=wiki.transport())
