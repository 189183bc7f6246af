"""SalesforcePipelineHook against the Salesforce emulator over HTTPS.

Connections are built the three ways customers build them (the UI form, the CLI's
``--conn-json``, an ``AIRFLOW_CONN_*`` environment variable). Every test also checks, at
teardown, that no secret (password, security token, consumer secret, session id, access token)
reached the captured logs: the hook logs through Airflow's structlog setup, which writes to
stdout, so logs are read from caplog *and* capsys.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airflow.sdk import Connection
from simple_salesforce import Salesforce

from salesforce_pipeline.bulk_csv import bulk_page_records
from salesforce_pipeline.errors import (
    SalesforceApiError,
    SalesforceBulkJobError,
    SalesforceConfigError,
    SalesforceDailyLimitExceeded,
    SalesforceLoginError,
    SalesforceQueryError,
    SalesforceTransientError,
)
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

CONN_TYPE = "customerscore_salesforce"
# Tiny backoff so retry tests take milliseconds; timeout small enough for the delay fault.
FAST = {"max_retries": 3, "retry_base_seconds": 0.001, "timeout": 5}
MODES = ("security_token", "client_credentials")


# ------------------------------------------------------------------ log capture & secret checks
class Logs:
    """Everything logged during a test: stdlib records (caplog) and structlog's stdout/stderr."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
        self._caplog = caplog
        self._capsys = capsys
        self._seen = ""

    @property
    def text(self) -> str:
        out = self._capsys.readouterr()
        self._seen += out.out + out.err
        return self._caplog.text + self._seen


@pytest.fixture
def masked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Values the hook registered with Airflow's secrets masker (still registered for real)."""
    import airflow.sdk.log

    registered: list[str] = []
    real = airflow.sdk.log.mask_secret

    def spy(secret: Any, name: str | None = None) -> None:
        registered.append(secret)
        real(secret, name)

    monkeypatch.setattr(airflow.sdk.log, "mask_secret", spy)
    return registered


@pytest.fixture(autouse=True)
def logs_without_secrets(
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    masked: list[str],
) -> Iterator[Logs]:
    """Capture all logs; after the test, assert that no secret appears in them."""
    # Set the emulator up first so that it is still there when this fixture checks, at teardown.
    emulator = request.getfixturevalue("sf_emulator") if "sf_emulator" in request.fixturenames else None
    caplog.set_level(logging.DEBUG)
    logs = Logs(caplog, capsys)
    yield logs
    if emulator is None:
        return
    creds = emulator.credentials
    secrets = {creds.password, creds.security_token, creds.consumer_secret}
    secrets |= {value for value in masked if isinstance(value, str)}  # Airflow also masks whole dicts
    secrets |= {session.token for session in emulator.org.sessions}
    # (That capture works at all is shown by test_soap_login_warns_about_retirement and others.)
    text = logs.text
    for secret in secrets:
        assert secret not in text, "a secret reached the logs"


# ------------------------------------------------------------------ connections, three ways
def form_extra(emulator: Any, mode: str, **overrides: Any) -> dict[str, Any]:
    """The extras the UI form posts: every field, blanks as ""."""
    creds = emulator.credentials
    extra = {
        "auth_type": mode,
        "security_token": creds.security_token if mode == "security_token" else "",
        "domain": emulator.base_url,
        "consumer_key": creds.consumer_key if mode == "client_credentials" else "",
        "consumer_secret": creds.consumer_secret if mode == "client_credentials" else "",
        "version": "",
        "timeout": FAST["timeout"],
        "max_retries": FAST["max_retries"],
        "retry_base_seconds": FAST["retry_base_seconds"],
        "ca_bundle": "",
    }
    extra.update(overrides)
    return extra


def ui_connection(emulator: Any, mode: str, conn_id: str = "salesforce_default", **overrides: Any) -> Any:
    """The form's fields as a task receives them: every field posted, blanks as "", extras as JSON."""
    creds = emulator.credentials
    token_mode = mode == "security_token"
    return Connection(
        conn_id=conn_id,
        conn_type=CONN_TYPE,
        description="",
        host="",
        login=creds.username if token_mode else "",
        password=creds.password if token_mode else "",
        extra=json.dumps(form_extra(emulator, mode, **overrides)),
    )


