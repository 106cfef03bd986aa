"""`export --format parquet`, read by DuckDB and pandas (no extension downloads) and checked
against the fixture wiki's own dumpBackup.php: same revisions, same texts by SHA-1."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import zstandard

from storage import dumpimport
from storage.mirror import Mirror
from tests.ground_truth import parse_dump
from tests.helpers import ROOT

pytestmark = pytest.mark.mediawiki


@pytest.fixture(scope="module")
def imported(fixture_dump: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    mirror = tmp_path_factory.mktemp("parquet") / "mirror"
    with Mirror.open(mirror, create=True) as opened:
        dumpimport.import_dump(opened, fixture_dump)
    return mirror


def export(mirror: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harvester", "export", "--mirror", str(mirror), "--format",
         "parquet", "--output", str(out), "--quiet", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def sha1(text: str | None) -> str | None:
    return None if text is None else hashlib.sha1(text.encode("utf-8")).hexdigest()


def test_duckdb_and_pandas_read_the_dumps_revisions(imported: Path, fixture_dump: Path,
                                                    tmp_path: Path) -> None:
    done = export(imported, tmp_path / "pq")
    assert done.returncode == 0, done.stderr
    files = sorted((tmp_path / "pq").glob("*/*.parquet"))
    assert [f.name for f in files] == ["revisions-start-end.parquet"]
    truth = {r["revid"]: r for r in parse_dump(fixture_dump)}

    frame = pd.read_parquet(files[0])
    assert sorted(frame["revision_id"]) == sorted(truth)
    for row in frame.itertuples():
        expected = truth[row.revision_id]
        slots = dict(row.revision_content_slots)
        body = slots["main"]["content_body"]
        if "text" in expected.get("hidden", []):
            assert body is None and not row.revision_content_is_visible
        else:
            assert sha1(body) == sha1(expected["text"]), row.revision_id
        assert row.page_title == expected["title"] and row.page_namespace_id == expected["ns"]
        assert row.revision_dt.strftime("%Y-%m-%dT%H:%M:%SZ") == expected["timestamp"]

    query = """SELECT revision_id, revision_content_slots['main'].content_model AS model,
                      user_text, user_is_visible
               FROM read_parquet(?) ORDER BY revision_id"""
    rows = duckdb.execute(query, [str(tmp_path / "pq" / "*" / "*.parquet")]).fetchall()
    assert [r[0] for r in rows] == sorted(truth)
    for revid, model, user, visible in rows:
        assert model == truth[revid]["model"]
        assert visible == ("user" not in truth[revid].get("hidden", []))
        assert user == (truth[revid].get("user") if visible else None)


def test_daily_partitions_add_up_to_the_whole(imported: Path, fixture_dump: Path,
                                              tmp_path: Path) -> None:
    times = sorted(r["timestamp"] for r in parse_dump(fixture_dump))
    middle = times[len(times) // 2][:10]  # a day boundary inside the history
    out = tmp_path / "pq"
    assert export(imported, out, "--until", middle).returncode == 0
    assert export(imported, out, "--since", middle).returncode == 0
    names = sorted(f.name for f in out.glob("*/*.parquet"))
    assert names == [f"revisions-{middle}-end.parquet", f"revisions-start-{middle}.parquet"]
    union = duckdb.execute("SELECT count(*), count(DISTINCT revision_id) FROM read_parquet(?)",
                           [str(out / "*" / "*.parquet")]).fetchone()
    assert union is not None and union[0] == union[1] == len(times)
    early = duckdb.execute("SELECT max(revision_dt) FROM read_parquet(?)",
                           [str(next(out.glob(f"*/revisions-start-{middle}.parquet")))]).fetchone()
    assert early is not None and early[0].strftime("%Y-%m-%d") < middle


def test_parquet_needs_a_directory(imported: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harvester", "export", "--mirror", str(imported), "--format",
         "parquet"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--output DIR" in done.stderr


def jsonl_revids(path: Path) -> list[int]:
    if path.suffix == ".zst":
        with zstandard.open(path, "rt", encoding="utf-8") as lines:
            return [json.loads(line)["revid"] for line in lines]
    opener = {".xz": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line)["revid"] for line in lines]


def newest_of_each_page(revisions: list[dict[str, object]]) -> list[dict[str, object]]:
    """What --current-only keeps: each page's newest revision by (timestamp, revid)."""
    newest: dict[object, dict[str, object]] = {}
    for r in revisions:
        key = (r["timestamp"], r["revid"])
        if r["pageid"] not in newest or key > (newest[r["pageid"]]["timestamp"],
                                               newest[r["pageid"]]["revid"]):
            newest[r["pageid"]] = r
    return list(newest.values())


def test_filters_and_compressions_on_the_fixture_against_its_dump(
    imported: Path, fixture_dump: Path, tmp_path: Path
) -> None:
    truth = list(parse_dump(fixture_dump))
    middle = sorted(r["timestamp"] for r in truth)[len(truth) // 2]
    talk = [r for r in truth if r["title"].startswith("Talk:")]
    assert talk, "the fixture has talk pages"
    first_title = truth[0]["title"]
    cases = [
        (["--titles", "Talk:*"], talk),
        (["--titles", first_title, "--since", middle],
         [r for r in truth if r["title"] == first_title and r["timestamp"] >= middle]),
        (["--namespaces", "0", "--until", middle],
         [r for r in truth if r["ns"] == 0 and r["timestamp"] < middle]),
        (["--current-only"], newest_of_each_page(truth)),
        (["--current-only", "--until", middle],
         newest_of_each_page([r for r in truth if r["timestamp"] < middle])),
    ]
    for number, (args, expected) in enumerate(cases):
        for suffix in (".xz", ".gz", ".bz2", ".zst", ""):
            out = tmp_path / f"case{number}.jsonl{suffix}"
            done = subprocess.run(
                [sys.executable, "-m", "harvester", "export", "--mirror", str(imported),
                 "--output", str(out), "--quiet", *args],
                cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            # by page, oldest first: the dump's own order
            order = {r["revid"]: (r["pageid"], r["timestamp"], r["revid"]) for r in truth}
            assert jsonl_revids(out) == sorted((r["revid"] for r in expected),
                                               key=order.__getitem__), (args, suffix)
