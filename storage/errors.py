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
