"""Crawl and sync a real MediaWiki through a proxy that injects faults (tests/faultproxy.py).

About a fifth of the API's answers are replaced by throttling, API errors, broken
bodies, resets and stalls; the mirror must still come out identical to the
fault-free truth, every announced ``Retry-After`` must hold back every worker,
and a continuation that repeats forever must end the crawl with a clear error.
Run with ``-s`` to see the figures (requests, faults by kind, revisions compared).
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from jobs.crawl import CrawlSummary, run_crawl
from jobs.outcome import EXIT_REMOTE
from jobs.sync import run_sync
from tests.faultproxy import (
    FAULT_KINDS,
    OTHER_KINDS,
    PASS,
    REPEAT_CONTINUE,
    THROTTLE_KINDS,
    FaultPlan,
    FaultProxy,
    LogEntry,
)
from tests.ground_truth import parse_dump
from tests.helpers import (
    ROOT,
    assert_matches_dump,
    by_revid,
    crawl_settings,
    export_records,
    stored_revisions,
    sync_settings,
)

pytestmark = pytest.mark.mediawiki

EVERY = 5  # a fifth of the requests
TIMEOUT = 2.0  # the client's --timeout; a stall lasts longer
STALL = 3.0
# Requests the proxy leaves alone: the discovery probe (the one request without
# maxlag; every other request carries it, client.call). Throttling, lag and resets are
# retried there too, but an answer that is not JSON means "no API at this URL".
SINGLE_ATTEMPT = "maxlag"
# A request the client had already sent when a throttle answer reached it may
# arrive after that answer; such requests are not held by the pause.
IN_FLIGHT = 0.25
# After a pushback the budget spaces request starts by at least its floor (1 s),
# shrunk by at most one success (x 0.8) before the second start.
MIN_SPACING_AFTER_PUSHBACK = 0.8 - 0.1


def spare_single_attempts(method: str, params: dict[str, str]) -> bool:
    return SINGLE_ATTEMPT not in params


def faulty(seed: int) -> FaultPlan:
    """Every fifth request faulted, every kind once in the first round; after that only
    the kinds that do not throttle, because each throttle signal slows the whole run by
    several seconds by design (a pause, then spacing that shrinks by a fifth a success)."""
    return FaultPlan(every=EVERY, seed=seed, kinds=FAULT_KINDS, then_kinds=OTHER_KINDS,
                     spare=spare_single_attempts, retry_after=1, stall_seconds=STALL)


def describe(proxy_counts: Counter[str], entries: list[LogEntry]) -> str:
    faulted = sum(proxy_counts.values())
    kinds = ", ".join(f"{kind}={n}" for kind, n in sorted(proxy_counts.items()))
    return f"{len(entries)} requests, {faulted} faulted ({faulted / len(entries):.0%}): {kinds}"


def fmt(seconds: list[float]) -> str:
    return f"{min(seconds):.2f}-{max(seconds):.2f} s (median {statistics.median(seconds):.2f})"


def recorded_runs(mirror: Path) -> list[dict[str, Any]]:
    """The mirror's runs, oldest first: command, status and the run's statistics."""
    db = sqlite3.connect(mirror / "mirror.sqlite")
    try:
        rows = db.execute("select command, status, stats from runs order by id").fetchall()
    finally:
        db.close()
    return [{"command": c, "status": s, **json.loads(stats or "{}")} for c, s, stats in rows]


def idle_seconds(entries: list[LogEntry]) -> float:
    """Time between the first and the last request during which none was outstanding."""
    idle, busy_until = 0.0, entries[0].arrived
    for entry in entries:
        idle += max(0.0, entry.arrived - busy_until)
        busy_until = max(busy_until, entry.answered)
    return idle


def spared(entries: list[LogEntry]) -> int:
    return sum(spare_single_attempts(e.method, e.params) for e in entries)


@dataclass
class FaultedCrawl:
    mirror: Path
    summary: CrawlSummary
    entries: list[LogEntry]
    counts: Counter[str]
    seconds: float


@pytest.fixture(scope="module")
def faulted_crawl(shared_server: Any, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[FaultedCrawl]:
    """One crawl with three workers through a fifth of faulted answers; the tests read it."""
    mirror = tmp_path_factory.mktemp("faulted") / "mirror"
    with FaultProxy(shared_server.api_url, faulty(seed=20240)) as proxy:
        settings = crawl_settings(proxy.api_url, mirror, concurrency=3, request_timeout=TIMEOUT)
        began = time.monotonic()
        summary = trio.run(run_crawl, settings)
        seconds = time.monotonic() - began
    yield FaultedCrawl(mirror, summary, proxy.entries(), proxy.counts(), seconds)


def test_crawl_through_faults_equals_dumpbackup(
    faulted_crawl: FaultedCrawl, fixture_dump: Path
) -> None:
    run = faulted_crawl
    figures = describe(run.counts, run.entries)
    revisions = assert_matches_dump(run.mirror, fixture_dump)  # revision by revision
    lost = revisions - stored_revisions(run.mirror)
    stats = recorded_runs(run.mirror)[-1]
    print(f"\nfaulted crawl: {figures}; {revisions} revisions compared, {lost} lost, "
          f"client retries {stats['retries']}, {run.seconds:.1f} s, of which "
          f"{idle_seconds(run.entries):.1f} s with no request at the wiki")
    assert lost == 0 and run.summary.revisions == revisions, figures
    assert stats["status"] == "complete", stats
    missing = [kind for kind in FAULT_KINDS if run.counts[kind] == 0]
    assert not missing, f"never injected: {missing}; {figures}"
    faulted = sum(run.counts.values())
    assert faulted == (len(run.entries) - spared(run.entries)) // EVERY, figures
    # every injected fault was seen and retried (a slow answer may add a timeout)
    assert stats["retries"] >= faulted, (stats, figures)


def test_retry_after_holds_every_worker_and_pushback_spaces_them(
    faulted_crawl: FaultedCrawl,
) -> None:
    entries = faulted_crawl.entries
    announced = [e for e in entries if e.retry_until is not None]
    assert {e.outcome for e in announced} >= {"http429_retry_seconds", "http429_retry_date",
                                              "http503_retry_seconds", "http503_retry_date",
                                              "maxlag"}
    early = [
        (told.number, told.outcome, round(later.arrived - told.answered, 3), later.walk)
        for told in announced for later in entries
        if told.answered + IN_FLIGHT < later.arrived < (told.retry_until or 0)
    ]
    assert not early, f"requests before the announced Retry-After had elapsed: {early[:5]}"
    # every worker, not only the one told: count the walks busy just before an
    # announcement whose next request came only after it had elapsed
    held: Counter[int] = Counter()
    for told in announced:
        busy = {e.walk for e in entries if told.answered - 3.0 < e.arrived < told.answered}
        for walk in busy:
            after = [e for e in entries if e.walk == walk and e.arrived > told.answered]
            held[told.number] += bool(after) and after[0].arrived >= (told.retry_until or 0)
    assert max(held.values()) >= 2, f"no pause held two workers at once: {held}"
    # throttling spaces every worker's requests out: the two first starts after a
    # pushback's pause are a second (less one recovery step) apart
    arrivals = [e.arrived for e in entries]
    gaps_after, gaps_before = [], []
    for told in (e for e in entries if e.outcome in THROTTLE_KINDS):
        resume = told.retry_until or told.answered + IN_FLIGHT
        later = [t for t in arrivals if t > resume]
        earlier = [t for t in arrivals if t <= told.arrived]
        if len(later) >= 2 and len(earlier) >= 2:
            gaps_after.append(later[1] - later[0])
            gaps_before.append(earlier[-1] - earlier[-2])
    print(f"\nthrottle: {len(announced)} Retry-After checked against {len(entries)} requests, "
          f"{sum(held.values())} worker pauses seen; gaps between starts after a pushback "
          f"{fmt(gaps_after)}, before it {fmt(gaps_before)}")
    assert len(gaps_after) >= 5
    assert min(gaps_after) >= MIN_SPACING_AFTER_PUSHBACK, sorted(gaps_after)[:5]
    assert statistics.median(gaps_after) >= 1.5 * statistics.median(gaps_before)


async def test_sync_through_faults_equals_a_fresh_crawl(
    wiki_server: Any, changer: Any, bot_password: tuple[str, str], tmp_path: Path
) -> None:
    user, secret = bot_password  # the crawls log in: 500 revisions a request, quicker
    mirror = tmp_path / "mirror"
    with FaultProxy(wiki_server.api_url) as proxy:
        # no faults yet; the mirror remembers the proxy as its wiki, so the sync goes there
        await run_crawl(crawl_settings(proxy.api_url, mirror, user=user, password=secret))
        for i in range(6):
            changer.create(f"Fault sync {i}", f"Page {i}, first version.")
            changer.edit(f"Fault sync {i}", f"Page {i}, second version.", f"edit {i}",
                         minor=i % 2 == 0)
        changer.edit("Fault sync 0", "Written without an account.", "anon", as_anonymous=True)
        changer.move("Fault sync 1", "Fault sync 1 moved", leave_redirect=True)
        changer.move("Fault sync 2", "Fault sync 2 moved", leave_redirect=False)
        changer.delete("Fault sync 3")
        changer.delete("Fault sync 4")
        changer.undelete("Fault sync 4")
        changer.edit("Rock 'n' roll", "Rewritten after the crawl.", "later edit")
        before = len(proxy.entries())
        proxy.configure(faulty(seed=7))
        summary = await run_sync(sync_settings(mirror, request_timeout=TIMEOUT))
    entries = proxy.entries()[before:]
    counts = Counter(e.outcome for e in entries if e.outcome != PASS)
    figures = describe(counts, entries)
    print(f"\nfaulted sync: {figures}; applied {dict(summary.applied)}")
    assert summary.applied["moved"] == 2 and summary.applied["deleted"] == 2, summary.applied
    assert sum(counts.values()) == len(entries) // EVERY >= 2, figures
    assert recorded_runs(mirror)[-1]["status"] == "complete"
    fresh = tmp_path / "fresh"
    await run_crawl(crawl_settings(wiki_server.api_url, fresh, user=user, password=secret))
    ours, theirs = whole_by_revid(export_records(mirror)), whole_by_revid(export_records(fresh))
    assert sorted(ours) == sorted(theirs)
    differing = [revid for revid in theirs if ours[revid] != theirs[revid]]
    assert not differing, str([ours[differing[0]], theirs[differing[0]]])[:1500]


def whole_by_revid(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Whole export records (every field, slots and tags included) by revision id."""
    return {record["revid"]: record for record in records}


