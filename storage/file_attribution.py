"""Attribution of mirrored files: who uploaded each version, who wrote the description
page, and the file's own licence, which is often not the wiki's.

The licence, from the most to the least specific source:

1. the file's extended metadata (imageinfo ``extmetadata``: LicenseShortName,
   LicenseUrl, Artist, Credit, AttributionRequired), which wikis with the
   CommonsMetadata extension read from the description page's templates;
2. licence templates and categories on the description page, as the mirror
   holds its latest text (``{{cc-by-sa-4.0}}``, ``{{PD-self}}``,
   ``[[Category:GFDL]]``, ...);
3. the wiki's own licence, with a warning: nothing on the file states one.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .attribution import Site, licence_text, page_attribution
from .errors import NotInMirrorError
from .files import DELETED, FILE_NAMESPACE
from .mirror import Mirror
from .query import history, title_parser

FROM_METADATA = "the file's metadata"
FROM_PAGE = "the description page"
FROM_WIKI = "the wiki's licence"
WIKI_LICENCE_WARNING = (
    "nothing on the file states its licence: the wiki's is given, but a file's is often "
    "another; check the description page before republishing")

# Licence templates and categories as wikis name them (Commons, Wikipedias, and wikis
# that copied their templates): Creative Commons, public domain, GFDL, Free Art.
_LICENCE = r"(?:cc[-_ ](?:by|zero|0|pd)[^|}\]]*|cc0|pd[-_ ][^|}\]]*|public[ _]domain|" \
    r"gfdl[^|}\]]*|fal|free[ _]art[ _]licen[cs]e)"
LICENCE_TEMPLATE = re.compile(r"\{\{\s*(?:template\s*:\s*)?(" + _LICENCE + r")\s*[|}]", re.I)
LICENCE_CATEGORY = re.compile(r"\[\[\s*category\s*:\s*(" + _LICENCE + r")\s*[|\]]", re.I)
_TAG = re.compile(r"<[^>]*>")


@dataclass
class FileAttribution:
    name: str  # as the wiki keys it (underscores)
    title: str  # the description page's, with the namespace ("File:Old map.png")
    url: str | None  # the description page on the wiki
    uploaders: list[str] = field(default_factory=list)  # first upload first; hidden left out
    authors: list[str] = field(default_factory=list)  # of the description page
    anonymous: int = 0  # anonymous editors of the description page
    licence_name: str | None = None
    licence_url: str | None = None
    artist: str | None = None
    credit: str | None = None
    attribution_required: bool | None = None
    licence_source: str = FROM_WIKI
    warning: str | None = None


def of_page(mirror: Mirror, site: Site, pageid: int) -> FileAttribution | None:
    """The attribution of the file a page describes, when it is a File: page whose file
    the mirror holds."""
    row = mirror.db.conn.execute("SELECT ns, title FROM pages WHERE pageid = ?",
                                 [pageid]).fetchone()
    if row is None or row[0] != FILE_NAMESPACE or ":" not in row[1]:
        return None
    name = row[1].split(":", 1)[1].replace(" ", "_")
    if not mirror.db.conn.execute("SELECT 1 FROM file_versions WHERE name = ? LIMIT 1",
                                  [name]).fetchone():
        return None
    return file_attribution(mirror, site, name)


def plain(value: Any) -> str | None:
    """An extended metadata value as text: tags dropped, entities decoded."""
    if value is None:
        return None
    text = html.unescape(_TAG.sub("", str(value))).strip()
    return re.sub(r"\s+", " ", text) or None


def file_attribution(mirror: Mirror, site: Site, name: str) -> FileAttribution:
    """NotInMirrorError if the mirror has no version of the file."""
    rows = mirror.db.conn.execute(
        "SELECT user, userhidden, extmetadata FROM file_versions WHERE name = ? AND state != ?"
        " ORDER BY timestamp", [name, DELETED]).fetchall()
    if not rows:
        raise NotInMirrorError(f"the mirror has no file {name.replace('_', ' ')}")
    title = title_parser(mirror).full_title(FILE_NAMESPACE, name.replace("_", " "))
    found = FileAttribution(name, title, site.page_url(title))
    for user, hidden, _ in rows:
        if user and not hidden and user not in found.uploaders:
            found.uploaders.append(user)
    pageid = mirror.page_under_title(FILE_NAMESPACE, title)
    if pageid is not None:
        page = page_attribution(mirror, site, pageid)
        found.authors, found.anonymous = page.authors, page.anonymous
    metadata = json.loads(rows[-1][2]) if rows[-1][2] else {}
    if metadata.get("LicenseShortName") or metadata.get("LicenseUrl"):
        found.licence_name = plain(metadata.get("LicenseShortName"))
        found.licence_url = plain(metadata.get("LicenseUrl"))
        found.artist, found.credit = plain(metadata.get("Artist")), plain(metadata.get("Credit"))
        required = plain(metadata.get("AttributionRequired"))
        found.attribution_required = None if required is None else required == "true"
        found.licence_source = FROM_METADATA
    elif (stated := page_licence(mirror, pageid)) is not None:
        found.licence_name, found.licence_source = stated, FROM_PAGE
    else:
        found.licence_name, found.licence_url = site.licence_name, site.licence_url
        found.warning = WIKI_LICENCE_WARNING
    return found


def page_licence(mirror: Mirror, pageid: int | None) -> str | None:
    """The licences the description page's latest text names, by template or category."""
    if pageid is None:
        return None
    latest = next(history(mirror, pageid, 1), None)
    text = None if latest is None else mirror.revision_text(latest.revid)
    if not text:
        return None
    names: list[str] = []
    for match in [*LICENCE_TEMPLATE.finditer(text), *LICENCE_CATEGORY.finditer(text)]:
        licence = match.group(1).strip().replace("_", " ")
        if licence.casefold() not in (n.casefold() for n in names):
            names.append(licence)
    return ", ".join(names) or None


