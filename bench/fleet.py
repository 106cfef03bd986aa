"""Fleet benchmark: `crawl --all` and `sync --all` over several local wikis, one at a
time against several at once.

    python bench/fleet.py [--wikis 4] [--cache DIR] [--latency 0.15]

Serves ``--wikis`` copies of the scale-1 fixture wiki, each with php -S on its own
port behind the test suite's proxy (tests/faultproxy.py) on a loopback address
of its own (127.0.0.2, .3, ...: hosts of their own, each with its own budget),
which holds every answer back by ``--latency`` seconds, as wikis on other
continents would. Writes
a config with one [[wiki]] table each, then times, each as one `harvester`
process: `crawl --all` at --jobs 1 and at --jobs N (into separate mirrors), and
`sync --all` (nothing to do) at --jobs 1 and N. Prints a table; a benchmark, not
a test.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import demo_wiki  # noqa: E402

from tests.faultproxy import FaultPlan, FaultProxy  # noqa: E402


def config(path: Path, urls: list[str], mirrors: Path) -> Path:
    tables = "".join(f'\n[[wiki]]\nname = "wiki{i}"\napi = "{url}"\nmirror = "{mirrors}/w{i}"\n'
                     for i, url in enumerate(urls))
    path.write_text('max_requests_per_second = 0\nmax_requests_per_minute = 0\n' + tables)
    return path


def timed(*args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harvester", *args, "--quiet"], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"harvester {' '.join(args)} failed: {done.stderr}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wikis", type=int, default=4)
    parser.add_argument("--cache", type=Path, help="fixture wiki cache directory")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds an answer")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        with contextlib.ExitStack() as stack:
            urls = []
            for i in range(args.wikis):
                wiki = demo_wiki.fixture_wiki(work / f"wiki{i}", cache=args.cache)
                server = stack.enter_context(demo_wiki.WikiServer(wiki, workers=2))
                # a loopback address each: wikis on hosts of their own (one address
                # would be one host, whose one budget the wikis would share)
                proxy = stack.enter_context(FaultProxy(
                    server.api_url, FaultPlan(latency=args.latency), listen=f"127.0.0.{i + 2}"))
                urls.append(proxy.api_url)
            rows = []
            for jobs in (1, args.wikis):
                conf = config(work / f"jobs{jobs}.toml", urls, work / f"mirrors{jobs}")
                crawl = timed("crawl", "--all", "--config", str(conf), "--jobs", str(jobs))
                sync = timed("sync", "--all", "--config", str(conf), "--jobs", str(jobs))
                rows.append((jobs, crawl, sync))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.wikis} wikis (the scale-1 fixture, 3,072 revisions each), "
          f"{args.latency * 1000:.0f} ms an answer")
    print(f"{'jobs':>5} {'crawl --all s':>14} {'sync --all s':>13}")
    for jobs, crawl, sync in rows:
        print(f"{jobs:>5} {crawl:>14.1f} {sync:>13.2f}")
    base = rows[0]
    for jobs, crawl, sync in rows[1:]:
        print(f"--jobs {jobs} against --jobs 1: crawl {crawl / base[1]:.2f}x, "
              f"sync {sync / base[2]:.2f}x")


if __name__ == "__main__":
    main()
