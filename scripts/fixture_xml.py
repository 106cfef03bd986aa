"""Deterministic MediaWiki export XML for the demo and test wikis.

The generated history is meant to look like a small, long-lived wiki: odd and
non-Latin titles, several namespaces, redirects, pages with hundreds of
revisions next to pages with one, reverts, anonymous and registered editors,
minor edits and all sorts of edit summaries.  The same seed and scale always
give byte-identical XML, so test expectations stay stable.

Usable on its own: ``python3 scripts/fixture_xml.py OUT.xml [--scale N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

SITENAME = "DemoWiki"


def _wordlist(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Namespaces of a default MediaWiki 1.39 install (no extensions); the importer
# maps titles by these names, so they must match the target wiki exactly.
NAMESPACES: dict[int, str] = {
    -2: "Media",
    -1: "Special",
    0: "",
    1: "Talk",
    2: "User",
    3: "User talk",
    4: SITENAME,
    5: f"{SITENAME} talk",
    6: "File",
    7: "File talk",
    8: "MediaWiki",
    9: "MediaWiki talk",
    10: "Template",
    11: "Template talk",
    12: "Help",
    13: "Help talk",
    14: "Category",
    15: "Category talk",
}

# Registered contributors.  LOCAL_USERS get real accounts before the import
# (so their imported edits carry real user ids); EXTERNAL_USERS stay unknown
# and show up as "imported>Name" with user id 0, like transwiki imports do.
LOCAL_USERS: tuple[str, ...] = (
    "Alice",
    "Bob Smith",
    "Zoë",
    "Μαρία",
    "李雷",
    "O'Brien",
    "Jean-Luc",
    "Ümit Kaya",
    "TidyBot",
)
EXTERNAL_USERS: tuple[str, ...] = ("Old Timer", "Ἀριστοτέλης")

# Documentation address ranges only; IPv6 written the way MediaWiki stores it.
IP_EDITORS: tuple[str, ...] = (
    "192.0.2.7",
    "192.0.2.44",
    "198.51.100.23",
    "198.51.100.250",
    "203.0.113.5",
    "203.0.113.99",
    "2001:DB8:0:0:0:0:0:1F",
    "2001:DB8:0:0:85A3:0:0:7334",
)

WORDS = _wordlist(
    "river harbour market bridge castle valley railway museum garden library "
    "festival mountain village island lighthouse tower cathedral school street "
    "square station forest lake orchestra theatre university canal mill factory "
    "ancient northern modern famous small large quiet busy historic local royal "
    "built opened closed restored expanded described named founded visited "
    "during after before since around between through across within along"
)
ADJECTIVES = _wordlist(
    "Northern Southern Eastern Western Old New Upper Lower Great Little "
    "Royal Ancient Green Red Silver Golden Stone Iron Crystal Hidden"
)
NOUNS = _wordlist(
    "Harbour Market Bridge Castle Valley Railway Museum Garden Library Festival "
    "Mountain Village Island Lighthouse Tower Cathedral Canal Mill Orchard Abbey"
)
UNICODE_SNIPPETS = (
    "Ça a été très réussi.",
    "Η πόλη είναι γνωστή για το λιμάνι της.",
    "東京は日本の首都です。",
    "Straße und Größe sind üblich.",
    "Dvořák composed it in Spillville.",
    "«Quoted» text — with dashes – and … ellipses.",
)
COMMENTS = (
    "",
    "",
    "typo",
    "copyedit",
    "expanded",
    "added reference",
    "rm unsourced claim",
    "Ορθογραφία – διόρθωση",
    "修正",
    "Überarbeitung der Einleitung",
    "fix link to [[Zürich]]",
    "c/e & wording; see talk",
)
LONG_COMMENT = (
    "Large restructuring of the article: moved the history section above the "
    "geography section, merged two paragraphs that repeated each other, replaced "
    "dead links with archived copies, and added citations for the population "
    "figures (see the discussion on the talk page for the reasoning — "
    "Διαβάστε τη συζήτηση πριν αλλάξετε ξανά)"
)


@dataclass(frozen=True)
class FixtureStats:
    """What a generated fixture holds."""

    pages: int
    revisions: int


@dataclass
class PageSpec:
    """One page to generate: its title and how its history looks."""

    ns: int
    title: str  # full title, with namespace prefix
    revisions: int
    max_bytes: int
    redirect_to: str | None = None
    # After this many content revisions the page turns into a redirect.
    becomes_redirect_at: int | None = None


@dataclass
class Revision:
    """One generated revision, ready to be written."""

    timestamp: datetime
    contributor: str
    is_ip: bool
    comment: str
    minor: bool
    text: str
    extra: str | None = None  # the text of a second slot, role "extra" (model text)


@dataclass
class Article:
    """Mutable article body: sections of sentences."""

    sections: list[tuple[str | None, list[str]]] = field(default_factory=list)
    footer: str = ""

    def render(self) -> str:
        parts: list[str] = []
        for heading, sentences in self.sections:
            if heading is not None:
                parts.append(f"== {heading} ==")
            parts.append(" ".join(sentences))
        if self.footer:
            parts.append(self.footer)
        return "\n\n".join(parts) + "\n"


def sha1_base36(text: str) -> str:
    """SHA-1 of the UTF-8 text in MediaWiki's 31-digit base-36 notation."""
    value = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return out.rjust(31, "0")


