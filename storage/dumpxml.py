"""Reading MediaWiki XML dumps (``dumpBackup.php``, Special:Export) as a stream.

The file is read in chunks through expat (C speed); each ``<revision>`` becomes
a RevisionRecord as soon as it ends and nothing else of it is kept, so memory
stays flat however long a page history or a dump is.

Compression is recognised by its magic bytes (``.lzma`` by its suffix, the
format has no reliable magic): gzip, bzip2, zstd, xz and lzma are read with
Python's own modules, 7z through the ``7z x -so`` program.

Export schemas 0.3 to 0.11 are read. What a dump says and the store keeps:

* ``<contributor deleted="deleted"/>``, ``<comment deleted="deleted"/>``,
  ``<text deleted="deleted"/>``: the matching hidden flag, the value absent,
  as the Action API reports it. For hidden text the dump still prints the
  size and the text's SHA-1; the size is kept, the SHA-1 is not (the API
  withholds it too, and it would confirm a guess at the hidden text).
* A missing ``<comment>`` is the empty comment; a missing ``<parentid>``
  means the first revision (0, as the API says) from schema 0.7 on, where
  the element exists, and unknown (None) before it.
* SHA-1s (base 36 in dumps) become 40 hex digits. A visible text without
  one (old schemas, or dumps written before MediaWiki filled them in: an
  empty ``<sha1/>``) gets the SHA-1 of the text, which is what MediaWiki
  computes for it.
* ``<content>`` elements (schema 0.11) are the revision's other slots; the
  revision's size is the sum of its slots' sizes, as in MediaWiki.
* Not in dumps, so left empty: change tags, and whether a revision deletion
  was a suppression.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import lzma
import pyexpat
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, cast
from urllib.parse import urlsplit

import zstandard

from .errors import StorageError
from .records import RevisionRecord, SlotRecord

EXPORT_NS = "http://www.mediawiki.org/xml/export-"
# Every schema MediaWiki has written: 0.3 (2005) to 0.11 (1.35 and later).
KNOWN_SCHEMAS = tuple(f"0.{n}" for n in range(3, 12))
CHUNK = 1 << 20
# zstd frames written with --long=31 need a window this big.
ZSTD_MAX_WINDOW = 1 << 31

_READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error, zstandard.ZstdError)


class DumpError(StorageError):
    """The dump file cannot be read: not a dump, damaged, truncated, or of an unknown schema."""


@dataclass
class SiteInfo:
    """A dump's ``<siteinfo>``: which wiki it is from, and its namespaces."""

    schema: str
    sitename: str | None = None
    dbname: str | None = None
    base: str | None = None
    generator: str | None = None
    case: str | None = None
    lang: str | None = None
    # (key, local name, case) for each <namespace>
    namespaces: list[tuple[int, str, str | None]] = field(default_factory=list)

    @property
    def host(self) -> str | None:
        return urlsplit(self.base).hostname if self.base else None

    def describe(self) -> str:
        return " ".join(part for part in (self.dbname, f"({self.base})" if self.base else None)
                        if part) or "an unnamed wiki"

    def as_record(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "sitename": self.sitename, "dbname": self.dbname,
            "base": self.base, "generator": self.generator, "case": self.case,
            "lang": self.lang,
            "namespaces": [{"key": k, "name": n, "case": c} for k, n, c in self.namespaces],
        }

    def as_api(self) -> dict[str, Any]:
        """The same facts shaped like the Action API's siteinfo (what the mirror stores)."""
        general: dict[str, Any] = {
            "sitename": self.sitename, "wikiid": self.dbname, "base": self.base,
            "generator": self.generator, "case": self.case, "lang": self.lang,
        }
        if self.base:
            parts = urlsplit(self.base)
            general["server"] = f"{parts.scheme}://{parts.netloc}"
            # base is the main page's URL: the article path with the title for $1
            if parts.path.count("/") >= 2 and not parts.query:
                general["articlepath"] = parts.path.rsplit("/", 1)[0] + "/$1"
        namespaces = {
            str(key): {"id": key, "name": name, "case": case or self.case or "first-letter"}
            for key, name, case in self.namespaces
        }
        return {"general": {k: v for k, v in general.items() if v is not None},
                "namespaces": namespaces}


