"""Login flows: SOAP ``login()`` and OAuth 2.0 token requests, answered as Salesforce does.

Responses are byte-for-byte in Salesforce's format (element names, namespaces, the ``sf``
fault prefix, JSON keys), because clients such as simple-salesforce pick values out of them
by exact tag name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from salesforce_emulator.store import Org

__all__ = [
    "DEMO_CONNECTED_APP",
    "DEMO_USER",
    "ConnectedApp",
    "Credentials",
    "UserLogin",
    "login_username",
    "oauth_client_id",
    "oauth_token",
    "org_connected_app",
    "org_user",
    "soap_login",
]

_PARTNER_NS = "urn:partner.soap.sforce.com"
# Salesforce removed SOAP login() from API 65.0 (Winter '26); 31.0-64.0 keep it until Summer '27.
SOAP_LOGIN_MIN_VERSION = 31.0
SOAP_LOGIN_MAX_VERSION = 64.0


@dataclass(frozen=True, slots=True)
class UserLogin:
    """A user who may log in with SOAP ``login()`` (password + security token appended).

    ``require_token=False`` models a login from a trusted IP range, where the password alone
    is accepted (Salesforce then also accepts password + token).
    """

    username: str
    password: str
    security_token: str
    require_token: bool = True
    user_id: str | None = None  # None: the org's integration user


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    """A Connected App usable with the OAuth client-credentials (and password) grant.

    ``run_as`` is the username the client-credentials flow runs as; ``None`` reproduces the
    "no run-as user configured" error.
    """

    consumer_key: str
    consumer_secret: str
    run_as: str | None = "demo@customerscore.example"
    scope: str = "api"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The demo credentials an emulator accepts by default (handy in tests)."""

    username: str
    password: str
    security_token: str
    consumer_key: str
    consumer_secret: str


DEMO_USER = UserLogin("demo@customerscore.example", "demo-password", "demoSecurityToken123")
DEMO_CONNECTED_APP = ConnectedApp("3MVG9demoConsumerKey", "demo-consumer-secret")

_ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns="urn:partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
)
_ENVELOPE_CLOSE = "</soapenv:Body></soapenv:Envelope>"


