"""The compressed revision store: the ``texts`` table.

Texts are content-addressed by the SHA-1 of their UTF-8 bytes, so a text that
comes back (a revert: very common on wikis) is stored once; for the main slot
that key equals MediaWiki's own slot sha1.

A new text is stored as a zstd frame compressed with another stored text of the
same page and slot as a raw-content dictionary (a "delta"): consecutive
revisions are near-identical, so a delta is a few hundred bytes where the text
is tens of kilobytes. Each text records its ``base`` (NULL for a keyframe) and
its ``depth`` (base.depth + 1), and reading one revision decompresses at most
MAX_DEPTH + 1 frames, never a whole page history.

Choosing the base (figures: the 15,180-revision enwiki "Anarchism" history,
1,021 MB of wikitext, 12,191 distinct texts; see tests/bench_storage.py):

* Candidates are the texts of the page+slot's last PREVIOUS_TEXTS distinct,
  non-empty stored revisions before the new one. Skipping empty texts matters:
  page blanking is common vandalism, and the text after it is the article again.
* For each candidate P: if P.depth < MAX_DEPTH, P itself; otherwise walk up P's
  chain of bases to the deepest ancestor with fewer than BRANCHING children.
  This fills a binary tree of deltas depth-first, like a binary counter: half of
  the texts are deltas against the version just before them, a quarter against
  two versions before, and so on. A full tree (2**(MAX_DEPTH+1) - 1 texts)
  yields no base, and the text becomes a new keyframe.
* Compress against the first candidate. If that delta is big (another sign of
  vandalism), also try the first candidate's own base and the other candidates,
  and keep the smallest frame.

Result: 3.63 MB of texts (281x smaller than the wikitext, 1.9x the size of the
whole XML under lzma; 3.52 MB since frames are bare, see compress()), stored
at about 1,050 revisions/s; a read decompresses 15.7 frames on average and
takes 1.1 ms (median, cold cache).

Rejected, measured with a prototype of the same zstd calls (the prototype's
figure for the rule above without the candidates: 5.2 MB):

* After MAX_DEPTH, delta against the ancestor at depth MAX_DEPTH // 2: that
  ancestor becomes a hub that every later delta is taken against, and the deltas
  grow as the article drifts away from it: 41 MB.
* A keyframe every MAX_DEPTH + 1 texts: a full compressed copy each time: 21 MB.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import OrderedDict
from collections.abc import Collection, Iterator
from typing import NamedTuple

import zstandard

from .errors import StorageError

# Longest chain of deltas; a read decompresses at most MAX_DEPTH + 1 frames.
# Anarchism, one run of all three: depth 8 -> 4.59 MB of texts, reads 1.1 ms
# (median); 16 -> 3.63 MB, 1.9 ms; 32 -> 3.71 MB, 2.5 ms. (Depth 16 alone: 1.1 ms.)
MAX_DEPTH = 16
# How many texts the tree rule may base on one text (module docstring).
# Anarchism, depth 16: 2 -> 3.63 MB, 4 -> 4.75 MB.
BRANCHING = 2
# zstd level for deltas. Anarchism, depth 16: level 3 -> 4.17 MB, 6 -> 3.86 MB,
# 9 -> 3.63 MB, 12 -> 3.57 MB; stored at 1069, 914, 877 and 125 rev/s in one run:
# compressing against a raw dictionary gets costly above 9.
DELTA_LEVEL = 9
# ... but level 6 for texts up to SMALL_TEXT_BYTES: on the fixture wiki's texts
# (5.8 KB on average) it stores the same bytes (317,718 against 317,684 for
# 3,069 texts) in 86 instead of 122 us per text, where on Anarchism's (48 KB)
# it is 2 % bigger and no faster.
SMALL_DELTA_LEVEL = 6
SMALL_TEXT_BYTES = 16 * 1024
# zstd level for keyframes (the first text of each page: most pages of most
# wikis have few revisions, so keyframes dominate small wikis). On the 747
# distinct texts of the other shared corpora: level 3 -> 44.9 % of raw at
# 104 MB/s, 9 -> 43.6 % at 26 MB/s, 19 -> 42.9 % at 3 MB/s.
KEYFRAME_LEVEL = 9
# How many recent distinct texts of the page+slot offer a base, and how big a
# delta (relative to the text) makes it worth trying them all. Prototype on
# Anarchism: 1 text, no retry -> 4.22 MB; 3 texts -> 4.12 MB; 3 texts and retry
# above 1/16 -> 3.91 MB (1.06 compressions per text); above 1/50 -> 3.75 MB (1.16).
PREVIOUS_TEXTS = 3
RETRY_FRACTION = 1 / 50
RETRY_MIN_BYTES = 256  # below this a better base cannot save much
# zstd refuses to decode windows above 2**27 by default; texts bigger than that
# (far above any wiki's $wgMaxArticleSize) still work, with less delta gain.
MAX_WINDOW_LOG = 27
# Decompressed texts kept in memory, by total size: bounds memory however long a
# page history is, and keeps the bases of the next writes at hand. Crawl of the
# 27,789-revision fixture wiki (scale 10; 3,072 at scale 1 peak at 77 MB RSS):
# 64 MiB -> 178 MB RSS, 21.2 s CPU; 16 MiB -> 93 MB, 22.5 s; 8 MiB -> 78 MB, 23.8 s.
# 8 MiB keeps memory flat between the two wikis for about 12 % more CPU.
CACHE_BYTES = 8 * 1024 * 1024


def text_sha1(text: str) -> str:
    """The content address of a text (MediaWiki's slot sha1 for the main slot)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class _Node(NamedTuple):
    id: int
    base: int | None
    depth: int
    children: int
    sha1: bytes  # raw; the cache's key is its hex form

    @property
    def key(self) -> str:
        return self.sha1.hex()


class StoredText(NamedTuple):
    id: int  # text_data.id
    sha1: str  # hex


class ByteLRU:
    """An LRU map of sha1 -> bytes bounded by the total size of the values."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.capacity:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= len(old)
        self._items[key] = value
        self.used += len(value)
        while self.used > self.capacity:
            _, evicted = self._items.popitem(last=False)
            self.used -= len(evicted)

    def discard(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= len(old)

    def clear(self) -> None:
        self._items.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._items)


class RecentTexts:
    """What _previous_texts() would find for the next revision of each page+slot,
    kept while one transaction writes a batch in page and history order.

    Each text written records itself with the texts before it, so the page's
    next revision (later in history order) needs no query. Anything else (an
    earlier revision, a text stored before) falls back to the query. Kept for
    one transaction only: a rolled-back one hands its text ids out again.
    The nodes' ``children`` may be stale; _choose_base() never reads it from a
    candidate, only from the ancestors it looks up.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[int, str], tuple[str, int, list[_Node]]] = {}

    def before(
        self, pageid: int, role: str, timestamp: str | None, revid: int
    ) -> list[_Node] | None:
        last = self._last.get((pageid, role))
        if last is None or timestamp is None or (timestamp, revid) <= (last[0], last[1]):
            return None
        return last[2]

    def after(
        self,
        pageid: int,
        role: str,
        timestamp: str,
        revid: int,
        node: _Node,
        previous: list[_Node],
    ) -> None:
        """Record the text just written for revision ``revid`` (``previous``: the older
        texts before it; the text itself only counts when it is not empty)."""
        last = self._last.get((pageid, role))
        if last is not None and (timestamp, revid) < (last[0], last[1]):
            # Written out of history order: the page's history is no longer a
            # simple sequence here; the query knows better.
            self.forget(pageid, role)
            return
        texts = [n for n in previous if n.id != node.id]
        if node.sha1 != _EMPTY_SHA1:
            texts.insert(0, node)
        self._last[pageid, role] = (timestamp, revid, texts[:PREVIOUS_TEXTS])

    def forget(self, pageid: int, role: str) -> None:
        self._last.pop((pageid, role), None)