class DumpPage(NamedTuple):
    """A ``<page>``'s own fields, before its revisions."""

    pageid: int
    ns: int
    title: str
    redirect: bool | None  # None: the schema (0.3) cannot say


class PageEnd(NamedTuple):
    """The end of a page: all its revisions have been yielded."""

    page: DumpPage


DumpItem = DumpPage | RevisionRecord | PageEnd


# -- opening files ------------------------------------------------------------------


def compression_of(path: Path, head: bytes) -> str:
    """The compression of a dump file, from its first bytes (or its suffix, for lzma)."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if path.suffix.lower() == ".lzma" or head.startswith(b"\x5d\x00\x00"):
        return "lzma"
    return "none"


def fingerprint(path: Path) -> str:
    """SHA-1 of the file's first MiB: tells a resumed import it reads the same dump.

    Not the size: a dump whose download was cut short, then completed, is the
    same dump, and its import resumes.
    """
    try:
        with path.open("rb") as fh:
            head = fh.read(CHUNK)
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    return hashlib.sha1(head).hexdigest()


@contextlib.contextmanager
def open_dump(path: Path) -> Iterator[IO[bytes]]:
    """The dump's XML bytes, decompressed as they are read."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror}") from None
    with raw:
        try:
            head = raw.read(8)
            raw.seek(0)
        except OSError as exc:
            raise DumpError(f"cannot read {path}: {exc.strerror}") from None
        kind = compression_of(path, head)
        if kind == "7z":
            with _seven_zip(path) as stream:
                yield stream
        else:
            with _decompressing(kind, raw) as stream:
                yield stream


def _decompressing(kind: str, raw: IO[bytes]) -> IO[bytes]:
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if kind == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(raw, mode="rb"))
    if kind == "zstd":
        decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        reader = decompressor.stream_reader(raw, read_across_frames=True, closefd=False)
        return cast(IO[bytes], reader)
    if kind in ("xz", "lzma"):
        fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
        return cast(IO[bytes], lzma.LZMAFile(raw, mode="rb", format=fmt))
    return raw


