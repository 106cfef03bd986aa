"""storage: the local side (SQLite catalogue, checkpoints, zstd revision store, exporters).

Plain synchronous code: it imports nothing from the network side.
"""

from .errors import MirrorLockedError, MirrorMismatchError, StorageError
from .lock import MirrorLock
from .mirror import Mirror
from .records import Checkpoint, PageRecord, RevisionBatch, RevisionRecord, SlotRecord

__all__ = [
    "Checkpoint",
    "Mirror",
    "MirrorLock",
    "MirrorLockedError",
    "MirrorMismatchError",
    "PageRecord",
    "RevisionBatch",
    "RevisionRecord",
    "SlotRecord",
    "StorageError",
]
