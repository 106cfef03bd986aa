"""``harvester pages|history|show|search|stats``: read the mirror, print tables or JSON.

The queries are storage's (storage/query.py, storage/search.py); this module
opens the mirror, turns the reader's mistakes into usage errors (exit 2), and
formats. JSON lists are written as they are read, so `pages --json` on a big
mirror starts at once and holds nothing in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from harvester.errors import ConfigError
from storage import attribution, file_attribution, files, query, search
from storage.errors import InvalidQueryError
from storage.mirror import Mirror
from storage.query import PageRow
from storage.selection import parse_timestamp
from storage.stored import StoredRevision

HIDDEN = "(hidden)"
BOLD = ("\x1b[1m", "\x1b[0m")


class ReadUsageError(ConfigError):
    """A title, timestamp or search query that cannot be one."""


@contextmanager
def reading(directory: str) -> Iterator[Mirror]:
    """The open mirror; invalid input becomes a usage error, a closed pipe a quiet end."""
    try:
        with Mirror.open(Path(directory), create=False) as mirror:
            yield mirror
    except InvalidQueryError as exc:
        raise ReadUsageError(str(exc)) from None
    except BrokenPipeError:
        # `harvester pages | head`: the reader has all it wanted. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def write_json_list(out: TextIO, items: Iterable[dict[str, Any]]) -> int:
    out.write("[")
    count = 0
    for item in items:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


# -- pages ------------------------------------------------------------------------


def page_json(page: PageRow) -> dict[str, Any]:
    return {
        "title": page.title,
        "ns": page.ns,
        "pageid": page.pageid,
        "revisions": page.revisions,
        "latest": page.latest_timestamp,
        "length": page.length,
        "redirect": page.is_redirect,
    }


def run_pages(
    directory: str,
    out: TextIO,
    *,
    ns: list[int] | None,
    prefix: str | None,
    redirects: bool | None,
    limit: int | None,
    as_json: bool,
) -> int:
    with reading(directory) as mirror:
        pages = query.list_pages(mirror, ns=ns, prefix=prefix, redirects=redirects, limit=limit)
        if as_json:
            return write_json_list(out, (page_json(p) for p in pages))
        out.write(f"{'pageid':>9} {'ns':>4} {'revs':>7} {'latest':<20} {'length':>9}  title\n")
        count = 0
        for p in pages:
            latest = p.latest_timestamp or "-"
            length = "-" if p.length is None else f"{p.length:,}"
            redirect = "  (redirect)" if p.is_redirect else ""
            out.write(f"{p.pageid:>9} {p.ns:>4} {p.revisions:>7,} {latest:<20} {length:>9}"
                      f"  {p.title}{redirect}\n")  # fmt: skip
            count += 1
        return count


# -- history ----------------------------------------------------------------------


def revision_json(rev: StoredRevision) -> dict[str, Any]:
    hidden = [name for name, flag in (("text", rev.texthidden), ("user", rev.userhidden),
              ("comment", rev.commenthidden)) if flag]  # fmt: skip
    record: dict[str, Any] = {
        "revid": rev.revid,
        "parentid": rev.parentid,
        "timestamp": rev.timestamp,
        "user": None if rev.userhidden else rev.user,
        "minor": rev.minor,
        "size": rev.size,
        "comment": None if rev.commenthidden else rev.comment,
        "tags": rev.tags,
    }
    if hidden:
        record["hidden"] = hidden
    return record


def run_history(
    directory: str, out: TextIO, title: str, *, limit: int | None, as_json: bool
) -> int:
    with reading(directory) as mirror:
        page = query.find_page(mirror, title)
        revisions = query.history(mirror, page.pageid, limit)
        if as_json:
            return write_json_list(out, (revision_json(r) for r in revisions))
        count = 0
        for rev in revisions:
            user = HIDDEN if rev.userhidden else rev.user or ""
            comment = HIDDEN if rev.commenthidden else " ".join((rev.comment or "").split())
            size = "-" if rev.size is None else f"{rev.size:,}"
            minor = "m" if rev.minor else " "
            out.write(f"{rev.revid:>10} {rev.timestamp} {minor} {size:>9}  {user:<20}  {comment}\n")
            count += 1
        return count


# -- show -------------------------------------------------------------------------


def run_show(
    directory: str,
    out: TextIO,
    title: str | None,
    *,
    revid: int | None,
    at: str | None,
    slot: str,
    as_json: bool,
) -> None:
    """The text of one revision: the latest of the page, ``revid``, or the one current ``at``."""
    if revid is not None and at is not None:
        raise ReadUsageError("give --rev or --at, not both")
    if title is None and revid is None:
        raise ReadUsageError("give a page TITLE, or --rev ID")
    with reading(directory) as mirror:
        rev = _pick_revision(mirror, title, revid, at)
        text = query.slot_text(mirror, rev, slot)
        if as_json:
            found = rev.slot(slot)
            json.dump({"title": rev.title, "ns": rev.ns, "pageid": rev.pageid,
                       "revid": rev.revid, "timestamp": rev.timestamp, "slot": slot,
                       "model": found.content_model if found else None, "text": text},
                      out, ensure_ascii=False)  # fmt: skip
            out.write("\n")
        else:
            out.write(text)  # as stored, byte for byte: `show X > file` is the wikitext


def _pick_revision(
    mirror: Mirror, title: str | None, revid: int | None, at: str | None
) -> StoredRevision:
    if revid is not None:
        rev = query.revision(mirror, revid)
        if title is not None:
            page = query.find_page(mirror, title)
            if rev.pageid != page.pageid:
                raise ReadUsageError(f"revision {revid} is of {rev.title!r}, not {page.title!r}")
        return rev
    assert title is not None
    page = query.find_page(mirror, title)
    if at is not None:
        return query.revision_at(mirror, page, parse_timestamp(at))
    return query.latest_revision(mirror, page)


# -- search -----------------------------------------------------------------------


def run_search(
    directory: str,
    out: TextIO,
    text: str,
    *,
    ns: list[int] | None,
    limit: int,
    as_json: bool,
    quiet: bool = False,
) -> int:
    with reading(directory) as mirror:
        updated = search.refresh(mirror)
        # A note for people, who may wait for a first build; scripts need none.
        if updated and not quiet and sys.stderr.isatty():
            print(f"search index: {updated:,} pages updated", file=sys.stderr)
        marks = BOLD if not as_json and out.isatty() else ("«", "»")
        hits = search.search(mirror, text, ns=ns, limit=limit, marks=marks)
        if as_json:
            return write_json_list(out, ({"title": h.title, "ns": h.ns, "pageid": h.pageid,
                                          "revid": h.revid, "snippet": h.snippet,
                                          "score": round(h.score, 6)} for h in hits))  # fmt: skip
        count = 0
        for hit in hits:
            out.write(f"{hit.title}  (pageid {hit.pageid})\n    {hit.snippet}\n")
            count += 1
        return count


# -- stats ------------------------------------------------------------------------


def run_stats(directory: str, out: TextIO, *, as_json: bool) -> dict[str, Any]:
    with reading(directory) as mirror:
        stats = query.mirror_stats(mirror)
    if as_json:
        json.dump(stats, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return stats
    ratio = stats["compression_ratio"]
    lines = [
        ("wiki", _wiki_line(stats["wiki"])),
        ("mirror", stats["mirror"]),
        ("pages", f"{stats['pages']:,}"),
        ("revisions", f"{stats['revisions']:,}"),
        ("editors", f"{stats['editors']:,}"),
        ("texts", f"{_size(stats['text_bytes'])} in all revisions, "
                  f"{_size(stats['distinct_text_bytes'])} in {stats['texts']:,} distinct texts"),
        ("stored", f"{_size(stats['stored_text_bytes'])} compressed"
                   + (f" (ratio {ratio})" if ratio else "")
                   + f"; {_size(stats['file_bytes'])} on disk in all"),
        ("files", _files_line(stats["files"])),
        ("last run", _run_line(stats["last_run"])),
    ]  # fmt: skip
    for name, value in lines:
        out.write(f"{name:<10} {value}\n")
    out.write("namespaces\n")
    for ns in stats["namespaces"]:
        name = "(main)" if ns["ns"] == 0 else ns["name"] or "?"
        out.write(f"{ns['ns']:>10} {name:<20} {ns['pages']:>10,} pages"
                  f" {ns['revisions']:>12,} revisions\n")  # fmt: skip
    return stats


def _wiki_line(wiki: dict[str, Any]) -> str:
    name = wiki["name"] or "unknown"
    if wiki["database"]:
        name += f" ({wiki['database']})"
    return f"{name}, {wiki['api']}" if wiki["api"] else f"{name}, not attached to its API"


def _files_line(counts: dict[str, Any]) -> str:
    if not counts["versions"]:
        return "none (crawl --files copies them)"
    states = ", ".join(f"{n:,} {state}" for state, n in sorted(counts["versions_by_state"].items()))
    return (f"{counts['files']:,} files, {counts['versions']:,} versions ({states}); "
            f"{_size(counts['content_bytes'])} in {counts['contents']:,} distinct contents")


def _run_line(run: dict[str, Any] | None) -> str:
    if run is None:
        return "none"
    return f"{run['command']} {run['started']} to {run['finished'] or '?'}, {run['status']}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


# -- attribution ------------------------------------------------------------------


def run_attribution(
    directory: str,
    out: TextIO,
    titles: list[str],
    *,
    every_page: bool,
    fmt: str,
    exclude_bots: bool,
) -> int:
    """Attribution lines for the titled pages and files (or all); a warning when the
    licence is unknown."""
    if bool(titles) == every_page:
        raise ReadUsageError("give page TITLEs, or --all")
    with reading(directory) as mirror:
        site = attribution.load_site(mirror)
        # Looked up first, so a mistyped title fails before anything is printed.
        if titles:
            targets = [attribution_target(mirror, title) for title in titles]
        else:
            targets = [*((PAGE, p) for p in attribution.exported_pageids(mirror)),
                       *((FILE, n) for n in files.file_names(mirror))]
        if not site.licence_known and fmt != "json":  # JSON carries it in a field
            print(f"harvester: warning: {attribution.UNKNOWN_LICENCE_WARNING}", file=sys.stderr)

        def credits() -> Iterator[tuple[Any, Any]]:
            for kind, target in targets:
                if kind == FILE:
                    found = file_attribution.file_attribution(mirror, site, str(target))
                    if found.warning and fmt != "json":
                        print(f"harvester: warning: {found.title}: {found.warning}",
                              file=sys.stderr)
                    yield file_attribution, found
                else:
                    yield attribution, attribution.page_attribution(
                        mirror, site, int(target), exclude_bots=exclude_bots)

        if fmt == "json":
            return write_json_list(out, (kind.to_json(f, site) for kind, f in credits()))
        count = 0
        for kind, one in credits():
            out.write(kind.FORMATTERS[fmt](one, site) + "\n")
            count += 1
        return count


PAGE, FILE = "page", "file"


def attribution_target(mirror: Mirror, title: str) -> tuple[str, int | str]:
    """A title's file, when it names one the mirror holds, else its page."""
    ns, full = query.title_parser(mirror).parse(title)
    if ns == files.FILE_NAMESPACE:
        name = full.split(":", 1)[1].replace(" ", "_")
        if files.file_versions(mirror, name):
            return FILE, name
    return PAGE, query.find_page(mirror, title).pageid


