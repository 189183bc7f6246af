"""The callables behind the DAG's tasks: read the run's context, open the connections, call sync.

Kept out of the DAG file so the DAG only wires tasks, and so parsing it imports nothing heavy.
"""

from __future__ import annotations

import logging
from typing import Any

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import OBJECTS, object_spec
from salesforce_pipeline.settings import (
    PipelineSettings,
    SettingsError,
    check_connections,
    load_settings,
    raw_settings,
    selected_objects,
)

log = logging.getLogger(__name__)


def _fail_fast(exc: SalesforcePipelineError) -> Exception:
    """Airflow's retries can help a transient failure, never a wrong password or a spent allowance."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(f"{type(exc).__name__}: {exc} (not retried: retrying cannot fix this)")


def warehouse_connection(conn_id: str, settings: PipelineSettings | None = None):
    """A psycopg2 connection for an Airflow Postgres connection, with the settings' bounded waits.

    PostgresHook.get_conn() hands out psycopg 3 connections whenever psycopg 3 is installed (it is,
    as an Airflow dependency); the loader is written for psycopg2's COPY and sql composables, so
    we connect with psycopg2 from the same Airflow connection, its extras (sslmode...) included.
    """
    import psycopg2
    from airflow.sdk import BaseHook

    from salesforce_pipeline.warehouse import Waits

    conn = BaseHook.get_connection(conn_id)
    options = {k: v for k, v in conn.extra_dejson.items() if k not in ("cursor", "iam", "sqlalchemy_scheme")}
    waits = Waits.from_settings(settings) if settings else Waits()
    # Every statement the pipeline runs waits a bounded time for locks and runs a bounded time.
    options["options"] = f"{options.get('options', '')} {waits.connect_options()}".strip()
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
    """Check the settings and connections, and create or upgrade the schema when it is not current."""
    from salesforce_pipeline.warehouse import Waits, apply_schema

    try:
        settings = load_settings()
        check_connections(settings)
    except SettingsError as exc:
        # The sync tasks will not run (upstream failed): their objects' audit shows why.
        try:
            objects = selected_objects(context["params"].get("objects"))
        except SettingsError:
            objects = list(OBJECTS)
        for sobject in objects:
            _audit_unstarted_attempt(sobject, context, getattr(context.get("ti"), "try_number", None), exc)
        raise _fail_fast(exc) from exc
    conn = warehouse_connection(settings.postgres_conn_id, settings)
    try:
        apply_schema(conn, Waits.from_settings(settings))
    finally:
        conn.close()
    log.info("warehouse schema 'salesforce' is in place (connection %s)", settings.postgres_conn_id)


def sync_salesforce_object(sobject: str, **context: Any) -> dict[str, Any]:
    """Extract, transform and load one object for this run's data interval; returns the summary."""
    from airflow.sdk.exceptions import AirflowSkipException

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.sync import SyncRequest, sync_object

    params = context["params"]
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", None)
    try:
        selected = selected_objects(params.get("objects"))
        if sobject not in selected:
            raise AirflowSkipException(f"{sobject} is not among the objects chosen for this run ({selected})")
        settings = load_settings()
        check_connections(settings)
    except SettingsError as exc:
        _audit_unstarted_attempt(sobject, context, try_number, exc)
        raise _fail_fast(exc) from exc
    try:
        request = SyncRequest(
            spec=object_spec(sobject),
            settings=settings,
            dag_run_id=context["run_id"],
            interval_start=context["data_interval_start"],
            interval_end=context["data_interval_end"],
            full_refresh=bool(params.get("full_refresh", False)),
            method=params.get("extraction_method", "auto"),
            try_number=try_number,
        )
        hook = SalesforcePipelineHook(salesforce_conn_id=settings.salesforce_conn_id)
        log.info(
            "%s: Salesforce connection %s, authentication mode %s",
            sobject,
            settings.salesforce_conn_id,
            hook.auth_mode,
        )
    except SalesforcePipelineError as exc:
        _audit_unstarted_attempt(sobject, context, try_number, exc, settings)
        if exc.retryable:
            raise
        raise _fail_fast(exc) from exc
    conn = warehouse_connection(settings.postgres_conn_id, settings)
    try:
        summary = sync_object(request, hook, conn)
    except SalesforcePipelineError as exc:
        if exc.retryable:
            raise
        raise _fail_fast(exc) from exc
    finally:
        conn.close()
        hook.log_api_usage()
    return summary.as_dict()


