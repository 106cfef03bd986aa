"""Per-page histories, for wikis without allrevisions, over page ranges that workers split.

Each namespace starts as one range of its catalogue's pages, walked in pageid
order, each page's whole history before the next. A worker that runs out of
ranges takes the later half of the pages left in the range with the most
(counted in the mirror's catalogue, which this phase follows). A split adds no
request: every page costs its own requests whoever walks it. As with time
slices (jobs/balance.py), a split is one transaction on both ranges'
checkpoints and is decided on the writer's thread, so that it sees every page
finished before it; the page in flight stays with its range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harvester.continuation import Continue
from harvester.walkers import walk_page_history
from jobs.balance import WalkContext, WorkBoard
from jobs.convert import pages_to_batch
from jobs.streams import HISTORY
from storage import query
from storage.mirror import Mirror
from storage.records import Checkpoint


@dataclass
class PageRange:
    """The pages of namespace ``ns`` with a pageid in (after, upto]: ``pageid`` is the one
    being walked (its history resumes at ``token``), every one below it is done."""

    name: str
    ns: int
    upto: int | None
    after: int = 0
    pageid: int | None = None
    token: Continue | None = None
    done: bool = False
    busy: bool = False

    @classmethod
    def from_checkpoint(cls, cp: Checkpoint) -> PageRange:
        state = cp.state or {}
        spec = state.get("spec", {})
        return cls(cp.name, int(spec["ns"]), spec.get("upto"), int(state.get("after", 0)),
                   state.get("pageid"), state.get("continue"), cp.done)

    def state(self, upto: int | None = None) -> dict[str, Any]:
        spec = {"ns": self.ns, "upto": self.upto if upto is None else upto}
        return {"spec": spec, "after": self.after, "pageid": self.pageid,
                "continue": self.token}

    def position(self) -> int:
        """Pages above this are still to do (the one in flight is not)."""
        return self.pageid if self.pageid is not None else self.after


class PageRangeBoard(WorkBoard[PageRange]):
    def split_busiest(self, mirror: Mirror) -> PageRange | None:
        best: tuple[int, PageRange] | None = None
        for piece in self.pieces:
            if piece.busy and not piece.done:
                left = query.pages_between(mirror, piece.ns, piece.position(), piece.upto)
                if left >= 2 and (best is None or left > best[0]):
                    best = (left, piece)
        if best is None:
            return None
        left, victim = best
        first = query.nth_pageid(mirror, victim.ns, victim.position(), left // 2)
        assert first is not None  # there are ``left`` pages above the position
        later = PageRange(self.later_name(f"{HISTORY}ns={victim.ns}"), victim.ns, victim.upto,
                          after=first - 1, busy=True)
        mirror.save_checkpoints([(victim.name, victim.state(upto=first - 1)),
                                 (later.name, later.state())])
        victim.upto = first - 1
        self.pieces.append(later)
        return later

    async def walk(self, ctx: WalkContext, piece: PageRange) -> None:
        while True:
            if piece.pageid is None:
                await ctx.writer.run(start_next_page, ctx.mirror, piece)
                if piece.done:
                    return
            assert piece.pageid is not None
            async for pages, nxt in walk_page_history(ctx.client, piece.pageid, piece.token):
                new = await ctx.writer.run(store_history_batch, ctx.mirror, piece, pages, nxt)
                ctx.count(new)
                self.notify()


def start_next_page(mirror: Mirror, piece: PageRange) -> None:
    """Move to the range's next page (its end as it is now), or finish the range."""
    following = query.next_pageid(mirror, piece.ns, piece.after, piece.upto)
    if following is None:
        mirror.write_batch(pages_to_batch([]), piece.name, piece.state(), True)
        piece.done = True
    else:
        piece.pageid, piece.token = following, None


def store_history_batch(
    mirror: Mirror, piece: PageRange, pages: list[dict[str, Any]], nxt: Continue | None
) -> int:
    """Store one batch of a page's history, with where the range goes on from."""
    if nxt is None:  # the page is complete
        piece.after, piece.pageid, piece.token = piece.pageid or piece.after, None, None
    else:
        piece.token = nxt
    return mirror.write_batch(pages_to_batch(pages), piece.name, piece.state(), False)
