"""Change a running test wiki the way its users and admins would.

``WikiChanger`` drives a real MediaWiki 1.39 (see ``demo_wiki``) through the
Action API, logged in as Admin with a bot password holding every grant the
actions need, so that each change leaves exactly the traces (revisions, log
entries, recentchanges rows) that a real wiki would.  Incremental sync is
tested against these traces; ``tests/test_wiki_changes.py`` pins down what
each action records in recentchanges.

Two things are not reachable through the API of Debian's 1.39 and go through
maintenance scripts instead:

- renaming a user: the bundled Renameuser extension has no API module, so it
  is loaded into LocalSettings.php and its ``renameUser.php`` is run;
- expiring recentchanges: MediaWiki only prunes rows older than
  ``$wgRCMaxAge`` from a job queued at random (1 in 10 saves), so
  ``expire_recent_changes`` runs that same purge job at once.

Imports use ``action=import`` with an uploaded XML file: unlike
``importDump.php`` (which writes no log at all), it adds an ``import/upload``
log entry that shows in recentchanges, plus a null revision on each page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

from demo_wiki import ADMIN_USER, Api, DemoWikiError, Wiki, create_bot_password, run_maintenance

__all__ = [
    "CHANGER_GRANTS",
    "CHANGER_RIGHTS",
    "WikiChanger",
    "add_settings",
    "grant_rights",
    "old_revisions_xml",
]

# Bot password grants for every action below (createBotPassword.php --showgrants).
CHANGER_GRANTS: tuple[str, ...] = (
    "basic", "highvolume", "editpage", "editprotected", "createeditmovepage", "delete",
    "protect", "mergehistory", "oversight", "viewrestrictedlogs", "import", "viewdeleted",
    "uploadfile", "uploadeditmovefile",
)
# Sysop rights the actions rely on.  1.39 never gives sysops the first five
# (suppression); it does give the last four, unless a wiki's settings took them away.
CHANGER_RIGHTS: tuple[str, ...] = (
    "deleterevision", "suppressrevision", "viewsuppressed", "deletelogentry", "suppressionlog",
    "mergehistory", "import", "importupload", "editcontentmodel",
)
RENAMEUSER_SCRIPT = "../extensions/Renameuser/maintenance/renameUser.php"
EXPORT_NS = "http://www.mediawiki.org/xml/export-0.11/"


def add_settings(wiki: Wiki, line: str) -> bool:
    """Append one line of PHP to LocalSettings.php unless it is already there.

    The running ``php -S`` reads the file on every request, so the change
    applies to the next API call without a restart.
    """
    text = wiki.settings.read_text(encoding="utf-8")
    if line in text.splitlines():
        return False
    wiki.settings.write_text(text.rstrip("\n") + "\n" + line + "\n", encoding="utf-8")
    return True


def grant_rights(wiki: Wiki, rights: Sequence[str], group: str = "sysop") -> None:
    """Give a user group extra rights in LocalSettings.php."""
    for right in rights:
        add_settings(wiki, f"$wgGroupPermissions['{group}']['{right}'] = true;")


def old_revisions_xml(
    title: str, n: int, start_year: int, *, user: str = "Old Timer", text: str = "Old text"
) -> str:
    """An export-0.11 document with ``n`` revisions of ``title``, one a year from Jan 1st."""
    revisions = [
        _revision_xml(
            f"{start_year + i}-01-01T12:00:00Z", user, f"old revision {i + 1}",
            f"{text}, version {i + 1}.\n",
        )
        for i in range(n)
    ]
    return (
        f'<mediawiki xmlns="{EXPORT_NS}" version="0.11" xml:lang="en">\n'
        f"  <page>\n    <title>{escape(title)}</title>\n"
        + "".join(revisions)
        + "  </page>\n</mediawiki>\n"
    )


def _revision_xml(timestamp: str, user: str, comment: str, text: str) -> str:
    size = len(text.encode("utf-8"))
    return (
        "    <revision>\n"
        f"      <timestamp>{timestamp}</timestamp>\n"
        f"      <contributor><username>{escape(user)}</username></contributor>\n"
        f"      <comment>{escape(comment)}</comment>\n"
        "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text xml:space="preserve" bytes="{size}">{escape(text)}</text>\n'
        "    </revision>\n"
    )


def _minor(value: bool) -> dict[str, str | int]:
    """API booleans are true when present, whatever their value."""
    return {"minor": 1} if value else {}


def _hide_list(text: bool, user: bool, comment: bool) -> str:
    parts = [name for name, on in (("content", text), ("user", user), ("comment", comment)) if on]
    if not parts:
        raise ValueError("choose at least one of text, user, comment")
    return "|".join(parts)


class WikiChanger:
    """Admin's hands on a running wiki; use as a context manager (logs in on entry).

    Every method acts through the API as a real admin would (except
    ``rename_user`` and ``expire_recent_changes``, see the module docstring)
    and returns what a test needs to find the result again.
    """

    def __init__(self, wiki: Wiki, api_url: str | None = None) -> None:
        self.wiki = wiki
        self.api_url = api_url or wiki.api_url
        self.api = Api(self.api_url)
        self._anonymous: Api | None = None

    # ---------------------------------------------------------- session

    def login(self) -> None:
        grant_rights(self.wiki, CHANGER_RIGHTS)
        # An app id per changer: createBotPassword.php refuses to reuse one.
        appid = f"changer{os.urandom(4).hex()}"
        name, secret = create_bot_password(self.wiki, ADMIN_USER, appid, CHANGER_GRANTS)
        self.api.login(name, secret)

    def close(self) -> None:
        self.api.close()
        if self._anonymous is not None:
            self._anonymous.close()

    def __enter__(self) -> WikiChanger:
        try:
            self.login()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _post(self, action: str, **params: str | int) -> dict[str, Any]:
        return self.api.call("POST", action=action, token=self.api.token(), **params)

    # ---------------------------------------------------------- edits

    def edit(
        self, title: str, text: str, summary: str = "", minor: bool = False,
        as_anonymous: bool = False,
    ) -> int:
        """Replace a page's text (creating it if needed); returns the new revid.

        Anonymous edits are recorded under the client address, 127.0.0.1.
        """
        api = self._anonymous_api() if as_anonymous else self.api
        return api.edit(title, summary, text=text, **_minor(minor))

    def _anonymous_api(self) -> Api:
        if self._anonymous is None:
            self._anonymous = Api(self.api_url)
        return self._anonymous

    def create(self, title: str, text: str, summary: str = "new page") -> tuple[int, int]:
        """Create a page that must not exist yet; returns (pageid, revid)."""
        data = self._post("edit", title=title, text=text, summary=summary, createonly=1)
        edit = data["edit"]
        if edit.get("result") != "Success" or "newrevid" not in edit:
            raise DemoWikiError(f"creation of {title} failed: {edit}")
        return int(edit["pageid"]), int(edit["newrevid"])

    def move(self, old: str, new: str, *, leave_redirect: bool, reason: str = "move") -> None:
        """Rename a page (not its talk page or subpages)."""
        extra: dict[str, str | int] = {} if leave_redirect else {"noredirect": 1}
        self._post("move", **{"from": old}, to=new, reason=reason, **extra)

    def change_content_model(self, title: str, model: str, summary: str = "") -> int:
        """Switch a page's content model (e.g. "text", "json"); returns the new revid."""
        data = self._post("changecontentmodel", title=title, model=model, summary=summary)
        result = data["changecontentmodel"]
        if result.get("result") != "Success":
            raise DemoWikiError(f"changecontentmodel of {title} failed: {result}")
        return int(result["revid"])

    # ---------------------------------------------------------- deletion

    def delete(self, title: str, reason: str = "delete") -> None:
        """Delete a page with its whole history (moved to the archive)."""
        self._post("delete", title=title, reason=reason)

    def undelete(
        self, title: str, reason: str = "undelete", revids: Sequence[int] | None = None
    ) -> int:
        """Restore all archived revisions of a page, or only ``revids``; returns the count.

        action=undelete selects revisions by timestamp, so archived revisions
        that share a second with a chosen one come back too.
        """
        params: dict[str, str | int] = {"title": title, "reason": reason}
        if revids is not None:
            stamps = self.deleted_revision_timestamps(title)
            missing = set(revids) - stamps.keys()
            if missing:
                raise DemoWikiError(f"not archived under {title}: {sorted(missing)}")
            params["timestamps"] = "|".join(sorted({stamps[r] for r in revids}))
        data = self._post("undelete", **params)
        return int(data["undelete"]["revisions"])

    def deleted_revision_timestamps(self, title: str) -> dict[int, str]:
        """Archived revisions of a page: revid -> timestamp."""
        data = self.api.call(action="query", prop="deletedrevisions", titles=title,
                             drvprop="ids|timestamp", drvlimit="max")
        page = data["query"]["pages"][0]
        return {rev["revid"]: rev["timestamp"] for rev in page.get("deletedrevisions", [])}

    def hide_revision(
        self, revid: int, *, text: bool = False, user: bool = False, comment: bool = False,
        suppress: bool = False, reason: str = "hide",
    ) -> None:
        """Revision-delete fields of one revision; ``suppress`` hides them from admins too.

        MediaWiki refuses to hide the text of a page's current revision.
        """
        self._revision_delete(revid, "hide", _hide_list(text, user, comment), suppress, reason)

    def unhide_revision(
        self, revid: int, *, text: bool = False, user: bool = False, comment: bool = False,
        unsuppress: bool = False, reason: str = "unhide",
    ) -> None:
        """Show fields again; ``unsuppress`` also lifts suppression."""
        self._revision_delete(revid, "show", _hide_list(text, user, comment), unsuppress, reason)

    def _revision_delete(
        self, revid: int, direction: str, fields: str, suppress: bool, reason: str
    ) -> None:
        # "nochange" keeps an existing suppression when only fields change.
        if direction == "hide":
            level = "yes" if suppress else "nochange"
        else:
            level = "no" if suppress else "nochange"
        data = self._post("revisiondelete", type="revision", ids=revid,
                          **{direction: fields}, suppress=level, reason=reason)
        result = data["revisiondelete"]
        if result.get("status") != "Success" or result["items"][0].get("errors"):
            raise DemoWikiError(f"revisiondelete {direction} of {revid} failed: {result}")

    # ---------------------------------------------------------- files

    def upload(self, name: str, data: bytes, comment: str = "upload") -> dict[str, Any]:
        """Upload a file, or a new version of it; its imageinfo. MediaWiki takes one new
        version of a file a second (demo_wiki.next_second)."""
        return self.api.upload(name, data, comment)

    def file_versions(self, name: str) -> list[dict[str, Any]]:
        """The file's versions as the API gives them to the admin, newest first."""
        data = self.api.call(action="query", titles=f"File:{name}", prop="imageinfo",
                             iiprop="timestamp|sha1|archivename", iilimit="max")
        versions: list[dict[str, Any]] = data["query"]["pages"][0].get("imageinfo", [])
        return versions

    def revert_file(self, name: str, archivename: str, comment: str = "revert") -> None:
        """A new version of the file with an old version's bytes."""
        self._post("filerevert", filename=name, archivename=archivename, comment=comment)

    def hide_file_version(self, name: str, archivename: str, reason: str = "hide") -> None:
        """Revision-delete an old version's file (and its uploader and comment)."""
        data = self._post("revisiondelete", type="oldimage", target=f"File:{name}",
                          ids=archivename.split("!", 1)[0], hide="content|user|comment",
                          reason=reason)
        if data["revisiondelete"].get("status") != "Success":
            raise DemoWikiError(f"revisiondelete of {archivename} failed: {data}")

    def delete_file_version(self, name: str, archivename: str, reason: str = "delete") -> None:
        """Delete one old version of a file (to the file archive)."""
        self._post("delete", title=f"File:{name}", oldimage=archivename, reason=reason)

    # ---------------------------------------------------------- history

    def merge_history(
        self, source: str, dest: str, until_timestamp: str | None = None,
        reason: str = "merge",
    ) -> None:
        """Move ``source``'s revisions (up to and including ``until_timestamp``) to ``dest``.

        MediaWiki only moves revisions older than ``dest``'s first revision.
        """
        extra: dict[str, str | int] = {"timestamp": until_timestamp} if until_timestamp else {}
        self._post("mergehistory", **{"from": source}, to=dest, reason=reason, **extra)

    def import_pages(self, xml: str, summary: str = "import") -> list[str]:
        """Import an export-format document, old revisions included; returns the titles.

        Contributors become "imported>Name".  Each page also gets a null
        revision by Admin and an import/upload log entry.
        """
        params = {"action": "import", "format": "json", "formatversion": 2,
                  "interwikiprefix": "imported", "summary": summary, "token": self.api.token()}
        files = {"xml": ("import.xml", xml.encode("utf-8"), "application/xml")}
        response = self.api.client.post(self.api_url, data=params, files=files)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        if "error" in data:
            raise DemoWikiError(f"API import: {data['error']}")
        return [page["title"] for page in data["import"]]

    def protect(
        self, title: str, edit: str = "sysop", move: str = "sysop", expiry: str = "infinite",
        reason: str = "protect",
    ) -> None:
        """Set edit and move protection; "all" as a level removes that protection."""
        self._post("protect", title=title, protections=f"edit={edit}|move={move}",
                   expiry=expiry, reason=reason)

    # ---------------------------------------------------------- users

    def rename_user(self, old: str, new: str, reason: str = "rename") -> None:
        """Rename an account with the bundled Renameuser extension, loaded on first use.

        Past revisions then show the new name (they refer to the account's
        actor row, which is renamed); the queued jobs that update other
        tables are run at once.
        """
        add_settings(self.wiki, "wfLoadExtension( 'Renameuser' );")
        run_maintenance(self.wiki, RENAMEUSER_SCRIPT, "--oldname", old, "--newname", new,
                        "--performer", ADMIN_USER, "--reason", reason)
        run_maintenance(self.wiki, "runJobs.php")

    # ---------------------------------------------------------- recentchanges

    def set_rc_max_age(self, seconds: int) -> None:
        """Keep recentchanges rows for ``seconds`` only (takes effect at the next purge)."""
        add_settings(self.wiki, f"$wgRCMaxAge = {int(seconds)};")

    def expire_recent_changes(self) -> None:
        """Drop recentchanges rows older than $wgRCMaxAge now, as MediaWiki's purge job does."""
        run_maintenance(self.wiki, "eval.php",
                        input="RecentChangesUpdateJob::newPurgeJob()->run();\n")

    def recent_changes(self, **params: str | int) -> list[dict[str, Any]]:
        """Every edit, creation and log row in recentchanges, oldest first."""
        query: dict[str, str | int] = {
            "action": "query", "list": "recentchanges", "rcdir": "newer", "rclimit": "max",
            "rcprop": "title|ids|timestamp|loginfo|user|comment|flags",
            "rctype": "edit|new|log", **params,
        }
        changes: list[dict[str, Any]] = []
        while True:
            data = self.api.call("GET", **query)
            changes += data["query"]["recentchanges"]
            if "continue" not in data:
                return changes
            query.update(data["continue"])
