"""Concurrency on a distant wiki whose edits are uneven in time.

    python bench/balance.py [--scales 1,10] [--cache DIR] [--latency 0.15]
                            [--workers 1,2,4] [--no-peer]

For each fixture scale (scripts/demo_wiki.py) it redates the wiki's revisions
so that they are uneven in time, as on most real wikis: in revision-id order,
from 2010 to the end of 2015 with the activity doubling every year, then
nothing until today (the crawl's slices of equal length put nearly everything
in the first). It serves the wiki with php -S and 4 workers behind a proxy
that holds every answer back by ``--latency`` seconds (tests/faultproxy.py),
like a wiki on another continent, and runs `harvester crawl` anonymously at
each concurrency (``--max-rps 20``) and wikiteam3 (`--xml --xmlrevisions`,
anonymously, its delay 0) against it. Prints wall time and requests (counted at
the wiki) against the floor (bench/crawl.py's api_floor); a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts", ROOT / "bench"):
    sys.path.insert(0, str(path))

import demo_wiki  # noqa: E402
import wikiteam  # noqa: E402
from crawl import api_floor, run_crawl  # noqa: E402

from storage.mirror import Mirror  # noqa: E402
from tests.faultproxy import FaultPlan, FaultProxy  # noqa: E402

FIRST = datetime(2010, 1, 1, tzinfo=UTC).timestamp()
LAST = datetime(2015, 12, 31, tzinfo=UTC).timestamp()
DOUBLING = 365 * 86400  # seconds in which the activity doubles


def uneven_times(count: int) -> list[int]:
    """``count`` increasing times in [FIRST, LAST], denser in proportion to 2^(t/DOUBLING)."""
    rate = math.log(2) / DOUBLING
    span = LAST - FIRST
    times: list[int] = []
    for i in range(count):
        share = (i + 0.5) / count
        moment = int(FIRST + math.log1p(share * math.expm1(rate * span)) / rate)
        times.append(max(moment, times[-1] + 1) if times else moment)
    return times


def redate(wiki: demo_wiki.Wiki) -> tuple[int, dict[int, int]]:
    """Redate every revision (in id order); returns the revisions and pages per namespace."""
    db = sqlite3.connect(wiki.directory / "db" / "my_wiki.sqlite")
    try:
        with db:
            revids = [r for (r,) in db.execute("SELECT rev_id FROM revision ORDER BY rev_id")]
            stamps = [datetime.fromtimestamp(t, UTC).strftime("%Y%m%d%H%M%S")
                      for t in uneven_times(len(revids))]
            db.executemany("UPDATE revision SET rev_timestamp = ? WHERE rev_id = ?",
                           zip(stamps, revids, strict=True))
        pages = dict(db.execute("SELECT page_namespace, count(*) FROM page GROUP BY 1"))
    finally:
        db.close()
    return len(revids), pages


def bench_scale(scale: int, args: argparse.Namespace, peer: wikiteam.Peer | None,
                work: Path) -> list[dict[str, Any]]:
    print(f"scale {scale}: preparing the wiki ...", file=sys.stderr)
    target = work / f"wiki-{scale}"
    wiki = demo_wiki.fixture_wiki(target, scale=scale, cache=args.cache)
    revisions, pages = redate(wiki)
    floor = api_floor(revisions, pages, logged_in=False)
    wiki = demo_wiki.set_port(wiki, demo_wiki.free_port())
    rows: list[dict[str, Any]] = []
    plan = FaultPlan(latency=args.latency)
    with demo_wiki.WikiServer(wiki, workers=4) as server, \
            FaultProxy(server.api_url, plan) as proxy:
        for workers in args.workers:
            print(f"  harvester crawl, concurrency {workers} ...", file=sys.stderr)
            mirror = work / f"mirror-{scale}-{workers}"
            result = run_crawl(proxy.api_url, mirror, server.log_path, dict(os.environ),
                               "--concurrency", str(workers), "--max-rps", "20")
            with Mirror.open(mirror, create=False) as opened:
                got = opened.count_revisions()
                slices = len(opened.list_checkpoints("crawl/revisions/"))
            rows.append({"scale": scale, "tool": "harvester", "workers": workers,
                         "wall_s": result["wall_s"], "requests": result["requests"],
                         "floor": floor, "revisions": got, "expected": revisions,
                         "slices": slices})
            shutil.rmtree(mirror)
        if peer is not None:
            print("  wikiteam3 ...", file=sys.stderr)
            out = work / f"wikiteam3-{scale}"
            index = proxy.api_url.removesuffix("api.php") + "index.php"
            result = wikiteam.run(peer, proxy.api_url, index, out, server.log_path, delay=0.0)
            rows.append({"scale": scale, "tool": "wikiteam3", "workers": 1,
                         "wall_s": result["wall_s"], "requests": result["requests"],
                         "floor": floor, "revisions": result["revisions_written"],
                         "expected": revisions, "slices": None})
            shutil.rmtree(out)
    shutil.rmtree(target)
    return rows


def print_rows(rows: list[dict[str, Any]], latency: float) -> None:
    print(f"\nlatency {latency * 1000:.0f} ms a request; edits redated 2010-2015, "
          "doubling every year")
    print("| scale | client | wall s | vs concurrency 1 | requests (floor) | slices | revisions |")
    print("|---|---|---|---|---|---|---|")
    for scale in sorted({r["scale"] for r in rows}):
        mine = [r for r in rows if r["scale"] == scale]
        serial = next((r["wall_s"] for r in mine
                       if r["tool"] == "harvester" and r["workers"] == 1), None)
        for r in mine:
            name = (f"harvester c{r['workers']}" if r["tool"] == "harvester"
                    else "wikiteam3 (serial)")
            ratio = f"{r['wall_s'] / serial:.2f}x" if serial else "-"
            print(f"| {scale} | {name} | {r['wall_s']:.1f} | {ratio} | {r['requests']} "
                  f"({r['floor']}) {r['requests'] / r['floor']:.3f} | {r['slices'] or '-'} "
                  f"| {r['revisions']:,}/{r['expected']:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1,10",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--workers", default="1,2,4",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--cache", type=Path, help="keep built fixture wikis here")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds a request")
    parser.add_argument("--no-peer", action="store_true", help="skip wikiteam3")
    args = parser.parse_args()
    demo_wiki.ensure_mediawiki_installed()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="harvester-balance-") as tmp:
        work = Path(tmp)
        peer = None if args.no_peer else wikiteam.install(
            (args.cache or work) / "wikiteam3-venv")
        for scale in args.scales:
            rows += bench_scale(scale, args, peer, work)
    print_rows(rows, args.latency)


if __name__ == "__main__":
    main()
