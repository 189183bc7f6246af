"""The callables behind the DAG's tasks: read the run's context, open the connections, call sync.

Kept out of the DAG file so the DAG only wires tasks, and so parsing it imports nothing heavy.
Every task is for one org (`org`, a registry key): it reads the top level of the settings and
that org's entry only, and every log line it writes carries `org=<key>`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import OBJECTS, asset_name, object_spec
from salesforce_pipeline.registry import LEGACY_ORG, LEGACY_SCHEMA, default_schema, org_settings
from salesforce_pipeline.settings import (
    PipelineSettings,
    SettingsError,
    check_connections,
    raw_settings,
    selected_objects,
)

log = logging.getLogger(__name__)


def _fail_fast(exc: SalesforcePipelineError, org: str) -> Exception:
    """Airflow's retries can help a transient failure, never a wrong password or a spent allowance."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(
        f"org {org!r}: {type(exc).__name__}: {exc} (not retried: retrying cannot fix this)"
    )


def _reraise(exc: SalesforcePipelineError, org: str) -> NoReturn:
    """A transient failure goes to Airflow's retries as it is; any other fails the task for good."""
    if exc.retryable:
        raise exc
    raise _fail_fast(exc, org) from exc


@contextmanager
def org_logging(org: str) -> Iterator[None]:
    """Every log line written inside (ours, the hook's, Airflow's) carries `org=<key>`."""
    import structlog

    with structlog.contextvars.bound_contextvars(org=org):
        yield


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
        application_name=f"salesforce_to_postgres:{settings.org if settings else ''}"[:63],
        **options,
    )


def _settings(org: str, context: dict[str, Any], sobject: str | None) -> PipelineSettings:
    """The org's validated settings and connections, or (after auditing the failure) the
    exception to raise. Skips an org that is disabled in the registry."""
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        settings = org_settings(raw_settings(), org)
    except SettingsError as exc:
        _audit_unstarted_attempts(org, context, sobject, exc)
        raise _fail_fast(exc, org) from exc
    if not settings.enabled:
        raise AirflowSkipException(
            f"org {org!r} is disabled in the registry (orgs.{org}.enabled = false): nothing is loaded and "
            f"its tables in schema {settings.schema} are kept. Set it to true to load it again."
        )
    try:
        check_connections(settings)
    except SettingsError as exc:
        _audit_unstarted_attempts(org, context, sobject, exc, settings)
        raise _fail_fast(exc, org) from exc
    return settings


def prepare_warehouse(org: str = LEGACY_ORG, **context: Any) -> None:
    """Check the org's settings and connections, list it in the warehouse, and create or upgrade
    its schema when it is not current."""
    from salesforce_pipeline import tenancy
    from salesforce_pipeline.warehouse import Waits, apply_schema

    with org_logging(org):
        settings = _settings(org, context, None)
        conn = warehouse_connection(settings.postgres_conn_id, settings)
        try:
            apply_schema(conn, settings.schema, Waits.from_settings(settings))
            tenancy.register_org(conn, settings)
        except SalesforcePipelineError as exc:
            raise _fail_fast(exc, org) from exc
        finally:
            conn.close()
        log.info(
            "org %s: warehouse schema %s is in place (connection %s); Salesforce connection %s",
            org,
            settings.schema,
            settings.postgres_conn_id,
            settings.salesforce_conn_id,
        )