def revision_sha1_base36(slots: dict[str, str]) -> str:
    """A revision's SHA-1 as MediaWiki computes it from its slots' texts
    (RevisionSlots::computeSha1): by role, each slot's base-36 SHA-1 folded into the
    next; for one slot, that slot's."""
    folded: str | None = None
    for role in sorted(slots):
        own = sha1_base36(slots[role])
        folded = own if folded is None else sha1_base36(folded + own)
    return folded if folded is not None else sha1_base36("")


# ---------------------------------------------------------------- page plan


def _fixed_pages(unit: str) -> list[PageSpec]:
    """Hand-picked pages: odd titles, namespaces and the very long histories."""

    def t(ns: int, name: str, revs: int, size: int) -> PageSpec:
        prefix = f"{NAMESPACES[ns]}:" if ns else ""
        return PageSpec(ns, prefix + name + unit, revs, size)

    return [
        t(0, "Rock 'n' roll", 600, 30_000),
        t(0, "Ελληνική γλώσσα", 260, 20_000),
        t(4, "Sandbox", 140, 4_000),
        t(0, "Café society", 25, 9_000),
        t(0, "東京", 18, 12_000),
        t(0, "Zürich", 12, 6_000),
        t(0, "AT&T", 9, 3_000),
        t(0, "Smith & Wesson", 4, 2_000),
        t(0, "AC/DC", 30, 8_000),
        t(0, "AC/DC/Discography", 6, 5_000),
        t(0, "Mercury (planet)", 40, 15_000),
        t(0, "Washington, D.C.", 15, 10_000),
        t(0, "St. Louis", 7, 4_000),
        t(0, "Dvořák", 5, 3_000),
        t(0, "Naïve Bayes classifier", 3, 2_500),
        t(0, "C++", 22, 7_000),
        t(0, "Question?", 2, 400),
        t(0, "100% juice", 2, 300),
        t(0, "Stub", 1, 60),
        t(1, "Rock 'n' roll", 35, 6_000),
        t(1, "東京", 4, 1_500),
        t(2, "Alice", 6, 800),
        t(2, "Alice/Sandbox", 20, 3_000),
        t(2, "Zoë/Notes", 8, 1_200),
        t(3, "Bob Smith", 5, 1_000),
        t(4, "About", 10, 2_000),
        t(4, "Policies/Editing", 12, 4_000),
        t(10, "Infobox city", 14, 1_500),
        t(10, "Cite web", 9, 1_200),
        t(10, "Stub", 3, 200),
        t(14, "Cities", 3, 300),
        t(14, "Music", 2, 200),
        t(14, "Ελληνικά", 1, 100),
        t(12, "Contents", 4, 1_000),
    ]


