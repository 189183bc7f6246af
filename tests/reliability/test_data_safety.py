"""Data safety under a hostile operator and a busy warehouse, through the real DAG.

Each test here is a defect an adversarial probe found: a live record marked deleted, a run that
locked the table on every run, a user's change to the table that broke every load, attempts
that left no audit row. Each fails on the code before its fix.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 30, tzinfo=UTC)  # a run for DAY owns [11-29, 11-30)
NEXT_DAY = DAY + timedelta(days=1)
pytestmark = pytest.mark.emulator(accounts=40, contacts=120, seed=1414, now=NOW)


@pytest.fixture(autouse=True)
def frozen_clock(sf_emulator):
    sf_emulator.org.set_clock(NOW)


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def tries(dag_run, task_id: str) -> int:
    return dag_run.get_task_instance(task_id).try_number


def admin(test_database_url):
    conn = psycopg2.connect(test_database_url)
    conn.autocommit = True
    return conn


def terminate(test_database_url, pid: int) -> None:
    conn = admin(test_database_url)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()


def test_a_record_rejected_in_a_full_refresh_is_not_marked_deleted(pipeline, sf_emulator):
    org = sf_emulator.org
    assert pipeline.run(DAY).state == "success"
    account = next(r for r in org.snapshot("Account") if not r["IsDeleted"])
    org.update("Account", account["Id"], {"NumberOfEmployees": 2**70})  # beyond bigint: rejected

    dag_run = pipeline.run(NEXT_DAY, objects=["Account"], full_refresh=True)

    assert dag_run.state == "success", states(dag_run)
    row = pipeline.rows("account")[account["Id"]]
    assert row["is_deleted"] is False, "Salesforce has the record live; only this version was rejected"
    last = pipeline.audit()[-1]
    assert (last["sobject"], last["mode"], last["rejected"], last["deleted"]) == (
        "Account",
        "full_refresh",
        1,
        0,
    )
    assert last["live_difference"] == 0, "the warehouse still holds the record's last good version"


def test_an_extra_field_whose_column_exists_takes_no_lock_a_reader_could_block(
    pipeline, sf_emulator, test_database_url
):
    pipeline.configure(extra_fields={"Account": ["Tier__c"]})
    assert pipeline.run(DAY).state == "success"
    reader = admin(test_database_url)
    reader.autocommit = False
    with reader.cursor() as cur:  # a BI session that read the table and left its transaction open
        cur.execute("SELECT count(*) FROM salesforce.account")
    # The DAG runs in this thread (Airflow's execution_timeout needs the main thread); if it
    # blocks, a watchdog ends the reader's transaction after 60 s so the test can fail.
    pid = reader.get_backend_pid()
    watchdog = threading.Timer(60, lambda: terminate(test_database_url, pid))
    watchdog.start()
    started = time.monotonic()
    dag_run = pipeline.run(NEXT_DAY, objects=["Account"])
    elapsed = time.monotonic() - started
    watchdog.cancel()
    reader.close()
    assert elapsed < 55, "the run waited behind a reader's open transaction"
    assert dag_run.state == "success", states(dag_run)


def test_a_new_extra_field_is_added_despite_a_reader_holding_a_transaction(
    pipeline, sf_emulator, test_database_url
):
    """The ALTER waits at most lock_timeout, a few times, and succeeds once the reader is done."""
    assert pipeline.run(DAY).state == "success"
    pipeline.configure(extra_fields={"Account": ["Tier__c"]}, lock_timeout_seconds=0.2)
    reader = admin(test_database_url)
    reader.autocommit = False
    with reader.cursor() as cur:
        cur.execute("SELECT count(*) FROM salesforce.account")
    threading.Timer(1.0, reader.rollback).start()  # the reader finishes a second later
    started = time.monotonic()
    dag_run = pipeline.run(NEXT_DAY, objects=["Account"])
    reader.close()
    assert dag_run.state == "success", states(dag_run)
    assert time.monotonic() - started < 60
    assert "tier__c" in next(iter(pipeline.rows("account").values()))


def test_a_lock_held_too_long_fails_the_attempt_within_the_wait_and_changes_nothing(
    pipeline, sf_emulator, test_database_url
):
    assert pipeline.run(DAY).state == "success"
    before = pipeline.rows("account")
    org = sf_emulator.org
    org.update("Account", next(iter(before)), {"Name": "Renamed while locked"})
    pipeline.configure(lock_timeout_seconds=0.5, object_lock_wait_seconds=1)
    holder = admin(test_database_url)
    holder.autocommit = False
    with holder.cursor() as cur:  # someone locked the table for maintenance and went to lunch
        cur.execute("LOCK TABLE salesforce.account IN EXCLUSIVE MODE")
    try:
        started = time.monotonic()
        dag_run = pipeline.run(NEXT_DAY, objects=["Account"])
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert states(dag_run)["sync_account"] == "failed"
    assert tries(dag_run, "sync_account") > 1, "a busy lock is transient: the task is retried"
    assert elapsed < 60
    assert pipeline.rows("account") == before
    failures = [a for a in pipeline.audit() if a["status"] == "failed"]
    assert failures, "every attempt is audited"
    assert all("lock_timeout_seconds=0.5" in a["error"] for a in failures), failures[0]["error"]

    assert pipeline.run(NEXT_DAY, objects=["Account"]).state == "success"  # the lock is gone
    assert pipeline.mismatches("Account") == []


def test_an_identity_column_a_user_added_does_not_break_loads(pipeline, sf_emulator, test_database_url):
    assert pipeline.run(DAY).state == "success"
    with admin(test_database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "ALTER TABLE salesforce.account ADD COLUMN surrogate_key bigint GENERATED ALWAYS AS IDENTITY"
        )
        cur.execute("ALTER TABLE salesforce.account ADD COLUMN loaded_on date NOT NULL DEFAULT current_date")
    org = sf_emulator.org
    account = next(r for r in org.snapshot("Account") if not r["IsDeleted"])
    org.update("Account", account["Id"], {"Name": "Changed after the identity"})
    new_id = org.insert("Account", {"Name": "Brand new"})

    dag_run = pipeline.run(NEXT_DAY, objects=["Account"])

    assert dag_run.state == "success", states(dag_run)
    rows = pipeline.rows("account")
    assert rows[account["Id"]]["name"] == "Changed after the identity"
    assert rows[new_id]["surrogate_key"] is not None
    assert pipeline.mismatches("Account") == []  # compares the pipeline's columns


def test_a_narrowed_column_fails_naming_it_and_loads_nothing(pipeline, sf_emulator, test_database_url):
    assert pipeline.run(DAY).state == "success"
    with admin(test_database_url) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE salesforce.account ALTER COLUMN name TYPE varchar(40)")
    org = sf_emulator.org
    account = next(r for r in org.snapshot("Account") if not r["IsDeleted"])
    org.update("Account", account["Id"], {"Name": "A name much longer than the forty characters allowed"})
    before = pipeline.rows("account")

    dag_run = pipeline.run(NEXT_DAY, objects=["Account"])

    assert states(dag_run)["sync_account"] == "failed"
    assert tries(dag_run, "sync_account") == 1, "a person must fix the column: not retried"
    assert pipeline.rows("account") == before
    error = pipeline.audit()[-1]["error"]
    assert "column name is character varying(40)" in error
    assert "ALTER TABLE salesforce.account ALTER COLUMN name TYPE text" in error


def test_a_failed_login_leaves_a_failed_audit_row(pipeline, sf_emulator):
    pipeline.configure(connection_extra={"consumer_secret": "not-the-secret"})
    dag_run = pipeline.run(DAY, objects=["Contact"])
    assert states(dag_run)["sync_contact"] == "failed"
    audit = pipeline.audit()
    assert [(a["sobject"], a["status"], a["try_number"]) for a in audit] == [("Contact", "failed", 1)]
    assert "Consumer Secret" in audit[0]["error"]


def test_invalid_settings_leave_a_failed_audit_row_listing_every_problem(pipeline):
    pipeline.configure(bulk_poll_seconds=-1, lookback_minutes=True)
    dag_run = pipeline.run(DAY, objects=["Contact"])
    assert states(dag_run)["prepare_warehouse"] == "failed"
    assert states(dag_run)["sync_contact"] == "upstream_failed"
    assert tries(dag_run, "prepare_warehouse") == 1
    (row,) = pipeline.audit()
    assert row["status"] == "failed"
    assert "bulk_poll_seconds" in row["error"]
    assert "lookback_minutes" in row["error"]


def test_drift_between_salesforce_and_the_warehouse_is_recorded_every_run(
    pipeline, sf_emulator, test_database_url
):
    assert pipeline.run(DAY).state == "success"
    live = [r for r in sf_emulator.org.snapshot("Contact") if not r["IsDeleted"]]
    with admin(test_database_url) as conn, conn.cursor() as cur:  # a row lost behind our back
        cur.execute("DELETE FROM salesforce.contact WHERE id = %s", (live[0]["Id"],))
    assert pipeline.run(NEXT_DAY, objects=["Contact"]).state == "success"
    last = pipeline.audit()[-1]
    assert (last["live_salesforce"], last["live_warehouse"], last["live_difference"]) == (
        len(live),
        len(live) - 1,
        -1,
    )


def test_a_record_committed_late_is_in_the_warehouse_after_the_next_sweep(pipeline, sf_emulator):
    org = sf_emulator.org
    assert pipeline.run(DAY).state == "success"
    # Committed after that run, stamped 30 minutes before the next run's window starts: the
    # next incremental run's 10-minute lookback cannot see it.
    late = org.insert("Account", {"Name": "Committed late"}, DAY - timedelta(minutes=30))
    pipeline.configure(sweep="off")
    assert pipeline.run(NEXT_DAY, objects=["Account"]).state == "success"
    assert late not in pipeline.rows("account"), "the incremental run cannot have seen it"
    assert pipeline.audit()[-1]["live_difference"] == -1, "but every run records the drift"

    pipeline.configure(sweep="daily")
    pipeline.execute("UPDATE salesforce.load_audit SET finished_at = finished_at - interval '2 days'")
    dag_run = pipeline.run(NEXT_DAY, objects=["Account"])

    assert dag_run.state == "success", states(dag_run)
    assert late in pipeline.rows("account")
    assert pipeline.mismatches("Account") == []
    sweep = pipeline.audit()[-1]
    assert (sweep["mode"], sweep["status"], sweep["upserted"], sweep["count_difference"]) == (
        "sweep",
        "success",
        1,
        1,
    )
    assert "1 missing (committed late or never loaded)" in sweep["count_note"]
    assert sweep["live_difference"] == 0


def test_rows_that_vanish_during_a_load_fail_it_before_commit_and_change_nothing(pipeline, sf_emulator):
    """A trigger someone put on the table silently drops some writes: the load's verification
    finds extracted records missing, so nothing of that load is committed."""
    org = sf_emulator.org
    assert pipeline.run(DAY).state == "success"
    before = pipeline.rows("contact")
    contacts = [r for r in org.snapshot("Contact") if not r["IsDeleted"]]
    for contact in contacts[:5]:
        org.update("Contact", contact["Id"], {"Title": "Vanishes"})
    org.update("Contact", contacts[5]["Id"], {"Title": "Stays"})
    pipeline.execute(
        "CREATE FUNCTION salesforce.drop_vanishing() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF NEW.title = 'Vanishes' THEN RETURN NULL; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER drop_vanishing BEFORE INSERT OR UPDATE ON salesforce.contact "
        "FOR EACH ROW EXECUTE FUNCTION salesforce.drop_vanishing();"
    )
    dag_run = pipeline.run(NEXT_DAY, objects=["Contact"])
    assert states(dag_run)["sync_contact"] == "failed"
    assert pipeline.rows("contact") == before  # not even the record that would have stayed
    failed = [a for a in pipeline.audit() if a["sobject"] == "Contact" and a["status"] == "failed"]
    assert failed
    assert "missing" in failed[-1]["error"].lower() or "not in" in failed[-1]["error"].lower(), failed[-1][
        "error"
    ]
