"""The apply against a real PostgreSQL: a first load rebuilds the table's own indexes exactly,
and a failure puts every one of them back."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg2
import pytest
from psycopg2 import sql

from salesforce_pipeline.objects import ACCOUNT
from salesforce_pipeline.staged_load import StagedLoad
from salesforce_pipeline.warehouse import apply_schema

T0 = datetime(2026, 11, 1, tzinfo=UTC)
COLUMNS = ["id", "name", "system_modstamp", "is_deleted"]


@pytest.fixture
def conn(warehouse):
    connection = psycopg2.connect(warehouse)
    apply_schema(connection, "salesforce")
    with connection.cursor() as cur:
        cur.execute("TRUNCATE salesforce.account")
        # A user's own index beside the pipeline's: partial, on an expression.
        cur.execute(
            "CREATE INDEX IF NOT EXISTS users_own_idx ON salesforce.account (lower(name)) WHERE NOT is_deleted"
        )
        cur.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS salesforce._merged_account_1 AS "
            "SELECT id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id FROM salesforce.account WITH NO DATA"
        )
        cur.execute("TRUNCATE salesforce._merged_account_1")
        cur.execute(
            "INSERT INTO salesforce._merged_account_1 SELECT lpad(g::text, 15, '0') || 'AAA', 'A' || g, %s, false, %s, 'r' "
            "FROM generate_series(1, 500) g",
            (T0, T0),
        )
        cur.execute("CREATE UNLOGGED TABLE IF NOT EXISTS salesforce._rejects_account_1 (slice_no int, record_id text, "
                    "reason text, raw_record text, names_row boolean)")  # fmt: skip
    connection.commit()
    yield connection
    connection.close()


def indexes(conn) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'salesforce' AND tablename = 'account' ORDER BY 1"
        )
        found = cur.fetchall()
    conn.commit()
    return found


def loader(conn) -> StagedLoad:
    return StagedLoad(
        conn,
        ACCOUNT,
        COLUMNS,
        dag_run_id="r",
        extracted_at=T0,
        schema="salesforce",
        merged=sql.Identifier("salesforce", "_merged_account_1"),
        rejects=sql.Identifier("salesforce", "_rejects_account_1"),
    )


def test_a_first_load_builds_the_tables_indexes_again_exactly(conn):
    before = indexes(conn)
    assert any(name == "users_own_idx" for name, _ in before)
    load = loader(conn)
    load.begin()
    assert load.was_empty
    assert load.apply() == 500
    assert load.verification_problem() is None
    load.commit()
    assert indexes(conn) == before
    with conn.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN SELECT id FROM salesforce.account WHERE lower(name) = 'a7' AND NOT is_deleted")
        assert "users_own_idx" in " ".join(row[0] for row in cur.fetchall())
    conn.rollback()


def test_a_failed_first_load_leaves_every_index_in_place(conn):
    before = indexes(conn)
    load = loader(conn)
    load.begin()
    load.apply()
    load.rollback()
    assert indexes(conn) == before
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM salesforce.account")
        assert cur.fetchone() == (0,)
    conn.rollback()


def test_a_second_apply_of_the_object_waits_for_the_first(conn, warehouse):
    """The object's lock: another run's apply (here over a table that holds rows, where no table
    lock is taken) waits until the first one ends."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO salesforce.account (id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id) "
            "VALUES ('000000000000001AAA', 'held', %s, false, %s, 'earlier')",
            (T0, T0),
        )
    conn.commit()
    first = loader(conn)
    first.begin()
    assert not first.was_empty
    other, monitor = psycopg2.connect(warehouse), psycopg2.connect(warehouse)
    monitor.autocommit = True
    second = loader(other)
    began = threading.Event()
    waiter = threading.Thread(target=lambda: (second.begin(), began.set()))
    try:
        waiter.start()
        deadline = time.monotonic() + 30
        while not began.is_set() and not waiting_for_advisory_lock(monitor, other.get_backend_pid()):
            assert time.monotonic() < deadline, "the second apply neither waited nor began"
            time.sleep(0.05)
        assert not began.is_set(), "the second apply began while the first held the object's lock"
        first.rollback()
        waiter.join(30)
        assert began.is_set(), "the second apply began once the first ended"
    finally:
        first.rollback()
        waiter.join(30)
        second.rollback()
        other.close()
        monitor.close()


def waiting_for_advisory_lock(monitor, pid: int) -> bool:
    with monitor.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = %s", (pid,)
        )
        return cur.fetchone()[0] > 0