# -- formats ------------------------------------------------------------------------


def _licence(found: FileAttribution) -> str:
    if found.licence_name and found.licence_url:
        return f"{found.licence_name} ({found.licence_url})"
    return found.licence_name or found.licence_url or licence_text(Site(server=None))


def format_text(found: FileAttribution, site: Site) -> str:
    """One line, "Title, by, uploaded by, Source, Licence (from where)"."""
    by = f" by {found.artist}" if found.artist else ""
    credit = f", {found.credit}" if found.credit and found.credit != found.artist else ""
    uploaded = f"; uploaded by {', '.join(found.uploaders)}" if found.uploaders else ""
    page = ""
    if found.authors or found.anonymous:
        people = list(found.authors)
        if found.anonymous:
            people.append(f"{found.anonymous} anonymous")
        page = f"; description by {', '.join(people)}"
    source = f" Source: {found.url}." if found.url else ""
    return (f"\u201c{found.title}\u201d{by}{credit}{uploaded}{page}.{source} "
            f"Licence: {_licence(found)} (from {found.licence_source}).")


def to_json(found: FileAttribution, site: Site) -> dict[str, Any]:
    return {
        "file": found.name, "title": found.title, "url": found.url,
        "uploaders": found.uploaders, "authors": found.authors, "anonymous": found.anonymous,
        "licence": {"name": found.licence_name, "url": found.licence_url,
                    "source": found.licence_source},
        "artist": found.artist, "credit": found.credit,
        "attribution_required": found.attribution_required, "warning": found.warning,
    }


def format_json(found: FileAttribution, site: Site) -> str:
    return json.dumps(to_json(found, site), ensure_ascii=False)


def format_html(found: FileAttribution, site: Site) -> str:
    """A paragraph with links; every value from the wiki is escaped."""
    link = (f'<a href="{html.escape(found.url)}">{html.escape(found.title)}</a>' if found.url
            else html.escape(found.title))
    by = f" by {html.escape(found.artist)}" if found.artist else ""
    uploaded = (f"; uploaded by {html.escape(', '.join(found.uploaders))}"
                if found.uploaders else "")
    licence = html.escape(found.licence_name or found.licence_url or "unknown")
    if found.licence_url:
        licence = f'<a href="{html.escape(found.licence_url)}">{licence}</a>'
    return f'<p class="attribution">\u201c{link}\u201d{by}{uploaded}. Licence: {licence}.</p>'


FORMATTERS = {"text": format_text, "json": format_json, "html": format_html}
