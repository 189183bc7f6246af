"""A load's checkpoint against a real PostgreSQL: claimed by one attempt at a time, started over
when it no longer fits, a slice whose staged rows are gone is read again, and a first load's
slices stage into the table's successor, each read again from its start without touching the
others' rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from salesforce_pipeline import checkpoint
from salesforce_pipeline.checkpoint import Checkpoint, CheckpointTakenOver
from salesforce_pipeline.extract import FULL_REFRESH_WINDOW
from salesforce_pipeline.load_target import LoadTarget
from salesforce_pipeline.objects import ACCOUNT
from salesforce_pipeline.slice_plan import SlicePlan
from salesforce_pipeline.warehouse import apply_schema
from tests.plugins.salesforce_pipeline.records import make_id, transform

T0 = datetime(2026, 11, 1, tzinfo=UTC)
COLUMNS = ["id", "name", "system_modstamp", "is_deleted"]
PLAN = [SlicePlan(1, None, T0, 2), SlicePlan(2, T0, None, 0)]


@pytest.fixture
def conn(warehouse):
    connection = psycopg2.connect(warehouse)
    apply_schema(connection, "salesforce")
    yield connection
    connection.close()


def target(conn) -> LoadTarget:
    return LoadTarget(conn, ACCOUNT, COLUMNS, schema="salesforce", dag_run_id="run", extracted_at=T0)


def opened(conn, owner: int, print_: str = "same") -> Checkpoint:
    return Checkpoint.open(
        conn, target(conn), print_=print_, method="rest", method_requested=False, owner=owner
    )


def stage_two_rows(conn, saved: Checkpoint, slice_no: int = 1, stamp: str = "2026-10-01T00:00:00") -> None:
    """Two Accounts staged by the slice, as slice_stage does it: COPY and progress, one commit."""
    first = 2 * slice_no - 1
    records = [
        {"Id": make_id("001", n), "Name": f"A{n}", "SystemModstamp": f"{stamp}.000+0000", "IsDeleted": False}
        for n in (first, first + 1)
    ]
    kinds = {"Id": "id", "SystemModstamp": "datetime", "IsDeleted": "boolean"}
    frame = transform(records, ["Id", "Name", "SystemModstamp", "IsDeleted"], kinds, key_prefix="001").frame
    prepared = target(conn).prepare(frame)
    state = saved.slices[slice_no - 1]
    with conn.cursor() as cur:
        saved.fence(cur)
        target(conn).copy_into(saved.destination(state), prepared.payload)
        state.staged, state.done = 2, True
        saved.save(cur, state)
    conn.commit()


def holding_a_row(conn) -> None:
    """The table holds a row already: a load stages into stage tables, not into a successor."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO salesforce.account (id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id) "
            "VALUES (%s, 'kept', %s, false, %s, 'earlier')",
            (make_id("001", 999), T0, T0),
        )
    conn.commit()


