"""What the Connect page does on the server: log in once, save the connection and the registry
entry, record who did what, and start the org's first load. Runs inside Airflow's api-server,
which has the metadata database (task code never imports this module)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from salesforce_pipeline.connect.forms import Submission, changed_fields, connection_fields
from salesforce_pipeline.connect.guards import (
    EgressRefused,
    allowed_hosts_ca_bundle,
    check_instance,
    check_login_target,
)
from salesforce_pipeline.errors import SalesforceConfigError, SalesforcePipelineError
from salesforce_pipeline.registry import dag_id
from salesforce_pipeline.settings import VARIABLE_NAME

log = logging.getLogger(__name__)

FIRST_LOAD_WAIT_SECONDS = 300
AUDIT_EVENT = "salesforce_connect"
# Which form field a refused login points at, by what the error says.
_FIELD_HINTS = (
    ("Consumer Secret", "consumer_secret"),
    ("Consumer Key", "consumer_key"),
    ("Security Token", "security_token"),
    ("security token", "security_token"),
    ("Username", "login"),
    ("Password", "password"),
    ("Domain", "domain"),
)


@dataclass
class LoginOutcome:
    """What a login check found: success, a message for the page, and the field at fault."""

    ok: bool
    message: str
    field: str | None = None
    organization_id: str | None = None
    instance: str | None = None
    api_calls_left: int | None = None


class RegistryNotEditable(RuntimeError):
    """The registry or the connection comes from the environment, which the page cannot change."""


def try_login(sub: Submission) -> LoginOutcome:
    """Log in once with what the form says (a short timeout, one retry); nothing is saved."""
    from airflow.models import Connection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

    try:
        _base, allowed = check_login_target(sub.values.get("domain"))
    except (EgressRefused, SalesforceConfigError) as exc:
        return LoginOutcome(False, str(exc), "domain")
    fields = connection_fields(sub, allowed_hosts_ca_bundle() if allowed else None)
    extra = {**json.loads(fields["extra"]), "timeout": 20, "max_retries": 1}
    conn = Connection(**{**fields, "extra": json.dumps(extra)})
    hook = SalesforcePipelineHook.for_connection(conn)
    try:
        organization_id = hook.organization_id
        instance = hook.login_result.instance_url
        check_instance(instance)
        remaining, _maximum = hook.daily_api_limit()
    except EgressRefused as exc:
        return LoginOutcome(False, str(exc), "domain")
    except SalesforcePipelineError as exc:
        message = str(exc)
        field = next((name for hint, name in _FIELD_HINTS if hint in message), None)
        return LoginOutcome(False, message, field)
    return LoginOutcome(
        True,
        "Connected",
        organization_id=organization_id,
        instance=instance,
        api_calls_left=remaining,
    )


def registry() -> dict[str, Any]:
    """The settings Variable as saved in Airflow's database ({} when it is not set)."""
    from airflow.models import Variable

    raw = Variable.get(VARIABLE_NAME, default_var=None)
    return json.loads(raw) if raw else {}


def _refuse_environment_overrides(conn_id: str) -> None:
    # A page that saved into the database while the environment wins would change nothing.
    shadows = [
        name
        for name in (f"AIRFLOW_VAR_{VARIABLE_NAME.upper()}", f"AIRFLOW_CONN_{conn_id.upper()}")
        if name in os.environ
    ]
    if shadows:
        raise RegistryNotEditable(
            f"This deployment sets {' and '.join(shadows)} in the environment, which hides what this page "
            "would save in Airflow's database; nothing was saved. Remove it there, or edit it where it is set."
        )


def save_org(sub: Submission, user: str, outcome: LoginOutcome, *, new_org: bool) -> list[str]:
    """Save the connection and the registry entry in one transaction, with an audit record;
    returns the names of the fields that changed (never their values)."""
    from airflow.models import Connection, Log, Variable
    from airflow.utils.session import create_session

    _refuse_environment_overrides(sub.conn_id)
    _base, allowed = check_login_target(sub.values.get("domain"))
    fields = connection_fields(sub, allowed_hosts_ca_bundle() if allowed else None)
    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == sub.conn_id).one_or_none()
        before = _connection_view(conn) if conn else {}
        old_secrets = _secrets(conn.password, conn.extra_dejson) if conn else {}
        if conn is None:
            conn = Connection(**fields)
            session.add(conn)
        else:
            conn.conn_type, conn.login, conn.description = (
                fields["conn_type"],
                fields["login"],
                fields["description"],
            )
            conn.set_password(fields["password"])
            conn.set_extra(fields["extra"])
        settings = registry()
        if "orgs" not in settings:
            settings["orgs"] = _keep_the_single_org(settings)
        entry = settings["orgs"].setdefault(sub.org_key, {})
        entry["salesforce_conn_id"] = sub.conn_id
        Variable.set(VARIABLE_NAME, json.dumps(settings, indent=2), session=session)
        changed = changed_fields(before, _connection_view(conn, fields))
        # Which secrets an edit replaced, by name: the values are compared here and never stored.
        new_secrets = _secrets(fields["password"], json.loads(fields["extra"]))
        rotated = sorted(k for k, v in new_secrets.items() if old_secrets and old_secrets.get(k) != v)
        session.add(
            Log(
                event=f"{AUDIT_EVENT}.{'connect' if new_org else 'edit'}",
                owner=user,
                owner_display_name=user,
                extra=json.dumps(
                    {
                        "org": sub.org_key,
                        "connection": sub.conn_id,
                        "auth_type": sub.auth_type,
                        "changed": changed,
                        "secrets_rotated": rotated,
                        "organization_id": outcome.organization_id,
                    }
                ),
            )
        )
    log.info(
        "Connect Salesforce: %s %s org %s (connection %s, %s); changed: %s",
        user,
        "connected" if new_org else "updated",
        sub.org_key,
        sub.conn_id,
        sub.auth_type,
        ", ".join(changed) or "nothing",
    )
    return changed


