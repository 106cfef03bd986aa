"""Real MediaWiki wikis on 127.0.0.1 for the harvester's tests, benchmarks and demo.

Uses Debian's ``mediawiki`` package (1.39 LTS) on SQLite, served by PHP's
built-in web server.  Each wiki lives in its own directory (LocalSettings.php
plus ``db/``); ``MW_CONFIG_FILE`` points the shared MediaWiki code at it, so
many wikis can run side by side.  Nothing here talks to anything but 127.0.0.1.

Command line (see ``--help``)::

    scripts/demo-wiki start [--dir DIR] [--port 8080] [--scale 1]
    scripts/demo-wiki stop [--dir DIR]
    scripts/demo-wiki serve [--dir DIR] [--port 8080] [--scale 1]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TextIO

import fixture_xml
import httpx
from fixture_xml import (
    EXTERNAL_USERS,
    LOCAL_USERS,
    SITENAME,
    WORDS,
    FixtureStats,
    generate_fixture_xml,
)

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "LIVE_USERS",
    "MW_DIR",
    "DemoWikiError",
    "FixtureStats",
    "Wiki",
    "WikiServer",
    "add_live_edits",
    "build_fixture_wiki",
    "cached_fixture_wiki",
    "copy_wiki",
    "create_bot_password",
    "create_wiki",
    "dump_backup",
    "ensure_mediawiki_installed",
    "free_port",
    "generate_fixture_xml",
    "group_alive",
    "hide_some_revisions",
    "import_xml",
    "load_manifest",
    "run_maintenance",
    "set_port",
    "update_site_stats",
    "wiki_at",
]

MW_DIR = Path("/usr/share/mediawiki")
ROUTER = Path(__file__).with_name("mw_router.php")
APT_PACKAGES = ("mediawiki", "php-sqlite3", "php-cli", "php-mbstring", "php-intl", "php-xml")
ADMIN_USER = "Admin"
# Local-only demo wikis; sysop passwords must be at least 10 characters long.
ADMIN_PASSWORD = "Demo-Admin-Password-2024"
LIVE_USERS: tuple[str, ...] = ("Carol", "Δημήτρης", "Eve Example")
MANIFEST = "fixture.json"
PID_FILE = "server.pid"
SERVER_LOG = "server.log"

Log = Callable[[str], None]


class DemoWikiError(RuntimeError):
    """Anything that stops a demo wiki from being built or served."""


def _quiet(_message: str) -> None:
    pass


# ---------------------------------------------------------------- install


def ensure_mediawiki_installed() -> None:
    """Install Debian's MediaWiki and PHP when missing (needs root)."""
    if (MW_DIR / "maintenance" / "install.php").is_file() and shutil.which("php"):
        return
    command = "apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES)
    if os.geteuid() != 0:
        raise DemoWikiError(f"MediaWiki is not installed; as root run: {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
    )
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DemoWikiError(f"{' '.join(step)} failed: {_tail(done.stderr or done.stdout)}")
    if not (MW_DIR / "maintenance" / "install.php").is_file():
        raise DemoWikiError(f"apt-get installed mediawiki but {MW_DIR} is still missing")


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------- wiki on disk


@dataclass
class Wiki:
    """A wiki directory and the loopback address it is configured for."""

    directory: Path
    port: int
    api_url: str
    index_url: str
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def at_port(cls, directory: Path, port: int) -> Wiki:
        base = f"http://127.0.0.1:{port}"
        return cls(directory.resolve(), port, f"{base}/api.php", f"{base}/index.php")

    @property
    def settings(self) -> Path:
        return self.directory / "LocalSettings.php"

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


_SERVER_LINE = re.compile(r'^\$wgServer = "http://127\.0\.0\.1:(\d+)";$', re.MULTILINE)


def wiki_at(directory: Path) -> Wiki:
    """The wiki already set up in ``directory``."""
    settings = directory / "LocalSettings.php"
    if not settings.is_file():
        raise DemoWikiError(f"{directory} holds no wiki (no LocalSettings.php)")
    match = _SERVER_LINE.search(settings.read_text(encoding="utf-8"))
    if match is None:
        raise DemoWikiError(f"{settings} has no loopback $wgServer line")
    return Wiki.at_port(directory, int(match.group(1)))


