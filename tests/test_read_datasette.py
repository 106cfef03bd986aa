"""Datasette can browse a real mirror: tables and views listed, a query runs.

Datasette runs on asyncio, so the test drives it with asyncio.run from a plain
(not trio) test.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo_wiki import free_port

from storage import dumpimport
from storage.mirror import DB_NAME, Mirror
from tests.ground_truth import parse_dump
from tests.read_mirror import build

datasette_app = pytest.importorskip("datasette.app")


async def fetch(path: Path, urls: list[str]) -> list[Any]:
    app = datasette_app.Datasette([str(path)])
    answers = []
    for url in urls:
        response = await app.client.get(url)
        assert response.status_code == 200, (url, response.text[:500])
        answers.append(response.json())
    return answers


def test_datasette_serves_a_mirror(tmp_path: Path) -> None:
    database = build(tmp_path / "m") / DB_NAME
    name = database.stem  # "mirror"
    sql = "select title, revisions from page_summary where ns = 0 order by title"
    listing, rows, view = asyncio.run(fetch(database, [
        f"/{name}.json",
        f"/{name}.json?sql={sql.replace(' ', '+')}&_shape=array",
        f"/{name}/page_history.json?title=Main+Page&_sort_desc=revid&_shape=array",
    ]))  # fmt: skip
    tables = {t["name"] for t in listing["tables"]}
    assert {"pages", "namespaces", "runs", "revision_data", "text_data"} <= tables
    assert {"revisions", "slots", "texts", "latest_revisions", "page_history", "page_summary",
            "user_edits"} <= {v["name"] for v in listing["views"]}
    assert rows == [{"title": "Main Page", "revisions": 3}, {"title": "Zebra", "revisions": 1}]
    assert [r["revid"] for r in view] == [12, 11, 10]


@pytest.fixture
def datasette_server(fixture_dump: Path, tmp_path: Path) -> Iterator[str]:
    """``datasette serve`` on a mirror of the fixture wiki's dump, as a user would run it."""
    mirror = tmp_path / "mirror"
    with Mirror.open(mirror, create=True) as opened:
        dumpimport.import_dump(opened, fixture_dump)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "datasette", "serve", str(mirror / DB_NAME), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until it answers
            try:
                httpx.get(f"{url}/-/versions.json", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "no datasette"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.mediawiki
def test_a_real_datasette_reads_texts_links_pages_and_describes(
    datasette_server: str, fixture_dump: Path
) -> None:
    url = datasette_server
    truth = [r for r in parse_dump(fixture_dump) if "text" in r][:40]
    revids = ",".join(str(r["revid"]) for r in truth)
    sql = f"select revid, revision_text(revid) as text from revisions where revid in ({revids})"
    answer = httpx.get(f"{url}/mirror.json", params={"sql": sql, "_shape": "array"}, timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    texts = {row["revid"]: row["text"] for row in answer.json()}
    assert texts == {r["revid"]: r["text"] for r in truth}
    # a revision links to its page, labelled by its title; its author to the actor's name
    rows = httpx.get(f"{url}/mirror/revision_data.json", timeout=30, params={
        "_shape": "array", "_labels": "on", "revid": truth[0]["revid"]}).json()
    assert rows[0]["pageid"] == {"value": truth[0]["pageid"], "label": truth[0]["title"]}
    assert rows[0]["actor"]["label"] == truth[0]["user"]
    page = httpx.get(f"{url}/mirror/pages", timeout=30).text
    assert "One row per page of the wiki." in page


def test_hidden_texts_are_null_and_other_databases_untouched(tmp_path: Path) -> None:
    database = build(tmp_path / "m") / DB_NAME
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    app = datasette_app.Datasette([str(database), str(other)])

    async def ask() -> tuple[Any, Any]:
        texts = await app.client.get(
            "/mirror.json?sql=select+revid,+revision_text(revid)+as+t+from+revisions"
            "+order+by+revid&_shape=array")
        elsewhere = await app.client.get("/other.json?sql=select+revision_text(1)")
        return texts.json(), elsewhere

    texts, elsewhere = asyncio.run(ask())
    assert all(isinstance(row["t"], str) or row["t"] is None for row in texts) and texts
    assert elsewhere.status_code == 400  # no such function outside a mirror
