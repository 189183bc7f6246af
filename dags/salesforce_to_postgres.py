"""
### Salesforce → Postgres: Accounts and Contacts, daily, incremental and backfill-safe

One DAG per Salesforce org in the registry (Variable `salesforce_to_postgres`, key `orgs`):
`salesforce_org_<key>`, loading into the org's own schema (default `salesforce_<key>`). Without
`orgs`, the single org of earlier releases: DAG `salesforce_to_postgres`, schema `salesforce`.

Each run owns one UTC day, `[data_interval_start, data_interval_end)`, and re-reads a short
lookback before it (setting `lookback_minutes`, default 10) so records committed late are not
missed. It reads `SystemModstamp` through **queryAll**, so deletions arrive as `IsDeleted = true`,
and upserts into `<schema>.account` / `<schema>.contact` with a guard that never lets an
older version overwrite a newer one: backfills of old days, in any order, regress nothing.

* **Connections**: the org's Salesforce connection (either authentication mode; `salesforce_<key>`,
  or `salesforce_default` for the single org) and `postgres_warehouse`; both can be set in the Variable.
* **Params**: `full_refresh` re-reads every record and marks rows Salesforce no longer has as
  deleted; `objects` chooses Account and/or Contact; `extraction_method` forces REST or Bulk 2.0.
* The first run of an object that has never loaded does a full refresh by itself.
* Every object logs one `SUMMARY` line (counts, drift, API calls, duration) and each attempt has
  a row in `<schema>.load_audit`; records that cannot be loaded are kept in `<schema>.load_rejects`;
  `salesforce_pipeline.org_status` shows every org's freshness.
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
from salesforce_pipeline.objects import OBJECTS, asset_name
from salesforce_pipeline.registry import LEGACY_ORG, RegisteredOrg, registered_orgs
from salesforce_pipeline.settings import raw_settings
from salesforce_pipeline.tasks import prepare_warehouse, sweep_salesforce_object, sync_salesforce_object

# Environment settings (not the Variable), so tests and impatient operators can shorten them.
RETRY_DELAY = timedelta(seconds=float(os.environ.get("SALESFORCE_PIPELINE_RETRY_DELAY_SECONDS", "120")))
TASK_TIMEOUT = timedelta(minutes=float(os.environ.get("SALESFORCE_PIPELINE_TASK_TIMEOUT_MINUTES", "360")))


def _registry():
    # The one read at parse time, so that adding an org to the Variable adds its DAG with no
    # restart. When it cannot be read, the single-org DAG stands in: its tasks read the Variable
    # again and fail with the message that says what is wrong, and load nothing.
    try:
        return raw_settings()
    except Exception:  # a DAG file must never fail to import: SettingsError, or no access
        return None


def salesforce_org_dag(org: RegisteredOrg):
    """The DAG of one registered org: prepare the warehouse, then sync and sweep each object."""
    legacy = org.key == LEGACY_ORG

    @dag(
        dag_id=org.dag_id,
        doc_md=__doc__,
        description=f"Salesforce org {org.key!r} into schema {org.schema}"
        + ("" if org.enabled else " (disabled in the registry)"),
        # Airflow 3's plain "@daily" gives zero-width data intervals; this timetable gives each run a day.
        # A disabled org keeps its DAG (and its history) but is never scheduled.
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC") if org.enabled else None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        # A new org starts with its next run: adding it to the registry is the whole onboarding.
        is_paused_upon_creation=None if legacy else False,
        # One scheduled run at a time per org; backfill runs beside it are made safe by the
        # per-object lock and the upsert guard in the load.
        max_active_runs=1,
        max_active_tasks=org.max_active_loads,
        tags=["salesforce", "postgres", "elt", f"org:{org.key}"],
        default_args={
            "owner": "data-platform",
            "retries": 3,
            "retry_delay": RETRY_DELAY,
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=20),
            # No task runs unbounded: a hung attempt is stopped and retried (its audit row says so).
            "execution_timeout": TASK_TIMEOUT,
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
                list(OBJECTS),
                type="array",
                items={"type": "string", "enum": list(OBJECTS)},
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
        prepare = task(task_id="prepare_warehouse", execution_timeout=timedelta(minutes=15))(
            prepare_warehouse
        )(org=org.key)
        for spec in OBJECTS.values():
            # Named after the table, so downstream DAGs can be scheduled on "this org's Contacts refreshed".
            table = Asset(name=asset_name(org.schema, spec.table))
            # Extraction takes a slot of the pool shared by every org, on the queue an operator can
            # give workers of its own (CeleryExecutor); one load of an object per org at a time
            # (another would only wait for the object's lock, holding a slot).
            extraction = {
                "outlets": [table],
                "pool": org.pool,
                "queue": org.queue,
                "max_active_tis_per_dag": 1,
            }
            sync = task(task_id=f"sync_{spec.table}", **extraction)(sync_salesforce_object)(
                spec.name, org=org.key
            )
            sweep = task(task_id=f"sweep_{spec.table}", **extraction)(sweep_salesforce_object)(
                spec.name, org=org.key
            )
            prepare >> sync >> sweep

    return salesforce_to_postgres()


for _org in registered_orgs(_registry()):
    globals()[_org.dag_id] = salesforce_org_dag(_org)
