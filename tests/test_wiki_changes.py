"""WikiChanger against a real MediaWiki 1.39, and what each change leaves in recentchanges.

Each test changes a private copy of the fixture wiki, checks through the API
that the change happened, and pins down the recentchanges rows it produced
(``list=recentchanges``, ``rcprop=title|ids|timestamp|loginfo|user|comment|flags``).
Incremental sync relies on this table:

==========================  =====================================================
action                      what recentchanges shows (type, logtype/logaction,
                            logparams; "title" is the row's title)
==========================  =====================================================
create                      type "new", revid, old_revid 0
edit (minor, anonymous)     type "edit", revid, old_revid; minor flag; anonymous
                            edits: user "127.0.0.1", anon true
move, no redirect           log move/move on the OLD title; pageid = moved page;
                            revid = null revision added to the moved page;
                            logparams target_ns, target_title,
                            suppressredirect true
move, leaving a redirect    same, suppressredirect false; the redirect page
                            created at the old title gets NO row of its own
delete                      log delete/delete, logparams {} (empty); the row's
                            pageid is the deleted page's
undelete (all or some)      log delete/restore, logparams count.revisions
                            (and count.files); no rows for restored revisions
hide / unhide revision      log delete/revision on the page, revid 0,
                            logparams type "revision", ids [revid...],
                            old/new {content, comment, user, restricted}
suppress revision           NOTHING: suppress/* entries never enter
                            recentchanges ($wgLogRestrictions); only
                            list=logevents letype=suppress shows them
merge history               log merge/merge on the SOURCE title,
                            logparams dest_ns, dest_title, mergepoint
import (action=import)      log import/upload, logparams count (revisions);
                            revid = null revision added on top of the page;
                            the imported revisions get no rows.
                            importDump.php writes no log and no row at all.
protect / unprotect         log protect/protect (logparams details
                            [{type, level, expiry, cascade}], description) or
                            protect/unprotect ({}); revid = null revision
change content model        type "edit" for the new revision, then log
                            contentmodel/change, logparams oldmodel, newmodel
rename user                 log renameuser/renameuser, title "User:Old",
                            pageid 0, logparams olduser, newuser, edits;
                            older rows of that user now show the new name
$wgRCMaxAge + purge         older rows are deleted; list=recentchanges just
                            starts later (no marker that anything was dropped)
==========================  =====================================================
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from wiki_changes import WikiChanger, old_revisions_xml

pytestmark = pytest.mark.mediawiki

LIVE_USER = "Carol"  # one of demo_wiki.LIVE_USERS: has live edits in recentchanges


def rc_mark(changer: WikiChanger) -> int:
    """The newest rcid so far, to tell a test's own rows from the fixture's."""
    return max((row["rcid"] for row in changer.recent_changes()), default=0)


def rc_since(changer: WikiChanger, mark: int) -> list[dict[str, Any]]:
    return [row for row in changer.recent_changes() if row["rcid"] > mark]


def only_log(rows: list[dict[str, Any]], logtype: str, logaction: str) -> dict[str, Any]:
    """The single row, which must be a log row of this type and action."""
    assert [(r["type"], r.get("logtype"), r.get("logaction")) for r in rows] == [
        ("log", logtype, logaction)
    ]
    return rows[0]


def page(changer: WikiChanger, title: str, **params: str | int) -> dict[str, Any]:
    data = changer.api.call(action="query", titles=title, **params)
    result: dict[str, Any] = data["query"]["pages"][0]
    return result


def history(changer: WikiChanger, title: str, props: str = "ids") -> list[dict[str, Any]]:
    """A page's revisions, oldest first."""
    found = page(changer, title, prop="revisions", rvprop=props, rvlimit="max", rvdir="newer")
    revisions: list[dict[str, Any]] = found.get("revisions", [])
    return revisions


def latest_revid(changer: WikiChanger, title: str) -> int:
    return int(page(changer, title, prop="info")["lastrevid"])


