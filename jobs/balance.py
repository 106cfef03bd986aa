"""Time slices that follow the edits: an idle worker splits the slice with most work left.

A crawl starts with one slice of the wiki's history per worker, of equal length
in time (jobs/streams.py). Edits are rarely spread evenly in time (activity
grows, fades, comes in bursts), so such slices hold very unequal work. A worker
that runs out of slices takes the later half of the slice with the most work
left, estimated from how densely that slice's last batch was packed with
edits. Halving in time needs no knowledge of the distribution: a slice that
turns out empty costs one request, and the next split halves again.

A split is one transaction on the checkpoints: the victim's narrowed end and
the new slice. A batch the victim had in flight, asked for with the old end,
is clipped to the new end when it is stored (also on the writer's thread, so
it sees every split that came before it). Killed at any moment, a crawl
resumes each slice from its saved token and end: no gap, no overlap.

Every slice ends in a partial batch, so each slice costs at most one request
more than the floor: the crawl makes at most 5% of the floor's requests in
slices (:func:`jobs.streams.slice_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import trio

from harvester.client import ApiClient
from harvester.continuation import Continue
from harvester.errors import first_cause
from harvester.walkers import fetch_allrevisions_batch
from jobs.convert import pages_to_batch
from jobs.streams import epoch, iso, slice_budget
from jobs.writer import SerialWriter
from storage.mirror import Mirror
from storage.records import Checkpoint


class WalkContext(Protocol):
    """What a walk needs of the job running it (a crawl, a sync's catch-up)."""

    client: ApiClient
    mirror: Mirror
    writer: SerialWriter

    def count(self, new: int) -> None: ...

# A slice is worth splitting when the estimate says it holds this many more batches
# than the one in flight: a split costs a request, and the estimate is rough.
MIN_BATCHES_LEFT = 2


def halfway(position: int, span: int, density: float, upper: int, left: int | None,
            per_request: int) -> int | None:
    """Where to cut a walk at ``position`` whose last batch covered ``span`` with
    ``density`` items a unit, up to ``upper``: the first unit of the later half of the
    work it has left, or None when that is not worth a request.

    The work left is what the density promises up to the end, but never more than
    ``left``, what the whole walk has left: a burst in an otherwise quiet stretch
    is then cut where the burst is, not in the middle of the quiet around it.
    """
    lower = position + span  # about where the request in flight will end
    work = density * (upper - lower)
    if left is not None:
        work = min(work, left)
    horizon = min(upper - lower, int(work / density))
    if horizon < 2 or work < MIN_BATCHES_LEFT * per_request:
        return None
    return lower + (horizon + 1) // 2


@dataclass
class Slice:
    """One stream (``crawl/revisions/NNNN``, ``sync/catch-up/NNNN``): the revisions
    saved in [start, end], both inclusive, one-second resolution; None is open."""

    name: str
    namespaces: list[int] | None
    start: str | None
    end: str | None
    token: Continue | None = None
    done: bool = False
    busy: bool = False
    density: float = 0.0  # revisions a second of wiki time in its last batch; 0: none yet
    span: int = 0  # seconds of wiki time its last batch covered

    @classmethod
    def from_checkpoint(cls, cp: Checkpoint) -> Slice:
        state = cp.state or {}
        spec = state.get("spec", {})
        return cls(cp.name, spec.get("namespaces"), spec.get("start"), spec.get("end"),
                   state.get("continue"), cp.done)

    def state(self, token: Continue | None) -> dict[str, Any]:
        spec = {"namespaces": self.namespaces, "start": self.start, "end": self.end}
        return {"spec": spec, "continue": token}

    def position(self) -> int | None:
        """Where the next batch starts, in seconds (None: an open start, no batch yet)."""
        if self.token is not None:
            return token_time(self.token)
        return epoch(self.start) if self.start else None


def token_time(token: Continue) -> int | None:
    """The time an ``arvcontinue`` token ("timestamp|revid") resumes at; MediaWiki
    writes the timestamp in its own form, 20040516025317."""
    value = token.get("arvcontinue")
    if not isinstance(value, str):
        return None
    stamp = value.split("|", 1)[0]
    try:
        if len(stamp) == 14 and stamp.isdigit():
            return epoch(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:"
                         f"{stamp[12:]}Z")
        return epoch(stamp)
    except ValueError:
        return None


def piece_index(name: str) -> int:
    """The number a split-off piece's name ends in (-1 for a first piece: ``ns=0``)."""
    tail = name.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class Piece(Protocol):
    """A unit of a walk that workers take whole, or split: a time slice, a page range."""

    name: str
    done: bool
    busy: bool


P = TypeVar("P", bound=Piece)


class WorkBoard(Generic[P]):
    """Every piece of a walk, which are taken, and what an idle worker does next."""

    def __init__(self, pieces: list[P]) -> None:
        self.pieces = pieces
        self._changed = trio.Event()

    def take(self) -> P | None:
        """A piece nobody walks yet, now marked taken."""
        for piece in self.pieces:
            if not piece.done and not piece.busy:
                piece.busy = True
                return piece
        return None

    def finished(self) -> bool:
        return all(piece.done for piece in self.pieces)

    def notify(self) -> None:
        """Something changed (a batch stored, a piece finished): idle workers look again."""
        self._changed.set()
        self._changed = trio.Event()

    def next_change(self) -> trio.Event:
        """Set by the next :meth:`notify`: taken before looking, so that a change made
        while a worker looks (a split waits for the writer) is not missed."""
        return self._changed

    def later_name(self, base: str) -> str:
        """A name for a piece split off: ``base`` and the next free number."""
        return f"{base}/{max(piece_index(piece.name) for piece in self.pieces) + 1:04d}"

    def may_split(self) -> bool:
        """Cheap, on trio's thread: is a split worth asking the writer for?"""
        return any(piece.busy and not piece.done for piece in self.pieces)

    def split_busiest(self, mirror: Mirror) -> P | None:
        """Cut the piece with most work left in two, saving both in one transaction, and
        return the later half, taken; None when none is worth it. On the writer's thread."""
        raise NotImplementedError

    async def walk(self, ctx: WalkContext, piece: P) -> None:
        raise NotImplementedError


async def next_piece(ctx: WalkContext, board: WorkBoard[P]) -> P | None:
    """A free piece, or the later half of a busy one; None once every piece is done."""
    while not board.finished():
        piece = board.take()
        if piece is not None:
            return piece
        change = board.next_change()
        if board.may_split():
            later = await ctx.writer.run(board.split_busiest, ctx.mirror)
            if later is not None:
                return later
        await change.wait()
    return None


async def piece_worker(ctx: WalkContext, board: WorkBoard[P]) -> None:
    while (piece := await next_piece(ctx, board)) is not None:
        try:
            await board.walk(ctx, piece)
        finally:
            piece.busy = False
            board.notify()


async def run_workers(ctx: WalkContext, board: WorkBoard[P], workers: int) -> None:
    """Walk every unfinished piece on ``workers`` tasks, splitting as they run dry."""
    if board.finished():
        return
    try:
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(piece_worker, ctx, board)
    except BaseExceptionGroup as group:
        raise first_cause(group) from group


class SliceBoard(WorkBoard[Slice]):
    """The time slices of an allrevisions walk."""

    def __init__(self, slices: list[Slice], *, now: str, per_request: int, edits: int | None,
                 workers: int, stored: int) -> None:
        super().__init__(slices)
        self.now = epoch(now)
        # revisions a request brings: the API's limit at first, then what full batches
        # brought (big texts make smaller batches, and so more requests at the floor)
        self.per_request = per_request
        self.edits = edits
        self.workers = workers
        self.stored = stored  # revisions in the mirror, for what the wiki has left

    @property
    def budget(self) -> int:
        """At most this many slices in all."""
        return slice_budget(self.workers, self.edits, self.per_request)

    def may_split(self) -> bool:
        return self.victim() is not None

    def split_busiest(self, mirror: Mirror) -> Slice | None:
        victim = self.victim()
        return None if victim is None else self.split(mirror, victim)

    async def walk(self, ctx: WalkContext, piece: Slice) -> None:
        while not piece.done:
            pages, nxt = await fetch_allrevisions_batch(
                ctx.client, namespaces=piece.namespaces, start=piece.start, end=piece.end,
                resume=piece.token,
            )
            new = await ctx.writer.run(store_slice_batch, ctx.mirror, self, piece, pages, nxt)
            ctx.count(new)
            self.notify()

    def split_point(self, piece: Slice) -> int | None:
        """Where to cut ``piece`` (the first second of the later half; see halfway), or
        None. The walk has left the wiki's edit count less what is stored."""
        position = piece.position()
        if piece.done or not piece.busy or not piece.density or position is None:
            return None
        upper = epoch(piece.end) if piece.end else max(self.now, position)
        left = None if self.edits is None else max(0, self.edits - self.stored)
        return halfway(position, piece.span, piece.density, upper, left, self.per_request)

    def victim(self) -> Slice | None:
        """The slice with the most work left that is worth splitting, if the budget allows."""
        if len(self.pieces) >= self.budget:
            return None
        best: tuple[float, Slice] | None = None
        for piece in self.pieces:
            at = self.split_point(piece)
            if at is None:
                continue
            work = piece.density * (at - (piece.position() or 0))
            if best is None or work > best[0]:
                best = (work, piece)
        return None if best is None else best[1]

    def split(self, mirror: Mirror, victim: Slice) -> Slice | None:
        """Cut ``victim`` in two (see split_busiest); runs on the writer's thread, after
        every batch stored before it."""
        at = self.split_point(victim)
        if at is None:
            return None
        later = Slice(self.later_name(victim.name.rsplit("/", 1)[0]), victim.namespaces,
                      iso(at), victim.end, busy=True)
        narrowed = Slice(victim.name, victim.namespaces, victim.start, iso(at - 1))
        mirror.save_checkpoints([(victim.name, narrowed.state(victim.token)),
                                 (later.name, later.state(None))])
        victim.end = narrowed.end
        self.pieces.append(later)
        return later


def store_slice_batch(
    mirror: Mirror, board: SliceBoard, piece: Slice, pages: list[dict[str, Any]],
    nxt: Continue | None,
) -> int:
    """Store one batch of a slice, clipped to the slice's end as it is now, with its token."""
    batch = pages_to_batch(pages)
    if nxt is not None and batch.revisions:
        board.per_request = len(batch.revisions)
    if piece.end is not None:
        batch.revisions = [r for r in batch.revisions if r.timestamp <= piece.end]
        resumes_at = None if nxt is None else token_time(nxt)
        if resumes_at is not None and resumes_at > epoch(piece.end):
            nxt = None  # the batch reached past the end: the slice is complete
    before = piece.position()
    stamps = [epoch(r.timestamp) for r in batch.revisions]
    board.stored += len(stamps)
    new = mirror.write_batch(batch, piece.name, piece.state(nxt), nxt is None)
    after = token_time(nxt) if nxt is not None else None
    if stamps:
        first = before if before is not None else min(stamps)
        last = after if after is not None else max(stamps)
        piece.span = max(1, last - first)
        piece.density = len(stamps) / piece.span
    piece.token, piece.done = nxt, nxt is None
    return new
