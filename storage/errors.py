"""Exceptions raised by the storage layer.

Every message is a complete one-line sentence meant for the user, so the command
line can print it as is instead of a traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


class StorageError(Exception):
    """Base class: something is wrong with the local mirror (or how it is used)."""


class MirrorMismatchError(StorageError):
    """The mirror directory already holds a different wiki."""


class MirrorLockedError(StorageError):
    """Another process holds the mirror's lock."""


class InvalidQueryError(StorageError):
    """What the reader asked for cannot be a title, timestamp or search query."""


class NotInMirrorError(StorageError):
    """The page, revision or slot asked for is not in the mirror."""


class TextHiddenError(StorageError):
    """The text asked for was hidden on the wiki (revision deletion): the mirror has no copy."""


class MirrorFullError(StorageError):
    """The disk holding the mirror ran out of space; the last transaction was rolled back."""

    def __init__(self, directory: Path | str | None) -> None:
        where = f"the mirror {directory}" if directory else "the mirror"
        super().__init__(
            f"disk full while writing {where}; nothing committed is lost:"
            " free space (or move the mirror to a bigger disk) and run the same command again"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means "no space left": SQLite's SQLITE_FULL, or ENOSPC/EDQUOT."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        # SQLite's extended result codes keep the primary code in the low byte.
        return code is not None and code & 0xFF == sqlite3.SQLITE_FULL
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return False