# ---------------------------------------------------------------- edits


def test_create_and_edit_show_as_new_and_edit_rows(changer: WikiChanger) -> None:
    mark = rc_mark(changer)
    pageid, first = changer.create("Changer page", "First.")
    second = changer.edit("Changer page", "Second.", "tidy", minor=True)
    third = changer.edit("Changer page", "Third.", "drive-by", as_anonymous=True)
    revisions = history(changer, "Changer page", "ids|user|flags")
    assert [r["revid"] for r in revisions] == [first, second, third]
    assert revisions[2]["user"] == "127.0.0.1" and revisions[2]["anon"]
    rows = rc_since(changer, mark)
    assert [(r["type"], r["revid"], r["old_revid"], r["pageid"]) for r in rows] == [
        ("new", first, 0, pageid), ("edit", second, first, pageid), ("edit", third, second, pageid),
    ]
    assert [r["minor"] for r in rows] == [False, True, False]
    assert rows[2]["user"] == "127.0.0.1" and rows[2]["anon"]


# ---------------------------------------------------------------- moves


def test_move_without_redirect(changer: WikiChanger) -> None:
    pageid, _ = changer.create("Move source", "Moving soon.")
    mark = rc_mark(changer)
    changer.move("Move source", "Move target", leave_redirect=False)
    assert page(changer, "Move source").get("missing")
    assert page(changer, "Move target")["pageid"] == pageid
    row = only_log(rc_since(changer, mark), "move", "move")
    assert (row["title"], row["pageid"]) == ("Move source", pageid)
    # The move adds a null revision to the moved page; the row carries its id.
    assert row["revid"] == latest_revid(changer, "Move target")
    assert row["logparams"] == {
        "target_ns": 0, "target_title": "Move target", "suppressredirect": True,
    }


def test_move_leaving_redirect_logs_no_row_for_the_redirect(changer: WikiChanger) -> None:
    pageid, _ = changer.create("Move with trace", "Moving soon.")
    mark = rc_mark(changer)
    changer.move("Move with trace", "Moved with trace", leave_redirect=True)
    redirect = page(changer, "Move with trace", prop="info")
    assert redirect["redirect"] and redirect["pageid"] != pageid
    row = only_log(rc_since(changer, mark), "move", "move")
    assert row["logparams"]["target_title"] == "Moved with trace"
    assert row["logparams"]["suppressredirect"] is False


# ---------------------------------------------------------------- deletion


def test_delete_and_undelete_everything(changer: WikiChanger) -> None:
    pageid, first = changer.create("Doomed page", "Short-lived.")
    second = changer.edit("Doomed page", "Still short-lived.")
    mark = rc_mark(changer)
    changer.delete("Doomed page", "test deletion")
    assert page(changer, "Doomed page").get("missing")
    assert set(changer.deleted_revision_timestamps("Doomed page")) == {first, second}
    deleted = only_log(rc_since(changer, mark), "delete", "delete")
    assert (deleted["pageid"], deleted["logparams"]) == (pageid, {})
    mark = rc_mark(changer)
    assert changer.undelete("Doomed page", "test restore") == 2
    assert [r["revid"] for r in history(changer, "Doomed page")] == [first, second]
    restored = only_log(rc_since(changer, mark), "delete", "restore")
    assert restored["logparams"] == {"count": {"revisions": 2, "files": 0}}


def test_undelete_some_revisions(changer: WikiChanger) -> None:
    # Imported revisions lie years apart: undelete picks revisions by timestamp.
    changer.import_pages(old_revisions_xml("Partly restored", 4, 2004))
    # Four imported revisions plus the import's null revision.
    revids = [r["revid"] for r in history(changer, "Partly restored")]
    assert len(revids) == 5
    changer.delete("Partly restored")
    mark = rc_mark(changer)
    assert changer.undelete("Partly restored", revids=[revids[0], revids[2]]) == 2
    assert [r["revid"] for r in history(changer, "Partly restored")] == [revids[0], revids[2]]
    row = only_log(rc_since(changer, mark), "delete", "restore")
    assert row["logparams"]["count"]["revisions"] == 2
    still_archived = set(changer.deleted_revision_timestamps("Partly restored"))
    assert still_archived == set(revids) - {revids[0], revids[2]}


