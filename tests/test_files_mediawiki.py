"""``crawl --files`` against a real MediaWiki with uploads: the mirror's files equal
the wiki's own file store, version by version, and nothing hidden or deleted is
copied; a download killed half-way resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import demo_wiki
import pytest
import wiki_changes

from harvester.config import Settings
from jobs.crawl import run_crawl
from jobs.sync import run_sync
from tests.helpers import ROOT, file_states, held

pytestmark = pytest.mark.mediawiki


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@dataclass
class Uploads:
    """What the test put on the wiki: the bytes by label, for the checks."""

    data: dict[str, bytes]
    hidden: list[str]  # labels whose only copies are hidden or deleted on the wiki

    def by_sha1(self) -> dict[str, bytes]:
        return {sha1(data): data for data in self.data.values()}


def write_files(directory: Path, files_by_name: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True)
    for name, data in files_by_name.items():
        (directory / name).write_bytes(data)
    return directory


def upload_history(wiki: demo_wiki.Wiki, changer: Any, work: Path) -> Uploads:
    """Files with several versions, by importImages.php and over the API; then an old
    version hidden, one deleted, a revert and a whole file deleted."""
    wiki_changes.add_settings(wiki, demo_wiki.UPLOAD_SETTINGS)
    data = {label: demo_wiki.png_image(20 + len(label), 10, label)
            for label in ("alpha1", "alpha2", "alpha3", "beta1", "beta2", "gamma1", "live1",
                          "live2")}
    data["notes"] = b"Notes, in plain text.\n"
    rounds = [
        {"Alpha.png": data["alpha1"], "Beta.png": data["beta1"], "Gamma.png": data["gamma1"],
         "Same_as_beta.png": data["beta1"], "Notes.txt": data["notes"]},
        {"Alpha.png": data["alpha2"], "Beta.png": data["beta2"]},
        {"Alpha.png": data["alpha3"]},
    ]
    for number, files_by_name in enumerate(rounds):
        if number:
            demo_wiki.next_second()  # one new version of a file a second
        demo_wiki.import_images(wiki, write_files(work / f"round{number}", files_by_name),
                                user="Admin", summary=f"round {number}",
                                timestamp=f"2024010{number + 1}000000", overwrite=number > 0)
    changer.upload("Live.png", data["live1"], "live 1")
    demo_wiki.next_second()
    changer.upload("Live.png", data["live2"], "live 2")
    demo_wiki.next_second()
    archived = {v.get("sha1"): v.get("archivename") for v in changer.file_versions("Live.png")}
    changer.revert_file("Live.png", archived[sha1(data["live1"])])
    alpha = {v.get("sha1"): v.get("archivename") for v in changer.file_versions("Alpha.png")}
    changer.hide_file_version("Alpha.png", alpha[sha1(data["alpha2"])])
    beta = {v.get("sha1"): v.get("archivename") for v in changer.file_versions("Beta.png")}
    changer.delete_file_version("Beta.png", beta[sha1(data["beta1"])])  # Same_as_beta keeps it
    changer.delete("File:Gamma.png")
    return Uploads(data, hidden=["alpha2", "gamma1"])


def settings(api: str, mirror: Path, **extra: Any) -> Settings:
    return Settings(api=api, mirror=str(mirror), quiet=True, max_requests_per_second=0,
                    max_requests_per_minute=0, files=True, **extra)


def assert_files_equal(mirror_dir: Path, wiki: demo_wiki.Wiki, known: dict[str, bytes]) -> None:
    """Every version the wiki has (image, oldimage) is in the mirror: stored with its
    SHA-1, or hidden if its file is; a version of the file archive is at most recorded
    as deleted; the bytes held are exactly the visible versions'; no hidden or deleted
    bytes (of those in ``known``, by SHA-1) anywhere in DIR."""
    truth = demo_wiki.wiki_file_versions(wiki)
    expected = {(v["name"], v["timestamp"]): ("hidden", None) if v["deleted"] & 1
                else ("stored", v["sha1"]) for v in truth if v["table"] != "filearchive"}
    got = file_states(mirror_dir)
    assert {k: v for k, v in got.items() if v[0] != "deleted"} == expected
    archived = {(v["name"], v["timestamp"]) for v in truth if v["table"] == "filearchive"}
    assert {k for k, v in got.items() if v[0] == "deleted"} <= archived
    visible = {s for state, s in expected.values() if state == "stored"}
    assert held(mirror_dir) == visible
    secrets = [known[v["sha1"]] for v in truth if v["sha1"] not in visible and v["sha1"] in known]
    for path in mirror_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(secret in content for secret in secrets), path


async def test_crawl_files_equals_the_wikis_file_store(
        wiki_server: demo_wiki.WikiServer, changer: Any, tmp_path: Path) -> None:
    uploads = upload_history(wiki_server.wiki, changer, tmp_path / "uploads")
    truth = demo_wiki.wiki_file_versions(wiki_server.wiki)
    # the history has every case: old, hidden, archived, reverted, a file deleted whole
    assert {v["table"] for v in truth} == {"image", "oldimage", "filearchive"}
    assert any(v["deleted"] & 1 for v in truth)
    mirror = tmp_path / "mirror"
    summary = await run_crawl(settings(wiki_server.api_url, mirror))
    assert summary.files is not None
    assert_files_equal(mirror, wiki_server.wiki, uploads.by_sha1())
    assert {sha1(uploads.data[label]) for label in uploads.hidden}.isdisjoint(held(mirror))
    stored = {s for state, s in file_states(mirror).values() if state == "stored"}
    # every distinct content fetched once, whatever the versions and names that share it
    assert summary.files.fetched == len(stored)
    sizes = {v["sha1"]: v["size"] for v in truth if v["sha1"] in stored}
    assert summary.files.tally.received == sum(sizes.values())
    again = await run_crawl(settings(wiki_server.api_url, mirror))
    assert again.files is not None and again.files.tally.received == 0


def test_a_download_killed_half_way_resumes_from_its_bytes_on_disk(
        fixture_wiki: demo_wiki.Wiki, tmp_path: Path) -> None:
    wiki = demo_wiki.copy_wiki(fixture_wiki, tmp_path / "wiki", demo_wiki.free_port())
    wiki_changes.add_settings(wiki, demo_wiki.UPLOAD_SETTINGS)
    big = demo_wiki.png_image(1600, 1600, "big", noise=True)  # 7.7 MB
    demo_wiki.import_images(wiki, write_files(tmp_path / "in", {"Big.png": big}),
                            user="Admin", summary="big")
    log = tmp_path / "files.log"
    env = {"DEMO_WIKI_FILE_RATE": str(2 << 20), "DEMO_WIKI_FILE_LOG": str(log)}
    mirror = tmp_path / "mirror"
    part = mirror / "files" / sha1(big)[:2] / (sha1(big) + ".part")
    command = [sys.executable, "-m", "harvester", "crawl", "--mirror", str(mirror), "--files",
               "--quiet", "--max-rps", "0"]
    with demo_wiki.WikiServer(wiki, env=env) as server:
        crawl = subprocess.Popen([*command, server.api_url], cwd=ROOT)
        try:
            wait_for(lambda: part.is_file() and part.stat().st_size > 1 << 20, crawl)
        finally:
            crawl.send_signal(signal.SIGKILL)
            crawl.wait()
        on_disk = part.stat().st_size
        assert 0 < on_disk < len(big)
        done = subprocess.run(command, cwd=ROOT, timeout=120)
        assert done.returncode == 0
        wait_for(lambda: len(log.read_text().splitlines()) >= 2, None)
    first, second = [json.loads(line) for line in log.read_text().splitlines()][-2:]
    assert first["start"] == 0 and first["sent"] >= on_disk  # killed while sending
    assert (second["start"], second["sent"]) == (on_disk, len(big) - on_disk)
    assert held(mirror) == {sha1(big)}
    assert not part.exists()


def wait_for(condition: Any, process: subprocess.Popen[bytes] | None,
             timeout: float = 60.0) -> None:
    """Poll ``condition`` (a file growing, a line logged) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the crawl ended (exit {process.returncode}) too early")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_reading_files_attribution_export_and_python_api(
        wiki_server: demo_wiki.WikiServer, changer: Any, tmp_path: Path) -> None:
    import harvester

    uploads = upload_history(wiki_server.wiki, changer, tmp_path / "uploads")
    changer.edit("File:Alpha.png", "A picture.\n{{cc-by-sa-4.0}}\n[[Category:GFDL]]", "licence")
    wiki_changes.add_settings(wiki_server.wiki, '$wgRightsText = "Wiki Licence 1.0";')
    mirror = tmp_path / "mirror"
    harvester_cli = [sys.executable, "-m", "harvester"]

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*harvester_cli, *args, "--mirror", str(mirror)],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == code, done.stderr
        return done

    run("crawl", wiki_server.api_url, "--files", "--quiet", "--max-rps", "0")
    out = tmp_path / "alpha.png"
    for at, label in (("2024-01-01T12:00:00Z", "alpha1"), (None, "alpha3")):
        run("file", "File:Alpha.png", "--output", str(out), *(["--at", at] if at else []))
        assert out.read_bytes() == uploads.data[label]
    hidden = run("file", "Alpha.png", "--at", "2024-01-02T12:00:00Z", "-o", str(out), code=9)
    assert "hidden" in hidden.stderr
    rows = {row["name"]: row for row in json.loads(run("files", "--json").stdout)}
    assert set(rows) == {"Alpha.png", "Beta.png", "Same_as_beta.png", "Notes.txt", "Live.png"}
    assert (rows["Alpha.png"]["versions"], rows["Live.png"]["versions"]) == (3, 3)
    assert rows["Notes.txt"]["mime"] == "text/plain"
    line = next(line for line in run("stats").stdout.splitlines() if line.startswith("files "))
    assert "5 files, 9 versions" in line, line
    synced = json.loads(run("sync", "--json").stdout)  # nothing to do, as one JSON object
    assert synced["mode"] == "recentchanges" and synced["files"]["fetched"] == 0

    # attribution: the description page's licence templates, else the wiki's with a warning
    credit = run("attribution", "File:Alpha.png", "File:Beta.png", "--format", "json")
    alpha, beta = json.loads(credit.stdout)
    assert alpha["licence"] == {"name": "cc-by-sa-4.0, GFDL", "url": None,
                                "source": "the description page"}
    assert alpha["uploaders"] == ["Admin"] and "Admin" in alpha["authors"]
    assert beta["licence"]["name"] == "Wiki Licence 1.0" and beta["warning"]
    text = run("attribution", "File:Beta.png")
    assert "Wiki Licence 1.0" in text.stdout and "File:Beta.png" in text.stderr

    # export --format files: the current versions, an index, the attribution
    exported = tmp_path / "files-export"
    run("export", "--format", "files", "--output", str(exported), "--quiet")
    index = [json.loads(x) for x in (exported / "index.jsonl").read_text().splitlines()]
    assert [entry["name"] for entry in index] == sorted(rows)
    assert (exported / "Alpha.png").read_bytes() == uploads.data["alpha3"]
    assert index[0]["licence"]["name"] == "cc-by-sa-4.0, GFDL"
    for entry in index:
        assert sha1((exported / entry["path"]).read_bytes()) == entry["sha1"]
    assert len((exported / "attribution.txt").read_text().splitlines()) == 2 + len(index)

    # the same through the Python API
    with harvester.open_mirror(mirror) as m:
        assert m.file_bytes("Alpha.png", at="2024-01-01T12:00:00Z") == uploads.data["alpha1"]
        assert m.file_path("File:Live.png").read_bytes() == uploads.data["live1"]
        assert [v["state"] for v in m.file_versions("Alpha.png")] == [
            "stored", "hidden", "stored"]
        assert sorted(f["name"] for f in m.files()) == sorted(rows)


