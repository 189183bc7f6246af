"""Auth-mode resolution: explicit, inferred, every error, and no secret in any message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from salesforce_pipeline.auth import (
    DEFAULT_API_VERSION,
    ClientCredentialsAuth,
    ClientSettings,
    SecurityTokenAuth,
    resolve_auth,
    resolve_settings,
)
from salesforce_pipeline.errors import SalesforceConfigError

PASSWORD = "pw-Secret-Value-1"
TOKEN = "tok-Secret-Value-2"
CONSUMER_SECRET = "cs-Secret-Value-3"
SECRETS = (PASSWORD, TOKEN, CONSUMER_SECRET)

# The form posts every field; the ones left blank arrive as "".
BLANK_FORM = {
    "auth_type": "",
    "security_token": "",
    "domain": "",
    "consumer_key": "",
    "consumer_secret": "",
    "version": "",
}


def make_conn(
    *,
    login: str | None = None,
    password: str | None = None,
    conn_type: str = "customerscore_salesforce",
    **extra: Any,
) -> Connection:
    return Connection(
        conn_id="salesforce_default",
        conn_type=conn_type,
        login=login,
        password=password,
        extra=json.dumps({**BLANK_FORM, **extra}),
    )


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# ------------------------------------------------------------------ successful resolution
def test_explicit_security_token() -> None:
    auth = resolve_auth(
        make_conn(login="int@acme.com", password=PASSWORD, auth_type="security_token", security_token=TOKEN)
    )
    assert auth == SecurityTokenAuth("int@acme.com", PASSWORD, TOKEN, "https://login.salesforce.com")
    assert auth.mode == "security_token"


def test_explicit_client_credentials() -> None:
    auth = resolve_auth(
        make_conn(
            auth_type="client_credentials",
            domain="acme.my",
            consumer_key="3MVG9key",
            consumer_secret=CONSUMER_SECRET,
        )
    )
    assert auth == ClientCredentialsAuth("https://acme.my.salesforce.com", "3MVG9key", CONSUMER_SECRET)
    assert auth.mode == "client_credentials"


def test_explicit_mode_ignores_other_modes_fields() -> None:
    """A form switched from one type to the other keeps the old values; auth_type decides."""
    conn = make_conn(
        login="int@acme.com",
        password=PASSWORD,
        security_token=TOKEN,
        auth_type="client_credentials",
        domain="acme.my",
        consumer_key="3MVG9key",
        consumer_secret=CONSUMER_SECRET,
    )
    assert isinstance(resolve_auth(conn), ClientCredentialsAuth)
    conn = make_conn(
        login="int@acme.com",
        password=PASSWORD,
        security_token=TOKEN,
        auth_type="security_token",
        consumer_key="3MVG9key",
    )
    assert isinstance(resolve_auth(conn), SecurityTokenAuth)


def test_inferred_security_token_with_sandbox_domain() -> None:
    auth = resolve_auth(
        make_conn(login="int@acme.com", password=PASSWORD, security_token=TOKEN, domain="test")
    )
    assert isinstance(auth, SecurityTokenAuth)
    assert auth.domain == "https://test.salesforce.com"


def test_inferred_client_credentials() -> None:
    auth = resolve_auth(
        make_conn(domain="acme--uat.sandbox.my", consumer_key="k", consumer_secret=CONSUMER_SECRET)
    )
    assert isinstance(auth, ClientCredentialsAuth)
    assert auth.domain == "https://acme--uat.sandbox.my.salesforce.com"


@pytest.mark.parametrize("auth_type", ["Client_Credentials", " client-credentials ", "client credentials"])
def test_auth_type_spelling_is_lenient(auth_type: str) -> None:
    conn = make_conn(auth_type=auth_type, domain="acme.my", consumer_key="k", consumer_secret=CONSUMER_SECRET)
    assert isinstance(resolve_auth(conn), ClientCredentialsAuth)


def test_provider_salesforce_type_with_prefixed_extras() -> None:
    """The provider's plain `salesforce` type, extras in the old prefixed spelling."""
    conn = Connection(
        conn_id="sf",
        conn_type="salesforce",
        login="int@acme.com",
        password=PASSWORD,
        extra=json.dumps(
            {
                "extra__salesforce__security_token": TOKEN,
                "extra__salesforce__domain": "",
                "extra__salesforce__consumer_key": "",
                "extra__salesforce__consumer_secret": "",
            }
        ),
    )
    assert resolve_auth(conn) == SecurityTokenAuth(
        "int@acme.com", PASSWORD, TOKEN, "https://login.salesforce.com"
    )


def test_provider_type_instance_url_serves_as_my_domain() -> None:
    conn = make_conn(
        conn_type="salesforce",
        consumer_key="k",
        consumer_secret=CONSUMER_SECRET,
        instance_url="https://acme.my.salesforce.com",
    )
    assert resolve_auth(conn) == ClientCredentialsAuth("https://acme.my.salesforce.com", "k", CONSUMER_SECRET)


def test_whitespace_and_pasted_newlines_are_trimmed() -> None:
    auth = resolve_auth(
        make_conn(
            login=" int@acme.com ", password=" pass word ", security_token=f"{TOKEN}\n", domain=" login "
        )
    )
    assert auth == SecurityTokenAuth("int@acme.com", " pass word ", TOKEN, "https://login.salesforce.com")


