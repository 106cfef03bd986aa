"""Benchmark of the revision store on a real page history (not a pytest test).

    python tests/bench_storage.py            # the shipped settings
    python tests/bench_storage.py --sweep    # also other depths, branchings and levels

Streams the enwiki "Anarchism" history (15,180 revisions, 1.05 GB of XML) from
../shared/corpora/ into scratch mirrors under /tmp, 50 revisions per
write_batch(), then reads random single revisions back with a cold text cache.
All configurations of a sweep are fed from one pass over the XML.
Skips with a message when the corpus is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import textstore
from storage.export_jsonl import write_jsonl
from storage.mirror import DB_NAME, Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord

CORPUS = (
    Path(__file__).resolve().parent.parent.parent
    / "shared/corpora/enwiki-Anarchism-history-2010.xml.lzma"
)
XML_BYTES = 1.05e9  # uncompressed size of the corpus, from its README
LZMA_BYTES = CORPUS.stat().st_size if CORPUS.exists() else 0
NS = "{http://www.mediawiki.org/xml/export-0.4/}"
BATCH = 50
READS = 2000


@dataclass
class Config:
    max_depth: int = textstore.MAX_DEPTH
    branching: int = textstore.BRANCHING
    level: int = textstore.DELTA_LEVEL

    @property
    def label(self) -> str:
        return f"depth {self.max_depth:2d}  branch {self.branching}  level {self.level:2d}"


@dataclass
class Result:
    config: Config
    mirror: Mirror
    store_seconds: float = 0.0
    revisions: int = 0


def parse(path: Path) -> Iterator[tuple[PageRecord, RevisionRecord]]:
    """Revisions of an export schema 0.4 file, streamed; elements are cleared as we go."""
    page: PageRecord | None = None
    title = ""
    with lzma.open(path, format=lzma.FORMAT_ALONE) as f:
        for _, el in ET.iterparse(f, events=("end",)):
            if el.tag == NS + "id" and page is None:
                page = PageRecord(pageid=int(el.text or 0), ns=0, title="")
            elif el.tag == NS + "title" and page is None:
                title = el.text or ""
            elif el.tag == NS + "revision":
                assert page is not None
                page.title = title
                yield page, _revision(el, page.pageid)
                el.clear()
            elif el.tag == NS + "page":
                page = None
                el.clear()


def _revision(el: ET.Element, pageid: int) -> RevisionRecord:
    contributor = el.find(NS + "contributor")
    user = userid = None
    if contributor is not None:
        user = contributor.findtext(NS + "username") or contributor.findtext(NS + "ip")
        uid = contributor.findtext(NS + "id")
        userid = int(uid) if uid else 0
    text = el.findtext(NS + "text") or ""
    return RevisionRecord(
        revid=int(el.findtext(NS + "id") or 0),
        pageid=pageid,
        parentid=None,
        timestamp=el.findtext(NS + "timestamp") or "",
        user=user,
        userid=userid,
        comment=el.findtext(NS + "comment"),
        minor=el.find(NS + "minor") is not None,
        size=len(text.encode()),
        sha1=hashlib.sha1(text.encode()).hexdigest(),
        slots=[SlotRecord(role="main", content_model="wikitext", text=text)],
    )


def feed(results: list[Result]) -> tuple[int, dict[int, str]]:
    """One pass over the corpus into every mirror; returns raw text bytes and revid -> sha1."""
    raw = 0
    sha1s: dict[int, str] = {}
    pending: list[RevisionRecord] = []
    page: PageRecord | None = None

    def flush(page: PageRecord) -> None:
        batch = RevisionBatch(pages=[page], revisions=pending)
        for result in results:
            start = time.perf_counter()
            result.mirror.write_batch(batch, "bench", {"last": pending[-1].revid}, False)
            result.store_seconds += time.perf_counter() - start
            result.revisions += len(pending)

    for page, rev in parse(CORPUS):
        raw += rev.size or 0
        sha1s[rev.revid] = rev.sha1 or ""
        pending.append(rev)
        if len(pending) == BATCH:
            flush(page)
            pending = []
    if pending and page is not None:
        flush(page)
    return raw, sha1s


def read_latencies(mirror: Mirror, sha1s: dict[int, str]) -> list[float]:
    """Seconds per random single-revision read, cache emptied before each."""
    rng = random.Random(42)
    revids = rng.sample(sorted(sha1s), min(READS, len(sha1s)))
    out = []
    for revid in revids:
        mirror.texts.cache.clear()
        start = time.perf_counter()
        text = mirror.revision_text(revid)
        out.append(time.perf_counter() - start)
        assert text is not None and hashlib.sha1(text.encode()).hexdigest() == sha1s[revid]
    return out


def report(result: Result, raw: int, sha1s: dict[int, str]) -> None:
    mirror = result.mirror
    mirror.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    texts_bytes, rows, max_depth, avg_depth = mirror.db.execute(
        "SELECT sum(length(data)), count(*), max(depth), avg(depth) FROM texts"
    ).fetchone()
    file_bytes = (mirror.directory / DB_NAME).stat().st_size
    lat = sorted(read_latencies(mirror, sha1s))
    p50 = statistics.median(lat) * 1e3
    p99 = lat[int(len(lat) * 0.99)] * 1e3
    print(
        f"{result.config.label} | {result.revisions / result.store_seconds:7.0f} rev/s"
        f" | texts {texts_bytes / 1e6:6.2f} MB ({raw / texts_bytes:4.0f}x raw,"
        f" {texts_bytes / LZMA_BYTES:4.2f}x lzma) | file {file_bytes / 1e6:6.2f} MB"
        f" ({XML_BYTES / file_bytes:4.0f}x xml, {file_bytes / LZMA_BYTES:4.2f}x lzma)"
        f" | rows {rows} depth max {max_depth} avg {avg_depth:4.1f}"
        f" | read p50 {p50:.2f} ms p99 {p99:.2f} ms",
        flush=True,
    )
    # Where the file's bytes are: each table and index, by pages.
    where = mirror.db.execute(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6"
    ).fetchall()
    print("  largest: " + ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in where))


def export(mirror: Mirror) -> None:
    """Time a full JSON Lines export of the first configuration's mirror."""
    mirror.texts.cache.clear()
    start = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as out:
        count = write_jsonl(mirror, out)
    seconds = time.perf_counter() - start
    print(
        f"export to JSON Lines: {count} revisions in {seconds:.1f} s ({count / seconds:.0f} rev/s)"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def configs(sweep: bool) -> list[Config]:
    shipped = Config()
    if not sweep:
        return [shipped]
    others = [
        Config(max_depth=8),
        Config(max_depth=32),
        Config(branching=4),
        Config(max_depth=8, branching=4),
        Config(level=3),
        Config(level=6),
        Config(level=12),
    ]
    return [shipped, *others]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also try other settings")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"skipped: corpus {CORPUS} not found")
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="harvester-bench-"))
    results = []
    try:
        for i, config in enumerate(configs(args.sweep)):
            mirror = Mirror.open(scratch / f"m{i}", create=True)
            mirror.texts = textstore.TextStore(
                mirror.db.conn,
                max_depth=config.max_depth,
                branching=config.branching,
                level=config.level,
            )
            results.append(Result(config, mirror))
        start = time.perf_counter()
        raw, sha1s = feed(results)
        wall = time.perf_counter() - start
        print(
            f"{len(sha1s)} revisions, {raw / 1e6:.0f} MB of text, parsed and stored"
            f" in {wall:.0f} s wall; lzma file {LZMA_BYTES / 1e6:.2f} MB"
        )
        for result in results:
            report(result, raw, sha1s)
        print(f"peak RSS {peak_rss_mb():.0f} MB after storing and reading (whole process)")
        export(results[0].mirror)
        print(f"peak RSS {peak_rss_mb():.0f} MB after the export")
    finally:
        for result in results:
            result.mirror.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
