"""Import benchmark: `harvester import-dump` on the fixture wiki's dump and real dumps.

    python bench/import_dump.py [--scale 10] [--cache DIR] [--corpora DIR] [--json out.json]

Dumps: dumpBackup.php --full of the fixture wiki at the given scale (built by
scripts/demo_wiki.py, or taken from --cache), and every file of the shared
corpora folder when present (the 15,180-revision Anarchism history among
them). Each is imported into a new mirror by a separate `harvester
import-dump` process, run under a small wrapper that reports its peak RSS and
CPU time; "parse" is the XML reading alone (storage/dumpxml.py), in this
process; "1-process" the same import with the reading done in the importing
process (as on a machine with one CPU) instead of a second one. Prints a
table; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
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

from storage.dumpxml import DumpReader, open_dump  # noqa: E402
from storage.records import RevisionRecord  # noqa: E402

# A child's peak RSS includes the memory of the process it was forked from, so the
# import is started from this small wrapper, not from the benchmark itself.
RUSAGE_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'code': code, 'maxrss_kb': usage.ru_maxrss,"
    " 'cpu_s': usage.ru_utime + usage.ru_stime}), file=sys.stderr)\n"
)


def parse_only(dump: Path) -> tuple[int, int, float]:
    """(revisions, XML bytes, seconds) of reading the dump without storing anything."""
    started = time.monotonic()
    revisions = 0
    with open_dump(dump) as stream:
        reader = DumpReader(stream, dump.name)
        for item in reader.items():
            revisions += isinstance(item, RevisionRecord)
    return revisions, reader.bytes_read, time.monotonic() - started


# The same import with the dump read in the importing process itself (no second
# process; what a 1-CPU machine gets), for the comparison in one run.
SERIAL_IMPORT = (
    "import sys\n"
    "from pathlib import Path\n"
    "from storage.dumpimport import import_dump\n"
    "from storage.mirror import Mirror\n"
    "with Mirror.open(Path(sys.argv[2]), create=True) as mirror:\n"
    "    import_dump(mirror, Path(sys.argv[1]), parallel=False)\n"
)


def run_import(dump: Path, mirror: Path, *, serial: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "harvester", "import-dump", str(dump),
               "--mirror", str(mirror), "--quiet"]
    if serial:
        command = [sys.executable, "-c", SERIAL_IMPORT, str(dump), str(mirror)]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", RUSAGE_WRAPPER, *command], cwd=ROOT,
                          stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    usage = json.loads(done.stderr.strip().splitlines()[-1])
    if usage["code"] != 0:
        raise SystemExit(f"import of {dump} failed: {done.stderr}")
    size = sum(p.stat().st_size for p in mirror.iterdir() if p.is_file())
    return {"wall_s": wall, "cpu_s": usage["cpu_s"], "peak_rss_mb": usage["maxrss_kb"] / 1024,
            "mirror_mb": size / 1e6}


def bench(dump: Path, label: str, work: Path) -> dict[str, Any]:
    revisions, xml_bytes, parse_s = parse_only(dump)
    serial = run_import(dump, work / f"serial-{label}", serial=True)
    result = run_import(dump, work / f"mirror-{label}")
    return {"dump": label, "revisions": revisions, "xml_mb": xml_bytes / 1e6,
            "file_mb": dump.stat().st_size / 1e6, **result,
            "rev_per_s": revisions / result["wall_s"],
            "mb_per_s": xml_bytes / 1e6 / result["wall_s"],
            "rev_per_cpu_s": revisions / result["cpu_s"], "parse_rev_per_s": revisions / parse_s,
            "serial_wall_s": serial["wall_s"], "serial_rev_per_s": revisions / serial["wall_s"]}


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'dump':<44} {'revs':>6} {'XML MB':>8} {'file MB':>7} {'wall s':>7} "
              f"{'cpu s':>6} {'rev/s':>6} {'MB/s':>5} {'rev/cpu s':>9} {'parse rev/s':>11} "
              f"{'RSS MB':>6} {'mirror MB':>9} {'1-process rev/s':>15}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['dump'][:44]:<44} {r['revisions']:>6} {r['xml_mb']:>8.1f} {r['file_mb']:>7.1f} "
              f"{r['wall_s']:>7.1f} {r['cpu_s']:>6.1f} {r['rev_per_s']:>6.0f} "
              f"{r['mb_per_s']:>5.1f} {r['rev_per_cpu_s']:>9.0f} {r['parse_rev_per_s']:>11.0f} "
              f"{r['peak_rss_mb']:>6.0f} {r['mirror_mb']:>9.1f} {r['serial_rev_per_s']:>15.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=10, help="fixture wiki scale (0: none)")
    parser.add_argument("--cache", type=Path, help="keep built fixture wikis here")
    parser.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="harvester-bench-") as tmp:
        work = Path(tmp)
        if args.scale:
            demo_wiki.ensure_mediawiki_installed()
            target = work / "wiki"
            wiki = demo_wiki.fixture_wiki(target, scale=args.scale, cache=args.cache)
            dump = demo_wiki.dump_backup(wiki, work / f"fixture-scale-{args.scale}.xml")
            rows.append(bench(dump, dump.name, work))
        if args.corpora.is_dir():
            for dump in sorted(args.corpora.glob("*.xml*")):
                rows.append(bench(dump, dump.name, work))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