def _settings_block(extra_settings: str) -> str:
    # The Admin (sysop) may not revision-delete or suppress in 1.39 by default;
    # tests need both to produce hidden revisions.
    rights = ("deleterevision", "suppressrevision", "viewsuppressed", "deletelogentry",
              "suppressionlog")
    lines = [
        "",
        "# ---- demo-wiki settings ----",
        "# Tests hammer the API from one address; limits would only slow them down.",
        "$wgRateLimits = [];",
        "$wgEnableUploads = false;",
        "$wgShowExceptionDetails = true;",
        *(f"$wgGroupPermissions['sysop']['{right}'] = true;" for right in rights),
        "# A second content slot, as on Commons (mediainfo): the fixture has a page with it.",
        "$wgHooks['MediaWikiServices'][] = static function ( $services ) {",
        "    $services->addServiceManipulator( 'SlotRoleRegistry', static function ( $roles ) {",
        "        $roles->defineRoleWithModel( 'extra', CONTENT_MODEL_TEXT );",
        "    } );",
        "};",
        extra_settings,
        "",
    ]
    return "\n".join(lines)


# A wiki whose tests upload files: its own upload directory (DIR/images), served by
# the router; the file types the tests use.
UPLOAD_SETTINGS = """
$wgEnableUploads = true;
$wgUploadDirectory = __DIR__ . '/images';
$wgUploadPath = "$wgScriptPath/images";
$wgFileExtensions = [ 'png', 'gif', 'jpg', 'jpeg', 'txt', 'pdf' ];
$wgUseInstantCommons = false;
"""


def create_wiki(directory: Path, port: int, *, extra_settings: str = "") -> Wiki:
    """Install a fresh SQLite wiki into ``directory`` for http://127.0.0.1:PORT."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "LocalSettings.php").exists():
        raise DemoWikiError(f"{directory} already holds a wiki")
    wiki = Wiki.at_port(directory, port)
    args = [
        "--dbtype=sqlite", f"--dbpath={wiki.directory / 'db'}", f"--confpath={wiki.directory}",
        f"--server={wiki.server_url}", "--scriptpath=", f"--pass={ADMIN_PASSWORD}",
        "--lang=en", SITENAME, ADMIN_USER,
    ]
    _php(wiki, "install.php", args, config=False)
    text = wiki.settings.read_text(encoding="utf-8")
    # Relative to the settings file, so a copied directory works unchanged.
    text = re.sub(r"^\$wgSQLiteDataDir = .*$", '$wgSQLiteDataDir = __DIR__ . "/db";',
                  text, count=1, flags=re.MULTILINE)
    wiki.settings.write_text(text + _settings_block(extra_settings), encoding="utf-8")
    return wiki


def set_port(wiki: Wiki, port: int) -> Wiki:
    """Point the wiki's $wgServer at another loopback port."""
    text = wiki.settings.read_text(encoding="utf-8")
    text, count = _SERVER_LINE.subn(f'$wgServer = "http://127.0.0.1:{port}";', text)
    if count != 1:
        raise DemoWikiError(f"{wiki.settings} has no loopback $wgServer line")
    wiki.settings.write_text(text, encoding="utf-8")
    return Wiki.at_port(wiki.directory, port)


def copy_wiki(wiki: Wiki, directory: Path, port: int) -> Wiki:
    """Copy a wiki that no server is writing to, configured for another port."""
    shutil.copytree(
        wiki.directory, directory,
        ignore=shutil.ignore_patterns(PID_FILE, SERVER_LOG, "*.xml", "*-wal", "*-shm"),
    )
    return set_port(Wiki.at_port(directory, wiki.port), port)


