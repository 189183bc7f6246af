"""Two runs of one object at once never deadlock, block for good, or lose a record.

Four processes (the daily run and a full-refresh backfill, for Account and for Contact) sync at
the same moment, 20 rounds in a row, while a BI session reads the tables inside an open
transaction. Rounds alternate between first loads (the schema dropped before them) and loads
over existing tables, and between runs with a configured extra field and without one, so every
combination of DDL, direct COPY and guarded upsert meets every other.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg2
import pytest

from tests.support.concurrent_sync import sync_in_this_process
from tests.support.pipeline import salesforce_connection_json

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 29, tzinfo=UTC)
ROUNDS = 20
pytestmark = pytest.mark.emulator(accounts=30, contacts=90, seed=1919, now=NOW)


def hold_a_read_transaction(url: str, seconds: float, ready: threading.Event) -> None:
    """A BI session: reads both tables, then sits in its open transaction for `seconds`."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('salesforce.account'), to_regclass('salesforce.contact')")
            if all(cur.fetchone()):
                cur.execute("SELECT count(*) FROM salesforce.account")
                cur.execute("SELECT count(*) FROM salesforce.contact")
        ready.set()
        threading.Event().wait(seconds)
        conn.rollback()
    finally:
        ready.set()
        conn.close()


def test_concurrent_runs_of_one_object_never_deadlock(sf_emulator, warehouse, test_database_url):
    from tests.support.warehouse import mismatches, warehouse_rows

    sf_emulator.org.set_clock(NOW)
    connection = salesforce_connection_json(
        sf_emulator, extra={"retry_base_seconds": 0.05, "max_retries": 4, "timeout": 10}
    )
    rng = random.Random(1919)
    admin = psycopg2.connect(test_database_url)
    admin.autocommit = True
    # Spawned, not forked: each worker starts as a fresh interpreter, as an Airflow worker does.
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
        for round_number in range(ROUNDS):
            first_load = round_number % 2 == 0
            with_extra = round_number % 4 in (1, 2)
            if first_load:
                with admin.cursor() as cur:
                    cur.execute("DROP SCHEMA IF EXISTS salesforce CASCADE")
                    cur.execute(f'CREATE SCHEMA salesforce AUTHORIZATION "{urlsplit(warehouse).username}"')
            for record in rng.sample(sf_emulator.org.snapshot("Contact"), 3):  # something to load
                sf_emulator.org.update("Contact", record["Id"], {"Title": f"round {round_number}"})
            ready = threading.Event()
            reader = threading.Thread(
                target=hold_a_read_transaction, args=(warehouse, rng.uniform(0.5, 2.0), ready)
            )
            reader.start()
            ready.wait(10)
            jobs = []
            for sobject in ("Account", "Contact"):
                for run_id, start, full_refresh, extra in (
                    (f"scheduled__{round_number}", DAY, False, with_extra),
                    (f"backfill__{round_number}", DAY - timedelta(days=3), True, not with_extra),
                ):
                    settings = {"chunk_size": 20, "rest_batch_size": 200, "lock_timeout_seconds": 2}
                    if extra:
                        settings["extra_fields"] = {"Account": ["Tier__c"], "Contact": ["Account.Name"]}
                    jobs.append(
                        {
                            "salesforce_connection": connection,
                            "warehouse_url": warehouse,
                            "settings": settings,
                            "sobject": sobject,
                            "run_id": run_id,
                            "interval_start": start.isoformat(),
                            "full_refresh": full_refresh,
                        }
                    )
            futures = [pool.submit(sync_in_this_process, job) for job in jobs]
            outcomes = [future.result(timeout=180) for future in futures]
            reader.join()
            failures = [o for o in outcomes if o != "ok"]
            assert failures == [], f"round {round_number}: {failures[0]}"
            for sobject, table in (("Account", "account"), ("Contact", "contact")):
                problems = mismatches(
                    sobject,
                    sf_emulator.org.snapshot(sobject),
                    warehouse_rows(warehouse, table),
                    _describe(sobject),
                )
                assert problems == [], f"round {round_number}: {problems[:5]}"
    with admin.cursor() as cur:
        cur.execute("SELECT status, count(*) FROM salesforce.load_audit GROUP BY status")
        statuses = dict(cur.fetchall())
    admin.close()
    assert set(statuses) == {"success"}, statuses
    print(json.dumps({"rounds": ROUNDS, "audit": statuses}))


def _describe(sobject: str):
    from salesforce_emulator.schema import SCHEMA, describe_sobject

    return describe_sobject(SCHEMA[sobject], "62.0", frozenset())
