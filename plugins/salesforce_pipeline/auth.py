"""Read an Airflow connection into one explicit, typed Salesforce authentication mode.

Two modes are supported, the two a customer's admin can set up:

* :class:`SecurityTokenAuth` - Username, Password and Security Token, logged in with SOAP
  ``login()`` (which Salesforce retires in Summer '27);
* :class:`ClientCredentialsAuth` - a Connected App's Consumer Key and Consumer Secret with the
  OAuth 2.0 client-credentials flow, sent to the org's My Domain.

The extra ``auth_type`` chooses the mode; without it the mode is inferred from which fields are
filled. Everything is checked here, before any network call, and every problem is reported by
the field's form label with what to do about it. Nothing here ever prints a secret.

The same reader serves our ``customerscore_salesforce`` connection type and the provider's plain
``salesforce`` type (whose extras may carry the old ``extra__salesforce__`` prefix).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import urlsplit

from salesforce_pipeline.domain import is_generic_login_host, normalize_domain
from salesforce_pipeline.errors import SalesforceConfigError

SECURITY_TOKEN: Final = "security_token"
CLIENT_CREDENTIALS: Final = "client_credentials"
AUTH_TYPES: Final = (SECURITY_TOKEN, CLIENT_CREDENTIALS)

#: Data API version used when the connection names none (the SOAP login has its own, <= 64.0).
DEFAULT_API_VERSION: Final = "62.0"
DEFAULT_TIMEOUT_SECONDS: Final = 120.0
DEFAULT_MAX_RETRIES: Final = 5
DEFAULT_RETRY_BASE_SECONDS: Final = 1.0

# Form labels, so that messages point at what the user sees. The JSON name follows in
# parentheses for those who write the connection as JSON (CLI, environment variable).
LABELS: Final = {
    "auth_type": "Authentication Type (auth_type)",
    "login": "Username (login)",
    "password": "Password (password)",
    "security_token": "Security Token (security_token)",
    "domain": "Domain (domain)",
    "consumer_key": "Consumer Key (consumer_key)",
    "consumer_secret": "Consumer Secret (consumer_secret)",
    "version": "API Version (version)",
    "timeout": "Request Timeout (timeout)",
    "max_retries": "Max Retries (max_retries)",
    "retry_base_seconds": "Retry Base Seconds (retry_base_seconds)",
    "ca_bundle": "CA Bundle (ca_bundle)",
    "proxies": "Proxies (proxies)",
    "instance_url": "Instance URL (instance_url)",
}

# Extra-field prefixes Airflow has used over the years: ours, and the provider's.
_PREFIXES: Final = ("extra__customerscore_salesforce__", "extra__salesforce__")


class ConnectionLike(Protocol):
    """What we read from an Airflow ``Connection`` (SDK or ORM model alike)."""

    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """The connection's extras as a dict."""


@dataclass(frozen=True)
class SecurityTokenAuth:
    """Username + password + security token, logged in with SOAP ``login()``.

    :param domain: the login base URL from :func:`~salesforce_pipeline.domain.normalize_domain`.
    """

    mode: ClassVar[str] = SECURITY_TOKEN
    title: ClassVar[str] = "Security Token with Username & Password"

    username: str
    password: str = field(repr=False)
    security_token: str = field(repr=False)
    domain: str

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be logged."""
        return (self.password, self.security_token, self.password + self.security_token)


@dataclass(frozen=True)
class ClientCredentialsAuth:
    """A Connected App's consumer key and secret, OAuth 2.0 client-credentials flow at a My Domain.

    :param domain: the org's My Domain base URL (never login/test.salesforce.com).
    """

    mode: ClassVar[str] = CLIENT_CREDENTIALS
    title: ClassVar[str] = "Connected App (OAuth 2.0 Client Credentials)"

    domain: str
    consumer_key: str
    consumer_secret: str = field(repr=False)

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be logged."""
        return (self.consumer_secret,)


SalesforceAuth = SecurityTokenAuth | ClientCredentialsAuth


@dataclass(frozen=True)
class ClientSettings:
    """How the hook talks to Salesforce, read from the connection's extras."""

    version: str = DEFAULT_API_VERSION
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_base_seconds: float = DEFAULT_RETRY_BASE_SECONDS
    ca_bundle: str | None = None
    #: ``(scheme, proxy URL)`` pairs, as ``requests`` takes them in a dict.
    proxies: tuple[tuple[str, str], ...] = ()


def get_field(extras: dict[str, Any], name: str) -> Any:
    """Return extra ``name`` (or its prefixed legacy form), None when absent or blank.

    Blank form fields arrive as ``""`` (or whitespace); they mean "not set", never an empty value.
    """
    for key in (name, *(prefix + name for prefix in _PREFIXES)):
        value = extras.get(key)
        if isinstance(value, str):
            value = value.strip()
        if value not in (None, ""):
            return value
    return None


