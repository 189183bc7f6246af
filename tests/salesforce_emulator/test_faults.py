"""Every injectable fault, and the exception simple-salesforce raises for it."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)
from simple_salesforce.login import SalesforceLogin

from salesforce_emulator import Emulator

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


@pytest.mark.emulator(contacts=800)
def test_expire_sessions_after_second_page(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("expire_sessions", after=2, path_contains="/query")
    seen: list[dict] = []
    records = sf.query_all_iter("SELECT Id FROM Contact", headers=BATCH_200)
    with pytest.raises(SalesforceExpiredSession) as info:
        seen.extend(records)
    assert len(seen) == 400  # two pages, then the third request is refused
    assert info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    fresh = sf_emulator.salesforce()  # a fresh login works
    assert fresh.query("SELECT COUNT() FROM Contact")["totalSize"] > 0


def test_simple_salesforce_refreshes_an_expired_password_session(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    session_id, instance = sf_emulator.login("soap")
    sf = Salesforce(session_id=session_id, instance=instance)
    # The same refresh hook simple-salesforce builds for password logins, pointed at the
    # emulator through SalesforceLogin's scratch_url (Salesforce() hard-codes salesforce.com).
    sf._salesforce_login_partial = partial(
        SalesforceLogin, username=c.username, password=c.password, security_token=c.security_token,
        session=sf.session, scratch_url=sf_emulator.base_url,
    )  # fmt: skip
    sf_emulator.org.inject("expire_sessions")
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] >= 0
    assert sf_emulator.org.logins["soap"] == 2


def test_server_unavailable(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("server_unavailable", count=2)
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as info:
            sf.query("SELECT Id FROM Account LIMIT 1")
        assert info.value.status == 503
        assert info.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf.query("SELECT Id FROM Account LIMIT 1")["records"]


def test_daily_limit(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.set_daily_limit(3)
    for _ in range(3):
        sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.status == 403
    assert info.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert sf_emulator.org.api_usage == (3, 3)


def test_request_limit_fault(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("request_limit", endpoint="limits")
    sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest):
        sf.limits()


def test_delay_causes_read_timeout(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("delay", seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.query("SELECT Id FROM Account LIMIT 1", timeout=0.2)
    started = time.perf_counter()
    sf.query("SELECT Id FROM Account LIMIT 1", timeout=2)
    assert time.perf_counter() - started < 0.5


def test_delay_without_timeout_just_slows(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("delay", seconds=0.3, count=2)
    started = time.perf_counter()
    sf.query("SELECT Id FROM Account LIMIT 1")
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert time.perf_counter() - started >= 0.6


def test_drop_connection_mid_response(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("drop_connection", fraction=0.3)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        sf.query("SELECT Id, Name FROM Contact")
    assert sf.query("SELECT Id FROM Account LIMIT 1")["records"]  # a new connection works


def test_reset_connection(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("reset_connection")
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Account LIMIT 1")


def test_malformed_json_page(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("malformed_json", endpoint="query")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        sf.query("SELECT Id FROM Account")


def test_truncated_csv_only_on_results(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("truncated_csv", path_contains="/results", fraction=0.5)
    base = f"{sf_emulator.base_url}/services/data/v59.0/jobs/query"
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    job = requests.post(
        base, json={"operation": "query", "query": "SELECT Id, Name FROM Contact"}, headers=headers
    ).json()
    while requests.get(f"{base}/{job['id']}", headers=headers).json()["state"] != "JobComplete":
        pass
    resp = requests.get(f"{base}/{job['id']}/results", headers=headers)
    assert resp.status_code == 200
    lines = resp.text.splitlines()
    assert len(lines) - 1 < int(resp.headers["Sforce-NumberOfRecords"])  # the client can tell
    assert not resp.text.endswith("\n")


def test_truncated_csv_through_bulk2(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("truncated_csv")
    pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0))
    assert pages[0].count("\n") < sf_emulator.org.count("Contact")


def test_http_error_custom(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject(
        "http_error", status=500, error_code="UNKNOWN_EXCEPTION", message="boom", endpoint="describe"
    )
    with pytest.raises(SalesforceGeneralError) as info:
        sf.Account.describe()
    assert info.value.status == 500
    assert info.value.content[0] == {
        "message": "boom",
        "errorCode": "UNKNOWN_EXCEPTION",
    }


def test_bulk_job_failed(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("bulk_job_failed", message="InternalServerError : retry later")
    with pytest.raises(SalesforceOperationError, match="retry later"):
        list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0))


def test_concurrent_limit(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.concurrent_limit = 1
    sf_emulator.org.inject("delay", seconds=0.5, endpoint="limits")
    slow = threading.Thread(target=sf_emulator.salesforce().limits)  # logs in here, not in the thread
    slow.start()
    time.sleep(0.2)
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    slow.join()
    assert "Concurrent" in info.value.content[0]["message"]


def test_after_and_count_targeting(sf_emulator: Emulator, sf: Salesforce) -> None:
    fault = sf_emulator.org.inject("server_unavailable", after=1, count=1, endpoint=("describe", "limits"))
    sf.query("SELECT Id FROM Account LIMIT 1")  # not targeted
    sf.limits()  # first targeted call passes (after=1)
    with pytest.raises(SalesforceGeneralError):
        sf.Account.describe()
    sf.Account.describe()
    assert fault.fired == 1
    assert fault.seen == 2
    assert not sf_emulator.org.faults.active


def test_logins_untouched_unless_targeted(sf_emulator: Emulator) -> None:
    sf_emulator.org.inject("server_unavailable")
    sf = sf_emulator.salesforce()  # the login is not "the next call"
    with pytest.raises(SalesforceGeneralError):
        sf.query("SELECT Id FROM Account LIMIT 1")
    sf_emulator.org.inject("server_unavailable", endpoint="login_oauth")
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        sf_emulator.login("oauth")
    assert info.value.code == "server_unavailable"


def test_unknown_fault_kind(sf_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sf_emulator.org.inject("meteor")
