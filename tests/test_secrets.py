"""Secrets never leak: not to the terminal, the logs, a traceback, the mirror or an export.

A bot password (against the real MediaWiki), a wrong password and an OAuth token go
through crawls, a killed crawl, syncs, exports and an internal error, with every log
line switched on and the progress lines forced; then every byte that was printed or
written (the mirror's SQLite files, its WAL and shared memory included) is searched
for them. Each run first shows that the secret was really used, so the search has
something to miss.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from jobs import outcome
from tests.fakewiki import FakeWiki, make_pages
from tests.helpers import ROOT, serve_fake

WRONG_PASSWORD = "Wrong-Secret-9c1f2e7a-do-not-print"
OAUTH_TOKEN = "oauth-Token-5b1e77d2-do-not-print"
# The command line with the periodic progress lines forced (one per stored batch
# instead of one per 30 s) and, when asked, an internal error provoked after login.
LAUNCH = """
import sys
import jobs.progress
jobs.progress.LOG_EVERY_SECONDS = 0.0
if sys.argv[1] == "provoke":
    import jobs.crawl
    async def broken(*args, **kwargs):
        raise RuntimeError("provoked internal error")
    jobs.crawl.record_bots = broken
from harvester.cli import main
sys.exit(main(sys.argv[2:]))
"""


class Runs:
    """Runs the command line and keeps everything it printed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.printed: dict[str, bytes] = {}

    def env(self, **secrets: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("HARVESTER_")}
        return {**clean, **secrets}

    def command(self, args: tuple[str, ...], provoke: bool) -> list[str]:
        return [sys.executable, "-c", LAUNCH, "provoke" if provoke else "plain", *args]

    def run(self, label: str, *args: str, env: dict[str, str], provoke: bool = False
            ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(args, provoke), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        self.printed[f"{label} stdout"] = done.stdout.encode()
        self.printed[f"{label} stderr"] = done.stderr.encode()
        return done

    def files(self) -> dict[str, bytes]:
        """Every file the runs left under the test's directory, as raw bytes."""
        return {str(p): p.read_bytes() for p in self.tmp_path.rglob("*") if p.is_file()}


def forms(secret: str) -> list[bytes]:
    """The ways a secret could be written out: as is, URL-encoded, JSON-escaped."""
    return sorted({secret.encode(), quote(secret, safe="").encode(),
                   quote_plus(secret).encode(), json.dumps(secret)[1:-1].encode(),
                   secret.encode("utf-16-le")})


def leaks(secret: str, blobs: dict[str, bytes]) -> list[str]:
    return sorted(name for name, data in blobs.items() if any(f in data for f in forms(secret)))


def test_leak_search_finds_what_is_there() -> None:
    """The search below would see a secret that got out, in any of its forms."""
    blobs = {"plain": b"x Abc+d/e=f y", "url": b"lgpassword=Abc%2Bd%2Fe%3Df",
             "other": b"nothing here"}
    assert leaks("Abc+d/e=f", blobs) == ["plain", "url"]


def kill_when_written(command: list[str], env: dict[str, str], mirror: Path,
                      stderr: Path) -> bytes:
    """Run a crawl and SIGKILL it once its WAL holds data: the WAL and shm stay behind."""
    wal = mirror / "mirror.sqlite-wal"
    with stderr.open("wb") as err:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=err)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if wal.exists() and wal.stat().st_size > 0 and b"revisions stored" in (
                    stderr.read_bytes()):
                break
            time.sleep(0.02)
        assert child.poll() is None, "the crawl ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    return wal.read_bytes() + (mirror / "mirror.sqlite-shm").read_bytes()


