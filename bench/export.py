"""Export benchmark: revisions/s, MB/s and peak memory of `harvester export`.

    python bench/export.py [--mirror DIR] [--scales 1,10] [--cache /tmp/mwcache]
                           [--repeat N] [--json out.json]

With --mirror, exports that mirror (building it first when DIR does not exist:
the crawl of the fixture wiki at the first scale given). Without, one mirror
per scale is crawled from the fixture wiki (scripts/demo_wiki.py, kept under
--cache; building a scale-10 wiki takes minutes, a cached one a second) into a
temporary directory.

Each export (jsonl and xml, plain and .zst, and parquet) runs in a fresh
process that times run_export() alone, without interpreter start-up, and
reports its own peak RSS. MB/s counts the uncompressed export, so plain and
.zst rows compare directly (parquet: its own files). Then one analyst's
question, revisions per user in namespace 0, is timed (best of three) in DuckDB
over the Parquet files and in SQLite over the mirror. Prints tables; a
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import demo_wiki  # noqa: E402

# Runs in the child: the timing covers the export only, the RSS the whole process.
CHILD = (
    "import json, resource, sys, time\n"
    "from harvester.config import Settings\n"
    "from jobs.export import run_export\n"
    "mirror, fmt, output = sys.argv[1:]\n"
    "start = time.perf_counter()\n"
    "count = run_export(Settings(mirror=mirror, quiet=True), fmt, output)\n"
    "seconds = time.perf_counter() - start\n"
    "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(json.dumps({'count': count, 'seconds': seconds, 'maxrss_kb': rss}))\n"
)
CASES = (("jsonl", ""), ("jsonl", ".zst"), ("xml", ""), ("xml", ".zst"), ("parquet", ""))
DUCKDB_QUERY = """SELECT user_text, count(*) AS revisions FROM read_parquet(?)
    WHERE page_namespace_id = 0 GROUP BY user_text ORDER BY revisions DESC"""
SQLITE_QUERY = """SELECT user, count(*) AS revisions FROM page_history
    WHERE ns = 0 GROUP BY user ORDER BY revisions DESC"""


def crawl_fixture(scale: int, cache: Path, mirror: Path, work: Path) -> None:
    """Crawl the fixture wiki at ``scale`` into ``mirror`` (logged in: 500 per request)."""
    wiki = demo_wiki.cached_fixture_wiki(cache, work / f"wiki-{scale}", scale=scale)
    bot = demo_wiki.load_manifest(wiki)["bot_password"]
    env = {**os.environ, "HARVESTER_PASSWORD": bot["password"]}
    print(f"crawling the scale-{scale} fixture wiki into {mirror} ...", file=sys.stderr)
    with demo_wiki.WikiServer(wiki) as server:
        subprocess.run(
            [sys.executable, "-m", "harvester", "crawl", server.api_url, "--mirror", str(mirror),
             "--user", bot["name"], "--concurrency", "4", "--max-rps", "0", "--max-rpm", "0",
             "--quiet"],
            cwd=ROOT, env=env, check=True,
        )


def export_once(mirror: Path, fmt: str, output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(mirror), fmt, str(output)],
        cwd=ROOT, capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"export failed: {done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_mirror(label: str, mirror: Path, work: Path, repeat: int) -> list[dict[str, Any]]:
    rows = []
    plain_bytes: dict[str, int] = {}
    for fmt, suffix in CASES:
        output = work / f"export.{fmt}{suffix}"
        runs = [export_once(mirror, fmt, output) for _ in range(repeat)]
        best = min(runs, key=lambda run: run["seconds"])
        size = output_size(output)
        plain_bytes.setdefault(fmt, size)  # the plain case of a format runs first
        rows.append({
            "mirror": label, "format": fmt, "output": suffix or "plain",
            "revisions": best["count"], "seconds": best["seconds"],
            "revisions_per_s": best["count"] / best["seconds"],
            "mb_per_s": plain_bytes[fmt] / 1e6 / best["seconds"],
            "file_mb": size / 1e6, "peak_rss_mb": max(r["maxrss_kb"] for r in runs) / 1024,
        })
        if fmt == "parquet":
            rows[-1]["query"] = time_queries(mirror, output)
            rows[-1]["mirror_mb"] = (mirror / "mirror.sqlite").stat().st_size / 1e6
            shutil.rmtree(output)
        else:
            output.unlink()
    return rows


def output_size(output: Path) -> int:
    if output.is_dir():  # parquet: the data files, not the attribution beside them
        return sum(p.stat().st_size for p in output.glob("*/*.parquet"))
    return output.stat().st_size


def time_queries(mirror: Path, parquet: Path) -> dict[str, float]:
    """Revisions per user in namespace 0: DuckDB on the Parquet, SQLite on the mirror."""
    import duckdb

    def best(run: Any) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    files = str(parquet / "*" / "*.parquet")
    db = sqlite3.connect(f"file:{mirror / 'mirror.sqlite'}?mode=ro", uri=True)
    duck = [tuple(r) for r in duckdb.execute(DUCKDB_QUERY, [files]).fetchall()]
    lite = [tuple(r) for r in db.execute(SQLITE_QUERY).fetchall()]
    assert sorted(duck, key=str) == sorted(lite, key=str), "the two answers differ"
    return {"duckdb_s": best(lambda: duckdb.execute(DUCKDB_QUERY, [files]).fetchall()),
            "sqlite_s": best(lambda: db.execute(SQLITE_QUERY).fetchall())}


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'mirror':<10} {'format':<6} {'output':<6} {'revisions':>9} {'seconds':>8} "
              f"{'rev/s':>7} {'MB/s':>6} {'file MB':>8} {'peak RSS MB':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['mirror']:<10} {r['format']:<6} {r['output']:<6} {r['revisions']:>9,} "
              f"{r['seconds']:>8.2f} {r['revisions_per_s']:>7,.0f} {r['mb_per_s']:>6.1f} "
              f"{r['file_mb']:>8.2f} {r['peak_rss_mb']:>11.1f}")
    for r in rows:
        if "query" in r:
            print(f"{r['mirror']}: the mirror's file {r['mirror_mb']:.2f} MB")
            q = r["query"]
            print(f"{r['mirror']}: revisions per user in namespace 0: DuckDB on the Parquet "
                  f"{q['duckdb_s'] * 1000:.1f} ms, "
                  f"SQLite on the mirror {q['sqlite_s'] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path, help="export this mirror (built if missing)")
    parser.add_argument("--scales", default="1", help="fixture scales to crawl, e.g. 1,10")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mwcache"),
                        help="fixture wiki cache (default: /tmp/mwcache)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the best counts")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="harvester-bench-export-") as tmp:
        work = Path(tmp)
        if args.mirror is not None:
            if not args.mirror.exists():
                crawl_fixture(scales[0], args.cache, args.mirror, work)
            rows += bench_mirror(args.mirror.name[:10], args.mirror, work, args.repeat)
        else:
            for scale in scales:
                mirror = work / f"mirror-{scale}"
                crawl_fixture(scale, args.cache, mirror, work)
                rows += bench_mirror(f"scale {scale}", mirror, work, args.repeat)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
