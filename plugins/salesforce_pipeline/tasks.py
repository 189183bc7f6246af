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


def warehouse_connection(conn_id: str):
    """A psycopg2 connection for an Airflow Postgres connection.

    PostgresHook.get_conn() hands out psycopg 3 connections whenever psycopg 3 is installed (it is,
    as an Airflow dependency); the loader is written for psycopg2's COPY and sql composables, so
    we connect with psycopg2 from the same Airflow connection, its extras (sslmode...) included.
    """
    import psycopg2
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    options = {k: v for k, v in conn.extra_dejson.items() if k not in ("cursor", "iam", "sqlalchemy_scheme")}
    return psycopg2.connect(
        host=conn.host,
        port=conn.port or 5432,
        user=conn.login,
        password=conn.password,
        dbname=conn.schema or "postgres",
        application_name="salesforce_to_postgres",
        **options,
    )


def prepare_warehouse(**context: Any) -> None:
    """Create the schema and tables if needed (idempotent DDL from include/sql/schema.sql)."""
    from salesforce_pipeline import load

    try:
        settings = load_settings()
    except SalesforcePipelineError as exc:
        raise _fail_fast(exc) from exc
    conn = warehouse_connection(settings.postgres_conn_id)
    try:
        load.apply_schema(conn, {})
    finally:
        conn.close()
    log.info("warehouse schema 'salesforce' is in place (connection %s)", settings.postgres_conn_id)


def sync_salesforce_object(sobject: str, **context: Any) -> dict[str, Any]:
    """Extract, transform and load one object for this run's data interval; returns the summary."""
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
        conn = warehouse_connection(settings.postgres_conn_id)
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