_EMPTY_SHA1 = hashlib.sha1(b"").digest()


class TextStore:
    """Reads and writes the ``text_data`` table through the mirror's connection.

    Texts are rows with an integer ``id`` (what slots and bases refer to) and
    their 20-byte SHA-1; the ``texts`` view shows them with hex keys. add() must
    run inside the caller's transaction: it writes rows and reads the revisions
    and slots written earlier in the same transaction.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        cache_bytes: int = CACHE_BYTES,
        max_depth: int = MAX_DEPTH,
        branching: int = BRANCHING,
        level: int = DELTA_LEVEL,
    ) -> None:
        # The tuning knobs are parameters only so that tests and the benchmark
        # can try other values; a mirror can mix texts written with any of them.
        self._conn = conn
        # Keyed by hex sha1, never by id: a rolled-back transaction can hand its
        # ids out again to other texts, a sha1 always names the same bytes.
        self.cache = ByteLRU(cache_bytes)
        self.max_depth = max_depth
        self.branching = branching
        self.level = level

    # -- writing --------------------------------------------------------------

    def put(self, text: str, pageid: int, role: str, revid: int) -> str:
        """Store a text of revision ``revid`` of page+slot; returns its sha1."""
        return self.add(text, pageid, role, revid).sha1

    def add(
        self,
        text: str,
        pageid: int,
        role: str,
        revid: int,
        timestamp: str | None = None,
        recent: RecentTexts | None = None,
    ) -> StoredText:
        """Store a text of revision ``revid`` of page+slot (once); returns its id and sha1.

        ``timestamp``, the revision's, saves looking it up (and lets the text be
        stored before the revision's row). ``recent`` (see RecentTexts) saves
        the query for the previous texts when the same transaction has just
        written the page's revision before this one.
        """
        data = text.encode("utf-8")
        digest = hashlib.sha1(data).digest()
        sha1 = digest.hex()
        found = self._find(digest)
        if found is not None:
            if recent is not None:
                recent.forget(pageid, role)
            return StoredText(found, sha1)
        previous = None if recent is None else recent.before(pageid, role, timestamp, revid)
        older = True
        if previous is None:
            previous, older = self._previous_texts(pageid, role, revid, timestamp)
        base, frame = self._best_delta(data, previous)
        depth = 0 if base is None else base.depth + 1
        cursor = self._conn.execute(
            "INSERT INTO text_data (sha1, base, depth, size, children, data)"
            " VALUES (?, ?, ?, ?, 0, ?)",
            (digest, None if base is None else base.id, depth, len(data), frame),
        )
        text_id = int(cursor.lastrowid or 0)
        if base is not None:
            self._conn.execute(
                "UPDATE text_data SET children = children + 1 WHERE id = ?", (base.id,)
            )
        if recent is not None and timestamp is not None:
            node = _Node(text_id, None if base is None else base.id, depth, 0, digest)
            recent.after(pageid, role, timestamp, revid, node, previous if older else [])
        self.cache.put(sha1, data)
        return StoredText(text_id, sha1)

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

    def _best_delta(self, data: bytes, previous: list[_Node]) -> tuple[_Node | None, bytes]:
        """(base, frame): a delta against the first candidate, unless it is big and another
        candidate does better; a keyframe (None, frame) when there is no candidate.

        The other candidates are only worked out when they are tried (when the
        first delta is big): one whose tree is full costs a query per ancestor.
        """
        candidates = self._candidates(previous)
        first = next(candidates, None)
        if first is None:
            return None, compress(data, None)
        level = self._level(len(data))
        best = (first, compress(data, self._base_bytes(first), level))
        if len(best[1]) <= max(RETRY_MIN_BYTES, len(data) * RETRY_FRACTION):
            return best
        # A big delta often means the previous text is vandalism: its own base,
        # the version before it, is a valid base too (one level shallower).
        others = list(candidates)
        if first.base is not None and all(c.id != first.base for c in others):
            others.insert(0, self._node(first.base))
        for base in others:
            frame = compress(data, self._base_bytes(base), level)
            if len(frame) < len(best[1]):
                best = (base, frame)
        return best

    def _level(self, size: int) -> int:
        return min(self.level, SMALL_DELTA_LEVEL) if size <= SMALL_TEXT_BYTES else self.level

    def _candidates(self, previous: list[_Node]) -> Iterator[_Node]:
        """Possible bases, best first: one per recent distinct text of the page+slot."""
        seen: set[int] = set()
        for text in previous:
            base = self._choose_base(text)
            if base is not None and base.id not in seen:
                seen.add(base.id)
                yield base

    def _previous_texts(
        self, pageid: int, role: str, revid: int, timestamp: str | None = None
    ) -> tuple[list[_Node], bool]:
        """The last PREVIOUS_TEXTS distinct non-empty texts of the page+slot before ``revid``,
        and whether they are older (False: the nearest newer ones, see below).

        "Before" in the page's history order, (timestamp, revid), which the
        history index walks; the revision's row must be written already unless
        its ``timestamp`` is given.
        Empty texts are skipped: page blanking is common vandalism, and the
        text after it is the article again. Revisions may arrive out of order
        (parallel crawls of time ranges): with nothing older stored, the
        nearest newer revisions serve.
        """
        if timestamp is None:
            row = self._conn.execute(
                "SELECT timestamp FROM revision_data WHERE revid = ?", (revid,)
            ).fetchone()
            if row is None:
                return [], True
            timestamp = row[0]
        out: list[_Node] = []
        for older, query in zip((True, False), _PREVIOUS_QUERIES, strict=True):
            cursor = self._conn.execute(query, (role, pageid, timestamp, revid))
            for row in cursor:
                if all(text.id != row[0] for text in out):
                    out.append(_Node(*row))
                    if len(out) == PREVIOUS_TEXTS:
                        break
            # Left half-read, the statement stays busy and the next call would
            # compile it again (four times the cost of the query).
            cursor.close()
            if out:
                return out, older
        return out, True

    def _choose_base(self, node: _Node) -> _Node | None:
        """The base for a text following ``node`` (rule in the module docstring)."""
        if node.depth < self.max_depth:
            return node
        ancestor = node.base
        while ancestor is not None:
            up = self._node(ancestor)
            if up.children < self.branching:
                return up
            ancestor = up.base
        return None  # this tree is full

    def _node(self, text_id: int) -> _Node:
        row = self._conn.execute(
            "SELECT base, depth, children, sha1 FROM text_data WHERE id = ?", (text_id,)
        ).fetchone()
        if row is None:
            raise StorageError(f"text #{text_id} is missing from the mirror")
        return _Node(text_id, row[0], int(row[1]), int(row[2]), row[3])

    # -- removing -------------------------------------------------------------

    def remove(self, doomed: Collection[str]) -> int:
        """Delete texts named by hex sha1 (see remove_ids); returns how many were deleted."""
        ids = {self.id_of(sha1) for sha1 in doomed}
        return self.remove_ids({i for i in ids if i is not None})

    def remove_ids(self, doomed: Collection[int]) -> int:
        """Delete texts, keeping every other text readable; returns how many were deleted.

        Must run inside the caller's transaction. A text that other texts are
        deltas against cannot simply go: each surviving child is re-encoded
        against its nearest surviving ancestor (a keyframe when there is none),
        so no frame left behind needs, or holds, a byte of a deleted text.
        """
        doomed = {text_id for text_id in doomed if self._exists(text_id)}
        if not doomed:
            return 0
        orphans = self._orphans(doomed)
        anchors = self._rebase(orphans, doomed)
        recount = {self._node(text_id).base for text_id in doomed} | set(anchors.values())
        sha1s = []
        for chunk in _chunks(sorted(doomed)):
            marks = ", ".join("?" * len(chunk))
            sha1s += [bytes(r[0]).hex() for r in self._conn.execute(
                f"SELECT sha1 FROM text_data WHERE id IN ({marks})", chunk)]  # fmt: skip
            self._conn.execute(f"DELETE FROM text_data WHERE id IN ({marks})", chunk)
        for sha1 in sha1s:
            self.cache.discard(sha1)
        self._fix_depths(orphans, anchors)
        for base in recount:
            if base is not None and base not in doomed:
                # An anchor may end up with more than BRANCHING children: that only
                # stops _choose_base() from picking it again, it never breaks a read.
                self._conn.execute(
                    "UPDATE text_data SET children ="
                    " (SELECT count(*) FROM text_data c WHERE c.base = ?1) WHERE id = ?1",
                    (base,),
                )
        return len(doomed)

    def _rebase(self, orphans: dict[int, int], doomed: set[int]) -> dict[int, int | None]:
        """Re-encode each orphan against its nearest surviving ancestor; returns those anchors.

        Runs before the doomed texts are deleted: decoding an orphan needs them.
        """
        anchors: dict[int, int | None] = {}
        for text_id in orphans:
            anchor = self._surviving_ancestor(text_id, doomed)
            anchors[text_id] = anchor
            base = None if anchor is None else self._bytes(anchor)
            data = self._bytes(text_id)
            frame = compress(data, base, self._level(len(data)))
            self._conn.execute(
                "UPDATE text_data SET base = ?, data = ? WHERE id = ?", (anchor, frame, text_id)
            )
        return anchors

    def _exists(self, text_id: int) -> bool:
        row = self._conn.execute("SELECT 1 FROM text_data WHERE id = ?", (text_id,)).fetchone()
        return row is not None

    def _orphans(self, doomed: set[int]) -> dict[int, int]:
        """The surviving texts whose base is doomed, with their depth."""
        out: dict[int, int] = {}
        for chunk in _chunks(sorted(doomed)):
            marks = ", ".join("?" * len(chunk))
            for text_id, depth in self._conn.execute(
                f"SELECT id, depth FROM text_data WHERE base IN ({marks})", chunk
            ):
                if text_id not in doomed:
                    out[int(text_id)] = int(depth)
        return out

    def _surviving_ancestor(self, text_id: int, doomed: set[int]) -> int | None:
        ancestor = self._node(text_id).base
        while ancestor is not None and ancestor in doomed:
            ancestor = self._node(ancestor).base
        return ancestor

    def _fix_depths(self, orphans: dict[int, int], anchors: dict[int, int | None]) -> None:
        """Make ``depth`` exact again in the subtrees of the re-based texts.

        Depths only shrink (a text moves up to an ancestor of its old base), so
        MAX_DEPTH still bounds every chain. Shallower orphans go first: an
        orphan's anchor may lie in the subtree of a shallower one, whose shift
        must already be applied when the deeper orphan's depth is derived from it.
        """
        for text_id in sorted(orphans, key=lambda t: (orphans[t], t)):
            anchor = anchors[text_id]
            depth = 0 if anchor is None else self._node(anchor).depth + 1
            shift = self._node(text_id).depth - depth
            if shift:
                self._conn.execute(_SHIFT_SUBTREE, (text_id, shift))

    # -- reading --------------------------------------------------------------

    def get(self, sha1: str) -> str:
        return self.get_bytes(sha1).decode("utf-8")

    def get_by_id(self, text_id: int) -> str:
        return self._bytes(text_id).decode("utf-8")

    def get_bytes(self, sha1: str) -> bytes:
        """The UTF-8 bytes of the text with this hex sha1, resolving its delta chain."""
        cached = self.cache.get(sha1)
        if cached is not None:
            return cached
        text_id = self.id_of(sha1)
        if text_id is None:
            raise StorageError(f"text {sha1} is missing from the mirror")
        return self._bytes(text_id)

    def _base_bytes(self, node: _Node) -> bytes:
        """A base's bytes: from the cache without a query when they are there."""
        cached = self.cache.get(node.key)
        return self._bytes(node.id) if cached is None else cached

    def _bytes(self, text_id: int) -> bytes:
        """The UTF-8 bytes of a stored text by id; its sha1 is verified."""
        # Walk down to a keyframe or to a text already in the cache ...
        chain: list[tuple[str, int, bytes]] = []
        seen: set[int] = set()
        key: int | None = text_id
        base_data: bytes | None = None
        while key is not None:
            if key in seen:  # only a damaged database can loop
                raise StorageError(f"text #{text_id} has a broken delta chain in the mirror")
            seen.add(key)
            row = self._conn.execute(
                "SELECT sha1, base, size, data FROM text_data WHERE id = ?", (key,)
            ).fetchone()
            if row is None:
                raise StorageError(f"text #{key} is missing from the mirror")
            sha1 = bytes(row[0]).hex()
            cached = self.cache.get(sha1)
            if cached is not None:
                base_data = cached
                break
            chain.append((sha1, int(row[2]), row[3]))
            key = row[1]
        # ... then decompress back up, checking each sha1. Intermediate texts are
        # cached too: the siblings of a text share most of its chain.
        for sha1, size, frame in reversed(chain):
            base_data = decompress(frame, base_data, sha1, size)
            self.cache.put(sha1, base_data)
        assert base_data is not None
        # The text asked for is checked; a damaged text further down its chain
        # makes this one wrong too, and is caught here.
        if chain and hashlib.sha1(base_data).hexdigest() != chain[0][0]:
            for sha1, _, _ in chain:
                self.cache.discard(sha1)
            raise StorageError(f"text {chain[0][0]} is corrupt in the mirror (checksum mismatch)")
        return base_data


