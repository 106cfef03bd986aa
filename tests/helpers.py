"""Helpers shared by the test modules: the command line, settings, exports and the
comparison with MediaWiki's dump, the checks of a mirror a crash left, fakes served on
loopback, and storage records. No test module imports another; they import these."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import random
import sqlite3
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlite_utils

from harvester.config import Settings
from storage import files, schema
from storage.export_jsonl import write_jsonl
from storage.mirror import DB_NAME, Mirror
from storage.records import RevisionRecord, SlotRecord
from storage.textstore import text_sha1
from tests.fakewiki import FakeWiki
from tests.ground_truth import parse_dump

ROOT = Path(__file__).resolve().parent.parent


# -- command line ----------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harvester", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], done.stderr


def harvester_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "harvester", *args]


# -- settings --------------------------------------------------------------------------


def settings_for(wiki: FakeWiki, mirror: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "api": wiki.api_url,
        "mirror": str(mirror),
        "quiet": True,
        "max_requests_per_second": 0,
        "max_requests_per_minute": 0,
        "max_retries": 0,
        **extra,
    }
    return Settings(**values)


def crawl_settings(api: str, mirror: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "api": api,
        "mirror": str(mirror),
        "quiet": True,
        "max_requests_per_second": 0,
        "max_requests_per_minute": 0,
        **extra,
    }
    return Settings(**values)


def sync_settings(mirror: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {"mirror": str(mirror), "quiet": True,
                              "max_requests_per_second": 0, "max_requests_per_minute": 0, **extra}
    return Settings(**values)


# -- exports and the dump comparison ---------------------------------------------------

COMPARED = (
    "pageid",
    "ns",
    "title",
    "revid",
    "parentid",
    "timestamp",
    "user",
    "userid",
    "comment",
    "minor",
    "sha1",
    "text",
    "model",
    "format",
    "size",
    "slots",
)


def export(mirror_dir: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    with Mirror.open(mirror_dir, create=False) as mirror:
        write_jsonl(mirror, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    hidden = set(record.get("hidden", [])) - {"sha1"}
    out = {k: record[k] for k in COMPARED if k in record}
    if "text" in hidden:
        # the API hides the sha1 of hidden text, and the mirror keeps no format for it;
        # the dump still prints both
        out.pop("sha1", None)
        out.pop("format", None)
    out["hidden"] = sorted(hidden)
    return out


def export_records(mirror_dir: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    with Mirror.open(mirror_dir, create=False) as mirror:
        write_jsonl(mirror, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def by_revid(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["revid"]: comparable(r) for r in records}


def assert_matches_dump(mirror_dir: Path, dump: Path) -> int:
    ours = by_revid(export_records(mirror_dir))
    truth = by_revid(list(parse_dump(dump)))
    assert sorted(ours) == sorted(truth), "revision ids differ from dumpBackup"
    mismatched = [revid for revid in truth if ours[revid] != truth[revid]]
    assert not mismatched, (
        f"{len(mismatched)} revisions differ, e.g. "
        + json.dumps([ours[mismatched[0]], truth[mismatched[0]]], ensure_ascii=False)[:2000]
    )
    return len(truth)


# -- the crash checks ------------------------------------------------------------------

# Orphans: rows whose parent is gone. None may exist after any kill. (NOT IN,
# not a correlated NOT EXISTS: texts and slots may be views whose sha1 columns
# are computed, and NOT IN builds its lookup once.)
ORPHANS = {
    "texts no slot refers to":
        "SELECT count(*) FROM texts WHERE sha1 NOT IN"
        " (SELECT text_sha1 FROM slots WHERE text_sha1 IS NOT NULL)",
    "slots of no revision": "SELECT count(*) FROM slots WHERE revid NOT IN"
                            " (SELECT revid FROM revisions)",
    "revisions without a slot": "SELECT count(*) FROM revisions WHERE revid NOT IN"
                                " (SELECT revid FROM slots)",
    "revisions of no page": "SELECT count(*) FROM revisions WHERE pageid NOT IN"
                            " (SELECT pageid FROM pages)",
}  # fmt: skip


def stored_revisions(mirror_dir: Path) -> int:
    return count_rows(mirror_dir, "revisions")


def count_rows(mirror_dir: Path, table: str) -> int:
    """Rows of a mirror's table as another process sees them; 0 before the schema exists."""
    try:
        db = sqlite3.connect(f"file:{mirror_dir / 'mirror.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def rows(mirror: Mirror, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in mirror.db.execute(sql, list(params)).fetchall()]


def assert_consistent(mirror: Mirror) -> None:
    """The file is sound, and every text is readable with exact pack bookkeeping."""
    assert rows(mirror, "PRAGMA integrity_check") == [("ok",)]
    texts = [sha1 for (sha1,) in rows(mirror, "SELECT sha1 FROM texts")]
    # each pack's texts are at positions 0..records-1
    packed = rows(mirror, "SELECT p.records, (SELECT group_concat(position) FROM"
                          " (SELECT position FROM text_data t WHERE t.pack = p.id"
                          " ORDER BY position)) FROM text_packs p")  # fmt: skip
    for records, positions in packed:
        assert positions == ",".join(map(str, range(records)))
    assert rows(mirror, "SELECT count(*) FROM text_data WHERE pack IS NULL") == [(0,)]
    mirror.texts.clear_caches()
    for sha1 in texts:
        assert text_sha1(mirror.read_text(sha1)) == sha1  # get_bytes checks it too
    dangling = rows(mirror, "SELECT text_sha1 FROM slots WHERE text_sha1 IS NOT NULL"
                            " AND text_sha1 NOT IN (SELECT sha1 FROM texts)")  # fmt: skip
    assert dangling == []
    # each text's count of the slots naming it (kept by triggers) is exact
    miscounted = rows(mirror, "SELECT t.id, t.refs, (SELECT count(*) FROM slots s"
                              " WHERE s.text_id = t.id) AS n FROM text_data t WHERE t.refs != n")
    assert miscounted == []
    # a revision's main slot is in its own row or in slot_data, never both
    assert rows(mirror, "SELECT revid FROM revision_data r WHERE kind IS NOT NULL"
                        " AND EXISTS (SELECT 1 FROM slot_data s WHERE s.revid = r.revid)") == []


def check_store(directory: Path) -> int:
    """The mirror as a killed run left it: sound, with no torn or orphaned data.

    Returns the number of revisions it holds. (Opening it read-write first
    recovers the WAL, as the next run would.)
    """
    if not (directory / DB_NAME).exists():
        return 0  # killed before it created anything
    with Mirror.open(directory, create=False) as mirror:
        # integrity_check; every text decompresses and matches its sha1; delta
        # chain bookkeeping exact; every slot's text present
        assert_consistent(mirror)
        for what, sql in ORPHANS.items():
            count = mirror.db.execute(sql).fetchone()[0]
            assert count == 0, f"{count} {what}"
        return mirror.count_revisions()


def check_crawl_checkpoints(directory: Path) -> None:
    """Each stream's committed count equals the revisions stored: no batch half in."""
    if not (directory / DB_NAME).exists():
        return
    with Mirror.open(directory, create=False) as mirror:
        counted = sum(cp.items for cp in mirror.list_checkpoints("crawl/revisions/"))
        assert counted == mirror.count_revisions()


# -- served fakes ----------------------------------------------------------------------

Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[str, str, dict[str, str], bytes], Answer]


