"""What starting from the dumps saves the wiki: `harvester bootstrap` against a crawl.

    python bench/bootstrap.py [--scales 1,10] [--cache DIR]

For each fixture scale (scripts/demo_wiki.py) it serves the wiki with php -S
behind a counting proxy (tests/faultproxy.py, no faults), and beside it a dumps
site in Wikimedia's layout (tests/dumpsite.py) holding the wiki's own
`dumpBackup.php --full`, split in two bz2 files. It runs `harvester bootstrap`
(dump, import, sync) and then a plain `harvester crawl` of the same wiki into
another mirror, both anonymously, and prints requests and bytes (response
bodies) at the wiki and at the dumps site, and wall time. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):
    sys.path.insert(0, str(path))

import demo_wiki  # noqa: E402

from tests.dumpsite import DumpSite  # noqa: E402
from tests.faultproxy import FaultPlan, FaultProxy  # noqa: E402

POLITE_OFF = ("--max-rps", "0", "--max-rpm", "0", "--contact", "bench@example.org", "--quiet")


def harvester(*args: str) -> float:
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "harvester", *args, *POLITE_OFF], cwd=ROOT,
                   check=True)
    return time.monotonic() - began


def bench_scale(scale: int, cache: Path | None, work: Path) -> list[tuple[object, ...]]:
    print(f"scale {scale}: preparing the wiki and its dump ...", file=sys.stderr)
    wiki = demo_wiki.fixture_wiki(work / f"wiki-{scale}", scale=scale, cache=cache)
    wiki = demo_wiki.set_port(wiki, demo_wiki.free_port())
    dump = demo_wiki.dump_backup(wiki, work / f"dump-{scale}.xml")
    rows: list[tuple[object, ...]] = []
    with demo_wiki.WikiServer(wiki, workers=4) as server, \
            FaultProxy(server.api_url, FaultPlan()) as proxy, \
            DumpSite.from_dump(dump) as site:
        seconds = harvester("bootstrap", proxy.api_url, "--mirror", str(work / f"boot-{scale}"),
                            "--dumps-url", site.url)
        at_wiki = list(proxy.log)
        rows.append((scale, "bootstrap", len(at_wiki), sum(e.body_bytes for e in at_wiki),
                     site.requests, site.bytes_sent, seconds))
        seconds = harvester("crawl", proxy.api_url, "--mirror", str(work / f"crawl-{scale}"))
        crawled = proxy.log[len(at_wiki):]
        rows.append((scale, "crawl", len(crawled), sum(e.body_bytes for e in crawled), 0, 0,
                     seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    demo_wiki.ensure_mediawiki_installed()
    rows: list[tuple[object, ...]] = []
    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as temporary:
        for scale in (int(s) for s in args.scales.split(",")):
            rows += bench_scale(scale, args.cache, Path(temporary))
    print(f"{'scale':>5} {'run':<10} {'wiki requests':>13} {'wiki bytes':>12} "
          f"{'dump requests':>13} {'dump bytes':>12} {'wall s':>7}")
    for scale, run, requests, sent, dump_requests, dump_sent, seconds in rows:
        print(f"{scale:>5} {run:<10} {requests:>13,} {sent:>12,} {dump_requests:>13,} "
              f"{dump_sent:>12,} {seconds:>7.1f}")


if __name__ == "__main__":
    main()
