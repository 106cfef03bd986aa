"""Shared fixtures: a real MediaWiki (Debian's 1.39) on 127.0.0.1.

The fixture wiki is built once per session (about 25 s) and never served
itself, so it stays pristine: servers run on copies of its directory, which
take well under a second to make.

- ``fixture_wiki``: the built wiki (``demo_wiki.Wiki``), not running.
- ``fixture_manifest``: what the build recorded (users, hidden revids, ...).
- ``fixture_dump``: ``dumpBackup.php --full`` of it, the ground truth.
- ``shared_server``: one running server for the whole session; read only!
- ``wiki_server``: a fresh copy per test, running; write to it freely.
- ``bot_password``: ("Admin@harvest", secret), grants basic and highvolume,
  valid on every copy.

Set ``MW_FIXTURE_CACHE=/some/dir`` to keep the built wiki between sessions
(rebuilt automatically when the harness or generator changes).

Tests that need any of these carry ``@pytest.mark.mediawiki``; they are
skipped when MediaWiki or php is missing, except under CI (env ``CI`` set),
where a missing MediaWiki is an error: CI is expected to install it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import demo_wiki  # importable only once scripts/ is on the path


def _mediawiki_missing() -> str | None:
    """Why the real-MediaWiki tests cannot run here, or None when they can."""
    if not (demo_wiki.MW_DIR / "maintenance" / "install.php").is_file():
        return f"MediaWiki is not installed ({demo_wiki.MW_DIR} missing)"
    if shutil.which("php") is None:
        return "php is not installed"
    return None


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_mediawiki() -> None:
    """Skip (or, under CI, fail) when the real MediaWiki is unavailable."""
    reason = _mediawiki_missing()
    if reason is None:
        return
    install = "apt-get install " + " ".join(demo_wiki.APT_PACKAGES)
    if _in_ci():
        pytest.fail(f"{reason}; CI must install it first ({install})", pytrace=False)
    pytest.skip(f"{reason}; to run these tests: {install}")


def pytest_addoption(parser: pytest.Parser) -> None:
    # tests/test_crash_soak.py: CI keeps the default; a long soak is e.g. --soak-trials 100.
    parser.addoption(
        "--soak-trials", type=int, default=None, metavar="N",
        help="SIGKILLs per randomized kill test (default: 6 for crawl, 4 for sync)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that need no MediaWiki first: a plain failure shows in minutes."""
    items.sort(key=lambda item: item.get_closest_marker("mediawiki") is not None)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mediawiki") is not None:
        require_mediawiki()


@pytest.fixture(scope="session")
def fixture_wiki(tmp_path_factory: pytest.TempPathFactory) -> demo_wiki.Wiki:
    require_mediawiki()
    directory = tmp_path_factory.mktemp("mediawiki") / "fixture"
    cache = os.environ.get("MW_FIXTURE_CACHE")
    # MW_FIXTURE_CACHE: opt-in for local runs, to reuse a build across sessions
    return demo_wiki.fixture_wiki(directory, cache=Path(cache) if cache else None)


@pytest.fixture(scope="session")
def fixture_manifest(fixture_wiki: demo_wiki.Wiki) -> dict[str, Any]:
    return demo_wiki.load_manifest(fixture_wiki)


@pytest.fixture(scope="session")
def fixture_dump(fixture_wiki: demo_wiki.Wiki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dump") / "fixture-dump.xml"
    return demo_wiki.dump_backup(fixture_wiki, out)


@pytest.fixture(scope="session")
def bot_password(fixture_manifest: dict[str, Any]) -> tuple[str, str]:
    bot = fixture_manifest["bot_password"]
    return bot["name"], bot["password"]


def _serve_copy(wiki: demo_wiki.Wiki, directory: Path) -> Iterator[demo_wiki.WikiServer]:
    copy = demo_wiki.copy_wiki(wiki, directory, demo_wiki.free_port())
    with demo_wiki.WikiServer(copy) as server:
        yield server


@pytest.fixture(scope="session")
def shared_server(
    fixture_wiki: demo_wiki.Wiki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[demo_wiki.WikiServer]:
    # A copy too, so that session caches and logins never touch the original
    # while wiki_server copies it.
    yield from _serve_copy(fixture_wiki, tmp_path_factory.mktemp("shared") / "wiki")


@pytest.fixture
def wiki_server(fixture_wiki: demo_wiki.Wiki, tmp_path: Path) -> Iterator[demo_wiki.WikiServer]:
    yield from _serve_copy(fixture_wiki, tmp_path / "wiki")


@pytest.fixture
def changer(wiki_server: demo_wiki.WikiServer) -> Iterator[Any]:
    """A logged-in ``wiki_changes.WikiChanger`` (Admin, every grant) on the wiki_server copy."""
    import wiki_changes  # from scripts/, like demo_wiki

    with wiki_changes.WikiChanger(wiki_server.wiki, wiki_server.api_url) as wiki_changer:
        yield wiki_changer
