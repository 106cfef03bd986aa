"""The pack format: many texts of one page in one zstd frame, as line deltas.

A pack holds the distinct texts of one page and slot in the order they were
stored. Its ``data`` is one ordinary zstd frame (``zstd -d`` reads it) whose
content is a sequence of records:

    record  := kind:u8  length:u32le  body[length]
    kind 0  : body is the text's UTF-8 bytes (a snapshot)
    kind 1  : body is a delta against the text of the record before it:
              op*, where op := 0x00 start:u32le length:u32le   copy base[start:start+length]
                             | 0x01 length:u32le bytes[length]  insert these bytes

The first record of a pack is a snapshot, and no more than SNAPSHOT_EVERY - 1
deltas ever follow one, so reading a record applies at most that many deltas
after decompressing the frame. Deltas are cut on line boundaries, which keeps them
small on wikitext, and the frame's entropy coder then sees thousands of
similar deltas at once: that is what brings a history below the size of 7z's
archive of its XML (docs/benchmarks.md), where one frame per text paid its own
tables and header each time. Snapshots cost little inside the frame: zstd
finds the previous snapshot in its window.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from typing import NamedTuple

import zstandard

# Records between two snapshots: the most deltas one read applies.
SNAPSHOT_EVERY = 64
# zstd level of a pack (docs/benchmarks.md: size against time by level).
LEVEL = 9
# Largest window a pack uses; zstd refuses bigger ones unless told.
MAX_WINDOW_LOG = 27

_HEAD = struct.Struct("<BI")
_COPY = struct.Struct("<II")
_LEN = struct.Struct("<I")
SNAPSHOT, DELTA = 0, 1
_OP_COPY, _OP_INSERT = 0, 1
# Lines shorter than this never start a copy: a blank line or "}}" matches
# everywhere and would cut the delta into pieces that cost more than they save.
_MIN_ANCHOR = 16
_MAX_CANDIDATES = 8


class PackError(ValueError):
    """A pack that cannot be decoded."""


# -- deltas -----------------------------------------------------------------------------


class Lines(NamedTuple):
    """A text cut at its newlines.

    Each piece is a line without its newline, but the last, which has no
    newline after it, carries a suffix no other piece can have: so the last
    lines of two texts only match each other, and a copied run of lines
    always includes exactly the newlines that follow them.
    """

    pieces: list[bytes]
    sums: list[int]  # sums[i]: the length of pieces[:i], newlines left out
    size: int  # of the text

    def start(self, i: int) -> int:
        """Where piece i starts in the text (the text's length for i == len(pieces))."""
        return self.size if i == len(self.pieces) else self.sums[i] + i


_LAST = b"\n\x00"


def split_lines(data: bytes) -> Lines:
    pieces = data.split(b"\n")
    sums = list(accumulate(map(len, pieces), initial=0))
    pieces[-1] += _LAST
    return Lines(pieces, sums, len(data))


def delta(base: bytes, new: bytes, base_lines: Lines | None = None,
          new_lines: Lines | None = None) -> bytes:
    """The ops that make ``new`` from ``base``: whole lines copied where they match, or
    (texts of one long line, such as JSON) the common start and end, whichever is smaller.
    The texts' split_lines() may be given when they are at hand."""
    ops = _line_delta(base_lines or split_lines(base), new_lines or split_lines(new))
    if len(ops) > len(new) // 4:
        edges = _edge_delta(base, new)
        if len(edges) < len(ops):
            return edges
    return ops


def _edge_delta(base: bytes, new: bytes) -> bytes:
    head = _common_length(base, new, lambda n: base[:n] == new[:n])
    rest = min(len(base), len(new)) - head
    tail = _common_length(
        base, new, lambda n: n <= rest and base[len(base) - n :] == new[len(new) - n :])
    out = bytearray()
    if head:
        out += bytes([_OP_COPY]) + _COPY.pack(0, head)
    middle = new[head : len(new) - tail]
    if middle:
        out += bytes([_OP_INSERT]) + _LEN.pack(len(middle)) + middle
    if tail:
        out += bytes([_OP_COPY]) + _COPY.pack(len(base) - tail, tail)
    return bytes(out)


def _common_length(base: bytes, new: bytes, same: Callable[[int], bool]) -> int:
    """The largest n for which same(n) holds (it holds for 0 and then stops holding)."""
    low, high = 0, min(len(base), len(new))
    while low < high:  # binary search: each probe is one memcmp
        mid = (low + high + 1) // 2
        if same(mid):
            low = mid
        else:
            high = mid - 1
    return low


def _line_delta(old: Lines, new: Lines) -> bytes:
    a, b, at = old.pieces, new.pieces, old.start
    shortest = min(len(a), len(b))
    head = 0
    while head < shortest and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < shortest - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    a_end, b_end = len(a) - tail, len(b) - tail
    out = bytearray()
    if head:
        out += bytes([_OP_COPY]) + _COPY.pack(0, at(head))
    where: dict[bytes, list[int]] = {}
    for i in range(head, a_end):
        if len(a[i]) >= _MIN_ANCHOR:
            where.setdefault(a[i], []).append(i)
    pending_from = head  # new's lines from here on are not in an op yet
    j = head
    while j < b_end:
        starts = where.get(b[j])
        start, run = _longest_run(a, b, starts, j, a_end, b_end) if starts else (0, 0)
        if run:
            _insert(out, new, pending_from, j)
            out += bytes([_OP_COPY]) + _COPY.pack(at(start), at(start + run) - at(start))
            j += run
            pending_from = j
        else:
            j += 1
    _insert(out, new, pending_from, b_end)
    if tail:
        out += bytes([_OP_COPY]) + _COPY.pack(at(a_end), at(len(a)) - at(a_end))
    return bytes(out)


def _longest_run(a: list[bytes], b: list[bytes], starts: Sequence[int], j: int,
                 a_end: int, b_end: int) -> tuple[int, int]:
    best = (0, 0)
    for i in starts[:_MAX_CANDIDATES]:
        run = 0
        while j + run < b_end and i + run < a_end and a[i + run] == b[j + run]:
            run += 1
        if run > best[1]:
            best = (i, run)
    return best


def _insert(out: bytearray, new: Lines, first: int, end: int) -> None:
    """An insert of new's lines first..end-1, if any."""
    if end > first:
        data = _text_of(new, first, end)
        out += bytes([_OP_INSERT]) + _LEN.pack(len(data)) + data


def _text_of(lines: Lines, first: int, end: int) -> bytes:
    parts = lines.pieces[first:end]
    data = b"\n".join(parts)
    if end == len(lines.pieces):
        return data[: -len(_LAST)]
    return data + b"\n"


def apply(base: bytes, ops: bytes | memoryview) -> bytes:
    """The text that ``ops`` (see delta()) make from ``base``."""
    parts: list[bytes | memoryview] = []
    view = memoryview(ops)
    at, end = 0, len(view)
    try:
        while at < end:
            if view[at] == _OP_COPY:
                start, length = _COPY.unpack_from(view, at + 1)
                if start + length > len(base):
                    raise PackError("a copy reaches past the end of its base")
                parts.append(base[start : start + length])
                at += 1 + _COPY.size
            elif view[at] == _OP_INSERT:
                (length,) = _LEN.unpack_from(view, at + 1)
                at += 1 + _LEN.size
                if at + length > end:
                    raise PackError("an insert reaches past the end of its delta")
                parts.append(view[at : at + length])
                at += length
            else:
                raise PackError(f"unknown delta op {view[at]}")
    except struct.error as exc:
        raise PackError(f"truncated delta ({exc})") from None
    return b"".join(parts)


# -- records ----------------------------------------------------------------------------


class PackWriter:
    """Appends texts to a pack's payload, each a delta on the one before where it pays,
    and a whole text when the deltas since the last whole one would reach SNAPSHOT_EVERY."""

    def __init__(self, payload: bytes = b"", count: int = 0, last: bytes | None = None) -> None:
        """``payload`` holds ``count`` records already, the last of them ``last``
        (None: the next text is stored whole)."""
        self.payload = bytearray(payload)
        self.count = count
        self._last = last
        self._last_lines: Lines | None = None
        self._deltas = 0  # since the last whole text
        if last is not None:
            kinds = [kind for kind, _, _ in record_spans(bytes(payload))]
            while kinds and kinds.pop() == DELTA:
                self._deltas += 1

    def add(self, text: bytes) -> None:
        body, kind, lines = text, SNAPSHOT, None
        if self._last is not None and self._deltas < SNAPSHOT_EVERY - 1:
            lines = split_lines(text)
            ops = delta(self._last, text, self._last_lines, lines)
            if len(ops) < len(text):
                body, kind = ops, DELTA
        self.payload += _HEAD.pack(kind, len(body))
        self.payload += body
        self._last, self._last_lines = text, lines
        self._deltas = self._deltas + 1 if kind == DELTA else 0
        self.count += 1


def join(first: bytes, second: bytes) -> bytes:
    """The payload of ``first``'s records then ``second``'s. The whole text that opens
    ``second`` becomes a delta on ``first``'s last text, unless that would make a run
    of more than SNAPSHOT_EVERY - 1 deltas; the other records stay as they are."""
    head, tail = record_spans(first), record_spans(second)
    if not head or not tail:
        return first + second
    trailing = len(head) - 1 - max(i for i, (kind, _, _) in enumerate(head) if kind == SNAPSHOT)
    leading = next((i for i, (kind, _, _) in enumerate(tail[1:]) if kind == SNAPSHOT),
                   len(tail) - 1)
    _, start, end = tail[0]
    if trailing + 1 + leading < SNAPSHOT_EVERY:
        ops = delta(read_record(first, head, len(head) - 1), second[start:end])
        if len(ops) < end - start:
            return first + _HEAD.pack(DELTA, len(ops)) + ops + second[end:]
    return first + second


def pack_payload(texts: Iterable[bytes]) -> bytes:
    """The payload of a pack of these texts."""
    writer = PackWriter()
    for text in texts:
        writer.add(text)
    return bytes(writer.payload)


def record_spans(payload: bytes) -> list[tuple[int, int, int]]:
    """(kind, start, end) of each record of a payload."""
    spans: list[tuple[int, int, int]] = []
    at, end = 0, len(payload)
    while at < end:
        if at + _HEAD.size > end:
            raise PackError("truncated record header")
        kind, length = _HEAD.unpack_from(payload, at)
        at += _HEAD.size
        if kind not in (SNAPSHOT, DELTA) or at + length > end or (kind == DELTA and not spans):
            raise PackError("malformed record")
        spans.append((kind, at, at + length))
        at += length
    return spans


def read_record(payload: bytes, spans: list[tuple[int, int, int]], position: int) -> bytes:
    """The text of record ``position``: its snapshot, then the deltas up to it."""
    if not 0 <= position < len(spans):
        raise PackError(f"no record {position} in a pack of {len(spans)}")
    first = position
    while spans[first][0] == DELTA:
        first -= 1
    _, start, end = spans[first]
    text = payload[start:end]
    view = memoryview(payload)
    for kind, start, end in spans[first + 1 : position + 1]:
        text = apply(text, view[start:end]) if kind == DELTA else payload[start:end]
    return text


def all_texts(payload: bytes) -> Iterator[bytes]:
    """Every record's text, in order."""
    view = memoryview(payload)
    text = b""
    for kind, start, end in record_spans(payload):
        text = payload[start:end] if kind == SNAPSHOT else apply(text, view[start:end])
        yield text


# -- frames -----------------------------------------------------------------------------


def compress(payload: bytes | bytearray, level: int = LEVEL) -> bytes:
    """One standard zstd frame (magic, content size, checksum) of a payload."""
    params = _parameters(level, len(payload).bit_length())
    return zstandard.ZstdCompressor(compression_params=params).compress(bytes(payload))


@functools.lru_cache(maxsize=256)
def _parameters(level: int, size_class: int) -> zstandard.ZstdCompressionParameters:
    """zstd's parameters for payloads below 2**size_class bytes, built once per class
    rather than for every pack (a crawl writes a small pack for most pages of a
    batch). The compressors are not kept: each holds memory for its window."""
    window = min(MAX_WINDOW_LOG, max(10, size_class))
    return zstandard.ZstdCompressionParameters.from_level(
        level, source_size=(1 << size_class) - 1, window_log=window, write_content_size=1,
        write_checksum=1)


def decompress(frame: bytes) -> bytes:
    try:
        return zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG).decompress(frame)
    except zstandard.ZstdError as exc:
        raise PackError(str(exc)) from None
