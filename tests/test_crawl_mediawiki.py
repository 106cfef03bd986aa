"""The crawl against a real MediaWiki on 127.0.0.1, checked against dumpBackup.php --full."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import demo_wiki
import httpx
import pytest

from jobs.crawl import run_crawl
from tests.ground_truth import parse_dump
from tests.helpers import (
    ROOT,
    assert_matches_dump,
    by_revid,
    crawl_settings,
    export_records,
    harvester_command,
    stored_revisions,
)

pytestmark = pytest.mark.mediawiki


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that remembers the query parameters of each request."""

    def __init__(self) -> None:
        super().__init__()
        self.params: list[dict[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        if request.method == "POST":
            query.update(parse_qs(request.content.decode()))
        self.params.append({k: v[-1] for k, v in query.items()})
        return await super().handle_async_request(request)

    def count(self, **match: str) -> int:
        return sum(all(p.get(k) == v for k, v in match.items()) for p in self.params)


async def test_anonymous_crawl_equals_dumpbackup(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    counter = CountingTransport()
    summary = await run_crawl(
        crawl_settings(shared_server.api_url, tmp_path / "m"), transport=counter
    )
    revisions = assert_matches_dump(tmp_path / "m", fixture_dump)
    assert summary.revisions == revisions
    # the API floor: every allrevisions request but the last carries 50 revisions
    assert counter.count(list="allrevisions") == math.ceil(revisions / 50)
    records = export_records(tmp_path / "m")
    hidden = [r for r in records if r.get("hidden")]
    assert {h for r in hidden for h in r["hidden"]} >= {"text", "user", "comment"}
    # the dump has no tags: the wiki's own table says them
    tags = demo_wiki.wiki_revision_tags(shared_server.wiki)
    assert tags and {r["revid"]: sorted(r["tags"]) for r in records if r["tags"]} == tags
    # and the page with a second slot came with it, compared above slot by slot
    assert any("extra" in r.get("slots", {}) for r in records)


async def test_bot_password_crawl_uses_500_revision_batches(
    shared_server: Any, fixture_dump: Path, bot_password: tuple[str, str], tmp_path: Path
) -> None:
    counter = CountingTransport()
    user, secret = bot_password
    settings = crawl_settings(shared_server.api_url, tmp_path / "m", user=user, password=secret)
    summary = await run_crawl(settings, transport=counter)
    revisions = assert_matches_dump(tmp_path / "m", fixture_dump)
    assert summary.identity == user.split("@")[0]
    assert counter.count(list="allrevisions") == math.ceil(revisions / 500)
    assert counter.count(action="login") == 1


async def test_parallel_and_page_history_modes_agree(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    await run_crawl(crawl_settings(shared_server.api_url, tmp_path / "c4", concurrency=4))
    assert_matches_dump(tmp_path / "c4", fixture_dump)
    await run_crawl(crawl_settings(shared_server.api_url, tmp_path / "pages", history_mode="pages",
                                   concurrency=3))  # page ranges split among the workers
    assert_matches_dump(tmp_path / "pages", fixture_dump)


async def test_namespace_filter_and_current_only(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    truth = list(parse_dump(fixture_dump))
    await run_crawl(crawl_settings(shared_server.api_url, tmp_path / "ns", namespaces=[1, 10]))
    ours = export_records(tmp_path / "ns")
    assert sorted(r["revid"] for r in ours) == sorted(
        r["revid"] for r in truth if r["ns"] in (1, 10)
    )
    await run_crawl(crawl_settings(shared_server.api_url, tmp_path / "cur", current_only=True))
    latest: dict[int, int] = {}
    for r in truth:
        latest[r["pageid"]] = max(latest.get(r["pageid"], 0), r["revid"])
    assert sorted(r["revid"] for r in export_records(tmp_path / "cur")) == sorted(latest.values())


async def test_widening_namespaces_fetches_only_the_new_ones(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    """A --namespaces 0 mirror widened to 0,1 holds what a fresh crawl of 0,1 holds, for
    the requests of namespace 1 alone; and a --current-only mirror takes the histories."""
    truth = list(parse_dump(fixture_dump))
    api = shared_server.api_url
    first = await run_crawl(crawl_settings(api, tmp_path / "m", namespaces=[0]))
    widened = await run_crawl(crawl_settings(api, tmp_path / "m", namespaces=[0, 1]))
    fresh = await run_crawl(crawl_settings(api, tmp_path / "fresh", namespaces=[0, 1]))
    alone = await run_crawl(crawl_settings(api, tmp_path / "one", namespaces=[1]))
    assert by_revid(export_records(tmp_path / "m")) == by_revid(export_records(tmp_path / "fresh"))
    assert sorted(by_revid(export_records(tmp_path / "m"))) == sorted(
        r["revid"] for r in truth if r["ns"] in (0, 1))
    assert widened.new_revisions == alone.revisions
    # the requests of a crawl of namespace 1 alone, give or take the robots.txt copy
    assert widened.requests <= alone.requests
    print(f"\nwidening 0 -> 0,1: {first.requests} + {widened.requests} requests; "
          f"a fresh crawl of 0,1: {fresh.requests}; of 1 alone: {alone.requests}")
    await run_crawl(crawl_settings(api, tmp_path / "cur", current_only=True))
    await run_crawl(crawl_settings(api, tmp_path / "cur"))
    assert_matches_dump(tmp_path / "cur", fixture_dump)


def crawl_until_killed(url: str, mirror: Path, threshold: int) -> int:
    """Start a crawl, SIGKILL it once ``threshold`` revisions are stored; return that count."""
    command = harvester_command("crawl", url, "--mirror", str(mirror), "--quiet",
                                "--max-rps", "25")
    return run_until_stored(command, mirror, threshold)


def run_until_stored(command: list[str], mirror: Path, threshold: int) -> int:
    """Run ``command``, SIGKILL it once ``threshold`` revisions are stored; return that count."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if stored_revisions(mirror) >= threshold:
            break
        time.sleep(0.01)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return stored_revisions(mirror)


def test_sigkill_at_several_points_then_resume_is_identical(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "killed"
    seen = [
        crawl_until_killed(shared_server.api_url, mirror, threshold)
        for threshold in (1, 400, 1200, 2000)
    ]
    assert seen == sorted(seen) and seen[-1] > seen[0]  # each run resumed, none went back
    done = subprocess.run(
        harvester_command("crawl", shared_server.api_url, "--mirror", str(mirror), "--quiet"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert_matches_dump(mirror, fixture_dump)
    db = sqlite3.connect(mirror / "mirror.sqlite")
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db.execute("select count(*) from revisions").fetchone()[0] == len(
        list(parse_dump(fixture_dump))
    )


def test_cli_finds_the_api_from_a_page_url(shared_server: Any, tmp_path: Path) -> None:
    page = shared_server.url + "/index.php?title=Main_Page"
    done = subprocess.run(
        harvester_command(
            "crawl", page, "--mirror", str(tmp_path / "m"), "--namespaces", "4", "--max-rps", "0"
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "crawl complete" in done.stdout and shared_server.api_url in done.stdout


@pytest.mark.parametrize(("signum", "code", "how"), [
    (signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_stops_the_crawl_at_a_safe_point(
    shared_server: Any, fixture_dump: Path, tmp_path: Path, signum: int, code: int, how: str
) -> None:
    """SIGTERM (systemd, kill) and Ctrl-C: the run is recorded as interrupted, the exit
    code says which, and the same command finishes the crawl."""
    mirror = tmp_path / "m"
    command = harvester_command("crawl", shared_server.api_url, "--mirror", str(mirror),
                                "--quiet", "--max-rps", "25", "--concurrency", "2")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while process.poll() is None and stored_revisions(mirror) < 500:
        assert time.monotonic() < deadline, "nothing was stored"
        time.sleep(0.01)
    assert process.poll() is None, "the crawl ended before the signal"
    process.send_signal(signum)
    stderr = process.communicate(timeout=60)[1].decode()
    assert (process.returncode, stderr) == (
        code, f"harvester: {how}; the mirror is consistent, run again to resume\n")
    db = sqlite3.connect(f"file:{mirror / 'mirror.sqlite'}?mode=ro", uri=True)
    status = db.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0]
    db.close()
    assert status == "interrupted"
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_matches_dump(mirror, fixture_dump)
