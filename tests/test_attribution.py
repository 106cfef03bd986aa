"""Attribution for republishing: authors, URLs, licence, and the file beside exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import jobs.export as export_job
from harvester.cli import main
from harvester.config import Settings
from jobs.export import run_export
from storage import attribution
from storage.attribution import Site, encode_title, load_site, page_attribution
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch
from tests.read_mirror import SITEINFO, rev

GENERAL = {**SITEINFO["general"], "server": "//wiki.example.org", "articlepath": "/wiki/$1",
           "script": "/w/index.php"}  # fmt: skip
LICENCE = {"text": "Creative Commons Attribution-Share Alike 4.0",
           "url": "https://creativecommons.org/licenses/by-sa/4.0/"}  # fmt: skip
ROCK = "Rock 'n' roll"

PAGES = [PageRecord(1, 0, ROCK), PageRecord(2, 0, "Quiet"), PageRecord(3, 1, "Talk:Rock")]
REVISIONS = [
    rev(10, 1, "2024-01-01T00:00:00Z", "a", user="Zoë", userid=3),
    rev(11, 1, "2024-01-02T00:00:00Z", "b", user="Bob Smith", userid=2),
    rev(12, 1, "2024-01-03T00:00:00Z", "c", user="Alice", userid=1),
    rev(13, 1, "2024-01-04T00:00:00Z", "d", user="Alice", userid=1),
    rev(14, 1, "2024-01-05T00:00:00Z", "e", user="192.0.2.1", userid=0),
    rev(15, 1, "2024-01-06T00:00:00Z", "f", user="192.0.2.1", userid=0),
    rev(16, 1, "2024-01-07T00:00:00Z", "g", user="2001:db8::1", userid=0),
    rev(17, 1, "2024-01-08T00:00:00Z", "h", user=None, userid=None, userhidden=True),
    rev(18, 1, "2024-01-09T00:00:00Z", "i", user="Secret", userid=9, userhidden=True),
    rev(19, 1, "2024-01-10T00:00:00Z", "j", user="imported>Ann", userid=0),
    rev(20, 1, "2024-01-11T00:00:00Z", "k", user="FixBot", userid=7),
    rev(30, 2, "2024-02-01T00:00:00Z", "q", user=None, userid=None, userhidden=True),
    rev(40, 3, "2024-03-01T00:00:00Z", "t", user="Carol", userid=4),
]  # fmt: skip


def build(directory: Path, rights: dict[str, str] | None = LICENCE) -> Path:
    with Mirror.open(directory, create=True) as mirror:
        siteinfo: dict[str, Any] = {**SITEINFO, "general": GENERAL}
        if rights is not None:
            siteinfo["rightsinfo"] = rights
        mirror.save_siteinfo(siteinfo)
        mirror.write_batch(RevisionBatch(PAGES, REVISIONS), "test", None, True)
    return directory


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    return build(tmp_path / "mirror")


def test_authors_ordered_by_edits_then_first_edit(mirror_dir: Path) -> None:
    with Mirror.open(mirror_dir, create=False) as mirror:
        found = page_attribution(mirror, load_site(mirror), 1)
    # Alice has two edits; the rest one each, in the order of their first edit.
    assert found.authors == ["Alice", "Zoë", "Bob Smith", "imported>Ann", "FixBot"]
    assert found.anonymous == 2  # distinct addresses, IPv4 and IPv6


def test_hidden_authors_are_never_shown_nor_counted(mirror_dir: Path) -> None:
    with Mirror.open(mirror_dir, create=False) as mirror:
        site = load_site(mirror)
        lines = [attribution.format_text(page_attribution(mirror, site, p), site)
                 for p in (1, 2)]  # fmt: skip
    assert "Secret" not in "".join(lines)
    assert "hidden" not in "".join(lines)
    assert lines[1].startswith("\u201cQuiet\u201d (contributors: see the page history).")


def test_bots_left_out_on_request(mirror_dir: Path) -> None:
    with Mirror.open(mirror_dir, create=False) as mirror:
        # no recorded bot group: the naming convention decides
        found = page_attribution(mirror, load_site(mirror), 1, exclude_bots=True)
        assert "FixBot" not in found.authors and "Alice" in found.authors
        # the wiki's bot group, as a crawl records it, decides over the name
        mirror.set_meta("bot_users", json.dumps(["Alice"]))
        found = page_attribution(mirror, load_site(mirror), 1, exclude_bots=True)
        assert "FixBot" in found.authors and "Alice" not in found.authors


def test_urls_protocol_relative_server_and_odd_titles() -> None:
    site = Site(server="https://wiki.example.org")
    assert site.page_url(ROCK) == "https://wiki.example.org/wiki/Rock_%27n%27_roll"
    assert (site.history_url("C++ & Ü?") ==
            "https://wiki.example.org/w/index.php?title=C%2B%2B_%26_%C3%9C%3F&action=history")
    assert encode_title("Talk:A/b (c), d!") == "Talk:A/b_(c),_d!"
    assert Site(server=None).page_url("X") is None


def test_text_line(mirror_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attribution", "rock_'n'_roll", "--mirror", str(mirror_dir)]) == 0
    out, err = capsys.readouterr()
    assert out == (
        "\u201cRock 'n' roll\u201d by Alice, Zoë, Bob Smith, imported>Ann, FixBot and 2 anonymous"
        " contributors. Source: https://wiki.example.org/wiki/Rock_%27n%27_roll (history:"
        " https://wiki.example.org/w/index.php?title=Rock_%27n%27_roll&action=history)."
        " Licence: Creative Commons Attribution-Share Alike 4.0"
        " (https://creativecommons.org/licenses/by-sa/4.0/).\n"
    )
    assert err == ""


def test_json_and_html(mirror_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attribution", "--all", "--format", "json", "--mirror", str(mirror_dir)]) == 0
    pages = json.loads(capsys.readouterr().out)
    assert [p["title"] for p in pages] == [ROCK, "Quiet", "Talk:Rock"]
    assert pages[0]["licence"] == {"name": LICENCE["text"], "url": LICENCE["url"]}
    assert pages[0]["warning"] is None and pages[2]["authors"] == ["Carol"]
    assert main(["attribution", ROCK, "--format", "html", "--mirror", str(mirror_dir)]) == 0
    fragment = capsys.readouterr().out
    assert '<a href="https://wiki.example.org/wiki/Rock_%27n%27_roll">Rock &#x27;n&#x27; roll' \
        in fragment
    assert f'<a href="{LICENCE["url"]}">' in fragment


def test_unknown_licence_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = build(tmp_path / "m", rights={"text": "", "url": ""})
    assert main(["attribution", "Quiet", "--mirror", str(directory)]) == 0
    out, err = capsys.readouterr()
    assert "Licence: unknown" in out and "terms for reusing its content are unknown" in err
    assert main(["attribution", "Quiet", "--format", "json", "--mirror", str(directory)]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["licence"] is None and "unknown" in record["warning"]


def test_usage_errors(mirror_dir: Path) -> None:
    assert main(["attribution", "--mirror", str(mirror_dir)]) == 2
    assert main(["attribution", "No such page", "--mirror", str(mirror_dir)]) != 0


@pytest.mark.parametrize("suffix", ["jsonl", "xml.gz"])
def test_export_writes_matching_attribution(mirror_dir: Path, tmp_path: Path,
                                            suffix: str) -> None:  # fmt: skip
    output = tmp_path / f"out.{suffix}"
    fmt = suffix.split(".")[0]
    settings = Settings(mirror=str(mirror_dir), quiet=True, namespaces=[0], current_only=True)
    run_export(settings, fmt, str(output))
    notes = (tmp_path / f"out.{suffix}.attribution.txt").read_text(encoding="utf-8")
    header, body = notes.split("\n\n", 1)
    assert f"Licence: {LICENCE['text']} ({LICENCE['url']})" in header
    assert [line.split("\u201d")[0] for line in body.splitlines()] == ["\u201cRock 'n' roll",
                                                                       "\u201cQuiet"]
    assert not list(tmp_path.glob("*.partial"))


def test_export_unknown_licence_and_stdout(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    directory = build(tmp_path / "m", rights=None)
    output = tmp_path / "out.jsonl"
    assert main(["export", "--mirror", str(directory), "-o", str(output), "-q"]) == 0
    notes = Path(f"{output}.attribution.txt").read_text(encoding="utf-8")
    assert "Licence: unknown" in notes and "WARNING:" in notes
    # To standard output: no file; a note only on a terminal, like the progress bar.
    assert main(["export", "--mirror", str(directory)]) == 0
    assert capsys.readouterr().err == ""
    with export_job._attribution_output("-", quiet=False) as notes:
        assert notes is None
    assert "no attribution file written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "out.jsonl",
                                                          "out.jsonl.attribution.txt"]


def test_failed_export_leaves_no_attribution(mirror_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setitem(export_job.WRITERS, "jsonl", broken)
    with pytest.raises(RuntimeError):
        run_export(Settings(mirror=str(mirror_dir), quiet=True), "jsonl", str(tmp_path / "o"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror"]
