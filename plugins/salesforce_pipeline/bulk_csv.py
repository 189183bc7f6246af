"""Bulk API 2.0 results pages (CSV with a header row, as received): the one home of their rules.

The hook checks every page it receives with `bulk_page_records` and fetches a bad one again;
extraction then parses the checked page with `bulk_page_chunks`. Salesforce writes RFC 4180:
a quote opens a field (after a comma, a line end or the start) and closes it (before a comma, a
line end or the end), a doubled quote inside is one quote, null is an empty field, and blank
lines are not records. NUL bytes are not data: they are dropped, as simple-salesforce does.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.column_chunk import ColumnChunk

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# The page is scanned a block at a time, so the scan holds a few MB whatever the page's size.
_SCAN_BLOCK = 1 << 20
_QUOTE, _COMMA, _LF, _CR = b'",\n\r'


def bulk_page_records(content: bytes) -> int:
    """Check a received results page and return how many records it holds.

    Records are the rows after the header; blank lines are not records. Raises
    UnicodeDecodeError when the page is not UTF-8, and ValueError whose message is the problem
    ("a row has 2 fields, the header has 3", "it ends inside a quoted field", ...) when it is not
    CSV records of exactly the header's number of fields each: what a page cut short or garbled
    looks like. A page without a header row holds no records.
    """
    _check_utf8(content)
    header = _header(content)
    if not header:
        return 0
    return _count_rows(content, len(header)) - 1


def bulk_page_chunks(content: bytes, fields: Sequence[str], chunk_size: int) -> Iterator[ColumnChunk]:
    """A page the hook checked with `bulk_page_records`, as column chunks of `fields`.

    An empty field becomes None, as null is in the JSON API; a field the header lacks is all
    None (as a record without that key would be). Parsed by pandas' C reader a chunk at a time,
    column by column: about twice the speed of the csv module, and its strings are made a column
    at a time, so each column's text sits together in memory and transform and the COPY
    serialiser, which walk a column at a time, run about a third faster over it than over
    strings made row by row.
    """
    import pandas as pd

    content = _without_nul(content)
    header = _header(content)
    if not header:
        return
    # Not scanned again here: the hook checked this page on arrival (pandas' reader would pad a
    # short row), and a second scan would cost about 40% of the parse.
    position_of = {name: position for position, name in enumerate(header)}  # the last one, as dict() keeps
    # Position 0 always, so that rows are still counted when no selected field is in the header.
    wanted = sorted({position_of[name] for name in fields if name in position_of} | {0})
    reader = pd.read_csv(
        io.BytesIO(content),
        header=None,
        skiprows=1,
        names=list(range(len(header))),
        usecols=wanted,
        dtype=object,
        na_filter=False,  # text as sent: "NA", "null" or "" stay strings ("" is made None below)
        encoding="utf-8",
        engine="c",
        chunksize=chunk_size,
    )
    del content  # the reader holds the page now, and lets it go once it is read
    with reader:
        for frame in reader:
            if len(frame):  # a page of just the header has none
                yield ColumnChunk(len(frame), _frame_columns(frame, fields, position_of))


def _frame_columns(
    frame: pd.DataFrame, fields: Sequence[str], position_of: dict[str, int]
) -> dict[str, Sequence[Any]]:
    import numpy as np

    columns: dict[str, Sequence[Any]] = {}
    for name in fields:
        position = position_of.get(name)
        if position is None:
            columns[name] = (None,) * len(frame)
            continue
        values = frame[position].to_numpy(dtype=object)  # read-only: the frame's own
        empty = values == ""
        if empty.any():
            values = np.where(empty, None, values)
        columns[name] = values.tolist()
    return columns


def header_and_body(content: bytes) -> tuple[list[str] | None, bytes]:
    """A checked page's header row's field names (None for an empty page), and the page without
    its NUL bytes."""
    content = _without_nul(content)
    return _header(content), content


def _without_nul(content: bytes) -> bytes:
    # No UTF-8 sequence holds a zero byte, so dropping NUL bytes is dropping NUL characters.
    return content.replace(b"\x00", b"") if b"\x00" in content else content


def _check_utf8(content: bytes) -> None:
    # Block by block: decoding the whole page at once would hold it again as one string, at up
    # to four bytes per character.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(content)
    for start in range(0, len(view), _SCAN_BLOCK):
        decoder.decode(view[start : start + _SCAN_BLOCK])
    decoder.decode(b"", final=True)


def _header(content: bytes) -> list[str] | None:
    """The header row's field names (None for an empty page); ValueError when it is not CSV."""
    header_end = content.find(b"\n")
    line = _without_nul(content if header_end < 0 else content[:header_end]).decode("utf-8")
    try:
        return next(csv.reader([line.rstrip("\r")], strict=True), None)
    except csv.Error as exc:
        raise _malformed(f"its header row is not CSV ({exc})") from None


