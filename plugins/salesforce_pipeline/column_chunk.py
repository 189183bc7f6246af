"""Records of one object as columns: what extraction hands to transform, in chunks of a fixed size."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class ColumnChunk:
    """Records of one object as columns: API name (dotted for a relationship field) to values,
    None for null, every column `count` long. What extraction hands to `transform_columns`."""

    count: int
    columns: dict[str, Sequence[Any]]

    def __len__(self) -> int:
        return self.count


class ChunkBuffer:
    """Regroups column pages of any size into chunks of exactly `chunk_size` (the last may be
    smaller), holding at most one chunk plus one page."""

    def __init__(self, fields: Sequence[str], chunk_size: int) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.fields = list(fields)
        self.chunk_size = chunk_size
        self._pending: list[ColumnChunk] = []
        self._count = 0

    def add(self, page: ColumnChunk) -> Iterator[ColumnChunk]:
        """Take one page; yield every full chunk it completes."""
        if page.count:
            self._pending.append(page)
            self._count += page.count
        while self._count >= self.chunk_size:
            yield self._take(self.chunk_size)

    @property
    def pending(self) -> int:
        """Records taken but not yet yielded (less than one chunk)."""
        return self._count

    def flush(self) -> Iterator[ColumnChunk]:
        """Yield what is left after the last page, as one chunk smaller than `chunk_size`."""
        if self._count:
            yield self._take(self._count)

    def _take(self, size: int) -> ColumnChunk:
        if len(self._pending) == 1 and self._pending[0].count == size:
            chunk = self._pending.pop()
            self._count = 0
            return chunk
        parts, taken = [], 0
        while taken < size:
            page = self._pending[0]
            wanted = size - taken
            if page.count <= wanted:
                parts.append(self._pending.pop(0))
                taken += page.count
            else:  # split the page: its head completes this chunk, its tail waits for the next
                head = {name: page.columns[name][:wanted] for name in self.fields}
                tail = {name: page.columns[name][wanted:] for name in self.fields}
                parts.append(ColumnChunk(wanted, head))
                self._pending[0] = ColumnChunk(page.count - wanted, tail)
                taken += wanted
        self._count -= size
        columns: dict[str, Sequence[Any]] = {
            name: list(itertools.chain.from_iterable(part.columns[name] for part in parts))
            for name in self.fields
        }
        return ColumnChunk(size, columns)
