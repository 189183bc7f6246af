"""The merge before the apply, against a real PostgreSQL: a first load's successor, filled by its
slices, gets the slice read last merged in at each record's newest version and the table's
indexes; merging again (a retry after a kill) changes nothing; an Id staged twice is kept once."""

from __future__ import annotations

import logging
from datetime import timedelta

from salesforce_pipeline import slice_merge
from salesforce_pipeline.checkpoint import Checkpoint
from tests.plugins.salesforce_pipeline import test_checkpoint
from tests.plugins.salesforce_pipeline.records import make_id
from tests.plugins.salesforce_pipeline.test_checkpoint import T0, THREE, names, opened

conn = test_checkpoint.conn  # the same fixture: a warehouse with the pipeline's schema


def put(conn, table: str, serial: int, name: str, days: float) -> None:
    """A row as a slice stages it: Account `serial` at SystemModstamp T0 + `days`."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO salesforce.{table} (id, name, system_modstamp, is_deleted, _extracted_at, _dag_run_id) "
            "VALUES (%s, %s, %s, false, %s, 'run')",
            (make_id("001", serial), name, T0 + timedelta(days=days), T0),
        )
    conn.commit()


def planned(conn) -> Checkpoint:
    saved = opened(conn, owner=1)
    saved.plan(THREE)
    assert saved.into_successor
    return saved


def indexes(conn, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (f"salesforce.{table}",))
        (count,) = cur.fetchone()
    conn.commit()
    return count


def test_the_slice_read_last_is_merged_in_at_each_records_newest_version(conn, caplog):
    saved = planned(conn)
    successor, last = f"_merged_account_{saved.id}", f"_stage_account_{saved.id}_3"
    put(conn, successor, 1, "unchanged", -5)
    put(conn, successor, 2, "changed: old version", -5)
    put(conn, successor, 3, "newer than the last slice's", 1.5)
    put(conn, last, 2, "changed: new version", 2)
    put(conn, last, 3, "older than the successor's", 1.2)
    put(conn, last, 4, "new", 2)

    with caplog.at_level(logging.WARNING, logger="salesforce_pipeline.slice_merge"):
        assert slice_merge.merge(saved).as_string(conn).endswith(f'"{successor}"')
    assert "held an Id twice" not in caplog.text, "merged without the safety net for duplicates"

    expected = ["changed: new version", "new", "newer than the last slice's", "unchanged"]
    assert names(conn, successor) == expected
    assert indexes(conn, successor) == indexes(conn, "account"), "the table's indexes, built on it"
    # A retry killed after the merge merges again: the same rows, the indexes built once.
    again = opened(conn, owner=2)
    slice_merge.merge(again)
    assert names(conn, successor) == expected
    assert indexes(conn, successor) == indexes(conn, "account")


def test_an_id_staged_twice_into_the_successor_is_kept_once_at_its_newest_version(conn, caplog):
    saved = planned(conn)
    successor = f"_merged_account_{saved.id}"
    put(conn, successor, 1, "older", -5)
    put(conn, successor, 1, "newer", -4)
    put(conn, successor, 2, "alone", -5)

    with caplog.at_level(logging.WARNING, logger="salesforce_pipeline.slice_merge"):
        slice_merge.merge(saved)

    assert names(conn, successor) == ["alone", "newer"]
    assert "held an Id twice" in caplog.text
    assert indexes(conn, successor) == indexes(conn, "account")


def storage_options(conn, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = %s::regclass",
            (f"salesforce.{table}",),
        )
        (options,) = cur.fetchone()
    conn.commit()
    return sorted(options)


def test_the_successor_is_not_vacuumed_while_it_fills_and_ends_with_the_tables_own_options(conn):
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE salesforce.account SET (fillfactor = 90)")  # an option of the user's
    conn.commit()
    saved = planned(conn)
    successor = f"_merged_account_{saved.id}"
    assert storage_options(conn, successor) == ["autovacuum_enabled=false"]
    put(conn, successor, 1, "a row", -5)
    put(conn, f"_stage_account_{saved.id}_3", 2, "read last", 2)
    assert storage_options(conn, f"_stage_account_{saved.id}_3") == ["autovacuum_enabled=false"]

    slice_merge.merge(saved)
    assert storage_options(conn, successor) == ["fillfactor=90"], (
        "vacuumed again once it may become the table"
    )
