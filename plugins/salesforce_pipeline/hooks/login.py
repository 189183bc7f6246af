"""Logging in to Salesforce in the two modes a customer's admin can set up.

The hook logs in itself rather than through simple-salesforce, because simple-salesforce only
logs in at ``https://{domain}.salesforce.com`` (no My Domain URL with a port, no proxy or private
endpoint, no emulator). A login fault is read here: which ones are worth another try, and what
the user should check for the ones that are final.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlsplit

import requests

from salesforce_pipeline.auth import ClientCredentialsAuth, SalesforceAuth, SecurityTokenAuth
from salesforce_pipeline.domain import host_of, instance_from_url
from salesforce_pipeline.errors import SalesforceLoginError
from salesforce_pipeline.hooks.transport import TRANSIENT_STATUSES, Retryable, SalesforceTransport

#: API version of the SOAP login call. Salesforce removed SOAP login() from 65.0 and retires it
#: for 31.0-64.0 in Summer '27; data calls use the connection's own (newer) version.
SOAP_LOGIN_API_VERSION = "59.0"
CLIENT_ID = "simple-salesforce"  # what simple-salesforce names itself in the SOAP CallOptions

# Same envelope simple-salesforce 1.12.10 sends (login.SalesforceLogin, security-token branch),
# which only exists inline there, so it cannot be imported.
_SOAP_LOGIN_ENVELOPE = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>{client_id}</urn:client>
            <urn:defaultNamespace>sf</urn:defaultNamespace>
        </urn:CallOptions>
    </env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>{username}</n1:username>
            <n1:password>{password}{security_token}</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"""

SOAP_RETIREMENT_WARNING = (
    "Logging in to Salesforce with SOAP login() (Security Token with Username & Password). "
    "Salesforce retires SOAP login in Summer '27 (already removed from API 65.0, off by default in "
    "orgs created from Winter '26): switch this connection to Connected App OAuth 2.0 Client "
    "Credentials, see docs/connect-salesforce.md."
)

