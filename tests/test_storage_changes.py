"""Applying later wiki changes to a mirror (storage/changes.py): the primitives of sync."""

from __future__ import annotations

import dataclasses
import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage import changes, packs
from storage.mirror import DB_NAME, Mirror
from storage.records import PageRecord, RevisionBatch, RevisionRecord, SlotRecord
from storage.textstore import TextStore, text_sha1
from storage.verify import recount_text_references, verify
from tests.helpers import assert_consistent, edited_history, rows


def rev(revid: int, text: str, pageid: int = 1, **kw: Any) -> RevisionRecord:
    fields: dict[str, Any] = {
        "parentid": None,
        "timestamp": f"2024-01-01T00:{revid // 60 % 60:02d}:{revid % 60:02d}Z",
        "user": "Alice",
        "userid": 5,
        "comment": f"edit {revid}",
        "minor": False,
        "size": len(text.encode()),
        "sha1": text_sha1(text),
        "slots": [SlotRecord(role="main", content_model="wikitext", size=len(text.encode()),
                             sha1=text_sha1(text), text=text)],
    }  # fmt: skip
    fields.update(kw)
    return RevisionRecord(revid=revid, pageid=pageid, **fields)


def meta(r: RevisionRecord, **kw: Any) -> RevisionRecord:
    """The revision as a metadata query reports it: no text."""
    slots = [dataclasses.replace(s, text=None) for s in r.slots]
    return dataclasses.replace(r, slots=slots, **kw)


def hidden(r: RevisionRecord) -> RevisionRecord:
    """The revision after its text was hidden (revision deletion)."""
    slots = [dataclasses.replace(s, text=None, sha1=None, texthidden=True) for s in r.slots]
    return dataclasses.replace(r, texthidden=True, sha1hidden=True, sha1=None, slots=slots)


def page(pageid: int = 1, title: str | None = None) -> PageRecord:
    return PageRecord(pageid, 0, title or f"Page {pageid}")


def store(mirror: Mirror, revisions: list[RevisionRecord]) -> int:
    pages = [page(p) for p in sorted({r.pageid for r in revisions})]
    return mirror.write_batch(RevisionBatch(pages, revisions), "test", None, False)


def snapshot(mirror: Mirror) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("pages", "revisions", "slots", "texts", "users", "tombstones", "sync_rcids")
    return {t: rows(mirror, f"SELECT * FROM {t} ORDER BY 1, 2") for t in tables}


def marker() -> str:
    # Printable, high-entropy and short: zstd stores literals this short as
    # they are, so the marker shows in the file bytes while its text is stored.
    return "".join(random.Random(42).choices(string.ascii_letters + string.punctuation, k=40))


def file_bytes(mirror: Mirror) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-journal"):
        path = mirror.directory / (DB_NAME + suffix)
        if path.exists():
            out += path.read_bytes()
    return out


def texts_hold(mirror: Mirror, needle: str) -> bool:
    """Does any stored pack, compressed or not, hold it?"""
    for (data,) in rows(mirror, "SELECT data FROM text_packs"):
        if needle.encode() in data or needle.encode() in packs.decompress(data):
            return True
    return False


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    with Mirror.open(tmp_path / "m", create=True) as m:
        yield m


def test_deleted_revision_goes_and_its_child_delta_still_reads(mirror: Mirror) -> None:
    history = edited_history(5)
    revs = [rev(i + 1, t) for i, t in enumerate(history)]
    store(mirror, revs)
    assert rows(mirror, "SELECT pack, position FROM texts WHERE sha1 = ?",
                text_sha1(history[3])) == [(1, 3)]
    result = changes.reconcile_page(mirror, page(), [meta(r) for r in revs if r.revid != 3])
    assert (result.deleted, result.purged_texts, result.missing) == (1, 1, set())
    assert changes.stored_revision_ids(mirror, 1) == {1, 2, 4, 5}
    # the pack is written again without it, the next text now a delta on the one before
    assert rows(mirror, "SELECT pack, position FROM texts WHERE sha1 = ?",
                text_sha1(history[3])) == [(1, 2)]
    assert rows(mirror, "SELECT records FROM text_packs") == [(4,)]
    assert_consistent(mirror)
    assert [mirror.revision_text(r) for r in (1, 2, 4, 5)] == [history[i] for i in (0, 1, 3, 4)]