def load_manifest(wiki: Wiki) -> dict[str, Any]:
    """What build_fixture_wiki recorded about the wiki (users, hidden revisions, ...)."""
    data: dict[str, Any] = json.loads((wiki.directory / MANIFEST).read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------- maintenance


def _php(
    wiki: Wiki,
    script: str,
    args: Sequence[str],
    *,
    config: bool | Path = True,
    input: str | None = None,
    stdout: TextIO | None = None,
) -> str:
    """Run a maintenance script; ``config`` may name an alternative settings file."""
    env = dict(os.environ)
    if config:
        env["MW_CONFIG_FILE"] = str(config if isinstance(config, Path) else wiki.settings)
    command = ["php", str(MW_DIR / "maintenance" / script), *args]
    done = subprocess.run(
        command, cwd=MW_DIR, env=env, input=input, text=True, check=False,
        stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE,
    )
    if done.returncode != 0:
        detail = _tail(done.stderr or "") or _tail(done.stdout or "")
        raise DemoWikiError(f"{script} failed (exit {done.returncode}): {detail}")
    return done.stdout or ""


def run_maintenance(wiki: Wiki, script: str, *args: str, input: str | None = None) -> str:
    """Run ``maintenance/SCRIPT`` against the wiki; returns its standard output."""
    return _php(wiki, script, args, input=input)


def create_users(wiki: Wiki, names: Sequence[str]) -> None:
    """Create password-less local accounts, all in one PHP process (fast)."""
    payload = base64.b64encode(json.dumps(list(names)).encode()).decode()
    # eval.php runs one line of PHP; base64 spares us quoting names like O'Brien.
    code = (
        f"foreach (json_decode(base64_decode('{payload}')) as $n) "
        "{ if (!User::idFromName($n)) { User::createNew($n); } }\n"
    )
    _php(wiki, "eval.php", [], input=code)


# Used only while importing: without an fsync per revision the import of the
# fixture takes half the time.  A crash would only lose a throwaway wiki.
_FAST_WRITES = """<?php
require __DIR__ . '/LocalSettings.php';
$wgDBservers = [ [
	'host' => '', 'user' => '', 'password' => '', 'dbname' => $wgDBname,
	'type' => 'sqlite', 'load' => 1, 'flags' => DBO_DEFAULT,
	'dbDirectory' => $wgSQLiteDataDir, 'variables' => [ 'synchronous' => 'OFF' ],
] ];
"""


def import_xml(wiki: Wiki, xml_path: Path, *, refresh_links: bool = True,
               uploads: bool = False) -> None:
    """Import an export-format XML file and bring the site statistics up to date.

    Contributor names are kept when a local account of that name exists (ids
    are then the local ones); other names become "imported>Name" with user id
    0, which is importDump.php's default ``--username-prefix=imported``.
    ``--no-updates`` makes the import about twice as fast but leaves the link
    tables empty; ``refresh_links`` rebuilds them from the current revisions,
    which categorymembers, backlinks and the "articles" count rely on.
    ``uploads``: the files' versions in the XML too (``<upload>``, bytes included).
    """
    fast = wiki.directory / "ImportSettings.php"
    fast.write_text(_FAST_WRITES, encoding="utf-8")
    try:
        options = ["--no-updates", *(["--uploads"] if uploads else [])]
        _php(wiki, "importDump.php", [*options, str(xml_path.resolve())], config=fast)
        if refresh_links:
            _php(wiki, "refreshLinks.php", [], config=fast)
    finally:
        fast.unlink()
    update_site_stats(wiki)


def update_site_stats(wiki: Wiki) -> None:
    """Run queued jobs and recount siteinfo statistics (imports skip both)."""
    _php(wiki, "runJobs.php", [])
    # --active also recounts "activeusers" from recentchanges.
    _php(wiki, "initSiteStats.php", ["--update", "--active"])


def import_images(wiki: Wiki, directory: Path, *, user: str, summary: str,
                  timestamp: str | None = None, overwrite: bool = False) -> None:
    """Upload every file of ``directory`` under its own name (importImages.php); with
    ``overwrite``, as a new version of the file of that name. ``timestamp``: the
    versions' upload time, 14 digits (YYYYmmddHHMMSS). MediaWiki names an old
    version after the second it was replaced in, so a file takes one new version a
    second: see :func:`next_second`."""
    args = [f"--user={user}", f"--summary={summary}", f"--comment={summary}"]
    if timestamp is not None:
        args.append(f"--timestamp={timestamp}")
    if overwrite:
        args.append("--overwrite")
    _php(wiki, "importImages.php", [*args, str(directory.resolve())])


def png_image(width: int, height: int, seed: str, *, noise: bool = False) -> bytes:
    """A valid RGB PNG: one colour from ``seed``, or with ``noise`` random pixels, stored
    uncompressed (about 3 bytes a pixel: big files on demand)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    if noise:
        rng, size = random.Random(seed), width * height * 3
        pixels = b"".join(rng.randbytes(min(1 << 20, size - at)) for at in range(0, size, 1 << 20))
        raw = b"".join(b"\x00" + pixels[row * width * 3:(row + 1) * width * 3]
                       for row in range(height))
    else:
        colour = hashlib.sha1(seed.encode()).digest()[:3]
        raw = (b"\x00" + colour * width) * height
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 0 if noise else 9)) + chunk(b"IEND", b""))


def next_second() -> None:
    """Return once the wall clock's second has changed (see :func:`import_images`)."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def wiki_file_versions(wiki: Wiki) -> list[dict[str, Any]]:
    """Every version of every file as the wiki itself keeps it (its ``image``,
    ``oldimage`` and ``filearchive`` tables), SHA-1s in hex: what a mirror's files are
    compared with. ``table`` says where each is; ``deleted`` is the revision-deletion
    bit field (1: the file hidden)."""
    database = wiki_database(wiki)
    query = """
        SELECT 'image', img_name, NULL, img_timestamp, img_size, img_sha1, 0 FROM image
        UNION ALL SELECT 'oldimage', oi_name, oi_archive_name, oi_timestamp, oi_size, oi_sha1,
                         oi_deleted FROM oldimage
        UNION ALL SELECT 'filearchive', fa_name, fa_archive_name, fa_timestamp, fa_size, fa_sha1,
                         fa_deleted FROM filearchive"""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = db.execute(query).fetchall()
    return [{"table": table, "name": name, "archivename": archive,
             "timestamp": f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z",
             "size": size, "sha1": format(int(sha1, 36), "040x"), "deleted": deleted}
            for table, name, archive, ts, size, sha1, deleted in rows]


def wiki_revision_tags(wiki: Wiki) -> dict[int, list[str]]:
    """The change tags of each tagged revision, from the wiki's own tables (dumps do
    not carry them)."""
    with contextlib.closing(sqlite3.connect(f"file:{wiki_database(wiki)}?mode=ro",
                                            uri=True)) as db:
        rows = db.execute("SELECT ct_rev_id, ctd_name FROM change_tag JOIN change_tag_def"
                          " ON ctd_id = ct_tag_id WHERE ct_rev_id IS NOT NULL").fetchall()
    tags: dict[int, list[str]] = {}
    for revid, name in rows:
        tags.setdefault(int(revid), []).append(name)
    return {revid: sorted(names) for revid, names in tags.items()}


def wiki_database(wiki: Wiki) -> Path:
    """The wiki's main SQLite file (``$wgDBname``.sqlite)."""
    match = re.search(r'^\$wgDBname = "([^"]+)";', wiki.settings.read_text(encoding="utf-8"),
                      re.MULTILINE)
    if match is None:
        raise DemoWikiError(f"{wiki.settings} has no $wgDBname line")
    return wiki.directory / "db" / f"{match.group(1)}.sqlite"


def dump_backup(wiki: Wiki, out: Path) -> Path:
    """MediaWiki's own full-history dump (schema 0.11, sha1 in base 36)."""
    with out.open("w", encoding="utf-8") as handle:
        _php(wiki, "dumpBackup.php", ["--full", "--quiet"], stdout=handle)
    return out


def create_bot_password(
    wiki: Wiki,
    user: str = ADMIN_USER,
    appid: str = "harvest",
    grants: Sequence[str] = ("basic", "highvolume"),
) -> tuple[str, str]:
    """A bot password for ``user``; returns (login name "User@appid", secret)."""
    output = _php(wiki, "createBotPassword.php",
                  ["--appid", appid, "--grants", ",".join(grants), user])
    # Prints: Log in using username:'Admin@harvest' and password:'<32 chars>'.
    match = re.search(r"username:'(.+)' and password:'([^']+)'", output)
    if match is None:
        raise DemoWikiError(f"unexpected createBotPassword.php output: {output.strip()}")
    return match.group(1), match.group(2)


# ---------------------------------------------------------------- serving


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Runs php -S for an owner (a test session, a benchmark) and takes the server
# down when the owner ends, however it ends: the owner holds our stdin, and the
# kernel closes it when the owner dies, even by SIGKILL. php -S's workers are
# forked by php itself and would otherwise outlive a killed owner, holding the port.
_WATCHDOG = """
import os, signal, subprocess, sys, threading
server = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def owner_gone():
    sys.stdin.buffer.read()
    os.killpg(0, signal.SIGTERM)
threading.Thread(target=owner_gone, daemon=True).start()
sys.exit(server.wait())
"""


class WikiServer:
    """``php -S`` serving one wiki; a context manager, or start()/stop() by hand.

    ``detached=False`` (the default): the server stops when this process ends,
    however it ends. ``detached=True`` (``demo-wiki start``): it runs until stopped.
    """

    def __init__(self, wiki: Wiki, workers: int = 4, *, ready_timeout: float = 20.0,
                 detached: bool = False, env: dict[str, str] | None = None) -> None:
        self.wiki = wiki
        self.env = env or {}  # more environment for the server (DEMO_WIKI_FILE_RATE)
        self.workers = workers
        self.ready_timeout = ready_timeout
        self.detached = detached
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.wiki.server_url

    @property
    def api_url(self) -> str:
        return self.wiki.api_url

    @property
    def log_path(self) -> Path:
        return self.wiki.directory / SERVER_LOG

    @property
    def pgid(self) -> int | None:
        """The process group of php -S and its workers (its own session), while running."""
        return None if self.process is None else self.process.pid

    def start(self) -> WikiServer:
        env = {
            **os.environ,
            "MW_CONFIG_FILE": str(self.wiki.settings),
            "PHP_CLI_SERVER_WORKERS": str(self.workers),
            **self.env,
        }
        # php -S keeps OPcache on; revalidating on every request lets a test change
        # LocalSettings.php under a running server and see it at once.
        # The router serves the wiki's uploaded files (scripts/mw_router.php).
        command = ["php", "-d", "opcache.revalidate_freq=0", "-S", f"127.0.0.1:{self.wiki.port}",
                   "-t", str(MW_DIR), str(ROUTER)]
        if not self.detached:
            command = [sys.executable, "-c", _WATCHDOG, *command]
        with self.log_path.open("ab") as log:
            # Own session = own process group: stop() takes the workers down too.
            self.process = subprocess.Popen(
                command, cwd=MW_DIR, env=env,
                stdin=subprocess.DEVNULL if self.detached else subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        probe = f"{self.api_url}?action=query&meta=siteinfo&format=json"
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    log = self.log_path.read_text(encoding="utf-8", errors="replace")
                    raise DemoWikiError(f"php -S exited at start: {_tail(log, 5)}")
                with contextlib.suppress(httpx.HTTPError):
                    if "query" in client.get(probe).json():
                        return
                time.sleep(0.1)
        raise DemoWikiError(f"no answer from {probe} within {self.ready_timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process_group(self.process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process = None

    def wait(self) -> int:
        """Block until the server exits (foreground serving)."""
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> WikiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_process_group(pgid: int, timeout: float = 5.0) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in the group.

    Zombies count as gone: the leader stays one until its parent reaps it, and
    kill(0) would keep reporting it as present.
    """
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    return any(fields[0] != "Z" for fields in process_group_stats(pgid))


def process_group_stats(pgid: int) -> Iterator[list[str]]:
    """The /proc/PID/stat fields of each process in a group, from the state on (after
    the ")" closing the command name: state, ppid, pgrp, ..., utime at index 11; see
    proc(5)). Nothing without /proc; processes that exit meanwhile are skipped."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                yield fields


# ---------------------------------------------------------------- API client


class Api:
    """Minimal synchronous Action API client (formatversion 2, cookies kept)."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.client = httpx.Client(timeout=60.0)

    def call(self, method: str = "GET", **params: str | int) -> dict[str, Any]:
        params = {"format": "json", "formatversion": 2, **params}
        if method == "GET":
            response = self.client.get(self.api_url, params=params)
        else:
            response = self.client.post(self.api_url, data=params)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        if "error" in data:
            raise DemoWikiError(f"API {params.get('action')}: {data['error']}")
        return data

    def token(self, kind: str = "csrf") -> str:
        data = self.call(action="query", meta="tokens", type=kind)
        token: str = data["query"]["tokens"][f"{kind}token"]
        return token

    def login(self, name: str, password: str) -> None:
        token = self.token("login")
        data = self.call("POST", action="login", lgname=name, lgpassword=password, lgtoken=token)
        if data["login"]["result"] != "Success":
            raise DemoWikiError(f"login as {name} failed: {data['login']}")

    def edit(self, title: str, summary: str, **params: str | int) -> int:
        """Edit (or create) a page; returns the new revision id."""
        data = self.call("POST", action="edit", title=title, summary=summary,
                         token=self.token(), **params)
        edit = data["edit"]
        if edit.get("result") != "Success" or "newrevid" not in edit:
            raise DemoWikiError(f"edit of {title} did not save: {edit}")
        newrevid: int = edit["newrevid"]
        return newrevid

    def upload(self, filename: str, data: bytes, comment: str) -> dict[str, Any]:
        """Upload ``data`` as ``filename`` (a new version if it exists); its imageinfo."""
        response = self.client.post(self.api_url, data={
            "action": "upload", "filename": filename, "comment": comment,
            "ignorewarnings": "1", "token": self.token(), "format": "json",
            "formatversion": "2"}, files={"file": (filename, data, "application/octet-stream")})
        response.raise_for_status()
        answer = response.json()
        if answer.get("upload", {}).get("result") != "Success":
            raise DemoWikiError(f"upload of {filename} failed: {answer}")
        info: dict[str, Any] = answer["upload"]["imageinfo"]
        return info

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- live activity

# Existing pages of the fixture that get live edits on top of their history.
LIVE_PAGES: tuple[str, ...] = (
    "Rock 'n' roll", "Café society", "東京", "AT&T", "C++", "Zürich",
    "Talk:Rock 'n' roll", f"{SITENAME}:Sandbox", "Stub",
)
LIVE_SUMMARIES: tuple[str, ...] = (
    "live update", "", "Προσθήκη πηγής", "Neue Informationen ergänzt", "fix", "追加",
)


def _live_sentence(rng: random.Random, number: int) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12)))
    return f"\n\nLive note {number}: {words}."


def _user_edits(api: Api, rng: random.Random, user_index: int) -> list[int]:
    """Nine edits by one logged-in user, with one special edit each."""
    revids: list[int] = []
    for i in range(9):
        title = LIVE_PAGES[(user_index * 3 + i) % len(LIVE_PAGES)]
        extra: dict[str, str | int] = {"minor": 1} if i == 2 else {}
        summary = LIVE_SUMMARIES[(user_index + i) % len(LIVE_SUMMARIES)]
        number = user_index * 100 + i
        revids.append(api.edit(title, summary, appendtext=_live_sentence(rng, number), **extra))
    if user_index == 0:
        text = "A page created on the live wiki.\n\n[[Category:Live]]\n"
        revids.append(api.edit("Fresh article (live)", "New page", text=text, createonly=1))
    elif user_index == 1:
        note = "{{Stub}}\n" + _live_sentence(rng, 199).strip() + "\n"
        revids.append(api.edit("C++", "Σημείωση στην αρχή", prependtext=note))
    else:
        revids.append(api.edit("Stub", "rewrite from scratch", text="Short and sweet.\n"))
    return revids


def _anonymous_edits(api: Api, rng: random.Random) -> list[int]:
    """Logged-out edits: MediaWiki records them under the client IP (127.0.0.1)."""
    revids = [
        api.edit(LIVE_PAGES[i % len(LIVE_PAGES)], LIVE_SUMMARIES[i % len(LIVE_SUMMARIES)],
                 appendtext=_live_sentence(rng, 500 + i))
        for i in range(14)
    ]
    revids.append(api.edit("Anonymous contribution", "", text="Written without an account.\n",
                           createonly=1))
    return revids


def add_live_edits(wiki: Wiki, server_url: str, *, seed: int = 1) -> list[int]:
    """Edits through the API by real local users and anonymously; returns new revids."""
    create_users(wiki, LIVE_USERS)
    api_url = f"{server_url}/api.php"
    rng = random.Random(seed)
    revids: list[int] = []
    suffix = os.urandom(3).hex()  # appids must be unique per user; allow re-runs
    for index, user in enumerate(LIVE_USERS):
        name, secret = create_bot_password(
            wiki, user, f"live{suffix}", ("basic", "editpage", "createeditmovepage"))
        with Api(api_url) as api:
            api.login(name, secret)
            revids += _user_edits(api, rng, index)
    with Api(api_url) as api:
        revids += _anonymous_edits(api, rng)
    return revids


# (page title, what to hide, suppress) -- the second revision of each page.
HIDE_PLAN: tuple[tuple[str, str, bool], ...] = (
    ("Café society", "content", False),
    ("Zürich", "user", False),
    ("C++", "comment", False),
    ("Mercury (planet)", "content|comment|user", False),
    ("Washington, D.C.", "content", True),
)
# How revisiondelete's names show up in dumps and in the harvester's export.
HIDDEN_FIELDS = {"content": ("text", "sha1"), "user": ("user",), "comment": ("comment",)}
HIDDEN_ORDER = ("user", "comment", "text", "sha1")


def hidden_fields(hide: str) -> list[str]:
    """Export field names hidden by a revisiondelete ``hide`` value, in export order."""
    names = {name for part in hide.split("|") for name in HIDDEN_FIELDS[part]}
    return [name for name in HIDDEN_ORDER if name in names]


def hide_some_revisions(wiki: Wiki, server_url: str) -> list[int]:
    """Revision-delete text, user, comment, all three, and suppress one; returns revids."""
    name, secret = create_bot_password(
        wiki, ADMIN_USER, f"revdel{os.urandom(3).hex()}",
        ("basic", "highvolume", "delete", "oversight"))
    revids: list[int] = []
    with Api(f"{server_url}/api.php") as api:
        api.login(name, secret)
        for title, hide, suppress in HIDE_PLAN:
            data = api.call(action="query", prop="revisions", titles=title,
                            rvdir="newer", rvlimit=2, rvprop="ids")
            revid: int = data["query"]["pages"][0]["revisions"][1]["revid"]
            result = api.call(
                "POST", action="revisiondelete", type="revision", target=title,
                ids=revid, hide=hide, suppress="yes" if suppress else "nochange",
                reason="demo: hidden on purpose", token=api.token(),
            )
            if result["revisiondelete"]["status"] != "Success":
                raise DemoWikiError(f"revisiondelete of {revid} failed: {result}")
            revids.append(revid)
    return revids


# ---------------------------------------------------------------- whole fixture


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str, log: Log) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - start, 2)
    log(f"{step}: {timings[step]:.1f} s")


def build_fixture_wiki(
    directory: Path,
    *,
    scale: int = 1,
    seed: int = 1,
    port: int | None = None,
    log: Log = _quiet,
) -> Wiki:
    """Create, fill and post-process the fixture wiki; leaves no server running.

    Writes ``fixture.json`` into the directory: counts, users, the bot password
    ``Admin@harvest`` (basic, highvolume), hidden revisions and step timings.
    """
    ensure_mediawiki_installed()
    timings: dict[str, float] = {}
    total = time.perf_counter()
    with _timed(timings, "install", log):
        wiki = create_wiki(directory, port or free_port())
        # Accounts first, so imported edits by these names get real user ids.
        create_users(wiki, LOCAL_USERS)
    xml_path = wiki.directory / "fixture.xml"
    with _timed(timings, "generate", log):
        stats = generate_fixture_xml(xml_path, seed=seed, scale=scale)
    with _timed(timings, "import", log):
        import_xml(wiki, xml_path)
    xml_path.unlink()
    with _timed(timings, "live", log), WikiServer(wiki) as server:
        live = add_live_edits(wiki, server.url, seed=seed)
        hidden = hide_some_revisions(wiki, server.url)
    update_site_stats(wiki)
    bot_name, bot_secret = create_bot_password(wiki)
    timings["total"] = round(time.perf_counter() - total, 2)
    _write_manifest(wiki, {
        "seed": seed, "scale": scale,
        "imported_pages": stats.pages, "imported_revisions": stats.revisions,
        "live_revids": live, **_hidden_manifest(hidden),
        "bot_password": {"name": bot_name, "password": bot_secret},
        "timings": timings,
    })
    wiki.timings = timings
    return wiki


def fixture_wiki(directory: Path, *, scale: int = 1, cache: Path | None = None) -> Wiki:
    """The fixture wiki in ``directory``: a copy of the build kept under ``cache`` (made
    there on first use), or, without a cache, built in place."""
    if cache:
        return cached_fixture_wiki(cache, directory, scale=scale)
    return build_fixture_wiki(directory, scale=scale)


def cached_fixture_wiki(
    cache: Path,
    directory: Path,
    *,
    scale: int = 1,
    seed: int = 1,
    port: int | None = None,
    log: Log = _quiet,
) -> Wiki:
    """A copy of a fixture wiki kept under ``cache``, built there on first use.

    Building at scale 10 takes minutes; a copy takes a second.  The cache key
    covers the arguments, the MediaWiki version and the source of this module
    and of the generator, so edits to either invalidate old builds.
    """
    hasher = hashlib.sha256(f"{scale}/{seed}".encode())
    for source in (Path(__file__), Path(fixture_xml.__file__), MW_DIR / "includes/Defines.php"):
        hasher.update(source.read_bytes())
    built = cache / f"fixture-s{scale}-{hasher.hexdigest()[:16]}"
    if not (built / MANIFEST).is_file():
        staging = cache / f"{built.name}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            build_fixture_wiki(staging, scale=scale, seed=seed, log=log)
            # Atomic publish: when a concurrent build got there first, keep that one.
            with contextlib.suppress(OSError):
                staging.rename(built)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return copy_wiki(wiki_at(built), directory, port or free_port())


def _hidden_manifest(revids: list[int]) -> dict[str, Any]:
    plans = list(zip(revids, HIDE_PLAN, strict=True))
    return {
        "hidden": {str(revid): hidden_fields(hide) for revid, (_, hide, _) in plans},
        "suppressed": [revid for revid, (_, _, suppress) in plans if suppress],
    }


def _write_manifest(wiki: Wiki, facts: dict[str, Any]) -> None:
    users = {
        "local_users": list(LOCAL_USERS),
        "external_users": [f"imported>{name}" for name in EXTERNAL_USERS],
        "live_users": list(LIVE_USERS),
    }
    text = json.dumps({**facts, **users}, indent=2, ensure_ascii=False)
    (wiki.directory / MANIFEST).write_text(text + "\n", encoding="utf-8")


# ---------------------------------------------------------------- command line


def _read_pid(directory: Path) -> int | None:
    """The pid of this directory's background server, if it is still running."""
    pid_file = directory / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # Guard against a recycled pid: only ever signal our own php -S.
    if b"-S" in cmdline and group_alive(pid):
        return pid
    return None


def _check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DemoWikiError(f"port {port} is in use; pick another with --port") from None


def _prepare(directory: Path, port: int, scale: int) -> Wiki:
    """The wiki in ``directory`` for ``port``, built first if the directory has none."""
    ensure_mediawiki_installed()
    pid = _read_pid(directory)
    if pid is not None:
        raise DemoWikiError(
            f"a server for {directory} is already running (pid {pid}); "
            f"stop it with: demo-wiki stop --dir {directory}")
    _check_port(port)
    if (directory / "LocalSettings.php").is_file():
        wiki = wiki_at(directory)
    elif directory.exists() and any(directory.iterdir()):
        raise DemoWikiError(f"{directory} is not empty and holds no demo wiki")
    else:
        _say(f"Building the demo wiki in {directory} (scale {scale}) ...")
        wiki = build_fixture_wiki(directory, scale=scale, log=lambda m: _say(f"  {m}"))
    return wiki if wiki.port == port else set_port(wiki, port)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _announce(wiki: Wiki) -> None:
    print(f"API URL: {wiki.api_url}")
    with contextlib.suppress(OSError, KeyError, ValueError):
        bot = load_manifest(wiki)["bot_password"]
        print(f"Bot password (optional, faster): {bot['name']} / {bot['password']}")
    print("Crawl it with:")
    print(f"  harvester crawl {wiki.api_url} --mirror ./mirror")


def cmd_start(args: argparse.Namespace) -> int:
    wiki = _prepare(args.dir, args.port, args.scale)
    server = WikiServer(wiki, detached=True).start()
    assert server.process is not None
    (wiki.directory / PID_FILE).write_text(f"{server.process.pid}\n")
    _announce(wiki)
    print(f"Stop it with: demo-wiki stop --dir {args.dir}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    pid = _read_pid(args.dir)
    (args.dir / PID_FILE).unlink(missing_ok=True)
    if pid is None:
        raise DemoWikiError(f"no demo wiki server is running for {args.dir}")
    stop_process_group(pid)
    print(f"Stopped the demo wiki server (pid {pid}).")
    return 0


def _interrupt(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    # A plain `kill` must also stop php -S, which runs in its own process group.
    signal.signal(signal.SIGTERM, _interrupt)
    wiki = _prepare(args.dir, args.port, args.scale)
    with WikiServer(wiki) as server:
        _announce(wiki)
        _say("Serving in the foreground; Ctrl-C stops.")
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()
    return 0


class _Parser(argparse.ArgumentParser):
    """Reports bad input as one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"demo-wiki: error: {message}\n")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _scale(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"scale must be a whole number from 1 to 1000: {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="demo-wiki", description="A local MediaWiki to try the harvester on.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, func, text in (
        ("start", cmd_start, "build the wiki if needed and serve it in the background"),
        ("serve", cmd_serve, "like start, but in the foreground (Ctrl-C stops)"),
        ("stop", cmd_stop, "stop the background server"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(func=func)
        sub.add_argument("--dir", type=Path, default=Path("demo-wiki"),
                         help="wiki directory (default: ./demo-wiki)")
        if name != "stop":
            sub.add_argument("--port", type=_port, default=8080, help="default: 8080")
            sub.add_argument("--scale", type=_scale, default=1,
                             help="fixture size multiplier when building (default: 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (DemoWikiError, OSError, httpx.HTTPError) as exc:
        print(f"demo-wiki: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
