"""Tests of the real-MediaWiki harness: ground-truth parsing, fixture, servers."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import demo_wiki
import fixture_xml
import httpx
import pytest

from tests.ground_truth import base36_to_hex, load_dump, parse_dump
from tests.helpers import ROOT

# ---------------------------------------------------------------- base 36


def test_base36_of_empty_text_matches_mediawiki() -> None:
    # MediaWiki's stored sha1 of the empty string.
    assert base36_to_hex("phoiac9h4m842xq45sp7s6u21eteeq1") == hashlib.sha1(b"").hexdigest()


def test_base36_pads_to_40_hex_digits() -> None:
    assert base36_to_hex("1") == "0" * 39 + "1"
    assert base36_to_hex("0") == "0" * 40


def test_base36_rejects_values_beyond_sha1() -> None:
    with pytest.raises(ValueError):
        base36_to_hex("z" * 32)


def test_generator_base36_round_trips() -> None:
    for text in ("", "Hello", "Ελληνική γλώσσα\n"):
        expected = hashlib.sha1(text.encode()).hexdigest()
        assert base36_to_hex(fixture_xml.sha1_base36(text)) == expected


# ---------------------------------------------------------------- parse_dump

TINY_DUMP = """\
<mediawiki xmlns="http://www.mediawiki.org/xml/export-{version}/" version="{version}">
  <siteinfo><sitename>T</sitename></siteinfo>
  <page>
    <title>Café &amp; co</title>
    <ns>0</ns>
    <id>7</id>
    <revision>
      <id>10</id>
      <timestamp>2020-01-02T03:04:05Z</timestamp>
      <contributor><username>Zoë</username><id>3</id></contributor>
      <comment>first</comment>
      <model>wikitext</model>
      <format>text/x-wiki</format>
      <text bytes="6" sha1="{hello}" xml:space="preserve">Hellö</text>
      <sha1>{hello}</sha1>
    </revision>
    <revision>
      <id>11</id>
      <parentid>10</parentid>
      <timestamp>2020-01-03T03:04:05Z</timestamp>
      <contributor><ip>192.0.2.1</ip></contributor>
      <minor/>
      <model>wikitext</model>
      <format>text/x-wiki</format>
      <text bytes="0" sha1="{empty}" />
      <sha1>{empty}</sha1>
    </revision>
  </page>
  <page>
    <title>Talk:X</title>
    <ns>1</ns>
    <id>8</id>
    <revision>
      <id>12</id>
      <timestamp>2021-01-01T00:00:00Z</timestamp>
      <contributor deleted="deleted" />
      <comment deleted="deleted" />
      <model>wikitext</model>
      <format>text/x-wiki</format>
      <text bytes="42" sha1="{hello}" deleted="deleted" />
      <sha1/>
    </revision>
  </page>
