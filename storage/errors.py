"""Exceptions raised by the storage layer.

Every message is a complete one-line sentence meant for the user, so the command
line can print it as is instead of a traceback.
"""


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
