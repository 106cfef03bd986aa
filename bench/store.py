"""Store benchmark: what a mirror costs against 7z and zstd of the same XML, and how
fast it fills and reads.

    python bench/store.py [--scales 1,10] [--cache DIR] [--corpora DIR] [--samples 1000]

For each dump (the fixture wiki's `dumpBackup.php --full` at each scale, and
the Anarchism history of the shared corpora when present): `7z a -mx=9` and
`zstd -19 --long=27` of the XML; `harvester import-dump` into a new mirror
(wall time, XML MB/s, revisions/s); the mirror's bytes split into the texts
(the pages of `text_packs`) and the catalogue (everything else, per
revision, with the comments' share); and reads of random revisions through
the Python API with the text caches emptied before each (p50/p99). Prints a
table; a benchmark, not a test. Crawl CPU against wikiteam3 is in
bench/run.py.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import demo_wiki  # noqa: E402
from import_dump import run_import  # noqa: E402
from read import percentiles  # noqa: E402

from storage.dumpxml import open_dump  # noqa: E402
from storage.mirror import DB_NAME  # noqa: E402
from storage.reader import open_mirror  # noqa: E402

ANARCHISM = "enwiki-Anarchism-history-2010.xml.lzma"


def plain_xml(dump: Path, work: Path) -> Path:
    """The dump as plain XML, for the archivers (they are given what the harvester reads)."""
    if dump.suffix == ".xml":
        return dump
    out = work / (dump.name.split(".xml")[0] + ".xml")
    with open_dump(dump) as stream, out.open("wb") as sink:
        while chunk := stream.read(1 << 20):
            sink.write(chunk)
    return out


def archived_sizes(xml: Path, work: Path) -> dict[str, int]:
    seven = work / (xml.name + ".7z")
    subprocess.run(["7z", "a", "-mx=9", str(seven), str(xml)], check=True,
                   stdout=subprocess.DEVNULL)
    zst = work / (xml.name + ".zst")
    subprocess.run(["zstd", "-19", "--long=27", "-q", "-f", str(xml), "-o", str(zst)],
                   check=True)
    return {"7z": seven.stat().st_size, "zstd": zst.stat().st_size}


def mirror_parts(mirror: Path) -> dict[str, Any]:
    db = sqlite3.connect(mirror / DB_NAME)
    try:
        one = lambda sql: db.execute(sql).fetchone()[0] or 0  # noqa: E731
        return {
            "revisions": one("SELECT count(*) FROM revision_data"),
            "text_data_bytes": one("SELECT sum(length(data)) FROM text_packs"),
            "text_pages_bytes": one("SELECT sum(pgsize) FROM dbstat WHERE name = 'text_packs'"),
            "comment_bytes": one("SELECT sum(length(CAST(comment AS BLOB))) FROM revision_data"),
            "file_bytes": (mirror / DB_NAME).stat().st_size,
        }
    finally:
        db.close()


def cold_reads(mirror: Path, samples: int) -> tuple[float, float]:
    """p50 and p99 in ms of reading random revisions' texts, text caches emptied each time."""
    rng = random.Random(7)
    with open_mirror(mirror) as m:
        revids = [row["revid"] for row in m.query("SELECT revid FROM revisions")]
        times = []
        for revid in rng.sample(revids, min(samples, len(revids))):
            m._mirror.texts.clear_caches()  # cold: the benchmark reaches past the API
            started = time.perf_counter()
            _ = m.revision(revid).text
            times.append(time.perf_counter() - started)
    p50, p99, _ = percentiles(times)
    return p50, p99


def bench(label: str, dump: Path, work: Path, samples: int) -> dict[str, Any]:
    xml = plain_xml(dump, work)
    sizes = archived_sizes(xml, work)
    mirror = work / f"mirror-{label}"
    imported = run_import(dump, mirror)
    parts = mirror_parts(mirror)
    p50, p99 = cold_reads(mirror, samples)
    revisions = parts["revisions"]
    catalogue = parts["file_bytes"] - parts["text_pages_bytes"]
    xml_mb = xml.stat().st_size / 1e6
    return {
        "dump": label, "revisions": revisions, "xml_mb": xml_mb, **sizes, **parts,
        "texts_x_7z": parts["text_data_bytes"] / sizes["7z"],
        "catalogue_per_rev": catalogue / revisions,
        "comment_per_rev": parts["comment_bytes"] / revisions,
        "mirror_x_7z": parts["file_bytes"] / sizes["7z"],
        "mirror_x_zstd": parts["file_bytes"] / sizes["zstd"],
        "import_s": imported["wall_s"], "import_mb_s": xml_mb / imported["wall_s"],
        "import_rev_s": revisions / imported["wall_s"], "read_p50_ms": p50, "read_p99_ms": p99,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'dump':<22} {'revs':>6} {'XML MB':>7} {'7z B':>10} {'zstd B':>10} "
              f"{'texts B':>10} {'texts/7z':>8} {'cat B/rev':>9} {'comment':>7} "
              f"{'mirror/7z':>9} {'mirror/zstd':>11} {'import s':>8} {'MB/s':>6} {'rev/s':>6} "
              f"{'read p50':>8} {'p99 ms':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['dump'][:22]:<22} {r['revisions']:>6} {r['xml_mb']:>7.0f} {r['7z']:>10,} "
              f"{r['zstd']:>10,} {r['text_data_bytes']:>10,} {r['texts_x_7z']:>8.2f} "
              f"{r['catalogue_per_rev']:>9.0f} {r['comment_per_rev']:>7.0f} "
              f"{r['mirror_x_7z']:>9.2f} {r['mirror_x_zstd']:>11.2f} {r['import_s']:>8.1f} "
              f"{r['import_mb_s']:>6.0f} {r['import_rev_s']:>6.0f} {r['read_p50_ms']:>8.2f} "
              f"{r['read_p99_ms']:>6.2f}")
    print("\ntexts B: the packs' zstd frames; cat B/rev: the rest of the file per revision,"
          " comments (their share in 'comment') included; reads: cold text caches.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", default="1,10", help="fixture wiki scales ('' for none)")
    parser.add_argument("--cache", type=Path, help="keep built fixture wikis here")
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--samples", type=int, default=1000, help="revisions read per mirror")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="harvester-bench-store-") as tmp:
        work = Path(tmp)
        if (args.corpora / ANARCHISM).is_file():
            rows.append(bench("Anarchism", args.corpora / ANARCHISM, work, args.samples))
        for scale in [int(s) for s in args.scales.split(",") if s]:
            target = work / f"wiki-{scale}"
            wiki = demo_wiki.fixture_wiki(target, scale=scale, cache=args.cache)
            dump = demo_wiki.dump_backup(wiki, work / f"fixture-{scale}.xml")
            rows.append(bench(f"fixture scale {scale}", dump, work, args.samples))
    print_table(rows)


if __name__ == "__main__":
    main()
