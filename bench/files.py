"""Files benchmark against a local MediaWiki: what `crawl --files` costs and fetches.

    python bench/files.py [--cache DIR] [--big-mb 500]

The scale-1 fixture wiki with uploads on, and a few hundred file versions put
there with importImages.php: 100 files, 60 and 40 of them given a second and a
third version, 20 more files whose bytes are another file's, and one big file
(``--big-mb``). Served by php -S with the test router logging every file request
(first byte, bytes sent). Then, each a `harvester` process of its own:

- a crawl without files (the baseline), then `crawl --files` on a copy of that
  mirror: requests, the bytes the server sent against the sizes of the distinct
  contents and of all versions, wall time, and the process's peak RSS against
  the baseline's (the big file is the largest download);
- `crawl --files` into a new mirror, killed half-way through the big file, then
  run again: the bytes sent in all against the distinct contents' sizes;
- a sync with nothing to do, with files followed and without.

Prints a table; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import demo_wiki  # noqa: E402
import wiki_changes  # noqa: E402
from crawl import api_requests  # noqa: E402

# Runs a command and prints its peak RSS (kB) on stderr's last line.
PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(done.returncode)")


def make_files(wiki: demo_wiki.Wiki, work: Path, big_mb: int) -> list[tuple[str, bytes]]:
    """Upload the versions; returns (name, bytes) of each, in upload order."""
    versions: list[tuple[str, bytes]] = []
    rounds: list[dict[str, bytes]] = [{}, {}, {}]
    for i in range(100):
        for number in range(1 if i >= 60 else 2 if i >= 40 else 3):
            side = 20 + (i * 37 + number * 11) % 200  # 1 kB to 120 kB of noise
            rounds[number][f"File_{i:03d}.png"] = demo_wiki.png_image(
                side, side, f"{i}/{number}", noise=True)
    for i in range(20):
        rounds[0][f"Copy_{i:03d}.png"] = rounds[0][f"File_{i:03d}.png"]
    side = int((big_mb * 2**20 / 3) ** 0.5)
    rounds[0]["Huge.png"] = demo_wiki.png_image(side, side, "huge", noise=True)
    for number, files in enumerate(rounds):
        if number:
            demo_wiki.next_second()
        directory = work / f"round{number}"
        directory.mkdir(parents=True)
        for name, data in files.items():
            (directory / name).write_bytes(data)
            versions.append((name, data))
        demo_wiki.import_images(wiki, directory, user="Admin", summary=f"round {number}",
                                timestamp=f"2024010{number + 1}000000", overwrite=number > 0)
        shutil.rmtree(directory)
    return versions


def harvester(*args: str, log: Path) -> tuple[float, int, int, str]:
    """(seconds, API requests at the server, peak RSS in MB, stdout) of one command."""
    before = api_requests(log)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "harvester", *args],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"harvester {args[0]} failed: {done.stderr}")
    time.sleep(0.2)  # php -S writes its access log after the answer
    peak = int(done.stderr.strip().splitlines()[-1]) // 1024
    return seconds, api_requests(log) - before, peak, done.stdout.strip()


def file_requests(log: Path) -> list[dict[str, int]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="fixture wiki cache directory")
    parser.add_argument("--big-mb", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-files-"))
    try:
        run(work, args.cache, args.big_mb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, cache: Path | None, big_mb: int) -> None:
    wiki = demo_wiki.fixture_wiki(work / "wiki", cache=cache)
    wiki_changes.add_settings(wiki, demo_wiki.UPLOAD_SETTINGS)
    versions = make_files(wiki, work / "in", big_mb)
    distinct = {hashlib.sha1(data).hexdigest(): len(data) for _, data in versions}
    all_bytes = sum(len(data) for _, data in versions)
    files_log = work / "files.log"
    env = {"DEMO_WIKI_FILE_LOG": str(files_log)}
    rows: list[tuple[str, ...]] = []
    with demo_wiki.WikiServer(wiki, env=env) as server:
        log = server.log_path
        url = server.api_url
        base = ("--quiet", "--max-rps", "0", "--max-rpm", "0")
        seconds, requests, peak, _ = harvester("crawl", url, "--mirror", str(work / "a"), *base,
                                               log=log)
        rows.append(("crawl, pages only", f"{requests:,}", "", "", f"{seconds:.1f}", f"{peak}"))
        shutil.copytree(work / "a", work / "b")
        seconds, requests, peak, _ = harvester("crawl", "--mirror", str(work / "b"), "--files",
                                               *base, log=log)
        sent = file_requests(files_log)
        rows.append(("crawl --files, the files", f"{requests:,}", f"{len(sent):,}",
                     f"{sum(r['sent'] for r in sent):,}", f"{seconds:.1f}", f"{peak}"))
        files_log.unlink()
        shutil.copytree(work / "a", work / "c")
        part = work / "c" / "files" / next(s for s, n in distinct.items() if n > 2**20 * big_mb
                                           // 2)[:2]
        command = [sys.executable, "-m", "harvester", "crawl", "--mirror", str(work / "c"),
                   "--files", *base]
        crawl = subprocess.Popen(command, cwd=ROOT)
        while not any(p.stat().st_size > big_mb * 2**19 for p in part.glob("*.part")
                      if p.exists()) and crawl.poll() is None:
            time.sleep(0.01)
        crawl.send_signal(signal.SIGKILL)
        crawl.wait()
        seconds, requests, peak, _ = harvester("crawl", "--mirror", str(work / "c"), "--files",
                                               *base, log=log)
        sent = file_requests(files_log)
        rows.append(("crawl --files killed, run again", "", f"{len(sent):,}",
                     f"{sum(r['sent'] for r in sent):,}", f"{seconds:.1f}", f"{peak}"))
        for mirror, label in (("a", "sync, nothing to do"), ("b", "sync, nothing to do, files")):
            seconds, requests, peak, _ = harvester("sync", "--mirror", str(work / mirror),
                                                   "--quiet", log=log)
            rows.append((label, f"{requests:,}", "", "", f"{seconds:.2f}", f"{peak}"))
    print(f"{len(versions)} file versions, {len(distinct)} distinct contents: "
          f"{sum(distinct.values()):,} bytes distinct, {all_bytes:,} bytes in all versions; "
          f"the largest {max(distinct.values()):,} bytes")
    header = ("run", "API requests", "file requests", "file bytes sent", "wall s", "peak RSS MB")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
