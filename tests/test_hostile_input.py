"""Hostile and broken input: servers that are not wikis, redirect elsewhere, break TLS,
need a login, stream without end or send malformed data; odd titles; bad config files.

Every case ends in one clear line on stderr and a documented exit code, never a
traceback, and leaves any mirror as it was. Real servers on 127.0.0.1 wherever the
case is about servers (small ``http.server`` ones, or the real MediaWiki of the
fixtures); ``tests/fakewiki.py`` for payloads a real wiki cannot be made to send.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from harvester.client import ClientSettings
from harvester.config import build_settings, wiki_settings
from harvester.errors import ConfigError, RemoteError
from jobs import outcome
from jobs.crawl import run_crawl
from jobs.site_policy import ROBOTS_MAX_BYTES
from storage.export_jsonl import write_jsonl
from storage.mirror import Mirror
from tests.fakewiki import FakePage, FakeRevision, FakeWiki, make_pages
from tests.helpers import (
    ROOT,
    Answer,
    Handler,
    assert_one_line_error,
    run_cli,
    serve,
    serve_fake,
    settings_for,
)

FAST = ("--max-retries", "0", "--max-rps", "0", "--max-rpm", "0")
# What a mirror directory may hold: the catalogue, SQLite's journal files and the lock.
MIRROR_FILES = {"mirror.sqlite", "mirror.sqlite-wal", "mirror.sqlite-shm", ".lock"}


# ------------------------------------------------------------------ servers on loopback


def redirect_to(target: str) -> Handler:
    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return 302, {"Location": target + path}, b""

    return answer


def fixed(status: int, content_type: str, body: bytes) -> Handler:
    def answer(method: str, path: str, headers: dict[str, str], body_in: bytes) -> Answer:
        return status, {"Content-Type": content_type}, body

    return answer


def no_mirror_left(directory: Path) -> None:
    # a crawl finds the wiki and logs in before it touches the disk
    assert not directory.exists()


# ------------------------------------------------------------------ not a MediaWiki

BLOG = b"<html><head><title>Just a blog</title></head><body>hello</body></html>"
NOT_THE_API = json.dumps({"status": "ok", "items": [1, 2, 3]}).encode()


@pytest.mark.parametrize(
    ("answer", "path"),
    [
        (fixed(200, "text/html", BLOG), "/some/page"),
        (fixed(200, "application/json", NOT_THE_API), "/api.php"),
        (fixed(404, "text/html", b"<h1>Not Found</h1>"), "/w/index.php?title=Main_Page"),
        (fixed(200, "application/json", b'{"query": {"general": {"generator": "Other"}}}'),
         "/api.php"),
    ],
    ids=["html-site", "json-not-the-api", "404", "siteinfo-not-mediawiki"],
)
def test_not_a_mediawiki(tmp_path: Path, answer: Handler, path: str) -> None:
    with serve(answer) as server:
        done = run_cli("crawl", server.url + path, "--mirror", str(tmp_path / "m"), *FAST)
    assert_one_line_error(done, outcome.EXIT_REMOTE, "no MediaWiki API found")
    assert server.requests  # it did ask
    no_mirror_left(tmp_path / "m")


def test_wiki_page_whose_api_is_forbidden(tmp_path: Path) -> None:
    """HTML that is a MediaWiki page, but api.php answers 403: say so, with what was tried."""
    page = (b'<html><head><meta name="generator" content="MediaWiki 1.39.17"/>'
            b'<link rel="EditURI" type="application/rsd+xml" href="/w/api.php?action=rsd"/>'
            b"</head><body>wiki</body></html>")

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if "api.php" in path:
            return 403, {"Content-Type": "text/html"}, b"<h1>Forbidden</h1>"
        return 200, {"Content-Type": "text/html"}, page

    with serve(answer) as server:
        done = run_cli("crawl", server.url + "/wiki/Main_Page", "--mirror",
                       str(tmp_path / "m"), *FAST)
    assert_one_line_error(done, outcome.EXIT_REMOTE, "is a MediaWiki page, but its API")
    assert f"{server.url}/w/api.php: HTTP 403" in done.stderr
    no_mirror_left(tmp_path / "m")


# ------------------------------------------------------------------ redirects elsewhere


@pytest.mark.parametrize("other_host", ["127.0.0.1", "localhost"], ids=["other-port", "other-host"])
@pytest.mark.parametrize("path", ["/api.php", "/wiki/Main_Page"], ids=["api", "page"])
def test_redirect_to_another_host_at_discovery(tmp_path: Path, other_host: str,
                                               path: str) -> None:
    with serve(fixed(200, "application/json", b"{}")) as elsewhere:
        target = f"http://{other_host}:{elsewhere.port}"
        with serve(redirect_to(target)) as wiki:
            done = run_cli("crawl", wiki.url + path, "--mirror", str(tmp_path / "m"), *FAST)
    assert_one_line_error(done, outcome.EXIT_REMOTE, f"refusing to follow {target}")
    # robots.txt redirected elsewhere is not followed either (and reads as no rules)
    assert wiki.requests[0][1] == "/robots.txt"
    assert len(wiki.requests) == 2
    assert elsewhere.requests == []  # never contacted
    no_mirror_left(tmp_path / "m")


def test_redirect_to_another_host_mid_crawl(tmp_path: Path) -> None:
    """api.php starts redirecting elsewhere during the walk: refused, the mirror stays whole."""
    wiki = FakeWiki(make_pages(3, 40))  # 120 revisions: 3 allrevisions requests
    with serve(fixed(200, "application/json", b"{}")) as elsewhere, serve_fake(wiki) as server:

        def moved(request: httpx.Request, params: dict[str, str]) -> httpx.Response | None:
            if params.get("list") == "allrevisions" and "arvcontinue" in params:
                location = f"{elsewhere.url}/w/api.php?{request.url.query.decode()}"
                return httpx.Response(301, headers={"Location": location})
            return None

        wiki.faults.append(moved)
        mirror = tmp_path / "m"
        done = run_cli("crawl", server.url + "/w/api.php", "--mirror", str(mirror), *FAST)
        assert_one_line_error(done, outcome.EXIT_REMOTE, f"refusing to follow {elsewhere.url}")
        assert elsewhere.requests == []
        with Mirror.open(mirror, create=False) as stored:
            assert stored.count_revisions() == 50  # the first batch, committed whole
        wiki.faults.clear()
        again = run_cli("crawl", server.url + "/w/api.php", "--mirror", str(mirror), *FAST)
        assert again.returncode == 0, again.stderr
    assert sorted(r["revid"] for r in export(mirror)) == list(range(1, 121))


def test_same_host_redirect_is_followed(tmp_path: Path) -> None:
    """The refusal is about other hosts: a wiki moving api.php on its own host still works."""
    wiki = FakeWiki(make_pages(2, 3))
    with serve_fake(wiki) as server:
        wiki.faults.append(lambda request, params: httpx.Response(
            301, headers={"Location": str(request.url).replace("/api.php", "/w/api.php")})
            if request.url.path == "/api.php" else None)
        done = run_cli("crawl", server.url + "/api.php", "--mirror", str(tmp_path / "m"), *FAST)
    assert done.returncode == 0, done.stderr
    assert len(export(tmp_path / "m")) == 6


# ------------------------------------------------------------------ TLS


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a freshly made self-signed certificate for 127.0.0.1."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip("the cryptography package is needed to make a certificate")
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_self_signed_certificate_is_refused(tmp_path: Path, self_signed: ssl.SSLContext) -> None:
    wiki = FakeWiki(make_pages(1, 1))

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return 200, {"Content-Type": "application/json"}, json.dumps(wiki.siteinfo()).encode()

    with serve(answer, tls=self_signed) as server:
        done = run_cli("crawl", server.url + "/api.php", "--mirror", str(tmp_path / "m"))
    assert_one_line_error(done, outcome.EXIT_REMOTE,
                          "TLS connection to 127.0.0.1 failed: certificate verify failed")
    assert server.requests == []  # no request was sent over the untrusted connection
    no_mirror_left(tmp_path / "m")


def test_tls_to_a_plain_http_port(tmp_path: Path) -> None:
    with serve(fixed(200, "text/html", BLOG)) as server:
        url = server.url.replace("http://", "https://") + "/api.php"
        done = run_cli("crawl", url, "--mirror", str(tmp_path / "m"))
    assert_one_line_error(done, outcome.EXIT_REMOTE, "TLS connection to 127.0.0.1 failed")
    assert "plain http" in done.stderr
    no_mirror_left(tmp_path / "m")


# ------------------------------------------------------------------ endless responses

CAP = ClientSettings().max_response_bytes
TEN_GB = 10 * 1024**3


@contextmanager
def endless_server(chunked: bool) -> Iterator[tuple[str, list[int]]]:
    """Answers every request with zeros until the client hangs up; counts bytes sent."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent: list[int] = []
    block = b"\0" * 65536
    frame = b"%x\r\n" % len(block) + block + b"\r\n"

    def one(conn: socket.socket) -> None:
        total = 0
        with conn:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096) or b"\r\n\r\n"
                head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                head += ("Transfer-Encoding: chunked\r\n" if chunked
                         else f"Content-Length: {TEN_GB}\r\n")
                conn.sendall((head + "\r\n").encode())
                while True:
                    conn.sendall(frame if chunked else block)
                    total += len(block)
            except OSError:
                pass
        sent.append(total)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", sent
    finally:
        listener.close()


