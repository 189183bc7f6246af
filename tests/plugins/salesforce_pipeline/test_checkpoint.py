"""A load's checkpoint against a real PostgreSQL: claimed by one attempt at a time, started over
when it no longer fits, and a slice whose staged rows are gone is read again."""

from __future__ import annotations

from datetime import UTC, datetime

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


def stage_two_rows(conn, saved: Checkpoint) -> None:
    records = [
        {
            "Id": make_id("001", n),
            "Name": f"A{n}",
            "SystemModstamp": "2026-10-01T00:00:00.000+0000",
            "IsDeleted": False,
        }
        for n in (1, 2)
    ]
    kinds = {"Id": "id", "SystemModstamp": "datetime", "IsDeleted": "boolean"}
    frame = transform(records, ["Id", "Name", "SystemModstamp", "IsDeleted"], kinds, key_prefix="001").frame
    prepared = target(conn).prepare(frame)
    state = saved.slices[0]
    with conn.cursor() as cur:
        saved.fence(cur)
        target(conn).copy_into(saved.stage_table(1), prepared.payload)
        state.staged, state.done = 2, True
        saved.save(cur, state)
    conn.commit()


def tables(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'salesforce' AND tablename LIKE '\\_%%'"
        )
        found = sorted(row[0] for row in cur.fetchall())
    conn.commit()
    return found


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
    saved = opened(conn, owner=1)
    saved.plan(PLAN)
    stage_two_rows(conn, saved)
    # A server crash empties UNLOGGED tables; the checkpoint still says two rows, done.
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE salesforce._stage_account_{saved.id}_1")
    conn.commit()
    resumed = opened(conn, owner=2)
    first = resumed.slices[0]
    assert (first.staged, first.done) == (0, False)
    assert resumed.slices[1].done is False
