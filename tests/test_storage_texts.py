"""The compressed revision store (storage/textstore.py), through Mirror.write_batch."""

from __future__ import annotations

import itertools
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage import packs
from storage.errors import StorageError
from storage.mirror import Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord
from storage.textstore import SHARED_PACK_BYTES, ByteLRU, TextStore, text_sha1
from tests.helpers import assert_consistent, edited_history


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
    mirror.texts.clear_caches()  # force decompression from the database
    return mirror.revision_text(revid)


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


def test_long_history_is_small_and_exact(mirror: Mirror) -> None:
    history = edited_history(300)
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    [(packs_, records, stored)] = mirror.db.execute(
        "SELECT count(*), sum(records), sum(length(data)) FROM text_packs").fetchall()
    assert (packs_, records) == (1, 300)
    raw = sum(len(t.encode()) for t in history)
    assert raw / stored > 100
    mirror.texts.clear_caches()
    for i, t in enumerate(history):
        assert mirror.revision_text(i + 1) == t


def test_a_read_applies_at_most_one_snapshot_interval_of_deltas(mirror: Mirror) -> None:
    history = [t.replace(" w1", "\nw1") for t in edited_history(200)]  # lines
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    [(data,)] = mirror.db.execute("SELECT data FROM text_packs").fetchall()
    kinds = [kind for kind, _, _ in packs.record_spans(packs.decompress(data))]
    snapshots = [i for i, kind in enumerate(kinds) if kind == packs.SNAPSHOT]
    assert snapshots == list(range(0, 200, packs.SNAPSHOT_EVERY))


def test_packs_grow_across_transactions_and_split_when_full(tmp_path: Path) -> None:
    history = edited_history(50)
    with Mirror.open(tmp_path / "m", create=True) as m:
        m.texts = TextStore(m.db.conn, pack_texts=20)
        for start in range(0, 50, 7):
            store(m, [rev(i + 1, history[i]) for i in range(start, min(50, start + 7))])
        sizes = [n for (n,) in m.db.execute("SELECT records FROM text_packs ORDER BY id")]
        # the newest packs merged while similar in size, the older ones full
        assert sum(sizes) == 50 and max(sizes) <= 20
        assert all(a == 20 or a > 2 * b for a, b in itertools.pairwise(sizes))
        assert sizes[:2] == [20, 20]
        assert [reread(m, i + 1) for i in range(50)] == history


def test_a_pack_is_a_zstd_frame_the_zstd_program_reads(mirror: Mirror, tmp_path: Path) -> None:
    history = edited_history(3)
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    [(data,)] = mirror.db.execute("SELECT data FROM text_packs").fetchall()
    (tmp_path / "pack.zst").write_bytes(data)
    if shutil.which("zstd") is None:
        pytest.skip("no zstd program")
    out = subprocess.run(["zstd", "-dc", str(tmp_path / "pack.zst")], capture_output=True,
                         check=True).stdout
    assert out == packs.decompress(data)
    assert out.startswith(bytes([packs.SNAPSHOT]) + len(history[0]).to_bytes(4, "little")
                          + history[0].encode())


def test_out_of_order_arrival(mirror: Mirror) -> None:
    history = edited_history(120)
    order = list(range(120))
    random.Random(3).shuffle(order)
    for chunk in range(0, 120, 10):
        store(mirror, [rev(i + 1, history[i]) for i in order[chunk : chunk + 10]])
    assert [reread(mirror, i + 1) for i in range(120)] == history


def test_slots_and_pages_have_separate_packs(mirror: Mirror) -> None:
    main, other = edited_history(10, seed=1), edited_history(10, seed=2)
    revisions = [rev(i + 1, t) for i, t in enumerate(main)]
    for i, r in enumerate(revisions):
        r.slots.append(SlotRecord(role="mediainfo", text=other[i]))
    store(mirror, revisions + [rev(100 + i, t, pageid=2) for i, t in enumerate(main[:3])])
    for i in range(10):
        assert reread(mirror, i + 1) == main[i]
        assert mirror.revision_text(i + 1, "mediainfo") == other[i]
    assert mirror.db.execute(
        "SELECT pageid, role, records FROM text_packs ORDER BY id").fetchall() == [
        (1, "main", 10), (1, "mediainfo", 10)]  # page 2's texts are page 1's, stored once


