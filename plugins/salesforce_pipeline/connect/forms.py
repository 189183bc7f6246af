"""The Connect Salesforce form: each authentication type's fields and help, read into a
connection, with every problem named by its field. Pure: no Airflow, no network.

The two types are the seed's: **Security Token with Username & Password** (quick setup, testing)
and **Connected App, OAuth 2.0 Client Credentials** (recommended for production). A form shows
only the chosen type's fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from salesforce_pipeline.auth import CLIENT_CREDENTIALS, SECURITY_TOKEN
from salesforce_pipeline.domain import normalize_domain
from salesforce_pipeline.errors import SalesforceConfigError
from salesforce_pipeline.provider_info import CONN_TYPE
from salesforce_pipeline.registry import ORG_KEY


@dataclass(frozen=True)
class Field:
    """One input of the Connect form: name, label, help text, and whether it is a secret."""

    name: str
    label: str
    help: str
    secret: bool = False
    required: bool = True
    placeholder: str = ""


ORG_KEY_FIELD = Field(
    "org_key",
    "Org key",
    "A short name for this customer's org: lower-case letters, digits and _ (e.g. acme). It names the "
    "connection salesforce_<key>, the warehouse schema salesforce_<key> and the DAG salesforce_org_<key>.",
    placeholder="acme",
)

AUTH_TYPES: dict[str, dict[str, Any]] = {
    CLIENT_CREDENTIALS: {
        "title": "Connected App (OAuth 2.0 Client Credentials)",
        "summary": "Recommended for production. Salesforce: Setup → App Manager → New Connected App → "
        "Enable OAuth Settings → Enable Client Credentials Flow, with Run As set to a dedicated "
        "integration user whose permission set grants API Enabled and Read on Accounts and Contacts "
        "only. Then Manage Consumer Details shows the key and the secret.",
        "fields": (
            Field(
                "domain",
                "Domain",
                "Your My Domain, e.g. acme.my (Setup → My Domain). Client credentials are refused on "
                "login.salesforce.com.",
                placeholder="acme.my",
            ),
            Field("consumer_key", "Consumer Key", "From the Connected App's Manage Consumer Details."),
            Field(
                "consumer_secret",
                "Consumer Secret",
                "From the same page. It is never shown again after it is saved.",
                secret=True,
            ),
        ),
    },
    SECURITY_TOKEN: {
        "title": "Security Token with Username & Password",
        "summary": "Quick setup, for testing environments. Use a dedicated integration user with API "
        "Enabled and Read on Accounts and Contacts only. Salesforce retires the login this uses in "
        "Summer '27: prefer a Connected App for production.",
        "fields": (
            Field("login", "Username", "The integration user's username, e.g. integration@acme.com."),
            Field("password", "Password", "The integration user's password.", secret=True),
            Field(
                "security_token",
                "Security Token",
                "Salesforce: the user's avatar → Settings → My Personal Information → Reset My Security "
                "Token; the new token arrives by email. It is never shown again after it is saved.",
                secret=True,
            ),
            Field(
                "domain",
                "Domain",
                "Optional: login (production, the default), test (a sandbox), or your My Domain (acme.my).",
                required=False,
                placeholder="login",
            ),
        ),
    },
}


def fields_of(auth_type: str) -> tuple[Field, ...]:
    """The form fields of an authentication type."""
    return AUTH_TYPES[auth_type]["fields"]


@dataclass
class Submission:
    """What a Connect form said, checked; `problems` maps a field name to what to fix."""

    auth_type: str
    org_key: str
    values: dict[str, str]
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def conn_id(self) -> str:
        """The Airflow connection id this org's credentials are saved under."""
        return f"salesforce_{self.org_key}"

    def kept_for_the_form(self) -> dict[str, str]:
        """What the page may show again after a failure: everything typed except the secrets."""
        secrets = {f.name for f in fields_of(self.auth_type) if f.secret}
        return {k: v for k, v in self.values.items() if k not in secrets} | {"org_key": self.org_key}


def read_submission(form: dict[str, str], *, new_org: bool, keep: dict[str, str] | None = None) -> Submission:
    """Check a submitted form. `keep` holds an existing connection's secrets: a blank secret field
    on an edit that keeps the authentication type means "unchanged"."""
    auth_type = form.get("auth_type", "")
    if auth_type not in AUTH_TYPES:
        return Submission(auth_type, "", {}, {"auth_type": "Choose an authentication type."})
    org_key = (form.get("org_key") or "").strip()
    values = {f.name: (form.get(f.name) or "").strip() for f in fields_of(auth_type)}
    sub = Submission(auth_type, org_key, values)
    if new_org and not ORG_KEY.fullmatch(org_key):
        sub.problems["org_key"] = (
            "Org key: 1 to 40 lower-case letters, digits and _, starting with a letter (e.g. acme)."
        )
    for f in fields_of(auth_type):
        if not values[f.name] and f.secret and keep and keep.get(f.name):
            values[f.name] = keep[f.name]
        elif not values[f.name] and f.required:
            sub.problems[f.name] = f"{f.label} is required for {AUTH_TYPES[auth_type]['title']}."
    if values.get("domain") or auth_type == CLIENT_CREDENTIALS:
        try:
            normalize_domain(values.get("domain"))
        except SalesforceConfigError as exc:
            sub.problems.setdefault("domain", str(exc))
    return sub


def connection_fields(sub: Submission, ca_bundle: str | None = None) -> dict[str, Any]:
    """The Airflow connection the submission describes (conn_type, login, password, extra JSON)."""
    extra: dict[str, Any] = {"auth_type": sub.auth_type}
    if sub.values.get("domain"):
        extra["domain"] = sub.values["domain"]
    if ca_bundle:
        extra["ca_bundle"] = ca_bundle
    login = password = None
    if sub.auth_type == CLIENT_CREDENTIALS:
        extra["consumer_key"] = sub.values["consumer_key"]
        extra["consumer_secret"] = sub.values["consumer_secret"]
    else:
        login, password = sub.values["login"], sub.values["password"]
        extra["security_token"] = sub.values["security_token"]
    return {
        "conn_id": sub.conn_id,
        "conn_type": CONN_TYPE,
        "login": login,
        "password": password,
        "extra": json.dumps(extra),
        "description": f"Salesforce org {sub.org_key} ({AUTH_TYPES[sub.auth_type]['title']}), "
        "saved by the Connect Salesforce page",
    }


def changed_fields(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Which fields an edit changed, by name only (what the audit log records, never values)."""
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
