"""Importing MediaWiki XML dumps into a mirror: the store the crawler writes, faster.

Revisions go through Mirror.write_batch like a crawl's, in batches bounded by
revisions and by text size (so one page with 15,000 revisions of 70 KB never
sits in memory whole), each batch committed together with the import's
checkpoint. The checkpoint is named after the file (``crawl/dump/NAME``: sync
treats a mirror whose ``crawl/`` checkpoints are all done as fully copied) and
says how far the import got: pages wholly stored, then revisions of the next
page. A killed import run again parses its way back there without storing
(XML parsing is cheap next to compressing texts) and goes on; every write is
an upsert, so nothing is duplicated either way. The hash of the file's first
MiB is in the checkpoint too: a different file under the same name is refused
instead of being resumed at a wrong place (a truncated download completed
later is the same file, and resumes).

Reading (decompression, XML, records) runs in a second process when there is a
second CPU (storage/readahead.py), while this one stores: on a 2-CPU machine the
fixture wiki's dump imported 22 % faster than in one process, the 1 GB lzma
Anarchism history 18 % (bench/import_dump.py, docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import readahead
from .dumpxml import (
    DumpError,
    DumpPage,
    DumpReader,
    PageEnd,
    SiteInfo,
    fingerprint,
    open_dump,
    read_siteinfo,
)
from .errors import MirrorMismatchError, StorageError
from .mirror import Mirror
from .records import PageRecord, RevisionBatch, RevisionRecord

CHECKPOINT_PREFIX = "crawl/dump/"
# A batch ends at whichever comes first. Fixture wiki (scale 10): 250 -> 1000
# revisions per batch gained 4 %, more gained nothing measurable.
BATCH_REVISIONS = 1000
BATCH_TEXT_CHARS = 16 * 1024 * 1024
BATCH_PAGES = 1000

Progress = Callable[[int, int], None]  # (new revisions stored, XML bytes read so far)


@dataclass
class ImportState:
    """The checkpoint's state: where a resumed import of this file continues."""

    file: str
    fingerprint: str
    pages: int = 0  # pages wholly stored
    in_page: int = 0  # revisions of the next page already stored
    last_revid: int | None = None  # the last of those, to check the file is the same
    revisions: int = 0  # revisions stored by this import so far
    newest: str | None = None  # newest revision timestamp so far


@dataclass
class ImportResult:
    file: str
    pages: int
    revisions: int
    new_revisions: int
    xml_bytes: int
    seconds: float
    newest: str | None
    already_done: bool = False


def checkpoint_name(path: Path) -> str:
    return CHECKPOINT_PREFIX + path.name


# -- which wiki ----------------------------------------------------------------------


def same_wiki(site: SiteInfo, general: dict[str, Any]) -> bool:
    """Whether a dump's siteinfo and an Action API ``general`` siteinfo name one wiki.

    The database name (dbname, the API's wikiid) must match when both give it,
    and the host of the main page URL: not its scheme (wikis moved to https)
    nor its port.
    """
    theirs_db = general.get("wikiid")
    if site.dbname and theirs_db and site.dbname != theirs_db:
        return False
    theirs = general.get("base") or general.get("server") or ""
    theirs_host = urlsplit(theirs).hostname
    return not (site.host and theirs_host and site.host != theirs_host.lower())


def describe_general(general: dict[str, Any]) -> str:
    return f"{general.get('wikiid') or general.get('sitename') or '?'} ({general.get('base')})"


def check_same_wiki(mirror: Mirror, site: SiteInfo, name: str) -> None:
    general = mirror.get_siteinfo("general")
    if general and not same_wiki(site, general):
        raise MirrorMismatchError(
            f"{name} is a dump of {site.describe()}, but mirror {mirror.directory} "
            f"holds {describe_general(general)}")


def check_importable(mirror: Mirror) -> None:
    """Refuse a mirror that a crawl or sync has written: a dump is older than what it
    holds and would bring back texts the wiki has hidden since."""
    row = mirror.db.execute(
        "SELECT command FROM runs WHERE command IN ('crawl', 'sync') LIMIT 1").fetchone()
    if row is not None:
        raise StorageError(
            f"mirror {mirror.directory} has been written by harvester {row[0]}: import dumps "
            "into a new mirror (then attach it with --wiki and sync it)")


def store_siteinfo(mirror: Mirror, site: SiteInfo) -> None:
    """Keep the dump's siteinfo as the ``dump`` section, and as the mirror's siteinfo
    unless it has one already (a live wiki's, recorded by --wiki, says more)."""
    if not mirror.get_siteinfo("general"):
        mirror.save_siteinfo(site.as_api())
    mirror.save_siteinfo({"dump": site.as_record()})


# -- the import ------------------------------------------------------------------------


