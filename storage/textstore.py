"""The compressed revision store: ``text_data`` rows in ``text_packs``.

Texts are content-addressed by the SHA-1 of their UTF-8 bytes, so a text that
comes back (a revert: very common on wikis) is stored once; for the main slot
that key equals MediaWiki's own slot sha1.

Each distinct text is a ``text_data`` row (id, 20-byte sha1, size, and where
it lives: ``pack`` and ``position``). The bytes are in ``text_packs``: the
texts of one page and slot in the order they were stored, as line deltas in
one zstd frame per pack (storage/packs.py has the format). A write
transaction first gives each new text its row (``pack`` NULL) and keeps its
bytes here; flush(), which the mirror calls just before it commits, puts them
in a new pack of their page, which then merges with the page's newest packs
while they are of similar size (see _append()).

Reading a text decompresses its pack (a few MB at most: PACK_BYTES) and
applies at most packs.SNAPSHOT_EVERY - 1 deltas; every read checks the
result against the sha1. Decompressed packs and texts are cached, bounded by
size.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Iterable
from typing import NamedTuple

from . import packs
from .errors import StorageError

# Texts in one pack, and decompressed bytes in one pack: a read decompresses
# a whole pack, and a write recompresses the page's last one.
PACK_TEXTS = 2048
PACK_BYTES = 16 * 1024 * 1024
# Decompressed texts and packs kept in memory, by total size.
CACHE_BYTES = 8 * 1024 * 1024
PACK_CACHE_BYTES = 32 * 1024 * 1024
# Once a crawl or an import is done, the packs of pages with few texts are put
# together, by role and page, in shared packs of no page (pageid NULL) of up to
# SHARED_PACK_BYTES: zstd then finds what the pages have in common, and a small pack
# no longer leaves most of a database page empty (docs/benchmarks.md). A page's pack
# is shared while smaller than a quarter of that; a read decompresses one pack.
SHARED_PACK_BYTES = 1024 * 1024
# zstd level of packs still growing (docs/benchmarks.md): a crawl that walks by
# time compresses a page's newest pack again for every batch that adds to it.
QUICK_LEVEL = 3


def text_sha1(text: str) -> str:
    """The content address of a text (MediaWiki's slot sha1 for the main slot)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class StoredText(NamedTuple):
    id: int  # text_data.id
    sha1: str  # hex


class ByteLRU:
    """An LRU map of keys to bytes-like values, bounded by the total size of the values."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._items: OrderedDict[object, tuple[bytes, object]] = OrderedDict()

    def get(self, key: object) -> bytes | None:
        found = self.get_with(key)
        return None if found is None else found[0]

    def get_with(self, key: object) -> tuple[bytes, object] | None:
        """The value and what was stored along with it."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: object, value: bytes, extra: object = None) -> None:
        if len(value) > self.capacity:
            return
        self.discard(key)
        self._items[key] = (value, extra)
        self.used += len(value)
        while self.used > self.capacity:
            _, (evicted, _) = self._items.popitem(last=False)
            self.used -= len(evicted)

    def discard(self, key: object) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= len(old[0])

    def clear(self) -> None:
        self._items.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._items)


class _Pending(NamedTuple):
    id: int
    data: bytes


