"""The latency model, the per-org concurrency limits, the per-user cursor limit and gzip Bulk
results, through the real HTTPS emulator and the unmodified simple-salesforce client."""

from __future__ import annotations

import csv
import gzip
import io
import threading
import time
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceRefusedRequest
from simple_salesforce.login import SalesforceLogin

from salesforce_emulator import Emulator, UserLogin

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}
CONCURRENT = [
    {
        "message": "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }
]


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


def api(sf: Salesforce, method: str, path: str, **kwargs: Any) -> requests.Response:
    """A raw API call with the client's session (to see status codes and headers)."""
    return sf.session.request(method, f"{sf.base_url}{path}", headers=sf.headers, **kwargs)


def create_job(sf: Salesforce, soql: str = "SELECT Id, LastName FROM Contact") -> requests.Response:
    return api(sf, "POST", "jobs/query", json={"operation": "query", "query": soql})


# --------------------------------------------------------------------------- latency model
def test_latency_is_off_by_default(sf_emulator: Emulator, sf: Salesforce) -> None:
    settings = sf_emulator.model_settings()
    assert settings["page_latency_ms"] == settings["poll_latency_ms"] == 0
    assert settings["job_base_seconds"] is settings["job_records_per_second"] is None
    assert settings["max_concurrent_requests"] is settings["max_concurrent_bulk_jobs"] is None
    assert (settings["long_running_seconds"], settings["max_cursors_per_user"]) == (20, 10)
    job = create_job(sf).json()
    assert api(sf, "GET", f"jobs/query/{job['id']}").json()["state"] == "InProgress"  # one poll, as ever
    assert api(sf, "GET", f"jobs/query/{job['id']}").json()["state"] == "JobComplete"


@pytest.mark.emulator(contacts=450)
def test_page_latency_before_every_rest_page(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_latency(page_latency_ms=150)
    started = time.monotonic()
    records = list(sf.query_all_iter("SELECT Id FROM Contact", include_deleted=True, headers=BATCH_200))
    elapsed = time.monotonic() - started
    assert len(records) == 450
    assert sf_emulator.org.counters["query_all"] + sf_emulator.org.counters["query_more"] == 3
    assert elapsed >= 3 * 0.15  # the first page and both nextRecordsUrl pages
    started = time.monotonic()
    sf.limits()  # not a page: answered at once
    assert time.monotonic() - started < 0.15


@pytest.mark.emulator(contacts=450)
def test_page_latency_on_bulk_results_and_poll_latency(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_latency(page_latency_ms=100, poll_latency_ms=200)
    started = time.monotonic()
    pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", max_records=200, wait=0))
    elapsed = time.monotonic() - started
    counters = sf_emulator.org.counters
    assert len(pages) == counters["bulk2_results"] >= 2
    assert counters["bulk2_poll"] == 2  # InProgress, then JobComplete
    assert elapsed >= counters["bulk2_results"] * 0.1 + 2 * 0.2


@pytest.mark.emulator(contacts=450)
def test_a_slow_page_does_not_hold_up_other_requests(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_latency(page_latency_ms=1000)
    slow = threading.Thread(target=sf.query, args=("SELECT Id FROM Contact",))
    slow.start()
    time.sleep(0.1)
    started = time.monotonic()
    sf.limits()
    assert time.monotonic() - started < 0.7
    slow.join()


@pytest.mark.emulator(contacts=300)
def test_job_processing_time_keeps_a_job_in_progress(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_latency(job_base_seconds=0.4, job_records_per_second=1000)
    job = create_job(sf).json()
    assert job["state"] == "UploadComplete"
    records = sf_emulator.org.count("Contact", include_deleted=False)
    deadline = time.monotonic() + 0.4 + records / 1000
    url = f"jobs/query/{job['id']}"
    for _ in range(3):  # however often it is polled
        assert api(sf, "GET", url).json()["state"] == "InProgress"
    results = api(sf, "GET", f"{url}/results")
    assert results.status_code == 412
    assert results.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)
    done = api(sf, "GET", url).json()
    assert done["state"] == "JobComplete"
    assert done["numberRecordsProcessed"] == records
    assert done["totalProcessingTime"] == round((0.4 + records / 1000) * 1000)
    pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=0.05))  # the client's own loop
    assert len(next(iter(pages)).splitlines()) == records + 1


def test_results_of_a_processed_job_need_no_further_poll(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_latency(job_base_seconds=0.2)
    job = create_job(sf).json()
    assert api(sf, "GET", f"jobs/query/{job['id']}").json()["state"] == "InProgress"
    time.sleep(0.25)
    assert api(sf, "GET", f"jobs/query/{job['id']}/results").status_code == 200


def test_latency_settings_are_checked(sf_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="page_latency_ms"):
        sf_emulator.set_latency(page_latency_ms=-1)
    with pytest.raises(ValueError, match="unknown"):
        sf_emulator.set_latency(page_ms=1)
    with pytest.raises(ValueError, match="unknown"):
        sf_emulator.set_limits(page_latency_ms=1)  # a latency setting, not a limit
    assert sf_emulator.model_settings()["page_latency_ms"] == 0


# ------------------------------------------------------------------------- per-org, admin, CLI
def test_per_org_and_emulator_wide_settings(sf_emulator: Emulator) -> None:
    sf_emulator.add_org("acme", accounts=5, contacts=10)
    sf_emulator.set_latency("acme", page_latency_ms=40)
    assert sf_emulator.model_settings("acme")["page_latency_ms"] == 40
    assert sf_emulator.model_settings()["page_latency_ms"] == 0
    sf_emulator.set_latency(poll_latency_ms=7)  # every org, and orgs added later
    sf_emulator.add_org("later", accounts=5, contacts=10)
    assert [sf_emulator.model_settings(k)["poll_latency_ms"] for k in ("default", "acme", "later")] == [7] * 3
    org = sf_emulator.add_org("own", accounts=5, contacts=10, poll_latency_ms=1, max_cursors_per_user=3)
    assert (org.latency.poll_latency_ms, org.cursors.max_per_user) == (1, 3)


def test_admin_http_latency_and_limits(sf_emulator: Emulator) -> None:
    base = f"{sf_emulator.base_url}/__admin"
    sf_emulator.add_org("acme", accounts=5, contacts=10)
    put = requests.put(f"{base}/latency", json={"page_latency_ms": 25, "job_records_per_second": 5000})
    assert put.status_code == 200
    assert (put.json()["page_latency_ms"], put.json()["job_records_per_second"]) == (25, 5000)
    assert put.json()["defaults"] == {"page_latency_ms": 25, "job_records_per_second": 5000}
    requests.put(f"{base}/latency?org=acme", json={"poll_latency_ms": 300})
    assert requests.get(f"{base}/latency", params={"org": "acme"}).json()["poll_latency_ms"] == 300
    got = requests.get(f"{base}/latency").json()
    assert (got["page_latency_ms"], got["poll_latency_ms"], got["in_flight"]) == (25, 0, 0)
    limits = requests.put(
        f"{base}/limits",
        json={
            "max_concurrent_requests": 25,
            "long_running_seconds": 0,
            "max_cursors_per_user": 4,
            "org": "acme",
        },
    ).json()
    assert (limits["max_concurrent_requests"], limits["long_running_seconds"]) == (25, 0)
    assert sf_emulator.orgs["acme"].cursors.max_per_user == 4
    assert sf_emulator.model_settings()["max_concurrent_requests"] is None
    assert requests.put(f"{base}/latency", json={"page_latency_ms": -5}).status_code == 400
    assert requests.put(f"{base}/latency", json={"pages": 5}).status_code == 400
    assert requests.post(f"{base}/limits", json={"max_concurrent_bulk_jobs": "x"}).status_code == 400


# ------------------------------------------------------------------------- concurrency limits
def _in_flight(sf_emulator: Emulator, count: int) -> list[threading.Thread]:
    """*count* REST queries kept in flight by the page latency (each logs in first)."""
    clients = [sf_emulator.salesforce() for _ in range(count)]
    threads = [threading.Thread(target=c.query, args=("SELECT Id FROM Account LIMIT 1",)) for c in clients]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while len(sf_emulator.org.inflight) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return threads


def test_concurrent_requests_past_the_cap_get_403(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_limits(max_concurrent_requests=2, long_running_seconds=0)
    sf_emulator.set_latency(page_latency_ms=800)
    threads = _in_flight(sf_emulator, 2)
    started = time.monotonic()
    refused = api(sf, "GET", "query", params={"q": "SELECT Id FROM Account"})
    assert time.monotonic() - started < 0.5  # at once, not after the page latency
    assert refused.status_code == 403
    assert refused.json() == CONCURRENT
    assert "Retry-After" not in refused.headers
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.limits()
    assert info.value.content == CONCURRENT
    for thread in threads:
        thread.join()
    assert sf.limits()["DailyApiRequests"]  # under the cap again


def test_only_long_running_requests_count(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_limits(max_concurrent_requests=1, long_running_seconds=0.3)
    sf_emulator.set_latency(page_latency_ms=1000)
    threads = _in_flight(sf_emulator, 1)
    sf.limits()  # the query in flight has not run long enough to count yet
    time.sleep(0.35)
    with pytest.raises(SalesforceRefusedRequest):
        sf.limits()
    for thread in threads:
        thread.join()


def test_the_limit_is_per_org(sf_emulator: Emulator) -> None:
    acme = sf_emulator.add_org("acme", accounts=5, contacts=10)
    sf_emulator.set_limits("default", max_concurrent_requests=1, long_running_seconds=0)
    sf_emulator.set_latency("default", page_latency_ms=800)
    threads = _in_flight(sf_emulator, 1)
    creds = acme.credentials
    session_id, instance = SalesforceLogin(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        scratch_url=sf_emulator.base_url,
        session=sf_emulator.requests_session(),
    )
    other = Salesforce(session_id=session_id, instance=instance, session=sf_emulator.requests_session())
    assert other.query("SELECT Id FROM Account")["totalSize"] == 5  # another org is not limited
    for thread in threads:
        thread.join()


def test_concurrent_bulk_jobs_cap(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.set_limits(max_concurrent_bulk_jobs=1)
    sf_emulator.set_latency(job_base_seconds=60)
    first = create_job(sf)
    assert first.status_code == 200
    second = create_job(sf)
    assert second.status_code == 400
    assert second.json()[0]["errorCode"] == "LIMIT_EXCEEDED"
    assert "concurrent Bulk API 2.0 query jobs (1)" in second.json()[0]["message"]
    aborted = api(sf, "PATCH", f"jobs/query/{first.json()['id']}", json={"state": "Aborted"})
    assert aborted.status_code == 200
    assert create_job(sf).status_code == 200
    assert sf_emulator.model_settings()["running_bulk_jobs"] == 1


# ------------------------------------------------------------------------------- cursor limit
@pytest.mark.emulator(
    contacts=450,
    users=[
        UserLogin("a@x.example", "pw", "tok"),
        UserLogin("b@x.example", "pw", "tok", user_id="005000000000002AAA"),
    ],
)
def test_cursor_limit_is_per_user_and_configurable(sf_emulator: Emulator) -> None:
    sf_emulator.set_limits(max_cursors_per_user=2)

    def client(username: str) -> Salesforce:
        session = sf_emulator.requests_session()
        session_id, instance = SalesforceLogin(
            username=username,
            password="pw",
            security_token="tok",
            scratch_url=sf_emulator.base_url,
            session=session,
        )
        return Salesforce(session_id=session_id, instance=instance, session=session)

    a, b = client("a@x.example"), client("b@x.example")
    oldest = a.query("SELECT Id FROM Contact", headers=BATCH_200)["nextRecordsUrl"]
    for _ in range(3):
        b.query("SELECT Id FROM Contact", headers=BATCH_200)  # another user's cursors
    assert a.query_more(oldest, identifier_is_url=True)["records"]
    a.query("SELECT Id FROM Contact", headers=BATCH_200)
    a.query("SELECT Id FROM Contact", headers=BATCH_200)  # a's third: its oldest goes
    released = api(a, "GET", oldest.split(f"/v{a.sf_version}/", 1)[1])
    assert released.status_code == 400
    assert released.json() == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
    with pytest.raises(SalesforceMalformedRequest):
        a.query_more(oldest, identifier_is_url=True)


# ---------------------------------------------------------------------------------- gzip pages
@pytest.mark.emulator(contacts=450)
def test_bulk_results_are_gzip_compressed(sf_emulator: Emulator, sf: Salesforce) -> None:
    job = create_job(sf, "SELECT Id, LastName, Description FROM Contact").json()
    while api(sf, "GET", f"jobs/query/{job['id']}").json()["state"] != "JobComplete":
        pass
    url = f"{sf.base_url}jobs/query/{job['id']}/results"
    page = sf.session.get(url, headers=sf.headers, params={"maxRecords": 100}, stream=True)
    assert page.headers["Content-Encoding"] == "gzip"
    assert page.headers["Sforce-NumberOfRecords"] == "100"
    assert page.headers["Sforce-Locator"] not in ("", "null")
    raw = page.raw.read(decode_content=False)
    assert (raw[:2], int(page.headers["Content-Length"])) == (b"\x1f\x8b", len(raw))
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode())))
    assert (len(rows), list(rows[0])) == (100, ["Id", "LastName", "Description"])
    again = sf.session.get(url, headers=sf.headers, params={"maxRecords": 100})  # a retry: same page
    assert again.content == gzip.decompress(raw)
    pages = list(sf.bulk2.Contact.query("SELECT Id FROM Contact", max_records=200, wait=0))
    assert sum(len(p.splitlines()) - 1 for p in pages) == sf_emulator.org.count(
        "Contact", include_deleted=False
    )


@pytest.mark.emulator(contacts=300)
def test_truncated_csv_fault_cuts_the_csv_inside_the_gzip(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.inject("truncated_csv", fraction=0.5)
    job = create_job(sf).json()
    api(sf, "GET", f"jobs/query/{job['id']}")
    api(sf, "GET", f"jobs/query/{job['id']}")
    page = api(sf, "GET", f"jobs/query/{job['id']}/results")
    assert page.headers["Content-Encoding"] == "gzip"
    assert len(page.text.splitlines()) - 1 < int(page.headers["Sforce-NumberOfRecords"])
