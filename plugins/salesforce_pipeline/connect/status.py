"""What the Orgs page shows: every org in the registry with its connection's authentication type
(never a secret), its Salesforce Organization Id and each object's last load, read from Airflow's
database and the warehouse's `salesforce_pipeline.org_status`."""

from __future__ import annotations

import logging
from typing import Any

from salesforce_pipeline.auth import CLIENT_CREDENTIALS, SECURITY_TOKEN
from salesforce_pipeline.connect.forms import AUTH_TYPES, fields_of
from salesforce_pipeline.connect.onboarding import registry
from salesforce_pipeline.registry import LEGACY_ORG, dag_id, default_schema
from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

STATUS_SQL = (
    "SELECT org, organization_id, sobject, status, last_success_at, freshness_lag, live_rows, rows_upserted, "
    "api_calls_last_run, last_attempt_status, last_error FROM salesforce_pipeline.org_status"
)


def _connection(conn_id: str):
    from airflow.models import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        if conn is not None:
            session.expunge(conn)
        return conn


def _auth_type(conn: Any) -> str | None:
    if conn is None:
        return None
    declared = conn.extra_dejson.get("auth_type")
    if declared in AUTH_TYPES:
        return declared
    return CLIENT_CREDENTIALS if conn.extra_dejson.get("consumer_key") else SECURITY_TOKEN


def _non_secret_fields(conn: Any, auth_type: str | None) -> dict[str, str]:
    if conn is None or auth_type is None:
        return {}
    values = {"login": conn.login or "", **{k: str(v) for k, v in conn.extra_dejson.items()}}
    return {f.name: values.get(f.name, "") for f in fields_of(auth_type) if not f.secret}


def saved_secrets(org_key: str) -> dict[str, str]:
    """The saved connection's secrets, for an edit that leaves them blank (never rendered)."""
    conn = _connection(_conn_id(org_key, registry()))
    if conn is None:
        return {}
    extra = conn.extra_dejson
    return {
        "password": conn.password or "",
        **{k: str(extra.get(k) or "") for k in ("consumer_secret", "security_token")},
    }


def _conn_id(org_key: str, settings: dict[str, Any]) -> str:
    entry = settings.get("orgs", {}).get(org_key) or {}
    return entry.get("salesforce_conn_id", f"salesforce_{org_key}")


def _warehouse_status(settings: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """Each org's rows of org_status, or why they could not be read (the page still shows the orgs)."""
    import psycopg2
    import psycopg2.extras
    from airflow.models import Connection

    conn_id = settings.get("postgres_conn_id", PipelineSettings.postgres_conn_id)
    try:
        conn = Connection.get_connection_from_secrets(conn_id)
        db = psycopg2.connect(
            host=conn.host,
            port=conn.port or 5432,
            user=conn.login,
            password=conn.password,
            dbname=conn.schema or "postgres",
            connect_timeout=5,
            application_name="salesforce_connect_page",
            options="-c statement_timeout=10000",
        )
    except Exception as exc:  # the page must render without the warehouse
        log.warning("Connect Salesforce: warehouse %s unreachable: %s", conn_id, type(exc).__name__)
        return {}, f"The warehouse (connection {conn_id}) could not be reached, so load status is not shown."
    try:
        with db.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute("SELECT to_regclass('salesforce_pipeline.org_status') IS NOT NULL AS present")
            if not cur.fetchone()["present"]:
                return {}, None
            cur.execute(STATUS_SQL)
            rows: dict[str, list[dict[str, Any]]] = {}
            for row in cur.fetchall():
                rows.setdefault(row["org"], []).append(dict(row))
            return rows, None
    finally:
        db.close()


def legacy_connection_id(settings: dict[str, Any]) -> str | None:
    """The single org's connection of a deployment without a registry, if it has one."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models import Connection

    conn_id = settings.get("salesforce_conn_id", "salesforce_default")
    try:
        Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    return conn_id


def org_rows() -> dict[str, Any]:
    """Every registered org with its load status, for the orgs page."""
    settings = registry()
    orgs = settings.get("orgs")
    # Without a registry, the single org is shown when its connection exists.
    single = [LEGACY_ORG] if not isinstance(orgs, dict) and legacy_connection_id(settings) else []
    keys = sorted(orgs) if isinstance(orgs, dict) else single
    loads, problem = _warehouse_status(settings)
    return {"rows": [_row(key, settings, loads.get(key, [])) for key in keys], "problem": problem}


def org_row(org_key: str) -> dict[str, Any] | None:
    """One registered org with its load status, or None when the key is not registered."""
    settings = registry()
    if org_key not in (settings.get("orgs") or {}):
        return None
    loads, _problem = _warehouse_status(settings)
    return _row(org_key, settings, loads.get(org_key, []))


def _row(key: str, settings: dict[str, Any], loads: list[dict[str, Any]]) -> dict[str, Any]:
    entry = (settings.get("orgs") or {}).get(key) or {}
    conn_id = (
        _conn_id(key, settings)
        if settings.get("orgs")
        else settings.get("salesforce_conn_id", "salesforce_default")
    )
    conn = _connection(conn_id)
    auth_type = _auth_type(conn)
    return {
        "key": key,
        "editable": bool(settings.get("orgs")),
        "enabled": entry.get("enabled", True) is not False,
        "conn_id": conn_id,
        "connection_found": conn is not None,
        "auth_type": auth_type,
        "auth_title": AUTH_TYPES[auth_type]["title"] if auth_type else "no connection saved in Airflow",
        "fields": _non_secret_fields(conn, auth_type),
        "schema": entry.get("schema", default_schema(key)) if settings.get("orgs") else "salesforce",
        "dag_id": dag_id(key) if settings.get("orgs") else dag_id(LEGACY_ORG),
        "organization_id": next((r["organization_id"] for r in loads if r.get("organization_id")), None),
        "loads": sorted(loads, key=lambda r: r["sobject"]),
    }
