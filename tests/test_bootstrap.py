"""`harvester bootstrap`: the latest dump from a dumps site, imported, then synced to now.

The dumps site (tests/dumpsite.py) serves the fixture wiki's own `dumpBackup.php
--full`, split in two bz2 files, beside the fixture wiki itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harvester.dumps import parse_files
from harvester.errors import RemoteError
from tests.dumpsite import DumpSite, split_dump
from tests.helpers import ROOT, assert_matches_dump, export_records

CONTACT = "tests@example.org"


def bootstrap_command(api: str, mirror: Path, site: DumpSite, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harvester", "bootstrap", api, "--mirror", str(mirror),
            "--dumps-url", site.url, "--contact", CONTACT, "--max-rps", "0", "--max-rpm", "0",
            *extra]


def bootstrap(api: str, mirror: Path, site: DumpSite, *extra: str) -> subprocess.CompletedProcess[
        str]:
    return subprocess.run(bootstrap_command(api, mirror, site, *extra), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.mediawiki
def test_a_dump_split_in_two_keeps_every_page(fixture_dump_text: bytes) -> None:
    parts = split_dump(fixture_dump_text, 2)
    assert len(parts) == 2
    pages = [part.count(b"<page>") for part in parts]
    assert sum(pages) == fixture_dump_text.count(b"<page>") and min(pages) > 0
    assert all(part.rstrip().endswith(b"</mediawiki>") for part in parts)


@pytest.fixture
def fixture_dump_text(fixture_dump: Path) -> bytes:
    return fixture_dump.read_bytes()


def test_dumpstatus_names_that_are_paths_are_refused() -> None:
    good = {"size": 3, "sha1": "a" * 40}
    assert parse_files({"x.bz2": good}, "w") == [("x.bz2", 3, "a" * 40)]
    for name in ("../x.bz2", "a/b.bz2", ".hidden"):
        with pytest.raises(RemoteError, match="not a plain file name"):
            parse_files({name: good}, "w")
    with pytest.raises(RemoteError, match="no size or sha1"):
        parse_files({"x.bz2": {"size": 3}}, "w")


@pytest.mark.mediawiki
def test_bootstrap_equals_the_dump_then_the_same_command_syncs(
    wiki_server: Any, changer: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    with DumpSite.from_dump(fixture_dump) as site:
        done = bootstrap(wiki_server.api_url, mirror, site)
        assert done.returncode == 0, done.stderr
        assert f"dump {site.dbname} {site.date} (metahistorybz2dump): 2 files" in done.stdout
        assert_matches_dump(mirror, fixture_dump)
        # each file once, whole; then the dumps leave the mirror's directory
        assert sorted(s.name for s in site.log) == sorted(site.files)
        assert all(s.sent == len(site.files[s.name]) for s in site.log)
        assert [p.name for p in (mirror / "dumps").iterdir()] == ["dump.json"]
        # the wiki moves on; the same command (everything imported) syncs the change
        changer.create("After the dump", "Written after the dump was made.")
        again = bootstrap(wiki_server.api_url, mirror, site)
        assert again.returncode == 0, again.stderr
        assert len(site.log) == 2  # nothing downloaded again
    titles = {r["title"] for r in export_records(mirror)}
    assert "After the dump" in titles


@pytest.mark.mediawiki
def test_killed_in_a_download_the_same_command_resumes_it(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    with DumpSite.from_dump(fixture_dump) as site:
        site.rate = 256 * 1024  # slow enough to be caught in the middle
        child = subprocess.Popen(bootstrap_command(shared_server.api_url, mirror, site),
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        parts = mirror / "dumps"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until bytes of a file are on disk
                received = [p.stat().st_size for p in parts.glob("*.part")] if \
                    parts.is_dir() else []
                if any(size > 64 * 1024 for size in received):
                    break
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
        kept = {p.name.removesuffix(".part"): p.stat().st_size for p in parts.glob("*.part")}
        assert kept and all(0 < size < len(site.files[name]) for name, size in kept.items())
        first_run = len(site.log)
        site.rate = None
        done = bootstrap(shared_server.api_url, mirror, site)
        assert done.returncode == 0, done.stderr
        resumed = site.log[first_run:]
        for name, size in kept.items():
            (request,) = [s for s in resumed if s.name == name]
            assert (request.start, request.status) == (size, 206)  # from where it stopped
            assert request.sent == len(site.files[name]) - size  # finished bytes not again
    assert_matches_dump(mirror, fixture_dump)


@pytest.mark.mediawiki
def test_a_damaged_download_is_caught_by_its_sha1_and_fetched_again(
    shared_server: Any, fixture_dump: Path, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    with DumpSite.from_dump(fixture_dump) as site:
        damaged = sorted(site.files)[1]
        site.corrupt_once.add(damaged)
        done = bootstrap(shared_server.api_url, mirror, site)
        assert done.returncode == 0, done.stderr
        assert "SHA-1" in done.stderr and damaged in done.stderr  # a warning, then again
        assert [(s.start, s.sent) for s in site.file_requests(damaged)] == [
            (0, len(site.files[damaged]))] * 2
    assert_matches_dump(mirror, fixture_dump)


@pytest.mark.mediawiki
def test_a_wiki_without_known_dumps_needs_the_dumps_url(shared_server: Any,
                                                         tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harvester", "bootstrap", shared_server.api_url,
         "--mirror", str(tmp_path / "m")], cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 2 and "--dumps-url" in done.stderr, done.stderr
