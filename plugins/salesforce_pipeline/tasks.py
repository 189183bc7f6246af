"""The callables behind the DAG's tasks: read the run's context, open the connections, call sync.

Kept out of the DAG file so the DAG only wires tasks, and so parsing it imports nothing heavy.
"""

from __future__ import annotations

import logging
from typing import Any

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import OBJECTS, object_spec
from salesforce_pipeline.settings import load_settings

log = logging.getLogger(__name__)


def _fail_fast(exc: SalesforcePipelineError) -> Exception:
    """Airflow's retries can help a transient failure, never a wrong password or a spent allowance."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"{type(exc).__name__}: {exc} (not retried: retrying cannot fix this)")


def prepare_warehouse(**context: Any) -> None:
    """Create the schema and tables if needed (idempotent DDL from include/sql/schema.sql)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from salesforce_pipeline import load

    try:
        settings = load_settings()
    except SalesforcePipelineError as exc:
        raise _fail_fast(exc) from exc
    conn = PostgresHook(postgres_conn_id=settings.postgres_conn_id).get_conn()
    try:
        load.apply_schema(conn, {})
    finally:
        conn.close()
    log.info("warehouse schema 'salesforce' is in place (connection %s)", settings.postgres_conn_id)


def sync_salesforce_object(sobject: str, **context: Any) -> dict[str, Any]:
    """Extract, transform and load one object for this run's data interval; returns the summary."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk.exceptions import AirflowSkipException

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.sync import SyncRequest, sync_object

    params = context["params"]
    selected = list(params.get("objects") or OBJECTS)
    if sobject not in selected:
        raise AirflowSkipException(f"{sobject} is not among the objects chosen for this run ({selected})")
    try:
        settings = load_settings()
        request = SyncRequest(
            spec=object_spec(sobject),
            settings=settings,
            dag_run_id=context["run_id"],
            interval_start=context["data_interval_start"],
            interval_end=context["data_interval_end"],
            full_refresh=bool(params.get("full_refresh", False)),
            method=params.get("extraction_method", "auto"),
        )
        hook = SalesforcePipelineHook(salesforce_conn_id=settings.salesforce_conn_id)
        log.info(
            "%s: Salesforce connection %s, authentication mode %s",
            sobject,
            settings.salesforce_conn_id,
            hook.auth_mode,
        )
        conn = PostgresHook(postgres_conn_id=settings.postgres_conn_id).get_conn()
        try:
            summary = sync_object(request, hook, conn)
        finally:
            conn.close()
            hook.log_api_usage()
    except SalesforcePipelineError as exc:
        if exc.retryable:
            raise
        raise _fail_fast(exc) from exc
    return summary.as_dict()
