"""The command line: parse, build settings, run one job, map errors to exit codes.

``trio.run`` is called here and nowhere else. Every failure the user can cause
or meet ends as one line on stderr and an exit code; tracebacks only with
``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from harvester import __version__
from harvester.config import Settings, build_settings, parse_namespaces
from harvester.errors import ConfigError, first_cause


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mirror", metavar="DIR", help="mirror directory")
    parser.add_argument("--config", metavar="FILE", type=Path, help="TOML config file")
    parser.add_argument("--quiet", "-q", action="store_true", default=None,
                        help="no progress output")
    parser.add_argument("--verbose", "-v", action="count", default=0, help="log more")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harvester", description="Dump and mirror MediaWiki wikis through the Action API."
    )
    parser.add_argument("--version", action="version", version=f"harvester {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crawl = commands.add_parser("crawl", help="copy every revision of a wiki into a mirror")
    crawl.add_argument("api", nargs="?", metavar="URL", help="api.php URL or any page of the wiki")
    add_common(crawl)
    crawl.add_argument("--contact", help="URL or e-mail sent in the User-Agent")
    crawl.add_argument("--user", metavar="NAME@APP",
                       help="bot password login (secret from $HARVESTER_PASSWORD)")
    crawl.add_argument("--namespaces", metavar="0,1,...", type=parse_namespaces_arg)
    crawl.add_argument("--current-only", action="store_true", default=None,
                       help="only the latest revision of each page")
    crawl.add_argument("--concurrency", type=int, metavar="N")
    crawl.add_argument("--max-rps", type=float, dest="max_requests_per_second", metavar="N",
                       help="requests per second ceiling (0: none)")
    crawl.add_argument("--max-rpm", type=int, dest="max_requests_per_minute", metavar="N",
                       help="requests per minute ceiling (0: none)")
    crawl.add_argument("--maxlag", type=int, metavar="SECONDS")
    crawl.add_argument("--max-retries", type=int, metavar="N")
    crawl.add_argument("--timeout", type=float, dest="request_timeout", metavar="SECONDS")
    crawl.add_argument("--history-mode", choices=["auto", "allrevisions", "pages"])

    export = commands.add_parser("export", help="write the mirror's revisions as JSON lines")
    add_common(export)
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    export.add_argument("--namespaces", metavar="0,1,...", type=parse_namespaces_arg)
    export.add_argument("--current-only", action="store_true", default=None)
    return parser


def parse_namespaces_arg(text: str) -> list[int]:
    try:
        return parse_namespaces(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


SETTING_KEYS = {
    "api", "mirror", "contact", "user", "namespaces", "current_only", "concurrency",
    "max_requests_per_second", "max_requests_per_minute", "maxlag", "max_retries",
    "request_timeout", "history_mode", "quiet",
}


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in vars(args).items() if k in SETTING_KEYS}
    settings = build_settings(args.config, overrides)
    if not settings.mirror:
        raise ConfigError("give the mirror directory with --mirror DIR (or 'mirror' in --config)")
    return settings


def command_crawl(args: argparse.Namespace) -> int:
    from jobs.crawl import run_crawl
    from jobs.outcome import EXIT_OK

    settings = settings_from(args)
    summary = trio.run(run_crawl, settings)
    if not settings.quiet:
        ratio = ""
        if summary.new_revisions:
            per_k = 1000 * summary.requests / summary.new_revisions
            ratio = f" ({per_k:.1f} per 1,000 new revisions)"
        print(
            f"crawl complete: {summary.pages:,} pages, {summary.revisions:,} revisions "
            f"({summary.new_revisions:,} new) from {summary.api_url} as {summary.identity}, "
            f"{summary.requests:,} requests{ratio}, {summary.seconds:.1f} s"
        )
    return EXIT_OK


def command_export(args: argparse.Namespace) -> int:
    from jobs.export import run_export
    from jobs.outcome import EXIT_OK

    settings = settings_from(args)
    count = run_export(settings, args.format, args.output)
    if not settings.quiet and args.output:
        print(f"exported {count:,} revisions to {args.output}", file=sys.stderr)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "crawl": command_crawl,
    "export": command_export,
}


def configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="harvester: %(levelname)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    from jobs.outcome import EXIT_INTERRUPTED, describe, exit_code_for

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        try:
            return COMMANDS[args.command](args)
        except BaseExceptionGroup as group:
            raise first_cause(group) from group
    except KeyboardInterrupt:
        print("harvester: interrupted; the mirror is consistent, run again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug:
            raise
        print(f"harvester: {describe(exc)}", file=sys.stderr)
        return exit_code_for(exc)