def _text(value: Any) -> str | None:
    """A filled field as text; blank (``""``, whitespace) counts as absent."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _trimmed(value: Any) -> str | None:
    text = _text(value)
    return text.strip() if text is not None else None


def resolve_auth(conn: ConnectionLike) -> SalesforceAuth:
    """Decide the connection's authentication mode and return its typed, validated fields.

    :raises SalesforceConfigError: when the connection fits neither mode, fits both without
        ``auth_type``, names an unknown ``auth_type``, or has a malformed Domain. Raised before any
        network call; the message names the fields by their form labels and never a secret's value.
    """
    extras = conn.extra_dejson or {}
    _refuse_unsupported_modes(conn, extras)
    username = _trimmed(conn.login)
    # Passwords may legitimately start or end with spaces, so only blank means absent.
    password = _text(conn.password)
    # Tokens and secrets never contain whitespace; a pasted trailing newline is an accident.
    security_token = _trimmed(get_field(extras, "security_token"))
    consumer_key = _trimmed(get_field(extras, "consumer_key"))
    consumer_secret = _trimmed(get_field(extras, "consumer_secret"))
    # The provider's type has Instance URL too; for a My Domain org it is the host to log in at.
    domain = _trimmed(get_field(extras, "domain")) or _trimmed(get_field(extras, "instance_url"))

    token_fields = {"login": username, "password": password, "security_token": security_token}
    app_fields = {"consumer_key": consumer_key, "consumer_secret": consumer_secret}

    auth_type = _trimmed(get_field(extras, "auth_type"))
    if auth_type is not None:
        mode = auth_type.lower().replace("-", "_").replace(" ", "_")
        if mode not in AUTH_TYPES:
            raise SalesforceConfigError(
                f"{LABELS['auth_type']} is {auth_type!r}; it must be {SECURITY_TOKEN!r} "
                f"({SecurityTokenAuth.title}) or {CLIENT_CREDENTIALS!r} ({ClientCredentialsAuth.title})."
            )
    else:
        mode = _infer_mode(token_fields, app_fields)

    if mode == SECURITY_TOKEN:
        _require(SecurityTokenAuth.title, token_fields)
        return SecurityTokenAuth(
            username=str(username),
            password=str(password),
            security_token=str(security_token),
            domain=normalize_domain(domain),
        )

    _require(ClientCredentialsAuth.title, {"domain": domain, **app_fields})
    base_url = normalize_domain(domain)
    if is_generic_login_host(base_url):
        raise SalesforceConfigError(
            f"{ClientCredentialsAuth.title} needs your org's My Domain in {LABELS['domain']}, "
            f"not {domain!r}: Salesforce refuses the client-credentials flow on login and test. "
            "Enter the My Domain prefix, e.g. acme.my (acme--uat.sandbox.my for a sandbox), as shown "
            "in Setup > My Domain."
        )
    return ClientCredentialsAuth(
        domain=base_url, consumer_key=str(consumer_key), consumer_secret=str(consumer_secret)
    )


def _refuse_unsupported_modes(conn: ConnectionLike, extras: dict[str, Any]) -> None:
    """The provider's hook also logs in with a JWT or an IP allow-list; this pipeline does not."""
    if get_field(extras, "private_key") is not None or get_field(extras, "private_key_file_path") is not None:
        raise SalesforceConfigError(
            "The connection fills Private Key (private_key / private_key_file_path), which is the "
            "OAuth 2.0 JWT bearer flow; this pipeline logs in with a Connected App's Consumer Key and "
            f"Consumer Secret ({ClientCredentialsAuth.title}) or with {SecurityTokenAuth.title}. Clear the "
            "private key and fill the Consumer Secret, see docs/connect-salesforce.md."
        )
    no_token = get_field(extras, "security_token") is None
    if get_field(extras, "organization_id") is not None and no_token and _text(conn.password) is not None:
        raise SalesforceConfigError(
            "The connection fills Organization ID without a Security Token, which is a login from an "
            "allow-listed IP range; this pipeline needs the user's Security Token (or a Connected App). "
            "Fill Security Token (Salesforce: Settings > Reset My Security Token) and clear Organization ID."
        )


def direct_session_instance_url(conn: ConnectionLike) -> str:
    """The instance a session id given to the hook belongs to: the extra Instance URL (or Instance).

    :raises SalesforceConfigError: when the connection names neither.
    """
    extras = conn.extra_dejson or {}
    instance_url = _trimmed(get_field(extras, "instance_url"))
    if instance_url is None:
        instance = _trimmed(get_field(extras, "instance"))
        instance_url = f"https://{instance}" if instance else None
    if instance_url is None:
        raise SalesforceConfigError(
            f"A session_id was given to the hook, so it does not log in, but the connection has no "
            f"{LABELS['instance_url']} saying which Salesforce instance the session belongs to; "
            "fill it, e.g. https://acme.my.salesforce.com."
        )
    return instance_url if "://" in instance_url else f"https://{instance_url}"


