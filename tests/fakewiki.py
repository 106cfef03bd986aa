"""A small fake MediaWiki behind ``httpx.MockTransport``, routing on query parameters.

For what a real server cannot produce on demand: exact timing, throttling and
faults. ``faults`` is a list of callables consulted before each request; the
first that returns a response answers it instead of the wiki.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import trio

T = TypeVar("T")
Fault = Callable[[httpx.Request, dict[str, str]], httpx.Response | None]


@dataclass
class FakeRevision:
    revid: int
    timestamp: str
    text: str
    user: str = "Alice"
    userid: int = 1
    comment: str = "edit"
    minor: bool = False
    hidden: tuple[str, ...] = ()  # "text", "user", "comment"
    extra_slots: dict[str, str] = field(default_factory=dict)


@dataclass
class FakePage:
    pageid: int
    ns: int
    title: str
    revisions: list[FakeRevision]


@dataclass
class FakeFileVersion:
    timestamp: str
    data: bytes
    user: str = "Alice"
    comment: str = "upload"
    hidden: bool = False  # the file itself revision-deleted
    url: str | None = None  # where imageinfo says it is (default: on the wiki's host)
    sha1: str | None = None  # what imageinfo says it is (default: of data)
    metadata: dict[str, str] | None = None  # extmetadata values (CommonsMetadata)


@dataclass
class FakeFile:
    name: str  # with underscores, as the wiki keys it
    versions: list[FakeFileVersion]  # oldest first; the last is current


def key(title: str) -> str:
    return title.replace(" ", "_")


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class FakeWiki:
    def __init__(self, pages: list[FakePage], *, generator: str = "MediaWiki 1.39.0",
                 host: str = "wiki.test", limit: int = 50, script_path: str = "/w") -> None:
        self.pages = pages
        self.generator = generator
        self.host = host
        self.script_path = script_path  # two wikis may share a host (a farm)
        self.limit = limit
        self.high_limit_users: set[str] = set()
        self.logged_in: str | None = None
        self.faults: list[Fault] = []
        self.requests: list[tuple[float, dict[str, str], httpx.Request]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.latency = 0.0  # seconds of (trio) time each answer takes
        # /robots.txt: its text, an HTTP status, an exception to raise, or None (404)
        self.robots: str | int | Exception | None = None
        self.extra_edits = 0  # added to siteinfo's edit count: a bigger wiki than it is
        self.files: list[FakeFile] = []
        self.file_hosts = [f"http://{host}/images"]  # filerepoinfo's local repository URLs
        self.file_bytes_sent: dict[str, int] = {}  # by URL path
        self.file_statuses: dict[str, int] = {}  # URL path -> status to answer instead
        self.iilimit = 500  # versions per file in one answer, as MediaWiki's iilimit=max

    @property
    def api_url(self) -> str:
        return f"http://{self.host}{self.script_path}/api.php"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        if request.method == "POST":
            body = parse_qs(request.content.decode())
            params.update({k: v[-1] for k, v in body.items()})
        self.requests.append((trio.current_time(), params, request))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await trio.sleep(self.latency)
            for fault in self.faults:
                response = fault(request, params)
                if response is not None:
                    return response
            return self.route(request, params)
        finally:
            self.in_flight -= 1

    def route(self, request: httpx.Request, p: dict[str, str]) -> httpx.Response:
        if request.url.path == "/robots.txt" and self.robots is not None:
            if isinstance(self.robots, Exception):
                raise self.robots
            if isinstance(self.robots, int):
                return httpx.Response(self.robots, text="robots.txt is not here")
            return httpx.Response(200, text=self.robots)
        if self.file_for(request) is not None:
            return self.serve_file(request)
        if not request.url.path.endswith("api.php"):
            return httpx.Response(404, text="not found")
        if p.get("meta") == "filerepoinfo":
            return self.json({"query": {"repos": [
                {"name": "local", "local": True, "url": url} for url in self.file_hosts]}})
        if p.get("generator") == "allimages":
            return self.json(self.allimages())
        if p.get("prop") == "imageinfo" and "titles" in p:
            return self.json(self.imageinfo(p))
        if p.get("action") == "login":
            return self.json(self.login(p))
        if p.get("meta") == "siteinfo":
            data = self.siteinfo()
            if p.get("list") == "allusers":  # asked for in the same request
                data["query"] |= self.allusers(p)
            return self.json(data)
        if p.get("meta") == "userinfo":
            if request.headers.get("Authorization") == "Bearer good-token":
                self.logged_in = "OAuthUser"
            return self.json(self.userinfo())
        if p.get("meta") == "tokens":
            return self.json({"query": {"tokens": {"logintoken": "tok+\\"}}})
        if p.get("list") == "allusers":
            return self.json({"query": self.allusers(p)})
        if p.get("list") == "allrevisions":
            return self.json(self.allrevisions(p))
        if p.get("generator") == "allpages":
            return self.json(self.allpages(p))
        if p.get("prop") == "revisions" and "pageids" in p:
            return self.json(self.history(p))
        return self.json({"error": {"code": "badparams", "info": f"unsupported: {p}"}})

    def version_url(self, file: FakeFile, index: int) -> str:
        version = file.versions[index]
        if version.url is not None:
            return version.url
        if index == len(file.versions) - 1:
            return f"http://{self.host}/images/{file.name}"
        return f"http://{self.host}/images/archive/{version.timestamp}!{file.name}"

    def allimages(self) -> dict[str, Any]:
        """Every file with its versions, newest first, in one answer: as MediaWiki for
        several titles, at most ``iilimit`` of each, the rest dropped without a word."""
        pages = [{**page, "imageinfo": page["imageinfo"][:self.iilimit]}
                 for page in self.file_pages()]
        return {"batchcomplete": True, "limits": {"imageinfo": self.iilimit},
                "query": {"pages": pages}}

    def imageinfo(self, p: dict[str, str]) -> dict[str, Any]:
        """One file's versions from ``iistart`` (inclusive), ``iilimit`` at a time."""
        page = next(page for page in self.file_pages() if page["title"] == p["titles"])
        infos = [i for i in page["imageinfo"] if i["timestamp"] <= p.get("iistart", "9")]
        out: dict[str, Any] = {"query": {"pages": [{**page, "imageinfo": infos[:self.iilimit]}]}}
        if len(infos) > self.iilimit:
            out["continue"] = {"iistart": infos[self.iilimit]["timestamp"], "continue": "||"}
        return out

    def file_pages(self) -> list[dict[str, Any]]:
        pages = []
        for file in self.files:
            infos = []
            for index in reversed(range(len(file.versions))):
                version = file.versions[index]
                info: dict[str, Any] = {
                    "timestamp": version.timestamp, "user": version.user, "userid": 1,
                    "comment": version.comment, "size": len(version.data), "width": 1,
                    "height": 1, "mime": "image/png", "mediatype": "BITMAP"}
                if version.hidden:
                    info = {"timestamp": version.timestamp, "filehidden": True,
                            "user": version.user, "comment": version.comment}
                else:
                    info |= {"sha1": version.sha1 or hashlib.sha1(version.data).hexdigest(),
                             "url": self.version_url(file, index)}
                    if version.metadata is not None:
                        info["extmetadata"] = {k: {"value": v, "source": "commons-desc-page"}
                                               for k, v in version.metadata.items()}
                if index != len(file.versions) - 1:
                    info["archivename"] = f"{version.timestamp}!{file.name}"
                infos.append(info)
            pages.append({"ns": 6, "title": "File:" + file.name.replace("_", " "),
                          "imageinfo": infos})
        return pages

    def file_for(self, request: httpx.Request) -> FakeFileVersion | None:
        for file in self.files:
            for index, version in enumerate(file.versions):
                if str(request.url) == self.version_url(file, index):
                    return version
        return None

    def serve_file(self, request: httpx.Request) -> httpx.Response:
        """The bytes, or the part a ``Range: bytes=N-`` asks for (206)."""
        path = request.url.path
        if path in self.file_statuses:
            return httpx.Response(self.file_statuses[path], text="no")
        version = self.file_for(request)
        assert version is not None
        data, status, headers = version.data, 200, {}
        wanted = request.headers.get("range", "")
        if wanted.startswith("bytes="):
            start = int(wanted[6:].rstrip("-"))
            if start >= len(data):
                return httpx.Response(416)
            headers["content-range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            data, status = data[start:], 206
        self.file_bytes_sent[path] = self.file_bytes_sent.get(path, 0) + len(data)
        return httpx.Response(status, content=data, headers=headers)

    @staticmethod
    def allusers(p: dict[str, str]) -> dict[str, Any]:
        return {"allusers": [{"userid": 9, "name": "FixBot"}] if p.get("augroup") == "bot" else []}

    @staticmethod
    def json(data: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=data)

    def siteinfo(self) -> dict[str, Any]:
        namespaces = {str(n): {"id": n, "name": f"NS{n}" if n else "", "canonical": f"NS{n}",
                               "case": "first-letter", "content": n == 0, "subpages": False}
                      for n in sorted({p.ns for p in self.pages} | {0, 1})}
        edits = sum(len(p.revisions) for p in self.pages) + self.extra_edits
        return {
            "curtimestamp": "2030-01-01T00:00:00Z",
            "query": {
                "general": {"generator": self.generator, "wikiid": "fakewiki",
                            "server": f"http://{self.host}", "scriptpath": self.script_path,
                            "sitename": "Fake"},
                "namespaces": namespaces, "namespacealiases": [],
                "rightsinfo": {"url": "", "text": ""},
                "statistics": {"edits": edits, "pages": len(self.pages)},
            },
        }

    def login(self, p: dict[str, str]) -> dict[str, Any]:
        if p.get("lgpassword") == "secret" and p.get("lgtoken") == "tok+\\":
            self.logged_in = p["lgname"].split("@")[0]
            return {"login": {"result": "Success", "lgusername": self.logged_in}}
        return {"login": {"result": "Failed", "reason": "Incorrect username or password."}}

    def userinfo(self) -> dict[str, Any]:
        if self.logged_in is None:
            return {"query": {"userinfo": {"id": 0, "name": "127.0.0.1", "anon": True,
                                           "rights": ["read"]}}}
        rights = ["read", "apihighlimits"] if self.logged_in in self.high_limit_users else ["read"]
        return {"query": {"userinfo": {"id": 5, "name": self.logged_in, "rights": rights}}}

    def current_limit(self) -> int:
        return self.limit * 10 if self.logged_in in self.high_limit_users else self.limit

    def revision_json(self, rev: FakeRevision) -> dict[str, Any]:
        out: dict[str, Any] = {"revid": rev.revid, "parentid": 0, "minor": rev.minor,
                               "timestamp": rev.timestamp, "size": len(rev.text),
                               "sha1": sha1(rev.text), "tags": []}
        if "user" in rev.hidden:
            out["userhidden"] = True
        else:
            out.update(user=rev.user, userid=rev.userid)
        if "comment" in rev.hidden:
            out["commenthidden"] = True
        else:
            out["comment"] = rev.comment
        slots: dict[str, Any] = {}
        for role, text in {"main": rev.text, **rev.extra_slots}.items():
            slot: dict[str, Any] = {"contentmodel": "wikitext", "contentformat": "text/x-wiki",
                                    "size": len(text), "sha1": sha1(text)}
            if role == "main" and "text" in rev.hidden:
                slot["texthidden"] = True
            else:
                slot["content"] = text
            slots[role] = slot
        if "text" in rev.hidden:
            out["texthidden"] = True
        out["slots"] = slots
        return out

    def all_revisions(self, p: dict[str, str]) -> list[tuple[FakePage, FakeRevision]]:
        namespaces = {int(n) for n in p["arvnamespace"].split("|")} if "arvnamespace" in p else None
        found = [(page, rev) for page in self.pages for rev in page.revisions
                 if namespaces is None or page.ns in namespaces]
        found = [(pg, r) for pg, r in found
                 if p.get("arvstart", "") <= r.timestamp <= p.get("arvend", "9999")]
        return sorted(found, key=lambda pr: (pr[1].timestamp, pr[1].revid))

    def allrevisions(self, p: dict[str, str]) -> dict[str, Any]:
        if self.generator < "MediaWiki 1.27":
            return {"error": {"code": "badvalue", "info": "Unrecognized value for list"}}
        found = self.all_revisions(p)
        if "arvcontinue" in p:  # as MediaWiki writes it: 20200101000000|123
            mw, revid = p["arvcontinue"].split("|")
            ts = f"{mw[:4]}-{mw[4:6]}-{mw[6:8]}T{mw[8:10]}:{mw[10:12]}:{mw[12:]}Z"
            found = [pr for pr in found if (pr[1].timestamp, pr[1].revid) >= (ts, int(revid))]
        if p.get("arvdir") == "older":  # newest first (no continuation needed so far)
            found.reverse()
        limit = int(p["arvlimit"]) if p.get("arvlimit", "max") != "max" else self.current_limit()
        batch, rest = found[:limit], found[limit:]
        grouped: list[dict[str, Any]] = []
        for page, rev in batch:
            if not grouped or grouped[-1]["pageid"] != page.pageid:
                grouped.append({"pageid": page.pageid, "ns": page.ns, "title": page.title,
                                "revisions": []})
            grouped[-1]["revisions"].append(self.revision_json(rev))
        out: dict[str, Any] = {"query": {"allrevisions": grouped}}
        if rest:
            nxt = rest[0][1]
            mw = "".join(c for c in nxt.timestamp if c.isdigit())
            out["continue"] = {"arvcontinue": f"{mw}|{nxt.revid}", "continue": "-||"}
        return out

    def allpages(self, p: dict[str, str]) -> dict[str, Any]:
        ns = int(p.get("gapnamespace", 0))
        # in the order of MediaWiki's keys: underscores for spaces (the fake's titles
        # carry no namespace prefix), compared as they are
        pages = sorted((pg for pg in self.pages if pg.ns == ns), key=lambda pg: key(pg.title))
        low = max(p.get("gapfrom", ""), p.get("gapcontinue", ""))
        pages = [pg for pg in pages if key(pg.title) >= low]
        if "gapto" in p:
            pages = [pg for pg in pages if key(pg.title) <= p["gapto"]]
        # with content, as many pages as revisions a request may bring; without, ten times
        content = "revisions" in p.get("prop", "")
        limit = self.current_limit() * (1 if content else 10)
        batch, rest = pages[:limit], pages[limit:]
        items = []
        for pg in batch:
            item: dict[str, Any] = {"pageid": pg.pageid, "ns": pg.ns, "title": pg.title,
                                    "lastrevid": pg.revisions[-1].revid,
                                    "length": len(pg.revisions[-1].text),
                                    "contentmodel": "wikitext"}
            if "revisions" in p.get("prop", ""):
                item["revisions"] = [self.revision_json(pg.revisions[-1])]
            items.append(item)
        out: dict[str, Any] = {"query": {"pages": items}}
        if rest:
            out["continue"] = {"gapcontinue": key(rest[0].title), "continue": "gapcontinue||"}
        return out

    def history(self, p: dict[str, str]) -> dict[str, Any]:
        page = next(pg for pg in self.pages if pg.pageid == int(p["pageids"]))
        revs = page.revisions
        if "rvcontinue" in p:
            revs = [r for r in revs if r.revid >= int(p["rvcontinue"])]
        limit = self.current_limit()
        batch, rest = revs[:limit], revs[limit:]
        out: dict[str, Any] = {"query": {"pages": [{
            "pageid": page.pageid, "ns": page.ns, "title": page.title,
            "revisions": [self.revision_json(r) for r in batch]}]}}
        if rest:
            out["continue"] = {"rvcontinue": str(rest[0].revid), "continue": "||"}
        return out


def make_pages(count: int, revisions_each: int, *, namespaces: tuple[int, ...] = (0,)) -> list[
        FakePage]:
    """Pages with interleaved edit times, so allrevisions mixes pages as on a real wiki."""
    pages = []
    revid = 0
    for index in range(count):
        pages.append(FakePage(pageid=index + 1, ns=namespaces[index % len(namespaces)],
                              title=f"Page {index + 1:03d}", revisions=[]))
    for step in range(revisions_each):
        for page in pages:
            revid += 1
            ts = f"2020-01-{1 + step // 24:02d}T{step % 24:02d}:{page.pageid % 60:02d}:00Z"
            text = f"Text of {page.title}, version {step}.\n" + "lorem ipsum " * 20
            page.revisions.append(FakeRevision(revid=revid, timestamp=ts, text=text))
    return pages


def json_body(response: httpx.Response) -> dict[str, Any]:
    return dict(json.loads(response.content))


class InlineWriter:
    """A crawl's writer run on the trio thread, for runs on a MockClock: a write then
    takes no virtual time (in a worker thread it would, as the clock jumps ahead while
    the thread works)."""

    def __init__(self, directory: Any = None) -> None:
        pass

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)
