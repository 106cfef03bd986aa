"""Crash soak: SIGKILL `harvester crawl` and `harvester sync` at random instants, and fill the disk.

A killed run must leave a mirror that is sound at once (integrity_check, every
text decompresses to its sha1, no slot without its text, no text without a
slot, no row without its parent) and that the next run completes to exactly
the wiki: the crawl to MediaWiki's own dump, revision by revision; the sync to
a fresh crawl of the changed wiki. A crawl into a full disk must stop with one
line and exit code 6, and resume to the same result once there is space.

The kill instants come from a seeded RNG; the seed is printed (``-s`` shows
it) and ``SOAK_SEED=N`` replays one. CI makes a few kills per test; a long soak:

    MW_FIXTURE_CACHE=/tmp/mwcache python3 -m pytest -q -s tests/test_crash_soak.py \\
        --soak-trials 100
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from jobs.crawl import run_crawl
from jobs.outcome import EXIT_MIRROR
from storage.mirror import DB_NAME
from tests.ground_truth import parse_dump
from tests.helpers import (
    ROOT,
    by_revid,
    check_crawl_checkpoints,
    check_store,
    count_rows,
    crawl_settings,
    export_records,
    harvester_command,
    stored_revisions,
)

pytestmark = pytest.mark.mediawiki

CRAWL_TRIALS = 6
SYNC_TRIALS = 4
# A killed sync redoes its work from the high-water mark; after this many kills
# in one round of changes the next run is left to finish.
KILLS_PER_SYNC_ROUND = 4
# When a kill lands. Start-up (interpreter, login, opening the mirror) takes
# from 0.7 s to over 2 s on a busy 2-core machine, so most kills are timed from
# the moment the run records itself in the `runs` table, when its real work
# begins: uniformly within WORK_WINDOW seconds after that. (Unloaded, a crawl of
# the fixture then runs for about 7 s, a sync of one round of changes at
# SYNC_MAX_RPS for about 2.5 s.) The other kills land during start-up, within
# STARTUP_WINDOW seconds of the process start.
STARTUP_SHARE = 0.2
STARTUP_WINDOW = 1.0
CRAWL_WORK_WINDOW = 3.0
SYNC_WORK_WINDOW = 3.0
FIRST_SYNC_KILL_WINDOW = 0.5
SYNC_MAX_RPS = "6"
# Small enough that the fixture's crawl (about 2.5 MB) cannot fit, big enough
# for the schema and a few batches: the disk fills mid-crawl.
SMALL_DISK = "640k"


@dataclass
class Soak:
    seed: int
    crawl_trials: int
    sync_trials: int


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> Soak:
    trials = request.config.getoption("--soak-trials")
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"\nsoak seed {seed} (replay with SOAK_SEED={seed})")
    return Soak(seed, trials or CRAWL_TRIALS, trials or SYNC_TRIALS)


def count_runs(directory: Path) -> int:
    return count_rows(directory, "runs")


def run_then_kill(
    command: list[str], mirror: Path, rng: random.Random, work_window: float,
    working: Callable[[], bool] | None = None, startup_share: float = STARTUP_SHARE,
) -> tuple[bool, int, str]:
    """Run ``command`` and SIGKILL it at a random instant (see STARTUP_SHARE), unless it
    ends first. Returns (killed, exit code, stderr).

    ``working`` tells when the run's work has begun; by default, once it has
    recorded itself in the runs table.
    """
    if working is None:
        runs = count_runs(mirror)
        working = lambda: count_runs(mirror) > runs  # noqa: E731
    during_startup = rng.random() < startup_share
    delay = rng.uniform(0, STARTUP_WINDOW if during_startup else work_window)
    with open(mirror.parent / f"{mirror.name}.stderr", "w+") as err:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        began = time.monotonic()
        while not during_startup and process.poll() is None and not working():
            assert time.monotonic() - began < 120, "the run never started its work"
            time.sleep(0.02)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        err.seek(0)
        return process.returncode == -signal.SIGKILL, process.returncode, err.read()


def run_to_end(command: list[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def compare(ours: dict[int, Any], truth: dict[int, Any], note: str = "") -> Counter[str]:
    """Revision by revision: how many compared, missing (lost), extra, differing; all
    but the first must be 0."""
    differing = sorted(r for r in truth.keys() & ours.keys() if ours[r] != truth[r])
    found = Counter({
        "compared": len(truth),
        "missing": len(truth.keys() - ours.keys()),
        "extra": len(ours.keys() - truth.keys()),
        "differing": len(differing),
    })  # fmt: skip
    wrong = {k: found[k] for k in ("missing", "extra", "differing") if found[k]}
    example = ""
    if differing:
        example = f"; e.g. ours {ours[differing[0]]!r:.1500}, truth {truth[differing[0]]!r:.1500}"
    assert not wrong, f"mirror differs from the truth: {wrong}{note}{example}"
    return found


def integrity(directory: Path) -> str:
    db = sqlite3.connect(directory / DB_NAME)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


# -- crawl ---------------------------------------------------------------------------


def test_crawl_killed_at_random_instants_resumes_to_the_dump(
    shared_server: Any, fixture_dump: Path, tmp_path: Path, soak: Soak
) -> None:
    rng = random.Random(soak.seed)
    truth = by_revid(list(parse_dump(fixture_dump)))
    total = len(truth)
    kills: Counter[str] = Counter()
    found: Counter[str] = Counter()
    trail: list[int] = []  # revisions stored after each kill
    rounds = 0

    def finish_round(mirror: Path) -> None:
        found.update(compare(by_revid(export_records(mirror)), truth, f" (seed {soak.seed})"))
        assert integrity(mirror) == "ok"
        check_store(mirror)

    def new_round() -> tuple[Path, list[str]]:
        nonlocal rounds
        rounds += 1
        mirror = tmp_path / f"round{rounds}"
        # parallel streams in some rounds: several checkpoints to resume at once
        concurrency = str(rng.choice([1, 1, 3]))
        return mirror, harvester_command("crawl", shared_server.api_url, "--mirror", str(mirror),
                                         "--quiet", "--concurrency", concurrency)

    mirror, command = new_round()
    previous = 0
    while sum(kills.values()) < soak.crawl_trials:
        killed, code, err = run_then_kill(command, mirror, rng, CRAWL_WORK_WINDOW)
        if not killed:  # it finished first: check it, start another mirror
            assert code == 0, err
            finish_round(mirror)
            mirror, command = new_round()
            previous = 0
            continue
        stored = check_store(mirror)
        assert stored >= previous, f"a resumed crawl went back (seed {soak.seed})"
        previous = stored
        trail.append(stored)
        check_crawl_checkpoints(mirror)
        kills["before any revision" if stored == 0 else
              "mid-crawl" if stored < total else "after the revisions"] += 1  # fmt: skip
    run_to_end(command)
    finish_round(mirror)
    print(f"crawl soak: {soak.crawl_trials} kills in {rounds} crawls: {dict(kills)}; "
          f"{dict(found)}; revisions stored after each kill: {trail}")
    assert found["compared"] == rounds * total
    # the test can fail: kills really land while revisions are being stored
    assert kills["mid-crawl"] >= 1, f"no kill landed mid-crawl: {dict(kills)} (seed {soak.seed})"


# -- sync ----------------------------------------------------------------------------


def change_the_wiki(changer: Any, mirror: Path, tag: int) -> None:
    """One round of changes: long imported histories (they reach the mirror by
    reconciliation), registered and anonymous edits, a hidden text, a move and
    deletions; one deletion hits a page the mirror holds, so the sync has stored
    texts to purge (and delta chains to re-base)."""
    import wiki_changes  # from scripts/, like the changer fixture

    for i in range(2):
        xml = wiki_changes.old_revisions_xml(
            f"Soak {tag} imported {i}", 40, 1971, text=f"Round {tag}, imported page {i}")
        changer.import_pages(xml)
    revids: list[int] = []
    for n in range(9):
        revids.append(changer.edit(f"Soak {tag} page {n % 3}",
                                   f"Round {tag}, page {n % 3}, version {n}. " * (1 + n),
                                   f"edit {n}", minor=n % 4 == 0, as_anonymous=n == 5))
    changer.hide_revision(revids[0], text=True, comment=True)  # not the page's latest
    changer.move(f"Soak {tag} page 1", f"Soak {tag} page 1 moved", leave_redirect=True)
    changer.delete(f"Soak {tag} page 2")
    changer.delete(stored_page(mirror))
    if tag > 1:
        changer.delete(f"Soak {tag - 1} imported 0")


def stored_page(mirror: Path) -> str:
    """A main-namespace page of the mirror with a short history (after the round's
    sync it is gone from the mirror: the next round picks another)."""
    db = sqlite3.connect(f"file:{mirror / DB_NAME}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT p.title FROM pages p JOIN revisions r USING (pageid)"
            " WHERE p.ns = 0 AND p.title NOT LIKE 'Soak %'"
            " GROUP BY p.pageid HAVING count(*) BETWEEN 3 AND 40 ORDER BY p.pageid LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    assert row is not None, "no page left to delete: fewer rounds, or a bigger fixture"
    return str(row[0])


def signature(directory: Path, default: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
    """What a sync changes, in a few numbers (not the runs table: every run adds a row).

    With a default, a mirror busy with a write (a lock not released in time) gives it.
    """
    try:
        db = sqlite3.connect(f"file:{directory / DB_NAME}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        if default is None:
            raise
        return default
    try:
        return tuple(db.execute(sql).fetchone() for sql in (
            "SELECT count(*), total(revid), total(pageid), total(texthidden) FROM revisions",
            "SELECT count(*), total(length(title)) FROM pages",
            "SELECT count(*) FROM texts",
            "SELECT count(*) FROM tombstones",
            "SELECT count(*) FROM sync_rcids",
        ))  # fmt: skip
    except sqlite3.Error:
        if default is None:
            raise
        return default
    finally:
        db.close()


def changed_since(mirror: Path, before: tuple[Any, ...]) -> Callable[[], bool]:
    return lambda: signature(mirror, default=before) != before


def test_sync_killed_at_random_instants_equals_a_fresh_crawl(
    wiki_server: Any, changer: Any, tmp_path: Path, soak: Soak
) -> None:
    rng = random.Random(soak.seed)
    mirror = tmp_path / "mirror"
    trio.run(run_crawl, crawl_settings(wiki_server.api_url, mirror))
    command = harvester_command("sync", "--mirror", str(mirror), "--quiet",
                                "--max-rps", SYNC_MAX_RPS)
    kills: Counter[str] = Counter()

    def kills_left() -> int:
        # Until one kill has landed mid-sync, up to three times as many: on a busy
        # machine a sync can spend the whole window reading recentchanges.
        wanted = soak.sync_trials if kills["mid-sync"] else 3 * soak.sync_trials
        return wanted - sum(kills.values())

    rounds = 0
    while kills_left() > 0:
        rounds += 1
        change_the_wiki(changer, mirror, rounds)
        before = signature(mirror)
        states: list[tuple[Any, ...]] = []
        for attempt in range(min(KILLS_PER_SYNC_ROUND, kills_left())):
            if attempt == 0:
                # The first kill of a round lands once the mirror has begun to change
                # (never during start-up): a sync reads recentchanges first, and a
                # busy machine stretches that.
                killed, code, err = run_then_kill(
                    command, mirror, rng, FIRST_SYNC_KILL_WINDOW,
                    working=changed_since(mirror, before), startup_share=0.0)
            else:
                killed, code, err = run_then_kill(command, mirror, rng, SYNC_WORK_WINDOW)
            if not killed:
                assert code == 0, err
                break
            check_store(mirror)
            states.append(signature(mirror))
        else:
            run_to_end(command)
        after = signature(mirror)
        assert after != before, "the round's changes never reached the mirror"
        for state in states:  # mid-sync: some of the round applied, not all
            kills["before any change" if state == before else
                  "after every change" if state == after else "mid-sync"] += 1  # fmt: skip
    check_store(mirror)
    assert integrity(mirror) == "ok"
    fresh = tmp_path / "fresh"
    trio.run(run_crawl, crawl_settings(wiki_server.api_url, fresh))
    theirs = {r["revid"]: r for r in export_records(fresh)}
    found = compare({r["revid"]: r for r in export_records(mirror)}, theirs,
                    f" (seed {soak.seed})")
    print(f"sync soak: {sum(kills.values())} kills in {rounds} rounds of changes: "
          f"{dict(kills)}; {dict(found)}")
    assert kills["mid-sync"] >= 1, f"no kill landed mid-sync: {dict(kills)} (seed {soak.seed})"


# -- a full disk ---------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SMALL_DISK bytes (mounting needs root, or CAP_SYS_ADMIN)."""
    directory = tmp_path / "small"
    directory.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs",
                              str(directory)], capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("cannot mount a size-limited tmpfs here (needs root or CAP_SYS_ADMIN): "
                    + mounted.stderr.strip())
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)]).returncode != 0:
            time.sleep(1)
            subprocess.run(["umount", "--lazy", str(directory)], check=True)


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_crawl_into_a_full_disk_stops_cleanly_and_resumes_elsewhere(
    shared_server: Any, fixture_dump: Path, tmp_path: Path, small_disk: Path
) -> None:
    truth = by_revid(list(parse_dump(fixture_dump)))
    old_export = small_disk / "export.jsonl"
    old_export.write_text("an earlier export\n")
    mirror = small_disk / "mirror"
    crawl = harvester_command("crawl", shared_server.api_url, "--mirror", str(mirror), "--quiet")
    done = subprocess.run(crawl, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == EXIT_MIRROR, done.stderr
    line = one_line(done.stderr)
    assert line.startswith(f"harvester: disk full while writing the mirror {mirror};"), line
    assert "run the same command again" in line
    stored = stored_revisions(mirror)
    assert 0 < stored < len(truth), f"the disk filled at {stored} of {len(truth)} revisions"
    check_store(mirror)

    # Run again without freeing space: the same line, and nothing lost.
    again = subprocess.run(crawl, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == EXIT_MIRROR and one_line(again.stderr) == line
    assert stored_revisions(mirror) == stored

    # An export onto the full disk: one line, no partial file, the old export intact.
    export = subprocess.run(
        harvester_command("export", "--mirror", str(mirror), "--output", str(old_export)),
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert export.returncode == EXIT_MIRROR, export.stderr
    assert one_line(export.stderr).startswith(f"harvester: disk full while writing {old_export}")
    assert old_export.read_text() == "an earlier export\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["export.jsonl", "mirror"]

    # Moved to a bigger disk (the WAL with it), the same command finishes the crawl.
    moved = tmp_path / "big" / "mirror"
    shutil.copytree(mirror, moved)
    crawl[crawl.index(str(mirror))] = str(moved)
    run_to_end(crawl)
    assert integrity(moved) == "ok"
    check_store(moved)
    found = compare(by_revid(export_records(moved)), truth)
    print(f"disk full: stopped at {stored} of {len(truth)} revisions; after the move {dict(found)}")
