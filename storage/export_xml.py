"""Export a mirror as MediaWiki XML (export schema 0.11), like ``dumpBackup.php --full``.

The output imports with ``importDump.php`` and reads with the usual dump tools.
It follows MediaWiki's own writer (XmlDumpWriter) element by element: same
order, ``<parentid>`` left out for a first revision, an empty ``<comment>``
left out, SHA-1s in base 36 padded to 31 digits, non-main slots as
``<content>`` elements. Fields hidden by revision deletion are written the
way MediaWiki writes them (``deleted="deleted"``, ``<sha1/>``); a hidden text
is never read from the store.

Everything streams from one cursor, page after page; memory stays flat.
"""

from __future__ import annotations

import base64
import functools
import html
import ipaddress
import re
from collections.abc import Callable
from typing import Any, TextIO

from .export_jsonl import PROGRESS_EVERY
from .files import DELETED, FILE_NAMESPACE, STORED, FileBytes, file_versions
from .mirror import Mirror
from .selection import Selection
from .stored import StoredRevision, StoredSlot

SCHEMA_VERSION = "0.11"
EXPORT_NS = f"http://www.mediawiki.org/xml/export-{SCHEMA_VERSION}/"

# Characters XML 1.0 cannot carry at all (control characters, lone surrogates,
# U+FFFE/U+FFFF); they become U+FFFD, as MediaWiki's own UTF-8 clean-up does.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_BASE36_PAIRS = [a + b for a in _DIGITS36 for b in _DIGITS36]
# The English magic word, which wikis in every language accept; a redirect
# spelt only in another language gets no <redirect> element (importers
# recompute it from the text anyway).
_REDIRECT = re.compile(r"\A\s*#REDIRECT\s*:?\s*\[\[([^\]|\n]+)", re.IGNORECASE)
# The format MediaWiki writes when the API named none: the model's default.
_DEFAULT_FORMATS = {
    "wikitext": "text/x-wiki", "javascript": "text/javascript", "css": "text/css",
    "json": "application/json", "text": "text/plain",
}  # fmt: skip

ProgressCallback = Callable[[int], None]
BASE64_CHUNK = 3 << 18  # a multiple of 3: the chunks' encodings join into one


def write_xml(
    mirror: Mirror,
    out: TextIO,
    selection: Selection | None = None,
    *,
    progress: ProgressCallback | None = None,
    uploads: bool = False,
) -> int:
    """Write the export to ``out``; returns the number of revisions written. With
    ``uploads``, each file description page is followed by its file's versions, bytes
    included, as ``dumpBackup.php --uploads --include-files`` writes them (and
    ``importDump.php --uploads`` reads them)."""
    writer = _XmlWriter(mirror, out, uploads=uploads)
    out.write(site_header(mirror))
    count = pending = 0
    for rev in mirror.iter_revisions(selection):
        writer.revision(rev)
        count += 1
        pending += 1
        if progress is not None and pending >= PROGRESS_EVERY:
            progress(pending)
            pending = 0
    writer.close_page()
    out.write("</mediawiki>\n")
    if progress is not None and pending:
        progress(pending)
    return count


# -- escaping -------------------------------------------------------------------


def clean(value: str) -> str:
    """``value`` with every character XML cannot hold replaced by U+FFFD."""
    # The fast path covers most titles, names and comments.
    if (value.isascii() and value.isprintable()) or _NOT_XML.search(value) is None:
        return value
    return _NOT_XML.sub("\ufffd", value)


def escape_text(value: str) -> str:
    value = clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A raw CR would come back as LF from any XML parser; a reference keeps it.
    return value.replace("\r", "&#13;") if "\r" in value else value


def escape_attr(value: str) -> str:
    # Parsers normalise raw whitespace in attribute values; references survive.
    value = escape_text(value).replace('"', "&quot;")
    return value.replace("\t", "&#9;").replace("\n", "&#10;")


def element(name: str, value: str | int, indent: str) -> str:
    text = escape_text(value) if isinstance(value, str) else str(value)
    return f"{indent}<{name}>{text}</{name}>\n" if text else f"{indent}<{name} />\n"


