"""The Connect Salesforce pages: a FastAPI app the api-server mounts at /salesforce (see
plugins/salesforce_connect_plugin.py), server-rendered, no JavaScript.

Every route requires the permission to edit connections (the auth manager decides: a viewer gets
403, a request without a session 401); every form carries a CSRF token bound to the user and is
refused from another origin; every page escapes what it shows (Jinja2 autoescape), Salesforce's
strings included; no page, redirect, log line or error contains a secret.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from salesforce_pipeline.connect import forms, guards, onboarding, status
from salesforce_pipeline.registry import ORG_KEY, dag_id

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).with_name("templates")


@cache
def _templates() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    env.filters["lag"] = lag
    return env


def lag(value: Any) -> str:
    """A freshness lag as people read it: 2 d 3 h, 17 h 41 min, 12 min."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _secret() -> str:
    from airflow.configuration import conf

    return conf.get("api", "secret_key")


def _user_name(request: Request) -> str:
    user = request.state.connect_user
    return user.get_name()


def _remember_user():
    from airflow.api_fastapi.core_api.security import get_user

    # The user the auth manager resolved for this request (the REST API's own dependency),
    # kept for the CSRF token and the audit log.
    async def remember(request: Request, user=Depends(get_user)) -> None:  # noqa: B008 - FastAPI's idiom
        request.state.connect_user = user

    return remember


def create_app() -> FastAPI:
    """The Connect Salesforce FastAPI app, every route behind the connection-edit permission."""
    from airflow.api_fastapi.core_api.security import requires_access_connection

    app = FastAPI(
        title="Connect Salesforce",
        # Every route, the app's own included: no /docs or /openapi.json left unguarded.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(requires_access_connection("PUT")), Depends(_remember_user())],
    )
    app.include_router(router)
    return app


# The routes; create_app puts them behind the permission check (an APIRouter alone checks nothing).
router = APIRouter()


def _page(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    user = _user_name(request)
    html = (
        _templates()
        .get_template(name)
        .render(
            user=user,
            csrf=guards.csrf_token(_secret(), user),
            prefix=request.scope.get("root_path", ""),
            auth_types=forms.AUTH_TYPES,
            **values,
        )
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


async def _form_of(request: Request) -> dict[str, str]:
    """The posted form, refused unless it comes from this site with this user's CSRF token."""
    data = await request.form()
    submitted = {k: str(v) for k, v in data.items()}
    if not guards.same_origin(
        request.headers.get("origin"), request.headers.get("referer"), request.headers.get("host")
    ) or not guards.csrf_ok(_secret(), _user_name(request), submitted.get("csrf_token")):
        from fastapi import HTTPException

        raise HTTPException(
            status_code=403, detail="The form expired or came from another site; reload the page."
        )
    return submitted


@router.get("/", response_class=HTMLResponse)
def orgs_page(request: Request) -> HTMLResponse:
    """Every registered org with its load status."""
    return _page(request, "orgs.html", orgs=status.org_rows())


@router.get("/connect", response_class=HTMLResponse)
def connect_page(request: Request, auth_type: str = "") -> HTMLResponse:
    """The Connect form: choose the authentication type, then its fields."""
    chosen = auth_type if auth_type in forms.AUTH_TYPES else ""
    return _page(
        request, "connect.html", chosen=chosen, fields=_fields(chosen), kept={}, problems={}, new_org=True
    )


@router.post("/connect", response_class=HTMLResponse)
async def connect(request: Request) -> HTMLResponse:
    """Log in with what was typed; on success save the org and start its first load."""
    submitted = await _form_of(request)
    sub = forms.read_submission(submitted, new_org=True)
    if not sub.problems and sub.org_key in onboarding.registry().get("orgs", {}):
        sub.problems["org_key"] = f"Org key {sub.org_key!r} is taken: open it from the Orgs page to edit it."
    return _connect_or_explain(request, sub, new_org=True)


@router.get("/orgs/{org_key}", response_class=HTMLResponse)
def org_page(request: Request, org_key: str) -> HTMLResponse:
    """One org: its connection, status per object, and links to its runs."""
    return _page(request, "org.html", org=_known_org(org_key))


@router.get("/orgs/{org_key}/edit", response_class=HTMLResponse)
def edit_page(request: Request, org_key: str, auth_type: str = "") -> HTMLResponse:
    """The form for an org's connection, saved secrets never sent back."""
    row = _known_org(org_key)
    chosen = auth_type if auth_type in forms.AUTH_TYPES else row["auth_type"]
    kept = {**row["fields"], "org_key": org_key} if chosen == row["auth_type"] else {"org_key": org_key}
    fields = _fields(chosen)
    return _page(
        request, "connect.html", chosen=chosen, fields=fields, kept=kept, problems={}, new_org=False, org=row
    )


@router.post("/orgs/{org_key}/edit", response_class=HTMLResponse)
async def edit(request: Request, org_key: str) -> HTMLResponse:
    """Rotate, edit or switch an org's credentials (logged in before anything is saved)."""
    row = _known_org(org_key)
    submitted = {**await _form_of(request), "org_key": org_key}
    # Blank secrets keep the saved ones, but only for the same authentication type.
    keep = status.saved_secrets(org_key) if submitted.get("auth_type") == row["auth_type"] else None
    sub = forms.read_submission(submitted, new_org=False, keep=keep)
    return _connect_or_explain(request, sub, new_org=False, org=row)


@router.post("/orgs/{org_key}/enabled")
async def enable(request: Request, org_key: str) -> RedirectResponse:
    """Enable or disable an org."""
    _known_org(org_key)
    submitted = await _form_of(request)
    onboarding.set_enabled(org_key, submitted.get("enabled") == "true", _user_name(request))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/orgs/{org_key}", status_code=303)


def _connect_or_explain(
    request: Request, sub: forms.Submission, *, new_org: bool, org: Any = None
) -> HTMLResponse:
    """The form again with what is wrong (nothing saved), or the connected page."""
    values: dict[str, Any] = {
        "chosen": sub.auth_type,
        "fields": _fields(sub.auth_type),
        "new_org": new_org,
        "org": org,
    }
    kept = sub.kept_for_the_form()
    if sub.problems:
        return _page(request, "connect.html", 400, kept=kept, problems=sub.problems, **values)
    outcome = onboarding.try_login(sub)
    if not outcome.ok:
        return _page(
            request,
            "connect.html",
            400,
            kept=kept,
            problems={outcome.field or "form": outcome.message},
            **values,
        )
    try:
        changed = onboarding.save_org(sub, _user_name(request), outcome, new_org=new_org)
    except onboarding.RegistryNotEditable as exc:
        return _page(request, "connect.html", 409, kept=kept, problems={"form": str(exc)}, **values)
    if new_org:
        onboarding.start_first_load(sub.org_key, _user_name(request))
    return _page(
        request,
        "connected.html",
        sub=sub,
        outcome=outcome,
        changed=changed,
        new_org=new_org,
        dag=dag_id(sub.org_key),
    )


def _fields(auth_type: str) -> tuple[forms.Field, ...]:
    return forms.fields_of(auth_type) if auth_type in forms.AUTH_TYPES else ()


def _known_org(org_key: str) -> dict[str, Any]:
    from fastapi import HTTPException

    row = status.org_row(org_key) if ORG_KEY.fullmatch(org_key) else None
    if row is None:
        raise HTTPException(status_code=404, detail="No such org in the registry.")
    return row
