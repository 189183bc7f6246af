"""Every form of the Domain field a user may type, and the ones that must be refused."""

from __future__ import annotations

import pytest

from salesforce_pipeline.domain import (
    instance_from_url,
    is_generic_login_host,
    normalize_domain,
)
from salesforce_pipeline.errors import SalesforceConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "https://login.salesforce.com"),
        ("", "https://login.salesforce.com"),
        ("   ", "https://login.salesforce.com"),
        ("login", "https://login.salesforce.com"),
        ("LOGIN", "https://login.salesforce.com"),
        ("test", "https://test.salesforce.com"),
        ("acme.my", "https://acme.my.salesforce.com"),
        ("Acme.My", "https://acme.my.salesforce.com"),
        ("acme--uat.sandbox.my", "https://acme--uat.sandbox.my.salesforce.com"),
        ("acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("login.salesforce.com", "https://login.salesforce.com"),
        (" acme.my \n", "https://acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com/", "https://acme.my.salesforce.com"),
        ("HTTPS://ACME.MY.SALESFORCE.COM/", "https://acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com:443/", "https://acme.my.salesforce.com"),
        # Pasted from the browser's address bar, a page deep inside Setup or Lightning.
        ("https://acme.my.salesforce.com/home/home.jsp?x=1", "https://acme.my.salesforce.com"),
        (
            "https://acme.lightning.force.com/lightning/setup/SetupOneHome/home",
            "https://acme.my.salesforce.com",
        ),
        (
            "https://acme--uat.sandbox.lightning.force.com/",
            "https://acme--uat.sandbox.my.salesforce.com",
        ),
        # Base URLs for proxies, private connectivity and the local emulator.
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
        ("https://localhost:9000", "https://localhost:9000"),
        ("https://sf-proxy.corp.example:8443", "https://sf-proxy.corp.example:8443"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_accepted_forms(value: str | None, expected: str) -> None:
    assert normalize_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("http://acme.my.salesforce.com", "HTTPS"),
        ("http://127.0.0.1:8443", "HTTPS"),
        ("ftp://acme.my.salesforce.com", "unsupported scheme"),
        ("https://", "no host"),
        ("https://proxy.example:8443/salesforce", "has a path"),
        ("acme", "acme.my"),
        ("acme.my/home", "not a host name"),
        ("acme my", "not a host name"),
        ("127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("localhost:8443", "full URL"),
        ("10.0.0.5", "full URL"),
        ("acme_corp.my", "not a valid host name"),
        ("-acme.my", "not a valid host name"),
        ("https://acme.my.salesforce.com:notaport", "not a valid URL"),
    ],
)
def test_rejected_forms(value: str, fragment: str) -> None:
    with pytest.raises(SalesforceConfigError, match="Domain") as excinfo:
        normalize_domain(value)
    assert fragment in str(excinfo.value)
    assert excinfo.value.retryable is False


@pytest.mark.parametrize(
    "value", ["https://admin:hunter2secret@acme.my.salesforce.com", "admin:hunter2secret@acme.my"]
)
def test_credentials_in_domain_are_refused_without_echo(value: str) -> None:
    with pytest.raises(SalesforceConfigError) as excinfo:
        normalize_domain(value)
    assert "hunter2secret" not in str(excinfo.value)
    assert "'@'" in str(excinfo.value)


@pytest.mark.parametrize(
    ("base_url", "generic"),
    [
        ("https://login.salesforce.com", True),
        ("https://test.salesforce.com", True),
        ("https://acme.my.salesforce.com", False),
        ("https://127.0.0.1:8443", False),
    ],
)
def test_generic_login_hosts(base_url: str, generic: bool) -> None:
    assert is_generic_login_host(base_url) is generic


@pytest.mark.parametrize(
    ("url", "instance"),
    [
        ("https://acme.my.salesforce.com", "acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com/", "acme.my.salesforce.com"),
        ("https://acme.my.salesforce.com:443", "acme.my.salesforce.com"),
        ("https://127.0.0.1:8443", "127.0.0.1:8443"),
        ("https://127.0.0.1:8443/services/Soap/u/59.0/00D", "127.0.0.1:8443"),
        ("acme.my.salesforce.com", "acme.my.salesforce.com"),
    ],
)
def test_instance_from_url(url: str, instance: str) -> None:
    assert instance_from_url(url) == instance
