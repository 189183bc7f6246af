"""Cutting a window into SystemModstamp slices, from COUNT() answers, without an org."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_pipeline.extract import Window
from salesforce_pipeline.slice_plan import (
    SlicePlan,
    parallel_slices,
    plan_slices,
    reading_order,
    records_per_slice,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def org_with(stamps: list[datetime]):
    """`count_between` over these records' stamps, and a counter of the calls made."""
    ordered = sorted(stamps)
    calls = []

    def count_between(lower: datetime, upper: datetime) -> int:
        calls.append((lower, upper))
        return bisect.bisect_left(ordered, upper) - bisect.bisect_left(ordered, lower)

    return ordered, count_between, calls


def in_slice(stamp: datetime, plan: SlicePlan) -> bool:
    return (plan.lower is None or stamp >= plan.lower) and (plan.upper is None or stamp < plan.upper)


def plan(stamps, slice_records=100, max_counts=100):
    ordered, count_between, calls = org_with(stamps)
    slices = plan_slices(
        len(ordered),
        first_stamp=ordered[0],
        last_stamp=ordered[-1],
        count_between=count_between,
        slice_records=slice_records,
        max_counts=max_counts,
    )
    return ordered, slices, calls


def test_every_record_falls_in_exactly_one_slice_and_slices_are_small():
    stamps = [START + timedelta(seconds=7 * n) for n in range(1_000)]
    ordered, slices, _calls = plan(stamps)
    for stamp in ordered:
        assert sum(in_slice(stamp, s) for s in slices) == 1
    assert all(s.expected <= 100 for s in slices)
    assert sum(s.expected for s in slices) == len(ordered)
    assert [s.number for s in slices] == list(range(1, len(slices) + 1))
    assert slices[0].lower is None, "the first slice starts where the window does"


def test_the_slice_reaching_up_to_now_is_read_last_and_holds_only_records_changed_since():
    stamps = [START + timedelta(minutes=n) for n in range(500)]
    ordered, slices, _calls = plan(stamps)
    first, last = reading_order(slices)
    (top,) = last
    assert top.upper is None
    assert top.expected == 0
    assert top.lower > ordered[-1], "every record seen when planning is in a bounded slice"
    assert all(s.upper is not None for s in first)
    # A record that changes while the load runs gets a newer stamp: it lands in the top slice.
    assert in_slice(datetime.now(UTC), top)


def test_skewed_history_is_cut_where_the_records_are():
    # Nine years of a trickle, then most records in one busy week.
    stamps = [START + timedelta(days=n) for n in range(0, 3_300, 10)]
    busy = START + timedelta(days=3_300)
    stamps += [busy + timedelta(seconds=30 * n) for n in range(2_000)]
    ordered, slices, calls = plan(stamps, slice_records=250)
    assert all(s.expected <= 250 for s in slices)
    assert sum(s.expected for s in slices) == len(ordered)
    assert len(slices) <= 2 * (len(ordered) // 250 + 1) + 1, "small parts are merged"
    assert len(calls) <= 100


def test_evenly_spread_records_are_planned_in_one_round_of_counts():
    stamps = [START + timedelta(seconds=3 * n) for n in range(2_000)]
    ordered, count_between, _calls = org_with(stamps)
    rounds = []

    def asked_at_once(function, items):
        items = list(items)
        rounds.append(len(items))
        return [function(item) for item in items]

    slices = plan_slices(
        len(ordered),
        first_stamp=ordered[0],
        last_stamp=ordered[-1],
        count_between=count_between,
        slice_records=100,
        max_counts=80,
        map_=asked_at_once,
    )
    assert rounds == [39], "40 spans of time, the last one's count what the others leave"
    assert all(s.expected <= 100 for s in slices)
    assert sum(s.expected for s in slices) == len(ordered)
    assert len(slices) == 21, "twenty slices of 100 records, and the one catching up"


def test_a_second_holding_more_than_a_slice_stays_one_slice():
    stamps = [START] * 300 + [START + timedelta(hours=1)] * 10
    ordered, slices, _calls = plan(stamps)
    assert sum(s.expected for s in slices) == len(ordered)
    assert max(s.expected for s in slices) == 300


def test_the_count_calls_are_bounded():
    stamps = [START + timedelta(seconds=n) for n in range(10_000)]
    _ordered, slices, calls = plan(stamps, slice_records=10, max_counts=20)
    assert len(calls) == 20
    assert sum(s.expected for s in slices) == 10_000


@pytest.mark.parametrize("total", [0, 50, 100])
def test_a_window_that_fits_in_one_slice_costs_no_call(total):
    calls = []
    slices = plan_slices(
        total,
        first_stamp=START,
        last_stamp=START,
        count_between=lambda lower, upper: calls.append(1) or 0,
        slice_records=100,
        max_counts=10,
    )
    assert slices == [SlicePlan(1, None, None, total)]
    assert calls == []


def test_a_slice_window_is_bounded_by_the_load_window_where_it_is_open():
    window = Window(start=START, end=START + timedelta(days=1))
    middle = SlicePlan(2, START + timedelta(hours=1), START + timedelta(hours=2), 5)
    first = SlicePlan(1, None, START + timedelta(hours=1), 5)
    top = SlicePlan(3, START + timedelta(hours=2), None, 0)
    assert middle.window(window) == Window(START + timedelta(hours=1), START + timedelta(hours=2))
    assert first.window(window) == Window(START, START + timedelta(hours=1))
    assert top.window(window) == Window(START + timedelta(hours=2), START + timedelta(days=1))


def test_a_bulk_load_is_cut_only_into_the_slices_read_at_once():
    assert parallel_slices("rest", 4) == 4
    assert parallel_slices("bulk2", 4) == 2
    assert parallel_slices("bulk2", 1) == 1
    assert records_per_slice("rest", 1_000_000, 50_000, 4) == 50_000
    assert records_per_slice("bulk2", 1_000_000, 50_000, 4) == 550_000, "its share, and a tenth more"
    assert records_per_slice("bulk2", 60_000, 50_000, 4) == 50_000


def test_a_bulk_load_whose_halving_lands_off_the_middle_is_still_two_slices():
    # 537 of 1,000 records in the first half of the time range: as 1,000,000 Contacts were.
    stamps = [START + timedelta(seconds=n) for n in range(537)]
    stamps += [START + timedelta(seconds=1_000 + n) for n in range(463)]
    _ordered, slices, _calls = plan(stamps, slice_records=records_per_slice("bulk2", 1_000, 100, 4))
    first, _last = reading_order(slices)
    assert [s.expected for s in first] == [537, 463], "one slice for each of the two lanes"