def _infer_mode(token_fields: dict[str, str | None], app_fields: dict[str, str | None]) -> str:
    token_filled = [LABELS[name] for name, value in token_fields.items() if value is not None]
    app_filled = [LABELS[name] for name, value in app_fields.items() if value is not None]
    if token_filled and app_filled:
        raise SalesforceConfigError(
            "The connection fills fields of both authentication types "
            f"({', '.join(token_filled)} for {SecurityTokenAuth.title}; "
            f"{', '.join(app_filled)} for {ClientCredentialsAuth.title}). "
            f"Set {LABELS['auth_type']} to {SECURITY_TOKEN!r} or {CLIENT_CREDENTIALS!r}, "
            "or clear the fields of the type you do not use."
        )
    if token_filled:
        return SECURITY_TOKEN
    if app_filled:
        return CLIENT_CREDENTIALS
    raise SalesforceConfigError(
        "The connection has no Salesforce credentials. Choose an authentication type: "
        f"{SecurityTokenAuth.title} needs {_join(LABELS[n] for n in token_fields)} "
        f"(and optionally {LABELS['domain']}); {ClientCredentialsAuth.title} needs "
        f"{_join(LABELS[n] for n in ('domain', *app_fields))}, where Domain is your My Domain "
        "(e.g. acme.my), not login or test."
    )


def _require(title: str, fields: dict[str, str | None]) -> None:
    missing = [LABELS[name] for name, value in fields.items() if value is None]
    if missing:
        hint = ""
        if "domain" in fields and fields["domain"] is None:
            hint = " Domain is your org's My Domain (e.g. acme.my or acme--uat.sandbox.my), not login/test."
        raise SalesforceConfigError(
            f"{title} is missing {_join(missing)}. Fill {'it' if len(missing) == 1 else 'them'} in the "
            f"connection, or choose the other type in {LABELS['auth_type']}.{hint}"
        )


def _join(items: Any) -> str:
    names = list(items)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_VERSION = re.compile(r"^\d{2,3}\.\d$")


def resolve_settings(conn: ConnectionLike) -> ClientSettings:
    """Read API version, timeout, retry policy and CA bundle from the connection's extras.

    :raises SalesforceConfigError: for a value that cannot be used, naming the field.
    """
    extras = conn.extra_dejson or {}
    version = str(get_field(extras, "version") or DEFAULT_API_VERSION)
    if version.lower().startswith("v"):
        version = version[1:]
    if not _VERSION.match(version):
        raise SalesforceConfigError(
            f"{LABELS['version']} is {version!r}; write it as a number like {DEFAULT_API_VERSION}."
        )
    timeout = _number(extras, "timeout", DEFAULT_TIMEOUT_SECONDS, float)
    max_retries = _number(extras, "max_retries", DEFAULT_MAX_RETRIES, int)
    retry_base_seconds = _number(extras, "retry_base_seconds", DEFAULT_RETRY_BASE_SECONDS, float)
    if timeout <= 0:
        raise SalesforceConfigError(f"{LABELS['timeout']} must be more than 0 seconds.")
    if max_retries < 0 or retry_base_seconds < 0:
        raise SalesforceConfigError(
            f"{LABELS['max_retries']} and {LABELS['retry_base_seconds']} must not be negative."
        )
    ca_bundle = get_field(extras, "ca_bundle")
    if ca_bundle is not None:
        ca_bundle = os.path.expanduser(str(ca_bundle))
        if not os.path.exists(ca_bundle):
            raise SalesforceConfigError(
                f"{LABELS['ca_bundle']} {ca_bundle!r} does not exist; give the path of a PEM file "
                "(or directory) of CA certificates readable by every Airflow component."
            )
    return ClientSettings(
        version=version,
        timeout=timeout,
        max_retries=max_retries,
        retry_base_seconds=retry_base_seconds,
        ca_bundle=ca_bundle,
        proxies=_proxies(get_field(extras, "proxies")),
    )


def _proxies(value: Any) -> tuple[tuple[str, str], ...]:
    """The extra ``proxies`` (a JSON object, or its text) as ``(scheme, URL)`` pairs, checked."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    example = '{"https": "http://proxy.example.com:3128"}'
    if not isinstance(value, dict) or not value:
        raise SalesforceConfigError(f"{LABELS['proxies']} must be a JSON object like {example}.")
    pairs = []
    for scheme, url in value.items():
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme not in ("http", "https")
            or not urlsplit(url).hostname
        ):
            raise SalesforceConfigError(
                f"{LABELS['proxies']} entry {scheme!r} is not an http(s) proxy URL; write it like {example}."
            )
        pairs.append((str(scheme), url))
    return tuple(pairs)


def _number(extras: dict[str, Any], name: str, default: Any, kind: type) -> Any:
    value = get_field(extras, name)
    if value is None:
        return default
    try:
        if kind is int and isinstance(value, str | float) and float(value) != int(float(value)):
            raise ValueError
        return kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise SalesforceConfigError(f"{LABELS[name]} is {value!r}; it must be a number.") from None