</mediawiki>
"""


@pytest.fixture(params=["0.10", "0.11"])
def tiny_dump(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.xml"
    hello = fixture_xml.sha1_base36("Hellö")
    empty = fixture_xml.sha1_base36("")
    path.write_text(
        TINY_DUMP.format(version=request.param, hello=hello, empty=empty), encoding="utf-8"
    )
    return path


def test_parse_dump_registered_revision(tiny_dump: Path) -> None:
    first = next(parse_dump(tiny_dump))
    assert first == {
        "pageid": 7,
        "ns": 0,
        "title": "Café & co",
        "revid": 10,
        "parentid": 0,
        "timestamp": "2020-01-02T03:04:05Z",
        "user": "Zoë",
        "userid": 3,
        "comment": "first",
        "minor": False,
        "sha1": hashlib.sha1("Hellö".encode()).hexdigest(),
        "text": "Hellö",
        "model": "wikitext",
        "format": "text/x-wiki",
        "size": 6,
    }
    assert list(first) == [
        "pageid",
        "ns",
        "title",
        "revid",
        "parentid",
        "timestamp",
        "user",
        "userid",
        "comment",
        "minor",
        "sha1",
        "text",
        "model",
        "format",
        "size",
    ]


def test_parse_dump_ip_minor_empty(tiny_dump: Path) -> None:
    second = list(parse_dump(tiny_dump))[1]
    assert second["user"] == "192.0.2.1"
    assert second["userid"] == 0
    assert second["parentid"] == 10
    assert second["minor"] is True
    assert second["comment"] == ""
    assert second["text"] == ""
    assert second["size"] == 0
    assert second["sha1"] == hashlib.sha1(b"").hexdigest()
    assert "hidden" not in second


def test_parse_dump_hidden_fields(tiny_dump: Path) -> None:
    third = load_dump(tiny_dump)[12]
    assert third["hidden"] == ["user", "comment", "text", "sha1"]
    for key in ("user", "userid", "comment", "text", "sha1"):
        assert key not in third
    assert third["size"] == 42
    assert (third["pageid"], third["ns"], third["title"]) == (8, 1, "Talk:X")


# ---------------------------------------------------------------- generator


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, fixture_xml.FixtureStats]:
    path = tmp_path_factory.mktemp("gen") / "fixture.xml"
    return path, fixture_xml.generate_fixture_xml(path, seed=1)


def test_generator_is_deterministic(
    generated: tuple[Path, fixture_xml.FixtureStats], tmp_path: Path
) -> None:
    path, stats = generated
    again = fixture_xml.generate_fixture_xml(tmp_path / "again.xml", seed=1)
    assert again == stats
    assert (tmp_path / "again.xml").read_bytes() == path.read_bytes()


def test_generator_history_shape(generated: tuple[Path, fixture_xml.FixtureStats]) -> None:
    path, stats = generated
    records = list(parse_dump(path))
    assert len(records) == stats.revisions
    assert 2_500 <= stats.revisions <= 3_500
    assert len({r["pageid"] for r in records}) == stats.pages
    for record in records:
        texts = {"main": record["text"],
                 **{role: slot["text"] for role, slot in record.get("slots", {}).items()}}
        assert record["sha1"] == base36_to_hex(fixture_xml.revision_sha1_base36(texts))
        assert record["size"] == sum(len(text.encode()) for text in texts.values())
    assert sum("slots" in r for r in records) == 4  # the page with a second slot
    assert max(r["size"] for r in records) >= 25_000
    # importDump.php skips a revision whose page, timestamp and sha1 repeat.
    assert len({(r["pageid"], r["timestamp"]) for r in records}) == len(records)
    _assert_realistic(records)


def _assert_realistic(records: list[dict[str, Any]]) -> None:
    """Properties both the generated XML and the wiki's own dump must have."""
    by_page: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_page[record["pageid"]].append(record)
    assert {0, 1, 2, 4, 10, 14} <= {r["ns"] for r in records}
    assert max(len(revs) for revs in by_page.values()) >= 500
    assert any(r.get("text", "").startswith("#REDIRECT [[") for r in records)
    assert any(r.get("user", "").count(".") == 3 for r in records), "IPv4 editors"
    assert any(":" in r.get("user", "") and r["userid"] == 0 for r in records), "IPv6"
    assert any(r["minor"] for r in records)
    assert any(r.get("comment") == "" for r in records)
    assert any(len(r.get("comment", "")) > 200 for r in records)
    reverts = sum(len(revs) - len({r.get("sha1") for r in revs}) for revs in by_page.values())
    assert reverts >= 20
    for revs in by_page.values():
        # Live edits may share a second; the generator's never do (see below).
        stamps = [r["timestamp"] for r in revs]
        assert stamps == sorted(stamps)


# ---------------------------------------------------------------- command line


