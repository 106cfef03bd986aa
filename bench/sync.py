"""Sync benchmark against a local MediaWiki: the cost of keeping a mirror current.

    python bench/sync.py [--changes 1000] [--cache DIR]

Crawls the scale-1 fixture wiki once, copies the mirror for an anonymous and a
logged-in (bot password) sync, measures a sync with nothing to do, then makes
N edits through the API (spread over 100 pages, a tenth of them new pages) and
syncs both copies. Requests are counted at the server (php -S access log).
Prints a table; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import demo_wiki  # noqa: E402
import wiki_changes  # noqa: E402
from crawl import api_requests  # noqa: E402


def harvester(log: Path, env: dict[str, str], *args: str) -> tuple[int, float, str]:
    """Run one harvester command; return (requests at the server, seconds, stdout)."""
    before = api_requests(log)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harvester", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"harvester {args[0]} failed: {done.stderr}")
    time.sleep(0.2)  # let php -S flush its access log
    return api_requests(log) - before, seconds, done.stdout.strip()


def make_changes(changer: wiki_changes.WikiChanger, count: int) -> None:
    for i in range(count):
        title = f"Bench sync page {i % 100}"
        changer.edit(title, f"Version {i} of {title}.\n\n" + "Some text. " * 40, f"edit {i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--cache", type=Path, help="keep the built fixture wiki here")
    args = parser.parse_args()
    demo_wiki.ensure_mediawiki_installed()
    with tempfile.TemporaryDirectory(prefix="harvester-sync-bench-") as tmp:
        work = Path(tmp)
        wiki = demo_wiki.fixture_wiki(work / "wiki", cache=args.cache)
        bot = demo_wiki.load_manifest(wiki)["bot_password"]
        env = {**os.environ, "HARVESTER_PASSWORD": bot["password"]}
        rows = []
        with demo_wiki.WikiServer(wiki) as server:
            log = server.log_path
            anon, logged = work / "anonymous", work / "logged-in"
            harvester(log, env, "crawl", server.api_url, "--mirror", str(anon), "--quiet",
                      "--max-rps", "0")
            shutil.copytree(anon, logged)
            modes = {"anonymous": [], "logged in": ["--user", bot["name"]]}
            for who, extra in modes.items():
                mirror = anon if who == "anonymous" else logged
                requests, seconds, _ = harvester(log, env, "sync", "--mirror", str(mirror),
                                                 "--max-rps", "0", *extra)
                rows.append((who, "nothing to do", 0, requests, seconds))
            with wiki_changes.WikiChanger(wiki, server.api_url) as changer:
                started = time.monotonic()
                make_changes(changer, args.changes)
                print(f"made {args.changes} edits in {time.monotonic() - started:.1f} s")
            for who, extra in modes.items():
                mirror = anon if who == "anonymous" else logged
                requests, seconds, line = harvester(log, env, "sync", "--mirror", str(mirror),
                                                    "--max-rps", "0", *extra)
                rows.append((who, f"{args.changes} edits", args.changes, requests, seconds))
                print(line)
    print(f"{'who':<10} {'changes':<15} {'requests':>8} {'per 100 edits':>13} {'seconds':>8}")
    for who, what, edits, requests, seconds in rows:
        per_100 = f"{100 * requests / edits:.1f}" if edits else "-"
        print(f"{who:<10} {what:<15} {requests:>8} {per_100:>13} {seconds:>8.2f}")


if __name__ == "__main__":
    main()
