"""The admin API over HTTP: JSON endpoints under ``/__admin/`` (no Salesforce auth).

Every endpoint maps onto a method of :class:`salesforce_emulator.store.Org`, so tests in
another process (or the docker-compose stack) can drive the emulator exactly like in-process
tests do. See docs/emulator.md for the list.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from salesforce_emulator.latency import LATENCY_OPTIONS
from salesforce_emulator.limits import LIMIT_OPTIONS, MODEL_OPTIONS
from salesforce_emulator.soql import SoqlError

if TYPE_CHECKING:
    from salesforce_emulator.server import Emulator
    from salesforce_emulator.store import Org

__all__ = ["handle"]

_FAULT_OPTIONS = (
    "after",
    "count",
    "path_contains",
    "endpoint",
    "include_login",
    "seconds",
    "fraction",
    "status",
    "error_code",
    "message",
    "retry_after",
)


class _BadRequest(Exception):
    pass


def _truthy(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


def handle(emulator: Emulator, method: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
    """Dispatch one admin request; returns (HTTP status, JSON-able payload)."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return 400, {"error": "body is not JSON"}
    if not isinstance(payload, dict):
        return 400, {"error": "body must be a JSON object"}
    params = {k: v[0] for k, v in parse_qs(query).items()}
    parts = [p for p in path.split("/") if p][1:]  # drop "__admin"
    try:
        return _route(emulator, method, parts, params, payload)
    except (ValueError, _BadRequest, SoqlError) as exc:
        return 400, {"error": str(exc)}
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}


def _route(
    emulator: Emulator, method: str, parts: list[str], params: dict[str, str], payload: dict[str, Any]
) -> tuple[int, Any]:
    # Every endpoint acts on one org: `?org=<key>` (the first org when left out).
    org = emulator.org_named(params.get("org"))
    head = parts[0] if parts else ""
    if head == "orgs":
        return _orgs(emulator, method, payload)
    if head in ("", "state") and method == "GET":
        return 200, {
            "base_url": emulator.base_url,
            "ca_path": emulator.ca_path,
            "org_id": org.org_id,
            "clock": org.now().isoformat(),
            "api_usage": _usage(org),
            "counters": org.counters,
            "logins": org.logins,
            "faults": [f.to_dict() for f in org.faults.active],
            "hidden_fields": {k: sorted(v) for k, v in org.hidden_fields.items()},
            "deleted_fields": org.deleted_fields,
            "custom_settings": org.custom_settings,
            "credentials": _creds(org),
        }
    if head == "counters":
        if method == "POST" and parts[1:] == ["reset"]:
            org.reset_counters()
            return 200, {"ok": True}
        return 200, {
            "counters": org.counters,
            "logins": org.logins,
            "login_failures": org.login_failures,
            "api_usage": _usage(org),
        }
    if head == "requests" and method == "GET":
        return 200, list(org.requests)
    if head == "records":
        return _records(org, method, parts[1:], params, payload)
    if head == "clock":
        if method == "POST":
            if "advance_seconds" in payload:
                org.advance_clock(float(payload["advance_seconds"]))
            elif "now" in payload:
                org.set_clock(payload["now"], frozen=bool(payload.get("frozen", True)))
            else:
                raise _BadRequest("give 'now' (ISO datetime or null) or 'advance_seconds'")
        return 200, {"now": org.now().isoformat()}
    if head == "hidden_fields":
        if method == "POST":
            sobject = payload.get("sobject")
            fields = payload.get("fields", [])
            mode = payload.get("mode", "set")
            if not isinstance(sobject, str) or not isinstance(fields, list):
                raise _BadRequest("give 'sobject' and a 'fields' list")
            if mode == "set":
                org.set_hidden_fields(sobject, fields)
            elif mode == "hide":
                org.hide_fields(sobject, fields)
            elif mode == "show":
                org.show_fields(sobject, fields or None)
            else:
                raise _BadRequest("mode must be set, hide or show")
        return 200, {k: sorted(v) for k, v in org.hidden_fields.items()}
    if head == "fields":
        return _fields(org, method, parts[1:], payload)
    if head == "calculated" and method == "POST" and len(parts) == 2:
        ids = payload.get("ids")
        if ids is not None and not isinstance(ids, list):
            raise _BadRequest("'ids' must be a list of record Ids")
        changed = org.change_calculated_values(
            parts[1], ids, count=payload.get("count"), delta=payload.get("delta", 1.0)
        )
        return 200, {"changed": changed}
    if head == "settings":
        if method == "POST":
            for name, value in payload.items():
                org.set_custom_setting(name, value)
        return 200, org.custom_settings
    if head == "faults":
        if method == "POST":
            kind = payload.get("kind")
            if not isinstance(kind, str):
                raise _BadRequest("give the fault 'kind'")
            options = {k: payload[k] for k in _FAULT_OPTIONS if k in payload}
            fault = org.inject(kind, **options)
            return 200, fault.to_dict()
        if method == "DELETE":
            if len(parts) == 2:
                return (
                    (200, {"ok": True})
                    if org.faults.remove(int(parts[1]))
                    else (404, {"error": "no such fault"})
                )
            org.clear_faults()
            return 200, {"ok": True}
        return 200, [f.to_dict() for f in org.faults.active]
    if head == "sessions" and parts[1:] == ["expire"] and method == "POST":
        return 200, {"expired": org.expire_sessions()}
    if head in ("latency", "limits"):
        key = payload.get("org", params.get("org"))
        org = emulator.org_named(key)
        if method in ("PUT", "POST"):
            _set_model(emulator, head, key, payload)
    if head == "latency":
        return 200, {**emulator.model_settings(key), "defaults": emulator.model_defaults}
    if head == "limits":
        if method in ("PUT", "POST"):
            if "daily_limit" in payload:
                org.set_daily_limit(int(payload["daily_limit"]))
            if "used" in payload:
                org.set_api_usage(int(payload["used"]))
            if "concurrent_limit" in payload:
                value = payload["concurrent_limit"]
                org.concurrent_limit = None if value is None else int(value)
        return 200, {"api_usage": _usage(org), **emulator.model_settings(key)}
    if head == "bulk":
        if method == "POST" and "in_progress_polls" in payload:
            org.set_bulk_in_progress_polls(int(payload["in_progress_polls"]))
        return 200, {
            "in_progress_polls": org.bulk_in_progress_polls,
            "jobs": [
                {"id": j.id, "operation": j.operation, "state": j.state, "polls": j.polls}
                for j in org.bulk_jobs.all()
            ],
        }
    if head == "query" and method == "POST":
        soql = payload.get("q")
        if not isinstance(soql, str):
            raise _BadRequest("give the SOQL as 'q'")
        return 200, org.query(soql, include_deleted=bool(payload.get("include_deleted", False)))
    return 404, {"error": f"no admin endpoint {method} /__admin/{'/'.join(parts)}"}


