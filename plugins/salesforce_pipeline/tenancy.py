"""Many orgs in one warehouse: the shared list of orgs, and the guard that keeps them apart.

Each org loads into its own schema; `salesforce_pipeline.orgs` records which Salesforce org
(Organization Id) each org key reached at its first login. A later login that reaches another
Salesforce org (credentials pasted into the wrong connection, a refreshed sandbox, a domain
typo) fails before anything is written, and so does a second org key reaching an org that is
already recorded under another key: their rows would otherwise land in the wrong customer's
tables. `salesforce_pipeline.org_status` shows every org's freshness in one query.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.sql_files import read_sql, sql_template
from salesforce_pipeline.warehouse import Waits, lock_object, run_ddl

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

SHARED_SCHEMA = "salesforce_pipeline"
#: Bump with every change to shared_schema.sql (written as a comment on salesforce_pipeline.orgs).
SHARED_VERSION = "salesforce_pipeline shared schema 2: orgs and org_status (freshness from the newest window)"


class WrongSalesforceOrg(SalesforcePipelineError):
    """The connection reached a Salesforce org other than the one this org key loads."""

    retryable = False


class SharedSchemaUnavailable(SalesforcePipelineError):
    """The loader may not create schema salesforce_pipeline (a role from before many orgs)."""

    retryable = False


class OrgRegistrationConflict(SalesforcePipelineError):
    """The warehouse's list of orgs disagrees with the registry (a schema another key holds)."""

    retryable = False


def apply_shared_schema(conn: PgConnection, waits: Waits | None = None) -> bool:
    """Create or upgrade `salesforce_pipeline` when the catalog says it is not current."""
    from psycopg2 import errors, sql

    waits = waits or Waits()
    with conn.cursor() as cur:
        cur.execute(read_sql("shared_state.sql"))
        (version,) = cur.fetchone()
    conn.commit()
    if version == SHARED_VERSION:
        return False

    def create(cur: Any) -> bool:
        lock_object(cur, "salesforce_pipeline.schema", waits.object_lock_wait, waits.lock_timeout)
        cur.execute(read_sql("shared_state.sql"))
        if cur.fetchone()[0] == SHARED_VERSION:
            return False
        cur.execute(read_sql("schema_exists.sql"), {"schema": SHARED_SCHEMA})
        if cur.fetchone() is None:
            cur.execute(sql_template("create_schema.sql", schema=sql.Identifier(SHARED_SCHEMA)))
        cur.execute(read_sql("shared_schema.sql"), {"version": SHARED_VERSION})
        return True

    try:
        changed = run_ddl(conn, "creating schema salesforce_pipeline", waits, create)
    except errors.InsufficientPrivilege:
        conn.rollback()
        raise SharedSchemaUnavailable(
            "the warehouse role may not create schema salesforce_pipeline (the list of orgs, the cross-tenant "
            "guard and the org_status view); nothing was loaded. Grant it: GRANT CREATE ON DATABASE <db> TO "
            "<role>, or rerun python -m salesforce_pipeline.roles."
        ) from None
    if changed:
        log.info("warehouse schema salesforce_pipeline created or upgraded to: %s", SHARED_VERSION)
    return changed


def _legacy_without_shared_schema(settings: PipelineSettings, exc: SharedSchemaUnavailable) -> bool:
    """The single org of a deployment from before many orgs runs on as it did (no migration):
    without the shared schema it only loses the guard and the status view, and says so."""
    from salesforce_pipeline.registry import LEGACY_ORG

    if settings.org != LEGACY_ORG:
        return False
    log.warning(
        "%s The load goes on without them, as before many orgs.", str(exc).replace("; nothing was loaded", "")
    )
    return True


def register_org(conn: PgConnection, settings: PipelineSettings) -> bool:
    """Put the org in the shared list (status view), refusing a schema another org key holds.
    False when the single legacy org runs without the shared schema."""
    from psycopg2 import errors

    try:
        apply_shared_schema(conn, Waits.from_settings(settings))
    except SharedSchemaUnavailable as exc:
        if _legacy_without_shared_schema(settings, exc):
            return False
        raise
    try:
        with conn.cursor() as cur:
            cur.execute(
                read_sql("register_org.sql"),
                {"org": settings.org, "schema": settings.schema, "conn_id": settings.salesforce_conn_id},
            )
        conn.commit()
    except errors.UniqueViolation:
        conn.rollback()
        raise OrgRegistrationConflict(
            f"org {settings.org!r}: schema {settings.schema!r} is recorded for another org key in "
            "salesforce_pipeline.orgs; nothing was loaded. If that org was renamed to "
            f"{settings.org!r}, delete its old row: DELETE FROM salesforce_pipeline.orgs WHERE "
            f"schema_name = '{settings.schema}'; otherwise give this org its own schema."
        ) from None
    return True


def check_organization(conn: PgConnection, settings: PipelineSettings, organization_id: str | None) -> None:
    """Fail unless the login reached the Salesforce org recorded for this org key (recording
    it at the org's first login); nothing has been written when this raises."""
    from psycopg2 import errors

    org = settings.org
    if not organization_id:
        raise WrongSalesforceOrg(
            f"org {org!r}: the Salesforce login did not say which organization it reached, so the "
            "cross-tenant check cannot be made; nothing was loaded."
        )
    if not register_org(conn, settings):
        return
    try:
        with conn.cursor() as cur:
            cur.execute(read_sql("org_identity.sql"), {"org": org, "organization_id": organization_id})
            rows = dict(cur.fetchall())
            _refuse_mismatch(settings, organization_id, rows)
            if rows.get(org) is None:
                cur.execute(
                    read_sql("record_organization_id.sql"), {"org": org, "organization_id": organization_id}
                )
                log.info(
                    "org %s: recorded Salesforce Organization Id %s at its first login", org, organization_id
                )
        conn.commit()
    except errors.UniqueViolation:
        # Another org key recorded the same Organization Id between our read and our write.
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute(read_sql("org_identity.sql"), {"org": org, "organization_id": organization_id})
            rows = dict(cur.fetchall())
        conn.commit()
        _refuse_mismatch(settings, organization_id, rows)
        raise
    except BaseException:
        conn.rollback()
        raise


def _refuse_mismatch(settings: PipelineSettings, organization_id: str, rows: dict[str, str | None]) -> None:
    org = settings.org
    recorded = rows.get(org)
    if recorded is not None and recorded != organization_id:
        raise WrongSalesforceOrg(
            f"org {org!r}: connection {settings.salesforce_conn_id!r} logged in to Salesforce org "
            f"{organization_id}, but this org's data in schema {settings.schema!r} came from org {recorded}; "
            "nothing was loaded. Fix the connection's credentials or domain. If the org really changed "
            "(a refreshed sandbox), clear the record and run a full refresh: UPDATE salesforce_pipeline.orgs "
            f"SET organization_id = NULL WHERE org_key = '{org}'."
        )
    others = sorted(key for key, value in rows.items() if key != org and value == organization_id)
    if others:
        raise WrongSalesforceOrg(
            f"org {org!r}: connection {settings.salesforce_conn_id!r} logged in to Salesforce org "
            f"{organization_id}, which org {others[0]!r} already loads; two registry entries must not "
            "reach the same Salesforce org. Nothing was loaded: fix this org's connection, or remove the "
            "duplicate entry."
        )