def conn_json(emulator: Any, mode: str, conn_type: str = CONN_TYPE) -> str:
    """The JSON a customer passes to `airflow connections add --conn-json` or the env var."""
    creds = emulator.credentials
    if mode == "security_token":
        body = {
            "conn_type": conn_type,
            "login": creds.username,
            "password": creds.password,
            "extra": {
                "auth_type": "security_token",
                "security_token": creds.security_token,
                **_fast_url(emulator),
            },
        }
    else:
        body = {
            "conn_type": conn_type,
            "extra": {
                "auth_type": "client_credentials",
                "consumer_key": creds.consumer_key,
                "consumer_secret": creds.consumer_secret,
                **_fast_url(emulator),
            },
        }
    return json.dumps(body)


def _fast_url(emulator: Any) -> dict[str, Any]:
    return {"domain": emulator.base_url, **FAST}


def use_connection(monkeypatch: pytest.MonkeyPatch, conn: Any) -> None:
    """Serve ``conn`` to the hook as if a secrets backend held it."""
    monkeypatch.setattr(SalesforcePipelineHook, "get_connection", classmethod(lambda cls, conn_id: conn))


@pytest.fixture
def make_hook(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., SalesforcePipelineHook]:
    """``make_hook(mode, **extra_overrides)``: a hook on a UI-built connection to the emulator."""

    def make(mode: str = "client_credentials", **overrides: Any) -> SalesforcePipelineHook:
        use_connection(monkeypatch, ui_connection(sf_emulator, mode, **overrides))
        return SalesforcePipelineHook()

    return make


def account_ids_truth(emulator: Any, *, include_deleted: bool = False) -> list[str]:
    return sorted(emulator.org.all_ids("Account", include_deleted=include_deleted))


def csv_ids(pages: list[bytes]) -> list[str]:
    ids: list[str] = []
    for page in pages:
        ids.extend(row["Id"] for row in csv.DictReader(io.StringIO(page.decode())))
    return sorted(ids)


def login_count(emulator: Any) -> int:
    return sum(emulator.org.logins.values())


def login_attempts(emulator: Any) -> int:
    return login_count(emulator) + sum(emulator.org.login_failures.values())


# ------------------------------------------------------------------ log in three ways, paginate
@pytest.mark.emulator(accounts=700, contacts=10)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", ["ui", "cli", "env"])
def test_login_and_paginated_query(
    sf_emulator: Any, monkeypatch: pytest.MonkeyPatch, source: str, mode: str
) -> None:
    if source == "ui":
        use_connection(monkeypatch, ui_connection(sf_emulator, mode))
    elif source == "cli":
        use_connection(
            monkeypatch, Connection.from_json(conn_json(sf_emulator, mode), conn_id="salesforce_default")
        )
    else:  # resolved by Airflow itself, BaseHook.get_connection -> environment variables backend
        monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", conn_json(sf_emulator, mode))

    hook = SalesforcePipelineHook(salesforce_conn_id="salesforce_default")
    assert hook.auth_mode == mode
    assert sf_emulator.org.counters == {}, "nothing may connect before first use"

    pages = list(hook.query_pages("SELECT Id, Name FROM Account", batch_size=200))

    assert len(pages) > 3
    assert all(len(page) <= 200 for page in pages)
    assert sorted(r["Id"] for page in pages for r in page) == account_ids_truth(sf_emulator)
    assert sf_emulator.org.logins == {
        "soap": int(mode == "security_token"),
        "oauth": int(mode == "client_credentials"),
    }
    assert hook.logins == 1
    assert (
        hook.api_calls
        == len(pages)
        == sf_emulator.org.counters["query"] + sf_emulator.org.counters["query_more"]
    )
    assert hook.api_usage == sf_emulator.org.api_usage


