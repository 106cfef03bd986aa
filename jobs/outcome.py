"""How a command ends: an exit code and one line for the user, for every error.

Lives in jobs because it names errors of both sides (harvester and storage).
"""

from __future__ import annotations

from harvester.errors import (
    ApiError,
    ConfigError,
    HarvesterError,
    PolicyRefusal,
    RemoteError,
    RetriesExhaustedError,
)
from storage.errors import (
    InvalidQueryError,
    MirrorFullError,
    MirrorLockedError,
    NotInMirrorError,
    StorageError,
    TextHiddenError,
    is_disk_full,
)

# Documented in the README; scripts and cron jobs rely on them.
EXIT_OK = 0
EXIT_NO_MATCH = 1  # a search that found nothing, as grep says it
EXIT_USAGE = 2
EXIT_REMOTE = 3
EXIT_API = 4
EXIT_THROTTLED = 5
EXIT_MIRROR = 6
EXIT_LOCKED = 7
EXIT_REFUSED = 8  # the site's robots.txt or robot policy says no (an override exists)
EXIT_NOT_FOUND = 9  # a page or revision not in the mirror, or whose text is hidden
EXIT_INTERNAL = 70  # a bug (sysexits.h's EX_SOFTWARE)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it: 128 + 2
EXIT_TERMINATED = 143  # SIGTERM: 128 + 15

# What each code means, in a line: every command's --help ends with them (the README
# has the long form).
EXIT_MEANINGS: list[tuple[int, str]] = [
    (EXIT_OK, "done"),
    (EXIT_NO_MATCH, "search found nothing"),
    (EXIT_USAGE, "bad command line, config file, title, time or query"),
    (EXIT_REMOTE, "the wiki (or dumps site) could not be reached or answered wrongly"),
    (EXIT_API, "the API refused the request"),
    (EXIT_THROTTLED, "still failing or throttled after every retry: try again later"),
    (EXIT_MIRROR, "mirror problem (another wiki's, not a mirror, disk, damage found)"),
    (EXIT_LOCKED, "the mirror is in use by another harvester"),
    (EXIT_REFUSED, "refused by the site's robots.txt or robot policy"),
    (EXIT_NOT_FOUND, "page or revision not in the mirror, or its text hidden"),
    (EXIT_INTERNAL, "internal error (a bug)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); run again to resume"),
    (EXIT_TERMINATED, "terminated (SIGTERM); run again to resume"),
]


def exit_codes_text() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_MEANINGS)


_CODES: list[tuple[type[BaseException], int]] = [
    (ConfigError, EXIT_USAGE),
    (PolicyRefusal, EXIT_REFUSED),
    (RetriesExhaustedError, EXIT_THROTTLED),
    (ApiError, EXIT_API),
    (RemoteError, EXIT_REMOTE),
    (MirrorLockedError, EXIT_LOCKED),
    (InvalidQueryError, EXIT_USAGE),  # a malformed title or time given to the mirror
    (NotInMirrorError, EXIT_NOT_FOUND),
    (TextHiddenError, EXIT_NOT_FOUND),
    (StorageError, EXIT_MIRROR),
    (OSError, EXIT_MIRROR),  # the mirror's disk: full, read-only, permissions
]


def run_status(exc: BaseException) -> str:
    """How a run that ended in ``exc`` is recorded in ``runs``: "interrupted" when
    Ctrl-C or SIGTERM stopped it (at a safe point: the mirror is consistent and the
    same command resumes it), "failed" otherwise."""
    return "interrupted" if _stopped(exc) else "failed"


def _stopped(exc: BaseException) -> bool:
    import trio  # a SIGTERM cancels a trio job (harvester.cli); loaded by then

    if isinstance(exc, BaseExceptionGroup):
        return all(_stopped(inner) for inner in exc.exceptions)
    return isinstance(exc, (KeyboardInterrupt, trio.Cancelled))


def exit_code_for(exc: BaseException) -> int:
    if is_disk_full(exc):  # SQLite's "database or disk is full" is no OSError
        return EXIT_MIRROR
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_INTERNAL


def describe(exc: BaseException) -> str:
    if isinstance(exc, (HarvesterError, StorageError)):
        return str(exc)
    if is_disk_full(exc):
        return describe_disk_full(exc)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"internal error ({type(exc).__name__}: {exc}); run with --debug for details"


def describe_disk_full(exc: BaseException) -> str:
    """A full disk met outside the mirror's writer: an export's output, the lock file."""
    if isinstance(exc, OSError):
        where = f" while writing {exc.filename}" if exc.filename else ""
        return f"disk full{where}; free space and run the same command again"
    return str(MirrorFullError(None))