async def test_sync_follows_every_kind_of_file_change(
        wiki_server: demo_wiki.WikiServer, changer: Any, tmp_path: Path) -> None:
    wiki = wiki_server.wiki
    uploads = upload_history(wiki, changer, tmp_path / "uploads")
    mirror = tmp_path / "mirror"
    await run_crawl(settings(wiki_server.api_url, mirror))
    known = uploads.by_sha1()

    def new_bytes(label: str) -> bytes:
        data = demo_wiki.png_image(30 + len(known) % 50, 12, label)
        known[sha1(data)] = data
        return data

    def archived(name: str, label: str) -> str:
        by_sha1 = {v.get("sha1"): v.get("archivename") for v in changer.file_versions(name)}
        return str(by_sha1[sha1(uploads.data.get(label) or labelled[label])])

    labelled: dict[str, bytes] = {}
    steps: list[tuple[str, Any]] = [
        ("a live upload", lambda: changer.upload("New.png", labelled.setdefault(
            "new1", new_bytes("new1")), "new 1")),
        ("a new version", lambda: changer.upload("New.png", labelled.setdefault(
            "new2", new_bytes("new2")), "new 2")),
        ("a revert", lambda: changer.revert_file("New.png", archived("New.png", "new1"))),
        ("an old version hidden", lambda: changer.hide_file_version(
            "Alpha.png", archived("Alpha.png", "alpha1"))),
        ("an old version deleted", lambda: changer.delete_file_version(
            "Live.png", archived("Live.png", "live2"))),
        ("a move", lambda: changer.move("File:Notes.txt", "File:Moved notes.txt",
                                        leave_redirect=False)),
        ("a file deleted", lambda: changer.delete("File:Same as beta.png")),
        ("a file undeleted", lambda: changer.undelete("File:Same as beta.png")),
        ("an import", lambda: demo_wiki.import_images(
            wiki, write_files(tmp_path / "import", {"Imported.png": new_bytes("imported")}),
            user="Admin", summary="imported")),
    ]
    for label, change in steps:
        demo_wiki.next_second()  # one new version of a file a second
        change()
        summary = await run_sync(Settings(mirror=str(mirror), quiet=True,
                                          max_requests_per_second=0,
                                          max_requests_per_minute=0))
        assert summary.files is not None, label
        try:
            assert_files_equal(mirror, wiki, known)
        except AssertionError as exc:
            raise AssertionError(f"after {label}: {exc}") from exc
        if label == "a file deleted":  # recorded as such, its bytes gone
            assert {state for (name, _), (state, _) in file_states(mirror).items()
                    if name == "Same_as_beta.png"} == {"deleted"}
    # the move kept its bytes: nothing fetched again for it
    assert "Moved_notes.txt" in {name for name, _ in file_states(mirror)}


