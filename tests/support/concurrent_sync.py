"""One object's sync in a process of its own, for concurrency tests (spawned by multiprocessing).

Each process has its own Salesforce session and Postgres connections, as two Airflow workers
would; nothing is shared but the emulator and the database.
"""

from __future__ import annotations

import json
import os
import traceback
from datetime import datetime, timedelta
from typing import Any


def sync_in_this_process(job: dict[str, Any]) -> str:
    """Run `sync_object` for `job`; returns "ok" or the failure's traceback."""
    os.environ["AIRFLOW_CONN_SALESFORCE_DEFAULT"] = job["salesforce_connection"]
    os.environ["AIRFLOW_CONN_POSTGRES_WAREHOUSE"] = job["warehouse_url"]
    os.environ["AIRFLOW_VAR_SALESFORCE_TO_POSTGRES"] = json.dumps(job["settings"])
    try:
        from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
        from salesforce_pipeline.objects import OBJECTS
        from salesforce_pipeline.registry import LEGACY_ORG, org_settings
        from salesforce_pipeline.settings import raw_settings
        from salesforce_pipeline.sync import SyncRequest, sync_object
        from salesforce_pipeline.tasks import warehouse_connection

        settings = org_settings(raw_settings(), LEGACY_ORG)
        start = datetime.fromisoformat(job["interval_start"])
        request = SyncRequest(
            spec=OBJECTS[job["sobject"]],
            settings=settings,
            dag_run_id=job["run_id"],
            interval_start=start,
            interval_end=start + timedelta(days=1),
            full_refresh=job["full_refresh"],
            try_number=job.get("try_number"),
        )
        conn = warehouse_connection(settings.postgres_conn_id, settings)
        try:
            sync_object(
                request,
                SalesforcePipelineHook(),
                conn,
                connect=lambda: warehouse_connection(settings.postgres_conn_id, settings),
            )
        finally:
            conn.close()
    except BaseException:
        return traceback.format_exc()
    return "ok"