@functools.lru_cache(maxsize=16)
def sha1_base36(hex_digest: str) -> str:
    """A 40-digit hex SHA-1 the way MediaWiki writes it: base 36, 31 digits, zero padded."""
    # This shows in profiles. The cache: a revision with one slot has the
    # slot's SHA-1 as its own. The table: 16 divisions instead of 31.
    number = int(hex_digest, 16)
    pairs = []
    for _ in range(16):
        number, rest = divmod(number, 1296)
        pairs.append(_BASE36_PAIRS[rest])
    return "".join(reversed(pairs))[1:]


# -- the header ----------------------------------------------------------------


def site_header(mirror: Mirror) -> str:
    """The opening ``<mediawiki>`` tag and ``<siteinfo>``, from the stored siteinfo."""
    general: dict[str, Any] = mirror.get_siteinfo("general") or {}
    lang = escape_attr(str(general.get("lang", "en")))
    parts = [
        f'<mediawiki xmlns="{EXPORT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xsi:schemaLocation="{EXPORT_NS} http://www.mediawiki.org/xml/export-{SCHEMA_VERSION}.xsd"'
        f' version="{SCHEMA_VERSION}" xml:lang="{lang}">\n',
        "  <siteinfo>\n",
    ]
    for name, key in (("sitename", "sitename"), ("dbname", "wikiid"), ("base", "base"),
                      ("generator", "generator"), ("case", "case")):
        if general.get(key) is not None:
            parts.append(element(name, str(general[key]), "    "))
    parts.append(_namespaces(mirror.get_siteinfo("namespaces") or {}))
    parts.append("  </siteinfo>\n")
    return "".join(parts)


def _namespaces(namespaces: dict[str, dict[str, Any]]) -> str:
    if not namespaces:
        return ""
    lines = ["    <namespaces>\n"]
    for ns in sorted(namespaces.values(), key=lambda ns: int(ns["id"])):
        attrs = f'key="{int(ns["id"])}" case="{escape_attr(ns.get("case", "first-letter"))}"'
        name = escape_text(ns.get("name", ""))
        lines.append(f"      <namespace {attrs}>{name}</namespace>\n" if name
                     else f"      <namespace {attrs} />\n")
    lines.append("    </namespaces>\n")
    return "".join(lines)


# -- pages and revisions ---------------------------------------------------------


