"""What stands between a web form and the server's network and state: where the page may log in
(Salesforce's domains, or hosts an operator allowed, never a host a form names on its own), and
the CSRF token every form carries."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from salesforce_pipeline.domain import normalize_domain

# Salesforce's own login and instance hosts. Anything else must be allowed by the operator.
SALESFORCE_SUFFIXES = (".salesforce.com", ".force.com", ".cloudforce.com", ".salesforce.mil")
#: host:port entries (comma-separated) the page may also log in at, e.g. the emulator.
ALLOWED_HOSTS_ENV = "SALESFORCE_CONNECT_ALLOWED_HOSTS"
#: A CA bundle for those allowed hosts (the emulator's CA), added to the connections saved for them.
ALLOWED_HOSTS_CA_ENV = "SALESFORCE_CONNECT_ALLOWED_HOSTS_CA_BUNDLE"
CSRF_SALT = "salesforce-connect-form"
CSRF_MAX_AGE_SECONDS = 2 * 3600


class EgressRefused(ValueError):
    """The Domain names a host the server must not contact."""


def allowed_hosts() -> set[str]:
    """``host:port`` entries, besides Salesforce's domains, the page may log in at."""
    raw = os.environ.get(ALLOWED_HOSTS_ENV, "")
    return {h.strip().lower() for h in raw.split(",") if h.strip()}


def _host_port(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, f"{host}:{port}"


def check_login_target(domain: str | None) -> tuple[str, bool]:
    """The base URL the page may log in at for this Domain, and whether it is an allowed
    non-Salesforce host (which then gets the operator's CA bundle); raises EgressRefused."""
    base = normalize_domain(domain)
    host, host_port = _host_port(base)
    if host.endswith(SALESFORCE_SUFFIXES):
        return base, False
    if host_port in allowed_hosts():
        return base, True
    raise EgressRefused(
        f"Domain: {host_port} is not a Salesforce domain, and this server only connects to Salesforce "
        f"(or to hosts an administrator lists in {ALLOWED_HOSTS_ENV}). Use your My Domain, e.g. acme.my."
    )


def check_instance(instance_url: str) -> None:
    """The instance a login points at must pass the same rule (a login answer cannot redirect us)."""
    host, host_port = _host_port(instance_url if "://" in instance_url else f"https://{instance_url}")
    if not (host.endswith(SALESFORCE_SUFFIXES) or host_port in allowed_hosts()):
        raise EgressRefused(
            f"Salesforce answered with an instance at {host_port}, which this server does not contact."
        )


def allowed_hosts_ca_bundle() -> str | None:
    """The CA bundle that verifies the allowed hosts' certificates, if one is configured."""
    return os.environ.get(ALLOWED_HOSTS_CA_ENV) or None


def _serializer(secret: str):
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(secret, salt=CSRF_SALT)


def csrf_token(secret: str, user: str) -> str:
    """A token bound to the signed-in user and to this server's secret, valid for two hours."""
    return _serializer(secret).dumps(user)


def csrf_ok(secret: str, user: str, token: str | None) -> bool:
    """Whether ``token`` is a CSRF token this server signed for ``user``."""
    from itsdangerous import BadSignature

    if not token:
        return False
    try:
        return _serializer(secret).loads(token, max_age=CSRF_MAX_AGE_SECONDS) == user
    except BadSignature:
        return False


def same_origin(origin: str | None, referer: str | None, host: str | None) -> bool:
    """A browser's form post names where it came from: it must be this server (no other site,
    nor another port of this host, since the session cookie is shared across ports)."""
    source = origin or referer
    if not source:
        return True  # not a browser (a script with a bearer token); the CSRF token still binds it
    if not host:
        return False
    return urlsplit(source).netloc.lower() == host.lower()