def test_hidden_text_leaves_no_byte_behind(mirror: Mirror) -> None:
    secret, leaf_secret = marker(), marker()[::-1]
    article = edited_history(1)[0]
    revs = [
        rev(1, article),
        rev(2, article + " " + secret),  # the base of revision 3's delta
        rev(3, article + " fixed"),
        rev(4, article + " fixed " + leaf_secret),  # a leaf: its row is just deleted
    ]
    store(mirror, revs)
    mirror.scrub_wal()  # old content usually sits in the main file, not the WAL
    assert rows(mirror, "PRAGMA secure_delete") == [(1,)]
    [(old_frame,)] = rows(mirror, "SELECT data FROM text_packs")
    for needle in (secret, leaf_secret):
        assert texts_hold(mirror, needle)
    # (a frame over several pages is not in one piece in the file, its pieces are)
    assert len(pieces_in_file(mirror, pieces(old_frame))) > len(pieces(old_frame)) // 2
    current = [meta(revs[0]), hidden(revs[1]), meta(revs[2]), hidden(revs[3])]
    result = changes.reconcile_page(mirror, page(), current)
    assert (result.updated, result.purged_texts, result.missing) == (2, 2, set())
    assert rows(mirror, "SELECT text_sha1, texthidden, sha1 FROM slots WHERE revid = 2") == [
        (None, 1, None)
    ]
    assert rows(mirror, "SELECT texthidden, sha1 FROM revisions WHERE revid = 2") == [(1, None)]
    assert mirror.revision_text(2) is None and mirror.revision_text(4) is None
    for needle in (secret, leaf_secret):
        assert not texts_hold(mirror, needle)
    # The pack was written again: no piece of the old frame past what it shares
    # with the new one (the text before the secret) is left in the file.
    assert old_pieces_left(mirror, old_frame) == []
    assert_consistent(mirror)
    assert mirror.revision_text(3) == article + " fixed"


def pieces(frame: bytes, size: int = 16) -> list[bytes]:
    return [frame[i : i + size] for i in range(0, len(frame) - size + 1, size)]


def pieces_in_file(mirror: Mirror, wanted: list[bytes]) -> list[bytes]:
    data = file_bytes(mirror)
    return [p for p in wanted if p in data]


def old_pieces_left(mirror: Mirror, old: bytes) -> list[bytes]:
    """The pieces of an old frame that are in the file but in no frame stored now."""
    new = b"".join(data for (data,) in rows(mirror, "SELECT data FROM text_packs"))
    own = [p for p in pieces(old) if p not in new]
    assert len(own) > len(pieces(old)) // 2, "the old frame has too little of its own to look for"
    return pieces_in_file(mirror, own)


def test_hidden_text_that_another_revision_shows_is_kept(mirror: Mirror) -> None:
    a, b = edited_history(2)
    revs = [rev(1, a), rev(2, b), rev(3, a)]  # 3 reverts to 1
    store(mirror, revs)
    result = changes.reconcile_page(mirror, page(), [meta(revs[0]), meta(revs[1]), hidden(revs[2])])
    assert (result.updated, result.purged_texts) == (1, 0)
    assert mirror.revision_text(1) == a and mirror.revision_text(3) is None
    assert_consistent(mirror)


def test_unhidden_text_is_fetched_again(mirror: Mirror) -> None:
    a, b = edited_history(2)
    revs = [rev(1, a), rev(2, b)]
    store(mirror, [revs[0], hidden(revs[1])])
    first = changes.reconcile_page(mirror, page(), [meta(r) for r in revs])
    assert first.missing == {2} and first.updated == 1
    # Not fetched yet (say the sync was interrupted): still reported.
    assert changes.reconcile_page(mirror, page(), [meta(r) for r in revs]).missing == {2}
    store(mirror, revs)
    assert changes.reconcile_page(mirror, page(), [meta(r) for r in revs]).missing == set()
    assert mirror.revision_text(2) == b
    assert_consistent(mirror)