# SOAP faults that are worth another try; every other fault (INVALID_LOGIN...) is final.
_TRANSIENT_SOAP_FAULTS = frozenset({"SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
_SOAP_CREDENTIAL_FAULTS = frozenset(
    {"INVALID_LOGIN", "LOGIN_MUST_USE_SECURITY_TOKEN", "API_DISABLED_FOR_ORG"}
)
_OAUTH_HINTS = {
    "invalid_client_id": " Check the Consumer Key.",
    "invalid_client": " Check the Consumer Key and Consumer Secret.",
    "invalid_grant": (
        " Check that the Connected App has 'Enable Client Credentials Flow' on and a Run As "
        "user, and that Domain is the org's My Domain."
    ),
    "unsupported_grant_type": " Enable the client credentials flow on the Connected App.",
}


@dataclass(frozen=True)
class LoginResult:
    """What a successful login returned (the session id is never shown by ``repr``)."""

    session_id: str = field(repr=False)
    instance_url: str
    org_id: str | None = None
    user_id: str | None = None

    @property
    def instance(self) -> str:
        """``host[:port]`` of the instance, as ``simple_salesforce.Salesforce(instance=)`` takes it."""
        return instance_from_url(self.instance_url)


def log_in(transport: SalesforceTransport, auth: SalesforceAuth) -> LoginResult:
    """Log in with ``auth``, retrying transient failures.

    :raises SalesforceLoginError: when Salesforce refuses the credentials (never retried).
    :raises SalesforceTransientError: when the retries run out.
    """
    if isinstance(auth, SecurityTokenAuth):
        return transport.retrying("Salesforce login", lambda: soap_login(transport, auth))
    return transport.retrying("Salesforce login", lambda: client_credentials_login(transport, auth))


def soap_login(transport: SalesforceTransport, auth: SecurityTokenAuth) -> LoginResult:
    """One SOAP ``login()`` with username, password and security token."""
    url = f"{auth.domain}/services/Soap/u/{SOAP_LOGIN_API_VERSION}"
    body = _SOAP_LOGIN_ENVELOPE.format(
        client_id=CLIENT_ID,
        username=escape(auth.username),
        password=escape(auth.password),
        security_token=escape(auth.security_token),
    )
    headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
    transport.logins += 1
    response = transport.send_once("POST", url, data=body.encode("utf-8"), headers=headers)
    values = _xml_values(response.content)
    if response.status_code == 200 and values.get("sessionId") and values.get("serverUrl"):
        # As simple-salesforce does: the API host of an old "-api" serverUrl is the instance.
        parts = urlsplit(values["serverUrl"])
        return LoginResult(
            session_id=values["sessionId"],
            instance_url=f"https://{parts.netloc.replace('-api', '')}",
            org_id=values.get("organizationId"),
            user_id=values.get("userId"),
        )
    raise _soap_failure(transport, auth, response, values)


def _soap_failure(
    transport: SalesforceTransport,
    auth: SecurityTokenAuth,
    response: requests.Response,
    values: dict[str, str],
) -> Exception:
    code = values.get("exceptionCode") or values.get("faultcode")
    message = values.get("exceptionMessage") or values.get("faultstring") or ""
    status = response.status_code
    if status in TRANSIENT_STATUSES and (code is None or code.split(":")[-1] in _TRANSIENT_SOAP_FAULTS):
        return Retryable(f"HTTP {status} {code or ''} {transport.scrub(message)}".strip())
    if status == 200:
        if not values:  # an unreadable (cut short) answer is worth another try
            return Retryable("unreadable SOAP login answer")
        code, message = "UNEXPECTED_RESPONSE", "the login answer has no sessionId or serverUrl"
    code = (code or f"HTTP_{status}").split(":")[-1]
    hint = (
        " Check Username, Password and Security Token: a password change or reset issues a new "
        "security token, and orgs created from Winter '26 have SOAP login() off unless an admin "
        "turns it on."
        if code in _SOAP_CREDENTIAL_FAULTS
        else ""
    )
    return SalesforceLoginError(
        f"Salesforce refused the Security Token login of user {auth.username!r} at "
        f"{host_of(auth.domain)}: {code}: {sentence(transport.scrub(message))}{hint}",
        code=code,
    )


def client_credentials_login(transport: SalesforceTransport, auth: ClientCredentialsAuth) -> LoginResult:
    """One OAuth 2.0 client-credentials token request at the org's My Domain."""
    url = f"{auth.domain}/services/oauth2/token"
    basic = base64.b64encode(f"{auth.consumer_key}:{auth.consumer_secret}".encode()).decode()
    transport.logins += 1
    response = transport.send_once(
        "POST",
        url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
    )
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if response.status_code == 200 and payload.get("access_token") and payload.get("instance_url"):
        org_id, user_id = _ids_from_identity_url(payload.get("id"))
        return LoginResult(
            session_id=payload["access_token"],
            instance_url=payload["instance_url"],
            org_id=org_id,
            user_id=user_id,
        )
    if response.status_code in TRANSIENT_STATUSES:
        raise Retryable(f"HTTP {response.status_code} {transport.scrub(response.text[:200])}")
    code = str(payload.get("error") or f"HTTP_{response.status_code}")
    message = str(payload.get("error_description") or response.text[:300])
    raise SalesforceLoginError(
        f"Salesforce refused the Connected App (OAuth 2.0 client credentials) login at "
        f"{host_of(auth.domain)}: {code}: {sentence(transport.scrub(message))}{_OAUTH_HINTS.get(code, '')}",
        code=code,
    )


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (Salesforce's messages sometimes have one)."""
    return text.strip().rstrip(".") + "."


def _xml_values(content: bytes) -> dict[str, str]:
    """Text of the first element of each local name in a SOAP document (namespaces ignored)."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return {}
    values: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name not in values and element.text and element.text.strip():
            values[name] = element.text.strip()
    return values


def _ids_from_identity_url(url: Any) -> tuple[str | None, str | None]:
    """Org and user ids from an OAuth identity URL ``https://host/id/{org}/{user}``."""
    if not isinstance(url, str):
        return None, None
    parts = urlsplit(url).path.strip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "id":
        return parts[-2], parts[-1]
    return None, None