# The harvester, writing at exit its own peak memory (VmHWM, kB) to the file argv[1].
# Not the rusage of the child: that counts the forked test process before its exec.
PEAK_AT_EXIT = (
    "import atexit, re, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    open(sys.argv[1], 'w').write(re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
    "atexit.register(peak)\n"
    "from harvester.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length-10GB", "chunked"])
def test_endless_response_is_cut_at_the_cap(tmp_path: Path, chunked: bool) -> None:
    with endless_server(chunked) as (url, sent):
        out, err = tmp_path / "out", tmp_path / "err"
        peak = tmp_path / "peak"
        with out.open("w") as stdout, err.open("w") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-c", PEAK_AT_EXIT, str(peak), "crawl", url + "/api.php",
                 "--mirror", str(tmp_path / "m"), *FAST],
                cwd=ROOT, stdout=stdout, stderr=stderr)
        watchdog = threading.Timer(120, os.kill, (child.pid, signal.SIGKILL))
        watchdog.start()
        try:
            child.wait()
        finally:
            watchdog.cancel()
        for _ in range(50):  # the server thread notices the hang-up
            if len(sent) == 2:
                break
            time.sleep(0.1)
    done = subprocess.CompletedProcess(child.args, child.returncode, out.read_text(),
                                       err.read_text())
    assert_one_line_error(done, outcome.EXIT_REMOTE, f"exceeds {CAP:,} bytes")
    peak_kb = int(peak.read_text())
    assert peak_kb * 1024 < 400 * 1024**2, peak_kb
    # two connections: robots.txt (cut at its own, smaller cap, and then read as no
    # rules), then the API. The client stopped reading each at its cap: what the server
    # got out is the cap at most, plus what the kernel's socket buffers took in
    assert len(sent) == 2, sent
    robots_sent, api_sent = sorted(sent)
    limit = CAP + 16 * 1024**2 if chunked else 16 * 1024**2
    assert robots_sent < ROBOTS_MAX_BYTES + 16 * 1024**2, sent
    assert api_sent < limit, sent
    if chunked:
        assert api_sent >= CAP  # it did read up to the cap
    no_mirror_left(tmp_path / "m")