def _redirect_pages(unit: str) -> list[PageSpec]:
    """Plain redirects, plus articles that were later turned into redirects."""
    return [
        PageSpec(0, f"Rock and roll{unit}", 1, 100, redirect_to=f"Rock 'n' roll{unit}"),
        PageSpec(0, f"Rock & Roll{unit}", 2, 100, redirect_to=f"Rock 'n' roll{unit}"),
        PageSpec(0, f"Tokyo{unit}", 1, 100, redirect_to=f"東京{unit}"),
        PageSpec(0, f"Zurich{unit}", 1, 100, redirect_to=f"Zürich{unit}"),
        PageSpec(0, f"Greek language{unit}", 3, 100, redirect_to=f"Ελληνική γλώσσα{unit}"),
        PageSpec(0, f"Washington DC{unit}", 1, 100, redirect_to=f"Washington, D.C.{unit}"),
        PageSpec(4, f"{SITENAME}:SB{unit}", 1, 100, redirect_to=f"{SITENAME}:Sandbox{unit}"),
        PageSpec(0, f"Planet Mercury{unit}", 8, 3_000, redirect_to=f"Mercury (planet){unit}",
                 becomes_redirect_at=6),
    ]


def _generated_pages(rng: random.Random, unit: str, count: int) -> list[PageSpec]:
    """Ordinary articles with short to medium histories."""
    pages: list[PageSpec] = []
    seen: set[str] = set()
    while len(pages) < count:
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS).lower()}"
        if rng.random() < 0.3:
            title += f" of {rng.choice(NOUNS)}"
        if title in seen:
            continue
        seen.add(title)
        roll = rng.random()
        revs = (
            1 if roll < 0.25
            else rng.randint(2, 6) if roll < 0.6
            else rng.randint(7, 25) if roll < 0.9
            else rng.randint(26, 70)
        )
        size = rng.choice((300, 1_500, 4_000, 8_000, 15_000))
        ns = 1 if rng.random() < 0.12 else 0
        full = f"Talk:{title}{unit}" if ns else f"{title}{unit}"
        pages.append(PageSpec(ns, full, revs, size))
    return pages


def plan_pages(rng: random.Random, scale: int) -> list[PageSpec]:
    """All pages of the fixture; each scale unit is a full, distinctly titled set."""
    pages: list[PageSpec] = []
    for index in range(scale):
        unit = "" if index == 0 else f" ({index + 1})"
        pages += _fixed_pages(unit)
        pages += _redirect_pages(unit)
        pages += _generated_pages(rng, unit, 130)
    return pages


# ---------------------------------------------------------------- wikitext


def _sentence(rng: random.Random, links: list[str]) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    if links and rng.random() < 0.35:
        words[rng.randrange(len(words))] = f"[[{rng.choice(links)}]]"
    if rng.random() < 0.1:
        i = rng.randrange(len(words))
        words[i] = f"'''{words[i]}'''"
    text = " ".join(words)
    text = text[0].upper() + text[1:] + "."
    if rng.random() < 0.08:
        text += " " + rng.choice(UNICODE_SNIPPETS)
    if rng.random() < 0.08:
        ref = rng.randint(1, 9999)
        text += f"<ref>{{{{Cite web|url=https://example.org/doc/{ref}|title=Doc {ref}}}}}</ref>"
    return text


def _heading(rng: random.Random) -> str:
    return rng.choice(("History", "Geography", "Culture", "Economy", "See also", "Legacy",
                       "Έργα", "概要", "Early years", "Reception"))


