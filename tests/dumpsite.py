"""A dumps site on 127.0.0.1 laid out as Wikimedia's (https://dumps.wikimedia.org).

``/{dbname}/`` lists the runs; ``/{dbname}/{date}/dumpstatus.json`` gives each
job's files with sizes and SHA-1s; the files themselves are served with
``Range`` support. The site records every file request (the range asked for,
the bytes it got out), can send slowly (a distant host, to kill a download in
the middle), and can damage a file's first answer (to be caught by its SHA-1).
"""

from __future__ import annotations

import bz2
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

PAGE_START = re.compile(rb"^  <page>", re.MULTILINE)


@dataclass
class Sent:
    name: str
    start: int  # first byte asked for (0 without Range)
    status: int
    sent: int  # bytes of body written to the connection


def split_dump(xml: bytes, parts: int) -> list[bytes]:
    """A MediaWiki XML dump as ``parts`` dumps, each with the header, some pages, the end."""
    starts = [m.start() for m in PAGE_START.finditer(xml)]
    end = xml.rindex(b"</mediawiki>")
    header, pages = xml[: starts[0]], xml[starts[0]:end]
    cuts = [starts[len(starts) * i // parts] - starts[0] for i in range(parts)] + [len(pages)]
    return [header + pages[a:b] + b"</mediawiki>\n" for a, b in itertools.pairwise(cuts)]


def dbname_of(xml: bytes) -> str:
    found = re.search(rb"<dbname>([^<]+)</dbname>", xml)
    assert found is not None
    return found.group(1).decode()


@dataclass
class DumpSite:
    dbname: str
    date: str
    files: dict[str, bytes]
    job: str = "metahistorybz2dump"
    rate: float | None = None  # bytes a second; None: as fast as it goes
    corrupt_once: set[str] = field(default_factory=set)
    log: list[Sent] = field(default_factory=list)  # the files' requests
    requests: int = 0  # every request: listings, dumpstatus.json and files
    bytes_sent: int = 0  # every body
    url: str = ""

    @classmethod
    def from_dump(cls, dump: Path, parts: int = 2, date: str = "20261101") -> DumpSite:
        xml = dump.read_bytes()
        dbname = dbname_of(xml)
        files = {f"{dbname}-{date}-pages-meta-history{i}.xml.bz2": bz2.compress(part, 9)
                 for i, part in enumerate(split_dump(xml, parts), start=1)}
        return cls(dbname, date, files)

    def status(self) -> dict[str, object]:
        files = {name: {"size": len(data), "sha1": hashlib.sha1(data).hexdigest(),
                        "md5": hashlib.md5(data).hexdigest(),
                        "url": f"/{self.dbname}/{self.date}/{name}"}
                 for name, data in self.files.items()}
        return {"jobs": {self.job: {"status": "done", "files": files},
                         "metahistory7zdump": {"status": "waiting", "files": {}}},
                "version": "0.8"}

    def file_requests(self, name: str) -> list[Sent]:
        return [s for s in self.log if s.name == name]

    # -- serving ---------------------------------------------------------------------

    def __enter__(self) -> DumpSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        path = handler.path.split("?", 1)[0]
        newer = str(int(self.date) + 100)  # a newer run whose history job is not done
        if path == f"/{self.dbname}/":
            links = "".join(f'<a href="{d}/">{d}/</a>\n' for d in (self.date, newer))
            self.send(handler, 200, f"<html><body><pre>{links}</pre></body></html>".encode())
        elif path == f"/{self.dbname}/{newer}/dumpstatus.json":
            running = {"jobs": {self.job: {"status": "in-progress", "files": {}}}}
            self.send(handler, 200, json.dumps(running).encode())
        elif path == f"/{self.dbname}/{self.date}/dumpstatus.json":
            self.send(handler, 200, json.dumps(self.status()).encode())
        elif path.startswith(f"/{self.dbname}/{self.date}/") and \
                path.rsplit("/", 1)[1] in self.files:
            self.send_file(handler, path.rsplit("/", 1)[1])
        else:
            self.send(handler, 404, b"not found")

    def send(self, handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        self.bytes_sent += len(body)

    def send_file(self, handler: BaseHTTPRequestHandler, name: str) -> None:
        data = self.files[name]
        if name in self.corrupt_once:
            self.corrupt_once.discard(name)
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        asked = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
        start = int(asked.group(1)) if asked else 0
        record = Sent(name, start, 206 if asked else 200, 0)
        self.log.append(record)
        if start >= len(data) and asked:
            record.status = 416
            self.send(handler, 416, b"")
            return
        handler.send_response(record.status)
        handler.send_header("Content-Length", str(len(data) - start))
        if asked:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        block = 16 * 1024
        try:
            for at in range(start, len(data), block):
                piece = data[at:at + block]
                handler.wfile.write(piece)
                record.sent += len(piece)
                self.bytes_sent += len(piece)
                if self.rate:  # a slow link: the pace of the sending, not a wait for anything
                    time.sleep(len(piece) / self.rate)
        except OSError:
            pass  # the client went away
