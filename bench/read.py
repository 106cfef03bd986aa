"""Read benchmark: how fast `harvester show` answers on a mirror of 100k+ revisions.

    python bench/read.py [--mirror DIR] [--revisions N] [--samples 1000] [--runs 30]

Builds a synthetic mirror directly with Mirror.write_batch (or reuses DIR when
it already holds one): pages of near-identical consecutive texts, most with a
few dozen revisions, some with thousands. Then times, over random revisions,
the library calls behind `show` (with a cold text cache, as a fresh process has,
and with the cache kept), and the full `python -m harvester show` process,
whose start-up dominates. Prints a table; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import query  # noqa: E402
from storage.mirror import DB_NAME, Mirror  # noqa: E402
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord  # noqa: E402

WORDS = [
    "wiki", "page", "history", "revision", "editor", "article", "section", "citation",
    "template", "category", "river", "mountain", "city", "village", "population", "census",
    "railway", "station", "church", "castle", "museum", "library", "school", "university",
    "bridge", "harbour", "island", "forest", "lake",
]  # fmt: skip
BIG_PAGES = 8  # pages with thousands of revisions
BIG_REVISIONS = 3_000


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 18))]
    return " ".join(words).capitalize() + "."


def page_texts(rng: random.Random, count: int) -> Iterator[str]:
    """``count`` successive texts of one page: each a small edit of the one before."""
    paragraphs = [[sentence(rng) for _ in range(rng.randint(3, 8))]
                  for _ in range(rng.randint(4, 12))]  # fmt: skip
    for _ in range(count):
        para = rng.choice(paragraphs)
        roll = rng.random()
        if roll < 0.5:
            para.insert(rng.randrange(len(para) + 1), sentence(rng))
        elif roll < 0.8 or len(para) < 2:
            para[rng.randrange(len(para))] = sentence(rng)
        elif roll < 0.95:
            del para[rng.randrange(len(para))]
        else:
            paragraphs.append([sentence(rng)])
        yield "\n\n".join("== Section ==\n" + " ".join(p) for p in paragraphs) + "\n"


def build(directory: Path, revisions: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    small = revisions - BIG_PAGES * BIG_REVISIONS
    counts = [BIG_REVISIONS] * BIG_PAGES
    while small > 0:
        n = min(small, max(1, int(rng.expovariate(1 / 40))))
        counts.append(n)
        small -= n
    revid = 0
    start = time.monotonic()
    with Mirror.open(directory, create=True) as mirror:
        for pageid, count in enumerate(counts, start=1):
            page = PageRecord(pageid, 0, f"Page {pageid}", is_redirect=False)
            batch: list[RevisionRecord] = []
            for text in page_texts(rng, count):
                revid += 1
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1e9 + revid * 60))
                batch.append(RevisionRecord(
                    revid=revid, pageid=pageid, parentid=None, timestamp=stamp,
                    user=f"User{rng.randrange(500)}", userid=None, comment="edit", minor=False,
                    size=len(text), sha1=None, slots=[SlotRecord("main", "wikitext", text=text)],
                ))  # fmt: skip
                if len(batch) == 500:
                    mirror.write_batch(RevisionBatch([page], batch), "bench", None, False)
                    batch = []
            if batch:
                mirror.write_batch(RevisionBatch([page], batch), "bench", None, False)
            if pageid % 200 == 0:
                rate = revid / (time.monotonic() - start)
                print(f"  {revid:,} revisions written ({rate:,.0f}/s)", file=sys.stderr)


def timed(samples: list[int], call: Callable[[int], object]) -> list[float]:
    out = []
    for item in samples:
        t0 = time.perf_counter()
        call(item)
        out.append(time.perf_counter() - t0)
    return out


def percentiles(times: list[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000, max(ordered) * 1000


def library_reads(
    directory: Path, samples: int, rng: random.Random, *, by_title: bool = True
) -> tuple[list[tuple[str, list[float]]], list[int], int]:
    """Time the library calls behind `show` on ``samples`` random revisions of a mirror.

    ``by_title`` also times latest-revision lookups of "page_N" titles, which only the
    synthetic mirror of build() has. Returns (name, seconds per call) rows, every revid
    of the mirror and its page count.
    """
    with Mirror.open(directory, create=False) as mirror:
        revids = [r for (r,) in mirror.db.execute("SELECT revid FROM revisions")]
        pages = mirror.count_pages()
        chosen = rng.sample(revids, min(samples, len(revids)))
        titles = [f"page_{rng.randint(1, pages)}" for _ in chosen]

        def by_revid(revid: int) -> str:
            return query.slot_text(mirror, query.revision(mirror, revid))

        def by_revid_cold(revid: int) -> str:
            mirror.texts.clear_caches()
            return by_revid(revid)

        def latest_by_title(i: int) -> str:
            mirror.texts.clear_caches()
            page = query.find_page(mirror, titles[i])
            return query.slot_text(mirror, query.latest_revision(mirror, page))

        rows = [
            ("library: show --rev, cold cache", timed(chosen, by_revid_cold)),
            ("library: show --rev, cache kept between calls", timed(chosen, by_revid)),
        ]
        if by_title:
            rows.append(("library: show TITLE (latest), cold cache",
                         timed(list(range(len(chosen))), latest_by_title)))
    return rows, revids, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path, help="reuse or build the mirror here")
    parser.add_argument("--revisions", type=int, default=110_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=30, help="CLI processes to time")
    args = parser.parse_args()
    directory = args.mirror or Path(tempfile.mkdtemp(prefix="bench-read-"))
    if not (directory / DB_NAME).exists():
        print(f"building {args.revisions:,} revisions in {directory} ...", file=sys.stderr)
        build(directory, args.revisions)
    rng = random.Random(7)
    rows, revids, pages = library_reads(directory, args.samples, rng)
    size = (directory / DB_NAME).stat().st_size
    command = [sys.executable, "-m", "harvester", "show", "--mirror", str(directory), "--rev"]
    cli = timed(rng.sample(revids, args.runs), lambda revid: subprocess.run(
        [*command, str(revid)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL))  # fmt: skip
    bare = timed(list(range(args.runs)), lambda _: subprocess.run(
        [sys.executable, "-c", "import harvester.cli"], cwd=ROOT, check=True))  # fmt: skip
    rows += [(f"process: python -m harvester show --rev ({args.runs} runs)", cli),
             (f"process: python -c 'import harvester.cli' ({args.runs} runs)", bare)]  # fmt: skip
    print(f"\nmirror: {len(revids):,} revisions, {pages:,} pages, {size / 1e6:,.1f} MB"
          f" ({directory})\n")  # fmt: skip
    print(f"| {'what':<58} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 60}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for name, times in rows:
        p50, p99, worst = percentiles(times)
        print(f"| {name:<58} | {p50:>7.2f} | {p99:>7.2f} | {worst:>7.2f} |")


if __name__ == "__main__":
    main()