def test_merged_revision_is_rehomed_not_fetched(mirror: Mirror) -> None:
    history = edited_history(5)
    store(mirror, [rev(i + 1, history[i], pageid=1 if i < 3 else 2) for i in range(5)])
    moved = rev(1, history[0], pageid=2)
    current = [meta(moved), *(meta(rev(i + 1, history[i], pageid=2)) for i in (3, 4))]
    result = changes.reconcile_page(mirror, page(2), current)
    assert (result.rehomed, result.deleted, result.missing, result.purged_texts) == (1, 0, set(), 0)
    assert changes.stored_revision_ids(mirror, 2) == {1, 4, 5}
    rest = [meta(rev(i + 1, history[i])) for i in (1, 2)]
    assert not changes.reconcile_page(mirror, page(1), rest).changed
    assert mirror.revision_text(1) == history[0]
    assert_consistent(mirror)


def test_missing_revisions_are_reported_and_reconcile_is_idempotent(mirror: Mirror) -> None:
    history = edited_history(6)
    revs = [rev(i + 1, t) for i, t in enumerate(history)]
    store(mirror, revs[:3])
    current = [meta(revs[0]), hidden(revs[1]), *(meta(r) for r in revs[3:])]
    first = changes.reconcile_page(mirror, page(title="Moved"), current)
    assert first.missing == {4, 5, 6}
    assert (first.deleted, first.updated, first.purged_texts) == (1, 1, 2)
    assert rows(mirror, "SELECT title FROM pages") == [("Moved",)]
    before = snapshot(mirror)
    second = changes.reconcile_page(mirror, page(title="Moved"), current)
    assert not second.changed and second.missing == {4, 5, 6}
    assert snapshot(mirror) == before
    store(mirror, revs[3:])
    third = changes.reconcile_page(mirror, page(title="Moved"), current)
    assert not third.changed and third.missing == set()
    assert_consistent(mirror)


def test_metadata_follows_the_wiki(mirror: Mirror) -> None:
    r = rev(1, "text", tags=["a"])
    store(mirror, [r])
    now = meta(r, user="Ignored", userid=9, userhidden=True, commenthidden=True,
               suppressed=True, tags=["a", "b"])  # fmt: skip
    assert changes.reconcile_page(mirror, page(), [now]).updated == 1
    stored = changes.stored_revision_meta(mirror, 1)[1]
    assert (stored.user, stored.userid, stored.comment) == (None, None, None)
    assert stored.userhidden and stored.commenthidden and stored.suppressed
    assert stored.tags == ["a", "b"]
    assert [(s.role, s.sha1, s.text) for s in stored.slots] == [("main", text_sha1("text"), None)]
    assert_consistent(mirror)


def test_delete_page_then_undelete(mirror: Mirror) -> None:
    history = edited_history(4)
    revs = [rev(i + 1, t) for i, t in enumerate(history)]
    store(mirror, [*revs, rev(9, "other page", pageid=2)])
    entry = {"type": "delete", "action": "delete", "title": "Page 1",
             "timestamp": "2024-05-01T00:00:00Z"}  # fmt: skip
    assert changes.delete_page(mirror, 1, {"log": entry, "title": "Page 1"}) == 4
    assert rows(mirror, "SELECT pageid, ns, title, deleted_at FROM tombstones") == [
        (1, 0, "Page 1", "2024-05-01T00:00:00Z")
    ]
    assert rows(mirror, "SELECT pageid FROM pages") == [(2,)]
    assert rows(mirror, "SELECT count(*) FROM texts") == [(1,)]
    assert_consistent(mirror)
    result = changes.reconcile_page(mirror, page(), [meta(r) for r in revs])
    assert result.missing == {1, 2, 3, 4}
    assert rows(mirror, "SELECT count(*) FROM tombstones") == [(0,)]
    store(mirror, revs)
    assert [mirror.revision_text(r.revid) for r in revs] == history
    assert_consistent(mirror)


