"""``harvester export``: formats, filters, compression by suffix, the .partial file."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

import jobs.export as export_job
from harvester.config import Settings
from harvester.errors import ConfigError
from jobs.export import run_export, selection_from
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch
from storage.selection import Selection
from tests.ground_truth import parse_dump
from tests.helpers import ROOT, hidden_rev, rev

READERS = {
    "": lambda path: path.read_bytes(),
    ".gz": lambda path: gzip.decompress(path.read_bytes()),
    ".bz2": lambda path: bz2.decompress(path.read_bytes()),
    ".zst": lambda path: zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read(),
    ".xz": lambda path: lzma.decompress(path.read_bytes()),
}


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "mirror"
    with Mirror.open(directory, create=True) as m:
        pages = [PageRecord(1, 0, "Alpha"), PageRecord(2, 1, "Talk:Alpha"),
                 PageRecord(3, 0, "Beta")]
        revisions = [
            rev(10, 1, "2024-01-01T00:00:00Z", "alpha 1 ☃"),
            hidden_rev(11, 1, "2024-01-02T00:00:00Z", parentid=10),
            rev(12, 1, "2024-01-03T00:00:00Z", "alpha 3", parentid=11),
            rev(20, 2, "2024-02-01T00:00:00Z", "talk 1"),
            rev(21, 2, "2024-02-02T00:00:00Z", "talk 2", parentid=20),
            rev(30, 3, "2024-03-01T00:00:00Z", "beta"),
        ]
        m.write_batch(RevisionBatch(pages, revisions), "cp", None, False)
    yield directory


def export(mirror_dir: Path, fmt: str, output: Path | None, **kw: object) -> int:
    settings = Settings(**{"mirror": str(mirror_dir), "quiet": True, **kw})  # type: ignore[arg-type]
    return run_export(settings, fmt, None if output is None else str(output))


def revids(fmt: str, data: bytes, tmp_path: Path) -> list[int]:
    if fmt == "jsonl":
        return [json.loads(line)["revid"] for line in data.decode("utf-8").splitlines()]
    path = tmp_path / "read-back.xml"
    path.write_bytes(data)
    return [record["revid"] for record in parse_dump(path)]


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".zst", ".xz"])
def test_compression_by_suffix(mirror_dir: Path, tmp_path: Path, fmt: str, suffix: str) -> None:
    plain = tmp_path / f"plain.{fmt}"
    assert export(mirror_dir, fmt, plain) == 6
    target = tmp_path / f"out.{fmt}{suffix}"
    assert export(mirror_dir, fmt, target) == 6
    assert READERS[suffix](target) == plain.read_bytes()
    assert not target.with_name(target.name + ".partial").exists()
    assert revids(fmt, plain.read_bytes(), tmp_path) == [10, 11, 12, 20, 21, 30]


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
def test_current_only_and_namespaces(mirror_dir: Path, tmp_path: Path, fmt: str) -> None:
    cases: list[tuple[dict[str, object], list[int]]] = [
        ({"current_only": True}, [12, 21, 30]),
        ({"namespaces": [1]}, [20, 21]),
        ({"namespaces": [0], "current_only": True}, [12, 30]),
    ]
    for options, expected in cases:
        out = tmp_path / f"filtered.{fmt}.zst"
        assert export(mirror_dir, fmt, out, **options) == len(expected)
        assert revids(fmt, READERS[".zst"](out), tmp_path) == expected, options


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
def test_hidden_text_stays_hidden(mirror_dir: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    export(mirror_dir, fmt, out)
    if fmt == "xml":
        assert '<text bytes="7" deleted="deleted" />' in out.read_text(encoding="utf-8")
    else:
        record = json.loads(out.read_text(encoding="utf-8").splitlines()[1])
        assert "text" not in record and "text" in record["hidden"]


def test_a_failed_export_leaves_no_file(mirror_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kw: object) -> int:
        raise OSError("disk full")

    monkeypatch.setitem(export_job.WRITERS, "xml", broken)
    target = tmp_path / "out.xml.gz"
    with pytest.raises(OSError):
        export(mirror_dir, "xml", target)
    assert list(tmp_path.glob("out.xml*")) == []


def test_progress_total_matches_the_filters(mirror_dir: Path) -> None:
    with Mirror.open(mirror_dir, create=False) as m:
        assert m.count_revisions() == 6
        assert m.count_revisions(Selection(current_only=True)) == 3
        assert m.count_revisions(Selection(namespaces=frozenset({1}))) == 2
        assert m.count_revisions(Selection(namespaces=frozenset({0}), current_only=True)) == 2


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
def test_cli_writes_utf8_to_stdout(mirror_dir: Path, tmp_path: Path, fmt: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harvester", "export", "--mirror", str(mirror_dir),
         "--format", fmt, "--namespaces", "0"],
        cwd=ROOT, capture_output=True, timeout=120, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""  # no bar and no summary line when not on a terminal
    assert "alpha 1 ☃".encode() in done.stdout
    assert revids(fmt, done.stdout, tmp_path) == [10, 11, 12, 30]


def test_cli_output_file_and_summary(mirror_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "dump.xml.bz2"
    done = subprocess.run(
        [sys.executable, "-m", "harvester", "export", "--mirror", str(mirror_dir),
         "--format", "xml", "--current-only", "-o", str(target)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "exported 3 revisions" in done.stderr
    assert revids("xml", READERS[".bz2"](target), tmp_path) == [12, 21, 30]


def test_progress_bar_on_a_terminal(mirror_dir: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    export(mirror_dir, "xml", tmp_path / "out.xml", quiet=False)
    assert "6.00/6.00" in stderr.getvalue() and "export xml: 100%" in stderr.getvalue()


def test_cli_reader_closing_the_pipe_early(tmp_path: Path) -> None:
    """`harvester export | head`: no traceback, no error, when head stops reading."""
    directory = tmp_path / "big"
    with Mirror.open(directory, create=True) as m:
        revisions = [rev(n, 1, f"2024-01-01T00:00:{n:02d}Z", f"{n} " + "word " * 4000)
                     for n in range(1, 60)]
        m.write_batch(RevisionBatch([PageRecord(1, 0, "Big")], revisions), "cp", None, False)
    for fmt in ("jsonl", "xml"):
        process = subprocess.Popen(
            [sys.executable, "-m", "harvester", "export", "--mirror", str(directory),
             "--format", fmt], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        assert len(process.stdout.read(1000)) == 1000
        process.stdout.close()
        assert process.wait(timeout=120) == 0
        assert process.stderr.read() == b""
        process.stderr.close()


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
@pytest.mark.parametrize("name", ["out.7z", "out.jsonl.lz4", "out.xml.zip", "out.txt"])
def test_an_unknown_suffix_is_refused(mirror_dir: Path, tmp_path: Path, fmt: str,
                                      name: str) -> None:
    with pytest.raises(ConfigError, match="is not a name for"):
        export(mirror_dir, fmt, tmp_path / name)
    assert list(tmp_path.glob("out*")) == []


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
def test_titles_prefixes_files_and_times(mirror_dir: Path, tmp_path: Path, fmt: str) -> None:
    names = tmp_path / "names.txt"
    names.write_text("Beta\n\nTalk:Alpha\n", encoding="utf-8")
    cases: list[tuple[dict[str, object], list[int]]] = [
        ({"titles": ["alpha"]}, [10, 11, 12]),  # MediaWiki's first-letter case
        ({"titles": ["Talk:*"]}, [20, 21]),
        ({"titles": ["Al*", "Beta"]}, [10, 11, 12, 30]),
        ({"titles": [f"@{names}"]}, [20, 21, 30]),
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-02-02"}, [11, 12, 20]),
        ({"since": "2024-02-01"}, [20, 21, 30]),
        ({"until": "2024-01-03", "current_only": True}, [11]),
        ({"titles": ["Alpha"], "until": "2024-01-02T12:00:00Z", "current_only": True}, [11]),
        ({"since": "2024-02-02", "current_only": True}, [21, 30]),
    ]
    for filters, expected in cases:
        out = tmp_path / f"filtered.{fmt}"
        settings = Settings(mirror=str(mirror_dir), quiet=True,
                            current_only=bool(filters.pop("current_only", False)))
        selection = selection_from(settings, **filters)  # type: ignore[arg-type]
        assert run_export(settings, fmt, str(out), selection) == len(expected), filters
        assert revids(fmt, out.read_bytes(), tmp_path) == expected, filters
        attributed = (tmp_path / f"filtered.{fmt}.attribution.txt").read_text(encoding="utf-8")
        pages = {10: "Alpha", 11: "Alpha", 12: "Alpha", 20: "Talk:Alpha", 21: "Talk:Alpha",
                 30: "Beta"}
        for page in set(pages.values()):
            assert (f"“{page}”" in attributed) == (page in {pages[r] for r in expected}), page


def test_bad_filters_are_usage_errors(mirror_dir: Path, tmp_path: Path) -> None:
    for args, words in [(["--titles", "Gamma"], "no page 'Gamma'"),
                        (["--since", "yesterday"], "--since takes a time"),
                        (["--titles", "@/nonexistent/names"], "cannot read")]:
        done = subprocess.run([sys.executable, "-m", "harvester", "export", "--mirror",
                               str(mirror_dir), "--output", str(tmp_path / "x.jsonl"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        expected_code = 9 if "no page" in words else 2
        assert done.returncode == expected_code and words in done.stderr, done.stderr
        assert not (tmp_path / "x.jsonl").exists()