def sync_salesforce_object(sobject: str, org: str = LEGACY_ORG, **context: Any) -> dict[str, Any]:
    """Extract, transform and load one object of one org for this run's data interval."""
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.sync import SyncRequest, sync_object

    with org_logging(org):
        _skip_unless_selected(sobject, context, org)
        interval_start, interval_end = _data_interval(context, org)
        settings = _settings(org, context, sobject)
        params = context["params"]
        try_number = getattr(context.get("ti"), "try_number", None)
        try:
            request = SyncRequest(
                spec=object_spec(sobject),
                settings=settings,
                dag_run_id=context["run_id"],
                interval_start=interval_start,
                interval_end=interval_end,
                full_refresh=bool(params.get("full_refresh", False)),
                method=params.get("extraction_method", "auto"),
                try_number=try_number,
            )
            hook = SalesforcePipelineHook(salesforce_conn_id=settings.salesforce_conn_id)
            log.info(
                "org %s, %s: Salesforce connection %s, authentication mode %s, schema %s",
                org,
                sobject,
                settings.salesforce_conn_id,
                hook.auth_mode,
                settings.schema,
            )
        except SalesforcePipelineError as exc:
            _audit_unstarted_attempts(org, context, sobject, exc, settings)
            _reraise(exc, org)
        conn = warehouse_connection(settings.postgres_conn_id, settings)
        try:
            # Slices stage through connections of their own (max_parallel_slices at once).
            summary = sync_object(
                request, hook, conn, connect=lambda: warehouse_connection(settings.postgres_conn_id, settings)
            )
        except SalesforcePipelineError as exc:
            _reraise(exc, org)
        finally:
            conn.close()
            hook.log_api_usage()
        _describe_asset_event(
            context,
            settings,
            sobject,
            window=summary.window,
            mode=summary.mode,
            extracted=summary.extracted,
            upserted=summary.upserted,
            deleted=summary.deleted,
            rejected=summary.rejected,
        )
        return summary.as_dict()


def sweep_salesforce_object(sobject: str, org: str = LEGACY_ORG, **context: Any) -> dict[str, Any]:
    """When due, compare the whole object with the warehouse and re-read what differs (setting
    ``sweep``), and read its formula and roll-up fields again (setting ``calculated_refresh``)."""
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowSkipException

    from salesforce_pipeline.calculated import refresh_due
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.sweep import sweep_due

    with org_logging(org):
        _skip_unless_selected(sobject, context, org)
        settings = _settings(org, context, sobject)
        conn = warehouse_connection(settings.postgres_conn_id, settings)
        hook = None
        result: dict[str, Any] = {}
        try:
            now = datetime.now(UTC)
            sweep_now = sweep_due(conn, settings.schema, sobject, settings.sweep, now)
            refresh_now = refresh_due(conn, settings.schema, sobject, settings.calculated_refresh, now)
            if not (sweep_now or refresh_now):
                raise AirflowSkipException(
                    f"{sobject}: no sweep due (setting sweep={settings.sweep!r}) and no refresh of calculated "
                    f"fields due (setting calculated_refresh={settings.calculated_refresh!r}); see "
                    f"{settings.schema}.load_audit, modes 'sweep' and 'calculated_refresh'"
                )
            hook = SalesforcePipelineHook(salesforce_conn_id=settings.salesforce_conn_id)
            result = _sweep_and_refresh(sobject, settings, hook, conn, context, sweep_now, refresh_now)
        except SalesforcePipelineError as exc:
            _reraise(exc, org)
        finally:
            conn.close()
            if hook is not None:
                hook.log_api_usage()
        return result


def _sweep_and_refresh(
    sobject: str, settings: Any, hook: Any, conn: Any, context: dict[str, Any], sweep: bool, refresh: bool
) -> dict[str, Any]:
    """The sweep and the calculated-field refresh, whichever are due; what they did."""
    from salesforce_pipeline.calculated import refresh_calculated
    from salesforce_pipeline.sweep import run_sweep

    result: dict[str, Any] = {}
    try_number = getattr(context.get("ti"), "try_number", None)
    if sweep:
        summary = run_sweep(
            object_spec(sobject),
            settings,
            hook,
            conn,
            dag_run_id=context["run_id"],
            extra_fields=settings.extra_fields.get(sobject, ()),
            try_number=try_number,
        )
        result.update(summary.as_dict())
        _describe_asset_event(
            context, settings, sobject, mode="sweep", differences=summary.differences, written=summary.written
        )
    if refresh:
        calculated = refresh_calculated(
            object_spec(sobject), settings, hook, conn, dag_run_id=context["run_id"], try_number=try_number
        )
        result["calculated_refresh"] = calculated.as_dict()
    return result


def _data_interval(context: dict[str, Any], org: str) -> tuple[Any, Any]:
    """The run's window; a run triggered without a logical date has none, and is refused."""
    from airflow.sdk.exceptions import AirflowFailException

    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise AirflowFailException(
            f"org {org!r}: this run has no data interval (it was triggered without a logical date), so it "
            "cannot tell which day to load; trigger it again with a logical date (the Trigger form's default)."
        )
    return start, end