# -- files ------------------------------------------------------------------------


def run_files(directory: str, out: TextIO, *, as_json: bool) -> int:
    """Each file with its current version; returns how many."""
    with reading(directory) as mirror:
        found = files.iter_files(mirror)
        if as_json:
            return write_json_list(out, found)
        count = 0
        for row in found:
            size = _size(row["size"]) if row["size"] is not None else "?"
            out.write(f"{row['name'].replace('_', ' ')}\t{row['versions']} versions\t{size}\t"
                      f"{row['mime'] or '?'}\t{row['timestamp']}\t{row['state']}\n")
            count += 1
        return count


def run_file(directory: str, title: str, *, at: str | None, output: str | None,
             as_json: bool) -> dict[str, Any]:
    """The bytes of one version of a file to ``output`` (standard output by default);
    with ``as_json`` its metadata on standard output instead (and the bytes only to
    ``output``)."""
    with reading(directory) as mirror:
        name = query.file_name(mirror, title)
        version = files.version_at(mirror, name, None if at is None else parse_timestamp(at))
        if as_json:
            json.dump(version, sys.stdout, ensure_ascii=False)
            sys.stdout.write("\n")
        if output is not None or not as_json:
            path = files.version_bytes_path(mirror, version)
            if output is None:
                sys.stdout.flush()
                with path.open("rb") as source:
                    shutil.copyfileobj(source, sys.stdout.buffer)
            else:
                shutil.copyfile(path, output)
    return version