def _malformed(problem: str) -> ValueError:
    # The problem alone: the caller says which page it was, and what it does about it.
    return ValueError(problem)


def _count_rows(content: bytes, width: int) -> int:
    """The rows of `content` (the header's included, blank lines not), each checked to have
    exactly `width` fields; ValueError naming the first problem.

    Vectorised with numpy over the positions of the four bytes that matter, a block at a time
    (the state is carried across blocks): a few passes over the page, not a loop per field.
    """
    import numpy as np

    scan = _RowScan(np.frombuffer(content, dtype=np.uint8), width)
    for start in range(0, len(scan.data), _SCAN_BLOCK):
        scan.block(start)
    return scan.finish()


class _RowScan:
    """The state of `_count_rows` between blocks. A byte is inside a quoted field when the quotes
    before it are odd in number (a doubled quote closes and reopens)."""

    def __init__(self, data: np.ndarray, width: int) -> None:
        self.data = data
        self.width = width
        self.quotes_odd = 0  # the quotes before the block, mod 2
        self.carried_commas = 0  # separators of the row the previous block ended in
        self.carried_bytes = 0  # bytes of that row so far (to tell a blank line)
        self.rows = 0

    def block(self, start: int) -> None:
        """Check the quotes and line ends of the block at `start`, and count the rows it ends."""
        import numpy as np

        block = self.data[start : start + _SCAN_BLOCK]
        positions = np.flatnonzero((block == _QUOTE) | (block == _COMMA) | (block == _LF) | (block == _CR))
        kinds = block[positions]
        positions += start
        is_quote = kinds == _QUOTE
        inside = (np.cumsum(is_quote, dtype=np.uint8) + self.quotes_odd) & 1  # after each of those bytes
        if len(inside):
            self.quotes_odd = int(inside[-1])
        self._check_quotes(positions[is_quote & (inside == 0)], positions[is_quote & (inside == 1)])
        outside = inside == 0
        if not self._followed_by(positions[(kinds == _CR) & outside], (_LF,)):  # pandas would end a row there
            raise _malformed("a carriage return outside quotes that does not end a line")
        self._count(
            start, len(block), positions[(kinds == _LF) & outside], positions[(kinds == _COMMA) & outside]
        )

    def finish(self) -> int:
        """Check the row the page ends in (it may have no line end); return the rows counted."""
        if self.quotes_odd:
            raise _malformed("it ends inside a quoted field")
        last_is_blank = self.carried_bytes == 0 or (self.carried_bytes == 1 and self.data[-1] == _CR)
        if not last_is_blank:
            self._check_width(self.carried_commas)
            self.rows += 1
        return self.rows

    def _check_quotes(self, closing: np.ndarray, opening: np.ndarray) -> None:
        if not self._followed_by(closing, (_QUOTE, _COMMA, _LF, _CR)):
            raise _malformed("text follows a closing quote")
        preceding = self.data[opening[opening > 0] - 1]
        if not ((preceding == _QUOTE) | (preceding == _COMMA) | (preceding == _LF)).all():
            raise _malformed("a quote inside a field that does not start with one")

    def _followed_by(self, positions: np.ndarray, allowed: tuple[int, ...]) -> bool:
        """The byte after each position is one of `allowed` (or there is none)."""
        import numpy as np

        following = self.data[positions[positions + 1 < len(self.data)] + 1]
        return bool(np.logical_or.reduce([following == byte for byte in allowed]).all())

    def _count(self, start: int, length: int, ends: np.ndarray, separators: np.ndarray) -> None:
        """Check and count the rows that end in this block; carry the one it ends inside."""
        import numpy as np

        if not len(ends):
            self.carried_commas += len(separators)
            self.carried_bytes += length
            return
        commas = np.diff(np.searchsorted(separators, ends), prepend=0)
        commas[0] += self.carried_commas
        lengths = np.diff(ends, prepend=start - 1) - 1
        lengths[0] += self.carried_bytes
        blank = (lengths == 0) | ((lengths == 1) & (self.data[np.maximum(ends - 1, 0)] == _CR))
        wrong = np.flatnonzero((commas != self.width - 1) & ~blank)
        if len(wrong):
            self._check_width(int(commas[wrong[0]]))
        self.rows += len(blank) - int(blank.sum())
        self.carried_commas = len(separators) - int(np.searchsorted(separators, ends[-1]))
        self.carried_bytes = start + length - int(ends[-1]) - 1

    def _check_width(self, commas: int) -> None:
        if commas != self.width - 1:
            raise _malformed(f"a row has {commas + 1} fields, the header has {self.width}")