def test_rename_user(mirror: Mirror) -> None:
    store(mirror, [rev(1, "a"), rev(2, "b"), rev(3, "c", user="Bob", userid=6)])
    assert changes.rename_user(mirror, "Alice", "Alicia") == 2  # two revisions
    assert rows(mirror, "SELECT user FROM revisions ORDER BY revid") == [
        ("Alicia",),
        ("Alicia",),
        ("Bob",),
    ]
    assert rows(mirror, "SELECT name, userid FROM users ORDER BY name") == [
        ("Alicia", 5),
        ("Bob", 6),
    ]
    assert changes.rename_user(mirror, "Alice", "Alicia") == 0
    assert_consistent(mirror)


@pytest.mark.parametrize("seed", range(6))
def test_garbage_collection_across_packs_and_snapshots(tmp_path: Path, seed: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packs, "SNAPSHOT_EVERY", 4)
    with Mirror.open(tmp_path / "m", create=True) as mirror:
        mirror.texts = TextStore(mirror.db.conn, pack_texts=16)
        history = edited_history(60, seed=seed, words=300)
        revs = [rev(i + 1, t) for i, t in enumerate(history)]
        for start in range(0, 60, 25):  # several transactions: packs grow by appends
            store(mirror, revs[start : start + 25])
        [(count, records)] = rows(mirror, "SELECT count(*), sum(records) FROM text_packs")
        assert count >= 4 and records == 60
        rng = random.Random(seed)
        # A snapshot, a delta right after one, the last text of a pack, then
        # random sets (runs, whole packs' worth) in three more rounds.
        rounds = [{4, 5, 15}] + [set(rng.sample(range(60), 8)) for _ in range(3)]
        gone: set[int] = set()
        for doomed in rounds:
            gone |= doomed
            keep = [meta(r) for i, r in enumerate(revs) if i not in gone]
            result = changes.reconcile_page(mirror, page(), keep)
            assert result.missing == set()
            assert_consistent(mirror)
            mirror.texts.clear_caches()
            for i, r in enumerate(revs):
                assert mirror.revision_text(r.revid) == (None if i in gone else history[i])
        assert rows(mirror, "SELECT count(*) FROM texts") == [(60 - len(gone),)]
        assert rows(mirror, "SELECT sum(records) FROM text_packs") == [(60 - len(gone),)]


def test_collect_garbage_texts_sweeps_orphans(mirror: Mirror) -> None:
    secret = marker()
    revs = [rev(1, "first " + secret), rev(2, "second")]
    store(mirror, revs)
    store(mirror, [hidden(revs[0])])  # write_batch alone leaves the old text behind
    assert texts_hold(mirror, secret)
    assert changes.collect_garbage_texts(mirror) == 1
    assert changes.collect_garbage_texts(mirror) == 0
    assert not texts_hold(mirror, secret)
    assert secret.encode() not in file_bytes(mirror)
    assert_consistent(mirror)


def test_sync_rcids(mirror: Mirror) -> None:
    assert changes.seen_rcids(mirror, [1, 2]) == set()
    items = [(1, "2024-01-01T00:00:00Z"), (2, "2024-01-02T00:00:00Z"), (3, "2024-01-03T00:00:00Z")]
    changes.record_rcids(mirror, items, "2024-01-03T00:00:00Z")
    changes.record_rcids(mirror, items[:1], "2024-01-03T00:00:05Z")  # again: ignored
    assert mirror.get_meta("sync_high_water") == "2024-01-03T00:00:05Z"
    assert changes.seen_rcids(mirror, [0, 1, 3, 4, *range(10, 1000)]) == {1, 3}
    assert changes.prune_rcids(mirror, "2024-01-02T00:00:00Z") == 1
    assert changes.seen_rcids(mirror, [1, 2, 3]) == {2, 3}
    assert_consistent(mirror)


def test_failed_reconcile_changes_nothing(mirror: Mirror, monkeypatch: pytest.MonkeyPatch) -> None:
    revs = [rev(i + 1, t) for i, t in enumerate(edited_history(3))]
    store(mirror, revs)
    before = snapshot(mirror)
    with pytest.raises(ValueError, match="belongs to page 2"):
        changes.reconcile_page(mirror, page(), [meta(revs[0]), meta(revs[1], pageid=2)])

    def broken(doomed: object) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(mirror.texts, "remove_ids", broken)
    with pytest.raises(RuntimeError):
        changes.reconcile_page(mirror, page(title="New"), [meta(revs[0]), hidden(revs[1])])
    assert snapshot(mirror) == before and not mirror.db.conn.in_transaction


