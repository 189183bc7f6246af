"""Turn whatever a user typed in the connection's Domain field into a login base URL.

simple-salesforce takes a *domain* and logs in at ``https://{domain}.salesforce.com``; that
cannot reach a proxy, private connectivity or a local emulator. The hook logs in itself, at a
base URL computed here, and accepts every form people actually paste:

==========================================  ==========================================
Domain field                                 base URL
==========================================  ==========================================
(blank), ``login``                           ``https://login.salesforce.com``
``test``                                     ``https://test.salesforce.com``
``acme.my``                                  ``https://acme.my.salesforce.com``
``acme--uat.sandbox.my``                     ``https://acme--uat.sandbox.my.salesforce.com``
``acme.my.salesforce.com``                   ``https://acme.my.salesforce.com``
``https://acme.my.salesforce.com/``          ``https://acme.my.salesforce.com``
``https://acme.lightning.force.com/...``     ``https://acme.my.salesforce.com``
``https://127.0.0.1:8443``                   ``https://127.0.0.1:8443``
==========================================  ==========================================

``http://`` is refused: credentials must never travel unencrypted.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from salesforce_pipeline.errors import SalesforceConfigError

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"

# The two shared login hosts: fine for username/password, refused by the client-credentials
# flow, which must be sent to the org's own My Domain.
GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})

_SALESFORCE_SUFFIXES = (".salesforce.com", ".force.com", ".cloudforce.com", ".salesforce.mil")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A Lightning Experience address copied from the browser; the API lives on the My Domain host.
_LIGHTNING = re.compile(r"^(?P<prefix>.+)\.lightning\.force\.com$")

_EXAMPLES = (
    "use login, test, your My Domain such as acme.my (acme--uat.sandbox.my for a sandbox), "
    "acme.my.salesforce.com, or a full https://host[:port] URL"
)

# Never echo such a value: whatever precedes "@" may be a credential.
_NO_CREDENTIALS = (
    "Domain must not contain a user name or password before '@': put credentials in their own fields."
)


def normalize_domain(value: str | None) -> str:
    """Return the HTTPS base URL (no trailing slash) to log in at for a Domain field value.

    :param value: the Domain field as typed; blank or None means ``login``.
    :raises SalesforceConfigError: for ``http://``, other schemes, or anything that is not a host.
    """
    text = (value or "").strip()
    if not text:
        return DEFAULT_LOGIN_URL
    if "://" in text:
        return _normalize_url(text)
    if "@" in text:
        raise SalesforceConfigError(_NO_CREDENTIALS)
    lowered = text.lower().rstrip("/")
    if lowered == "login":
        return DEFAULT_LOGIN_URL
    if lowered == "test":
        return SANDBOX_LOGIN_URL
    if any(c in lowered for c in "/?# "):
        raise SalesforceConfigError(f"Domain {text!r} is not a host name: {_EXAMPLES}.")
    host, _, port = lowered.partition(":")
    if port or _is_ip(host) or host == "localhost":
        # Without a scheme this reads as a simple-salesforce domain, which would become
        # "<value>.salesforce.com"; a port or an IP means the user meant a base URL.
        raise SalesforceConfigError(
            f"Domain {text!r} looks like a server address: write it as a full URL, "
            f"https://{lowered}, so it is not mistaken for a Salesforce domain."
        )
    _check_host(host, text)
    if not host.endswith(_SALESFORCE_SUFFIXES):
        if "." not in host:
            raise SalesforceConfigError(
                f"Domain {text!r} is not a Salesforce domain: {_EXAMPLES}. "
                f"For a My Domain named {host!r} that is {host}.my."
            )
        host = f"{host}.salesforce.com"
    return f"https://{_api_host(host)}"


def host_of(base_url: str) -> str:
    """Return the lowercase host (without port) of a base URL from :func:`normalize_domain`."""
    return (urlsplit(base_url).hostname or "").lower()


def is_generic_login_host(base_url: str) -> bool:
    """Whether a base URL is one of the shared login hosts (login/test.salesforce.com)."""
    return host_of(base_url) in GENERIC_LOGIN_HOSTS


def instance_from_url(url: str) -> str:
    """Return ``host[:port]`` of an instance URL, the form ``simple_salesforce.Salesforce(instance=)`` takes.

    The default HTTPS port is dropped so that ``https://x:443`` and ``https://x`` agree.
    """
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"no host in instance URL {url!r}")
    if ":" in host:  # IPv6 literal: keep its brackets
        host = f"[{host}]"
    if parts.port not in (None, 443):
        return f"{host}:{parts.port}"
    return host


def _normalize_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise SalesforceConfigError(f"Domain is not a valid URL ({exc}): {_EXAMPLES}.") from None
    scheme = parts.scheme.lower()
    if scheme == "http":
        raise SalesforceConfigError(
            "Domain uses http://: Salesforce credentials and sessions must only travel over HTTPS. "
            "Use https:// (a local emulator or proxy needs a TLS certificate; trust its CA with the "
            "extra ca_bundle)."
        )
    if scheme != "https":
        raise SalesforceConfigError(f"Domain has unsupported scheme {parts.scheme!r}: {_EXAMPLES}.")
    if parts.username is not None or parts.password is not None:
        raise SalesforceConfigError(_NO_CREDENTIALS)
    host = (parts.hostname or "").lower()
    if not host:
        raise SalesforceConfigError(f"Domain {text!r} has no host: {_EXAMPLES}.")
    is_salesforce = host.endswith(_SALESFORCE_SUFFIXES)
    # A Salesforce page address pasted from the browser: only the host matters. For any other
    # server (a proxy) a path would be silently dropped by the API calls, so refuse it.
    if (parts.path not in ("", "/") or parts.query or parts.fragment) and not is_salesforce:
        raise SalesforceConfigError(
            f"Domain {text!r} has a path: give only the scheme, host and port, e.g. https://host:8443."
        )
    if not _is_ip(host) and host != "localhost":
        _check_host(host, text)
    if is_salesforce:
        host = _api_host(host)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != 443:
        netloc = f"{netloc}:{port}"
    return f"https://{netloc}"


def _api_host(host: str) -> str:
    match = _LIGHTNING.match(host)
    if match:
        return f"{match.group('prefix')}.my.salesforce.com"
    return host


def _check_host(host: str, original: str) -> None:
    labels = host.rstrip(".").split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise SalesforceConfigError(f"Domain {original!r} is not a valid host name: {_EXAMPLES}.")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