def _new_article(rng: random.Random, spec: PageSpec, links: list[str], size: int) -> Article:
    article = Article(sections=[(None, [_sentence(rng, links)])])
    if spec.ns == 10:
        article.sections[0][1].insert(0, "{{{1|}}} {{{name|{{PAGENAME}}}}}")
        article.footer = "<noinclude>[[Category:Templates]]</noinclude>"
    elif spec.ns in (0, 4):
        article.footer = f"[[Category:{rng.choice(NOUNS)}s]]"
        if size < 1_000:
            article.footer = "{{Stub}}\n" + article.footer
    while len(article.render().encode()) < size:
        _grow(rng, article, links)
    return article


def _grow(rng: random.Random, article: Article, links: list[str]) -> str:
    """Add a sentence or a whole section; returns the touched heading."""
    if rng.random() < 0.12:
        body = [_sentence(rng, links) for _ in range(rng.randint(2, 8))]
        article.sections.append((_heading(rng), body))
        return article.sections[-1][0] or ""
    heading, sentences = rng.choice(article.sections)
    sentences.insert(rng.randint(0, len(sentences)), _sentence(rng, links))
    return heading or ""


def _shrink(rng: random.Random, article: Article) -> str:
    """Remove a sentence, or a whole section when it is the last one."""
    index = rng.randrange(len(article.sections))
    heading, sentences = article.sections[index]
    if len(sentences) > 1:
        sentences.pop(rng.randrange(len(sentences)))
    elif index > 0:
        article.sections.pop(index)
    return heading or ""


def _alter(rng: random.Random, article: Article) -> str:
    """Change one word of one sentence, as a copyedit would."""
    heading, sentences = rng.choice(article.sections)
    i = rng.randrange(len(sentences))
    words = sentences[i].split(" ")
    words[rng.randrange(len(words))] = rng.choice(WORDS)
    sentences[i] = " ".join(words)
    return heading or ""


def _mutate(rng: random.Random, article: Article, links: list[str], cap: int) -> str:
    """One ordinary edit; keeps the article under its size cap."""
    size = len(article.render().encode())
    roll = rng.random()
    if size > cap or roll < 0.12:
        return _shrink(rng, article)
    if roll < 0.4:
        return _alter(rng, article)
    return _grow(rng, article, links)


def _copy(article: Article) -> Article:
    return Article([(h, list(s)) for h, s in article.sections], article.footer)


def _vandalise(rng: random.Random, text: str) -> str:
    if rng.random() < 0.3:
        return ""
    junk = rng.choice(("lol", "HELLO!!!", "asdfghjkl", "Ωραία!!!", "who reads this"))
    cut = rng.randrange(len(text) + 1)
    return text[:cut] + junk + text[cut:]


# ---------------------------------------------------------------- history


@dataclass
class _Editors:
    """Who edits one page, with a page-specific mix of regulars and IPs."""

    regulars: list[str]
    ip_share: float

    @classmethod
    def for_page(cls, rng: random.Random, spec: PageSpec) -> _Editors:
        regulars = rng.sample(LOCAL_USERS, rng.randint(2, 4))
        if rng.random() < 0.3:
            regulars.append(rng.choice(EXTERNAL_USERS))
        if spec.ns in (2, 3):
            owner = spec.title.split(":", 1)[1].split("/")[0]
            regulars = [owner] * 4 + regulars
        return cls(regulars, 0.6 if "Sandbox" in spec.title else 0.25)

    def pick(self, rng: random.Random) -> tuple[str, bool]:
        if rng.random() < self.ip_share:
            return rng.choice(IP_EDITORS), True
        return rng.choice(self.regulars), False


def _timestamps(rng: random.Random, count: int) -> list[datetime]:
    """Distinct, increasing, all in the past (2004 to mid-2024)."""
    start = datetime(2004, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 3650))
    span = int((datetime(2024, 6, 1, tzinfo=UTC) - start).total_seconds())
    seconds = sorted(rng.sample(range(span), count))
    return [start + timedelta(seconds=s) for s in seconds]


