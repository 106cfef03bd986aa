"""Reading the text store of mirrors written before packs, to convert them.

Those mirrors kept one zstd frame per text in ``text_data.data``, each a
delta against the text named by ``base`` (a raw-content dictionary), or a
keyframe when ``base`` is NULL; frames were bare (no magic number) or, older
still, ordinary. Only the upgrade (storage/schema.py) reads them.
"""

from __future__ import annotations

import hashlib
import sqlite3

import zstandard

from .errors import StorageError
from .textstore import ByteLRU

_MAGIC = b"\x28\xb5\x2f\xfd"
_CACHE_BYTES = 64 * 1024 * 1024


class LegacyTexts:
    """The texts of a legacy ``text_data`` table (under another name), by id."""

    def __init__(self, conn: sqlite3.Connection, table: str) -> None:
        self._conn = conn
        self._table = table
        self._cache = ByteLRU(_CACHE_BYTES)

    def read(self, text_id: int) -> bytes:
        chain: list[tuple[int, bytes, int, bytes]] = []
        key: int | None = text_id
        base: bytes | None = None
        while key is not None:
            cached = self._cache.get(key)
            if cached is not None:
                base = cached
                break
            row = self._conn.execute(
                f"SELECT sha1, base, size, data FROM {self._table} WHERE id = ?", (key,)
            ).fetchone()
            if row is None or len(chain) > 10_000:
                raise StorageError(f"text #{key} is missing from the mirror")
            chain.append((key, bytes(row[0]), int(row[2]), bytes(row[3])))
            key = row[1]
        for key, digest, size, frame in reversed(chain):
            base = _decompress(frame, base, size)
            if hashlib.sha1(base).digest() != digest:
                raise StorageError(f"text {digest.hex()} is corrupt in the mirror")
            self._cache.put(key, base)
        assert base is not None
        return base


def _decompress(frame: bytes, base: bytes | None, size: int) -> bytes:
    fmt = zstandard.FORMAT_ZSTD1 if frame[:4] == _MAGIC else zstandard.FORMAT_ZSTD1_MAGICLESS
    try:
        if base is None:
            decompressor = zstandard.ZstdDecompressor(format=fmt)
        else:
            dictionary = zstandard.ZstdCompressionDict(
                base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            decompressor = zstandard.ZstdDecompressor(dict_data=dictionary, format=fmt)
        return decompressor.decompress(frame, max_output_size=max(1, size))
    except zstandard.ZstdError as exc:
        raise StorageError(f"a text is corrupt in the mirror ({exc})") from None
