"""Page titles as MediaWiki normalises them, so that ``show main_page`` finds "Main Page".

The rules follow MediaWiki's TitleParser, for the parts a reader types:

* underscores are spaces, runs of whitespace collapse to one space, and the
  title is trimmed; a single leading colon (a link to the main namespace) is
  dropped;
* text before the first colon that names a namespace, case-insensitively, by
  its local name, its canonical (English) name or an alias, selects that
  namespace, and the title is written with the namespace's local name;
* the first letter is upper-cased in namespaces whose case is "first-letter"
  (nearly all of them; Wiktionary's main namespace is the usual exception).

The namespaces come from the mirror's ``namespaces`` and ``namespace_aliases``
tables (the wiki's siteinfo). A mirror without them falls back to MediaWiki's
built-in namespaces, all first-letter.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from .errors import InvalidQueryError

# MediaWiki's built-in namespaces (canonical names), for mirrors without siteinfo.
DEFAULT_NAMESPACES: dict[int, str] = {
    -2: "Media", -1: "Special", 0: "", 1: "Talk", 2: "User", 3: "User talk",
    4: "Project", 5: "Project talk", 6: "File", 7: "File talk", 8: "MediaWiki",
    9: "MediaWiki talk", 10: "Template", 11: "Template talk", 12: "Help", 13: "Help talk",
    14: "Category", 15: "Category talk",
}  # fmt: skip
DEFAULT_ALIASES: dict[str, int] = {"Image": 6, "Image talk": 7}

# MediaWiki treats these as spaces in titles (plus the underscore itself).
_SPACES = re.compile(r"[ _\u00a0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# Characters MediaWiki never allows in a title ($wgLegalTitleChars' complement).
_ILLEGAL = re.compile(r"[#<>\[\]|{}\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Namespace:
    id: int
    name: str  # local name, as it appears in the wiki's titles ("" for the main namespace)
    case_mode: str  # "first-letter" or "case-sensitive"


class TitleParser:
    """Parses user-typed titles into (namespace id, title as stored in ``pages``)."""

    def __init__(self, namespaces: list[Namespace], aliases: dict[str, int]) -> None:
        self.namespaces = {ns.id: ns for ns in namespaces}
        if 0 not in self.namespaces:
            self.namespaces[0] = Namespace(0, "", "first-letter")
        # Names are matched case-insensitively and with spaces normalised, as MediaWiki does.
        self._by_name: dict[str, int] = {}
        for name, ns_id in aliases.items():
            self._by_name[_fold(name)] = ns_id
        for ns in namespaces:
            if ns.name:
                self._by_name[_fold(ns.name)] = ns.id

    @classmethod
    def from_db(cls, conn: sqlite3.Connection) -> TitleParser:
        rows = conn.execute("SELECT id, name, canonical, case_mode FROM namespaces").fetchall()
        if not rows:
            defaults = [Namespace(i, n, "first-letter") for i, n in DEFAULT_NAMESPACES.items()]
            return cls(defaults, DEFAULT_ALIASES)
        namespaces = [Namespace(int(i), name or "", case or "first-letter")
                      for i, name, _, case in rows]  # fmt: skip
        # Canonical names work like aliases: "Project:X" on a wiki that calls it "Wikipedia".
        aliases = {canonical: int(i) for i, _, canonical, _ in rows if canonical}
        for alias, ns_id in conn.execute("SELECT alias, id FROM namespace_aliases"):
            aliases[alias] = int(ns_id)
        return cls(namespaces, aliases)

    def namespace_name(self, ns_id: int) -> str | None:
        ns = self.namespaces.get(ns_id)
        return None if ns is None else ns.name

    def parse(self, text: str, default_ns: int = 0) -> tuple[int, str]:
        """(ns, full title) for a title typed by someone; InvalidQueryError if it cannot be one.

        ``default_ns`` applies when the text names no namespace (as for
        ``pages --namespace 10 --prefix Info``).
        """
        ns_id, rest = self._split(text, default_ns)
        if not rest:
            raise InvalidQueryError(f"{text!r} is not a page title (nothing after the namespace)")
        bad = _ILLEGAL.search(rest)
        if bad:
            raise InvalidQueryError(f"{text!r} is not a page title (it contains {bad.group()!r})")
        return ns_id, self.full_title(ns_id, rest)

    def parse_prefix(self, text: str, default_ns: int = 0) -> tuple[int, str]:
        """Like parse(), for the start of titles: may be empty after the namespace."""
        ns_id, rest = self._split(text, default_ns)
        return ns_id, self.full_title(ns_id, rest)

    def full_title(self, ns_id: int, rest: str) -> str:
        ns = self.namespaces.get(ns_id)
        if rest and (ns is None or ns.case_mode == "first-letter"):
            rest = _ucfirst(rest)
        name = ns.name if ns is not None else DEFAULT_NAMESPACES.get(ns_id, "")
        return f"{name}:{rest}" if name else rest

    def _split(self, text: str, default_ns: int) -> tuple[int, str]:
        clean = _SPACES.sub(" ", text).strip()
        if clean.startswith(":"):
            clean = clean[1:].strip()
            default_ns = 0
        prefix, colon, rest = clean.partition(":")
        if colon:
            ns_id = self._by_name.get(_fold(prefix))
            if ns_id is not None:
                return ns_id, rest.strip()
        return default_ns, clean


def _fold(name: str) -> str:
    return _SPACES.sub(" ", name).strip().casefold()


def _ucfirst(text: str) -> str:
    # One code point only: upper() may give several ("ß" -> "SS"), where MediaWiki
    # keeps the letter; such titles are stored with the letter unchanged.
    upper = text[0].upper()
    return (upper if len(upper) == 1 else text[0]) + text[1:]
