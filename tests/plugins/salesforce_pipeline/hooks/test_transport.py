"""The transport every request goes through, against the emulator over HTTPS: Retry-After,
retries and refresh for simple-salesforce's own calls, TLS that a caller cannot turn off, and the
connection's proxies (through a real CONNECT proxy)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import pytest

from salesforce_pipeline.errors import SalesforceConfigError, SalesforceQueryError, SalesforceTransientError
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from tests.plugins.salesforce_pipeline.hooks.test_salesforce import (  # noqa: F401 - fixtures, found by name
    logs_without_secrets,
    masked,
    ui_connection,
    use_connection,
)
from tests.support.proxy import ConnectProxy

COUNT = "SELECT COUNT() FROM Account"


@pytest.fixture
def make_hook(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., SalesforcePipelineHook]:
    """A hook on a UI-built connection to the emulator whose pauses are recorded, not slept."""

    def make(mode: str = "client_credentials", **overrides: Any) -> SalesforcePipelineHook:
        extras = {"max_retries": 3, "retry_base_seconds": 0.001, **overrides}
        use_connection(monkeypatch, ui_connection(sf_emulator, mode, **extras))
        hook = SalesforcePipelineHook()
        hook.pauses = []  # type: ignore[attr-defined]
        hook._sleep = hook.pauses.append  # type: ignore[attr-defined]
        return hook

    return make


# ------------------------------------------------------------------ Retry-After
def test_retry_after_seconds_is_waited_at_least(make_hook, sf_emulator) -> None:
    sf_emulator.org.inject("server_unavailable", endpoint="query", count=2, retry_after="7")
    hook = make_hook()
    assert hook.count(COUNT) == sf_emulator.org.count("Account")
    assert len(hook.pauses) == 2
    assert all(pause >= 7 for pause in hook.pauses), hook.pauses  # the backoff alone is milliseconds


def test_retry_after_as_an_http_date_is_waited_too(make_hook, sf_emulator) -> None:
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    sf_emulator.org.inject("concurrent_limit", endpoint="query", count=1, retry_after=when)
    hook = make_hook()
    assert hook.count(COUNT) == sf_emulator.org.count("Account")
    assert len(hook.pauses) == 1
    assert 15 <= hook.pauses[0] <= 21, hook.pauses


def test_a_retry_after_longer_than_a_task_waits_ends_the_retries_at_once(make_hook, sf_emulator) -> None:
    sf_emulator.org.inject("server_unavailable", endpoint="query", count=None, retry_after="3600")
    hook = make_hook()
    with pytest.raises(SalesforceTransientError, match="asked to wait 3600 s"):
        hook.count(COUNT)
    assert hook.pauses == []
    assert sf_emulator.org.counters["query"] == 1


# ------------------------------------------------------------------ simple-salesforce's own calls
def test_inherited_make_query_logs_in_again_when_the_session_expired(make_hook, sf_emulator) -> None:
    hook = make_hook("security_token")
    hook.get_conn()
    sf_emulator.org.inject("expire_sessions", endpoint="query")
    result = hook.make_query("SELECT Id FROM Account")
    assert sorted(r["Id"] for r in result["records"]) == sorted(sf_emulator.org.all_ids("Account"))
    assert hook.logins == 2
    # The client simple-salesforce holds carries the new session, so the next call needs no login.
    hook.get_object_from_salesforce("Contact", ["Id"])
    assert hook.logins == 2


@pytest.mark.emulator(accounts=2500, contacts=10)  # two pages of 2,000
def test_inherited_query_more_keeps_paging_across_an_expired_session(make_hook, sf_emulator) -> None:
    hook = make_hook()
    sf_emulator.org.inject("expire_sessions", endpoint="query_more")
    result = hook.get_conn().query_all("SELECT Id FROM Account")
    assert result["totalSize"] == len(result["records"]) == sf_emulator.org.count("Account")
    assert hook.logins == 2
    assert sf_emulator.org.counters["query_more"] == 2  # the page that met the expired session, resent


def test_simple_salesforce_calls_are_retried_and_counted(make_hook, sf_emulator) -> None:
    hook = make_hook()
    sf_emulator.org.inject("server_unavailable", endpoint="describe", count=2)
    described = hook.get_conn().Account.describe()
    assert described["name"] == "Account"
    assert len(hook.pauses) == 2
    assert hook.api_calls == 3
    assert hook.api_usage is not None


def test_retries_can_be_turned_off(make_hook, sf_emulator) -> None:
    sf_emulator.org.inject("server_unavailable", endpoint="query", count=1)
    hook = make_hook(max_retries=0)
    with pytest.raises(SalesforceTransientError, match="gave up after 0 retries"):
        hook.count(COUNT)


# ------------------------------------------------------------------ TLS
def test_a_callers_verify_false_is_still_verified(make_hook, sf_emulator, monkeypatch) -> None:
    """Without the emulator's CA trusted, verify=False must not get a request through."""
    import certifi

    hook = make_hook()
    hook.get_conn()
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, certifi.where())
    with pytest.raises(SalesforceConfigError, match="TLS certificate verification failed"):
        hook.http.request("GET", f"{sf_emulator.base_url}/services/data/", verify=False)


# ------------------------------------------------------------------ proxies
@pytest.mark.parametrize("mode", ["security_token", "client_credentials"])
def test_every_request_goes_through_the_connections_proxy(make_hook, sf_emulator, mode) -> None:
    with ConnectProxy() as proxy:
        hook = make_hook(mode, proxies=f'{{"https": "{proxy.url}"}}')
        assert hook.count(COUNT) == sf_emulator.org.count("Account")
        assert len(hook.make_query("SELECT Id FROM Contact")["records"]) == sf_emulator.org.count("Contact")
    emulator_host = sf_emulator.base_url.split("://", 1)[1]
    assert proxy.tunnels
    assert set(proxy.tunnels) == {emulator_host}


@pytest.mark.parametrize("value", ["not json", '{"https": "ftp://proxy:21"}', "[]", '{"https": 3}'])
def test_a_bad_proxies_extra_is_refused_before_any_call(make_hook, sf_emulator, value) -> None:
    hook = make_hook(proxies=value)
    with pytest.raises(SalesforceConfigError, match=r"Proxies \(proxies\)"):
        hook.get_conn()
    assert sf_emulator.org.counters == {}


# ------------------------------------------------------------------ secrets Salesforce echoes
def test_a_secret_salesforce_echoes_is_scrubbed_from_the_error(make_hook, sf_emulator) -> None:
    hook = make_hook()
    hook.get_conn()
    secret = sf_emulator.credentials.consumer_secret
    token = sf_emulator.org.sessions[-1].token
    message = f"unexpected token: {secret} near {token}"
    sf_emulator.org.inject(
        "http_error", endpoint="query", status=400, error_code="MALFORMED_QUERY", message=message
    )
    with pytest.raises(SalesforceQueryError) as excinfo:
        hook.count(COUNT)
    assert secret not in str(excinfo.value)
    assert token not in str(excinfo.value)
    assert "unexpected token: *** near ***" in str(excinfo.value)
