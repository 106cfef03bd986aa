"""`harvester sync` against a real MediaWiki: after any change, sync equals a fresh crawl."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from jobs.crawl import run_crawl
from jobs.sync import CATCH_UP, run_sync
from storage.mirror import Mirror
from tests.helpers import ROOT, crawl_settings, export_records, sync_settings

pytestmark = pytest.mark.mediawiki
MARKER = "Zyxwvut-hidden-marker"


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: r["revid"])


async def assert_sync_equals_fresh_crawl(api_url: str, synced: Path, fresh: Path) -> None:
    await run_crawl(crawl_settings(api_url, fresh))
    ours, theirs = comparable(export_records(synced)), comparable(export_records(fresh))
    assert [r["revid"] for r in ours] == [r["revid"] for r in theirs]
    differing = [(a, b) for a, b in zip(ours, theirs, strict=True) if a != b]
    assert not differing, str(differing[0])[:1500]


async def test_sync_follows_edits_moves_deletions_and_hiding(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    # edits and creations, as registered and anonymous users
    changer.create("Sync new page", "Brand new.")
    changer.edit("Sync new page", "Brand new, edited.", "second", minor=True)
    changer.edit("Sync new page", "Brand new, edited again.", "anon", as_anonymous=True)
    secret_revid = changer.edit("Sync new page", f"Oops: {MARKER}", "secret text")
    changer.edit("Sync new page", "Cleaned up.", "remove it")
    # moves with and without a redirect left behind
    changer.create("Sync move A", "A")
    changer.create("Sync move B", "B")
    changer.move("Sync move A", "Sync moved A", leave_redirect=True)
    changer.move("Sync move B", "Sync moved B", leave_redirect=False)
    # deletion, and a deletion undone
    changer.create("Sync doomed", f"Doomed {MARKER}")
    changer.create("Sync phoenix", "Rises again")
    changer.delete("Sync doomed")
    changer.delete("Sync phoenix")
    changer.undelete("Sync phoenix")
    # revision deletion of text, user and comment
    changer.hide_revision(secret_revid, text=True, user=True, comment=True)
    summary = await run_sync(sync_settings(mirror))
    assert summary.mode == "recentchanges"
    assert summary.applied["moved"] == 2 and summary.applied["deleted"] == 2
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")
    for path in mirror.iterdir():  # hidden and deleted text is gone from the store's bytes
        assert MARKER.encode() not in path.read_bytes(), path
    again = await run_sync(sync_settings(mirror))
    assert sum(again.applied.values()) == 0 and again.requests <= 2
    db = sqlite3.connect(mirror / "mirror.sqlite")
    runs = db.execute("select command, status from runs order by id").fetchall()
    assert runs[-2:] == [("sync", "complete"), ("sync", "complete")]
    db.close()


async def test_sync_follows_merges_imports_and_renames(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    import wiki_changes

    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    changer.create("Sync merge source", "old content")
    changer.create("Sync merge dest", "newer content")
    changer.merge_history("Sync merge source", "Sync merge dest")
    changer.import_pages(wiki_changes.old_revisions_xml("Sync imported", 4, 2001))
    changer.protect("Sync merge dest")
    changer.create("Sync model", "{}")
    changer.change_content_model("Sync model", "json")
    summary = await run_sync(sync_settings(mirror))
    assert summary.applied["merged"] == 1 and summary.applied["imported"] == 1
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")


async def test_user_rename_is_followed(wiki_server: Any, changer: Any, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    changer.rename_user("Alice", "Alicia")
    summary = await run_sync(sync_settings(mirror))
    assert summary.applied["user renames"] == 1
    users = {r.get("user") for r in export_records(mirror)}
    assert "Alicia" in users and "Alice" not in users
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")


@pytest.mark.parametrize("workers", [1, 3])
async def test_expired_recentchanges_fall_back_to_catch_up(
    wiki_server: Any, changer: Any, tmp_path: Path, workers: int
) -> None:
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    changer.create("Sync late page", "x")
    changer.edit("Sync late page", "y", "edit")
    changer.create("Sync gone", "z")
    changer.delete("Sync gone")
    time.sleep(2.5)  # timestamps have whole seconds: let the changes age past the max age
    changer.set_rc_max_age(1)
    changer.expire_recent_changes()
    summary = await run_sync(sync_settings(mirror, concurrency=workers))
    assert summary.mode.startswith("catch-up")
    assert summary.applied["revisions"] >= 2
    with Mirror.open(mirror, create=False) as opened:  # its slices are gone with it
        assert opened.list_checkpoints(CATCH_UP) == []
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")


def test_second_sync_on_a_locked_mirror_exits_at_once(wiki_server: Any, tmp_path: Path) -> None:
    from jobs.outcome import EXIT_LOCKED
    from storage.lock import MirrorLock

    mirror = tmp_path / "mirror"
    trio.run(run_crawl, crawl_settings(wiki_server.api_url, mirror))
    with MirrorLock(mirror):
        done = subprocess.run([sys.executable, "-m", "harvester", "sync", "--mirror", str(mirror)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == EXIT_LOCKED, done.stderr
    assert "in use" in done.stderr and "Traceback" not in done.stderr


def test_sync_all_keeps_going_past_a_broken_wiki(wiki_server: Any, tmp_path: Path) -> None:
    good = tmp_path / "good"
    trio.run(run_crawl, crawl_settings(wiki_server.api_url, good))
    config = tmp_path / "wikis.toml"
    config.write_text(
        "max_requests_per_second = 0\n"
        f'[[wiki]]\nname = "broken"\nmirror = "{tmp_path / "never-crawled"}"\n'
        # a config api that is not the mirror's wiki is an error, never replaced in silence
        f'[[wiki]]\nname = "elsewhere"\nmirror = "{good}"\napi = "http://127.0.0.1:9/api.php"\n'
        f'[[wiki]]\nname = "good"\nmirror = "{good}"\napi = "{wiki_server.api_url}"\n'
    )
    done = subprocess.run([sys.executable, "-m", "harvester", "sync", "--all", "--config",
                           str(config)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "broken:" in done.stderr and "good: sync (recentchanges)" in done.stdout
    assert f"elsewhere: {good} is a mirror of {wiki_server.api_url}, but " in done.stderr


async def test_suppression_is_followed_with_the_suppression_log(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    import demo_wiki
    import wiki_changes

    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    changer.create("Sync suppressed", f"Private: {MARKER}")
    revid = changer.edit("Sync suppressed", "Public again.", "fix")
    first = next(r for r in changer.recent_changes() if r.get("title") == "Sync suppressed")
    changer.hide_revision(first["revid"], text=True, suppress=True)
    assert revid != first["revid"]
    # reading the suppression log takes the suppressionlog right and, for a bot
    # password, the viewrestrictedlogs grant
    wiki_changes.grant_rights(wiki_server.wiki, ["suppressionlog"])
    user, secret = demo_wiki.create_bot_password(
        wiki_server.wiki, appid="oversee",
        grants=("basic", "highvolume", "oversight", "viewrestrictedlogs"))
    summary = await run_sync(sync_settings(mirror, user=user, password=secret))
    # (a suppression the fixture made while it was built may fall in the overlap too)
    assert summary.applied["suppressed"] >= 1
    for path in mirror.iterdir():
        assert MARKER.encode() not in path.read_bytes(), path
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")


def test_changes_during_a_long_crawl_are_caught_by_the_next_sync(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    crawl = subprocess.Popen(
        [sys.executable, "-m", "harvester", "crawl", wiki_server.api_url, "--mirror",
         str(mirror), "--quiet", "--max-rps", "8"], cwd=ROOT, stderr=subprocess.PIPE)
    # the fixture's first pages by time are long crawled when these land
    changer.edit("Rock 'n' roll", "Rewritten during the crawl.", "during crawl")
    changer.create("Sync during crawl", "new while crawling")
    changer.move("Sync during crawl", "Sync during crawl (moved)", leave_redirect=False)
    changer.delete("Ελληνική γλώσσα")
    assert crawl.wait(timeout=300) == 0
    trio.run(run_sync, sync_settings(mirror))
    trio.run(assert_sync_equals_fresh_crawl, wiki_server.api_url, mirror, tmp_path / "fresh")


async def test_text_shown_again_is_fetched_again(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    hidden = changer.edit("Sync unhide", "Shown, hidden, shown again.", "first")
    changer.edit("Sync unhide", "Latest.", "second")
    changer.hide_revision(hidden, text=True, comment=True)
    await run_sync(sync_settings(mirror))
    record = next(r for r in export_records(mirror) if r["revid"] == hidden)
    assert "text" not in record and "comment" not in record
    changer.unhide_revision(hidden, text=True, comment=True)
    await run_sync(sync_settings(mirror))
    record = next(r for r in export_records(mirror) if r["revid"] == hidden)
    assert record["text"] == "Shown, hidden, shown again." and record["comment"] == "first"
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")


async def test_hiding_the_text_of_a_stored_revision_purges_it(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    """A revision crawled with its text, hidden afterwards: the page's metadata-only
    history reports it as ``sha1hidden`` alone, and that must purge the text too."""
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    records = export_records(mirror)
    latest = {r["pageid"]: r["revid"] for r in records}  # export is oldest first per page
    shas = [r.get("sha1") for r in records]
    victim = next(r for r in records if r["ns"] == 0 and latest[r["pageid"]] != r["revid"]
                  and "text" in r and shas.count(r["sha1"]) == 1)
    changer.hide_revision(victim["revid"], text=True)
    await run_sync(sync_settings(mirror))
    record = next(r for r in export_records(mirror) if r["revid"] == victim["revid"])
    assert "text" not in record and "sha1" not in record
    db = sqlite3.connect(mirror / "mirror.sqlite")
    left = db.execute("SELECT count(*) FROM texts WHERE sha1 = ?", (victim["sha1"],)).fetchone()
    db.close()
    assert left == (0,)
    await assert_sync_equals_fresh_crawl(wiki_server.api_url, mirror, tmp_path / "fresh")


def add_to_bot_group(api_url: str, user: str) -> None:
    """Through the API as a bureaucrat, so that the rights log records it (as on a wiki)."""
    import demo_wiki
    import httpx

    with httpx.Client() as http:
        def call(method: str, **params: str) -> dict[str, Any]:
            params |= {"format": "json", "formatversion": "2"}
            response = (http.post(api_url, data=params) if method == "POST"
                        else http.get(api_url, params=params))
            return dict(response.json())

        token = call("GET", action="query", meta="tokens", type="login")
        login = call("POST", action="clientlogin", username=demo_wiki.ADMIN_USER,
                     password=demo_wiki.ADMIN_PASSWORD, loginreturnurl="http://127.0.0.1/",
                     logintoken=token["query"]["tokens"]["logintoken"])
        assert login["clientlogin"]["status"] == "PASS", login
        token = call("GET", action="query", meta="tokens", type="userrights")
        done = call("POST", action="userrights", user=user, add="bot",
                    token=token["query"]["tokens"]["userrightstoken"])
        assert "bot" in done["userrights"]["added"], done


async def test_bot_group_changes_reach_attribution(wiki_server: Any, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))
    with Mirror.open(mirror, create=False) as opened:
        assert "Zoë" not in json.loads(opened.get_meta("bot_users") or "[]")
    add_to_bot_group(wiki_server.api_url, "Zoë")
    await run_sync(sync_settings(mirror))
    with Mirror.open(mirror, create=False) as opened:
        assert "Zoë" in json.loads(opened.get_meta("bot_users") or "[]")


async def test_sync_follows_a_widened_scope(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror, namespaces=[0]))
    await run_crawl(crawl_settings(wiki_server.api_url, mirror, namespaces=[0, 1]))
    talk = changer.edit("Talk:Widened scope", "A talk page, after the widening.", "talk")
    article = changer.edit("Widened scope", "An article, after the widening.", "article")
    await run_sync(sync_settings(mirror))
    revids = {r["revid"] for r in export_records(mirror)}
    assert {talk, article} <= revids