def test_slots_fold_into_their_revision_and_out_again_as_the_wiki_changes(
    mirror: Mirror,
) -> None:
    one = rev(1, "only the main slot")
    extra = SlotRecord(role="extra", content_model="json", size=2, sha1=text_sha1("{}"),
                       text="{}")
    two = rev(2, "main and extra", parentid=1)
    two.slots.append(extra)
    two.size = (two.size or 0) + 2
    store(mirror, [one, two])
    folded = "SELECT revid FROM revision_data WHERE kind IS NOT NULL ORDER BY revid"
    in_slot_rows = "SELECT DISTINCT revid FROM slot_data ORDER BY revid"
    assert rows(mirror, folded) == [(1,)] and rows(mirror, in_slot_rows) == [(2,)]
    assert_consistent(mirror)

    # the extra slot is gone on the wiki: the revision folds, its text is purged
    main_only = meta(rev(2, "main and extra", parentid=1))
    result = changes.reconcile_page(mirror, page(), [meta(one), main_only])
    assert result.missing == set() and result.purged_texts == 1
    assert rows(mirror, folded) == [(1,), (2,)] and rows(mirror, in_slot_rows) == []
    assert mirror.revision_text(2, "extra") is None
    assert mirror.revision_text(2) == "main and extra"
    assert_consistent(mirror)

    # a folded revision's text hidden: purged, the revision still says it had one
    changes.reconcile_page(mirror, page(), [hidden(one), main_only])
    assert mirror.revision_text(1) is None and not texts_hold(mirror, "only the main slot")
    [(texthidden, role)] = rows(mirror, "SELECT texthidden, role FROM slots WHERE revid = 1")
    assert (texthidden, role) == (1, "main")
    assert_consistent(mirror)


def test_a_text_purged_from_a_pack_that_several_pages_share(mirror: Mirror) -> None:
    secret = marker()
    histories = {pageid: edited_history(3, seed=pageid) for pageid in range(1, 7)}
    histories[3][1] += " " + secret
    revs = {pageid: [rev(pageid * 10 + i, text, pageid=pageid) for i, text in enumerate(texts)]
            for pageid, texts in histories.items()}
    store(mirror, [r for page_revs in revs.values() for r in page_revs])
    mirror.tighten_packs()
    assert rows(mirror, "SELECT count(*), count(pageid) FROM text_packs") == [(1, 0)]
    mirror.scrub_wal()
    [(old_frame,)] = rows(mirror, "SELECT data FROM text_packs")
    assert texts_hold(mirror, secret)
    current = [meta(revs[3][0]), hidden(revs[3][1]), meta(revs[3][2])]
    result = changes.reconcile_page(mirror, page(3), current)
    assert (result.purged_texts, result.missing) == (1, set())
    assert not texts_hold(mirror, secret)
    assert old_pieces_left(mirror, old_frame) == []
    assert_consistent(mirror)
    mirror.texts.clear_caches()
    for pageid, page_revs in revs.items():
        expected = [None if (pageid, i) == (3, 1) else text
                    for i, text in enumerate(histories[pageid])]
        assert [mirror.revision_text(r.revid) for r in page_revs] == expected


def test_a_wrong_count_of_a_texts_slots_is_found_and_set_right(mirror: Mirror) -> None:
    store(mirror, [rev(1, "first"), rev(2, "second", parentid=1), rev(3, "first", parentid=2)])
    assert rows(mirror, "SELECT refs FROM texts ORDER BY id") == [(2,), (1,)]  # a revert
    assert verify(mirror).ok
    # counted too low, a text would be taken for garbage while revisions name it
    mirror.db.execute("UPDATE text_data SET refs = 0 WHERE refs = 2")
    report = verify(mirror)
    assert report.miscounted == 1 and not report.ok
    assert recount_text_references(mirror) == 1
    assert verify(mirror).ok
    assert rows(mirror, "SELECT refs FROM texts ORDER BY id") == [(2,), (1,)]
