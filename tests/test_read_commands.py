"""pages, history, show, stats (jobs/read.py) on a small mirror; errors through the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from harvester.cli import main
from jobs import outcome, read
from storage.errors import NotInMirrorError, TextHiddenError
from storage.mirror import Mirror
from tests.helpers import ROOT, assert_one_line_error, run_cli, settings_for
from tests.read_mirror import MAIN_1, MAIN_2, MAIN_3, build


@pytest.fixture(scope="module")
def mirror_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build(tmp_path_factory.mktemp("read") / "mirror"))


def as_json(text: str) -> Any:
    return json.loads(text)


# -- pages ------------------------------------------------------------------------


def pages(mirror_dir: str, **kw: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    options: dict[str, Any] = {"ns": None, "prefix": None, "redirects": None, "limit": None}
    options.update(kw)
    read.run_pages(mirror_dir, out, as_json=True, **options)
    return list(as_json(out.getvalue()))


def test_pages_json_shape(mirror_dir: str) -> None:
    rows = pages(mirror_dir)
    assert [r["title"] for r in rows] == [
        "Main Page", "Zebra", "Talk:Main Page", "User:Alice", "Testwiki:About", "Wörter:kleine",
    ]  # fmt: skip
    assert rows[0] == {"title": "Main Page", "ns": 0, "pageid": 1, "revisions": 3,
                       "latest": "2024-03-01T10:00:00Z", "length": len(MAIN_3),
                       "redirect": False}  # fmt: skip


def test_pages_filters(mirror_dir: str) -> None:
    def titles(**kw: Any) -> list[str]:
        return [r["title"] for r in pages(mirror_dir, **kw)]

    assert titles(ns=0) == ["Main Page", "Zebra"]
    assert titles(ns=0, redirects=False) == ["Main Page"]
    assert titles(redirects=True) == ["Zebra"]
    assert titles(prefix="main") == ["Main Page"]
    assert titles(prefix="talk:") == ["Talk:Main Page"]
    assert titles(prefix="A", ns=4) == ["Testwiki:About"]
    assert titles(prefix="tw:ab") == ["Testwiki:About"]
    assert titles(limit=1) == ["Main Page"]
    assert titles(prefix="Nothing") == []


def test_pages_table(mirror_dir: str) -> None:
    out = io.StringIO()
    count = read.run_pages(mirror_dir, out, ns=None, prefix=None, redirects=None, limit=None,
                           as_json=False)  # fmt: skip
    lines = out.getvalue().splitlines()
    assert count == 6 and len(lines) == 7 and lines[0].split() == [
        "pageid", "ns", "revs", "latest", "length", "title"]  # fmt: skip
    assert lines[2].endswith("Zebra  (redirect)")


def test_empty_json_list(mirror_dir: str) -> None:
    assert pages(mirror_dir, prefix="Nothing") == []


# -- history ----------------------------------------------------------------------


def test_history_newest_first_with_hidden_fields(mirror_dir: str) -> None:
    out = io.StringIO()
    read.run_history(mirror_dir, out, "main_Page", limit=None, as_json=False)
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["12", "11", "10"]
    assert lines[0].count("(hidden)") == 2
    assert " m " in lines[1] and "Bob" in lines[1] and lines[1].endswith("edit 11")
    out = io.StringIO()
    read.run_history(mirror_dir, out, "Main Page", limit=2, as_json=True)
    rows = as_json(out.getvalue())
    assert [r["revid"] for r in rows] == [12, 11]
    assert rows[0]["user"] is None and rows[0]["comment"] is None
    assert rows[0]["hidden"] == ["user", "comment"]
    assert set(rows[1]) == {"revid", "parentid", "timestamp", "user", "minor", "size",
                            "comment", "tags"}  # fmt: skip
    assert rows[1]["minor"] is True and rows[1]["size"] == len(MAIN_2)


def test_history_of_unknown_page_suggests(mirror_dir: str) -> None:
    with pytest.raises(NotInMirrorError, match="did you mean 'Main Page'"):
        read.run_history(mirror_dir, io.StringIO(), "main page", limit=None, as_json=False)


# -- show -------------------------------------------------------------------------


def show(mirror_dir: str, title: str | None, **kw: Any) -> str:
    options: dict[str, Any] = {"revid": None, "at": None, "slot": "main", "as_json": False}
    options.update(kw)
    out = io.StringIO()
    read.run_show(mirror_dir, out, title, **options)
    return out.getvalue()


def test_show_latest_rev_and_at(mirror_dir: str) -> None:
    assert show(mirror_dir, "Main_Page") == MAIN_3  # byte for byte, no newline added
    assert show(mirror_dir, "Main Page", revid=10) == MAIN_1
    assert show(mirror_dir, None, revid=11) == MAIN_2
    assert show(mirror_dir, "Main Page", at="2024-02-15") == MAIN_2
    assert show(mirror_dir, "Main Page", at="2024-02-01T10:00:00Z") == MAIN_2
    assert show(mirror_dir, "Main Page", at="2024-02-01T09:59:59Z") == MAIN_1
    assert show(mirror_dir, "Main Page", at="2024-02-01T12:00:00+02:00") == MAIN_2
    assert show(mirror_dir, "Main Page", at="2030-01-01") == MAIN_3
    assert show(mirror_dir, "User:Alice", slot="extra") == '{"a": 1}'


def test_show_json(mirror_dir: str) -> None:
    record = as_json(show(mirror_dir, "Main Page", revid=11, as_json=True))
    assert record == {"title": "Main Page", "ns": 0, "pageid": 1, "revid": 11,
                      "timestamp": "2024-02-01T10:00:00Z", "slot": "main",
                      "model": "wikitext", "text": MAIN_2}  # fmt: skip


def test_show_errors(mirror_dir: str) -> None:
    with pytest.raises(TextHiddenError, match="revision 41 of 'Testwiki:About' is hidden"):
        show(mirror_dir, "Project:About")
    assert show(mirror_dir, "Project:About", revid=40) == "About this wiki: aardvarks."
    with pytest.raises(NotInMirrorError, match="did not exist yet at 2023-01-01T00:00:00Z"):
        show(mirror_dir, "Main Page", at="2023-01-01")
    with pytest.raises(read.ReadUsageError, match="not a timestamp"):
        show(mirror_dir, "Main Page", at="yesterday")
    with pytest.raises(read.ReadUsageError, match="revision 20 is of 'Talk:Main Page'"):
        show(mirror_dir, "Main Page", revid=20)
    with pytest.raises(NotInMirrorError, match="no revision 999"):
        show(mirror_dir, None, revid=999)
    with pytest.raises(NotInMirrorError, match=r"no slot 'extra' \(slots: main\)"):
        show(mirror_dir, "Main Page", slot="extra")
    with pytest.raises(read.ReadUsageError, match="not a page title"):
        show(mirror_dir, "A|B")
    with pytest.raises(read.ReadUsageError, match="TITLE"):
        show(mirror_dir, None)


def test_cli_exit_codes(mirror_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "Main Page", "--mirror", mirror_dir]) == 0
    assert capsys.readouterr().out == MAIN_3
    assert main(["show", "TW:About", "--mirror", mirror_dir]) == outcome.EXIT_NOT_FOUND == 9
    assert "hidden on the wiki" in capsys.readouterr().err
    assert main(["show", "Nowhere", "--mirror", mirror_dir]) == outcome.EXIT_NOT_FOUND
    assert main(["search", "nosuchwordanywhere", "--mirror", mirror_dir]) == 1
    assert capsys.readouterr().err.endswith("no matches for nosuchwordanywhere\n")
    assert main(["search", "zebras", "--namespaces", "0,1", "--mirror", mirror_dir]) == 0
    assert main(["pages", "--namespace", "1", "--mirror", mirror_dir]) == 0
    assert main(["show", "Main Page", "--at", "soon", "--mirror", mirror_dir]) == 2
    assert main(["pages", "--mirror", mirror_dir + "-absent"]) == outcome.EXIT_MIRROR
    assert "no mirror at" in capsys.readouterr().err


def test_cli_process(mirror_dir: str) -> None:
    done = run_cli("show", "main_Page", "--rev", "10", "--mirror", mirror_dir)
    assert done.returncode == 0 and done.stdout == MAIN_1
    done = run_cli("search", "Talk:Main", "--mirror", mirror_dir)
    assert_one_line_error(done, outcome.EXIT_USAGE, "bad search query")
    done = run_cli("show", "Main Page", "--rev", "1", "--at", "2024-01-01", "--mirror", mirror_dir)
    assert done.returncode == outcome.EXIT_USAGE and "not allowed with" in done.stderr


# -- stats ------------------------------------------------------------------------


def test_stats(mirror_dir: str) -> None:
    out = io.StringIO()
    stats = read.run_stats(mirror_dir, out, as_json=True)
    assert as_json(out.getvalue()) == stats
    assert (stats["pages"], stats["revisions"], stats["editors"]) == (6, 9, 3)
    assert stats["namespaces"][:2] == [
        {"ns": 0, "name": "", "pages": 2, "revisions": 4},
        {"ns": 1, "name": "Talk", "pages": 1, "revisions": 1},
    ]
    assert stats["texts"] == 9  # 7 visible main texts + the extra slot's + ... all distinct
    texts_bytes = sum(len(t.encode()) for t in (MAIN_1, MAIN_2, MAIN_3))
    assert stats["text_bytes"] >= texts_bytes and stats["text_bytes"] == stats[
        "distinct_text_bytes"]  # fmt: skip
    assert 0 < stats["stored_text_bytes"] < stats["file_bytes"]
    assert stats["compression_ratio"] == round(stats["text_bytes"] / stats["stored_text_bytes"], 1)
    assert stats["last_run"]["command"] == "crawl" and stats["last_run"]["status"] == "ok"
    out = io.StringIO()
    read.run_stats(mirror_dir, out, as_json=False)
    assert "revisions  9" in out.getvalue() and "(main)" in out.getvalue()


def test_stats_counts_reverts_in_text_bytes(tmp_path: Path) -> None:
    from storage.mirror import Mirror
    from storage.records import PageRecord, RevisionBatch
    from tests.read_mirror import rev

    text = "x" * 1000
    with Mirror.open(tmp_path, create=True) as mirror:
        revisions = [rev(1, 1, "2024-01-01T00:00:00Z", text),
                     rev(2, 1, "2024-01-02T00:00:00Z", "vandal"),
                     rev(3, 1, "2024-01-03T00:00:00Z", text)]  # fmt: skip
        mirror.write_batch(RevisionBatch([PageRecord(1, 0, "P")], revisions), "t", None, True)
    stats = read.run_stats(str(tmp_path), io.StringIO(), as_json=True)
    assert stats["text_bytes"] == 2006 and stats["distinct_text_bytes"] == 1006
    assert stats["editors"] == 1 and stats["last_run"] is None


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`harvester pages --json | head -c 1` on a mirror whose listing overfills the
    pipe, so the command is still writing when its reader goes: exit 0, no message."""
    import subprocess
    import sys

    import trio

    from jobs.crawl import run_crawl
    from tests.fakewiki import FakeWiki, make_pages

    wiki = FakeWiki(make_pages(1500, 1))
    trio.run(lambda: run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport()))
    for command in (["pages", "--json"], ["pages"], ["stats", "--json"]):
        for _ in range(3):
            process = subprocess.Popen(
                [sys.executable, "-m", "harvester", *command, "--mirror", str(tmp_path / "m")],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert process.stdout is not None and process.stderr is not None
            assert process.stdout.read(1)
            process.stdout.close()  # the reader is gone while the command writes
            errors = process.stderr.read().decode()
            assert process.wait(timeout=60) == 0, errors
            assert errors == ""


def test_verify_finds_a_wrong_count_of_slots_and_repair_sets_it_right(tmp_path: Path) -> None:
    directory = build(tmp_path / "mirror")
    with Mirror.open(directory, create=False) as m:
        m.bind_wiki("example", "http://127.0.0.1:9/w/api.php")  # a closed port: no fetch
        m.db.execute("UPDATE text_data SET refs = refs + 1"
                     " WHERE id = (SELECT min(text_id) FROM slots)")
    found = run_cli("verify", "--mirror", str(directory), "--quiet")
    assert found.returncode == outcome.EXIT_MIRROR, found.stderr
    said = found.stdout + found.stderr  # the summary goes where the log goes
    assert "1 texts with a wrong count of the slots that name them" in said
    assert "--repair to count them again" in said
    repaired = run_cli("verify", "--mirror", str(directory), "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "repair: 1 texts counted again" in repaired.stdout + repaired.stderr
    assert run_cli("verify", "--mirror", str(directory), "--quiet").returncode == 0