# The page+slot's stored texts before (or after) a revision in history order;
# walks idx_revision_data_history (pageid, timestamp, then revid as the rowid).
_PREVIOUS = """
    SELECT s.text_id, t.base, t.depth, t.children, t.sha1 FROM revision_data r
    JOIN slot_data s ON s.revid = r.revid AND s.role = ?1
    JOIN text_data t ON t.id = s.text_id
    WHERE r.pageid = ?2 AND (r.timestamp, r.revid) {op} (?3, ?4) AND t.size > 0
    ORDER BY r.timestamp {order}, r.revid {order} LIMIT 20
"""
_PREVIOUS_QUERIES = (_PREVIOUS.format(op="<", order="DESC"), _PREVIOUS.format(op=">", order="ASC"))

# Every text reached from one text through `base` links (text_data(base) is
# indexed), the text included, moved up by the given number of levels. UNION,
# not UNION ALL: a damaged database with a loop cannot make it run forever.
_SHIFT_SUBTREE = """
    WITH RECURSIVE subtree(id) AS (
        SELECT ?1 UNION SELECT t.id FROM text_data t JOIN subtree ON t.base = subtree.id
    )
    UPDATE text_data SET depth = depth - ?2 WHERE id IN subtree
"""


def _chunks(items: list[int], size: int = 500) -> list[list[int]]:
    """Pieces small enough for one statement's host parameters."""
    return [items[i : i + size] for i in range(0, len(items), size)]


