"""The harvester against wikiteam3 on one local MediaWiki, in one run.

    python bench/run.py [--scales 1,10] [--cache /tmp/mwcache] [--json out.json]
                        [--changes 1000] [--read-samples 1000] [--peer-delay 0]

For each fixture scale (scripts/demo_wiki.py) it serves a copy of the wiki with
php -S and 4 workers and runs `harvester crawl` anonymously and logged in (bot
password), at concurrency 1 and 4. On the largest scale it also runs wikiteam3's
`wikiteam3dumpgenerator --xml --xmlrevisions` (installed into its own virtual
environment) anonymously and logged in, compresses MediaWiki's own dump of the
wiki with 7z, xz and zstd for reference, times random single-revision reads from
the crawled mirror, and measures a sync of N edits. Requests are counted at the
server (php -S access log, every path), CPU time and peak RSS over each client's
process tree. Prints tables and the targets (PASS/MISS), optionally writes JSON.
docs/benchmarks.md explains every column. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts", ROOT / "bench"):
    sys.path.insert(0, str(path))

import compress  # noqa: E402
import demo_wiki  # noqa: E402
import read  # noqa: E402
import sync  # noqa: E402
import wiki_changes  # noqa: E402
import wikiteam  # noqa: E402
from crawl import api_floor, run_crawl  # noqa: E402

from storage.mirror import DB_NAME, Mirror  # noqa: E402
from tests.ground_truth import parse_dump  # noqa: E402

MODES = [("anonymous", 1), ("anonymous", 4), ("logged in", 1), ("logged in", 4)]


def profile_dump(dump: Path) -> dict[str, Any]:
    """What the wiki holds, from MediaWiki's own dump: counts and how histories look."""
    history: dict[int, int] = {}
    namespace: dict[int, int] = {}
    sizes: list[int] = []
    deltas: list[int] = []
    previous: dict[int, int] = {}
    for record in parse_dump(dump):  # streamed: this process stays small
        page = record["pageid"]
        history[page] = history.get(page, 0) + 1
        namespace[page] = record["ns"]
        sizes.append(record["size"])
        if page in previous:
            deltas.append(abs(record["size"] - previous[page]))
        previous[page] = record["size"]
    pages_per_ns: dict[int, int] = {}
    for ns in namespace.values():
        pages_per_ns[ns] = pages_per_ns.get(ns, 0) + 1
    lengths = sorted(history.values())
    sizes.sort()
    return {
        "revisions": len(sizes), "pages": len(history), "pages_per_ns": pages_per_ns,
        "history_median": statistics.median(lengths), "history_p90": quantile(lengths, 0.9),
        "history_max": lengths[-1], "size_median": statistics.median(sizes),
        "size_p90": quantile(sizes, 0.9), "size_max": sizes[-1],
        "edit_delta_median": statistics.median(deltas) if deltas else 0,
        "edits_under_500_bytes": sum(d < 500 for d in deltas) / max(1, len(deltas)),
        "dump_xml_bytes": dump.stat().st_size,
    }