def test_provider_salesforce_connection_type_works(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection of the provider's plain `salesforce` type, old prefixed extras and no auth_type."""
    creds = sf_emulator.credentials
    conn = Connection(
        conn_id="salesforce_default",
        conn_type="salesforce",
        login=creds.username,
        password=creds.password,
        extra=json.dumps(
            {
                "extra__salesforce__security_token": creds.security_token,
                "extra__salesforce__domain": sf_emulator.base_url,
                "extra__salesforce__consumer_key": "",
                "extra__salesforce__consumer_secret": "",
                "extra__salesforce__version": "60.0",
            }
        ),
    )
    use_connection(monkeypatch, conn)
    hook = SalesforcePipelineHook()
    assert hook.auth_mode == "security_token"
    assert hook.count("SELECT COUNT() FROM Account") == sf_emulator.org.count("Account")
    assert hook.get_conn().sf_version == "60.0"


def test_get_conn_is_a_cached_logged_in_client(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    client = hook.get_conn()
    assert isinstance(client, Salesforce)
    assert hook.get_conn() is client is hook.conn
    assert client.sf_instance == sf_emulator.instance
    assert client.sf_version == "62.0"
    # The plain simple-salesforce API works on it (through our TLS-verifying session).
    assert client.query("SELECT COUNT() FROM Contact")["totalSize"] == sf_emulator.org.count("Contact")
    assert login_count(sf_emulator) == 1


def test_soap_login_warns_about_retirement(
    make_hook: Callable[..., SalesforcePipelineHook], logs_without_secrets: Logs
) -> None:
    hook = make_hook("security_token")
    hook.get_conn()
    assert "retires SOAP login in Summer '27" in logs_without_secrets.text
    assert "Connected App" in logs_without_secrets.text


def test_session_ids_are_registered_with_the_masker(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, masked: list[str]
) -> None:
    make_hook("security_token").get_conn()
    make_hook("client_credentials").get_conn()
    tokens = {session.token for session in sf_emulator.org.sessions}
    assert len(tokens) == 2
    assert tokens <= {value for value in masked if isinstance(value, str)}


def test_count_describe_and_limits(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    org = sf_emulator.org
    hook = make_hook("client_credentials")
    org.delete("Account", org.all_ids("Account", include_deleted=False)[0])

    assert hook.count("SELECT COUNT() FROM Account") == org.count("Account")
    assert hook.count("SELECT COUNT() FROM Account", include_deleted=True) == org.count(
        "Account", include_deleted=True
    )
    assert org.counters["query_all"] == 1

    describe = hook.describe_object("Account")
    assert describe["name"] == "Account"
    assert "SystemModstamp" in {f["name"] for f in describe["fields"]}
    assert hook.describe_object("Account") is describe
    assert org.counters["describe"] == 1
    with pytest.raises(ValueError, match="sObject"):
        hook.describe_object("Account/../limits")

    used, maximum = org.api_usage
    assert hook.daily_api_limit() == (maximum - used - 1, maximum)  # /limits/ itself counts
    assert hook.api_usage == org.api_usage
    assert hook.api_calls == 4
    hook.log_api_usage()


def test_log_api_usage(make_hook: Callable[..., SalesforcePipelineHook], logs_without_secrets: Logs) -> None:
    hook = make_hook("client_credentials")
    hook.log_api_usage()
    assert "org daily usage not reported" in logs_without_secrets.text
    hook.count("SELECT COUNT() FROM Account")
    hook.log_api_usage()
    assert "1 calls and 1 logins by this hook" in logs_without_secrets.text


def test_query_all_pages_include_deleted(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    pages = list(hook.query_pages("SELECT Id, IsDeleted FROM Account", include_deleted=True))
    assert sorted(r["Id"] for p in pages for r in p) == account_ids_truth(sf_emulator, include_deleted=True)


# ------------------------------------------------------------------ released query cursors
RELEASED = "released the query's cursor"


@pytest.mark.emulator(accounts=700, contacts=10)
def test_an_invalid_query_locator_is_transient_and_not_fetched_again(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.inject(
        "http_error",
        endpoint="query_more",
        after=1,
        status=400,
        error_code="INVALID_QUERY_LOCATOR",
        message="invalid query locator",
    )
    hook = make_hook("client_credentials")
    with pytest.raises(SalesforceTransientError) as failed:
        list(hook.query_pages("SELECT Id FROM Account", batch_size=200))
    error = failed.value
    assert error.retryable is True
    for why in (
        "INVALID_QUERY_LOCATOR",
        RELEASED,
        "more than 10 query cursors",
        "15 minutes",
        "runs the query again",
    ):
        assert why in str(error)
    assert sf_emulator.org.counters["query_more"] == 2, "a released cursor is not asked for again"


@pytest.mark.emulator(accounts=700, contacts=10)
def test_a_cursor_released_by_the_same_users_11th_is_transient(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    pages = hook.query_pages("SELECT Id FROM Account", batch_size=200)
    first = next(pages)
    other = sf_emulator.salesforce()  # another client logged in as the same user
    for _ in range(10):
        other.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=200"})
    with pytest.raises(SalesforceTransientError, match=RELEASED):
        list(pages)
    # What the retried task does: run the query again, which now succeeds.
    rerun = list(hook.query_pages("SELECT Id FROM Account", batch_size=200))
    assert sorted(r["Id"] for p in rerun for r in p) == account_ids_truth(sf_emulator)
    assert len(first) == 200


@pytest.mark.emulator(accounts=700, contacts=10)
def test_a_cursor_idle_for_15_minutes_is_transient(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    pages = hook.query_pages("SELECT Id FROM Account", batch_size=200)
    next(pages)
    sf_emulator.org.advance_clock(15 * 60 + 1)  # the consumer of the pages was slow
    with pytest.raises(SalesforceTransientError, match=RELEASED):
        next(pages)


@pytest.mark.emulator(accounts=700, contacts=10)
def test_a_query_resumes_from_a_stored_cursor_path_and_refuses_anything_else(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    pages = hook.query_pages_resumable("SELECT Id FROM Account", batch_size=200)
    first, cursor = next(pages)
    resumed = [page for page, _ in hook.query_pages_resumable("SELECT Id FROM Account", resume_url=cursor)]
    assert sorted(r["Id"] for p in [first, *resumed] for r in p) == account_ids_truth(sf_emulator)

    asked = dict(sf_emulator.org.counters)
    # What a tampered checkpoint row could hold: another host, another resource of the instance.
    for stored in (
        "@attacker.example/services/data/v62.0/query/x",
        "/services/apexrest/x",
        "//attacker.example/x",
    ):
        with pytest.raises(SalesforceTransientError, match="not a Salesforce query cursor path"):
            next(hook.query_pages_resumable("SELECT Id FROM Account", resume_url=stored))
    assert dict(sf_emulator.org.counters) == asked, "nothing was requested"


# ------------------------------------------------------------------ Bulk API 2.0
@pytest.mark.emulator(accounts=250, contacts=10)
@pytest.mark.parametrize("mode", MODES)
def test_bulk2_query_csv_pages(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, mode: str
) -> None:
    hook = make_hook(mode)
    pages = list(hook.bulk2_query_csv_pages("SELECT Id, Name FROM Account", max_records=100, poll_interval=0))
    assert len(pages) == 3
    assert all(page.startswith((b'"Id","Name"', b"Id,Name")) for page in pages)
    assert csv_ids(pages) == account_ids_truth(sf_emulator)


@pytest.mark.emulator(accounts=250, contacts=10)
def test_bulk2_pages_read_in_one_piece_keep_the_connection_alive(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    # Result pages are streamed and read whole from the raw response: the connection must still
    # go back to the pool after each page, so the job's calls share one TLS connection.
    hook = make_hook("client_credentials")
    hook.count("SELECT COUNT() FROM Account")  # logged in, one connection open
    pools = hook.http.get_adapter(f"https://{hook.get_conn().sf_instance}").poolmanager.pools
    pools = [pools[key] for key in pools.keys()]  # noqa: SIM118 (the container cannot be iterated)
    opened_before = sum(pool.num_connections for pool in pools)
    pages = list(hook.bulk2_query_csv_pages("SELECT Id, Name FROM Account", max_records=100, poll_interval=0))
    assert len(pages) == 3
    assert sum(pool.num_connections for pool in pools) == opened_before
    assert csv_ids(pages) == account_ids_truth(sf_emulator)


def test_bulk2_query_all_includes_deleted(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    pages = list(hook.bulk2_query_csv_pages("SELECT Id FROM Account", include_deleted=True, poll_interval=0))
    assert csv_ids(pages) == account_ids_truth(sf_emulator, include_deleted=True)


def test_bulk2_failed_job_raises_with_salesforces_message(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.inject("bulk_job_failed", message="InvalidBatch : Failed to process query")
    hook = make_hook("client_credentials")
    with pytest.raises(SalesforceBulkJobError, match="Failed to process query") as excinfo:
        list(hook.bulk2_query_csv_pages("SELECT Id FROM Account", poll_interval=0))
    assert excinfo.value.state == "Failed"
    assert excinfo.value.retryable is False


def test_bulk2_invalid_query_is_a_query_error(make_hook: Callable[..., SalesforcePipelineHook]) -> None:
    hook = make_hook("client_credentials")
    with pytest.raises(SalesforceQueryError) as excinfo:
        list(hook.bulk2_query_csv_pages("SELECT NoSuchField__c FROM Account", poll_interval=0))
    assert "NoSuchField__c" in str(excinfo.value)


# ------------------------------------------------------------------ sessions that survive
@pytest.mark.emulator(accounts=700, contacts=10)
@pytest.mark.parametrize("mode", MODES)
def test_session_expiry_mid_rest_pagination(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, mode: str
) -> None:
    org = sf_emulator.org
    hook = make_hook(mode)
    org.inject("expire_sessions", endpoint="query_more", after=1)

    pages = list(hook.query_pages("SELECT Id FROM Account", batch_size=200))

    assert sorted(r["Id"] for p in pages for r in p) == account_ids_truth(sf_emulator)
    assert login_count(sf_emulator) == hook.logins == 2
    # The one call that met the expired session was repeated: one extra query_more request.
    assert org.counters["query_more"] == len(pages) - 1 + 1


@pytest.mark.emulator(accounts=250, contacts=10)
@pytest.mark.parametrize("endpoint", ["bulk2_create", "bulk2_poll", "bulk2_results"])
def test_session_expiry_mid_bulk2(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, endpoint: str
) -> None:
    hook = make_hook("security_token")
    sf_emulator.org.inject(
        "expire_sessions", endpoint=endpoint, after=1 if endpoint == "bulk2_results" else 0
    )

    pages = list(hook.bulk2_query_csv_pages("SELECT Id FROM Account", max_records=100, poll_interval=0))

    assert csv_ids(pages) == account_ids_truth(sf_emulator)
    assert login_count(sf_emulator) == hook.logins == 2


def test_session_rejected_again_after_fresh_login_fails(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    sf_emulator.org.inject("expire_sessions", endpoint="query", count=None)
    with pytest.raises(SalesforceApiError, match="rejected the session again") as excinfo:
        hook.count("SELECT COUNT() FROM Account")
    assert excinfo.value.status == 401
    assert excinfo.value.retryable is False
    assert login_count(sf_emulator) == 2


# ------------------------------------------------------------------ honest retries
@pytest.mark.emulator(accounts=700, contacts=10)
@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("server_unavailable", {"count": 3}),
        ("reset_connection", {"count": 2}),
        ("drop_connection", {"count": 2}),
        ("delay", {"count": 1, "seconds": 1.5}),
        ("concurrent_limit", {"count": 2}),
        ("malformed_json", {"count": 2}),
        ("http_error", {"count": 2, "status": 502, "error_code": "BAD_GATEWAY"}),
    ],
)
def test_transient_failures_mid_pagination_are_retried(
    make_hook: Callable[..., SalesforcePipelineHook],
    sf_emulator: Any,
    logs_without_secrets: Logs,
    fault: str,
    options: dict[str, Any],
) -> None:
    hook = make_hook("client_credentials", timeout=0.5)
    sf_emulator.org.inject(fault, endpoint="query_more", after=1, **options)

    pages = list(hook.query_pages("SELECT Id FROM Account", batch_size=200))

    assert sorted(r["Id"] for p in pages for r in p) == account_ids_truth(sf_emulator)
    assert hook.api_calls == len(pages) + options["count"]
    assert login_count(sf_emulator) == 1
    assert "retry 1 of 3" in logs_without_secrets.text


@pytest.mark.emulator(accounts=250, contacts=10)
@pytest.mark.parametrize(
    ("fault", "endpoint"),
    [
        ("server_unavailable", "bulk2_create"),
        ("server_unavailable", "bulk2_poll"),
        ("server_unavailable", "bulk2_results"),
        ("reset_connection", "bulk2_results"),
        ("drop_connection", "bulk2_results"),
        ("truncated_csv", "bulk2_results"),
    ],
)
def test_transient_failures_in_bulk2_are_retried(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, fault: str, endpoint: str
) -> None:
    hook = make_hook("client_credentials")
    sf_emulator.org.inject(fault, endpoint=endpoint, after=1 if endpoint == "bulk2_results" else 0, count=2)

    pages = list(hook.bulk2_query_csv_pages("SELECT Id, Name FROM Account", max_records=100, poll_interval=0))

    assert csv_ids(pages) == account_ids_truth(sf_emulator)


@pytest.mark.parametrize("endpoint", ["login_oauth", "login_soap"])
def test_transient_login_failures_are_retried(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, endpoint: str
) -> None:
    hook = make_hook("client_credentials" if endpoint == "login_oauth" else "security_token")
    sf_emulator.org.inject("server_unavailable", endpoint=endpoint, count=2)
    assert hook.count("SELECT COUNT() FROM Account") == sf_emulator.org.count("Account")
    assert hook.logins == 3
    assert login_count(sf_emulator) == 1


def test_503_that_does_not_clear_fails_after_bounded_retries(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    sf_emulator.org.inject("server_unavailable", endpoint="query", count=None)
    with pytest.raises(SalesforceTransientError, match="failed 4 times") as excinfo:
        hook.count("SELECT COUNT() FROM Account")
    assert excinfo.value.retryable is True
    assert sf_emulator.org.counters["query"] == 4  # 1 attempt + max_retries=3
    assert hook.api_calls == 4


@pytest.mark.parametrize("mode", MODES)
def test_invalid_credentials_fail_after_one_login_attempt(
    sf_emulator: Any, monkeypatch: pytest.MonkeyPatch, logs_without_secrets: Logs, mode: str
) -> None:
    wrong = "wrong-Secret-Value"
    if mode == "security_token":
        conn = ui_connection(sf_emulator, mode)
        conn.password = wrong
    else:
        conn = ui_connection(sf_emulator, mode, consumer_secret=wrong)
    use_connection(monkeypatch, conn)
    hook = SalesforcePipelineHook()

    with pytest.raises(SalesforceLoginError) as excinfo:
        list(hook.query_pages("SELECT Id FROM Account"))

    message = str(excinfo.value)
    assert ("INVALID_LOGIN" if mode == "security_token" else "invalid_client") in message
    assert excinfo.value.retryable is False
    assert login_attempts(sf_emulator) == 1 == hook.logins
    assert login_count(sf_emulator) == 0
    assert hook.api_calls == 0
    assert wrong not in message
    assert wrong not in logs_without_secrets.text


@pytest.mark.parametrize("how", ["org_limit", "fault"])
def test_daily_limit_fails_at_once_with_usage_figures(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, logs_without_secrets: Logs, how: str
) -> None:
    org = sf_emulator.org
    hook = make_hook("client_credentials")
    if how == "org_limit":
        org.set_daily_limit(1000)
        org.set_api_usage(1000)
    else:
        org.set_api_usage(14_999)
        org.inject("request_limit", endpoint="query")

    with pytest.raises(SalesforceDailyLimitExceeded) as excinfo:
        list(hook.query_pages("SELECT Id FROM Account", batch_size=200))

    error = excinfo.value
    assert error.retryable is False
    used, maximum = org.api_usage
    assert (error.used, error.max) == (used, maximum)
    assert f"{used} of {maximum}" in str(error)
    assert "TotalRequests Limit exceeded" in str(error)
    assert "retry 1 of" not in logs_without_secrets.text
    # Exactly one refused call: no retry storm. The figures come from the refusal's
    # Sforce-Limit-Info header, or, when it has none, from one look at /limits/.
    assert org.counters["query"] == 1
    assert org.counters.get("limits", 0) == (0 if how == "org_limit" else 1)
    assert hook.api_calls == org.counters["query"] + org.counters.get("limits", 0)


def test_malformed_query_fails_with_salesforces_message(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    hook = make_hook("client_credentials")
    with pytest.raises(SalesforceQueryError) as excinfo:
        hook.count("SELECT COUNT() FROM Account WHERE NoSuchField__c = 1")
    assert excinfo.value.code in ("INVALID_FIELD", "MALFORMED_QUERY")
    assert "NoSuchField__c" in str(excinfo.value)
    assert excinfo.value.retryable is False
    assert sf_emulator.org.counters["query"] == 1


def test_config_errors_come_before_any_network_call(
    sf_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, ui_connection(sf_emulator, "client_credentials", consumer_secret=""))
    hook = SalesforcePipelineHook()
    with pytest.raises(SalesforceConfigError, match="Consumer Secret"):
        hook.get_conn()
    use_connection(monkeypatch, ui_connection(sf_emulator, "client_credentials", domain="login"))
    with pytest.raises(SalesforceConfigError, match="My Domain"):
        SalesforcePipelineHook().get_conn()
    assert sf_emulator.org.counters == {}


# ------------------------------------------------------------------ TLS verification
def test_tls_is_verified_and_env_ca_bundle_is_not_enough(
    sf_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the environment trusting only the system roots, the emulator's certificate fails."""
    import certifi

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, certifi.where())
    use_connection(monkeypatch, ui_connection(sf_emulator, "client_credentials"))
    hook = SalesforcePipelineHook()
    with pytest.raises(SalesforceConfigError, match="TLS certificate verification failed") as excinfo:
        hook.get_conn()
    assert "ca_bundle" in str(excinfo.value)
    assert hook.logins == 1  # not retried: a certificate does not fix itself


def test_ca_bundle_extra_wins_over_the_environment(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, certifi.where())
    use_connection(monkeypatch, ui_connection(sf_emulator, "security_token", ca_bundle=sf_emulator.ca_path))
    hook = SalesforcePipelineHook()
    assert hook.count("SELECT COUNT() FROM Account") == sf_emulator.org.count("Account")
    # simple-salesforce's own calls through get_conn() use the bundle too.
    assert hook.get_conn().query("SELECT COUNT() FROM Account")["totalSize"] == sf_emulator.org.count(
        "Account"
    )
    # Even a caller asking for verify=False is verified.
    response = hook.get_conn().session.get(f"{sf_emulator.base_url}/services/data/", verify=False)
    assert response.status_code == 200


# ------------------------------------------------------------------ test_connection (the Test button)
@pytest.mark.parametrize("mode", MODES)
def test_test_connection_success(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, mode: str
) -> None:
    hook = make_hook(mode)
    ok, message = hook.test_connection()
    assert ok is True, message
    title = "Security Token with Username & Password" if mode == "security_token" else "Connected App"
    assert title in message
    assert sf_emulator.org.org_id in message
    assert sf_emulator.instance in message
    used, maximum = sf_emulator.org.api_usage
    assert f"{maximum - used} of {maximum} daily API requests remaining" in message
    assert ("Summer '27" in message) is (mode == "security_token")
    assert sf_emulator.org.counters["limits"] == 1


def _break_password(conn: Any) -> Any:
    conn.password = "wrong-Secret-Value"
    return conn


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("invalid_password", "INVALID_LOGIN"),
        ("invalid_secret", "invalid_client"),
        ("missing_field", "is missing Security Token"),
        ("login_domain_for_app", "My Domain"),
        ("http_domain", "HTTPS"),
        ("daily_limit", "daily API request limit exceeded"),
        ("unavailable", "gave up after 3 retries"),
        ("untrusted_certificate", "TLS certificate verification failed"),
    ],
)
def test_test_connection_failures(
    sf_emulator: Any, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    org = sf_emulator.org
    conn = ui_connection(sf_emulator, "client_credentials")
    if case == "invalid_password":
        conn = _break_password(ui_connection(sf_emulator, "security_token"))
    elif case == "invalid_secret":
        conn = ui_connection(sf_emulator, "client_credentials", consumer_secret="wrong-Secret-Value")
    elif case == "missing_field":
        conn = ui_connection(sf_emulator, "security_token", security_token="")
    elif case == "login_domain_for_app":
        conn = ui_connection(sf_emulator, "client_credentials", domain="login")
    elif case == "http_domain":
        conn = ui_connection(
            sf_emulator, "client_credentials", domain=sf_emulator.base_url.replace("https", "http")
        )
    elif case == "daily_limit":
        org.set_daily_limit(10)
        org.set_api_usage(10)
    elif case == "unavailable":
        org.inject("server_unavailable", endpoint="limits", count=None)
    elif case == "untrusted_certificate":
        import certifi

        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.setenv(name, certifi.where())
    use_connection(monkeypatch, conn)

    ok, message = SalesforcePipelineHook().test_connection()

    assert ok is False
    assert expected in message
    for secret in (
        "wrong-Secret-Value",
        sf_emulator.credentials.password,
        sf_emulator.credentials.consumer_secret,
    ):
        assert secret not in message


@pytest.mark.parametrize("mode", MODES)
def test_test_button_path_runs_our_hook(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """As the API server's /connections/test does: a transient env var, then Connection.test_connection()."""
    import warnings

    from airflow.models import Connection as ConnectionModel

    conn = ui_connection(sf_emulator, mode, conn_id="tmp_test_button_conn")
    monkeypatch.setenv("AIRFLOW_CONN_TMP_TEST_BUTTON_CONN", conn.as_json())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ProvidersManager.hooks deprecation, inside Airflow
        # The API server's route uses the ORM model, so this test does too.
        button = ConnectionModel(conn_id="tmp_test_button_conn", conn_type=CONN_TYPE)  # noqa: AIR311
        ok, message = button.test_connection()
    assert ok is True, message
    assert "daily API requests remaining" in message


# ------------------------------------------------------------------ Bulk page record count
def hostile_csv(rng: random.Random, rows: int, quoting: int) -> bytes:
    alphabet = ["a", "Z", " ", ",", '"', '""', "\n", "\r\n", "\n\n", "é", "🚀", "\t", "\\"]
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n", quoting=quoting)
    writer.writerow(["Id", "Name", "Description"])
    for serial in range(rows):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        writer.writerow([f"001{serial:015d}", text, rng.choice(["", text[::-1]])])
    return sink.getvalue().encode()


@pytest.mark.parametrize("quoting", [csv.QUOTE_ALL, csv.QUOTE_MINIMAL])
@pytest.mark.parametrize("seed", range(4))
def test_the_page_record_count_agrees_with_the_csv_module(seed: int, quoting: int) -> None:
    rng = random.Random(seed)
    content = hostile_csv(rng, rng.randint(0, 300), quoting)
    parsed = sum(1 for row in csv.reader(io.StringIO(content.decode(), newline="")) if row)
    assert bulk_page_records(content) == max(parsed - 1, 0)


def test_a_page_cut_short_is_recognised() -> None:
    content = hostile_csv(random.Random(7), 200, csv.QUOTE_ALL)
    full = bulk_page_records(content)
    inside_a_field = content[: content.rindex(b',"') + 2]  # just after the last field's opening quote
    with pytest.raises(ValueError, match="inside a quoted"):
        bulk_page_records(inside_a_field)
    assert bulk_page_records(content[: content.rindex(b"\n", 0, len(content) - 1) + 1]) == full - 1
    emoji = "🚀".encode()
    with pytest.raises(UnicodeDecodeError):
        bulk_page_records(b'Id,Name\n"001","' + emoji[:2])
    assert bulk_page_records(b"") == 0
    assert bulk_page_records(b"Id,Name\n") == 0
