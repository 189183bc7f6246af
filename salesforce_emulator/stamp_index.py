"""A sorted index of one table's SystemModstamp values, so that range queries cost the rows
they match (plus log n) instead of a scan of the whole table.

Real Salesforce answers ``WHERE SystemModstamp >= X AND SystemModstamp < Y``, ``COUNT()`` over
such a range and ``ORDER BY SystemModstamp ... LIMIT n`` from an index; a pipeline that cuts a
large load into SystemModstamp slices sends many of them. The index only narrows the
*candidates*: :meth:`Org.execute` still applies the full WHERE, the recycle-bin filter, the
calculated fields and the joins to them, and returns them in exactly the order a scan would
(creation order, or the stable sort order for ``ORDER BY SystemModstamp``). Correctness never
depends on the index, only speed does.

Layout: ``keys`` (stamps, ascending) and ``positions`` (row positions in the table) sorted
together by (stamp, position), plus ``nulls`` (ascending positions of live rows whose stamp is
null; purged rows are in neither). Stamps are wire strings, compared as strings exactly like the
compiled predicates compare them.

Mutations (:class:`_Table` in ``store.py`` routes every one through :meth:`StampIndex.changed`)
are queued and applied by bisection before the next use; a long queue drops the index instead
(rebuilt lazily by the next query that wants it). All of it runs under the org lock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["ABSENT", "StampIndex", "StampRange"]

# (lower, lower_inclusive, upper, upper_inclusive); a None bound is open.
StampRange = tuple[str | None, bool, str | None, bool]


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "ABSENT"


ABSENT: Any = _Absent()  # a row position without a row (purged, or not appended yet)


class StampIndex:
    """(SystemModstamp, position) pairs of a table's rows, sorted; see the module docstring."""

    __slots__ = ("keys", "limit", "nulls", "pending", "positions", "stamp_idx")

    def __init__(self, rows: Sequence[tuple[Any, ...] | None], stamp_idx: int):
        self.stamp_idx = stamp_idx
        vals = [None if r is None else r[stamp_idx] for r in rows]
        present = [i for i, v in enumerate(vals) if v is not None]
        present.sort(key=vals.__getitem__)  # stable: ties keep ascending positions
        self.positions: list[int] = present
        self.keys: list[str] = [vals[i] for i in present]
        self.nulls: list[int] = [i for i, r in enumerate(rows) if r is not None and r[stamp_idx] is None]
        self.pending: list[tuple[int, Any, Any]] = []
        # Beyond this many queued changes a rebuild is about as cheap as applying them.
        self.limit = max(256, len(rows) >> 9)

    # -- maintenance
    def stamp_of(self, row: tuple[Any, ...] | None) -> Any:
        """The index key of *row*: its stamp (None when null), ABSENT for no row."""
        return ABSENT if row is None else row[self.stamp_idx]

    def changed(self, pos: int, old: tuple[Any, ...] | None, new: tuple[Any, ...] | None) -> bool:
        """Queue the change of the row at *pos*; False when the queue is too long (drop the index)."""
        before, after = self.stamp_of(old), self.stamp_of(new)
        if before is after or (before is not ABSENT and after is not ABSENT and before == after):
            return True
        self.pending.append((pos, before, after))
        return len(self.pending) <= self.limit

    def sync(self) -> None:
        """Apply the queued changes, in order."""
        for pos, before, after in self.pending:
            if before is not ABSENT:
                self._remove(pos, before)
            if after is not ABSENT:
                self._add(pos, after)
        self.pending.clear()

    def _remove(self, pos: int, key: str | None) -> None:
        if key is None:
            j = bisect_left(self.nulls, pos)
            assert self.nulls[j] == pos
            del self.nulls[j]
            return
        lo = bisect_left(self.keys, key)
        hi = bisect_right(self.keys, key, lo)
        j = bisect_left(self.positions, pos, lo, hi)
        assert j < hi
        assert self.positions[j] == pos
        del self.keys[j]
        del self.positions[j]

    def _add(self, pos: int, key: str | None) -> None:
        if key is None:
            self.nulls.insert(bisect_left(self.nulls, pos), pos)
            return
        lo = bisect_left(self.keys, key)
        hi = bisect_right(self.keys, key, lo)
        j = bisect_left(self.positions, pos, lo, hi)
        self.keys.insert(j, key)
        self.positions.insert(j, pos)

    # -- lookups
    def span(self, rng: StampRange | None) -> tuple[int, int]:
        """The slice ``[a, b)`` of ``keys``/``positions`` whose stamps lie in *rng* (all: None)."""
        keys = self.keys
        if rng is None:
            return 0, len(keys)
        lower, lower_inclusive, upper, upper_inclusive = rng
        a = 0 if lower is None else (bisect_left if lower_inclusive else bisect_right)(keys, lower)
        b = len(keys) if upper is None else (bisect_right if upper_inclusive else bisect_left)(keys, upper)
        return a, max(a, b)

    def positions_in(self, rng: StampRange) -> list[int]:
        """Positions of the rows whose stamp lies in *rng*, ascending (table order)."""
        a, b = self.span(rng)
        return sorted(self.positions[a:b])

    def ordered(
        self, rng: StampRange | None, descending: bool, nulls_last: bool, first_chunk: int
    ) -> Iterator[list[int]]:
        """Positions in the order a stable ``ORDER BY SystemModstamp`` sort of the table leaves
        them (ties and nulls in table order), in growing chunks. Null stamps only without *rng*
        (no range comparison matches a null)."""
        nulls = self.nulls if rng is None else []
        if nulls and not nulls_last:
            yield list(nulls)
        a, b = self.span(rng)
        keys, positions = self.keys, self.positions
        size = max(16, first_chunk)
        if not descending:
            while a < b:
                yield positions[a : min(b, a + size)]
                a += size
                size *= 2
        else:
            while a < b:
                s = max(a, b - size)
                if s > a:  # never split a group of equal stamps
                    s = max(a, bisect_left(keys, keys[s], a, b))
                # Stable reverse sort: stamps descending, positions ascending within a stamp.
                order = sorted(range(s, b), key=keys.__getitem__, reverse=True)
                yield [positions[i] for i in order]
                b = s
                size *= 2
        if nulls and nulls_last:
            yield list(nulls)
