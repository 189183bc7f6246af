"""Cutting a large load's window into SystemModstamp slices of about `slice_records` records each.

The cutting is pure (`plan_slices`): the caller supplies Salesforce's answers (the first and last SystemModstamp in the
window, and a `COUNT()` of any sub-range), so it is tested without an org;
`plan_from_salesforce` asks them of the org.

Why SystemModstamp and not Id: a record that changes while the load runs moves to the newest
stamp. The slice that reaches up to "now" (the top slice, with no upper bound) is read last,
after every other slice has finished, so a record that moves out of a slice not yet read lands
in one still to be read, and no record is missed. (A record read twice is kept once, at its
newest version, when the slices are merged.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.extract import Window, build_count_soql

if TYPE_CHECKING:
    from salesforce_pipeline.objects import ObjectSpec


@dataclass(frozen=True)
class SlicePlan:
    """One slice: SystemModstamp in [lower, upper) within the window (None: the window's bound)."""

    number: int
    lower: datetime | None
    upper: datetime | None
    expected: int

    def window(self, whole: Window) -> Window:
        """The slice as a window of its own, bounded by the load's window where it is open."""
        return Window(
            start=self.lower if self.lower is not None else whole.start,
            end=self.upper if self.upper is not None else whole.end,
        )

    @property
    def catches_up(self) -> bool:
        """Whether this is the slice past the last stamp seen when planning, which holds only the
        records changed since (few): read by REST whatever the load's method, one call, no job."""
        return self.upper is None and self.lower is not None

    @property
    def reaches_now(self) -> bool:
        """Whether the slice has no upper bound (then it must be read after all the others)."""
        return self.upper is None


def plan_slices(
    total: int,
    *,
    first_stamp: datetime | None,
    last_stamp: datetime | None,
    count_between: Callable[[datetime, datetime], int],
    slice_records: int,
    max_counts: int,
    map_: Callable[..., Iterable[int]] = map,
) -> list[SlicePlan]:
    """Slices covering the window, each of about ``slice_records`` records or fewer.

    The stamps' range (whole seconds, as SOQL compares them) is first cut into equal spans of
    time, about two per slice wanted, all counted in one round; then any part still holding more
    than ``slice_records`` records (a busy week in years of trickle) is halved, round by round.
    Each count is one ``count_between(lower, upper)`` call (``[lower, upper)``; the last span is
    what the others leave of ``total``), at most ``max_counts`` in all. The calls of one round are
    independent, so ``map_`` may ask them at once (an executor's ``map``). A second holding more
    records than a slice is one slice of its own. Adjacent parts that fit in one slice together
    are merged. The first slice starts, and the last ends, where the window does
    (``lower``/``upper`` None).

    Why the first round cuts many spans at once: halving from the whole range costs a round trip
    per level, five or six at 1,000,000 records in slices of 50,000, each waiting on Salesforce
    to count hundreds of thousands of records; the first round counts every record once, in
    parallel.
    """
    if total <= slice_records or first_stamp is None or last_stamp is None or max_counts < 1:
        return [SlicePlan(1, None, None, total)]
    low = int(first_stamp.timestamp())
    high = int(last_stamp.timestamp()) + 1  # the last stamp's second included
    spans = min(2 * -(-total // slice_records), max_counts + 1, high - low)
    edges = [low + (high - low) * k // spans for k in range(spans + 1)]
    counted = list(map_(lambda k: count_between(_moment(edges[k]), _moment(edges[k + 1])), range(spans - 1)))
    counted.append(max(total - sum(counted), 0))
    # (low, high, count), in order
    parts: list[tuple[int, int, int]] = [(edges[k], edges[k + 1], counted[k]) for k in range(spans)]
    counts = spans - 1
    while counts < max_counts:
        halve = [i for i, (lo, hi, count) in enumerate(parts) if count > slice_records and hi - lo > 1]
        halve = halve[: max_counts - counts]
        if not halve:
            break
        middles = {i: (parts[i][0] + parts[i][1]) // 2 for i in halve}
        ranges = [(_moment(parts[i][0]), _moment(middles[i])) for i in halve]
        lefts = dict(zip(halve, map_(lambda r: count_between(*r), ranges), strict=True))
        counts += len(halve)
        split: list[tuple[int, int, int]] = []
        for i, (lo, hi, count) in enumerate(parts):
            if i in lefts:
                split += [(lo, middles[i], lefts[i]), (middles[i], hi, max(count - lefts[i], 0))]
            else:
                split.append((lo, hi, count))
        parts = split
    merged = _merge_small(parts, slice_records)
    slices = [
        SlicePlan(number, None if number == 1 else _moment(part_low), _moment(part_high), count)
        for number, (part_low, part_high, count) in enumerate(merged, 1)
    ]
    # Past the last stamp seen when planning: only records changed since, read last. Every other
    # slice is bounded above and may be read at once with the rest.
    slices.append(SlicePlan(len(slices) + 1, _moment(high), None, 0))
    return slices


def _merge_small(parts: list[tuple[int, int, int]], slice_records: int) -> list[tuple[int, int, int]]:
    merged: list[tuple[int, int, int]] = []
    for part in parts:
        if merged and merged[-1][2] + part[2] <= slice_records:
            low, _high, count = merged[-1]
            merged[-1] = (low, part[1], count + part[2])
        else:
            merged.append(part)
    return merged


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def reading_order(slices: list[SlicePlan]) -> tuple[list[SlicePlan], list[SlicePlan]]:
    """``(first, last)``: the slices that may be read at once, and the one(s) reaching up to now,
    read only after all of the first have finished (see the module docstring)."""
    return [s for s in slices if not s.reaches_now], [s for s in slices if s.reaches_now]


def plan_from_salesforce(
    hook: Any, spec: ObjectSpec, window: Window, total: int, slice_records: int
) -> list[SlicePlan]:
    """The window's slices, from Salesforce's answers: the first and last SystemModstamp in the
    window (one query each) and a ``COUNT()`` per span of time. Nothing is asked when ``total`` fits
    in one slice."""
    if total <= slice_records:
        return [SlicePlan(1, None, None, total)]

    def edge(order: str) -> datetime | None:
        condition = window.soql_condition()
        where = f" WHERE {condition}" if condition else ""
        soql = f"SELECT SystemModstamp FROM {spec.name}{where} ORDER BY SystemModstamp {order} LIMIT 1"
        for page in hook.query_pages(soql, include_deleted=True):
            for record in page:
                return _parse_stamp(record["SystemModstamp"])
        return None

    def count_between(lower: datetime, upper: datetime) -> int:
        part = Window(
            start=max(lower, window.start) if window.start else lower,
            end=min(upper, window.end) if window.end else upper,
        )
        return hook.count(build_count_soql(spec, part), include_deleted=True)

    wanted = -(-total // slice_records)
    # A round's COUNT() calls are asked at once: each waits on Salesforce, not on this process.
    with ThreadPoolExecutor(max_workers=PLANNING_THREADS, thread_name_prefix=f"{spec.name} plan") as pool:
        return plan_slices(
            total,
            first_stamp=edge("ASC"),
            last_stamp=edge("DESC"),
            count_between=count_between,
            slice_records=slice_records,
            max_counts=min(4 * wanted, MAX_PLANNING_COUNTS),
            map_=pool.map,
        )


#: Bulk 2.0 slices read at once. Salesforce already splits each job by primary key on its side, so
#: more jobs mostly add creations, polls and calls; and each slice holds a results page (tens of
#: MB) while it is parsed.
BULK_PARALLEL_SLICES = 2


def parallel_slices(method: str, max_parallel_slices: int) -> int:
    """Slices of a load read at once: the setting, and for Bulk 2.0 at most `BULK_PARALLEL_SLICES`."""
    return min(max_parallel_slices, BULK_PARALLEL_SLICES) if method == "bulk2" else max_parallel_slices


#: How far over its share of the records a Bulk 2.0 slice may be. The plan cuts whole spans of time,
#: so a slice lands near its share, not on it; one just over it would be cut again, and one lane
#: would read two slices to the other's one. At 1,000,000 Contacts in two lanes the slices were
#: 266,083, 271,159 and 462,758 records, and the last ran alone for 13 of the load's 23 s of staging.
BULK_SHARE_SLACK = 0.1


def records_per_slice(method: str, total: int, slice_records: int, max_parallel_slices: int) -> int:
    """How many records a slice holds: ``slice_records``; a Bulk 2.0 load is cut only into as many
    slices as are read at once, each up to `BULK_SHARE_SLACK` over its share (a Bulk slice resumes
    by results page anyway)."""
    if method != "bulk2":
        return slice_records
    share = -(-total // parallel_slices(method, max_parallel_slices))
    return max(slice_records, share + int(share * BULK_SHARE_SLACK))


#: COUNT() calls asked at once while planning (Salesforce allows 25 long-running requests per org).
PLANNING_THREADS = 8

#: COUNT() calls a plan may spend cutting the window, whatever its size.
MAX_PLANNING_COUNTS = 200


def _parse_stamp(value: str) -> datetime:
    # Salesforce's form: 2024-05-20T20:49:32.000+0000
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