def seven_zip_program() -> str | None:
    for name in ("7z", "7za", "7zz"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def _seven_zip(path: Path) -> Iterator[IO[bytes]]:
    program = seven_zip_program()
    if program is None:
        raise DumpError(
            f"{path} is a 7z archive and no 7z program was found: install p7zip-full "
            "(or 7zip), or unpack it first")
    # stderr to a file, not a pipe: a full pipe would stall 7z.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([program, "x", "-so", str(path)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        try:
            yield process.stdout
            process.stdout.read()  # whatever follows </mediawiki>
            code: int | None = process.wait()
        except DumpError:
            # 7z failing mid-way looks like a truncated file: its own message says more
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            code = process.poll()
            if not code:
                raise
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()
        if code:
            errors.seek(0)
            lines = [line.strip() for line in errors.read().decode(errors="replace").splitlines()
                     if line.strip()]
            raise DumpError(f"7z cannot unpack {path}: {lines[-1] if lines else 'failed'}")


# -- parsing --------------------------------------------------------------------------


def base36_to_hex(value: str | None) -> str | None:
    """A base-36 SHA-1 as MediaWiki writes it in dumps, as 40 hex digits (None if empty)."""
    if not value:
        return None
    try:
        number = int(value, 36)
    except ValueError:
        return None
    return format(number, "040x") if number < 1 << 160 else None


# Elements whose children are collected into a dict, by (parent, name). Any
# other element directly under one of them is a field: its text goes into the
# parent's dict under its name, its attributes under name + "@"; elements
# deeper than that only add to the field's text.
_CONTAINERS = {
    ("", "mediawiki"), ("mediawiki", "siteinfo"), ("siteinfo", "namespaces"),
    ("mediawiki", "page"), ("page", "revision"), ("revision", "contributor"),
    ("revision", "content"),
}
# Inside a page that a resumed import skips, these keep no text.
_SKIPPED = frozenset(("revision", "contributor", "content"))
_FIELD = "field"
Fields = dict[str, Any]


class DumpReader:
    """Reads one dump: ``siteinfo`` at once, then ``items()`` page by page.

    Plain expat with small handlers rather than ElementTree: no element
    objects are built, which parses about three times faster. Each chunk fed
    to expat queues the items it completes; ``items()`` hands them out, so at
    most one chunk's worth is held. ``bytes_read`` counts the XML bytes
    (after decompression) consumed so far.
    """

    def __init__(self, stream: IO[bytes], name: str, *, skip_pages: int = 0) -> None:
        self.name = name
        self.bytes_read = 0
        self._stream = stream
        parser = pyexpat.ParserCreate()
        parser.buffer_text = True
        parser.buffer_size = CHUNK
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        self._parser = parser
        self._names: list[str] = [""]
        self._kinds: list[Fields | str | None] = [{}]
        self._text: list[str] | None = None
        self._attrs: dict[str, str] = {}
        self._queue: list[SiteInfo | DumpItem] = []
        self._schema = ""
        self._schema_number = 0
        self._lang: str | None = None
        self._namespace_ids: dict[str, int] = {}
        self._page: DumpPage | None = None
        self._page_fields: Fields = {}
        self._pages_seen = 0
        self._skip_pages = skip_pages
        self._skipping = False
        self._finished = False
        self._walk = self._items()
        first = next(self._walk, None)
        if not isinstance(first, SiteInfo):
            raise DumpError(f"{name} has no <siteinfo>: cannot tell which wiki it is from")
        self.siteinfo = first

    def items(self) -> Iterator[DumpItem]:
        """Pages and revisions in dump order. The first ``skip_pages`` pages (a resumed
        import's) are parsed and dropped, which costs only the XML parsing."""
        for item in self._walk:
            assert not isinstance(item, SiteInfo)
            yield item

    # -- feeding expat ------------------------------------------------------------------

    def _items(self) -> Iterator[SiteInfo | DumpItem]:
        parser = self._parser
        while not self._finished:
            try:
                chunk = self._stream.read(CHUNK)
            except EOFError:
                raise DumpError(f"{self.name} ends early: the file is truncated") from None
            except _READ_ERRORS as exc:
                raise DumpError(f"cannot read {self.name}: {exc}") from None
            self.bytes_read += len(chunk)
            try:
                parser.Parse(chunk, not chunk)
            except pyexpat.ExpatError as exc:
                raise self._parse_error(exc, final=not chunk) from None
            queue, self._queue = self._queue, []
            yield from queue
            if not chunk:
                break
        if not self._finished:
            raise DumpError(f"{self.name} ends early: the file is truncated")

    def _parse_error(self, exc: pyexpat.ExpatError, *, final: bool) -> DumpError:
        if not self._schema:
            return DumpError(f"{self.name} is not a MediaWiki XML dump (XML error: {exc})")
        if final:
            return DumpError(f"{self.name} ends early (line {exc.lineno}): the file is truncated")
        return DumpError(f"{self.name} is damaged: XML error {exc}")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        parent = self._kinds[-1]
        parent_name = self._names[-1]
        if not parent_name and name != "mediawiki":
            raise DumpError(f"{self.name} is not a MediaWiki XML dump (its root element is "
                            f"<{name}>)")
        self._names.append(name)
        if not isinstance(parent, dict):
            self._kinds.append(None)  # inside a field: its text is collected already
            return
        if (parent_name, name) in _CONTAINERS:
            fields: Fields = {"@": attrs}
            self._kinds.append(fields)
            self._open_container(name, fields, parent)
            return
        if self._skipping and parent_name in _SKIPPED:
            self._kinds.append(None)
            return
        self._kinds.append(_FIELD)
        self._attrs = attrs
        self._text = []
        # expat hands the text over in large pieces, straight into the list
        self._parser.CharacterDataHandler = self._text.append

    def _end(self, name: str) -> None:
        self._names.pop()
        kind = self._kinds.pop()
        if kind is _FIELD:
            container = self._kinds[-1]
            assert isinstance(container, dict) and self._text is not None
            text = "".join(self._text)
            self._text = None
            self._parser.CharacterDataHandler = None
            if name == "namespace":
                container.setdefault("namespace", []).append((self._attrs, text))
                return
            container[name] = text
            if self._attrs:
                container[name + "@"] = self._attrs
        elif isinstance(kind, dict):
            self._close_container(name, kind)

    def _open_container(self, name: str, fields: Fields, parent: Fields) -> None:
        if name == "revision":
            if self._page is None and not self._skipping:
                self._page = self._page_of(self._page_fields)
                self._queue.append(self._page)
        elif name == "page":
            self._skipping = self._pages_seen < self._skip_pages
            self._page_fields, self._page = fields, None
        elif name == "contributor":
            parent["contributor"] = fields
        elif name == "content":
            parent.setdefault("content", []).append(fields)
        elif name == "mediawiki":
            self._check_root(fields["@"])

    def _close_container(self, name: str, fields: Fields) -> None:
        if name == "revision":
            if not self._skipping:
                assert self._page is not None
                self._queue.append(self._revision(fields, self._page))
        elif name == "page":
            self._pages_seen += 1
            if not self._skipping:
                if self._page is None:  # a page without revisions
                    self._page = self._page_of(fields)
                    self._queue.append(self._page)
                self._queue.append(PageEnd(self._page))
            self._page, self._page_fields = None, {}
        elif name == "siteinfo":
            self._queue.append(self._siteinfo(fields))
        elif name == "mediawiki":
            self._finished = True

    # -- turning elements into records ----------------------------------------------------

    def _check_root(self, attrs: dict[str, str]) -> None:
        namespace = attrs.get("xmlns", "")
        version = namespace[len(EXPORT_NS):].rstrip("/") if namespace.startswith(EXPORT_NS) else ""
        if version not in KNOWN_SCHEMAS:
            known = f"{KNOWN_SCHEMAS[0]} to {KNOWN_SCHEMAS[-1]}"
            raise DumpError(f"{self.name} uses an export schema this harvester does not know "
                            f"({namespace or 'none declared'}; known: {known})")
        self._schema = version
        self._schema_number = int(version.split(".")[1])
        self._lang = attrs.get("xml:lang")

    def _siteinfo(self, fields: Fields) -> SiteInfo:
        site = SiteInfo(schema=self._schema, lang=self._lang)
        for name in ("sitename", "dbname", "base", "generator", "case"):
            value = fields.get(name)
            if isinstance(value, str) and value.strip():
                setattr(site, name, value.strip())
        namespaces = fields.get("namespaces", {})
        for attrs, text in namespaces.get("namespace", []):
            key = self._int(attrs.get("key"), "siteinfo namespace key")
            site.namespaces.append((key, text, attrs.get("case")))
        self._namespace_ids = {name: key for key, name, _ in site.namespaces if name}
        return site

    def _page_of(self, fields: Fields) -> DumpPage:
        title = fields.get("title")
        if title is None or "id" not in fields:
            raise DumpError(f"{self.name} has a <page> without a <title> or <id>")
        pageid = self._int(fields["id"], "page <id>")
        if "ns" in fields:
            ns = self._int(fields["ns"], "page <ns>")
        else:  # before schema 0.6: the namespace is the title's prefix
            prefix, colon, _ = title.partition(":")
            ns = self._namespace_ids.get(prefix, 0) if colon else 0
        redirect = True if "redirect" in fields else (False if self._schema_number >= 4 else None)
        return DumpPage(pageid, ns, title, redirect)

    def _int(self, text: str | None, what: str) -> int:
        try:
            return int(text or "")
        except ValueError:
            raise DumpError(f"{self.name} has a {what} that is not a number: {text!r}") from None

    def _revision(self, fields: Fields, page: DumpPage) -> RevisionRecord:
        if "id" not in fields or not fields.get("timestamp"):
            raise DumpError(f"{self.name} has a revision without <id> or <timestamp> "
                            f"in page {page.title!r}")
        revid = self._int(fields["id"], "revision <id>")
        if "parentid" in fields:
            parentid: int | None = self._int(fields["parentid"], "revision <parentid>")
        else:  # left out for a page's first revision; the element exists from schema 0.7
            parentid = 0 if self._schema_number >= 7 else None
        contributor = fields.get("contributor") or {}
        userhidden = contributor.get("@", {}).get("deleted") == "deleted"
        user, userid = (None, None) if userhidden else self._contributor(contributor)
        comment: str | None = fields.get("comment", "")
        commenthidden = fields.get("comment@", {}).get("deleted") == "deleted"
        if commenthidden:
            comment = None
        main = self._slot("main", fields, revid)
        others = [self._slot(str(content.get("role") or ""), content, revid)
                  for content in fields.get("content", ())]
        slots = [main, *others]
        texthidden = main.texthidden
        sha1 = None if texthidden else base36_to_hex(fields.get("sha1"))
        if sha1 is None and not texthidden and not others and main.utf8 is not None:
            sha1 = hashlib.sha1(main.utf8).hexdigest()
        if main.sha1 is None and not others:
            main.sha1 = sha1
        sizes = [slot.size for slot in slots if slot.size is not None]
        return RevisionRecord(
            revid=revid, pageid=page.pageid, parentid=parentid, timestamp=fields["timestamp"],
            user=user, userid=userid, comment=comment, minor="minor" in fields,
            size=sum(sizes) if sizes else None, sha1=sha1,
            texthidden=texthidden, userhidden=userhidden, commenthidden=commenthidden,
            sha1hidden=texthidden, slots=slots,
        )

    def _contributor(self, fields: Fields) -> tuple[str | None, int | None]:
        if "ip" in fields:
            return fields["ip"], 0  # the API's userid for an IP address
        userid = self._int(fields["id"], "contributor <id>") if "id" in fields else None
        return fields.get("username"), userid

    def _slot(self, role: str, fields: Fields, revid: int) -> SlotRecord:
        if not role:
            raise DumpError(f"{self.name} has a <content> without a <role> in revision {revid}")
        if "text" not in fields:
            raise DumpError(f"{self.name} has no <text> for revision {revid}")
        model, attrs = fields.get("model"), fields.get("text@", {})
        size_attr = attrs.get("bytes", "")
        size = int(size_attr) if size_attr.isdigit() else None
        if attrs.get("deleted") == "deleted":
            # hidden on the wiki: its size is public, its format and SHA-1 are not kept
            return SlotRecord(role=role, content_model=model, size=size, texthidden=True)
        text: str = fields["text"]
        if not text and size:
            raise DumpError(
                f"{self.name} has no text for revision {revid} (a stub dump? import a "
                "dump with the texts: pages-meta-history or dumpBackup.php --full)")
        data = text.encode("utf-8")
        return SlotRecord(role=role, content_model=model, content_format=fields.get("format"),
                          size=len(data) if size is None else size,
                          sha1=base36_to_hex(attrs.get("sha1")), utf8=data)


def read_siteinfo(path: Path) -> SiteInfo:
    """Only the siteinfo of a dump (reads no further than its first page)."""
    with open_dump(path) as stream:
        return DumpReader(stream, str(path)).siteinfo
