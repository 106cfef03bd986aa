"""The compressed revision store (storage/textstore.py), through Mirror.write_batch."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import textstore
from storage.errors import StorageError
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord
from storage.textstore import ByteLRU, TextStore, text_sha1


def rev(revid: int, text: str | None, *, pageid: int = 1, role: str = "main") -> RevisionRecord:
    return RevisionRecord(
        revid=revid,
        pageid=pageid,
        parentid=None,
        timestamp=f"2020-01-01T{revid // 3600:02d}:{revid // 60 % 60:02d}:{revid % 60:02d}Z",
        user="Someone",
        userid=7,
        comment=None,
        minor=False,
        size=None,
        sha1=None,
        slots=[SlotRecord(role=role, text=text)],
    )


def store(mirror: Mirror, revisions: list[RevisionRecord]) -> int:
    pages = [PageRecord(pageid=p, ns=0, title=f"Page {p}") for p in {r.pageid for r in revisions}]
    return mirror.write_batch(RevisionBatch(pages, revisions), "test", None, False)


def reread(mirror: Mirror, revid: int) -> str | None:
    mirror.texts.cache.clear()  # force decompression from the database
    return mirror.revision_text(revid)


def edited_history(n: int, seed: int = 1, words: int = 1500) -> list[str]:
    """n versions of an article, each one small random edit away from the last."""
    rng = random.Random(seed)
    vocab = [f"w{rng.randrange(10**6)}" for _ in range(3000)]
    doc = [rng.choice(vocab) for _ in range(words)]
    out = []
    for _ in range(n):
        pos = rng.randrange(len(doc))
        action = rng.random()
        if action < 0.5:
            doc.insert(pos, rng.choice(vocab))
        elif action < 0.8:
            doc[pos] = rng.choice(vocab)
        else:
            del doc[pos]
        out.append(" ".join(doc))
    return out


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with Mirror.open(tmp_path / "m", create=True) as m:
        yield m


def test_round_trip_unicode_and_empty(mirror: Mirror) -> None:
    texts = ["", "plain", "Ünïcödé — 日本語 — 🐍\n\ttabs", "x" * 100_000, "\x00nul"]
    store(mirror, [rev(i + 1, t, pageid=i + 1) for i, t in enumerate(texts)])
    for i, t in enumerate(texts):
        assert reread(mirror, i + 1) == t
        assert mirror.read_text(text_sha1(t)) == t


def test_identical_texts_are_stored_once(mirror: Mirror) -> None:
    a, b = "version A " * 500, "version B " * 500
    store(mirror, [rev(1, a), rev(2, b), rev(3, a), rev(4, a, pageid=2)])  # revert + copy
    assert mirror.db.execute("SELECT count(*) FROM texts").fetchone()[0] == 2
    assert [reread(mirror, r) for r in (1, 2, 3, 4)] == [a, b, a, a]


def test_long_history_is_small_bounded_and_exact(mirror: Mirror) -> None:
    history = edited_history(1000)
    for start in range(0, 1000, 50):
        store(mirror, [rev(i + 1, history[i]) for i in range(start, start + 50)])
    raw = sum(len(t.encode()) for t in history)
    stored, max_depth, keyframes = mirror.db.execute(
        "SELECT sum(length(data)), max(depth), sum(base IS NULL) FROM texts"
    ).fetchone()
    assert max_depth == textstore.MAX_DEPTH
    assert keyframes == 1
    # Measured: 219x (12.9 MB raw, 59 kB stored); zstd of each text on its own
    # gives 2.4x.
    assert raw / stored > 100
    mirror.texts.cache.clear()
    for i, t in enumerate(history):
        assert mirror.revision_text(i + 1) == t


def test_full_tree_starts_a_new_keyframe(mirror: Mirror) -> None:
    mirror.texts = TextStore(mirror.db.conn, max_depth=3, branching=2)
    history = edited_history(40, words=200)
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    rows = mirror.db.execute("SELECT base, depth FROM texts").fetchall()
    assert max(depth for _, depth in rows) == 3
    # A binary tree of depth 3 holds 15 texts: 40 texts need 3 keyframes.
    assert sum(base is None for base, _ in rows) == 3
    assert [reread(mirror, i + 1) for i in range(40)] == history


def test_out_of_order_arrival(mirror: Mirror) -> None:
    history = edited_history(120, seed=5)
    order = list(range(120))
    random.Random(3).shuffle(order)
    for start in range(0, 120, 10):
        store(mirror, [rev(i + 1, history[i]) for i in order[start : start + 10]])
    assert mirror.db.execute("SELECT max(depth) FROM texts").fetchone()[0] <= textstore.MAX_DEPTH
    assert [reread(mirror, i + 1) for i in range(120)] == history


def test_slots_and_pages_have_separate_chains(mirror: Mirror) -> None:
    main, other = edited_history(3, seed=1), edited_history(3, seed=2)
    revisions = []
    for i in range(3):
        r = rev(i + 1, main[i])
        r.slots.append(SlotRecord(role="mediainfo", text=other[i]))
        revisions.append(r)
    store(mirror, revisions)
    for i in range(3):
        assert reread(mirror, i + 1) == main[i]
        assert mirror.revision_text(i + 1, "mediainfo") == other[i]
    # Deltas chain within a role: the second mediainfo text is based on the first.
    base = mirror.db.execute(
        "SELECT base FROM texts WHERE sha1 = ?", [text_sha1(other[1])]
    ).fetchone()[0]
    assert base == text_sha1(other[0])


def test_five_megabyte_text_with_delta(mirror: Mirror) -> None:
    big = random.Random(9).randbytes(2_500_000).hex()  # 5 MB, compresses only 2:1
    edited = big[:2_500_000] + "an edit in the middle" + big[2_500_000:]
    store(mirror, [rev(1, big), rev(2, edited)])
    size, base = mirror.db.execute(
        "SELECT length(data), base FROM texts WHERE sha1 = ?", [text_sha1(edited)]
    ).fetchone()
    assert base == text_sha1(big)
    assert size < 2_000  # the window covers the whole 5 MB dictionary
    assert reread(mirror, 2) == edited
    assert reread(mirror, 1) == big


def test_corrupt_frame_is_a_storage_error(mirror: Mirror) -> None:
    history = edited_history(3)
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    sha1 = text_sha1(history[1])
    data = bytearray(
        mirror.db.execute("SELECT data FROM texts WHERE sha1 = ?", [sha1]).fetchone()[0]
    )
    data[len(data) // 2] ^= 0xFF
    mirror.db.execute("UPDATE texts SET data = ? WHERE sha1 = ?", [bytes(data), sha1])
    with pytest.raises(StorageError, match="corrupt"):
        reread(mirror, 2)
    with pytest.raises(StorageError, match="corrupt"):
        reread(mirror, 3)  # its base is the damaged one
    assert reread(mirror, 1) == history[0]


def test_missing_text_is_a_storage_error(mirror: Mirror) -> None:
    with pytest.raises(StorageError, match="missing"):
        mirror.read_text("0" * 40)


def test_cache_is_bounded_by_bytes() -> None:
    cache = ByteLRU(100)
    for i in range(50):
        cache.put(str(i), b"x" * 30)
    assert cache.used <= 100 and len(cache) == 3
    assert cache.get("49") is not None and cache.get("0") is None
    cache.put("huge", b"y" * 101)  # bigger than the whole cache: not kept
    assert cache.get("huge") is None


def test_write_cache_stays_bounded(tmp_path: Path) -> None:
    with Mirror.open(tmp_path / "m", create=True) as m:
        m.texts = TextStore(m.db.conn, cache_bytes=200_000)
        history = edited_history(100)
        store(m, [rev(i + 1, t) for i, t in enumerate(history)])
        assert m.texts.cache.used <= 200_000
        assert [reread(m, i + 1) for i in range(100)] == history


def test_a_batch_chooses_the_same_bases_as_one_revision_at_a_time(tmp_path: Path) -> None:
    """Within a batch, RecentTexts stands in for the query of the previous texts:
    with blankings, reverts, vandalism and a revision whose timestamp is out of
    revid order, every text gets the base and frame the query would give it."""
    history = edited_history(60, seed=9, words=400)
    texts: list[str] = []
    for i, text in enumerate(history):
        if i % 11 == 5:
            texts.append("")  # blanked
        elif i % 13 == 7:
            texts.append(texts[-3])  # revert to an earlier version
        elif i % 17 == 3:
            texts.append("VANDAL " * 300)
        else:
            texts.append(text)
    revisions = [rev(i + 1, t) for i, t in enumerate(texts)]
    revisions += [rev(100 + i, t, pageid=2) for i, t in enumerate(history[:20])]
    revisions[30].timestamp = "2019-06-01T00:00:00Z"

    def stored_rows(name: str, batches: list[list[RevisionRecord]]) -> list[tuple[object, ...]]:
        with Mirror.open(tmp_path / name, create=True) as m:
            for batch in batches:
                store(m, batch)
            return m.db.execute(
                "SELECT sha1, base, depth, children, data FROM text_data ORDER BY id"
            ).fetchall()

    one_batch = stored_rows("batch", [revisions])
    one_by_one = stored_rows("single", [[r] for r in revisions])
    assert len(one_batch) > 45
    assert one_batch == one_by_one