@pytest.mark.mediawiki
def test_bot_password_never_leaks(tmp_path: Path, shared_server: Any,
                                  bot_password: tuple[str, str]) -> None:
    name, secret = bot_password
    api, mirror, out = shared_server.api_url, tmp_path / "m", tmp_path / "out"
    out.mkdir()
    runs = Runs(tmp_path)
    login = runs.env(HARVESTER_PASSWORD=secret)
    every_log = ("-vv", "--user", name)

    # killed mid-crawl: the WAL and shared-memory files are left as they were
    slow = (*every_log, "--max-rps", "3", "--max-rpm", "0")
    runs.printed["killed wal+shm"] = kill_when_written(
        runs.command(("crawl", api, "--mirror", str(mirror), *slow), False), login, mirror,
        tmp_path / "killed.err")
    runs.printed["killed stderr"] = (tmp_path / "killed.err").read_bytes()
    (tmp_path / "killed.err").unlink()
    assert (mirror / "mirror.sqlite-wal").exists()

    done = runs.run("crawl", "crawl", api, "--mirror", str(mirror), *every_log, "--max-rps",
                    "0", env=login)
    assert done.returncode == 0, done.stderr
    assert f"as {name.split('@')[0]}" in done.stdout  # logged in: the secret was sent, and right
    assert "revisions stored" in done.stderr  # the forced progress lines are in the search
    assert " DEBUG harvester.client: request " in done.stderr  # and the debug log of each request

    done = runs.run("wrong", "crawl", api, "--mirror", str(tmp_path / "w"), *every_log,
                    env=runs.env(HARVESTER_PASSWORD=WRONG_PASSWORD))
    assert done.returncode == outcome.EXIT_API and f"login as {name} failed" in done.stderr

    done = runs.run("sync", "sync", "--mirror", str(mirror), *every_log, env=login)
    assert done.returncode == 0, done.stderr

    done = runs.run("provoked", "crawl", api, "--mirror", str(tmp_path / "p"), *every_log,
                    "--debug", env=login, provoke=True)
    assert done.returncode != 0 and "Traceback" in done.stderr
    assert "provoked internal error" in done.stderr
    done = runs.run("provoked quiet", "crawl", api, "--mirror", str(tmp_path / "p"),
                    *every_log, env=login, provoke=True)
    assert done.returncode == outcome.EXIT_INTERNAL and "internal error" in done.stderr

    for fmt in ("jsonl", "xml"):
        done = runs.run(f"export {fmt}", "export", "--mirror", str(mirror), "--format", fmt,
                        "--output", str(out / f"all.{fmt}"), env=login)
        assert done.returncode == 0, done.stderr
    done = runs.run("export stdout", "export", "--mirror", str(mirror), env=login)
    assert done.returncode == 0 and done.stdout.count("\n") > 100

    blobs = {**runs.printed, **runs.files()}
    assert any(name.endswith("mirror.sqlite") for name in blobs)
    assert any(name.endswith("all.xml.attribution.txt") for name in blobs)
    assert leaks(secret, blobs) == []
    assert leaks(WRONG_PASSWORD, blobs) == []
    assert leaks(secret, {"environment": str(login).encode()}) == ["environment"]
    # the login session's cookie is a secret too: no header dump may show it
    printed = b"".join(runs.printed.values()).lower()
    assert b"set-cookie" not in printed and b"_session=" not in printed


@pytest.mark.mediawiki
def test_oauth_token_never_leaks(tmp_path: Path, shared_server: Any) -> None:
    runs = Runs(tmp_path)
    token = runs.env(HARVESTER_OAUTH_TOKEN=OAUTH_TOKEN)
    wiki = FakeWiki(make_pages(3, 60))
    wiki.high_limit_users.add("OAuthUser")
    presented: list[str] = []

    def accept(request: httpx.Request, params: dict[str, str]) -> httpx.Response | None:
        presented.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") == f"Bearer {OAUTH_TOKEN}":
            wiki.logged_in = "OAuthUser"
        return None

    wiki.faults.append(accept)
    mirror = tmp_path / "m"
    with serve_fake(wiki) as server:
        done = runs.run("crawl", "crawl", server.url + "/w/api.php", "--mirror", str(mirror),
                        "-vv", env=token)
        assert done.returncode == 0, done.stderr
        provoked = runs.run("provoked", "crawl", server.url + "/w/api.php", "--mirror",
                            str(tmp_path / "p"), "-vv", "--debug", env=token, provoke=True)
    assert "as OAuthUser" in done.stdout and "revisions stored" in done.stderr
    assert presented and set(presented) == {f"Bearer {OAUTH_TOKEN}"}  # sent, every time
    assert "provoked internal error" in provoked.stderr and "Traceback" in provoked.stderr

    # MediaWiki without the OAuth extension does not take the token: an error path
    done = runs.run("rejected", "crawl", shared_server.api_url, "--mirror",
                    str(tmp_path / "r"), "-vv", env=token)
    assert done.returncode == outcome.EXIT_API and "not accepted" in done.stderr
    done = runs.run("export", "export", "--mirror", str(mirror), "--format", "xml",
                    "--output", str(tmp_path / "all.xml"), env=token)
    assert done.returncode == 0, done.stderr

    blobs = {**runs.printed, **runs.files()}
    assert any(name.endswith("all.xml") for name in blobs)
    assert leaks(OAUTH_TOKEN, blobs) == []
