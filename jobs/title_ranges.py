"""Title ranges: the allpages walks (the page catalogue, ``--current-only``) shared out.

``generator=allpages`` walks a namespace in title order: MediaWiki's database
keys (no namespace prefix, spaces as underscores) compared byte by byte, which
is Python's string order. ``gapfrom`` and ``gapto`` bound it. A namespace
starts as one range; an idle worker takes the later half of the range with the
most pages left, as with time slices (jobs/balance.py): titles are read as
numbers (:func:`title_number`), the pages left are what the density of the
range's last batch promises up to its end, never more than the wiki has left.

The cut is a key made of ASCII letters, digits, ``(),-`` and single inner
underscores only (SAFE): MediaWiki normalises the titles it is given (first
letter upper-cased, spaces, invalid characters), and a bound it changed would
leave a gap. A range with no such key left
between its position and its end is not split (a namespace whose titles are
all in another script, say). The later half starts at the cut (``gapfrom``);
the earlier one asks up to it (``gapto`` is inclusive) and drops the cut's own
title, if a page has it, when it stores a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harvester.continuation import Continue
from harvester.walkers import fetch_allpages_batch
from jobs.balance import WalkContext, WorkBoard, halfway
from jobs.convert import catalogue_pages, pages_to_batch
from jobs.streams import slice_budget
from storage.mirror import Mirror
from storage.records import Checkpoint

BASE = 0x110000  # every code point is a digit
DIGITS = 6  # coarse on purpose: finer, one dense beginning skews every estimate
TOP = BASE**DIGITS
# Characters a cut may have: MediaWiki keeps them as they are, but for an underscore
# (a space) at either end or twice in a row, and a first letter it upper-cases.
SAFE = "(),-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
LOWER = "abcdefghijklmnopqrstuvwxyz"


def title_key(title: str, ns: int) -> str:
    """A title as ``allpages`` orders and bounds it."""
    if ns != 0:
        title = title.split(":", 1)[-1]
    return title.replace(" ", "_")


def title_number(key: str) -> int:
    """A key's first DIGITS code points as one number, in the keys' order."""
    padded = [ord(c) for c in key[:DIGITS]] + [0] * (DIGITS - len(key[:DIGITS]))
    number = 0
    for digit in padded:
        number = number * BASE + digit
    return number


def number_title(number: int) -> str:
    digits = []
    for _ in range(DIGITS):
        number, digit = divmod(number, BASE)
        digits.append(digit)
    return "".join(chr(d) for d in reversed(digits)).rstrip("\x00")


def allowed(index: int, previous: str, first_letter: bool) -> str:
    """The characters a cut may have at ``index``, after ``previous``."""
    if index == 0:
        return "".join(c for c in SAFE if c != "_" and not (first_letter and c in LOWER))
    return SAFE.replace("_", "") if previous == "_" else SAFE


def safe_key_at_least(target: str, first_letter: bool) -> str | None:
    """The smallest key of SAFE characters at or above ``target`` that MediaWiki takes as
    it is (None if there is none)."""
    chosen = ""
    for index, char in enumerate(target):
        if char in allowed(index, chosen[-1:], first_letter):
            chosen += char
            continue
        for at in range(index, -1, -1):  # the first position that can grow, from here back
            bigger = [c for c in allowed(at, chosen[at - 1:at], first_letter) if c > target[at]]
            if bigger:
                return finished(chosen[:at] + bigger[0])
        return None
    return finished(chosen) or None


def finished(key: str) -> str:
    """No underscore at the end: one more character makes it a valid, bigger key."""
    return key + SAFE[0] if key.endswith("_") else key


@dataclass
class TitleRange:
    """One ``crawl/pages/ns=N`` or ``crawl/current/ns=N`` stream (and the ranges split from
    it, ``.../ns=N/NNNN``): the pages of namespace ``ns`` whose key is at least ``start``
    and below ``end`` (None: open)."""

    name: str
    ns: int
    start: str | None
    end: str | None
    token: Continue | None = None
    done: bool = False
    busy: bool = False
    density: float = 0.0  # pages per unit of title_number in the last batch; 0: none yet
    span: int = 0

    @classmethod
    def from_checkpoint(cls, cp: Checkpoint) -> TitleRange:
        state = cp.state or {}
        spec = state.get("spec", {})
        return cls(cp.name, int(spec["ns"]), spec.get("from"), spec.get("to"),
                   state.get("continue"), cp.done)

    def state(self, token: Continue | None, end: str | None = None) -> dict[str, Any]:
        spec = {"ns": self.ns, "from": self.start, "to": end or self.end}
        return {"spec": spec, "continue": token}

    def position(self) -> str | None:
        """The key the next batch starts at (None: the namespace's beginning)."""
        if self.token is not None and isinstance(self.token.get("gapcontinue"), str):
            return str(self.token["gapcontinue"])
        return self.start


class TitleBoard(WorkBoard[TitleRange]):
    """The title ranges of one allpages walk: the catalogue (``content=False``) or the
    latest revisions (``content=True``)."""

    def __init__(self, ranges: list[TitleRange], *, content: bool, per_request: int,
                 pages: int | None, workers: int, first_letter: set[int]) -> None:
        super().__init__(ranges)
        self.content = content
        self.per_request = per_request  # pages a request brings, as seen
        self.pages = pages  # the wiki's page count, from siteinfo
        self.workers = workers
        self.first_letter = first_letter  # namespaces whose titles MediaWiki upper-cases
        self.seen = 0  # pages this walk has stored

    def cut(self, piece: TitleRange) -> str | None:
        """The key where ``piece``'s later half starts, or None when not worth a split."""
        position = piece.position()
        if piece.done or not piece.busy or not piece.density or position is None:
            return None
        upper = title_number(piece.end) if piece.end else TOP
        left = None if self.pages is None else max(0, self.pages - self.seen)
        at = halfway(title_number(position), piece.span, piece.density, upper, left,
                     self.per_request)
        if at is None:
            return None
        key = safe_key_at_least(number_title(at), piece.ns in self.first_letter)
        if key is None or key <= position or (piece.end is not None and key >= piece.end):
            return None
        return key

    def split_busiest(self, mirror: Mirror) -> TitleRange | None:
        if len(self.pieces) >= slice_budget(self.workers, self.pages, self.per_request):
            return None
        found = [(piece, key) for piece in self.pieces if (key := self.cut(piece)) is not None]
        if not found:
            return None
        victim, key = max(found, key=lambda item: item[0].density * (
            title_number(item[1]) - title_number(item[0].position() or "")))
        base = victim.name.split("/ns=")[0] + f"/ns={victim.ns}"
        later = TitleRange(self.later_name(base), victim.ns, key, victim.end, busy=True)
        mirror.save_checkpoints([(victim.name, victim.state(victim.token, end=key)),
                                 (later.name, later.state(None))])
        victim.end = key
        self.pieces.append(later)
        return later

    async def walk(self, ctx: WalkContext, piece: TitleRange) -> None:
        while not piece.done:
            pages, nxt = await fetch_allpages_batch(
                ctx.client, namespace=piece.ns, start=piece.start, end=piece.end,
                resume=piece.token, content=self.content,
            )
            new = await ctx.writer.run(self.store, ctx.mirror, piece, pages, nxt)
            ctx.count(new)
            self.notify()

    def store(self, mirror: Mirror, piece: TitleRange, pages: list[dict[str, Any]],
              nxt: Continue | None) -> int:
        """Store a batch clipped to the range's end as it is now; new revisions stored."""
        if nxt is not None and pages:
            self.per_request = len(pages)
        if piece.end is not None:
            end = piece.end
            pages = [p for p in pages if title_key(str(p.get("title", "")), piece.ns) < end]
            rest = {k for k in (nxt or {}) if k not in ("continue", "gapcontinue")}
            if nxt is not None and not rest and str(nxt.get("gapcontinue", "")) >= end:
                nxt = None  # the walk has passed the end: the range is complete
        before = piece.position()
        state = piece.state(nxt)
        if self.content:
            new = mirror.write_batch(pages_to_batch(pages), piece.name, state, nxt is None)
        else:
            mirror.write_pages(catalogue_pages(pages), piece.name, state, nxt is None)
            new = 0
        self.seen += len(pages)
        after = None if nxt is None else nxt.get("gapcontinue")
        if pages and isinstance(after, str):
            low = title_number(before) if before is not None else title_number(
                title_key(str(pages[0].get("title", "")), piece.ns))
            piece.span = max(1, title_number(after) - low)
            piece.density = len(pages) / piece.span
        piece.token, piece.done = nxt, nxt is None
        return new
