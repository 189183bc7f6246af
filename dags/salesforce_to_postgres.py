"""
### Salesforce → Postgres: Accounts and Contacts, daily, incremental and backfill-safe

Each run owns one UTC day, `[data_interval_start, data_interval_end)`, and re-reads a short
lookback before it (setting `lookback_minutes`, default 10) so records committed late are not
missed. It reads `SystemModstamp` through **queryAll**, so deletions arrive as `IsDeleted = true`,
and upserts into `salesforce.account` / `salesforce.contact` with a guard that never lets an
older version overwrite a newer one: backfills of old days, in any order, regress nothing.

* **Connections**: `salesforce_default` (either authentication mode) and `postgres_warehouse`;
  both ids can be changed in the Variable `salesforce_to_postgres`.
* **Params**: `full_refresh` re-reads every record and marks rows Salesforce no longer has as
  deleted; `objects` chooses Account and/or Contact; `extraction_method` forces REST or Bulk 2.0.
* The first run of an object that has never loaded does a full refresh by itself.
* Every object logs one `SUMMARY` line (counts, drift, API calls, duration) and each attempt has
  a row in `salesforce.load_audit`; records that cannot be loaded are kept in `salesforce.load_rejects`.
* `sweep_<object>` runs on the `sweep` setting's cadence (default weekly; skipped otherwise): it
  compares every Id with Salesforce and re-reads exactly the records that differ.
* A manual run for date D covers the day before D (`[D-1, D)`); a backfill from D1 to D2 covers
  each day D1..D2 as `[D, D+1)`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from salesforce_pipeline.notifications import notify_failure
from salesforce_pipeline.tasks import prepare_warehouse, sweep_salesforce_object, sync_salesforce_object

# Named after the tables, so downstream DAGs can be scheduled on "Accounts/Contacts refreshed".
ACCOUNT_TABLE = Asset(name="warehouse.salesforce.account")
CONTACT_TABLE = Asset(name="warehouse.salesforce.contact")


@dag(
    dag_id="salesforce_to_postgres",
    doc_md=__doc__,
    # Airflow 3's plain "@daily" gives zero-width data intervals; this timetable gives each run a day.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # One run at a time per DAG; backfill runs beside it are made safe by the per-object lock
    # and the upsert guard in the load.
    max_active_runs=1,
    tags=["salesforce", "postgres", "elt"],
    default_args={
        "owner": "data-platform",
        "retries": 3,
        # An environment setting (not a Variable: nothing is looked up at parse time), so tests
        # and impatient operators can shorten the wait between retries.
        "retry_delay": timedelta(
            seconds=float(os.environ.get("SALESFORCE_PIPELINE_RETRY_DELAY_SECONDS", "120"))
        ),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        # No task runs unbounded: a hung attempt is stopped and retried (its audit row says so).
        "execution_timeout": timedelta(
            minutes=float(os.environ.get("SALESFORCE_PIPELINE_TASK_TIMEOUT_MINUTES", "360"))
        ),
        "on_failure_callback": notify_failure,
    },
    params={
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh",
            description="Re-read every record and mark rows that no longer exist in Salesforce as deleted.",
        ),
        "objects": Param(
            ["Account", "Contact"],
            type="array",
            items={"type": "string", "enum": ["Account", "Contact"]},
            minItems=1,
            title="Objects",
            description="Which Salesforce objects this run loads.",
        ),
        "extraction_method": Param(
            "auto",
            type="string",
            enum=["auto", "rest", "bulk2"],
            title="Extraction method",
            description="auto: Bulk API 2.0 above the bulk_threshold setting, REST below it.",
        ),
    },
)
def salesforce_to_postgres():
    prepare = task(task_id="prepare_warehouse", execution_timeout=timedelta(minutes=15))(prepare_warehouse)()
    sync_account = task(task_id="sync_account", outlets=[ACCOUNT_TABLE])(sync_salesforce_object)("Account")
    sync_contact = task(task_id="sync_contact", outlets=[CONTACT_TABLE])(sync_salesforce_object)("Contact")
    sweep_account = task(task_id="sweep_account", outlets=[ACCOUNT_TABLE])(sweep_salesforce_object)("Account")
    sweep_contact = task(task_id="sweep_contact", outlets=[CONTACT_TABLE])(sweep_salesforce_object)("Contact")
    prepare >> [sync_account, sync_contact]
    sync_account >> sweep_account
    sync_contact >> sweep_contact


salesforce_to_postgres()