def import_dump(
    mirror: Mirror, path: Path, progress: Progress | None = None, *, parallel: bool = True
) -> ImportResult:
    """Import one dump file (resuming a started import of it); idempotent once done.

    ``parallel``: read the dump in a second process (storage/readahead.py) when
    the machine has more than one CPU.
    """
    began = time.monotonic()
    name = checkpoint_name(path)
    state = ImportState(file=path.name, fingerprint=fingerprint(path))
    checkpoint = mirror.get_checkpoint(name)
    if checkpoint is not None and checkpoint.state is not None:
        stored = ImportState(**checkpoint.state)
        if stored.fingerprint != state.fingerprint:
            raise DumpError(
                f"mirror {mirror.directory} holds an import of another file named {path.name}; "
                "give this one another name")
        state = stored
        if checkpoint.done:
            return ImportResult(path.name, state.pages, state.revisions, 0, 0,
                                time.monotonic() - began, state.newest, already_done=True)
    site = read_siteinfo(path)
    check_same_wiki(mirror, site, path.name)
    store_siteinfo(mirror, site)
    batches: Iterator[Step]
    if parallel and readahead.available():
        batches = readahead.read_ahead(functools.partial(batches_of, path, state))
    else:
        batches = batches_of(path, state)
    new = xml_bytes = 0
    for step in batches:
        written = mirror.write_batch(step.batch, name, step.state, step.done)
        new += written
        xml_bytes = step.xml_bytes
        state = ImportState(**step.state)
        if progress is not None:
            progress(written, xml_bytes)
    set_high_water(mirror)
    return ImportResult(path.name, state.pages, state.revisions, new, xml_bytes,
                        time.monotonic() - began, state.newest)


@dataclass
class Step:
    """One batch to store, with the checkpoint state once it is stored."""

    batch: RevisionBatch
    state: dict[str, Any]
    xml_bytes: int  # read from the file so far
    done: bool


def batches_of(path: Path, state: ImportState) -> Iterator[Step]:
    """The dump's revisions from where ``state`` says the import got to, in batches."""
    with open_dump(path) as stream:
        reader = DumpReader(stream, path.name, skip_pages=state.pages)
        yield from _Batches(state, reader).steps()


class _Batches:
    """One pass over a dump, cut into batches; each carries the checkpoint state after it."""

    def __init__(self, state: ImportState, reader: DumpReader) -> None:
        self.state = state
        self.reader = reader
        self.batch = RevisionBatch(pages=[], revisions=[])
        self.chars = 0
        # the page being read: how many of its revisions were seen, and its latest one
        self.position = 0
        self.latest: RevisionRecord | None = None
        self.skip_in_page = state.in_page

    def steps(self) -> Iterator[Step]:
        for item in self.reader.items():
            if isinstance(item, RevisionRecord):
                self.revision(item)
            elif isinstance(item, DumpPage):
                self.position, self.latest = 0, None
                self.batch.pages.append(PageRecord(item.pageid, item.ns, item.title,
                                                   is_redirect=item.redirect))
            elif isinstance(item, PageEnd):
                self.page_end(item.page)
            if self.full():
                yield self.take(done=False)
        yield self.take(done=True)

    def revision(self, rev: RevisionRecord) -> None:
        self.position += 1
        if self.latest is None or (rev.timestamp, rev.revid) > (self.latest.timestamp,
                                                               self.latest.revid):
            self.latest = rev
        if self.position <= self.skip_in_page:  # stored before the import was interrupted
            if self.position == self.skip_in_page and rev.revid != self.state.last_revid:
                raise DumpError(f"{self.reader.name} is not the file whose import this mirror "
                                f"began (revision {rev.revid} where {self.state.last_revid} was)")
            return
        self.batch.revisions.append(rev)
        self.chars += sum(len(slot.utf8 or slot.text or "") for slot in rev.slots)
        state = self.state
        state.in_page, state.last_revid = self.position, rev.revid
        state.revisions += 1
        if state.newest is None or rev.timestamp > state.newest:
            state.newest = rev.timestamp

    def page_end(self, page: DumpPage) -> None:
        latest = self.latest
        record = PageRecord(page.pageid, page.ns, page.title, is_redirect=page.redirect)
        if latest is not None:
            main = next((slot for slot in latest.slots if slot.role == "main"), None)
            # MediaWiki's page_len is the main slot's size, the revision's that of all
            record.latest_revid = latest.revid
            record.length = main.size if main is not None and main.size is not None \
                else latest.size
            record.content_model = main.content_model if main else None
        pages = self.batch.pages
        if pages and pages[-1].pageid == page.pageid:
            pages[-1] = record
        else:
            pages.append(record)
        self.state.pages += 1
        self.state.in_page, self.state.last_revid = 0, None
        self.skip_in_page = 0

    def full(self) -> bool:
        batch = self.batch
        return (len(batch.revisions) >= BATCH_REVISIONS or self.chars >= BATCH_TEXT_CHARS
                or len(batch.pages) >= BATCH_PAGES)

    def take(self, *, done: bool) -> Step:
        step = Step(self.batch, asdict(self.state), self.reader.bytes_read, done)
        self.batch = RevisionBatch(pages=[], revisions=[])
        self.chars = 0
        return step


# -- after the import ----------------------------------------------------------------


def dump_checkpoints_done(mirror: Mirror) -> bool:
    checkpoints = mirror.list_checkpoints(CHECKPOINT_PREFIX)
    return bool(checkpoints) and all(cp.done for cp in checkpoints)


def newest_imported(mirror: Mirror) -> str | None:
    stamps = [str(cp.state["newest"]) for cp in mirror.list_checkpoints(CHECKPOINT_PREFIX)
              if cp.state and cp.state.get("newest")]
    return max(stamps) if stamps else None


def set_high_water(mirror: Mirror) -> str | None:
    """Once every dump is in: sync continues from the newest revision they hold.

    Changes made after that revision reach recentchanges later than it, so
    nothing the dump lacks is older; what the dump has already (hiding a
    revision after its last edit, say) is applied again, which changes nothing.
    """
    if not dump_checkpoints_done(mirror):
        return None
    newest = newest_imported(mirror)
    known = mirror.get_meta("sync_high_water")
    if newest is not None and (known is None or known < newest):
        mirror.set_meta("sync_high_water", newest)
        return newest
    return known