def test_cli_rejects_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo_wiki.main(["start", "--port", "http"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a TCP port" in err


def test_cli_stop_without_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_wiki.main(["stop", "--dir", str(tmp_path)]) == 1
    assert "no demo wiki server is running" in capsys.readouterr().err


# ---------------------------------------------------------------- real MediaWiki


@pytest.mark.mediawiki
def test_fixture_dump_matches_the_build(
    fixture_dump: Path, fixture_manifest: dict[str, Any]
) -> None:
    records = list(parse_dump(fixture_dump))
    live = len(fixture_manifest["live_revids"])
    # Main Page from install.php, the imported history, the live edits.
    assert len(records) == 1 + fixture_manifest["imported_revisions"] + live
    # Two of the live edits create pages.
    assert len({r["pageid"] for r in records}) == 1 + fixture_manifest["imported_pages"] + 2
    _assert_realistic(records)
    users = Counter((r.get("user"), r.get("userid", 0) > 0) for r in records)
    for name in fixture_manifest["local_users"] + fixture_manifest["live_users"]:
        assert users[(name, True)] > 0, f"{name} should be a local account"
    for name in fixture_manifest["external_users"]:
        assert users[(name, False)] > 0, f"{name} should be imported with user id 0"
    assert users[("127.0.0.1", False)] > 0, "anonymous live edits"


@pytest.mark.mediawiki
def test_fixture_dump_hidden_revisions(
    fixture_dump: Path, fixture_manifest: dict[str, Any]
) -> None:
    records = load_dump(fixture_dump)
    hidden = {int(revid): fields for revid, fields in fixture_manifest["hidden"].items()}
    assert len(hidden) == 5
    assert set(fixture_manifest["suppressed"]) <= set(hidden)
    for revid, fields in hidden.items():
        assert records[revid]["hidden"] == fields
        for key in fields:
            assert key not in records[revid]
    others = [r for revid, r in records.items() if revid not in hidden and "hidden" in r]
    assert others == []


@pytest.mark.mediawiki
def test_shared_server_serves_the_dumped_history(
    shared_server: demo_wiki.WikiServer, fixture_dump: Path, bot_password: tuple[str, str]
) -> None:
    title = "Café society"
    expected = [r for r in parse_dump(fixture_dump) if r["title"] == title]
    with demo_wiki.Api(shared_server.api_url) as api:
        api.login(*bot_password)
        data = api.call(
            action="query",
            prop="revisions",
            titles=title,
            rvlimit="max",
            rvdir="newer",
            rvprop="ids|sha1|user|userid|size|timestamp",
        )
    revisions = data["query"]["pages"][0]["revisions"]
    assert [r["revid"] for r in revisions] == [r["revid"] for r in expected]
    for api_rev, dumped in zip(revisions, expected, strict=True):
        assert api_rev["timestamp"] == dumped["timestamp"]
        assert api_rev["size"] == dumped["size"]
        if "sha1" in dumped:
            assert api_rev["sha1"] == dumped["sha1"]
        else:
            assert api_rev.get("sha1hidden") is True


@pytest.mark.mediawiki
def test_wiki_server_copies_are_isolated(
    wiki_server: demo_wiki.WikiServer, shared_server: demo_wiki.WikiServer
) -> None:
    assert wiki_server.url != shared_server.url
    with demo_wiki.Api(wiki_server.api_url) as api:
        api.edit("Only in this copy", "test", text="Scratch.\n", createonly=1)
    probe = {
        "action": "query",
        "titles": "Only in this copy",
        "format": "json",
        "formatversion": "2",
    }
    for server, missing in ((wiki_server, False), (shared_server, True)):
        page = httpx.get(server.api_url, params=probe).json()["query"]["pages"][0]
        assert page.get("missing", False) is missing


@pytest.mark.mediawiki
def test_cli_start_and_stop(
    fixture_wiki: demo_wiki.Wiki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "demo"
    demo_wiki.copy_wiki(fixture_wiki, directory, fixture_wiki.port)
    port = demo_wiki.free_port()
    assert demo_wiki.main(["start", "--dir", str(directory), "--port", str(port)]) == 0
    try:
        out = capsys.readouterr().out
        api_url = f"http://127.0.0.1:{port}/api.php"
        assert f"API URL: {api_url}" in out
        assert f"harvester crawl {api_url} --mirror ./mirror" in out
        stats = httpx.get(
            api_url,
            params={
                "action": "query",
                "meta": "siteinfo",
                "siprop": "statistics",
                "format": "json",
            },
        ).json()
        assert stats["query"]["statistics"]["edits"] > 3_000
    finally:
        assert demo_wiki.main(["stop", "--dir", str(directory)]) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(api_url)


# An owner that starts a server, says its process group, and is then SIGKILLed.
OWNER = """
import sys, time
from pathlib import Path
sys.path.insert(0, "scripts")
import demo_wiki
wiki = demo_wiki.wiki_at(Path(sys.argv[1]))
server = demo_wiki.WikiServer(wiki).start()
print(server.pgid, flush=True)
time.sleep(120)
"""


@pytest.mark.mediawiki
def test_a_server_dies_with_its_killed_owner(fixture_wiki: demo_wiki.Wiki,
                                             tmp_path: Path) -> None:
    copy = demo_wiki.copy_wiki(fixture_wiki, tmp_path / "wiki", demo_wiki.free_port())
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(copy.directory)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pgid = int(owner.stdout.readline())
    assert httpx.get(copy.api_url, params={"action": "query", "format": "json"}).is_success
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while demo_wiki.group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not demo_wiki.group_alive(pgid), "php -S outlived the process that started it"