# ------------------------------------------------------------------ malformed revisions


def export(mirror_dir: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    with Mirror.open(mirror_dir, create=False) as mirror:
        write_jsonl(mirror, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def tamper_second_batch(wiki: FakeWiki, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the first revision of the second allrevisions response."""

    def fault(request: httpx.Request, params: dict[str, str]) -> httpx.Response | None:
        if params.get("list") != "allrevisions" or "arvcontinue" not in params:
            return None
        data = json.loads(wiki.route(request, params).content)
        change(data["query"]["allrevisions"][0])
        return httpx.Response(200, json=data)

    wiki.faults.append(fault)


def on_revision(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(page: dict[str, Any]) -> None:
        revision = page["revisions"][0]
        if value is DROP:
            del revision[key]
        else:
            revision[key] = value

    return change


def on_page(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(page: dict[str, Any]) -> None:
        if value is DROP:
            del page[key]
        else:
            page[key] = value

    return change


DROP = object()

# What identifies or orders a revision must be right: the batch is refused (exit 3) and
# nothing of it is stored.
REFUSED = {
    "timestamp-missing": (on_revision("timestamp", DROP), "malformed timestamp"),
    "timestamp-words": (on_revision("timestamp", "yesterday"), "malformed timestamp"),
    "timestamp-impossible": (on_revision("timestamp", "2020-13-45T25:61:00Z"),
                             "malformed timestamp"),
    "timestamp-number": (on_revision("timestamp", 1577836800), "malformed timestamp"),
    "timestamp-no-zone": (on_revision("timestamp", "2020-01-02T03:04:05"),
                          "malformed timestamp"),
    "revid-missing": (on_revision("revid", DROP), "without a valid revid"),
    "revid-text": (on_revision("revid", "12abc"), "without a valid revid"),
    "revid-huge": (on_revision("revid", 10**30), "without a valid revid"),
    "revision-not-object": (lambda page: page["revisions"].__setitem__(0, "rev"),
                            "not an object"),
    "revisions-not-list": (on_page("revisions", {"a": 1}), "malformed revisions"),
    "title-missing": (on_page("title", DROP), "without a title"),
    "ns-text": (on_page("ns", "zero"), "without a valid ns"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_malformed_identity_fields_are_refused(tmp_path: Path, case: str) -> None:
    change, words = REFUSED[case]
    wiki = FakeWiki(make_pages(2, 40))  # 80 revisions: two allrevisions batches of 50 and 30
    tamper_second_batch(wiki, change)
    mirror = tmp_path / "m"
    with pytest.raises(RemoteError, match=words) as raised:
        await run_crawl(settings_for(wiki, mirror), transport=wiki.transport())
    assert outcome.exit_code_for(raised.value) == outcome.EXIT_REMOTE
    assert "\n" not in outcome.describe(raised.value)
    assert len(export(mirror)) == 50  # the first batch only; the bad one left no trace
    wiki.faults.clear()
    await run_crawl(settings_for(wiki, mirror), transport=wiki.transport())
    assert sorted(r["revid"] for r in export(mirror)) == list(range(1, 81))


def drop_content(page: dict[str, Any]) -> None:
    del page["revisions"][0]["slots"]["main"]["content"]


# Fields a mirror can live without are stored as unknown (null in the export).
UNKNOWN: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, Any]]] = {
    # the mirror keeps a user's id with the name, so an unnamed user has no id either
    "user-missing": (on_revision("user", DROP), {"user": None, "userid": None}),
    "user-number": (on_revision("user", 42), {"user": None}),
    "userid-text": (on_revision("userid", "abc"), {"userid": None, "user": "Alice"}),
    "comment-object": (on_revision("comment", {"x": 1}), {"comment": None}),
    "comment-missing": (on_revision("comment", DROP), {"comment": None}),
    "size-text": (on_revision("size", "big"), {"size": None}),
    "sha1-number": (on_revision("sha1", 123), {"sha1": None}),
    "tags-string": (on_revision("tags", "notalist"), {"tags": []}),
    "tags-mixed": (on_revision("tags", ["ok", 3, None]), {"tags": ["ok"]}),
    "parentid-text": (on_revision("parentid", "x"), {"parentid": None}),
    "content-missing": (drop_content, {"text": None}),
    "slots-not-object": (on_revision("slots", "main"), {"text": None}),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN))
async def test_malformed_optional_fields_are_stored_as_unknown(tmp_path: Path,
                                                               case: str) -> None:
    change, expected = UNKNOWN[case]
    wiki = FakeWiki(make_pages(2, 40))
    tamper_second_batch(wiki, change)
    await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())
    records = {r["revid"]: r for r in export(tmp_path / "m")}
    assert sorted(records) == list(range(1, 81))
    tampered = records[51]  # the first revision of the second batch
    assert {k: tampered.get(k) for k in expected} == expected
    untouched = records[52]
    assert untouched["user"] == "Alice" and untouched["text"] and untouched["size"]


def test_malformed_timestamp_from_the_command_line(tmp_path: Path) -> None:
    wiki = FakeWiki(make_pages(2, 40))
    tamper_second_batch(wiki, on_revision("timestamp", "2020-02-30T00:00:00Z"))
    with serve_fake(wiki) as server:
        done = run_cli("crawl", server.url + "/w/api.php", "--mirror", str(tmp_path / "m"),
                       *FAST)
    assert_one_line_error(done, outcome.EXIT_REMOTE,
                          "revision 51 with a malformed timestamp ('2020-02-30T00:00:00Z')")


@pytest.mark.parametrize("query", [[], {"allrevisions": {"1": {}}}, {"allrevisions": ["x"]}],
                         ids=["query-list", "allrevisions-object", "allrevisions-strings"])
async def test_malformed_lists_are_refused(tmp_path: Path, query: Any) -> None:
    wiki = FakeWiki(make_pages(1, 3))
    wiki.faults.append(lambda request, params: httpx.Response(200, json={"query": query})
                       if params.get("list") == "allrevisions" else None)
    with pytest.raises(RemoteError, match="malformed"):
        await run_crawl(settings_for(wiki, tmp_path / "m"), transport=wiki.transport())


# ------------------------------------------------------------------ titles

# Titles MediaWiki forbids but a hostile server may send: none may become a path.
PATH_LIKE = ["../../escape", "..", "/etc/passwd", "a/./b", "C:\\Windows\\..\\x",
             "~root/.ssh/authorized_keys", "nul\x00byte", "x" * 300]


def test_titles_never_become_paths(tmp_path: Path) -> None:
    pages = [FakePage(i + 1, 0, title, [FakeRevision(i + 1, f"2020-01-01T00:00:{i:02d}Z",
                                                     f"text of {title!r}")])
             for i, title in enumerate(PATH_LIKE)]
    wiki = FakeWiki(pages)
    mirror, out = tmp_path / "m", tmp_path / "out"
    out.mkdir()
    with serve_fake(wiki) as server:
        done = run_cli("crawl", server.url + "/w/api.php", "--mirror", str(mirror), *FAST)
    assert done.returncode == 0, done.stderr
    for fmt in ("jsonl", "xml"):
        done = run_cli("export", "--mirror", str(mirror), "--format", fmt,
                       "--output", str(out / f"all.{fmt}"))
        assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "all.jsonl").read_text().splitlines()]
    assert sorted(r["title"] for r in records) == sorted(PATH_LIKE)
    assert {r["title"]: r["text"] for r in records} == {t: f"text of {t!r}" for t in PATH_LIKE}
    # XML cannot carry NUL: it becomes U+FFFD there, as the README says
    xml_titles = {t.replace("\x00", "\ufffd") for t in PATH_LIKE}
    assert set(xml_page_titles(out / "all.xml")) == xml_titles
    assert_only_expected_files(tmp_path, {"m", "out"}, mirror,
                               {"all.jsonl", "all.jsonl.attribution.txt", "all.xml",
                                "all.xml.attribution.txt"})
    assert not (tmp_path.parent / "escape").exists() and not (ROOT.parent / "escape").exists()


def xml_page_titles(path: Path) -> list[str]:
    titles = []
    for element in ET.parse(path).getroot().iter():
        if element.tag.endswith("}page"):
            title = next(c for c in element if c.tag.endswith("}title"))
            titles.append(title.text or "")
    return titles


def assert_only_expected_files(root: Path, top: set[str], mirror: Path,
                               exports: set[str]) -> None:
    assert {p.name for p in root.iterdir()} <= top | {"wiki"}
    everything = [p for p in mirror.rglob("*")]
    assert all(p.is_file() for p in everything), everything
    assert {p.name for p in everything} <= MIRROR_FILES, everything
    assert {p.name for p in (root / "out").iterdir()} == exports


# Titles a real MediaWiki accepts, with every kind of odd character.
ODD_TITLES = [
    "Rock & Roll's \"Best\" 100% + more? (yes; =, too)",
    "/etc/passwd",
    ".htaccess",
    "...",
    ".config/harvester/secrets",
    "A/..B/.c",
    "Dir\\..\\..\\escape",
    "~ tilde, ~ again",
    "שלום עולם (עברית)",
    "مرحبا بالعالم",
    "Z\u0323\u0307alg\u0336o ca\u0301fe\u0301",
    "Emoji 😀 👩\u200d👩\u200d👧 🇫🇷",
    "Ж" * 127 + "x",  # 255 bytes of UTF-8, MediaWiki's limit
    "NUL",
    "User:Admin/etc/passwd",
    "User:Admin/.ssh/id_rsa",
    "Talk:Rock & Roll's \"Best\" 100% + more? (yes; =, too)",
]


@pytest.mark.mediawiki
def test_odd_titles_of_a_real_wiki(tmp_path: Path, wiki_server: Any) -> None:
    import demo_wiki

    created: dict[int, tuple[str, str]] = {}  # revid -> (title as the wiki has it, text)
    with demo_wiki.Api(wiki_server.api_url) as api:
        api.login(demo_wiki.ADMIN_USER, demo_wiki.ADMIN_PASSWORD)
        for index, title in enumerate(ODD_TITLES):
            text = f"Page {index}: {title}\n\n[[{title}]] & <b>bold</b> ]]> &amp;"
            revid = api.edit(title, "odd title", text=text)
            # as the wiki has them: MediaWiki normalizes both to NFC
            page = api.call(action="query", revids=revid, prop="revisions", rvprop="content",
                            rvslots="main")["query"]["pages"][0]
            created[revid] = (page["title"], page["revisions"][0]["slots"]["main"]["content"])
    assert len(created[max(created)][0].encode()) <= 255
    assert len({t for t, _ in created.values()}) == len(ODD_TITLES)
    mirror, out = tmp_path / "m", tmp_path / "out"
    out.mkdir()
    done = run_cli("crawl", wiki_server.api_url, "--mirror", str(mirror), "--namespaces",
                   "0,1,2", *FAST)
    assert done.returncode == 0, done.stderr
    for fmt in ("jsonl", "xml"):
        done = run_cli("export", "--mirror", str(mirror), "--format", fmt,
                       "--output", str(out / f"all.{fmt}"))
        assert done.returncode == 0, done.stderr
    records = {r["revid"]: r for r in map(json.loads, (out / "all.jsonl").open())}
    for revid, (title, text) in created.items():
        assert (records[revid]["title"], records[revid]["text"]) == (title, text)
    xml: dict[int, tuple[str | None, str | None]] = {}
    for page in ET.parse(out / "all.xml").getroot():
        if page.tag.endswith("}page"):
            page_title = next(c.text for c in page if c.tag.endswith("}title"))
            for rev in (c for c in page if c.tag.endswith("}revision")):
                revid = int(next(c.text or "" for c in rev if c.tag.endswith("}id")))
                xml[revid] = (page_title, next(c.text for c in rev if c.tag.endswith("}text")))
    assert {revid: xml[revid] for revid in created} == created
    # reading commands take the same titles back
    for title, text in list(created.values())[:6]:
        shown = run_cli("show", title, "--mirror", str(mirror))
        assert (shown.returncode, shown.stdout) == (0, text), shown.stderr
    assert_only_expected_files(tmp_path, {"m", "out"}, mirror,
                               {"all.jsonl", "all.jsonl.attribution.txt", "all.xml",
                                "all.xml.attribution.txt"})


# ------------------------------------------------------------------ real wikis that refuse


def add_setting(wiki_server: Any, line: str) -> None:
    """Change the running wiki's settings: php -S reads LocalSettings.php per request."""
    with wiki_server.wiki.settings.open("a", encoding="utf-8") as settings:
        settings.write(f"\n{line}\n")


@pytest.mark.mediawiki
def test_wiki_that_needs_login_to_read(tmp_path: Path, wiki_server: Any,
                                       bot_password: tuple[str, str]) -> None:
    api, mirror = wiki_server.api_url, tmp_path / "m"
    first = run_cli("crawl", api, "--mirror", str(mirror), "--namespaces", "4", *FAST)
    assert first.returncode == 0, first.stderr
    before = export(mirror)
    assert before
    add_setting(wiki_server, "$wgGroupPermissions['*']['read'] = false;")

    for args in (["crawl", api, "--namespaces", "4"], ["sync"]):
        done = run_cli(*args, "--mirror", str(mirror), *FAST)
        assert_one_line_error(done, outcome.EXIT_API, "requires logging in to read (use --user)")
        assert export(mirror) == before  # nothing lost, nothing half-written
    fresh = tmp_path / "fresh"
    done = run_cli("crawl", api, "--mirror", str(fresh), "--namespaces", "4", *FAST)
    assert_one_line_error(done, outcome.EXIT_API, "use --user")
    no_mirror_left(fresh)

    name, secret = bot_password
    env = {**os.environ, "HARVESTER_PASSWORD": secret}
    done = run_cli("crawl", api, "--mirror", str(fresh), "--namespaces", "4", "--user", name,
                   *FAST, env=env)
    assert done.returncode == 0, done.stderr
    assert "as Admin" in done.stdout
    assert export(fresh) == before


@pytest.mark.mediawiki
def test_wiki_with_the_query_api_disabled(tmp_path: Path, wiki_server: Any) -> None:
    add_setting(wiki_server, "$wgAPIModules['query'] = 'ApiDisabled';")
    for url in (wiki_server.api_url, wiki_server.url + "/index.php?title=Main_Page"):
        done = run_cli("crawl", url, "--mirror", str(tmp_path / "m"), *FAST)
        assert_one_line_error(done, outcome.EXIT_API, 'The "query" module has been disabled')
        assert "moduledisabled" in done.stderr
        no_mirror_left(tmp_path / "m")


# ------------------------------------------------------------------ config files


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


WIKI = '[[wiki]]\nname = "one"\napi = "http://127.0.0.1:9/api.php"\nmirror = "m1"\n'
BAD_WIKI_CONFIGS = {
    "wrong-type": (WIKI + 'concurrency = "four"\n',
                   "[[wiki]] number 1 (one): 'concurrency' must be an integer"),
    "bool-for-int": (WIKI + "max_retries = true\n", "'max_retries' must be an integer"),
    "namespaces-strings": (WIKI + 'namespaces = ["0"]\n', "'namespaces' must be a list"),
    "unknown-key": (WIKI + 'mirrror = "x"\n', "[[wiki]] number 1 (one): unknown key 'mirrror'"),
    "nested-table": (WIKI + "[wiki.limits]\nrps = 1\n", "unknown key 'limits'"),
    "secret-in-table": (WIKI + 'password = "x"\n', "unknown key 'password'"),
    "second-table": (WIKI + '[[wiki]]\nname = "two"\ncontact = 5\n',
                     "[[wiki]] number 2 (two): 'contact' must be a string"),
    "name-number": ('[[wiki]]\nname = 3\napi = "http://x/api.php"\n',
                    "'name' must be a string"),
    "password-env-number": (WIKI + "password_env = 5\n", "'password_env' must be a string"),
    "password-env-unset": (WIKI + 'user = "A@b"\npassword_env = "HARVESTER_TEST_UNSET_VAR"\n',
                           "names $HARVESTER_TEST_UNSET_VAR, which is not set"),
    "single-table": ('[wiki]\napi = "http://x/api.php"\n', "must be written [[wiki]]"),
    "not-tables": ('wiki = ["a"]\n', "[[wiki]] number 1 is not a table"),
    "top-level-default": ('concurrency = 1.5\n' + WIKI, "'concurrency' must be an integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_WIKI_CONFIGS))
def test_wiki_tables_name_the_bad_key(tmp_path: Path, case: str) -> None:
    text, words = BAD_WIKI_CONFIGS[case]
    config = write(tmp_path / "wikis.toml", text)
    with pytest.raises(ConfigError) as raised:
        wiki_settings(config, {}, env={})
    assert words in str(raised.value)


def test_bad_wiki_table_from_the_command_line(tmp_path: Path) -> None:
    config = write(tmp_path / "wikis.toml", BAD_WIKI_CONFIGS["wrong-type"][0])
    done = run_cli("sync", "--all", "--config", str(config))
    assert_one_line_error(done, outcome.EXIT_USAGE, "'concurrency' must be an integer")
    config = write(tmp_path / "single.toml", 'mirror = "m"\n[crawl]\nconcurrency = 2\n')
    done = run_cli("crawl", "--config", str(config))
    assert_one_line_error(done, outcome.EXIT_USAGE, "unknown key 'crawl'")


def test_wiki_tables_take_their_secrets_from_the_variables_they_name(tmp_path: Path) -> None:
    config = write(tmp_path / "wikis.toml", WIKI + 'user = "A@b"\npassword_env = "ONE_PW"\n'
                   + '[[wiki]]\nname = "two"\napi = "http://x/api.php"\nmirror = "m2"\n')
    (one, first), (two, second) = wiki_settings(
        config, {}, env={"ONE_PW": "s1", "HARVESTER_PASSWORD": "shared"})
    assert (one, first.password, first.user) == ("one", "s1", "A@b")
    assert (two, second.password) == ("two", None)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660, 0o600, 0o400], ids=oct)
@pytest.mark.parametrize("secret", ["password", "oauth_token"])
def test_config_file_with_a_secret_open_to_others_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: int, secret: str
) -> None:
    config = write(tmp_path / "h.toml", f'mirror = "m"\n{secret} = "s3cret-value"\n', mode)
    settings = build_settings(config, {}, env={})
    assert getattr(settings, secret) == "s3cret-value"
    err = capsys.readouterr().err
    if mode & 0o077:
        assert err.count("\n") == 1 and str(config) in err and "chmod 600" in err
        assert f"mode {mode:04o}" in err
    else:
        assert err == ""
    assert "s3cret-value" not in err


def test_config_file_without_a_secret_does_not_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "h.toml", 'mirror = "m"\nuser = "A@b"\n', 0o644)
    build_settings(config, {}, env={"HARVESTER_PASSWORD": "from-env"})
    assert capsys.readouterr().err == ""


def test_secret_warning_from_the_command_line(tmp_path: Path) -> None:
    config = write(tmp_path / "h.toml", 'password = "s3cret-value"\nuser = "A@b"\n', 0o644)
    done = run_cli("crawl", "http://127.0.0.1:9/api.php", "--mirror", str(tmp_path / "m"),
                   "--config", str(config), *FAST)
    lines = done.stderr.splitlines()
    assert done.returncode == outcome.EXIT_REMOTE
    assert len(lines) == 2 and "warning" in lines[0] and "open to other users" in lines[0]
    assert "s3cret-value" not in done.stderr + done.stdout
