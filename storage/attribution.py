"""Attribution of mirrored pages, for republishing them under the wiki's licence.

For each page: its title, its URL and history URL on the wiki, the licence the
wiki states (siteinfo ``rightsinfo``), and who wrote it:

* registered authors by name, most edits first, ties broken by the earlier
  first edit (so the page's creator leads among equals), then by name. Edit
  count is the usual proxy for contribution, and it is what a reader can
  check against the page's history. Names with a ">" ("imported>Name") are
  authors from another wiki whose edits were imported: they have no local
  account (userid 0) but are named people, so they are listed by name;
* anonymous editors (IP addresses, or userid 0 without an interwiki prefix)
  as a count of distinct addresses, as wikis themselves credit them;
* revisions whose author is hidden (revision deletion) count as no one: they
  are neither named nor counted, so nothing in the attribution tells that a
  hidden name exists. The page history link still leads to the full record.

Authors of every stored revision count, also when only the latest text is
republished: that text is the work of all of them.

Bots: ``exclude_bots`` leaves out the members of the wiki's "bot" group, which
the crawl records (meta key ``bot_users``) and a sync refreshes when user
rights change. A mirror without that record (made by an older harvester) falls
back to the naming convention: a name ending with "bot", case-insensitive.
"""

from __future__ import annotations

import html
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .mirror import Mirror
from .selection import Selection

UNKNOWN_LICENCE_WARNING = (
    "the wiki states no licence: the terms for reusing its content are unknown;"
    " check them with the wiki before republishing"
)
# What MediaWiki's wfUrlencode leaves unescaped in titles (besides letters, digits, "-_.~").
_TITLE_SAFE = ";@$!*(),/~:"


@dataclass(frozen=True)
class Site:
    """What the wiki's siteinfo says about its URLs and its licence."""

    server: str | None  # with a scheme: "https://example.org"
    articlepath: str = "/wiki/$1"
    script: str = "/w/index.php"
    sitename: str | None = None
    licence_name: str | None = None
    licence_url: str | None = None
    bots: frozenset[str] | None = None  # the wiki's bot group; None: not recorded

    @property
    def licence_known(self) -> bool:
        return bool(self.licence_name or self.licence_url)

    def page_url(self, title: str) -> str | None:
        if not self.server:
            return None
        return self.server + self.articlepath.replace("$1", encode_title(title))

    def history_url(self, title: str) -> str | None:
        if not self.server:
            return None
        return f"{self.server}{self.script}?title={encode_title(title)}&action=history"


@dataclass
class Attribution:
    pageid: int
    title: str
    url: str | None
    history_url: str | None
    authors: list[str] = field(default_factory=list)
    anonymous: int = 0


def encode_title(title: str) -> str:
    """A title as it appears in the wiki's URLs: underscores, percent-encoded like MediaWiki."""
    return quote(title.replace(" ", "_"), safe=_TITLE_SAFE)


def load_site(mirror: Mirror) -> Site:
    general = mirror.get_siteinfo("general") or {}
    rights = mirror.get_siteinfo("rightsinfo") or {}
    server = general.get("server") or None
    if server and server.startswith("//"):
        # Protocol-relative (Wikimedia's wikis): every one of them serves https.
        server = "https:" + server
    return Site(
        server=server,
        articlepath=general.get("articlepath") or "/wiki/$1",
        script=general.get("script") or "/w/index.php",
        sitename=general.get("sitename"),
        licence_name=(rights.get("text") or "").strip() or None,
        licence_url=(rights.get("url") or "").strip() or None,
        bots=_recorded_bots(mirror),
    )


def _recorded_bots(mirror: Mirror) -> frozenset[str] | None:
    recorded = mirror.get_meta("bot_users")
    return None if recorded is None else frozenset(json.loads(recorded))


def is_bot_name(name: str) -> bool:
    return name.casefold().endswith("bot")


def is_bot(site: Site, name: str) -> bool:
    return name in site.bots if site.bots is not None else is_bot_name(name)