def test_five_megabyte_texts(mirror: Mirror) -> None:
    rng = random.Random(5)
    big = "\n".join(f"line {rng.random()}" for _ in range(200_000))
    edited = big.replace("line 0.5", "LINE 0.5", 1) + "\nmore"
    store(mirror, [rev(1, big), rev(2, edited)])
    [(size, records)] = mirror.db.execute("SELECT size, records FROM text_packs").fetchall()
    assert records == 2 and size < len(big) + 2_000  # the second text is a delta
    assert reread(mirror, 2) == edited
    assert reread(mirror, 1) == big


def test_corrupt_pack_is_a_storage_error(mirror: Mirror) -> None:
    history = edited_history(3)
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    [(data,)] = mirror.db.execute("SELECT data FROM text_packs").fetchall()
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    with mirror.transaction() as conn:
        conn.execute("UPDATE text_packs SET data = ?", (bytes(damaged),))
    with pytest.raises(StorageError, match="corrupt"):
        reread(mirror, 2)
    with mirror.transaction() as conn:
        conn.execute("UPDATE text_packs SET data = ?", (data,))
    assert reread(mirror, 2) == history[1]


def test_a_wrong_text_in_a_sound_frame_fails_its_checksum(mirror: Mirror) -> None:
    history = edited_history(2)
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)])
    payload = packs.pack_payload([history[1].encode(), history[0].encode()])
    with mirror.transaction() as conn:  # the two texts swapped
        conn.execute("UPDATE text_packs SET data = ?", (packs.compress(payload),))
    with pytest.raises(StorageError, match="checksum"):
        reread(mirror, 1)


def test_missing_text_is_a_storage_error(mirror: Mirror) -> None:
    with pytest.raises(StorageError, match="missing"):
        mirror.read_text("0" * 40)


def test_deltas_round_trip_on_edits_reverts_and_vandalism() -> None:
    rng = random.Random(9)
    lines = [f"line {i} {'x' * rng.randrange(40)}\n" for i in range(300)]
    base = "".join(lines).encode()
    cases = [b"", base, base + b"tail without newline", b"VANDAL " * 200,
             "".join([*lines[:100], "new\n", *lines[150:]]).encode(),
             "".join(reversed(lines)).encode(), b"\n\n\n"]
    for new in cases:
        for old in cases:
            assert packs.apply(old, packs.delta(old, new)) == new


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


def test_deltas_round_trip_on_random_line_edits() -> None:
    rng = random.Random(11)
    pool = [b"", b"short", b"a line long enough to be an anchor " * 2, b"}}", b"x" * 40]
    text = b"\n".join(rng.choice(pool) for _ in range(50))
    for _ in range(500):
        lines = text.split(b"\n")
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(lines) + 1)
            choice = rng.random()
            if choice < 0.4:
                lines.insert(at, rng.choice(pool) + str(rng.random()).encode() * (at % 2))
            elif choice < 0.7 and lines:
                del lines[min(at, len(lines) - 1)]
            elif lines:
                lines[min(at, len(lines) - 1)] = rng.choice(pool)
        new = b"\n".join(lines) + rng.choice([b"", b"\n"])
        assert packs.apply(text, packs.delta(text, new)) == new
        text = new