class _XmlWriter:
    """Writes revisions, opening and closing ``<page>`` around each page's run."""

    def __init__(self, mirror: Mirror, out: TextIO, *, uploads: bool = False) -> None:
        self.mirror = mirror
        self.out = out
        self.uploads = uploads
        self.file_name: str | None = None  # of the page open, when it describes a file
        self.titles = _TitleNormaliser(mirror)
        self.pageid: int | None = None
        # The previous revision of the page and its slots' (sha1, origin): a slot
        # whose content equals its parent's was inherited (a null revision), and
        # keeps the parent's origin, as in MediaWiki.
        self.prev_revid: int | None = None
        self.prev_slots: dict[str, tuple[str | None, int]] = {}

    def revision(self, rev: StoredRevision) -> None:
        if rev.pageid != self.pageid:
            self.close_page()
            self.out.write(self._page_header(rev))
            self.pageid = rev.pageid
            if rev.ns == FILE_NAMESPACE and rev.title and ":" in rev.title:
                self.file_name = rev.title.split(":", 1)[1].replace(" ", "_")
        self.out.write(self._revision(rev))
        self.prev_revid = rev.revid

    def close_page(self) -> None:
        if self.pageid is not None:
            if self.uploads and self.file_name is not None:
                for version in reversed(file_versions(self.mirror, self.file_name)):
                    # A hidden version has no bytes to give, and importDump.php --uploads
                    # cannot take one (it drops it, or stops at its hidden uploader)
                    if not version["filehidden"] and version["state"] != DELETED:
                        write_upload(self.out, self.mirror, version)
            self.out.write("  </page>\n")
        self.pageid, self.prev_revid, self.prev_slots = None, None, {}
        self.file_name = None

    def _page_header(self, rev: StoredRevision) -> str:
        parts = [
            "  <page>\n",
            element("title", rev.title or "", "    "),
            element("ns", rev.ns if rev.ns is not None else 0, "    "),
            element("id", rev.pageid, "    "),
        ]
        target = self._redirect_target(rev.pageid)
        if target is not None:
            parts.append(f'    <redirect title="{escape_attr(target)}" />\n')
        return "".join(parts)

    def _redirect_target(self, pageid: int) -> str | None:
        """The target of a redirect page, read from its latest visible stored text."""
        row = self.mirror.db.execute(
            "SELECT (SELECT s.text_sha1 FROM slots s WHERE s.revid = r.revid"
            " AND s.role = 'main' AND NOT s.texthidden)"
            " FROM pages p JOIN revisions r ON r.revid = p.latest_revid"
            " WHERE p.pageid = ? AND p.is_redirect AND NOT r.texthidden",
            [pageid],
        ).fetchone()
        if row is None or row[0] is None:
            return None
        match = _REDIRECT.match(self.mirror.read_text(row[0]))
        return None if match is None else self.titles.normalise(match.group(1))

    def _revision(self, rev: StoredRevision) -> str:
        parts = ["    <revision>\n", element("id", rev.revid, "      ")]
        if rev.parentid:
            parts.append(element("parentid", rev.parentid, "      "))
        parts.append(element("timestamp", rev.timestamp, "      "))
        parts.append(_contributor(rev))
        if rev.minor:
            parts.append("      <minor/>\n")
        if rev.commenthidden:
            parts.append('      <comment deleted="deleted" />\n')
        elif rev.comment:
            parts.append(element("comment", rev.comment, "      "))
        parts.append(self._main_slot(rev))
        slots: dict[str, tuple[str | None, int]] = {}
        for slot in rev.slots:
            origin = self._origin(rev, slot)
            slots[slot.role] = (slot.sha1, origin)
            if slot.role != "main":
                parts.append(self._content(rev, slot, origin))
        self.prev_slots = slots
        hidden = rev.sha1hidden or rev.texthidden or not rev.sha1
        parts.append("      <sha1/>\n" if hidden else
                     f"      <sha1>{sha1_base36(rev.sha1 or '')}</sha1>\n")
        parts.append("    </revision>\n")
        return "".join(parts)

    def _origin(self, rev: StoredRevision, slot: StoredSlot) -> int:
        previous = self.prev_slots.get(slot.role)
        if (previous is not None and slot.sha1 is not None and previous[0] == slot.sha1
                and rev.parentid == self.prev_revid):
            return previous[1]
        return rev.revid

    def _main_slot(self, rev: StoredRevision) -> str:
        main = rev.slot("main")
        if main is None:
            # No content row at all: say so with an empty text, as MediaWiki does
            # for content it cannot load.
            size = rev.size or 0
            return ("      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
                    f'      <text bytes="{size}" />\n')
        origin = self._origin(rev, main)
        return (element("origin", origin, "      ") + _model_format(main, "      ")
                + self._text(rev, main, "      "))

    def _content(self, rev: StoredRevision, slot: StoredSlot, origin: int) -> str:
        return "".join([
            "      <content>\n",
            element("role", slot.role, "        "),
            element("origin", origin, "        "),
            _model_format(slot, "        "),
            self._text(rev, slot, "        "),
            "      </content>\n",
        ])

    def _text(self, rev: StoredRevision, slot: StoredSlot, indent: str) -> str:
        if rev.texthidden or slot.texthidden:
            # Checked before any read: a hidden text never leaves the store.
            return f'{indent}<text bytes="{slot.size or 0}" deleted="deleted" />\n'
        sha1 = ""
        if slot.sha1 and not rev.sha1hidden:
            sha1 = f' sha1="{sha1_base36(slot.sha1)}"'
        if slot.text_sha1 is None:
            return f'{indent}<text bytes="{slot.size or 0}"{sha1} />\n'
        text = self.mirror.read_text(slot.text_sha1)
        size = slot.size if slot.size is not None else len(text.encode("utf-8", "replace"))
        head = f'{indent}<text bytes="{size}"{sha1} xml:space="preserve"'
        return f"{head}>{escape_text(text)}</text>\n" if text else f"{head} />\n"