# ---------------------------------------------------------------- revision deletion


def test_hide_and_unhide_revision(changer: WikiChanger) -> None:
    changer.create("Revdel page", "Fine.")
    bad = changer.edit("Revdel page", "Something libellous.", "rude summary")
    # MediaWiki refuses to hide the text of a page's current revision.
    changer.edit("Revdel page", "Fine again.")
    mark = rc_mark(changer)
    changer.hide_revision(bad, text=True, comment=True)
    hidden = history(changer, "Revdel page", "ids|sha1|comment|user")[1]
    assert hidden.get("sha1hidden") and hidden.get("commenthidden")
    assert not hidden.get("userhidden")
    row = only_log(rc_since(changer, mark), "delete", "revision")
    assert (row["title"], row["revid"]) == ("Revdel page", 0)
    params = row["logparams"]
    assert (params["type"], params["ids"]) == ("revision", [bad])
    assert (params["new"]["content"], params["new"]["comment"], params["new"]["user"]) == (
        True, True, False)
    mark = rc_mark(changer)
    changer.unhide_revision(bad, text=True, comment=True)
    shown = history(changer, "Revdel page", "ids|sha1|comment")[1]
    assert not shown.get("sha1hidden") and shown["comment"] == "rude summary"
    row = only_log(rc_since(changer, mark), "delete", "revision")
    assert row["logparams"]["new"]["bitmask"] == 0 and row["logparams"]["ids"] == [bad]


def test_suppression_leaves_no_recentchanges_row(changer: WikiChanger) -> None:
    changer.create("Suppressed page", "Fine.")
    bad = changer.edit("Suppressed page", "Doxxing.", "private data")
    changer.edit("Suppressed page", "Fine again.")
    mark = rc_mark(changer)
    changer.hide_revision(bad, text=True, user=True, suppress=True)
    hidden = history(changer, "Suppressed page", "ids|sha1|user")[1]
    assert hidden.get("sha1hidden") and hidden.get("userhidden") and hidden.get("suppressed")
    assert rc_since(changer, mark) == []
    # The log exists, but only where suppressionlog holders look.
    logs = changer.api.call(action="query", list="logevents", letype="suppress",
                            letitle="Suppressed page")["query"]["logevents"]
    assert [(e["action"], e["params"]["ids"]) for e in logs] == [("revision", [bad])]


# ---------------------------------------------------------------- history


def test_merge_history(changer: WikiChanger) -> None:
    changer.import_pages(old_revisions_xml("Merge source", 3, 2001))
    source = [r["revid"] for r in history(changer, "Merge source")]
    changer.create("Merge destination", "Newer page.")
    mark = rc_mark(changer)
    changer.merge_history("Merge source", "Merge destination", "2002-01-01T12:00:00Z")
    # The 2001 and 2002 revisions moved; the 2003 one and the import's null revision stayed.
    assert [r["revid"] for r in history(changer, "Merge source")] == source[2:]
    assert [r["revid"] for r in history(changer, "Merge destination")][:2] == source[:2]
    row = only_log(rc_since(changer, mark), "merge", "merge")
    assert row["title"] == "Merge source"
    assert row["logparams"] == {
        "dest_ns": 0, "dest_title": "Merge destination", "mergepoint": "2002-01-01T12:00:00Z",
    }