def test_repeating_continuation_stops_the_cli(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    def main_walk(method: str, params: dict[str, str]) -> bool:
        return params.get("list") == "allrevisions" and "content" in params.get("arvprop", "")

    mirror = tmp_path / "mirror"
    # the Talk namespace: about 200 revisions, a few requests of 50
    command = [sys.executable, "-m", "harvester", "crawl", "", "--mirror", str(mirror),
               "--max-rps", "0", "--quiet", "--namespaces", "1"]
    with FaultProxy(shared_server.api_url, FaultPlan(repeat_continue=main_walk)) as proxy:
        command[4] = proxy.api_url
        began = time.monotonic()
        looped = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        seconds = time.monotonic() - began
        walked = [e for e in proxy.entries() if main_walk(e.method, e.params)]
        proxy.configure(FaultPlan())  # the wiki behaves again: the crawl resumes
        resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    print(f"\nrepeating continuation: exit {looped.returncode} after {len(walked)} "
          f"requests of the walk, {seconds:.1f} s: {looped.stderr.strip()}")
    assert looped.returncode == EXIT_REMOTE, looped.stderr
    lines = looped.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harvester: "), looped.stderr
    assert "continuation" in lines[0] and "again" in lines[0]
    assert [e.outcome for e in walked] == [PASS, REPEAT_CONTINUE]
    assert resumed.returncode == 0, resumed.stderr
    assert [r["status"] for r in recorded_runs(mirror)] == ["failed", "complete"]
    truth = by_revid([r for r in parse_dump(fixture_dump) if r["ns"] == 1])
    ours = by_revid(export_records(mirror))
    assert len(truth) > 150 and ours == truth