def _is_anonymous(name: str, userid: int | None) -> bool:
    if ">" in name:
        return False  # imported from another wiki: a named author without a local account
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return userid == 0


def page_attribution(
    mirror: Mirror, site: Site, pageid: int, *, exclude_bots: bool = False
) -> Attribution:
    """The attribution of one page; KeyError if the mirror has no such page."""
    row = mirror.db.conn.execute("SELECT title FROM pages WHERE pageid = ?", (pageid,)).fetchone()
    if row is None:
        raise KeyError(pageid)
    title = row[0]
    found = Attribution(pageid, title, site.page_url(title), site.history_url(title))
    # Hidden authors are dropped here, before anything is counted.
    rows = mirror.db.conn.execute(
        """SELECT user, max(userid), count(*) AS edits, min(timestamp) AS first, min(revid)
           FROM revisions WHERE pageid = ? AND user IS NOT NULL AND NOT coalesce(userhidden, 0)
           GROUP BY user ORDER BY edits DESC, first, min(revid), user""",
        (pageid,),
    )
    for name, userid, _, _, _ in rows:
        if _is_anonymous(name, userid):
            found.anonymous += 1
        elif not (exclude_bots and is_bot(site, name)):
            found.authors.append(name)
    return found


def exported_pageids(mirror: Mirror, selection: Selection | None = None) -> Iterator[int]:
    """The pages an export with this selection holds, in pageid order."""
    return mirror.iter_selected_pageids(selection)


# -- formats ------------------------------------------------------------------------


def _contributors(found: Attribution) -> list[str]:
    parts = list(found.authors)
    if found.anonymous:
        plural = "s" if found.anonymous != 1 else ""
        parts.append(f"{found.anonymous} anonymous contributor{plural}")
    return parts


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def licence_text(site: Site) -> str:
    if not site.licence_known:
        return "unknown (the wiki states none; check its terms before reuse)"
    if site.licence_name and site.licence_url:
        return f"{site.licence_name} ({site.licence_url})"
    return site.licence_name or site.licence_url or ""


def format_text(found: Attribution, site: Site) -> str:
    """One line, "Title, Author(s), Source, Licence", ready to paste."""
    parts = _contributors(found)
    by = f" by {_join(parts)}" if parts else " (contributors: see the page history)"
    if found.url:
        source = f"Source: {found.url} (history: {found.history_url})."
    else:
        source = "Source: unknown (the mirror has no record of the wiki's server)."
    return f"\u201c{found.title}\u201d{by}. {source} Licence: {licence_text(site)}."


def to_json(found: Attribution, site: Site) -> dict[str, Any]:
    licence = {"name": site.licence_name, "url": site.licence_url} if site.licence_known else None
    return {
        "pageid": found.pageid,
        "title": found.title,
        "url": found.url,
        "history_url": found.history_url,
        "authors": found.authors,
        "anonymous": found.anonymous,
        "licence": licence,
        "warning": None if site.licence_known else UNKNOWN_LICENCE_WARNING,
    }


def format_json(found: Attribution, site: Site) -> str:
    return json.dumps(to_json(found, site), ensure_ascii=False)


def _link(url: str | None, text: str) -> str:
    if not url:
        return html.escape(text)
    return f'<a href="{html.escape(url)}">{html.escape(text)}</a>'


def format_html(found: Attribution, site: Site) -> str:
    """A paragraph with links; every value from the wiki is escaped."""
    parts = _contributors(found)
    by = f" by {html.escape(_join(parts))}" if parts else ""
    history = f" ({_link(found.history_url, 'history')})" if found.history_url else ""
    if site.licence_known:
        licence = _link(site.licence_url, site.licence_name or site.licence_url or "")
    else:
        licence = "unknown (the wiki states none; check its terms before reuse)"
    return (f'<p class="attribution">\u201c{_link(found.url, found.title)}\u201d{by}{history}.'
            f" Licence: {licence}.</p>")  # fmt: skip


FORMATTERS = {"text": format_text, "json": format_json, "html": format_html}