def test_repr_hides_secrets() -> None:
    token_auth = SecurityTokenAuth("int@acme.com", PASSWORD, TOKEN, "https://login.salesforce.com")
    app_auth = ClientCredentialsAuth("https://acme.my.salesforce.com", "3MVG9key", CONSUMER_SECRET)
    assert_no_secret(repr(token_auth) + str(token_auth) + repr(app_auth) + str(app_auth))
    assert "int@acme.com" in repr(token_auth)
    assert "3MVG9key" in repr(app_auth)


def test_auths_are_frozen() -> None:
    auth = SecurityTokenAuth("u", PASSWORD, TOKEN, "https://login.salesforce.com")
    with pytest.raises(AttributeError):
        auth.password = "other"  # type: ignore[misc]


# ------------------------------------------------------------------ every resolution error
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Nothing at all.
        ({}, ["no Salesforce credentials", "Username", "Consumer Key", "My Domain"]),
        ({"domain": "acme.my"}, ["no Salesforce credentials"]),
        # Security Token mode, inferred, each field missing.
        (
            {"login": "u", "password": PASSWORD},
            ["Security Token with Username & Password is missing Security Token"],
        ),
        ({"login": "u", "security_token": TOKEN}, ["is missing Password"]),
        ({"password": PASSWORD, "security_token": TOKEN}, ["is missing Username"]),
        ({"login": "u"}, ["is missing Password (password) and Security Token"]),
        # Security Token mode, explicit, nothing filled.
        (
            {"auth_type": "security_token"},
            ["Security Token with Username & Password is missing Username (login), Password"],
        ),
        # Client credentials, inferred, each field missing.
        (
            {"consumer_key": "k", "consumer_secret": CONSUMER_SECRET},
            ["Connected App (OAuth 2.0 Client Credentials) is missing Domain", "My Domain", "not login/test"],
        ),
        ({"domain": "acme.my", "consumer_key": "k"}, ["is missing Consumer Secret"]),
        ({"domain": "acme.my", "consumer_secret": CONSUMER_SECRET}, ["is missing Consumer Key"]),
        # Client credentials, explicit, nothing filled.
        (
            {"auth_type": "client_credentials"},
            ["is missing Domain (domain), Consumer Key (consumer_key) and Consumer Secret"],
        ),
        # Client credentials against the shared login hosts.
        (
            {"domain": "login", "consumer_key": "k", "consumer_secret": CONSUMER_SECRET},
            ["needs your org's My Domain", "not 'login'", "acme.my"],
        ),
        (
            {"domain": "test", "consumer_key": "k", "consumer_secret": CONSUMER_SECRET},
            ["not 'test'", "acme--uat.sandbox.my"],
        ),
        (
            {
                "auth_type": "client_credentials",
                "domain": "https://login.salesforce.com/",
                "consumer_key": "k",
                "consumer_secret": CONSUMER_SECRET,
            },
            ["needs your org's My Domain"],
        ),
        # Both modes without auth_type.
        (
            {
                "login": "u",
                "password": PASSWORD,
                "security_token": TOKEN,
                "domain": "acme.my",
                "consumer_key": "k",
                "consumer_secret": CONSUMER_SECRET,
            },
            ["both authentication types", "Authentication Type (auth_type)", "'security_token'"],
        ),
        (
            {"login": "u", "consumer_key": "k"},
            ["both authentication types", "Username (login)", "Consumer Key"],
        ),
        # Unknown auth_type.
        (
            {"auth_type": "jwt", "login": "u"},
            ["Authentication Type (auth_type) is 'jwt'", "'client_credentials'"],
        ),
        # Malformed domain in either mode.
        (
            {
                "login": "u",
                "password": PASSWORD,
                "security_token": TOKEN,
                "domain": "http://acme.my.salesforce.com",
            },
            ["HTTPS"],
        ),
        (
            {"domain": "not a host", "consumer_key": "k", "consumer_secret": CONSUMER_SECRET},
            ["not a host name"],
        ),
    ],
)
def test_resolution_errors(fields: dict[str, str], expected: list[str]) -> None:
    fields = dict(fields)
    conn = make_conn(login=fields.pop("login", None), password=fields.pop("password", None), **fields)
    with pytest.raises(SalesforceConfigError) as excinfo:
        resolve_auth(conn)
    message = str(excinfo.value)
    for fragment in expected:
        assert fragment in message
    assert_no_secret(message)
    assert excinfo.value.retryable is False


def test_blank_fields_count_as_absent() -> None:
    """A fully blank UI form is "no credentials", not a Security Token login with empty values."""
    conn = make_conn(login="", password="", security_token="   ")
    with pytest.raises(SalesforceConfigError, match="no Salesforce credentials"):
        resolve_auth(conn)


# ------------------------------------------------------------------ client settings
def test_settings_defaults() -> None:
    assert resolve_settings(make_conn()) == ClientSettings()
    assert ClientSettings().version == DEFAULT_API_VERSION


def test_settings_from_extras(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = resolve_settings(
        make_conn(version="v60.0", timeout="30", max_retries=2, retry_base_seconds="0.01", ca_bundle=str(ca))
    )
    assert settings == ClientSettings(
        version="60.0", timeout=30.0, max_retries=2, retry_base_seconds=0.01, ca_bundle=str(ca)
    )


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"version": "latest"}, "API Version (version)"),
        ({"timeout": "soon"}, "Request Timeout (timeout)"),
        ({"timeout": 0}, "more than 0"),
        ({"max_retries": "1.5"}, "Max Retries (max_retries)"),
        ({"max_retries": -1}, "must not be negative"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "CA Bundle (ca_bundle)"),
    ],
)
def test_settings_errors(extra: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SalesforceConfigError) as excinfo:
        resolve_settings(make_conn(**extra))
    assert fragment in str(excinfo.value)