def write_upload(out: TextIO, mirror: Mirror, version: dict[str, Any]) -> None:
    """One version of a file as MediaWiki's XmlDumpWriter::writeUpload writes it, the
    bytes base64-encoded a chunk at a time (none when the mirror lacks them); a hidden
    uploader or summary is marked deleted, as in MediaWiki's dumps."""
    indent = "      "
    out.write("    <upload>\n")
    out.write(element("timestamp", version["timestamp"], indent))
    if version["userhidden"]:
        out.write(f'{indent}<contributor deleted="deleted" />\n')
    else:
        name, userid = version["user"] or "", version["userid"] or 0
        who = (element("ip", name, indent + "  ") if not userid and _is_ip(name) else
               element("username", name, indent + "  ") + element("id", userid, indent + "  "))
        out.write(f"{indent}<contributor>\n{who}{indent}</contributor>\n")
    if version["commenthidden"]:
        out.write(f'{indent}<comment deleted="deleted" />\n')
    elif version["comment"]:
        out.write(element("comment", version["comment"], indent))
    out.write(element("filename", version["name"], indent))
    if version["archivename"]:
        out.write(element("archivename", version["archivename"], indent))
    if version["url"]:
        out.write(element("src", version["url"], indent))
    out.write(element("size", version["size"] or 0, indent))
    if version["sha1"]:
        out.write(element("sha1base36", sha1_base36(version["sha1"]), indent))
    out.write(f'{indent}<contents encoding="base64">')
    if version["state"] == STORED:
        with FileBytes(mirror.directory).path(version["sha1"]).open("rb") as source:
            while chunk := source.read(BASE64_CHUNK):
                out.write(base64.b64encode(chunk).decode("ascii"))
    out.write("</contents>\n    </upload>\n")


def _contributor(rev: StoredRevision) -> str:
    if rev.userhidden:
        return '      <contributor deleted="deleted" />\n'
    name = rev.user or ""
    if not rev.userid and _is_ip(name):
        return f"      <contributor>\n{element('ip', name, '        ')}      </contributor>\n"
    return ("      <contributor>\n" + element("username", name, "        ")
            + element("id", rev.userid or 0, "        ") + "      </contributor>\n")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _model_format(slot: StoredSlot, indent: str) -> str:
    model = slot.content_model or "wikitext"
    fmt = slot.content_format or _DEFAULT_FORMATS.get(model, "text/x-wiki")
    return element("model", model, indent) + element("format", fmt, indent)


class _TitleNormaliser:
    """Link targets as page titles: namespace names resolved, first letter upper-cased."""

    def __init__(self, mirror: Mirror) -> None:
        namespaces: dict[str, dict[str, Any]] = mirror.get_siteinfo("namespaces") or {}
        self.names: dict[str, tuple[str, str]] = {}
        for ns in namespaces.values():
            if int(ns["id"]) == 0:
                continue
            local = (ns.get("name", ""), ns.get("case", "first-letter"))
            for name in (ns.get("name"), ns.get("canonical")):
                if name:
                    self.names[name.lower()] = local
        for alias in mirror.get_siteinfo("namespacealiases") or []:
            aliased = namespaces.get(str(alias["id"]))
            if aliased is not None:
                self.names[alias["alias"].lower()] = (aliased.get("name", ""),
                                                      aliased.get("case", "first-letter"))
        main = namespaces.get("0") or {}
        self.main_case = main.get("case", "first-letter")

    def normalise(self, target: str) -> str | None:
        title = " ".join(html.unescape(target).split("#", 1)[0].replace("_", " ").split())
        title = title.lstrip(":").strip()
        prefix, colon, rest = title.partition(":")
        namespace = self.names.get(prefix.strip().lower()) if colon else None
        name, case = namespace if namespace else ("", self.main_case)
        if namespace:
            title = rest.strip()
        if case == "first-letter" and title:
            title = title[0].upper() + title[1:]
        if not title:
            return None
        return f"{name}:{title}" if name else title