def _skip_unless_selected(sobject: str, context: dict[str, Any], org: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        selected = selected_objects(context["params"].get("objects"))
    except SettingsError as exc:
        raise _fail_fast(exc, org) from exc
    if sobject not in selected:
        raise AirflowSkipException(f"{sobject} is not among the objects chosen for this run ({selected})")


def _describe_asset_event(
    context: dict[str, Any], settings: PipelineSettings, sobject: str, **figures: Any
) -> None:
    """The Assets view says what landed: the org, the object and the run's figures."""
    from airflow.sdk import Asset

    events = context.get("outlet_events")
    if events is None:
        return
    table = asset_name(settings.schema, OBJECTS[sobject].table)
    events[Asset(name=table)].extra = {
        "org": settings.org,
        "object": sobject,
        "schema": settings.schema,
        **figures,
    }


def _audit_unstarted_attempts(
    org: str,
    context: dict[str, Any],
    sobject: str | None,
    exc: Exception,
    settings: PipelineSettings | None = None,
) -> None:
    """A failed attempt that never reached sync_object (settings, connections, login set-up)
    gets its audit row too, in the org's schema, when the warehouse can be reached: the data
    team reads every failure in one place. `sobject` None: every object of the run."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from salesforce_pipeline import audit, tenancy
    from salesforce_pipeline.warehouse import apply_schema

    if settings is None:
        settings = _best_effort_settings(org)
    if sobject is not None:
        objects = [sobject]
    else:
        try:
            objects = selected_objects(context["params"].get("objects"))
        except SettingsError:
            objects = list(OBJECTS)
    try:
        conn = warehouse_connection(settings.postgres_conn_id, replace(settings, org=org))
    except Exception:
        log.warning(
            "org %s: the failure could not be recorded in %s.load_audit (warehouse %s unreachable)",
            org,
            settings.schema,
            settings.postgres_conn_id,
        )
        return
    try:
        apply_schema(conn, settings.schema)
        tenancy.register_org(conn, settings)
        now = datetime.now(UTC)
        for name in objects:
            attempt = audit.start_attempt(
                conn,
                settings.schema,
                dag_run_id=context["run_id"],
                sobject=name,
                mode="full_refresh" if context["params"].get("full_refresh") else "incremental",
                method=None,
                window_start=context.get("data_interval_start"),
                window_end=context.get("data_interval_end") or now,
                started_at=now,
                try_number=getattr(context.get("ti"), "try_number", None),
            )
            try:
                attempt.fail_before_start(str(exc))
            finally:
                attempt.close()
    except Exception:
        log.warning(
            "org %s: the failure could not be recorded in %s.load_audit", org, settings.schema, exc_info=True
        )
    finally:
        conn.close()


def _best_effort_settings(org: str) -> PipelineSettings:
    """Where an org whose settings failed validation records that failure: its entry's schema
    and connections when they alone are usable, the defaults otherwise."""
    from salesforce_pipeline.registry import SCHEMA_NAME
    from salesforce_pipeline.settings import validate

    try:
        raw = raw_settings()
    except SettingsError:
        raw = {}
    orgs = raw.get("orgs")
    legacy = org == LEGACY_ORG and orgs is None
    entry = orgs.get(org) if isinstance(orgs, dict) else None
    entry = entry if isinstance(entry, dict) else {}
    schema = LEGACY_SCHEMA if legacy else entry.get("schema", default_schema(org))
    if not (isinstance(schema, str) and SCHEMA_NAME.fullmatch(schema)):
        schema = default_schema(org)
    usable: dict[str, Any] = {} if legacy else {"salesforce_conn_id": f"salesforce_{org}"}
    for source in (raw, entry) if legacy or entry else (raw,):
        for name in ("postgres_conn_id", "salesforce_conn_id"):
            if name == "salesforce_conn_id" and source is raw and not legacy:
                continue  # an org's Salesforce connection is its entry's, never the top level's
            checked, problems = validate({name: source[name]}) if name in source else ({}, [])
            usable.update(checked if not problems else {})
    return PipelineSettings(**usable, org=org, schema=schema)