def test_import_adds_old_revisions_and_one_log_row(changer: WikiChanger) -> None:
    mark = rc_mark(changer)
    xml = old_revisions_xml("Imported page", 3, 2005, user="Old Timer")
    assert changer.import_pages(xml) == ["Imported page"]
    revisions = history(changer, "Imported page", "ids|timestamp|user")
    assert [r["timestamp"][:4] for r in revisions[:3]] == ["2005", "2006", "2007"]
    assert {r["user"] for r in revisions[:3]} == {"imported>Old Timer"}
    # On top: a null revision by the importer, dated now.
    assert revisions[3]["user"] == "Admin" and len(revisions) == 4
    row = only_log(rc_since(changer, mark), "import", "upload")
    assert (row["title"], row["revid"], row["logparams"]) == (
        "Imported page", revisions[3]["revid"], {"count": 3})


def test_protect_and_unprotect(changer: WikiChanger) -> None:
    changer.create("Guarded page", "Keep out.")
    mark = rc_mark(changer)
    changer.protect("Guarded page")
    info = page(changer, "Guarded page", prop="info", inprop="protection")
    assert {(p["type"], p["level"]) for p in info["protection"]} == {
        ("edit", "sysop"), ("move", "sysop")}
    row = only_log(rc_since(changer, mark), "protect", "protect")
    assert row["revid"] == info["lastrevid"]  # a null revision records the change
    assert [(d["type"], d["level"], d["expiry"]) for d in row["logparams"]["details"]] == [
        ("edit", "sysop", "infinite"), ("move", "sysop", "infinite")]
    mark = rc_mark(changer)
    changer.protect("Guarded page", edit="all", move="all")
    assert page(changer, "Guarded page", prop="info", inprop="protection")["protection"] == []
    assert only_log(rc_since(changer, mark), "protect", "unprotect")["logparams"] == {}


def test_change_content_model(changer: WikiChanger) -> None:
    changer.create("Model page", "Plain words.")
    mark = rc_mark(changer)
    revid = changer.change_content_model("Model page", "text")
    assert page(changer, "Model page", prop="info")["contentmodel"] == "text"
    edit, log = rc_since(changer, mark)
    assert (edit["type"], edit["revid"]) == ("edit", revid)
    assert (log["type"], log["logtype"], log["logaction"]) == ("log", "contentmodel", "change")
    assert log["logparams"] == {"oldmodel": "wikitext", "newmodel": "text"}


# ---------------------------------------------------------------- users and expiry


def test_rename_user(changer: WikiChanger) -> None:
    before = changer.api.call(action="query", list="usercontribs", ucuser=LIVE_USER,
                              uclimit="max")["query"]["usercontribs"]
    assert before
    mark = rc_mark(changer)
    changer.rename_user(LIVE_USER, "Carol Renamed")
    after = changer.api.call(action="query", list="usercontribs", ucuser="Carol Renamed",
                             uclimit="max")["query"]["usercontribs"]
    assert {c["revid"] for c in after} == {c["revid"] for c in before}
    row = only_log(rc_since(changer, mark), "renameuser", "renameuser")
    assert (row["title"], row["pageid"]) == (f"User:{LIVE_USER}", 0)
    assert row["logparams"] == {"olduser": LIVE_USER, "newuser": "Carol Renamed",
                                "edits": len(before)}
    users = {r["user"] for r in changer.recent_changes() if r["rcid"] <= mark}
    assert "Carol Renamed" in users and LIVE_USER not in users


def test_rc_max_age_expires_old_rows(changer: WikiChanger) -> None:
    old = changer.edit("Expiry page", "Soon forgotten.")
    # Timestamps have whole seconds: wait long enough that the old row is
    # strictly older than the cutoff while the new one stays well inside it.
    time.sleep(4.1)
    changer.set_rc_max_age(3)
    new = changer.edit("Expiry page", "Remembered.")
    changer.expire_recent_changes()
    assert [row["revid"] for row in changer.recent_changes()] == [new]
    assert [r["revid"] for r in history(changer, "Expiry page")] == [old, new]