def _comment(rng: random.Random, heading: str) -> str:
    roll = rng.random()
    if roll < 0.02:
        return LONG_COMMENT
    if heading and roll < 0.3:
        return f"/* {heading} */ " + rng.choice(COMMENTS[2:])
    return rng.choice(COMMENTS)


def _redirect_history(rng: random.Random, spec: PageSpec) -> Iterator[tuple[str, str]]:
    """(text, comment) pairs of a page that is a redirect from the start."""
    target = spec.redirect_to
    yield f"#REDIRECT [[{target}]]", f"Redirected page to [[{target}]]"
    for i in range(1, spec.revisions):
        tag = rng.choice(("R from alternative name", "R from modification"))
        yield f"#REDIRECT [[{target}]]\n\n{{{{{tag}}}}}" + "\n" * (i % 2), "tag redirect"


def _article_history(
    rng: random.Random, spec: PageSpec, links: list[str]
) -> Iterator[tuple[str, str, bool]]:
    """(text, comment, by_vandal) triples, with vandalism reverts and undos."""
    initial = spec.max_bytes if spec.revisions < 10 else spec.max_bytes // 10
    article = _new_article(rng, spec, links, int(initial * rng.uniform(0.3, 0.9)))
    states = [_copy(article)]
    yield article.render(), "Created page", False
    index = 1
    while index < spec.revisions:
        if spec.becomes_redirect_at is not None and index >= spec.becomes_redirect_at:
            yield f"#REDIRECT [[{spec.redirect_to}]]", f"Merged into [[{spec.redirect_to}]]", False
            index += 1
            continue
        roll = rng.random()
        if roll < 0.04 and index + 1 < spec.revisions:
            yield _vandalise(rng, article.render()), rng.choice(("", "lol")), True
            yield article.render(), "Reverted edits by vandal to last good revision", False
            index += 2
            continue
        if roll < 0.06 and len(states) >= 3:
            # A manual undo back to an older state: same text, same sha1.
            article = _copy(states[-3])
            comment = "Undid two edits: not an improvement"
        else:
            comment = _comment(rng, _mutate(rng, article, links, spec.max_bytes))
        states = [*states[-4:], _copy(article)]
        yield article.render(), comment, False
        index += 1


def page_revisions(rng: random.Random, spec: PageSpec, links: list[str]) -> list[Revision]:
    """The full history of one page."""
    editors = _Editors.for_page(rng, spec)
    if spec.redirect_to is not None and spec.becomes_redirect_at is None:
        steps: Iterator[tuple[str, str, bool]] = (
            (text, comment, False) for text, comment in _redirect_history(rng, spec)
        )
    else:
        steps = _article_history(rng, spec, links)
    revisions: list[Revision] = []
    for when, (text, comment, vandal) in zip(
        _timestamps(rng, spec.revisions), steps, strict=True
    ):
        name, is_ip = (rng.choice(IP_EDITORS), True) if vandal else editors.pick(rng)
        minor = not is_ip and (name == "TidyBot" or rng.random() < 0.15)
        if name == "TidyBot":
            comment = "Bot: normalising links"
        revisions.append(Revision(when, name, is_ip, comment, minor, text))
    return revisions


# ---------------------------------------------------------------- XML writer


def _write_siteinfo(out: TextIO) -> None:
    out.write(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.11/ '
        'http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="en">\n'
        "  <siteinfo>\n"
        f"    <sitename>{SITENAME}</sitename>\n"
        "    <dbname>demowiki</dbname>\n"
        "    <base>http://127.0.0.1/index.php/Main_Page</base>\n"
        "    <generator>MediaWiki 1.39.17</generator>\n"
        "    <case>first-letter</case>\n"
        "    <namespaces>\n"
    )
    for key, name in NAMESPACES.items():
        if name:
            out.write(f'      <namespace key="{key}" case="first-letter">{name}</namespace>\n')
        else:
            out.write(f'      <namespace key="{key}" case="first-letter" />\n')
    out.write("    </namespaces>\n  </siteinfo>\n")