@dataclass
class Served:
    """A running loopback server and what it was asked."""

    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80


@contextmanager
def serve(answer: Handler, *, tls: ssl.SSLContext | None = None) -> Iterator[Served]:
    """A threaded HTTP(S) server on 127.0.0.1 that answers every request with ``answer``."""
    served = Served("")

    class Handle(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            served.requests.append((self.command, self.path))
            status, headers, content = answer(self.command, self.path, dict(self.headers), body)
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = handle_one

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    served.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_fake(wiki: FakeWiki) -> Iterator[Served]:
    """The fake wiki behind a real socket, so the command line itself can crawl it."""

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        url = f"http://{wiki.host}{path}"
        request = httpx.Request(method, url, headers=headers, content=body)
        params = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
        if method == "POST":
            params.update({k: v[-1] for k, v in parse_qs(body.decode()).items()})
        wiki.requests.append((0.0, params, request))
        response = next((r for r in (f(request, params) for f in wiki.faults) if r), None)
        response = response or wiki.route(request, params)
        return response.status_code, dict(response.headers), response.content

    with serve(answer) as served:
        wiki.host = urlsplit(served.url).netloc
        yield served


# -- storage records -------------------------------------------------------------------


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def rev(revid: int, pageid: int, timestamp: str, text: str | None, **kw: Any) -> RevisionRecord:
    size = len(text.encode("utf-8")) if text is not None else 7
    digest = sha1(text) if text is not None else None
    fields: dict[str, Any] = {
        "parentid": None, "user": "Zoë", "userid": 3, "comment": "summary", "minor": False,
        "size": size, "sha1": digest,
        "slots": [SlotRecord("main", "wikitext", "text/x-wiki", size, digest, text)],
    }  # fmt: skip
    fields.update(kw)
    return RevisionRecord(revid=revid, pageid=pageid, timestamp=timestamp, **fields)


def hidden_rev(revid: int, pageid: int, timestamp: str, **kw: Any) -> RevisionRecord:
    """A revision whose text (and so its sha1) was revision-deleted."""
    slot = SlotRecord("main", "wikitext", "text/x-wiki", 7, None, None, texthidden=True)
    return rev(revid, pageid, timestamp, None, sha1=None, texthidden=True, sha1hidden=True,
               slots=[slot], **kw)


def edited_history(n: int, seed: int = 1, words: int = 1500) -> list[str]:
    """n versions of an article, each one small random edit away from the last."""
    rng = random.Random(seed)
    vocab = [f"w{rng.randrange(10**6)}" for _ in range(3000)]
    doc = [rng.choice(vocab) for _ in range(words)]
    out = []
    for _ in range(n):
        pos = rng.randrange(len(doc))
        action = rng.random()
        if action < 0.5:
            doc.insert(pos, rng.choice(vocab))
        elif action < 0.8:
            doc[pos] = rng.choice(vocab)
        else:
            del doc[pos]
        out.append(" ".join(doc))
    return out


def make_mirror_at(directory: Path, version: int) -> None:
    """A mirror as a harvester whose schema ended at migration ``version`` made it."""
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / DB_NAME, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    schema.migrate(sqlite_utils.Database(conn), upto=version)
    conn.close()


# -- the files of a mirror --------------------------------------------------------------


def file_states(mirror_dir: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Every file version of a mirror, (name, timestamp) -> (state, sha1)."""
    with Mirror.open(mirror_dir, create=False) as mirror:
        return {(v["name"], v["timestamp"]): (v["state"], v["sha1"])
                for f in list(files.iter_files(mirror))
                for v in files.file_versions(mirror, f["name"])}


def held(mirror_dir: Path) -> set[str]:
    """The SHA-1s whose bytes DIR/files holds, each checked against its bytes; no
    partial download left."""
    found = set()
    for path in (mirror_dir / "files").rglob("*"):
        if path.is_file():
            assert not path.name.endswith(".part"), path
            assert hashlib.sha1(path.read_bytes()).hexdigest() == path.name, path
            found.add(path.name)
    return found