def sweep_salesforce_object(sobject: str, **context: Any) -> dict[str, Any]:
    """Compare the whole object with the warehouse and re-read what differs, when a sweep is due."""
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowSkipException

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.sweep import run_sweep, sweep_due

    try:
        if sobject not in selected_objects(context["params"].get("objects")):
            raise AirflowSkipException(f"{sobject} is not among the objects chosen for this run")
        settings = load_settings()
    except SettingsError as exc:
        raise _fail_fast(exc) from exc
    conn = warehouse_connection(settings.postgres_conn_id, settings)
    hook = None
    try:
        if not sweep_due(conn, sobject, settings.sweep, datetime.now(UTC)):
            raise AirflowSkipException(
                f"{sobject}: no sweep due (setting sweep={settings.sweep!r}; see salesforce.load_audit, mode 'sweep')"
            )
        hook = SalesforcePipelineHook(salesforce_conn_id=settings.salesforce_conn_id)
        summary = run_sweep(
            object_spec(sobject),
            settings,
            hook,
            conn,
            dag_run_id=context["run_id"],
            extra_fields=settings.extra_fields.get(sobject, ()),
            try_number=getattr(context.get("ti"), "try_number", None),
        )
    except SalesforcePipelineError as exc:
        if exc.retryable:
            raise
        raise _fail_fast(exc) from exc
    finally:
        conn.close()
        if hook is not None:
            hook.log_api_usage()
    return summary.as_dict()


def _audit_unstarted_attempt(
    sobject: str,
    context: dict[str, Any],
    try_number: int | None,
    exc: Exception,
    settings: PipelineSettings | None = None,
) -> None:
    """A failed attempt that never reached sync_object (settings, connections) gets its audit row
    too, when the warehouse can be reached: the data team reads failures in one place."""
    from datetime import UTC, datetime

    from salesforce_pipeline import audit
    from salesforce_pipeline.warehouse import apply_schema

    conn_id = settings.postgres_conn_id if settings else _postgres_conn_id_of_raw_settings()
    try:
        conn = warehouse_connection(conn_id, settings)
    except Exception:
        log.warning(
            "%s: the failure could not be recorded in salesforce.load_audit (warehouse %s unreachable)",
            sobject,
            conn_id,
        )
        return
    try:
        apply_schema(conn)
        now = datetime.now(UTC)
        attempt = audit.start_attempt(
            conn,
            dag_run_id=context["run_id"],
            sobject=sobject,
            mode="full_refresh" if context["params"].get("full_refresh") else "incremental",
            method=None,
            window_start=context["data_interval_start"],
            window_end=context["data_interval_end"],
            started_at=now,
            try_number=try_number,
        )
        try:
            attempt.fail_before_start(str(exc))
        finally:
            attempt.close()
    except Exception:
        log.warning("%s: the failure could not be recorded in salesforce.load_audit", sobject, exc_info=True)
    finally:
        conn.close()


def _postgres_conn_id_of_raw_settings() -> str:
    """The warehouse conn id of settings that failed validation, when it alone is usable."""
    try:
        raw = raw_settings()
    except SettingsError:
        return PipelineSettings.postgres_conn_id
    conn_id = raw.get("postgres_conn_id", PipelineSettings.postgres_conn_id)
    return conn_id if isinstance(conn_id, str) and conn_id else PipelineSettings.postgres_conn_id