# Frames are written without zstd's magic number, content size, dictionary id
# and checksum: the row holds the size, and the sha1 verified on every read
# catches any damage the checksum would. 10 to 13 bytes less per text, which
# on small wikis is a tenth of the store. Frames of older mirrors carry the
# magic number; a magicless frame never starts with it (its first byte would
# set a reserved bit).
_MAGIC = b"\x28\xb5\x2f\xfd"
_FRAME = {"write_checksum": 0, "write_content_size": 0, "write_dict_id": 0,
          "format": zstandard.FORMAT_ZSTD1_MAGICLESS}  # fmt: skip


def compress(data: bytes, base: bytes | None, level: int = DELTA_LEVEL) -> bytes:
    """One bare zstd frame, as a delta against ``base`` when given."""
    dict_size = len(base) if base is not None else 0
    if base is None:
        level = KEYFRAME_LEVEL
    params = _parameters(level, len(data), dict_size)
    if base is None:
        return zstandard.ZstdCompressor(compression_params=params).compress(data)
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(data)


def _parameters(level: int, size: int, dict_size: int) -> zstandard.ZstdCompressionParameters:
    """zstd's parameters for a level and these sizes, with a window that covers both.

    Matches in the dictionary are only found within the window, and the level's
    default window (4 MB at level 9) would make a delta of a 5 MB text against its
    5 MB predecessor nearly as big as the text. Built once per level, window and
    power-of-two sizes (zstd itself only tells sizes apart by a few classes):
    building them took a sixth to a fifth of the time of a small text's compression.
    """
    needed = min(MAX_WINDOW_LOG, max(10, (dict_size + size).bit_length()))
    key = (level, needed, size.bit_length(), dict_size.bit_length())
    params = _PARAMETERS.get(key)
    if params is None:
        # The sizes zstd sees are the class's upper bounds, so a cached entry
        # never has tables too small for a text of its class.
        bound, dict_bound = (1 << key[2]) - 1, (1 << key[3]) - 1 if dict_size else 0
        params = zstandard.ZstdCompressionParameters.from_level(
            level, source_size=bound, dict_size=dict_bound, **_FRAME
        )
        if params.window_log < needed:
            params = zstandard.ZstdCompressionParameters.from_level(
                level, source_size=bound, dict_size=dict_bound, window_log=needed, **_FRAME
            )
        _PARAMETERS[key] = params
    return params


_PARAMETERS: dict[tuple[int, int, int, int], zstandard.ZstdCompressionParameters] = {}


def decompress(frame: bytes, base: bytes | None, sha1: str, size: int) -> bytes:
    """Inverse of compress() (``size``: the text's length); damage becomes a StorageError."""
    fmt = zstandard.FORMAT_ZSTD1 if frame[:4] == _MAGIC else zstandard.FORMAT_ZSTD1_MAGICLESS
    try:
        if base is None:
            decompressor = zstandard.ZstdDecompressor(format=fmt)
        else:
            dictionary = zstandard.ZstdCompressionDict(
                base, dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            decompressor = zstandard.ZstdDecompressor(dict_data=dictionary, format=fmt)
        # Bounded by the recorded size: a damaged frame cannot make a huge output.
        out = decompressor.decompress(frame, max_output_size=max(1, size))
    except zstandard.ZstdError as exc:
        raise StorageError(f"text {sha1} is corrupt in the mirror ({exc})") from None
    if len(out) != size:
        raise StorageError(f"text {sha1} is corrupt in the mirror (wrong size)")
    return out
