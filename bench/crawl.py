"""Crawl benchmark against a local MediaWiki: requests, time, memory, size on disk.

    python bench/crawl.py [--scales 1,10] [--cache DIR] [--json out.json]

For each fixture scale: builds the fixture wiki (scripts/demo_wiki.py), dumps it
with dumpBackup.php --full, compresses that XML with 7z -mx=9 for reference,
then runs `harvester crawl` as a separate process anonymously and logged in
(bot password), at concurrency 1 and 4. Requests are counted at the server
(php -S access log); CPU time and peak RSS are the crawl process's own, taken
by a small wrapper process (see RUSAGE_WRAPPER).
Prints a table; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import demo_wiki  # noqa: E402

from tests.ground_truth import parse_dump  # noqa: E402

API_LINE = re.compile(r"\]: (GET|POST) /api\.php")
# The crawl runs under this small wrapper: a child's peak RSS includes the memory of
# the process it was forked from, so it must not be forked from this (large) one.
RUSAGE_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'code': code, 'maxrss_kb': usage.ru_maxrss,"
    " 'cpu_s': usage.ru_utime + usage.ru_stime}), file=sys.stderr)\n"
)


def api_requests(log: Path) -> int:
    if not log.exists():
        return 0
    with log.open(errors="replace") as fh:
        return sum(1 for line in fh if API_LINE.search(line))


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def seven_zip_bytes(xml: Path, work: Path) -> int | None:
    if shutil.which("7z") is None:
        return None
    archive = work / "dump.7z"
    subprocess.run(["7z", "a", "-mx=9", str(archive), str(xml)], check=True,
                   stdout=subprocess.DEVNULL)
    return archive.stat().st_size


def run_crawl(
    api: str, mirror: Path, log: Path, env: dict[str, str], *extra: str
) -> dict[str, Any]:
    before = api_requests(log)
    command = [sys.executable, "-m", "harvester", "crawl", api, "--mirror", str(mirror),
               "--quiet", "--max-rps", "0", "--max-rpm", "0", *extra]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", RUSAGE_WRAPPER, *command], cwd=ROOT, env=env,
                          stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    usage = json.loads(done.stderr.strip().splitlines()[-1])
    if usage["code"] != 0:
        raise SystemExit(f"crawl failed: {done.stderr}")
    return {
        "wall_s": wall,
        "cpu_s": usage["cpu_s"],
        "peak_rss_mb": usage["maxrss_kb"] / 1024,
        "requests": api_requests(log) - before,
        "mirror_bytes": directory_bytes(mirror),
    }


def api_floor(revisions: int, per_request: int, pages_per_ns: dict[int, int]) -> int:
    """Revisions / limit, plus one catalogue request per 500 pages of each namespace, plus
    the discovery probe, siteinfo, userinfo and the bot group (and login: tokens + login)."""
    catalogue = sum(max(1, math.ceil(n / 500)) for n in pages_per_ns.values())
    return math.ceil(revisions / per_request) + catalogue + 4


def bench_scale(scale: int, cache: Path | None, work: Path) -> list[dict[str, Any]]:
    target = work / f"wiki-{scale}"
    if cache:
        wiki = demo_wiki.cached_fixture_wiki(cache, target, scale=scale)
    else:
        wiki = demo_wiki.build_fixture_wiki(target, scale=scale)
    dump = demo_wiki.dump_backup(wiki, work / f"dump-{scale}.xml")
    revisions = 0
    pages: dict[int, int] = {}
    for record in parse_dump(dump):  # streamed: this process stays small
        revisions += 1
        pages[record["pageid"]] = record["ns"]
    pages_per_ns: dict[int, int] = {}
    for ns in pages.values():
        pages_per_ns[ns] = pages_per_ns.get(ns, 0) + 1
    seven = seven_zip_bytes(dump, work)
    bot = demo_wiki.load_manifest(wiki)["bot_password"]
    rows = []
    copy = demo_wiki.copy_wiki(wiki, work / f"serve-{scale}", demo_wiki.free_port())
    with demo_wiki.WikiServer(copy, workers=4) as server:
        env = {**os.environ, "HARVESTER_PASSWORD": bot["password"]}
        modes = [("anonymous", 1, ()), ("anonymous", 4, ()),
                 ("logged in", 1, ("--user", bot["name"])),
                 ("logged in", 4, ("--user", bot["name"]))]
        for who, workers, extra in modes:
            mirror = work / f"mirror-{scale}-{who.replace(' ', '')}-{workers}"
            result = run_crawl(server.api_url, mirror, server.log_path, env,
                               "--concurrency", str(workers), *extra)
            per_request = 500 if who == "logged in" else 50
            floor = api_floor(revisions, per_request, pages_per_ns) + (2 if extra else 0)
            rows.append({
                "scale": scale, "revisions": revisions, "who": who, "concurrency": workers,
                **result, "requests_per_1000_rev": 1000 * result["requests"] / revisions,
                "api_floor": floor, "over_floor_pct": 100 * (result["requests"] / floor - 1),
                "dump_xml_bytes": dump.stat().st_size, "dump_7z_bytes": seven,
                "revisions_per_s": revisions / result["wall_s"],
            })
            shutil.rmtree(mirror)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'scale':>5} {'revs':>7} {'who':<10} {'conc':>4} {'requests':>8} {'/1k rev':>8} "
              f"{'floor':>6} {'wall s':>7} {'rev/s':>7} {'cpu s':>6} {'RSS MB':>7} "
              f"{'mirror MB':>9} {'7z MB':>6} {'XML MB':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        seven = f"{r['dump_7z_bytes'] / 1e6:6.2f}" if r["dump_7z_bytes"] else "   n/a"
        print(f"{r['scale']:>5} {r['revisions']:>7} {r['who']:<10} {r['concurrency']:>4} "
              f"{r['requests']:>8} {r['requests_per_1000_rev']:>8.1f} {r['api_floor']:>6} "
              f"{r['wall_s']:>7.1f} {r['revisions_per_s']:>7.0f} {r['cpu_s']:>6.1f} "
              f"{r['peak_rss_mb']:>7.1f} {r['mirror_bytes'] / 1e6:>9.2f} {seven} "
              f"{r['dump_xml_bytes'] / 1e6:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1", help="fixture scales, e.g. 1,10")
    parser.add_argument("--cache", type=Path, help="keep built fixture wikis here")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    demo_wiki.ensure_mediawiki_installed()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="harvester-bench-") as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            rows += bench_scale(scale, args.cache, Path(tmp))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
