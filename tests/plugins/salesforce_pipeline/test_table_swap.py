"""A first load swapped in under the lock, against a real PostgreSQL: the table ends exactly as it
was (names, definitions, grants, comments, sequences) but full; a table that cannot be swapped,
or that got rows or changed after the merge, is loaded in place; a failure or rollback leaves
the empty table as it was; a successor left by a killed attempt is built again."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from salesforce_pipeline import checkpoint, slice_merge
from salesforce_pipeline.checkpoint import Checkpoint
from salesforce_pipeline.load_target import LoadTarget
from salesforce_pipeline.objects import ACCOUNT
from salesforce_pipeline.slice_plan import SlicePlan
from salesforce_pipeline.staged_load import StagedLoad
from salesforce_pipeline.warehouse import apply_schema
from tests.plugins.salesforce_pipeline.test_checkpoint import tables  # the checkpoint's tables left

T0 = datetime(2026, 11, 1, tzinfo=UTC)
COLUMNS = ["id", "name", "system_modstamp", "is_deleted"]
ROWS = 300
READER = "swap_test_reader"


@pytest.fixture
def conn(warehouse, test_database_url):
    admin = psycopg2.connect(test_database_url)
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE ROLE {READER}")
    admin.commit()
    admin.close()
    connection = psycopg2.connect(warehouse)
    apply_schema(connection, "salesforce")
    with connection.cursor() as cur:
        # What a warehouse's users add to the table, all of which a swap must keep.
        cur.execute("CREATE INDEX users_own_idx ON salesforce.account (lower(name)) WHERE NOT is_deleted")
        cur.execute("ALTER TABLE salesforce.account ADD CONSTRAINT named_check CHECK (name <> '')")
        cur.execute("ALTER TABLE salesforce.account ADD COLUMN row_no bigserial")
        cur.execute("COMMENT ON TABLE salesforce.account IS 'Accounts from Salesforce'")
        cur.execute("COMMENT ON COLUMN salesforce.account.name IS 'Account Name'")
        cur.execute("COMMENT ON INDEX salesforce.users_own_idx IS 'for the search page'")
        cur.execute("COMMENT ON CONSTRAINT account_pkey ON salesforce.account IS 'the Salesforce Id'")
        cur.execute(f"GRANT SELECT ON salesforce.account TO {READER}")
        cur.execute(f"GRANT UPDATE (name) ON salesforce.account TO {READER}")
    connection.commit()
    yield connection
    connection.close()


def staged(conn, rows: int = ROWS) -> Checkpoint:
    """A checkpoint whose one slice staged ``rows`` Accounts (each Id twice: the newer one wins)."""
    target = LoadTarget(conn, ACCOUNT, COLUMNS, schema="salesforce", dag_run_id="run", extracted_at=T0)
    saved = Checkpoint.open(conn, target, print_="p", method="rest", method_requested=False, owner=1)
    if not saved.planned:
        saved.plan([SlicePlan(1, None, None, rows)])
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO salesforce._stage_account_{saved.id}_1 "
            "SELECT lpad(g::text, 15, '0') || 'AAA', v || g, %s + (v = 'A')::int * interval '1 day', false, %s, 'run' "
            "FROM generate_series(1, %s) g, (VALUES ('A'), ('old ')) versions(v)",
            (T0, T0, rows),
        )
    conn.commit()
    return saved


def apply(conn, saved: Checkpoint) -> StagedLoad:
    """The apply as sync does it: merge, lock, write, verify, delete the checkpoint, commit."""
    load = loader(conn, saved, slice_merge.merge(saved))
    load.begin()
    load.apply()
    assert load.verification_problem() is None
    saved.delete()
    load.commit()
    return load


def loader(conn, saved: Checkpoint, merged) -> StagedLoad:
    return StagedLoad(
        conn,
        ACCOUNT,
        COLUMNS,
        dag_run_id="run",
        extracted_at=T0,
        schema="salesforce",
        merged=merged,
        rejects=saved.rejects_table,
    )


def catalog(conn) -> dict[str, object]:
    """Everything about the account table a swap must keep, by name (not by OID)."""
    queries = {
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'salesforce' "
        "AND tablename = 'account' ORDER BY 1",
        "constraints": "SELECT conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint') "
        "FROM pg_constraint WHERE conrelid = 'salesforce.account'::regclass ORDER BY 1",
        "columns": "SELECT attname, format_type(atttypid, atttypmod), attnotnull, "
        "pg_get_expr(adbin, adrelid), attacl::text, col_description(attrelid, attnum) FROM pg_attribute "
        "LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum "
        "WHERE attrelid = 'salesforce.account'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        "table": "SELECT relowner::regrole::text, relacl::text, relpersistence, "
        "obj_description(oid, 'pg_class') FROM pg_class WHERE oid = 'salesforce.account'::regclass",
        "index comments": "SELECT indexrelid::regclass::text, obj_description(indexrelid, 'pg_class') "
        "FROM pg_index WHERE indrelid = 'salesforce.account'::regclass ORDER BY 1",
        "sequence": "SELECT pg_get_serial_sequence('salesforce.account', 'row_no')",
    }
    found: dict[str, object] = {}
    with conn.cursor() as cur:
        for name, query in queries.items():
            cur.execute(query)
            found[name] = cur.fetchall()
    conn.commit()
    return found


def table_oid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT 'salesforce.account'::regclass::oid")
        (oid,) = cur.fetchone()
    conn.commit()
    return oid


def scalar(conn, query: str, params=None):
    with conn.cursor() as cur:
        cur.execute(query, params)
        (value,) = cur.fetchone()
    conn.commit()
    return value


def test_a_first_load_swaps_in_the_table_with_its_names_definitions_grants_and_comments(conn):
    before, old_oid = catalog(conn), table_oid(conn)
    assert before["table"][0][1]
    assert "users_own_idx" in str(before["indexes"])
    load = apply(conn, staged(conn))
    assert load.mode == "swap", load.swap_refused
    assert load.upserted == ROWS
    assert table_oid(conn) != old_oid, "the successor is the table now"
    assert catalog(conn) == before
    assert tables(conn) == [], "the checkpoint's tables are gone, the swapped-in table is not"
    assert scalar(conn, "SELECT count(*) FROM salesforce.account WHERE name LIKE 'A%%'") == ROWS
    # The serial's sequence moved to the new table: it still numbers new rows.
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO salesforce.account (id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id) "
            "VALUES ('NEW000000000001', 'x', now(), false, now(), 'r') RETURNING row_no"
        )
        assert cur.fetchone()[0] == ROWS + 1
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN SELECT id FROM salesforce.account WHERE lower(name) = 'a7' AND NOT is_deleted")
        assert "users_own_idx" in " ".join(row[0] for row in cur.fetchall())
    conn.rollback()


def test_a_view_on_the_table_keeps_it_loaded_in_place(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE VIEW salesforce.account_names AS SELECT id, name FROM salesforce.account")
    conn.commit()
    before, old_oid = catalog(conn), table_oid(conn)
    load = apply(conn, staged(conn))
    assert load.mode == "insert"
    assert "account_names" in (load.swap_refused or "")
    assert table_oid(conn) == old_oid
    assert catalog(conn) == before
    assert scalar(conn, "SELECT count(*) FROM salesforce.account_names WHERE name LIKE 'A%%'") == ROWS


def test_rows_written_between_the_merge_and_the_lock_are_upserted_under_the_guard(conn, warehouse):
    saved = staged(conn)
    merged = slice_merge.merge(saved)
    newer, older = "000000000000001AAA", "000000000000002AAA"
    other = psycopg2.connect(warehouse)  # a daily run that applied first
    with other, other.cursor() as cur:
        cur.execute(
            "INSERT INTO salesforce.account (id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id) "
            "VALUES (%s, 'newer in Salesforce', %s, false, %s, 'daily'), (%s, 'older', %s, false, %s, 'daily'), "
            "('OTHER0000000001', 'not in this load', %s, false, %s, 'daily')",
            (newer, T0 + timedelta(days=5), T0, older, T0 - timedelta(days=5), T0, T0, T0),
        )
    other.close()
    load = loader(conn, saved, merged)
    load.begin()
    load.apply()
    assert load.mode == "guarded"
    assert load.verification_problem() is None
    saved.delete()
    load.commit()
    names = dict(_rows(conn, "SELECT id, name FROM salesforce.account"))
    assert len(names) == ROWS + 1
    assert names[newer] == "newer in Salesforce", "a newer row is never overwritten"
    assert names[older] == "A2"
    assert names["OTHER0000000001"] == "not in this load"
    assert tables(conn) == []


def test_a_row_committed_while_the_apply_waits_for_the_table_is_kept(conn, warehouse):
    saved = staged(conn)
    merged = slice_merge.merge(saved)
    writer = psycopg2.connect(warehouse)  # a session that writes without the object's lock
    with writer.cursor() as cur:
        cur.execute(
            "INSERT INTO salesforce.account (id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id) "
            "VALUES ('WRITER000000001', 'written meanwhile', %s, false, %s, 'w')",
            (T0, T0),
        )
    load = loader(conn, saved, merged)
    began = threading.Thread(target=load.begin)
    watcher = psycopg2.connect(warehouse)
    began.start()
    try:
        deadline = time.monotonic() + 30
        # The apply found the table empty (the row is not committed) and waits for its lock.
        while not scalar(
            watcher, "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (conn.info.backend_pid,)
        ):
            assert time.monotonic() < deadline
            assert began.is_alive()
            time.sleep(0.02)
    finally:
        writer.commit()
        writer.close()
        watcher.close()
        began.join(30)
    load.apply()
    assert load.mode == "guarded"
    assert load.verification_problem() is None
    load.commit()
    names = dict(_rows(conn, "SELECT id, name FROM salesforce.account"))
    assert len(names) == ROWS + 1
    assert names["WRITER000000001"] == "written meanwhile"


def test_an_index_added_after_the_merge_is_kept(conn):
    saved = staged(conn)
    merged = slice_merge.merge(saved)
    with conn.cursor() as cur:
        cur.execute("CREATE INDEX added_later_idx ON salesforce.account (name)")
    conn.commit()
    before = catalog(conn)
    load = loader(conn, saved, merged)
    load.begin()
    load.apply()
    assert load.mode == "insert"
    assert "not shaped as the table" in (load.swap_refused or "")
    assert load.verification_problem() is None
    saved.delete()
    load.commit()
    assert catalog(conn) == before


def test_a_failure_inside_the_swap_leaves_the_empty_table_exactly_as_it_was(conn, test_database_url):
    before, old_oid = catalog(conn), table_oid(conn)
    saved = staged(conn)
    merged = slice_merge.merge(saved)
    # A real error from the server half-way through the swap (after the old table is dropped):
    # an event trigger refusing to rename an index, in this session only.
    admin = psycopg2.connect(test_database_url)
    with admin, admin.cursor() as cur:
        cur.execute(
            "CREATE OR REPLACE FUNCTION public.swap_test_fail() RETURNS event_trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF current_setting('swap_test.fail', true) = 'on' THEN RAISE 'index rename refused'; END IF; END $$"
        )
        cur.execute(
            "CREATE EVENT TRIGGER swap_test_fail ON ddl_command_end WHEN TAG IN ('ALTER INDEX') "
            "EXECUTE FUNCTION public.swap_test_fail()"
        )
    try:
        load = loader(conn, saved, merged)
        load.begin()
        assert load.mode == "swap"
        with conn.cursor() as cur:
            cur.execute("SET swap_test.fail = 'on'")  # for the session: a commit would not end it
        with pytest.raises(psycopg2.errors.RaiseException, match="index rename refused"):
            load.apply()
        load.rollback()
    finally:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("RESET swap_test.fail")
        conn.commit()
        with admin, admin.cursor() as cur:
            cur.execute("DROP EVENT TRIGGER swap_test_fail")
            cur.execute("DROP FUNCTION public.swap_test_fail()")
        admin.close()
    assert table_oid(conn) == old_oid
    assert catalog(conn) == before
    assert scalar(conn, "SELECT count(*) FROM salesforce.account") == 0
    assert f"_merged_account_{saved.id}" in tables(conn), "the retry can swap it in"


def test_a_successor_left_by_a_killed_attempt_is_built_again(conn):
    before = catalog(conn)
    saved = staged(conn)
    leftover = slice_merge.merge(saved)
    # What an earlier attempt killed after its merge could leave: rows and indexes that are wrong.
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM salesforce._merged_account_{saved.id} WHERE name = 'A1'")
        cur.execute(f"DROP INDEX salesforce._merged_account_{saved.id}_i{_oid(conn, 'users_own_idx')}")
    conn.commit()
    retry = Checkpoint.open(conn, saved.target, print_="p", method="rest", method_requested=False, owner=2)
    assert retry.id == saved.id
    assert slice_merge.merge(retry).as_string(conn) == leftover.as_string(conn)
    load = loader(conn, retry, leftover)
    load.begin()
    load.apply()
    assert load.mode == "swap", load.swap_refused
    assert load.verification_problem() is None
    retry.delete()
    load.commit()
    assert catalog(conn) == before
    assert scalar(conn, "SELECT count(*) FROM salesforce.account WHERE name LIKE 'A%%'") == ROWS


def test_an_expired_checkpoint_drops_its_successor_and_leaves_the_table(conn):
    saved = staged(conn)
    slice_merge.merge(saved)
    old_oid = table_oid(conn)
    with conn.cursor() as cur:
        cur.execute("UPDATE salesforce.load_checkpoint SET updated_at = now() - interval '73 hours'")
        cur.execute("UPDATE salesforce.load_checkpoint_slice SET updated_at = now() - interval '73 hours'")
    conn.commit()
    assert checkpoint.expire_stale(conn, saved.target, 72) == 1
    assert tables(conn) == []
    assert table_oid(conn) == old_oid


def _oid(conn, index: str) -> int:
    return scalar(conn, "SELECT %s::regclass::oid", (f"salesforce.{index}",))


def _rows(conn, query: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query)
        found = cur.fetchall()
    conn.commit()
    return found
