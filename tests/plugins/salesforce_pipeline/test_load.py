"""Load against a real PostgreSQL: COPY round trips, the upsert guard, one transaction per object."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from salesforce_pipeline import load
from salesforce_pipeline.objects import ACCOUNT
from salesforce_pipeline.transform import snake_case
from salesforce_pipeline.warehouse import add_missing_columns, apply_schema
from tests.plugins.salesforce_pipeline.records import make_id, transform, write_frames

FIELDS = ["Id", "Name", "Description", "AnnualRevenue", "NumberOfEmployees", "SystemModstamp", "IsDeleted"]
KINDS = {
    "Id": "id",
    "AnnualRevenue": "numeric",
    "NumberOfEmployees": "integer",
    "SystemModstamp": "datetime",
    "IsDeleted": "boolean",
}
COLUMNS = [snake_case(f) for f in FIELDS]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def account_id(serial: int) -> str:
    return make_id("001", serial)


def frame(*records):
    return transform(records, FIELDS, KINDS, key_prefix="001").frame


def rec(serial, name, stamp, deleted=False, **extra):
    return {
        "Id": account_id(serial),
        "Name": name,
        "Description": extra.get("Description"),
        "AnnualRevenue": extra.get("AnnualRevenue"),
        "NumberOfEmployees": extra.get("NumberOfEmployees"),
        "SystemModstamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "IsDeleted": deleted,
    }


@pytest.fixture
def conn(warehouse):
    connection = psycopg2.connect(warehouse)
    apply_schema(connection, "salesforce")
    yield connection
    connection.close()


def begun(conn, run_id, extracted_at=None):
    loader = load.ObjectLoad(
        conn,
        ACCOUNT,
        COLUMNS,
        dag_run_id=run_id,
        extracted_at=extracted_at or datetime.now(UTC),
        schema="salesforce",
    )
    loader.begin()
    return loader


def run_load(conn, *chunks, run_id="run-1"):
    loader = begun(conn, run_id)
    upserted = write_frames(loader, *chunks)
    assert loader.verification_problem() is None
    loader.commit()
    return upserted


@pytest.fixture(params=["direct", "guarded"])
def path(request, conn):
    """Run a test on both ways into the table: an empty table (COPY straight into it) and one
    that already holds a row (staging + guarded upsert). The bystander row is not in the test's data."""
    if request.param == "guarded":
        run_load(conn, frame(rec(999_999, "bystander", T0)), run_id="bystander")
    return request.param


def rows_without_bystander(conn):
    return [r for r in rows(conn) if r[0] != account_id(999_999)]


def rows(conn):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, name, description, annual_revenue, number_of_employees, system_modstamp, "
            "is_deleted, _dag_run_id FROM salesforce.account ORDER BY id"
        )
        result = cur.fetchall()
    conn.commit()
    return result


def test_schema_is_idempotent(conn):
    assert apply_schema(conn, "salesforce") is False  # the fixture applied it: nothing to do
    assert add_missing_columns(conn, "salesforce", "account", [("health_score__c", "numeric")]) == [
        "health_score__c"
    ]
    assert add_missing_columns(conn, "salesforce", "account", [("health_score__c", "numeric")]) == []
    with conn.cursor() as cur:
        cur.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema='salesforce' AND table_name='account' AND column_name='health_score__c'"
        )
        assert cur.fetchone() == ("numeric",)


def test_hostile_text_round_trips_exactly_through_copy(conn, path):
    hostile = 'tab\there\nnew\r\nline \\N \\ back\\slash "quotes", commas 山田 Zoë 🚀 ' + "x" * 32000
    run_load(conn, frame(rec(1, hostile, T0, Description="\\.\n\\."), rec(2, "", T0)))
    stored = rows_without_bystander(conn)
    assert stored[0][1] == hostile
    assert stored[0][2] == "\\.\n\\."
    assert stored[1][1] == ""  # empty string stays an empty string, not null
    assert stored[1][2] is None


def test_numbers_stay_exact(conn, path):
    run_load(conn, frame(rec(1, "a", T0, AnnualRevenue=123456789012.34, NumberOfEmployees=2**40)))
    (row,) = rows_without_bystander(conn)
    assert str(row[3]) == "123456789012.34"
    assert row[4] == 2**40


def test_rerunning_a_chunk_changes_nothing_and_duplicates_nothing(conn):
    chunk = frame(rec(1, "a", T0), rec(2, "b", T0))
    run_load(conn, chunk)
    first = rows(conn)
    run_load(conn, chunk)
    assert [r[:7] for r in rows(conn)] == [r[:7] for r in first]
    assert len(rows(conn)) == 2


def test_an_older_version_never_overwrites_a_newer_one(conn):
    run_load(conn, frame(rec(1, "newer", T0 + timedelta(days=2))), run_id="daily")
    upserted = run_load(conn, frame(rec(1, "older", T0)), run_id="backfill")
    assert upserted == 0
    (row,) = rows(conn)
    assert row[1] == "newer"
    assert row[7] == "daily"


def test_deletes_keep_the_row_flagged(conn):
    run_load(conn, frame(rec(1, "a", T0)))
    run_load(conn, frame(rec(1, "a", T0 + timedelta(hours=1), deleted=True)))
    (row,) = rows(conn)
    assert row[6] is True