def names(conn, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT name FROM salesforce.{table} ORDER BY name")
        found = [row[0] for row in cur.fetchall()]
    conn.commit()
    return found


def tables(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'salesforce' AND tablename LIKE '\\_%%'"
        )
        found = sorted(row[0] for row in cur.fetchall())
    conn.commit()
    return found


def resumed_after(conn, loss: str) -> Checkpoint:
    """The checkpoint as a retry opens it once `loss` took slice 1's rows: slice 1 starts over."""
    with conn.cursor() as cur:
        cur.execute(loss)
    conn.commit()
    resumed = opened(conn, owner=2)
    first = resumed.slices[0]
    assert (first.staged, first.done) == (0, False)
    return resumed


def test_a_later_attempt_claims_the_checkpoint_and_the_earlier_one_stages_nothing_more(conn, warehouse):
    earlier = opened(conn, owner=1)
    earlier.plan(PLAN)
    other = psycopg2.connect(warehouse)
    try:
        later = opened(other, owner=2)
        assert later.id == earlier.id
        assert [s.plan for s in later.slices] == PLAN, "the slices planned by the earlier attempt"
        with pytest.raises(CheckpointTakenOver, match="later attempt"), conn.cursor() as cur:
            earlier.fence(cur)
        conn.rollback()
        with other.cursor() as cur:
            later.fence(cur)  # the owner stages on
        other.rollback()
    finally:
        other.close()


def test_a_checkpoint_that_no_longer_fits_is_dropped_with_its_staged_rows(conn):
    old = opened(conn, owner=1, print_=checkpoint.fingerprint("full_refresh", FULL_REFRESH_WINDOW, COLUMNS))
    old.plan(PLAN)
    stage_two_rows(conn, old)
    assert len(tables(conn)) == 3
    # The fields changed (a column more): what was staged cannot be applied as it is.
    new = opened(
        conn,
        owner=2,
        print_=checkpoint.fingerprint("full_refresh", FULL_REFRESH_WINDOW, [*COLUMNS, "industry"]),
    )
    assert new.id != old.id
    assert not new.planned
    assert tables(conn) == []


def test_a_slice_whose_stage_lost_its_rows_is_read_again(conn, warehouse):
    holding_a_row(conn)
    saved = opened(conn, owner=1)
    saved.plan(PLAN)
    assert not saved.into_successor
    stage_two_rows(conn, saved)
    # A server crash empties UNLOGGED tables; the checkpoint still says two rows, done.
    resumed = resumed_after(conn, f"TRUNCATE salesforce._stage_account_{saved.id}_1")
    assert resumed.slices[1].done is False


THREE = [
    SlicePlan(1, None, T0, 2),
    SlicePlan(2, T0, T0 + timedelta(days=1), 2),
    SlicePlan(3, T0 + timedelta(days=1), None, 0),
]


def test_a_first_loads_slices_stage_into_the_successor_and_one_read_again_takes_only_its_rows(conn):
    saved = opened(conn, owner=1)
    saved.plan(THREE)
    assert saved.into_successor
    assert tables(conn) == sorted(
        [f"_merged_account_{saved.id}", f"_rejects_account_{saved.id}", f"_stage_account_{saved.id}_3"]
    ), "no stage for the slices that COPY into the successor; one for the slice reaching up to now"
    stage_two_rows(conn, saved, slice_no=1, stamp="2026-10-01T00:00:00")
    stage_two_rows(conn, saved, slice_no=2, stamp="2026-11-01T12:00:00")
    assert names(conn, f"_merged_account_{saved.id}") == ["A1", "A2", "A3", "A4"]
    # Slice 2's cursor expired: it is read again from its start, and only its rows go.
    resumed = opened(conn, owner=2)
    assert resumed.into_successor, "a retry stages where the first attempt did"
    resumed.reset(conn, resumed.slices[1])
    conn.commit()
    assert names(conn, f"_merged_account_{saved.id}") == ["A1", "A2"]
    assert (resumed.slices[1].staged, resumed.slices[1].done) == (0, False)


def test_a_table_with_rows_or_a_single_slice_stages_into_stage_tables(conn):
    single = opened(conn, owner=1, print_="one slice")
    single.plan([SlicePlan(1, None, None, 2)])
    assert not single.into_successor
    single.discard()
    holding_a_row(conn)
    filled = opened(conn, owner=1)
    filled.plan(THREE)
    assert not filled.into_successor
    assert f"_merged_account_{filled.id}" not in tables(conn)


def test_the_slices_of_a_successor_that_is_gone_are_read_again(conn):
    saved = opened(conn, owner=1)
    saved.plan(THREE)
    stage_two_rows(conn, saved, slice_no=1)
    resumed_after(conn, f"DROP TABLE salesforce._merged_account_{saved.id}")
    assert names(conn, f"_merged_account_{saved.id}") == [], "an empty successor again, to stage into"