def _keep_the_single_org(settings: dict[str, Any]) -> dict[str, Any]:
    """A deployment's first registry entry must not stop the org it loaded before: that org
    joins the registry as `default`, with its schema `salesforce` and its DAG id unchanged."""
    from salesforce_pipeline.connect.status import legacy_connection_id
    from salesforce_pipeline.registry import LEGACY_ORG, LEGACY_SCHEMA

    conn_id = legacy_connection_id(settings)
    if conn_id is None:
        return {}
    log.info(
        "Connect Salesforce: the single org (connection %s) joins the registry as %r", conn_id, LEGACY_ORG
    )
    return {LEGACY_ORG: {"salesforce_conn_id": conn_id, "schema": LEGACY_SCHEMA}}


def _connection_view(conn: Any, fields: dict[str, Any] | None = None) -> dict[str, str]:
    """The non-secret shape of a connection, and a fingerprint of whether each secret is set."""
    if fields is not None:
        extra = json.loads(fields["extra"])
        login = fields["login"]
    else:
        extra = conn.extra_dejson
        login = conn.login
    view = {k: str(v) for k, v in extra.items() if k not in ("consumer_secret", "security_token")}
    view["login"] = login or ""
    return view


def _secrets(password: str | None, extra: dict[str, Any]) -> dict[str, str]:
    found = {
        "password": password or "",
        **{k: str(extra.get(k) or "") for k in ("consumer_secret", "security_token")},
    }
    return {k: v for k, v in found.items() if v}


def set_enabled(org_key: str, enabled: bool, user: str) -> None:
    """Enable or disable an org in the registry, as an audited action of ``user``."""
    from airflow.models import Log, Variable
    from airflow.utils.session import create_session

    _refuse_environment_overrides(f"salesforce_{org_key}")
    with create_session() as session:
        settings = registry()
        entry = settings.get("orgs", {}).get(org_key)
        if entry is None:
            raise KeyError(org_key)
        entry["enabled"] = enabled
        Variable.set(VARIABLE_NAME, json.dumps(settings, indent=2), session=session)
        session.add(
            Log(
                event=f"{AUDIT_EVENT}.{'enable' if enabled else 'disable'}",
                owner=user,
                owner_display_name=user,
                extra=json.dumps({"org": org_key, "changed": ["enabled"], "enabled": enabled}),
            )
        )
    log.info("Connect Salesforce: %s %s org %s", user, "enabled" if enabled else "disabled", org_key)


def start_first_load(org_key: str, user: str, wait_seconds: float = FIRST_LOAD_WAIT_SECONDS) -> None:
    """Ask the DAG processor to parse the DAG file now, and trigger the org's DAG once it exists
    (in the background: the DAG appears within seconds, the page must not wait for it)."""
    _request_reparse()
    threading.Thread(
        target=_trigger_when_parsed,
        args=(dag_id(org_key), user, wait_seconds),
        daemon=True,
        name="first-load",
    ).start()


def _request_reparse() -> None:
    from airflow.models import DagModel
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy.exc import IntegrityError

    try:
        with create_session() as session:
            ours = session.query(DagModel).filter(DagModel.tags.any(name="salesforce")).first()
            if ours is not None and ours.relative_fileloc:
                session.add(DagPriorityParsingRequest(ours.bundle_name, ours.relative_fileloc))
    except IntegrityError:
        pass  # a request for the file is already queued


def _trigger_when_parsed(dag: str, user: str, wait_seconds: float) -> None:
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.models import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        with create_session() as session:
            model = session.get(DagModel, dag)
            ready = model is not None and not model.is_stale and model.has_import_errors is False
        if ready:
            try:
                # With a logical date, as the UI's Trigger form sends it: the run's data interval
                # is the day before it, and an org's first run loads all of history anyway.
                trigger_dag(
                    dag,
                    triggered_by=DagRunTriggeredByType.UI,
                    triggering_user_name=user,
                    logical_date=datetime.now(UTC),
                )
                log.info("Connect Salesforce: first load of %s triggered for %s", dag, user)
            except Exception:
                log.exception("Connect Salesforce: could not trigger %s", dag)
            return
        time.sleep(2)
    log.warning(
        "Connect Salesforce: %s did not appear within %.0f s; its first scheduled run will load it",
        dag,
        wait_seconds,
    )