def quantile(ordered: list[Any], q: float) -> Any:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def harvester_rows(
    server: demo_wiki.WikiServer, bot: dict[str, str], profile: dict[str, Any],
    work: Path, keep: bool,
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """The four crawls; returns their rows and, when ``keep``, the concurrency-4 mirrors."""
    env = {**os.environ, "HARVESTER_PASSWORD": bot["password"]}
    rows, kept = [], {}
    for who, workers in MODES:
        logged_in = who == "logged in"
        mirror = work / f"mirror-{who.replace(' ', '-')}-{workers}"
        extra = ("--user", bot["name"]) if logged_in else ()
        print(f"  harvester crawl, {who}, concurrency {workers} ...", file=sys.stderr)
        result = run_crawl(server.api_url, mirror, server.log_path, env,
                           "--concurrency", str(workers), *extra, server_pgid=server.pgid)
        with Mirror.open(mirror, create=False) as opened:
            got = opened.count_revisions()
        rows.append(row("harvester", who, workers, profile, got, result["wall_s"],
                        result["requests"], result["cpu_s"], result["peak_rss_mb"],
                        result["mirror_bytes"], result["server_cpu_s"]))  # fmt: skip
        if keep and workers == 4:
            kept[who] = mirror
        else:
            shutil.rmtree(mirror)
    return rows, kept


def peer_rows(
    peer: wikiteam.Peer, server: demo_wiki.WikiServer, profile: dict[str, Any], work: Path,
    delay: float,
) -> list[dict[str, Any]]:
    """wikiteam3 anonymously (50 a request) and logged in as the sysop (500 a request)."""
    rows = []
    admin = (demo_wiki.ADMIN_USER, demo_wiki.ADMIN_PASSWORD)
    for who, login, chunk in (("anonymous", None, 50), ("logged in", admin, 500)):
        print(f"  wikiteam3, {who} ...", file=sys.stderr)
        out = work / f"wikiteam3-{who.replace(' ', '-')}"
        result = wikiteam.run(peer, server.api_url, server.wiki.index_url, out,
                              server.log_path, delay=delay, login=login, chunk=chunk,
                              server_pgid=server.pgid)
        if login and not result["logged_in"]:
            raise SystemExit("wikiteam3 did not log in; its run would not be comparable")
        if result["blocked"]:
            print(f"  note: wikiteam3 tried {result['blocked']} request(s) to other hosts "
                  "(blocked)", file=sys.stderr)
        rows.append(row("wikiteam3", who, 1, profile, result["revisions_written"],
                        result["wall_s"], result["requests"], result["cpu_s"],
                        result["peak_rss_mb"], result["bytes"], result["server_cpu_s"])
                    | {"delay_s": delay, "blocked_requests": result["blocked"]})  # fmt: skip
        shutil.rmtree(out)
    return rows


def row(
    tool: str, who: str, workers: int, profile: dict[str, Any], got: int, wall: float,
    requests: int, cpu: float, rss: float, size: int, server_cpu: float,
) -> dict[str, Any]:
    revisions = profile["revisions"]
    floor = api_floor(revisions, profile["pages_per_ns"], logged_in=who == "logged in")
    return {
        "tool": tool, "who": who, "concurrency": workers, "revisions": revisions,
        "revisions_copied": got, "complete": got == revisions, "wall_s": wall,
        "revisions_per_s": revisions / wall, "requests": requests,
        "requests_per_1000_rev": 1000 * requests / revisions, "api_floor": floor,
        "floor_per_1000_rev": 1000 * floor / revisions, "over_floor": requests / floor,
        "cpu_s": cpu, "cpu_ms_per_rev": 1000 * cpu / revisions, "peak_rss_mb": rss,
        "server_cpu_s": server_cpu, "server_cpu_ms_per_rev": 1000 * server_cpu / revisions,
        "bytes": size,
    }


def read_latency(mirror: Path, samples: int, runs: int) -> dict[str, Any]:
    """Random single-revision reads from a crawled mirror (bench/read.py's method)."""
    rng = random.Random(7)
    rows, revids, _ = read.library_reads(mirror, samples, rng, by_title=False)
    command = [sys.executable, "-m", "harvester", "show", "--mirror", str(mirror), "--rev"]
    cli = read.timed(rng.sample(revids, min(runs, len(revids))), lambda revid: (
        subprocess.run([*command, str(revid)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)))  # fmt: skip
    names = ["library, cold cache", "library, cache kept", f"harvester show process ({runs})"]
    out = {}
    for name, (_, times) in zip(names, [*rows, ("", cli)], strict=True):
        p50, p99, worst = read.percentiles(times)
        out[name] = {"p50_ms": p50, "p99_ms": p99, "max_ms": worst, "samples": len(times)}
    return out


def mirror_parts(mirror: Path) -> dict[str, int]:
    """Bytes of the mirror's file in compressed texts (text_packs), the rest of the
    catalogue (every other table and index, free pages included) and the WAL."""
    db = mirror / DB_NAME
    with sqlite3.connect(db) as conn:
        texts = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'text_packs'").fetchone()
    wal = db.with_name(db.name + "-wal")
    text_bytes = int(texts[0] or 0)
    return {"texts": text_bytes, "catalogue": db.stat().st_size - text_bytes,
            "wal": wal.stat().st_size if wal.exists() else 0}


def sync_cost(
    server: demo_wiki.WikiServer, wiki: demo_wiki.Wiki, bot: dict[str, str],
    mirrors: dict[str, Path], changes: int,
) -> list[dict[str, Any]]:
    """A sync with nothing to do, then one after ``changes`` edits, per mirror."""
    env = {**os.environ, "HARVESTER_PASSWORD": bot["password"]}
    extra = {"anonymous": [], "logged in": ["--user", bot["name"]]}
    rows = []

    def run(who: str, what: str) -> None:
        # sync.harvester counts api.php requests only: a sync sends nothing else
        requests, seconds, line = sync.harvester(server.log_path, env, "sync", "--mirror",
                                                 str(mirrors[who]), "--max-rps", "0",
                                                 "--max-rpm", "0", *extra[who])
        rows.append({"who": who, "what": what, "requests": requests, "seconds": seconds,
                     "summary": line})

    for who in mirrors:
        run(who, "nothing to do")
    print(f"  making {changes} edits through the API ...", file=sys.stderr)
    with wiki_changes.WikiChanger(wiki, server.api_url) as changer:
        started = time.monotonic()
        sync.make_changes(changer, changes)
        edit_seconds = time.monotonic() - started
    for who in mirrors:
        run(who, f"{changes} edits")
    for r in rows:
        r["edits_made_in_s"] = edit_seconds
    return rows


def bench_scale(
    scale: int, full: bool, args: argparse.Namespace, peer: wikiteam.Peer | None, work: Path,
) -> dict[str, Any]:
    print(f"scale {scale}: preparing the wiki ...", file=sys.stderr)
    target = work / f"wiki-{scale}"
    wiki = demo_wiki.fixture_wiki(target, scale=scale, cache=args.cache)
    dump = demo_wiki.dump_backup(wiki, work / f"dump-{scale}.xml")
    profile = profile_dump(dump)
    result: dict[str, Any] = {"scale": scale, "wiki": profile}
    if full:
        result["compressed"] = compress.reference_sizes(dump, work, args.cache)
    dump.unlink()
    bot = demo_wiki.load_manifest(wiki)["bot_password"]
    wiki = demo_wiki.set_port(wiki, demo_wiki.free_port())
    with demo_wiki.WikiServer(wiki, workers=4) as server:
        rows, mirrors = harvester_rows(server, bot, profile, work, keep=full)
        if full and peer is not None:
            rows += peer_rows(peer, server, profile, work, args.peer_delay)
        if full:
            print("  reading random revisions ...", file=sys.stderr)
            result["read"] = read_latency(mirrors["logged in"], args.read_samples, 20)
            result["mirror_parts"] = mirror_parts(mirrors["logged in"])
            result["sync"] = sync_cost(server, wiki, bot, mirrors, args.changes)
    result["runs"] = rows
    for mirror in mirrors.values():
        shutil.rmtree(mirror)
    shutil.rmtree(target)
    return result


# ---------------------------------------------------------------- targets


def find(runs: list[dict[str, Any]], tool: str, who: str, workers: int) -> dict[str, Any] | None:
    for r in runs:
        if (r["tool"], r["who"], r["concurrency"]) == (tool, who, workers):
            return r
    return None


def check(name: str, ratio: float | None, limit: float, *, at_least: bool = False,
          note: str = "") -> dict[str, Any]:
    if ratio is None:
        verdict = "SKIP"
    else:
        verdict = "PASS" if (ratio >= limit if at_least else ratio <= limit) else "MISS"
    return {"target": name, "ratio": ratio, "limit": limit, "at_least": at_least,
            "verdict": verdict, "note": note}


def ceiling_note(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    """What the server alone allows: with every CPU of the machine answering requests
    and a client that cost nothing, revisions/s = CPUs / server CPU per revision."""
    cpus = os.cpu_count() or 1
    ceiling = 1000 * cpus / ours["server_cpu_ms_per_rev"]
    return (f"server {ours['server_cpu_ms_per_rev']:.3f} ms CPU/rev: {cpus} CPUs serve at most "
            f"{ceiling:,.0f} rev/s = {ceiling / peer['revisions_per_s']:.2f}x wikiteam3")


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, on the largest scale (and the smallest, for memory)."""
    big = results[-1]
    runs = big["runs"]
    out = []
    for who, workers in MODES:
        r = find(runs, "harvester", who, workers)
        assert r is not None
        out.append(check(f"requests within 5% of the API floor, {who}, concurrency {workers}",
                         r["over_floor"], 1.05, note=f"{r['requests']} vs {r['api_floor']}"))
    for who in ("anonymous", "logged in"):
        peer = find(runs, "wikiteam3", who, 1)
        ours = find(runs, "harvester", who, 4)
        assert ours is not None
        speed = ours["revisions_per_s"] / peer["revisions_per_s"] if peer else None
        note = "" if peer is None or peer["complete"] else "wikiteam3 output incomplete"
        if peer and ours["server_cpu_ms_per_rev"] > 0:
            note = (note + "; " if note else "") + ceiling_note(ours, peer)
        out.append(check(f"concurrency 4 >= 3x wikiteam3 rev/s, {who}", speed, 3.0,
                         at_least=True, note=note))
    for who, workers in MODES:
        peer = find(runs, "wikiteam3", who, 1)
        ours = find(runs, "harvester", who, workers)
        assert ours is not None
        cpu = ours["cpu_ms_per_rev"] / peer["cpu_ms_per_rev"] if peer else None
        out.append(check(f"CPU per revision <= 1/2 of wikiteam3's, {who}, concurrency "
                         f"{workers}", cpu, 0.5))
    seven = big.get("compressed", {}).get("7z -mx=9", {}).get("bytes")
    largest = max(r["bytes"] for r in runs if r["tool"] == "harvester")
    out.append(check("mirror on disk <= 7z -mx=9 of the XML (largest of the 4 mirrors)",
                     largest / seven if seven else None, 1.0))
    if len(results) > 1:
        small = results[0]
        factor = big["wiki"]["revisions"] / small["wiki"]["revisions"]
        for who, workers in MODES:
            a = find(small["runs"], "harvester", who, workers)
            b = find(runs, "harvester", who, workers)
            assert a is not None and b is not None
            out.append(check(f"peak RSS within 10% at {factor:.1f}x the revisions, {who}, "
                             f"concurrency {workers}", b["peak_rss_mb"] / a["peak_rss_mb"],
                             1.10, note=f"{a['peak_rss_mb']:.1f} -> {b['peak_rss_mb']:.1f} MB"))
    return out


# ---------------------------------------------------------------- output


def print_wiki(result: dict[str, Any]) -> None:
    w = result["wiki"]
    print(f"scale {result['scale']}: {w['pages']:,} pages, {w['revisions']:,} revisions; "
          f"revisions per page median {w['history_median']}, p90 {w['history_p90']}, "
          f"max {w['history_max']}; text bytes median {w['size_median']:,.0f}, "
          f"p90 {w['size_p90']:,}, max {w['size_max']:,}; edit size median "
          f"{w['edit_delta_median']:.0f} bytes, {100 * w['edits_under_500_bytes']:.0f}% under 500; "
          f"dumpBackup XML {w['dump_xml_bytes'] / 1e6:.1f} MB")


def print_runs(results: list[dict[str, Any]]) -> None:
    header = (f"{'scale':>5} {'tool':<9} {'who':<9} {'conc':>4} {'revs':>7} {'wall s':>7} "
              f"{'rev/s':>6} {'requests':>8} {'/1k rev':>7} {'floor':>5} {'x floor':>7} "
              f"{'cpu s':>6} {'cpu ms/rev':>10} {'srv ms/rev':>10} {'RSS MB':>6} {'disk MB':>7}")
    print(header)
    print("-" * len(header))
    for result in results:
        for r in result["runs"]:
            revs = f"{r['revisions_copied']}" + ("" if r["complete"] else "!")
            print(f"{result['scale']:>5} {r['tool']:<9} {r['who']:<9} {r['concurrency']:>4} "
                  f"{revs:>7} {r['wall_s']:>7.1f} {r['revisions_per_s']:>6.0f} "
                  f"{r['requests']:>8} {r['requests_per_1000_rev']:>7.1f} {r['api_floor']:>5} "
                  f"{r['over_floor']:>7.3f} {r['cpu_s']:>6.1f} {r['cpu_ms_per_rev']:>10.3f} "
                  f"{r['server_cpu_ms_per_rev']:>10.3f} "
                  f"{r['peak_rss_mb']:>6.1f} {r['bytes'] / 1e6:>7.1f}")


def print_extras(big: dict[str, Any]) -> None:
    if "compressed" in big:
        sizes = ", ".join(
            f"{name} {v['bytes'] / 1e6:.2f} MB" if v["bytes"] is not None
            else f"{name} n/a (apt-get install {v['missing']})"
            for name, v in big["compressed"].items())  # fmt: skip
        print(f"\ndumpBackup XML {big['wiki']['dump_xml_bytes'] / 1e6:.1f} MB; {sizes}")
    if "mirror_parts" in big:
        parts = big["mirror_parts"]
        seven = big.get("compressed", {}).get("7z -mx=9", {}).get("bytes")
        against = f" ({parts['texts'] / seven:.2f}x the 7z)" if seven else ""
        print(f"logged-in concurrency-4 mirror: texts {parts['texts'] / 1e6:.2f} MB{against}, "
              f"catalogue {parts['catalogue'] / 1e6:.2f} MB, WAL {parts['wal'] / 1e6:.2f} MB")
    if "read" in big:
        print("\nsingle-revision reads from the crawled mirror:")
        for name, v in big["read"].items():
            print(f"  {name:<32} p50 {v['p50_ms']:7.2f} ms  p99 {v['p99_ms']:7.2f} ms  "
                  f"max {v['max_ms']:7.2f} ms  ({v['samples']} reads)")
    if "sync" in big:
        print(f"\nsync (edits made in {big['sync'][0]['edits_made_in_s']:.0f} s):")
        for r in big["sync"]:
            print(f"  {r['who']:<9} {r['what']:<14} {r['requests']:>5} requests "
                  f"{r['seconds']:>7.2f} s   {r['summary']}")


def print_targets(checks: list[dict[str, Any]]) -> None:
    print("\ntargets:")
    for c in checks:
        ratio = "n/a" if c["ratio"] is None else f"{c['ratio']:.3f}"
        sign = ">=" if c["at_least"] else "<="
        note = f"  ({c['note']})" if c["note"] else ""
        print(f"  {c['verdict']:<4} {c['target']}: {ratio} {sign} {c['limit']}{note}")


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1,10",
                        help="fixture scales, smallest first; the largest gets the full "
                             "comparison (default 1,10)")
    parser.add_argument("--cache", type=Path,
                        help="keep built wikis, wikiteam3's venv and compressed sizes here")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--changes", type=int, default=1000, help="edits for the sync cost")
    parser.add_argument("--read-samples", type=int, default=1000)
    parser.add_argument("--peer-delay", type=float, default=0.0,
                        help=f"wikiteam3 --delay (its default: {wikiteam.DEFAULT_DELAY} s)")
    parser.add_argument("--peer-package", default="wikiteam3", help="pip requirement")
    args = parser.parse_args()
    try:
        args.scales = sorted({int(s) for s in args.scales.split(",")})
    except ValueError:
        parser.error(f"--scales takes whole numbers like 1,10, not {args.scales!r}")
    if args.scales[0] < 1:
        parser.error("scales start at 1")
    return args


def main() -> None:
    args = parse_args()
    demo_wiki.ensure_mediawiki_installed()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="harvester-bench-") as tmp:
        work = Path(tmp)
        peer = wikiteam.install((args.cache or work) / "wikiteam3-venv", args.peer_package)
        for scale in args.scales:
            results.append(bench_scale(scale, scale == args.scales[-1], args, peer, work))
    checks = targets(results)
    print()
    for result in results:
        print_wiki(result)
    print()
    print_runs(results)
    print_extras(results[-1])
    print_targets(checks)
    print(f"\nwikiteam3 {peer.version}, --delay {args.peer_delay} (its default "
          f"{wikiteam.DEFAULT_DELAY}); php -S with 4 workers; {os.cpu_count()} CPUs")
    if args.json:
        report = {
            "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "wikiteam3": peer.version, "peer_delay_s": args.peer_delay,
            "results": results, "targets": checks,
        }
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
