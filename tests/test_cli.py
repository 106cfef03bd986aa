"""Bad input: one clear line on stderr, a documented exit code, never a traceback."""

from __future__ import annotations

import argparse
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harvester.config import build_settings
from harvester.errors import ApiError, ConfigError, first_cause
from jobs import outcome
from tests.helpers import assert_one_line_error, run_cli, serve_fake


@pytest.fixture
def html_server() -> Iterator[str]:
    """A plain web server that is not a MediaWiki."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><head><title>Just a blog</title></head><body>hi</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unreachable_host(tmp_path: Path) -> None:
    done = run_cli("crawl", "http://127.0.0.1:9/api.php", "--mirror", str(tmp_path / "m"))
    assert_one_line_error(done, outcome.EXIT_REMOTE, "cannot reach 127.0.0.1")


def test_not_a_mediawiki(tmp_path: Path, html_server: str) -> None:
    done = run_cli("crawl", html_server + "/some/page", "--mirror", str(tmp_path / "m"))
    assert_one_line_error(done, outcome.EXIT_REMOTE, "no MediaWiki API found")


def test_not_a_url(tmp_path: Path) -> None:
    done = run_cli("crawl", "ftp://example/", "--mirror", str(tmp_path / "m"))
    assert_one_line_error(done, outcome.EXIT_REMOTE, "not an http(s) URL")


def test_missing_mirror_option() -> None:
    done = run_cli("crawl", "http://127.0.0.1:9/api.php")
    assert_one_line_error(done, outcome.EXIT_USAGE, "--mirror")


def test_config_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('mirror = "m"\nconcurrenci = 2\n')
    assert_one_line_error(
        run_cli("crawl", "--config", str(bad)), outcome.EXIT_USAGE, "unknown key 'concurrenci'"
    )
    bad.write_text('mirror = "m"\nconcurrency = "four"\n')
    assert_one_line_error(run_cli("crawl", "--config", str(bad)), outcome.EXIT_USAGE,
                          "'concurrency' must be an integer")
    bad.write_text("mirror = [unclosed\n")
    assert_one_line_error(run_cli("crawl", "--config", str(bad)), outcome.EXIT_USAGE,
                          "not valid TOML")


def test_user_without_password_is_refused(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = run_cli(
        "crawl",
        "http://127.0.0.1:9/api.php",
        "--mirror",
        str(tmp_path / "m"),
        "--user",
        "Bot@harvest",
        env=env,
    )
    assert_one_line_error(done, outcome.EXIT_USAGE, "HARVESTER_PASSWORD")


def test_no_password_flag_exists() -> None:
    done = run_cli("crawl", "http://x/api.php", "--mirror", "m", "--password", "hunter2")
    assert done.returncode == outcome.EXIT_USAGE


def test_export_of_missing_mirror(tmp_path: Path) -> None:
    done = run_cli("export", "--mirror", str(tmp_path / "nothing"))
    assert_one_line_error(done, outcome.EXIT_MIRROR, "no mirror")


def test_secret_comes_from_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('user = "Bot@app"\npassword = "from-file"\n')
    config.chmod(0o600)
    assert build_settings(config, {}, env={}).password == "from-file"
    env = {"HARVESTER_PASSWORD": "from-env"}
    assert build_settings(config, {}, env=env).password == "from-env"
    with pytest.raises(ConfigError, match="Name@AppId"):
        build_settings(None, {"user": "NoAt"}, env=env)


def test_exit_codes_of_storage_errors() -> None:
    from storage.errors import MirrorLockedError, MirrorMismatchError

    assert outcome.exit_code_for(MirrorLockedError("x")) == outcome.EXIT_LOCKED
    assert outcome.exit_code_for(MirrorMismatchError("x")) == outcome.EXIT_MIRROR
    nested = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [MirrorLockedError("b")])])
    assert isinstance(first_cause(nested), MirrorLockedError)
    mixed = BaseExceptionGroup("nursery", [RuntimeError("a"), ApiError("x", "y")])
    assert isinstance(first_cause(mixed), ApiError)


def test_every_option_has_help_and_every_command_lists_the_exit_codes() -> None:
    from harvester.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"harvester {name} {action.option_strings or action.dest}"
        text = sub.format_help()
        for code, _ in outcome.EXIT_MEANINGS:
            assert f"  {code:>3}  " in text, (name, code)
    assert {code for code, _ in outcome.EXIT_MEANINGS} == {
        value for key, value in vars(outcome).items() if key.startswith("EXIT_")
        and isinstance(value, int)}


def test_crawl_sync_and_import_dump_print_their_summary_as_json(tmp_path: Path) -> None:
    from tests.fakewiki import FakeWiki, make_pages

    wiki = FakeWiki(make_pages(3, 4))
    with serve_fake(wiki) as served:
        done = run_cli("crawl", served.url + "/w/api.php", "--mirror", str(tmp_path / "m"),
                       "--json", "--max-rps", "0")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    summary = json.loads(line)
    assert (summary["pages"], summary["revisions"], summary["new_revisions"]) == (3, 12, 12)
    assert summary["requests"] > 0 and summary["files"] is None
    dump = tmp_path / "dump.xml"
    assert run_cli("export", "--mirror", str(tmp_path / "m"), "--format", "xml",
                   "--output", str(dump)).returncode == 0
    done = run_cli("import-dump", str(dump), "--mirror", str(tmp_path / "n"), "--json")
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    assert [r["new_revisions"] for r in imported["results"]] == [12]


def test_files_max_size_takes_bytes_or_a_size_with_its_unit() -> None:
    for given, size in (("500M", 500 << 20), ("2g", 2 << 30), ("1.5K", 1536), (4096, 4096)):
        assert build_settings(None, {"files_max_size": given}).files_max_size == size
    for wrong in ("abc", "M", "-5", -1):
        with pytest.raises(ConfigError, match="files_max_size"):
            build_settings(None, {"files_max_size": wrong})