async def test_xml_with_uploads_is_taken_back_by_importdump(
        wiki_server: demo_wiki.WikiServer, changer: Any, tmp_path: Path) -> None:
    """export --format xml --uploads, read by MediaWiki's importDump.php --uploads into a
    new wiki: every visible version comes back with its time and bytes. (MediaWiki
    leaves out the hidden one, which has no bytes, as it does from its own dumps.)"""
    upload_history(wiki_server.wiki, changer, tmp_path / "uploads")
    mirror = tmp_path / "mirror"
    await run_crawl(settings(wiki_server.api_url, mirror))
    xml = tmp_path / "export.xml"
    done = subprocess.run([sys.executable, "-m", "harvester", "export", "--mirror", str(mirror),
                           "--format", "xml", "--uploads", "--output", str(xml), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    attribution = Path(f"{xml}.attribution.txt").read_text()
    assert "\u201cFile:Alpha.png\u201d" in attribution and "uploaded by Admin" in attribution
    fresh = demo_wiki.create_wiki(tmp_path / "fresh", demo_wiki.free_port(),
                                  extra_settings=demo_wiki.UPLOAD_SETTINGS)
    demo_wiki.import_xml(fresh, xml, refresh_links=False, uploads=True)

    def visible(wiki: demo_wiki.Wiki) -> set[tuple[str, str, str]]:
        return {(v["name"], v["timestamp"], v["sha1"]) for v in demo_wiki.wiki_file_versions(wiki)
                if v["table"] != "filearchive" and not v["deleted"] & 1}

    assert visible(fresh) == visible(wiki_server.wiki)
    assert len(visible(fresh)) == 8