def soap_fault(code: str, message: str, fault_type: str = "LoginFault") -> bytes:
    """A SOAP fault body as Salesforce sends it (HTTP 500), ``sf`` prefix and all."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        f'<detail><sf:{fault_type} xsi:type="sf:{fault_type}">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        f"</sf:{fault_type}></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _client_fault(message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>soapenv:Client</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _parse_login(body: bytes) -> tuple[str, str] | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    username = root.find(f".//{{{_PARTNER_NS}}}login/{{{_PARTNER_NS}}}username")
    password = root.find(f".//{{{_PARTNER_NS}}}login/{{{_PARTNER_NS}}}password")
    if username is None or password is None:
        return None
    return (username.text or "").strip(), password.text or ""


def login_username(body: bytes) -> str | None:
    """The username a SOAP login() names (which org it is for), if the body is one."""
    parsed = _parse_login(body)
    return parsed[0] if parsed else None


def oauth_client_id(body: bytes, authorization: str | None) -> str | None:
    """The consumer key an OAuth token request names (Basic header first, then the form)."""
    basic = _basic_auth(authorization)
    if basic:
        return basic[0]
    try:
        form = parse_qs(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    return (form.get("client_id") or [None])[0]


def org_user(key: str) -> UserLogin:
    """The integration user of an extra emulated org, made from its key (emulator-only secrets)."""
    return UserLogin(f"integration@{key}.example", f"{key}-password", f"{key}SecurityToken")


def org_connected_app(key: str) -> ConnectedApp:
    """The Connected App of an extra emulated org, running as its integration user."""
    return ConnectedApp(f"3MVG9{key}ConsumerKey", f"{key}-consumer-secret", run_as=org_user(key).username)


def _check_password(user: UserLogin, given: str) -> bool:
    expected = user.password + user.security_token
    ok = hmac.compare_digest(given.encode(), expected.encode())
    if not user.require_token:
        ok = ok or hmac.compare_digest(given.encode(), user.password.encode())
    return ok


def soap_login(org: Org, version: str, body: bytes, base_url: str) -> tuple[int, bytes]:
    """Answer ``POST /services/Soap/u/{version}``; returns (HTTP status, XML body)."""
    try:
        numeric = float(version)
    except ValueError:
        numeric = -1.0
    if not SOAP_LOGIN_MIN_VERSION <= numeric <= SOAP_LOGIN_MAX_VERSION:
        # Retired versions (< 31.0) and versions without login() (65.0 and later) both fail with
        # this fault: Salesforce removed login() from the 65.0 WSDL.
        org.record_login("soap", False)
        return 500, soap_fault(
            "UNSUPPORTED_API_VERSION", "Invalid Api version specified on URL", "UnexpectedErrorFault"
        )
    parsed = _parse_login(body)
    if parsed is None:
        org.record_login("soap", False)
        return 500, _client_fault("Element {urn:partner.soap.sforce.com}login is missing or malformed")
    username, password = parsed
    user = org.find_login_user(username)
    if user is None or not _check_password(user, password):
        org.record_login("soap", False)
        return 500, soap_fault(
            "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
        )
    user_id = user.user_id or org.integration_user_id
    token = org.create_session(user_id, "soap")
    org.record_login("soap", True)
    server_url = f"{base_url}/services/Soap/u/{version}/{org.org_id[:15]}"
    meta_url = f"{base_url}/services/Soap/m/{version}/{org.org_id[:15]}"
    info = org.user_info(user_id)
    xml = (
        f"{_ENVELOPE_OPEN}<loginResponse><result>"
        f"<metadataServerUrl>{escape(meta_url)}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{escape(server_url)}</serverUrl>"
        f"<sessionId>{token}</sessionId>"
        f"<userId>{user_id}</userId>"
        "<userInfo><accessibilityMode>false</accessibilityMode><chatterExternal>false</chatterExternal>"
        "<currencySymbol>$</currencySymbol><orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
        "<orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>"
        "<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale>"
        "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>"
        "<orgHasPersonAccounts>false</orgHasPersonAccounts>"
        f"<organizationId>{org.org_id}</organizationId>"
        "<organizationMultiCurrency>false</organizationMultiCurrency>"
        f"<organizationName>{escape(org.org_name)}</organizationName>"
        '<profileId>00eDn000000AbCdIAK</profileId><roleId xsi:nil="true"/>'
        "<sessionSecondsValid>7200</sessionSecondsValid>"
        '<userDefaultCurrencyIsoCode xsi:nil="true"/>'
        f"<userEmail>{escape(info['Email'])}</userEmail>"
        f"<userFullName>{escape(info['Name'])}</userFullName>"
        f"<userId>{user_id}</userId><userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>"
        f"<userName>{escape(info['Username'])}</userName><userTimeZone>America/Los_Angeles</userTimeZone>"
        "<userType>Standard</userType><userUiSkin>Theme3</userUiSkin></userInfo>"
        f"</result></loginResponse>{_ENVELOPE_CLOSE}"
    )
    return 200, xml.encode()


def _oauth_error(error: str, description: str) -> tuple[int, bytes]:
    return 400, json.dumps({"error": error, "error_description": description}).encode()


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, sep, secret = decoded.partition(":")
    return (key, secret) if sep else None


def oauth_token(org: Org, body: bytes, authorization: str | None, base_url: str) -> tuple[int, bytes]:
    """Answer ``POST /services/oauth2/token`` (client_credentials and password grants)."""
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        form = {}
    grant = form.get("grant_type")
    basic = _basic_auth(authorization)
    key, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
    if grant not in ("client_credentials", "password"):
        org.record_login("oauth", False)
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    app = org.find_connected_app(key or "")
    if (
        app is None
        or secret is None
        or not hmac.compare_digest(secret.encode(), app.consumer_secret.encode())
    ):
        org.record_login("oauth", False)
        return _oauth_error("invalid_client", "invalid client credentials")
    if grant == "client_credentials":
        if app.run_as is None:
            org.record_login("oauth", False)
            return _oauth_error("invalid_grant", "no client credentials user enabled")
        user = org.find_login_user(app.run_as)
    else:
        user = org.find_login_user(form.get("username", ""))
        if user is None or not _check_password(user, form.get("password", "")):
            org.record_login("oauth", False)
            return _oauth_error("invalid_grant", "authentication failure")
    user_id = (user.user_id if user else None) or org.integration_user_id
    token = org.create_session(user_id, "oauth")
    org.record_login("oauth", True)
    issued_at = str(int(time.time() * 1000))
    identity = f"{base_url}/id/{org.org_id}/{user_id}"
    # Salesforce signs id + issued_at with the consumer secret (HMAC-SHA256, base64).
    signature = base64.b64encode(
        hmac.new(app.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    ).decode()
    payload = {
        "access_token": token,
        "signature": signature,
        "scope": app.scope,
        "instance_url": base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }
    return 200, json.dumps(payload).encode()
