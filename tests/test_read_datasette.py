"""Datasette can browse a real mirror: tables and views listed, a query runs.

Datasette runs on asyncio, so the test drives it with asyncio.run from a plain
(not trio) test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from storage.mirror import DB_NAME
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
