"""Attribution of a crawled real MediaWiki: licence, registered and hidden authors, renames."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from jobs.crawl import run_crawl
from jobs.sync import run_sync
from storage.attribution import load_site, page_attribution
from storage.mirror import Mirror
from tests.helpers import crawl_settings, sync_settings

pytestmark = pytest.mark.mediawiki
LICENCE_URL = "https://creativecommons.org/licenses/by-sa/4.0/"
LICENCE_TEXT = "Creative Commons Attribution-Share Alike 4.0"


def attribution_of(mirror_dir: Path, pageid: int) -> tuple[Any, Any]:
    with Mirror.open(mirror_dir, create=False) as mirror:
        site = load_site(mirror)
        return site, page_attribution(mirror, site, pageid)


async def test_attribution_of_a_crawled_page_follows_a_rename(
    wiki_server: Any, changer: Any, tmp_path: Path
) -> None:
    import wiki_changes  # from scripts/, like the changer fixture

    # php reads LocalSettings.php on every request: the next crawl sees the licence.
    wiki_changes.add_settings(wiki_server.wiki, f'$wgRightsUrl = "{LICENCE_URL}";')
    wiki_changes.add_settings(wiki_server.wiki, f'$wgRightsText = "{LICENCE_TEXT}";')
    title = "Attribution test"
    changer.create(title, "First.")
    # the page's only anonymous edit: were its hidden user counted, it would show
    secret = changer.edit(title, "Second.", "to be hidden", as_anonymous=True)
    changer.hide_revision(secret, user=True)
    changer.edit(title, "Fourth.", "again")
    mirror = tmp_path / "mirror"
    await run_crawl(crawl_settings(wiki_server.api_url, mirror))

    with Mirror.open(mirror, create=False) as m:
        ours = m.db.conn.execute("SELECT pageid FROM pages WHERE title = ?", (title,)).fetchone()[0]
    site, mine = attribution_of(mirror, ours)
    assert (site.licence_name, site.licence_url) == (LICENCE_TEXT, LICENCE_URL)
    assert mine.url is not None and mine.url.startswith(wiki_server.url)
    assert mine.authors == ["Admin"] and mine.anonymous == 0
    assert mine.history_url is not None and mine.history_url.endswith(
        "?title=Attribution_test&action=history")

    alices = pages_edited_by(mirror, "Alice")
    before = {p: attribution_of(mirror, p)[1].authors for p in alices}
    changer.rename_user("Alice", "Alicia")
    await run_sync(sync_settings(mirror))
    for pageid, authors in before.items():
        expected = ["Alicia" if name == "Alice" else name for name in authors]
        assert attribution_of(mirror, pageid)[1].authors == expected


def pages_edited_by(mirror_dir: Path, name: str) -> list[int]:
    db = sqlite3.connect(mirror_dir / "mirror.sqlite")
    try:
        rows = db.execute("SELECT DISTINCT pageid FROM revisions WHERE user = ? AND userid > 0"
                          " ORDER BY pageid", (name,)).fetchall()  # fmt: skip
    finally:
        db.close()
    assert rows, f"{name} edits pages of the fixture"
    return [int(pageid) for (pageid,) in rows]