class TextStore:
    """Reads and writes texts through the mirror's connection, inside its transactions."""

    def __init__(self, conn: sqlite3.Connection, *, cache_bytes: int = CACHE_BYTES,
                 pack_texts: int = PACK_TEXTS, pack_bytes: int = PACK_BYTES,
                 level: int = packs.LEVEL, shared_bytes: int = SHARED_PACK_BYTES) -> None:
        # The tuning knobs are parameters only so that tests and the benchmark
        # can try other values; a mirror can hold packs written with any of them.
        self._conn = conn
        # Keyed by hex sha1, never by id: a rolled-back transaction can hand its
        # ids out again to other texts, a sha1 always names the same bytes.
        self.cache = ByteLRU(cache_bytes)
        self._packs = ByteLRU(PACK_CACHE_BYTES)  # pack id -> payload, with its spans
        self.pack_texts = pack_texts
        self.pack_bytes = pack_bytes
        self.level = level
        self.shared_bytes = shared_bytes
        self._pending: dict[tuple[int | None, str], list[_Pending]] = defaultdict(list)
        self._pending_ids: dict[int, bytes] = {}

    def clear_caches(self) -> None:
        self.cache.clear()
        self._packs.clear()

    # -- writing --------------------------------------------------------------

    def add_bytes(self, data: bytes, pageid: int | None, role: str,
                  text_id: int | None = None) -> StoredText:
        """Store a text (UTF-8) of page+slot, once; returns its id and sha1. flush()
        before the commit. ``text_id`` keeps a given id (an upgrade's)."""
        digest = hashlib.sha1(data).digest()
        found = self._find(digest)
        if found is not None:
            return StoredText(found, digest.hex())
        cursor = self._conn.execute(
            "INSERT INTO text_data (id, sha1, size) VALUES (?, ?, ?)", (text_id, digest, len(data)))
        text_id = int(cursor.lastrowid or 0)
        self._pending[pageid, role].append(_Pending(text_id, data))
        self._pending_ids[text_id] = data
        self.cache.put(digest.hex(), data)
        return StoredText(text_id, digest.hex())

    def flush(self) -> None:
        """Put the texts added in this transaction into packs (inside the transaction)."""
        pending, self._pending = self._pending, defaultdict(list)
        try:
            for (pageid, role), texts in pending.items():
                self._append(pageid, role, texts)
        finally:
            self._pending_ids.clear()

    def discard_pending(self) -> None:
        """The transaction was rolled back: forget its texts and the packs it rewrote."""
        self._pending.clear()
        self._pending_ids.clear()
        self._packs.clear()

    def _append(self, pageid: int | None, role: str, texts: list[_Pending]) -> None:
        """New packs for the texts, then the page's newest packs merged while the one
        before is no more than twice as big as the one after it.

        Rewriting the page's last pack for every transaction that adds to it
        would cost a crawl that gets a page's revisions a few at a time (a walk
        by time: allrevisions) the whole pack each time. Merging packs of
        similar size keeps the pack sizes of a page falling geometrically from
        the oldest, as a binary counter does: a text is rewritten a few times
        (the logarithm of the page's texts), and a read still decompresses
        one pack.
        """
        start = 0
        while start < len(texts):
            writer = packs.PackWriter()
            taken = self._fill(writer, texts[start:])
            cursor = self._conn.execute(
                "INSERT INTO text_packs (pageid, role, records, size, data)"
                " VALUES (?, ?, 0, 0, x'')", (pageid, role))
            self._write_pack(int(cursor.lastrowid or 0), writer,
                             [t.id for t in texts[start : start + taken]], final=False)
            start += taken
        open_packs = self._page_packs(pageid, role)
        while len(open_packs) >= 2:
            (first, count, size), (second, more, _) = open_packs[-2:]
            if count > 2 * more or count >= self.pack_texts or size >= self.pack_bytes:
                break
            open_packs[-2:] = self._merge(first, count, second, again=False)

    def pages_with_open_packs(self) -> list[tuple[int | None, str]]:
        """The page+slots with a pack that is not full: tighten() is for them."""
        return [(row[0], row[1]) for row in self._conn.execute(
            "SELECT DISTINCT pageid, role FROM text_packs WHERE pageid IS NOT NULL"
            " AND records < ? AND size < ?",
            (self.pack_texts, self.pack_bytes))]

    def tighten(self, pageid: int | None, role: str) -> None:
        """Merge a page+slot's packs into as few as they fit in (inside a transaction).

        The merging as texts arrive leaves a page's newest texts in a few small
        packs, each starting with a whole text; at the end of a crawl they are
        packed tight once.
        """
        loose = self._page_packs(pageid, role)
        merged = False
        while len(loose) >= 2:
            (first, count, size), (second, _, _) = loose[:2]
            if count >= self.pack_texts or size >= self.pack_bytes:
                loose.pop(0)
                continue
            loose[:2] = self._merge(first, count, second)
            merged = True
        if len(loose) == 1 and not merged:  # written at the quick level: once at the store's
            pack_id, count, _ = loose[0]
            payload, _ = self._payload(pack_id)
            self._write_pack(pack_id, packs.PackWriter(payload, count), [])

    def sharable_packs(self) -> list[tuple[str, list[int]]]:
        """The small packs of pages in groups, by role and page, each group a shared
        pack to be (share()); groups of one are left out."""
        groups: list[tuple[str, list[int]]] = []
        size = records = 0
        for pack_id, role, count, nbytes in self._conn.execute(
                "SELECT id, role, records, size FROM text_packs WHERE pageid IS NOT NULL"
                " AND size < ? ORDER BY role, pageid, id", (self.shared_bytes // 4,)):
            if (not groups or groups[-1][0] != role or size + nbytes > self.shared_bytes
                    or records + count > self.pack_texts):
                groups.append((role, []))
                size = records = 0
            groups[-1][1].append(int(pack_id))
            size += nbytes
            records += count
        return [group for group in groups if len(group[1]) >= 2]

    def share(self, role: str, pack_ids: list[int]) -> None:
        """Move the texts of these packs, in this order, to one new pack of no page
        (inside a transaction). Their records stay as they are: each pack's first is a
        whole text, so a read still applies no more than SNAPSHOT_EVERY - 1 deltas."""
        payloads, ids = [], []
        for pack_id in pack_ids:
            payloads.append(self._payload(pack_id)[0])
            ids += [int(row[0]) for row in self._conn.execute(
                "SELECT id FROM text_data WHERE pack = ? ORDER BY position", (pack_id,))]
        cursor = self._conn.execute("INSERT INTO text_packs (pageid, role, records, size, data)"
                                    " VALUES (NULL, ?, 0, 0, x'')", (role,))
        self._write_pack(int(cursor.lastrowid or 0),
                         packs.PackWriter(b"".join(payloads), len(ids)), ids)
        for pack_id in pack_ids:
            self._drop_pack(pack_id)

    def _page_packs(self, pageid: int | None, role: str) -> list[tuple[int, int, int]]:
        """(id, records, size) of a page+slot's packs, oldest first."""
        return [(int(r[0]), int(r[1]), int(r[2])) for r in self._conn.execute(
            "SELECT id, records, size FROM text_packs WHERE pageid IS ? AND role = ?"
            " ORDER BY id", (pageid, role))]

    def _merge(self, first: int, count: int, second: int,
               again: bool = True) -> list[tuple[int, int, int]]:
        """Move the texts of pack ``second`` to the end of pack ``first`` (of ``count``
        texts), as many as it takes; returns the packs left, with their records and sizes.

        ``again``: each moved text becomes a delta on the one before it (tighten).
        Without, their records move as they are: the first stays a whole text,
        which the frame's compression makes cheap, and no delta is worked out.
        """
        payload, spans = self._payload(first)
        ids = [int(row[0]) for row in self._conn.execute(
            "SELECT id FROM text_data WHERE pack = ? ORDER BY position", (second,))]
        if not again:
            added, _ = self._payload(second)
            if count + len(ids) <= self.pack_texts and len(payload) + len(added) < self.pack_bytes:
                writer = packs.PackWriter(packs.join(payload, added), count + len(ids))
                self._write_pack(first, writer, ids, final=False)
                self._drop_pack(second)
                return [(first, writer.count, len(writer.payload))]
        writer = packs.PackWriter(payload, count, packs.read_record(payload, spans, count - 1))
        texts = list(packs.all_texts(self._payload(second)[0]))
        moved = 0
        while moved < len(texts) and not self._full(writer):
            writer.add(texts[moved])
            moved += 1
        self._write_pack(first, writer, ids[:moved])
        left = [(first, writer.count, len(writer.payload))]
        if moved == len(texts):
            self._drop_pack(second)
            return left
        rest = packs.PackWriter()
        for text in texts[moved:]:
            rest.add(text)
        self._write_pack(second, rest, ids[moved:])
        return [*left, (second, rest.count, len(rest.payload))]

    def _full(self, writer: packs.PackWriter) -> bool:
        return writer.count >= self.pack_texts or len(writer.payload) >= self.pack_bytes

    def _fill(self, writer: packs.PackWriter, texts: list[_Pending]) -> int:
        """Append as many of ``texts`` as the pack takes (one at least); returns how many."""
        taken = 0
        for text in texts:
            if taken and self._full(writer):
                break
            writer.add(text.data)
            taken += 1
        return taken

    def _write_pack(self, pack_id: int, writer: packs.PackWriter, added: list[int],
                    final: bool = True) -> None:
        """Store a pack's payload; ``added``: the ids of the texts at its end that were
        elsewhere before. ``final``: compress at the store's level; else (a pack that
        grows as texts arrive) at QUICK_LEVEL, until it is full or tightened."""
        level = self.level if final or self._full(writer) else QUICK_LEVEL
        first = writer.count - len(added)
        self._conn.execute(
            "UPDATE text_packs SET records = ?, size = ?, data = ? WHERE id = ?",
            (writer.count, len(writer.payload), packs.compress(writer.payload, level),
             pack_id))
        self._conn.executemany(
            "UPDATE text_data SET pack = ?, position = ? WHERE id = ?",
            [(pack_id, first + i, text_id) for i, text_id in enumerate(added)])
        self._packs.discard(pack_id)

    def _drop_pack(self, pack_id: int) -> None:
        self._conn.execute("DELETE FROM text_packs WHERE id = ?", (pack_id,))
        self._packs.discard(pack_id)

    def _find(self, digest: bytes) -> int | None:
        # The index holds the first 8 bytes of each sha1 (idx_text_data_sha1):
        # 12 bytes less per text than the whole digest, and as selective.
        row = self._conn.execute(
            "SELECT id FROM text_data WHERE substr(sha1, 1, 8) = ? AND sha1 = ?",
            (digest[:8], digest),
        ).fetchone()
        return None if row is None else int(row[0])

    def id_of(self, sha1: str) -> int | None:
        """The id of the text with this hex sha1, or None."""
        try:
            digest = bytes.fromhex(sha1)
        except ValueError:
            return None
        return self._find(digest) if len(digest) == 20 else None

    # -- removing -------------------------------------------------------------

    def remove(self, doomed: Collection[str]) -> int:
        """Delete texts named by hex sha1 (see remove_ids); returns how many were deleted."""
        ids = {self.id_of(sha1) for sha1 in doomed}
        return self.remove_ids({i for i in ids if i is not None})

    def remove_ids(self, doomed: Collection[int]) -> int:
        """Delete texts, keeping every other text readable; returns how many were deleted.

        Must run inside the caller's transaction. Each pack that held one is
        written again from its surviving texts, so no byte of a deleted text
        stays in a pack (nor, with secure_delete, in the file's free pages).
        """
        rows = self._rows(doomed)
        if not rows:
            return 0
        by_pack: dict[int, set[int]] = defaultdict(set)
        for text_id, _, pack, position in rows:
            if pack is None or position is None:
                self._forget_pending(text_id)
            else:
                by_pack[pack].add(position)
        for pack_id, positions in by_pack.items():
            self._repack_without(pack_id, positions)
        ids = [row[0] for row in rows]
        for chunk in _chunks(ids):
            self._conn.execute(f"DELETE FROM text_data WHERE id IN ({_marks(chunk)})", chunk)
        for _, digest, _, _ in rows:
            self.cache.discard(digest.hex())
        return len(rows)

    def _rows(self, ids: Iterable[int]) -> list[tuple[int, bytes, int | None, int | None]]:
        out = []
        for chunk in _chunks(sorted(set(ids))):
            out += [(int(r[0]), bytes(r[1]), r[2], r[3]) for r in self._conn.execute(
                f"SELECT id, sha1, pack, position FROM text_data WHERE id IN ({_marks(chunk)})",
                chunk)]
        return out

    def _forget_pending(self, text_id: int) -> None:
        self._pending_ids.pop(text_id, None)
        for texts in self._pending.values():
            texts[:] = [t for t in texts if t.id != text_id]

    def _repack_without(self, pack_id: int, doomed: set[int]) -> None:
        payload, _ = self._payload(pack_id)
        texts = list(packs.all_texts(payload))
        kept = [(int(r[0]), int(r[1])) for r in self._conn.execute(
            "SELECT id, position FROM text_data WHERE pack = ? ORDER BY position", (pack_id,))
            if int(r[1]) not in doomed]
        if not kept:
            self._drop_pack(pack_id)
            return
        writer = packs.PackWriter()
        for _, position in kept:
            writer.add(texts[position])
        self._write_pack(pack_id, writer, [text_id for text_id, _ in kept])

    def rebuild_pack(self, pack_id: int, texts: dict[int, bytes]) -> list[int]:
        """Write a damaged pack again from ``texts`` (text id -> its bytes, each checked
        against the text's SHA-1); the pack's texts not given are deleted. Must run
        inside the caller's transaction; returns the ids deleted."""
        rows = [(int(r[0]), bytes(r[1])) for r in self._conn.execute(
            "SELECT id, sha1 FROM text_data WHERE pack = ? ORDER BY position", (pack_id,))]
        for text_id, digest in rows:
            if text_id in texts and hashlib.sha1(texts[text_id]).digest() != digest:
                raise StorageError(f"text #{text_id}: the bytes given are not its text")
            self.cache.discard(digest.hex())
        kept = [text_id for text_id, _ in rows if text_id in texts]
        dropped = [text_id for text_id, _ in rows if text_id not in texts]
        self._packs.discard(pack_id)
        if kept:
            writer = packs.PackWriter()
            for text_id in kept:
                writer.add(texts[text_id])
            self._write_pack(pack_id, writer, kept)
        else:
            self._drop_pack(pack_id)
        for chunk in _chunks(dropped):
            self._conn.execute(f"DELETE FROM text_data WHERE id IN ({_marks(chunk)})", chunk)
        return dropped

    # -- reading --------------------------------------------------------------

    def get(self, sha1: str) -> str:
        return self.get_bytes(sha1).decode("utf-8")

    def get_by_id(self, text_id: int) -> str:
        return self._bytes(text_id).decode("utf-8")

    def get_bytes(self, sha1: str) -> bytes:
        """The UTF-8 bytes of the text with this hex sha1."""
        cached = self.cache.get(sha1)
        if cached is not None:
            return cached
        text_id = self.id_of(sha1)
        if text_id is None:
            raise StorageError(f"text {sha1} is missing from the mirror")
        return self._bytes(text_id)

    def _bytes(self, text_id: int) -> bytes:
        """The UTF-8 bytes of a stored text by id; its sha1 is verified."""
        pending = self._pending_ids.get(text_id)
        if pending is not None:
            return pending
        row = self._conn.execute(
            "SELECT sha1, size, pack, position FROM text_data WHERE id = ?", (text_id,)
        ).fetchone()
        if row is None:
            raise StorageError(f"text #{text_id} is missing from the mirror")
        sha1 = bytes(row[0]).hex()
        cached = self.cache.get(sha1)
        if cached is not None:
            return cached
        if row[2] is None:
            raise StorageError(f"text {sha1} is missing from the mirror (in no pack)")
        try:
            payload, spans = self._payload(int(row[2]))
            data = packs.read_record(payload, spans, int(row[3]))
        except packs.PackError as exc:
            raise StorageError(f"text {sha1} is corrupt in the mirror ({exc})") from None
        if len(data) != row[1] or hashlib.sha1(data).hexdigest() != sha1:
            raise StorageError(f"text {sha1} is corrupt in the mirror (checksum mismatch)")
        self.cache.put(sha1, data)
        return data

    def _payload(self, pack_id: int) -> tuple[bytes, list[tuple[int, int, int]]]:
        """A pack's decompressed records and their spans, cached."""
        found = self._packs.get_with(pack_id)
        if found is not None:
            return found[0], found[1]  # type: ignore[return-value]
        row = self._conn.execute("SELECT data FROM text_packs WHERE id = ?",
                                 (pack_id,)).fetchone()
        if row is None:
            raise StorageError(f"text pack #{pack_id} is missing from the mirror")
        try:
            payload = packs.decompress(row[0])
            spans = packs.record_spans(payload)
        except packs.PackError as exc:
            raise StorageError(f"text pack #{pack_id} is corrupt in the mirror ({exc})") from None
        self._packs.put(pack_id, payload, spans)
        return payload, spans


def _chunks(items: list[int], size: int = 500) -> list[list[int]]:
    """Pieces small enough for one statement's host parameters."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def _marks(chunk: list[int]) -> str:
    return ", ".join("?" * len(chunk))