def _write_revision(out: TextIO, rev: Revision, revid: int, parentid: int) -> None:
    who = (
        f"<ip>{escape(rev.contributor)}</ip>" if rev.is_ip
        else f"<username>{escape(rev.contributor)}</username><id>0</id>"
    )
    sha1 = sha1_base36(rev.text)
    out.write(f"    <revision>\n      <id>{revid}</id>\n")
    if parentid:
        out.write(f"      <parentid>{parentid}</parentid>\n")
    out.write(
        f"      <timestamp>{rev.timestamp:%Y-%m-%dT%H:%M:%SZ}</timestamp>\n"
        f"      <contributor>{who}</contributor>\n"
    )
    if rev.minor:
        out.write("      <minor />\n")
    if rev.comment:
        out.write(f"      <comment>{escape(rev.comment)}</comment>\n")
    out.write(
        "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(rev.text.encode())}" sha1="{sha1}" xml:space="preserve">'
        f"{escape(rev.text)}</text>\n"
    )
    if rev.extra is not None:
        out.write(
            "      <content>\n        <role>extra</role>\n        <model>text</model>\n"
            "        <format>text/plain</format>\n"
            f'        <text bytes="{len(rev.extra.encode())}" sha1="{sha1_base36(rev.extra)}"'
            f' xml:space="preserve">{escape(rev.extra)}</text>\n      </content>\n')
        sha1 = revision_sha1_base36({"main": rev.text, "extra": rev.extra})
    out.write(f"      <sha1>{sha1}</sha1>\n    </revision>\n")


def generate_fixture_xml(path: Path, *, seed: int = 1, scale: int = 1) -> FixtureStats:
    """Write the fixture export XML to ``path``; the same arguments give the same bytes."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    rng = random.Random(seed)
    pages = plan_pages(rng, scale)
    links = [p.title for p in pages if p.ns == 0]
    revid = 0
    total = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        _write_siteinfo(out)
        for pageid, spec in enumerate(pages, start=1):
            out.write(f"  <page>\n    <title>{escape(spec.title)}</title>\n")
            out.write(f"    <ns>{spec.ns}</ns>\n    <id>{pageid}</id>\n")
            if spec.redirect_to is not None:
                out.write(f"    <redirect title={quoteattr(spec.redirect_to)} />\n")
            parent = 0
            for rev in page_revisions(rng, spec, links):
                revid += 1
                _write_revision(out, rev, revid, parent)
                parent = revid
            total += spec.revisions
            out.write("  </page>\n")
        total += _write_two_slot_page(out, len(pages) + 1, revid)
        out.write("</mediawiki>\n")
    return FixtureStats(pages=len(pages) + 1, revisions=total)


# A page whose revisions hold a second slot (role "extra", which the demo wikis'
# settings declare), changing in some revisions and kept in the others.
TWO_SLOT_PAGE = "Two slots"


def _write_two_slot_page(out: TextIO, pageid: int, revid: int) -> int:
    """Appended after the generated pages (their random draws stay as they were)."""
    out.write(f"  <page>\n    <title>{TWO_SLOT_PAGE}</title>\n    <ns>0</ns>\n"
              f"    <id>{pageid}</id>\n")
    extras = ["Extra, first.\n", "Extra, first.\n", "Extra, second.\n", "Extra, second.\n"]
    parent = 0
    for number, extra in enumerate(extras, start=1):
        revid += 1
        rev = Revision(datetime(2021, 3, number, 12, tzinfo=UTC), "Admin", False,
                       f"two slots {number}", False, f"Main text, version {number}.\n", extra)
        _write_revision(out, rev, revid, parent)
        parent = revid
    out.write("  </page>\n")
    return len(extras)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1)
    args = parser.parse_args(argv)
    stats = generate_fixture_xml(args.out, seed=args.seed, scale=args.scale)
    print(f"{stats.pages} pages, {stats.revisions} revisions -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