def test_a_failed_load_leaves_the_warehouse_as_it_was(conn):
    direct = begun(conn, "fails")
    write_frames(direct, frame(rec(1, "lost", T0)))
    direct.rollback()
    assert rows(conn) == []
    run_load(conn, frame(rec(1, "kept", T0)))
    loader = begun(conn, "fails")
    write_frames(loader, frame(rec(1, "changed", T0 + timedelta(days=1)), rec(2, "new", T0)))
    loader.rollback()
    assert [(r[0], r[1]) for r in rows(conn)] == [(account_id(1), "kept")]


def test_full_refresh_marks_ids_salesforce_no_longer_has(conn):
    run_load(conn, frame(rec(1, "a", T0), rec(2, "purged", T0)))
    started = datetime.now(UTC)
    loader = begun(conn, "full", started)
    write_frames(loader, frame(rec(1, "a", T0)))
    assert loader.mark_missing_as_deleted(started) == 1
    assert loader.count_live_rows() == 1
    loader.commit()
    assert [(r[0], r[6]) for r in rows(conn)] == [(account_id(1), False), (account_id(2), True)]


def test_a_rejected_record_of_a_full_refresh_keeps_its_row_live(conn):
    run_load(conn, frame(rec(1, "a", T0), rec(2, "rejected this time", T0)))
    started = datetime.now(UTC)
    loader = begun(conn, "full", started)
    result = transform(
        [rec(1, "a", T0), rec(2, "b", T0, AnnualRevenue="lots")], FIELDS, KINDS, key_prefix="001"
    )
    loader.write_rejects(result.rejects)
    write_frames(loader, result.frame)
    assert loader.mark_missing_as_deleted(started) == 0
    loader.commit()
    assert [(r[0], r[6]) for r in rows(conn)] == [(account_id(1), False), (account_id(2), False)]


def test_an_empty_table_is_filled_directly_and_a_loaded_one_through_the_guard(conn):
    first = begun(conn, "first")
    assert first.mode == "direct"
    write_frames(first, frame(rec(1, "a", T0)))
    assert first.verification_problem() is None
    first.commit()
    second = begun(conn, "second")
    assert second.mode == "guarded"
    second.rollback()


def test_an_id_repeated_in_a_later_chunk_moves_a_direct_load_onto_the_guard(conn):
    started = datetime.now(UTC)
    loader = begun(conn, "dup", started)
    write_frames(loader, frame(rec(1, "newer", T0 + timedelta(days=1)), rec(2, "b", T0)))
    assert loader.mode == "direct"
    # A repeat of Id 1 with an older stamp, and one with a newer stamp for Id 2.
    write_frames(
        loader, frame(rec(1, "older", T0), rec(2, "b newer", T0 + timedelta(days=2)), rec(3, "c", T0))
    )
    assert loader.mode == "guarded"
    assert loader.verification_problem() is None
    assert loader.extracted_id_count() == 3
    assert loader.mark_missing_as_deleted(started) == 0
    loader.commit()
    assert [(r[0], r[1]) for r in rows(conn)] == [
        (account_id(1), "newer"),
        (account_id(2), "b newer"),
        (account_id(3), "c"),
    ]


def test_verification_finds_extracted_ids_missing_from_the_table(conn, path):
    loader = begun(conn, "r")
    assert loader.mode == path
    write_frames(loader, frame(rec(1, "a", T0)))
    assert loader.verification_problem() is None
    with conn.cursor() as cur:  # simulate a lost write inside the transaction
        cur.execute("DELETE FROM salesforce.account WHERE id = %s", (account_id(1),))
    problem = loader.verification_problem()
    assert problem is not None
    assert "salesforce.account" in problem
    if path == "guarded":
        assert repr(account_id(1)) in problem
    loader.rollback()


def test_verification_holds_an_id_noted_twice_to_its_newest_stamp(conn):
    # Guarded path, an Id in two chunks (older, then newer). A table row at the older stamp, or
    # at one between the two, is a lost newer version; at the newest stamp (or newer) it is fine.
    run_load(conn, frame(rec(9, "seed", T0)), run_id="r")
    loader = begun(conn, "r2")
    assert loader.mode == "guarded"
    write_frames(loader, frame(rec(1, "old", T0)), frame(rec(1, "new", T0 + timedelta(days=2))))
    assert loader.verification_problem() is None
    for stored, lost in ((T0, True), (T0 + timedelta(days=1), True), (T0 + timedelta(days=3), False)):
        with conn.cursor() as cur:  # what a concurrent or broken write could leave
            cur.execute(
                "UPDATE salesforce.account SET system_modstamp = %s WHERE id = %s", (stored, account_id(1))
            )
        problem = loader.verification_problem()
        assert (problem is not None and repr(account_id(1)) in problem) is lost, stored
    loader.rollback()


def test_a_full_refresh_leaves_a_row_a_newer_run_wrote_live(conn):
    """A record created after this refresh's extraction began is not in its extraction, yet is no
    purge: the newer run that wrote it owns it (mark_missing_deleted.sql's _extracted_at guard)."""
    run_load(conn, frame(rec(1, "a", T0)))
    started = datetime.now(UTC)
    run_load(conn, frame(rec(2, "created after the refresh began", T0 + timedelta(hours=1))), run_id="newer")
    loader = begun(conn, "full", started)
    write_frames(loader, frame(rec(1, "a", T0)))
    assert loader.mark_missing_as_deleted(started) == 0
    loader.commit()
    assert [(r[0], r[6]) for r in rows(conn)] == [(account_id(1), False), (account_id(2), False)]
