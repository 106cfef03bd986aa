"""The command line: parse, build settings, run one job, map errors to exit codes.

``trio.run`` is called here and nowhere else. Every failure the user can cause
or meet ends as one line on stderr and an exit code; tracebacks only with
``--debug``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from harvester import __version__
from harvester.config import Settings, build_settings, parse_namespaces, wiki_settings
from harvester.errors import ConfigError, Terminated, first_cause
from harvester.memory import fix_malloc_thresholds

T = TypeVar("T")


def run_async(job: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``trio.run``: the one place it is called. trio is imported here, by the commands
    that talk to a wiki, so the others (show, export, search) start sooner."""
    import trio

    return trio.run(stop_on_signals, job, *args)


async def stop_on_signals(job: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``job``; SIGTERM or Ctrl-C (SIGINT) cancels it at its next safe point (a write
    under way finishes first) and becomes :class:`Terminated` or KeyboardInterrupt. The
    job records its run as interrupted either way. Receiving SIGINT here, rather than
    letting trio raise KeyboardInterrupt wherever the main thread happens to be, keeps
    an interrupt out of the middle of a cleanup."""
    import trio

    result: list[T] = []
    received: list[int] = []
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def run_job() -> None:
                result.append(await job(*args))
                nursery.cancel_scope.cancel()

            async def watch() -> None:
                async for signum in signals:
                    received.append(signum)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(run_job)
    if result:  # it finished before the signal could stop it
        return result[0]
    if received and received[0] == signal.SIGINT:
        raise KeyboardInterrupt()
    raise Terminated()


def raise_terminated(signum: int, frame: Any) -> None:
    """SIGTERM outside trio (import-dump, export): stop as Ctrl-C would."""
    raise Terminated()


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mirror", metavar="DIR", help="mirror directory")
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML config file")
    parser.add_argument("--quiet", "-q", action="store_true", default=None,
                        help="no progress output")
    parser.add_argument("--verbose", "-v", action="count", default=0, help="log more")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="log lines as text (default; with time and level off a "
                        "terminal) or one JSON object a line")


def add_connection(parser: argparse.ArgumentParser) -> None:
    """How to talk to the wiki: identity, login and the polite budget."""
    parser.add_argument("--contact", help="URL or e-mail sent in the User-Agent")
    parser.add_argument("--user", metavar="NAME@APP",
                        help="bot password login (secret from $HARVESTER_PASSWORD)")
    parser.add_argument("--max-rps", type=float, dest="max_requests_per_second", metavar="N",
                        help="requests per second ceiling (0: none)")
    parser.add_argument("--max-rpm", type=int, dest="max_requests_per_minute", metavar="N",
                        help="requests per minute ceiling (0: none)")
    parser.add_argument("--maxlag", type=int, metavar="SECONDS",
                        help="replication lag at which the wiki may ask us to wait (default 5; "
                        "0: not sent)")
    parser.add_argument("--max-retries", type=int, metavar="N",
                        help="retries of a failing request, with exponential backoff "
                        "(default 6)")
    parser.add_argument("--timeout", type=float, dest="request_timeout", metavar="SECONDS",
                        help="how long one request may take (default 120)")
    parser.add_argument("--ignore-robots-txt", action="store_true", default=None,
                        help="go ahead where the site's robots.txt says no: only with the "
                        "site's permission")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvester", description="Dump and mirror MediaWiki wikis through the Action API."
    )
    parser.add_argument("--version", action="version", version=f"harvester {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crawl = commands.add_parser("crawl", help="copy every revision of a wiki into a mirror")
    crawl.add_argument("api", nargs="?", metavar="URL",
                       help="api.php URL or any page of the wiki (default: the mirror's own)")
    add_common(crawl)
    add_connection(crawl)
    add_namespaces(crawl, "only these namespaces (default: all)")
    crawl.add_argument("--current-only", action="store_true", default=None,
                       help="only the latest revision of each page")
    crawl.add_argument("--concurrency", type=int, metavar="N",
                       help="workers under the one polite budget (default 1; Wikimedia: 3 "
                       "at most)")
    crawl.add_argument("--history-mode", choices=["auto", "allrevisions", "pages"],
                       help="how to walk the history: allrevisions (MediaWiki 1.27+), page "
                       "by page, or auto (default)")
    crawl.add_argument("--live-history", action="store_true", default=None,
                       help="crawl a big Wikimedia wiki's whole history through the API, not "
                       "its dumps: only with the site's agreement (see bootstrap)")
    add_json_summary(crawl)
    add_fleet(crawl, "crawl every [[wiki]] of the --config file, creating their mirrors")
    crawl.add_argument("--files", action="store_true", default=None,
                       help="also every version of every file (uploads), into DIR/files")
    crawl.add_argument("--files-max-size", metavar="SIZE",
                       help="skip (and record) file versions larger than SIZE, e.g. 500M")

    sync = commands.add_parser("sync", help="bring a mirror up to date from recentchanges")
    add_common(sync)
    add_connection(sync)
    add_json_summary(sync)
    add_fleet(sync, "sync every [[wiki]] of the --config file")

    export = commands.add_parser(
        "export", help="write the mirror's revisions as JSON lines, MediaWiki XML or Parquet")
    add_common(export)
    export.add_argument("--format", choices=["jsonl", "xml", "parquet", "files"],
                        default="jsonl",
                        help="jsonl (default), xml (MediaWiki export schema 0.11), parquet "
                        "(a directory of files, columns named as Wikimedia's content history) "
                        "or files (each file's current version, with index.jsonl and "
                        "attribution.txt, into a directory)")
    export.add_argument("--output", "-o", metavar="FILE",
                        help="default: standard output; .gz, .bz2, .xz, .zst compress "
                        "(parquet: a directory, required)")
    add_namespaces(export, "only these namespaces")
    export.add_argument("--titles", nargs="+", action="extend", metavar="TITLE",
                        help="only these pages: a title, PREFIX* for every title so starting, "
                        "@FILE for those of a file (one a line)")
    export.add_argument("--since", metavar="TIME",
                        help="only revisions saved at or after TIME (2024-01-31 or "
                        "2024-01-31T12:00:00Z, UTC)")
    export.add_argument("--until", metavar="TIME", help="only revisions saved before TIME")
    export.add_argument("--current-only", action="store_true", default=None,
                        help="only the latest revision of each page (before --until)")
    export.add_argument("--uploads", action="store_true",
                        help="xml: each file description page with its file's versions, "
                        "bytes included (as dumpBackup.php --uploads --include-files)")
    add_read_commands(commands)
    add_import_dump(commands)
    add_bootstrap(commands)
    add_verify(commands)
    with_exit_codes(parser, commands)
    return parser


def with_exit_codes(parser: argparse.ArgumentParser,
                    commands: argparse._SubParsersAction) -> None:
    """Every command's --help ends with what its exit code means."""
    from jobs.outcome import exit_codes_text

    for each in [parser, *commands.choices.values()]:
        each.epilog = exit_codes_text()
        each.formatter_class = argparse.RawDescriptionHelpFormatter


def add_verify(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "verify", help="check the mirror's file and every text's SHA-1; --repair fetches "
        "damaged or absent texts again from the wiki")
    add_common(check)
    add_connection(check)
    check.add_argument("--repair", action="store_true",
                       help="fetch the texts found damaged or absent again, by revision id")
    check.add_argument("--json", action="store_true", help="the summary as one JSON object")


def add_bootstrap(commands: argparse._SubParsersAction) -> None:
    boot = commands.add_parser(
        "bootstrap", help="start a mirror from the wiki's latest dump, then sync it to now")
    boot.add_argument("api", metavar="URL", help="api.php URL or any page of the wiki")
    add_common(boot)
    add_connection(boot)
    boot.add_argument("--dumps-url", metavar="URL",
                      help="the dumps site, laid out as https://dumps.wikimedia.org "
                      "(its default for Wikimedia wikis)")
    boot.add_argument("--keep-dumps", action="store_true",
                      help="keep the downloaded dump files in DIR/dumps after their import")


def add_import_dump(commands: argparse._SubParsersAction) -> None:
    imports = commands.add_parser(
        "import-dump", help="start a mirror from MediaWiki XML dumps")
    imports.add_argument("dump_files", nargs="+", metavar="FILE",
                         help=".xml, or compressed: .gz .bz2 .zst .xz .lzma .7z")
    add_common(imports)
    imports.add_argument("--wiki", metavar="URL",
                         help="the live wiki (api.php or any page): attach the mirror for sync")
    imports.add_argument("--contact", help="URL or e-mail sent in the User-Agent (with --wiki)")
    add_json_summary(imports)


def add_read_commands(commands: argparse._SubParsersAction) -> None:
    """pages, history, show, search, stats, attribution: reading the mirror (jobs/read.py)."""

    def reader(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        add_common(sub)
        sub.add_argument("--json", action="store_true", help="JSON output, for scripts")
        return sub

    pages = reader("pages", "list the mirror's pages")
    add_namespaces(pages, "only these namespaces")
    pages.add_argument("--prefix", metavar="P", help="titles starting with P ('Talk:A' works)")
    pages.add_argument("--redirects", action=argparse.BooleanOptionalAction, default=None,
                       help="only redirects (--no-redirects: none); default both")
    pages.add_argument("--limit", type=positive_int, metavar="N", help="at most N pages")
    history = reader("history", "list the revisions of a page, newest first")
    history.add_argument("title", metavar="TITLE", help="the page's title")
    history.add_argument("--limit", type=positive_int, metavar="N",
                         help="the newest N revisions")
    show = reader("show", "print the text of a page's latest (or a given) revision")
    show.add_argument("title", nargs="?", metavar="TITLE",
                      help="the page's title (not needed with --rev)")
    when = show.add_mutually_exclusive_group()
    when.add_argument("--rev", type=int, metavar="ID", help="this revision")
    when.add_argument("--at", metavar="TIMESTAMP", help="the revision current at this time (UTC)")
    show.add_argument("--slot", default="main", metavar="ROLE", help="content slot (default main)")
    search = reader("search", "full-text search of titles and latest texts (SQLite FTS5)")
    search.add_argument("query", metavar="QUERY",
                        help="SQLite FTS5 syntax: words, \"a phrase\", prefix*, AND/OR/NOT, "
                        "NEAR(a b)")
    add_namespaces(search, "only pages of these namespaces")
    search.add_argument("--limit", type=positive_int, default=20, metavar="N",
                        help="at most N pages, best first (default 20)")
    reader("stats", "counts, sizes and the last crawl of the mirror")
    reader("files", "list the mirror's files with their versions, sizes and types")
    one_file = reader("file", "write the bytes of a file's current (or a given) version")
    one_file.add_argument("title", metavar="TITLE", help="the file's name (File: may be left out)")
    one_file.add_argument("--at", metavar="TIMESTAMP",
                          help="the version current at this time (UTC)")
    one_file.add_argument("--output", "-o", metavar="PATH",
                          help="where to write it (default: standard output)")
    credit = commands.add_parser(
        "attribution", help="who wrote a page, where it is, and its licence, for republishing")
    add_common(credit)
    credit.add_argument("titles", nargs="*", metavar="TITLE", help="the pages' titles")
    credit.add_argument("--all", action="store_true", help="every page of the mirror")
    credit.add_argument("--format", choices=["text", "json", "html"], default="text",
                        help="text (default), json, or html to paste into a page")
    credit.add_argument("--no-bots", action="store_true",
                        help="leave out accounts named like bots (name ending in 'bot')")


def add_fleet(parser: argparse.ArgumentParser, help_all: str) -> None:
    parser.add_argument("--all", action="store_true", help=help_all)
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="with --all: wikis at a time (default 3); wikis on one host "
                        "share one polite budget")
    parser.add_argument("--shard", metavar="K/N",
                        help="with --all: only this machine's share of the wikis, K of N "
                        "(0 <= K < N), stable as wikis come and go (docs/fleet.md)")


def add_json_summary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object (a line), for scripts")


def summary_json(summary: Any) -> str:
    """A job's summary (a dataclass) as one line of JSON."""
    return json.dumps(plain(summary), ensure_ascii=False, default=str)


def plain(value: Any) -> Any:
    """Dataclasses, dicts (a Counter too: asdict() would count its items) and sequences
    as JSON's objects and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(item) for item in value]
    return value


def add_namespaces(parser: argparse.ArgumentParser, help_text: str) -> None:
    """One option for every command, under either spelling: --namespaces 0,1 or
    --namespace 0."""
    parser.add_argument("--namespaces", "--namespace", dest="namespaces", metavar="0,1,...",
                        type=parse_namespaces_arg, help=help_text)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


def parse_namespaces_arg(text: str) -> list[int]:
    try:
        return parse_namespaces(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


SETTING_KEYS = {
    "api", "mirror", "contact", "user", "namespaces", "current_only", "concurrency",
    "max_requests_per_second", "max_requests_per_minute", "maxlag", "max_retries",
    "request_timeout", "history_mode", "quiet", "ignore_robots_txt", "live_history",
    "dumps_url", "files", "files_max_size",
}


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in vars(args).items() if k in SETTING_KEYS}
    settings = build_settings(args.config, overrides)
    if not settings.mirror:
        raise ConfigError("give the mirror directory with --mirror DIR (or 'mirror' in --config)")
    return settings


def command_crawl(args: argparse.Namespace) -> int:
    from jobs.crawl import run_crawl
    from jobs.outcome import EXIT_OK, EXIT_REMOTE

    if args.all:
        return command_fleet(args, run_crawl)
    check_not_fleet(args)
    settings = settings_from(args)
    summary = run_async(run_crawl, settings)
    if args.json:
        print(summary_json(summary))
    elif not settings.quiet:
        print(summary.describe())
    if summary.files is not None:
        if (not settings.quiet and not args.json) or summary.files.mismatched:
            print(summary.files.describe(), file=sys.stderr if summary.files.mismatched
                  else sys.stdout)
        if summary.files.mismatched:  # the rest is stored; these are tried again next run
            return EXIT_REMOTE
    return EXIT_OK


def command_sync(args: argparse.Namespace) -> int:
    from jobs.outcome import EXIT_OK, EXIT_REMOTE
    from jobs.sync import run_sync

    if not args.all:
        check_not_fleet(args)
        settings = settings_from(args)
        summary = run_async(run_sync, settings)
        mismatched = summary.files is not None and summary.files.mismatched
        if args.json:
            print(summary_json(summary))
        elif not settings.quiet or mismatched:
            print(summary.describe(), file=sys.stderr if mismatched else sys.stdout)
        return EXIT_REMOTE if mismatched else EXIT_OK
    return command_fleet(args, run_sync)


def command_fleet(args: argparse.Namespace, job: Callable[..., Awaitable[Any]]) -> int:
    """``crawl --all`` / ``sync --all``: each [[wiki]] of the config (jobs/fleet.py)."""
    from jobs.fleet import DEFAULT_JOBS, parse_shard, run_fleet, select_wikis
    from jobs.outcome import EXIT_OK, describe, exit_code_for

    if args.config is None:
        raise ConfigError(f"{args.command} --all reads its wikis from --config FILE")
    if getattr(args, "api", None):
        raise ConfigError(f"{args.command} --all takes its wikis from --config, not a URL")
    overrides = {k: v for k, v in vars(args).items()
                 if k in SETTING_KEYS and k not in ("mirror", "api")}
    shard = parse_shard(args.shard) if args.shard else None
    wikis = select_wikis(wiki_settings(args.config, overrides), shard)
    code = EXIT_OK
    for name, result in run_async(run_fleet, job, wikis, args.jobs or DEFAULT_JOBS):
        if isinstance(result, Exception):
            print(f"harvester: {name}: {describe(result)}", file=sys.stderr)
            code = code or exit_code_for(result)
            if args.json:
                print(json.dumps({"wiki": name, "error": describe(result),
                                  "exit": exit_code_for(result)}, ensure_ascii=False))
        elif args.json:
            print(json.dumps({"wiki": name, **plain(result)}, ensure_ascii=False, default=str))
        elif not args.quiet:
            print(f"{name}: {result.describe()}")
    return code


def check_not_fleet(args: argparse.Namespace) -> None:
    if args.jobs or args.shard:
        raise ConfigError(f"--jobs and --shard go with {args.command} --all")


def command_export(args: argparse.Namespace) -> int:
    from jobs.export import run_export, selection_from
    from jobs.outcome import EXIT_OK

    settings = settings_from(args)
    selection = selection_from(settings, args.titles, args.since, args.until)
    count = run_export(settings, args.format, args.output, selection, uploads=args.uploads)
    if not settings.quiet and args.output not in (None, "-"):
        what = "files" if args.format == "files" else "revisions"
        print(f"exported {count:,} {what} to {args.output}", file=sys.stderr)
    return EXIT_OK


def command_import_dump(args: argparse.Namespace) -> int:
    from jobs.import_dump import fetch_live_wiki, read_heads, run_import
    from jobs.outcome import EXIT_OK

    settings = settings_from(args)
    heads = read_heads(args.dump_files)  # a wrong file fails before the wiki is asked anything
    live = run_async(fetch_live_wiki, settings, args.wiki, heads[0].site) if args.wiki else None
    summary = run_import(settings, heads, live)
    if args.json:
        print(summary_json(summary))
    elif not settings.quiet:
        print(summary.describe())
    return EXIT_OK


def command_bootstrap(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from jobs.bootstrap import fetch_dumps, remove_imported
    from jobs.import_dump import fetch_live_wiki, read_heads, run_import
    from jobs.outcome import EXIT_OK
    from jobs.sync import run_sync

    settings = settings_from(args)
    fetched = run_async(fetch_dumps, settings)
    if not settings.quiet:
        print(fetched.describe())
    if fetched.to_import:
        heads = read_heads([str(path) for path in fetched.to_import])
        live = run_async(fetch_live_wiki, settings, fetched.api_url, heads[0].site)
        imported = run_import(settings, heads, live)
        if not settings.quiet:
            print(imported.describe())
    if not args.keep_dumps:
        remove_imported(settings)
    synced = run_async(run_sync, replace(settings, api=fetched.api_url))
    if not settings.quiet:
        print(synced.describe())
    return EXIT_OK


def command_verify(args: argparse.Namespace) -> int:
    from jobs.outcome import EXIT_MIRROR, EXIT_OK
    from jobs.verify import check_mirror, repair_mirror, summary_json

    settings = settings_from(args)
    summary = run_async(repair_mirror, settings) if args.repair else check_mirror(settings)
    if args.json:
        print(summary_json(summary))
    elif not settings.quiet or not summary.ok:
        print(summary.describe(), file=sys.stdout if summary.ok else sys.stderr)
    return EXIT_OK if summary.ok else EXIT_MIRROR


def command_read(args: argparse.Namespace) -> int:
    from jobs import read
    from jobs.outcome import EXIT_NO_MATCH, EXIT_OK

    directory = settings_from(args).mirror
    assert directory is not None
    out = sys.stdout
    if args.command == "pages":
        read.run_pages(directory, out, ns=args.namespaces, prefix=args.prefix,
                       redirects=args.redirects, limit=args.limit, as_json=args.json)
    elif args.command == "history":
        read.run_history(directory, out, args.title, limit=args.limit, as_json=args.json)
    elif args.command == "show":
        read.run_show(directory, out, args.title, revid=args.rev, at=args.at, slot=args.slot,
                      as_json=args.json)
    elif args.command == "search":
        found = read.run_search(directory, out, args.query, ns=args.namespaces,
                                limit=args.limit, as_json=args.json, quiet=bool(args.quiet))
        if not found:  # as grep: a search that finds nothing is not a success
            if not args.json:
                print(f"harvester: no matches for {args.query}", file=sys.stderr)
            return EXIT_NO_MATCH
    elif args.command == "attribution":
        read.run_attribution(directory, out, args.titles, every_page=args.all, fmt=args.format,
                             exclude_bots=args.no_bots)
    elif args.command == "files":
        read.run_files(directory, out, as_json=args.json)
    elif args.command == "file":
        read.run_file(directory, args.title, at=args.at, output=args.output, as_json=args.json)
    else:
        read.run_stats(directory, out, as_json=args.json)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "crawl": command_crawl,
    "sync": command_sync,
    "export": command_export,
    "import-dump": command_import_dump,
    "bootstrap": command_bootstrap,
    "verify": command_verify,
    **dict.fromkeys(["pages", "history", "show", "search", "stats", "attribution", "files",
                     "file"],
                     command_read),
}


class IsoFormatter(logging.Formatter):
    """``2026-12-01T05:00:00Z INFO harvester.crawl: message``: a line for cron's mail or
    the journal, its time in UTC as everything the harvester writes."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


class JsonFormatter(IsoFormatter):
    """One JSON object a line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()},
                          ensure_ascii=False)


def configure_logging(verbose: int, log_format: str = "text", quiet: bool = False) -> None:
    """Warnings and errors (more with -v); the progress lines too, off a terminal and
    unless quiet. On a terminal a short form; elsewhere each line has its time and
    level, or is JSON with ``--log-format json``."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("harvester: %(levelname)s: %(message)s"))
    else:
        handler.setFormatter(IsoFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if not quiet:
        logging.getLogger("harvester.progress").setLevel(min(level, logging.INFO))
    # httpcore's debug trace prints response headers: session cookies are secrets
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    from jobs.outcome import (
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_TERMINATED,
        describe,
        exit_code_for,
    )

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.log_format, bool(args.quiet))
    fix_malloc_thresholds()
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        try:
            return COMMANDS[args.command](args)
        except BaseExceptionGroup as group:
            raise first_cause(group) from group
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"harvester: {how}; the mirror is consistent, run again to resume",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        # `harvester stats --json | head -1`: the reader has all it wanted. Point
        # stdout at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        print(f"harvester: {describe(exc)}", file=sys.stderr)
        return exit_code_for(exc)