def test_the_reader_in_the_schema_docs_reads_every_text(mirror: Mirror) -> None:
    """docs/schema.md describes the pack format well enough to read it without harvester."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "schema.md").read_text()
    code = next(block for block in docs.split("```python\n")[1:] if "def read_text" in block)
    namespace: dict[str, Any] = {}
    exec(code.split("```")[0], namespace)
    history = [t.replace(" w1", "\nw1") for t in edited_history(150)]
    store(mirror, [rev(i + 1, t) for i, t in enumerate(history)] + [rev(500, "")])
    db = mirror.db.conn
    ids = [row[0] for row in db.execute("SELECT text_id FROM slots ORDER BY revid")]
    assert [namespace["read_text"](db, i).decode() for i in ids] == [*history, ""]


def test_packs_written_a_text_at_a_time_are_tightened_then_shared(tmp_path: Path) -> None:
    histories = {pageid: edited_history(40, seed=pageid) for pageid in (1, 2, 3)}
    with Mirror.open(tmp_path / "m", create=True) as m:
        for i in range(40):  # one revision of each page per transaction, as a walk by time
            store(m, [rev(pageid * 1000 + i, texts[i], pageid=pageid)
                      for pageid, texts in histories.items()])
        before = m.db.execute("SELECT count(*), sum(length(data)) FROM text_packs").fetchone()
        assert before[0] > 3
        assert m.tighten_packs() == 3
        after = m.db.execute("SELECT count(*), sum(length(data)) FROM text_packs").fetchone()
        assert after[0] == 1 and after[1] < before[1]  # the three pages' texts in one pack
        assert m.db.execute("SELECT pageid, records FROM text_packs").fetchone() == (None, 120)
        m.tighten_packs()  # again: nothing changes
        assert m.db.execute("SELECT count(*), sum(length(data)) FROM text_packs").fetchone() \
            == after
        for pageid, texts in histories.items():
            assert [reread(m, pageid * 1000 + i) for i in range(40)] == texts


def longest_delta_run(data: bytes) -> int:
    longest = run = 0
    for kind, _, _ in packs.record_spans(packs.decompress(data)):
        run = run + 1 if kind == packs.DELTA else 0
        longest = max(longest, run)
    return longest


def test_no_read_applies_more_than_63_deltas_however_packs_were_merged(tmp_path: Path) -> None:
    history = [t.replace(" w1", "\nw1") for t in edited_history(400)]
    rng = random.Random(4)
    with Mirror.open(tmp_path / "m", create=True) as m:
        m.texts = TextStore(m.db.conn, pack_texts=150)
        at = 0
        while at < len(history):
            step = rng.randint(1, 40)
            store(m, [rev(i + 1, history[i]) for i in range(at, min(len(history), at + step))])
            at += step
            for (data,) in m.db.execute("SELECT data FROM text_packs"):
                assert longest_delta_run(data) <= packs.SNAPSHOT_EVERY - 1
        m.tighten_packs()
        frames = [data for (data,) in m.db.execute("SELECT data FROM text_packs")]
        assert all(longest_delta_run(data) <= packs.SNAPSHOT_EVERY - 1 for data in frames)
        assert [reread(m, i + 1) for i in range(len(history))] == history


def test_tightening_gives_the_freed_pages_back(tmp_path: Path) -> None:
    histories = {pageid: edited_history(30, seed=pageid, words=3000) for pageid in range(1, 9)}
    with Mirror.open(tmp_path / "m", create=True) as m:
        for i in range(30):
            store(m, [rev(pageid * 1000 + i, texts[i], pageid=pageid)
                      for pageid, texts in histories.items()])
        m.tighten_packs()
        assert m.db.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_small_pages_share_packs_that_are_smaller_than_their_own(tmp_path: Path) -> None:
    histories = {pageid: edited_history(5, seed=pageid, words=200) for pageid in range(1, 41)}
    sizes = {}
    for shared_bytes in (0, SHARED_PACK_BYTES):  # 0: no page's pack is small enough
        with Mirror.open(tmp_path / f"m{shared_bytes}", create=True) as m:
            m.texts = TextStore(m.db.conn, shared_bytes=shared_bytes)
            store(m, [rev(pageid * 100 + i, texts[i], pageid=pageid)
                      for pageid, texts in histories.items() for i in range(5)])
            m.tighten_packs()
            sizes[shared_bytes] = m.db.execute(
                "SELECT sum(length(data)), count(*), count(*) - count(pageid), max(size)"
                " FROM text_packs").fetchone()
            assert_consistent(m)
            for pageid, texts in histories.items():
                assert [reread(m, pageid * 100 + i) for i in range(5)] == texts
            if shared_bytes:
                # a page whose texts are shared takes new ones in a pack of its own
                store(m, [rev(150, "a sixth revision", pageid=1)])
                assert m.db.execute("SELECT count(*) FROM text_packs WHERE pageid = 1"
                                    ).fetchone() == (1,)
                m.tighten_packs()
                assert_consistent(m)
                assert reread(m, 150) == "a sixth revision" and reread(m, 100) == histories[1][0]
    own, shared = sizes[0], sizes[SHARED_PACK_BYTES]
    assert own[1] == 40 and own[2] == 0  # a pack for each page
    assert shared[1] == shared[2] == 1 and shared[3] <= SHARED_PACK_BYTES  # one for all
    assert shared[0] < own[0] * 0.95  # what the pages have in common is stored once