_LEGACY_LIMITS = ("daily_limit", "used", "concurrent_limit")  # these act on ?org (the first org)


def _set_model(emulator: Emulator, head: str, key: str | None, payload: dict[str, Any]) -> None:
    """PUT/POST /__admin/latency or /__admin/limits: the model's settings of the org named by
    ``?org=`` or ``"org"`` (*key*), or of every org (later ones too) when neither is given."""
    allowed = LATENCY_OPTIONS if head == "latency" else LIMIT_OPTIONS
    extra = ("org",) if head == "latency" else ("org", *_LEGACY_LIMITS)
    unknown = sorted(set(payload) - set(allowed) - set(extra))
    if unknown:
        raise _BadRequest(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
    changes = {k: payload[k] for k in allowed if k in payload}
    if head == "latency":
        emulator.set_latency(key, **changes)
    elif changes:
        emulator.set_limits(key, **changes)


def _orgs(emulator: Emulator, method: str, payload: dict[str, Any]) -> tuple[int, Any]:
    """GET: every hosted org with its Organization Id and credentials; POST {"key", "accounts",
    "contacts", "seed", "daily_limit", ...}: host another org (its credentials come from its key)."""
    if method == "POST":
        key = payload.get("key")
        if not isinstance(key, str) or not key:
            raise _BadRequest("give the new org's 'key'")
        options = {k: payload[k] for k in _ORG_OPTIONS if k in payload}
        org = emulator.add_org(key, **options)
        return 201, {"key": key, "org_id": org.org_id, "credentials": _creds(org)}
    return 200, {
        key: {"org_id": org.org_id, "org_name": org.org_name, "credentials": _creds(org)}
        for key, org in emulator.orgs.items()
    }


_ORG_OPTIONS = (
    "accounts",
    "contacts",
    "seed",
    "daily_limit",
    "now",
    "period_days",
    "deleted_share",
    "calculated_fields",
    *MODEL_OPTIONS,
)
_FIELD_OPTIONS = ("label", "length", "precision", "scale", "picklist_values")


def _fields(org: Org, method: str, parts: list[str], payload: dict[str, Any]) -> tuple[int, Any]:
    """Custom fields of one object: list (hidden ones flagged), add, retype, delete, restore."""
    if not parts:
        raise _BadRequest("give the sObject: /__admin/fields/{sobject}")
    sobject = parts[0]
    if len(parts) == 1:
        if method == "GET":
            sdef = org.sobject(sobject)
            if sdef is None:
                raise _BadRequest(f"unknown sObject {sobject!r}")
            return 200, {"fields": org.fields(sdef.name), "deleted": org.deleted_fields.get(sdef.name, [])}
        if method == "POST":
            name = payload.get("name")
            if not isinstance(name, str):
                raise _BadRequest("give the field's 'name'")
            if payload.get("calculated"):
                return 201, org.add_calculated_field(sobject, name)
            values = payload.get("values")
            if values is not None and not isinstance(values, dict):
                raise _BadRequest("'values' must map record Ids to values")
            options = {k: payload[k] for k in _FIELD_OPTIONS if k in payload}
            described = org.add_field(
                sobject,
                name,
                payload.get("type", "string"),
                values=values,
                default=payload.get("default"),
                **options,
            )
            return 201, described
    name = parts[1]
    if len(parts) == 2:
        if method == "PATCH":
            options = {k: payload[k] for k in _FIELD_OPTIONS if k in payload and k != "label"}
            return 200, org.retype_field(sobject, name, payload.get("type"), **options)
        if method == "DELETE":
            org.remove_field(sobject, name)
            return 200, {"deleted": name}
    if len(parts) == 3 and parts[2] == "restore" and method == "POST":
        return 200, org.restore_field(sobject, name)
    raise _BadRequest(f"unsupported: {method} /__admin/fields/{'/'.join(parts)}")


def _usage(org: Org) -> dict[str, int]:
    used, maximum = org.api_usage
    return {"used": used, "max": maximum}


def _creds(org: Org) -> dict[str, str]:
    c = org.credentials
    return {
        "username": c.username,
        "password": c.password,
        "security_token": c.security_token,
        "consumer_key": c.consumer_key,
        "consumer_secret": c.consumer_secret,
    }


def _records(
    org: Org, method: str, parts: list[str], params: dict[str, str], payload: dict[str, Any]
) -> tuple[int, Any]:
    if not parts:
        raise _BadRequest("give the sObject: /__admin/records/{sobject}")
    sobject = parts[0]
    fields = payload.get("fields", {})
    if not isinstance(fields, dict):
        raise _BadRequest("'fields' must be an object")
    stamp = payload.get("system_modstamp", params.get("system_modstamp"))
    if len(parts) == 1:
        if method == "POST":
            return 201, {"id": org.insert(sobject, fields, stamp)}
        return 200, org.snapshot(sobject, include_deleted=_truthy(params.get("include_deleted"), True))
    if parts[1] == "ids" and len(parts) == 2:
        return 200, org.all_ids(sobject, include_deleted=_truthy(params.get("include_deleted"), True))
    record_id = parts[1]
    if len(parts) == 2:
        if method == "GET":
            found = org.get(sobject, record_id)
            return (200, found) if found is not None else (404, {"error": "no such record"})
        if method == "PATCH":
            org.update(sobject, record_id, fields, stamp, touch=payload.get("touch", "user"))
            return 200, org.get(sobject, record_id)
        if method == "DELETE":
            cascade = _truthy(params.get("cascade"), bool(payload.get("cascade", True)))
            org.delete(sobject, record_id, stamp, cascade=cascade)
            return 200, org.get(sobject, record_id)
    if len(parts) == 3 and method == "POST":
        if parts[2] == "undelete":
            org.undelete(sobject, record_id, stamp)
            return 200, org.get(sobject, record_id)
        if parts[2] == "purge":
            org.purge(sobject, record_id)
            return 200, {"purged": record_id}
    raise _BadRequest(f"unsupported: {method} /__admin/records/{'/'.join(parts)}")
