"""Crawl benchmark against a local MediaWiki: requests, time, memory, size on disk.

    python bench/crawl.py [--scales 1,10] [--cache DIR] [--json out.json]

For each fixture scale: builds the fixture wiki (scripts/demo_wiki.py), dumps it
with dumpBackup.php --full, compresses that XML with 7z -mx=9 for reference,
then runs `harvester crawl` as a separate process anonymously and logged in
(bot password), at concurrency 1 and 4. Requests are counted at the server
(php -S access log); CPU time and peak RSS are the crawl process's own, taken
by a small wrapper process (see RUSAGE_WRAPPER).
Prints a table; a benchmark, not a test. bench/run.py runs these crawls together
with wikiteam3, the sync and the read measurements (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import demo_wiki  # noqa: E402

from tests.ground_truth import parse_dump  # noqa: E402

API_LINE = re.compile(r"\]: (GET|POST) /api\.php")
# Any request php -S answered (api.php, index.php, robots.txt, assets, ...).
REQUEST_LINE = re.compile(r"\]: [A-Z]+ /")
# Measured commands run under this small wrapper: a child's peak RSS includes the memory
# of the process it was forked from, so it must not be forked from this (large) one.
# RUSAGE_CHILDREN covers the whole tree the command waited for; argv[1] gets the figures.
RUSAGE_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "with open(sys.argv[1], 'w') as fh:\n"
    "    json.dump({'code': code, 'maxrss_kb': usage.ru_maxrss,"
    " 'cpu_s': usage.ru_utime + usage.ru_stime}, fh)\n"
)


@dataclass
class Measured:
    """One command's exit code, wall time, CPU of its process tree and peak RSS."""

    code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def run_measured(
    command: list[str], env: dict[str, str], *, cwd: Path = ROOT, output: Path | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run ``command`` under RUSAGE_WRAPPER; its output goes to ``output`` (or nowhere).

    On ``timeout`` the command's whole process group is killed and SystemExit raised.
    """
    with contextlib.ExitStack() as stack:
        usage_file = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".json"))
        sink: IO[bytes] | int = (
            stack.enter_context(output.open("wb")) if output else subprocess.DEVNULL)
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", RUSAGE_WRAPPER, usage_file.name, *command], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True)  # fmt: skip
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise SystemExit(f"{command[0]} still running after {timeout:.0f} s") from None
        wall = time.monotonic() - started
        usage = json.loads(Path(usage_file.name).read_text())
    return Measured(usage["code"], wall, usage["cpu_s"], usage["maxrss_kb"] / 1024)


def api_requests(log: Path, pattern: re.Pattern[str] = API_LINE) -> int:
    """Requests to api.php (or matching ``pattern``) in a php -S log so far."""
    if not log.exists():
        return 0
    with log.open(errors="replace") as fh:
        return sum(1 for line in fh if pattern.search(line))


def server_requests(log: Path) -> int:
    """Every request in a php -S log so far, whatever the path."""
    time.sleep(0.2)  # let php -S finish writing its access log
    return api_requests(log, REQUEST_LINE)


def process_group_cpu_s(pgid: int | None) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group.

    For the server: php -S and its workers share one group and the workers live as
    long as it does, so the difference of two readings is what the server spent
    answering the requests in between. 0.0 without /proc or without a group.
    """
    if pgid is None:
        return 0.0
    # utime, stime, cutime, cstime
    ticks = sum(int(f) for fields in demo_wiki.process_group_stats(pgid) for f in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


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
    api: str, mirror: Path, log: Path, env: dict[str, str], *extra: str,
    server_pgid: int | None = None,
) -> dict[str, Any]:
    """One `harvester crawl` process: time, CPU, peak RSS, server-counted requests, size;
    and the CPU the server's process group spent meanwhile."""
    before = server_requests(log)
    server_before = process_group_cpu_s(server_pgid)
    command = [sys.executable, "-m", "harvester", "crawl", api, "--mirror", str(mirror),
               "--quiet", "--max-rps", "0", "--max-rpm", "0", *extra]
    with tempfile.NamedTemporaryFile(suffix=".log") as output:
        result = run_measured(command, env, output=Path(output.name))
        if result.code != 0:
            text = Path(output.name).read_text(errors="replace").strip()
            raise SystemExit(f"crawl failed (exit {result.code}): {text[-2000:]}")
    return {
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "peak_rss_mb": result.peak_rss_mb,
        "requests": server_requests(log) - before,
        "server_cpu_s": process_group_cpu_s(server_pgid) - server_before,
        "mirror_bytes": directory_bytes(mirror),
    }


# Revisions per request with content (arvlimit=max), and pages per catalogue request
# (generator=allpages, gaplimit=max): anonymous, and with apihighlimits (logged in).
REVISIONS_PER_REQUEST = {False: 50, True: 500}
PAGES_PER_REQUEST = {False: 500, True: 5000}


def api_floor(revisions: int, pages_per_ns: dict[int, int], logged_in: bool) -> int:
    """The fewest requests that copy every revision with its text plus the page catalogue.

    ceil(revisions / 50 or 500), plus ceil(pages / 500 or 5000) for each namespace that
    has pages, plus one siteinfo request, plus two for logging in (login token, login).
    Anything else a client sends (probes, userinfo, slice boundaries) counts against it.
    """
    catalogue = sum(math.ceil(n / PAGES_PER_REQUEST[logged_in]) for n in pages_per_ns.values())
    login = 2 if logged_in else 0
    return math.ceil(revisions / REVISIONS_PER_REQUEST[logged_in]) + catalogue + 1 + login


def dump_facts(dump: Path) -> tuple[int, dict[int, int]]:
    """Revisions and pages per namespace of a dumpBackup.php file (streamed)."""
    revisions = 0
    pages: dict[int, int] = {}
    for record in parse_dump(dump):
        revisions += 1
        pages[record["pageid"]] = record["ns"]
    pages_per_ns: dict[int, int] = {}
    for ns in pages.values():
        pages_per_ns[ns] = pages_per_ns.get(ns, 0) + 1
    return revisions, pages_per_ns


def bench_scale(scale: int, cache: Path | None, work: Path) -> list[dict[str, Any]]:
    target = work / f"wiki-{scale}"
    wiki = demo_wiki.fixture_wiki(target, scale=scale, cache=cache)
    dump = demo_wiki.dump_backup(wiki, work / f"dump-{scale}.xml")
    revisions, pages_per_ns = dump_facts(dump)
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
            floor = api_floor(revisions, pages_per_ns, logged_in=bool(extra))
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
