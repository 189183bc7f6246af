"""Bulk API 2.0 query jobs, driven by simple-salesforce's bulk2 (always with wait=0)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from salesforce_emulator import Emulator


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


def rows(pages: list[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for page in pages:
        out.extend(csv.DictReader(io.StringIO(page)))
    return out


@pytest.mark.emulator(contacts=950)
def test_query_pages(sf_emulator: Emulator, sf: Salesforce) -> None:
    pages = list(
        sf.bulk2.Contact.query("SELECT Id, LastName, Account.Name FROM Contact", max_records=300, wait=0)
    )
    assert len(pages) == 4  # 950 contacts minus deleted ones, 300 per page
    records = rows(pages)
    assert [r["Id"] for r in records] == sf_emulator.org.all_ids("Contact", include_deleted=False)
    assert list(records[0]) == ["Id", "LastName", "Account.Name"]
    counters = sf_emulator.org.counters
    assert counters["bulk2_create"] == 1
    assert counters["bulk2_results"] == 4
    assert counters["bulk2_poll"] >= 2


def test_query_all_includes_deleted(sf_emulator: Emulator, sf: Salesforce) -> None:
    victim = sf_emulator.org.all_ids("Account", include_deleted=False)[0]
    sf_emulator.org.delete("Account", victim)
    records = rows(list(sf.bulk2.Account.query_all("SELECT Id, IsDeleted FROM Account", wait=0)))
    assert len(records) == sf_emulator.org.count("Account", include_deleted=True)
    assert {r["Id"]: r["IsDeleted"] for r in records}[victim] == "true"


def test_csv_format(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    acc = org.insert("Account", {"Name": 'Quote "Co", Ltd'})
    rid = org.insert(
        "Contact",
        {"LastName": "Multi\nLine", "FirstName": None, "AccountId": acc, "Is_Champion__c": True, "NPS__c": 7},
        system_modstamp="2024-05-20T20:49:32Z",
    )
    soql = f"SELECT Id, LastName, FirstName, Account.Name, Is_Champion__c, NPS__c, CreatedDate FROM Contact WHERE Id = '{rid}'"
    (page,) = list(sf.bulk2.Contact.query(soql, wait=0))
    assert page == (
        '"Id","LastName","FirstName","Account.Name","Is_Champion__c","NPS__c","CreatedDate"\n'
        f'"{rid}","Multi\nLine","","Quote ""Co"", Ltd","true","7","2024-05-20T20:49:32.000Z"\n'
    )
    record = next(csv.DictReader(io.StringIO(page)))
    assert record["LastName"] == "Multi\nLine"
    assert record["Account.Name"] == 'Quote "Co", Ltd'


def test_results_headers_and_locator(sf_emulator: Emulator, sf: Salesforce) -> None:
    base = f"{sf_emulator.base_url}/services/data/v59.0/jobs/query"
    headers = {"Authorization": f"Bearer {sf.session_id}", "Content-Type": "application/json"}
    job = requests.post(
        base, json={"operation": "query", "query": "SELECT Id FROM Contact"}, headers=headers
    ).json()
    assert job["state"] == "UploadComplete"
    assert job["id"].startswith("750")
    early = requests.get(f"{base}/{job['id']}/results", headers=headers)
    assert early.status_code == 412
    assert early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    states = [requests.get(f"{base}/{job['id']}", headers=headers).json()["state"] for _ in range(3)]
    assert states == ["InProgress", "JobComplete", "JobComplete"]
    first = requests.get(f"{base}/{job['id']}/results", params={"maxRecords": 100}, headers=headers)
    assert first.headers["Sforce-NumberOfRecords"] == "100"
    assert first.headers["Content-Type"].startswith("text/csv")
    locator = first.headers["Sforce-Locator"]
    assert locator == "MTAw"  # base64("100"), the shape of Salesforce's locators ("MTAwMDA")
    last = requests.get(
        f"{base}/{job['id']}/results", params={"maxRecords": 10_000, "locator": locator}, headers=headers
    )
    assert last.headers["Sforce-Locator"] == "null"
    assert int(last.headers["Sforce-NumberOfRecords"]) == sf_emulator.org.count("Contact") - 100
    other_version = requests.get(
        f"{sf_emulator.base_url}/services/data/v60.0/jobs/query/{job['id']}/results", headers=headers
    )
    assert other_version.status_code == 409
    listing = requests.get(base, headers=headers).json()
    assert [j["id"] for j in listing["records"]] == [job["id"]]
    deleted = requests.delete(f"{base}/{job['id']}", headers=headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert requests.get(f"{base}/{job['id']}", headers=headers).status_code == 404


def test_download(tmp_path: Path, sf_emulator: Emulator, sf: Salesforce) -> None:
    results = sf.bulk2.Contact.download(
        "SELECT Id, Email FROM Contact", str(tmp_path), max_records=60, wait=0
    )
    assert sum(r["number_of_records"] for r in results) == sf_emulator.org.count("Contact")
    assert all(Path(r["file"]).read_text().startswith('"Id","Email"\n') for r in results)


def test_abort(sf_emulator: Emulator, sf: Salesforce) -> None:
    client = sf.bulk2.Contact._client
    job = client.create_job("query", "SELECT Id FROM Contact")
    aborted = client.abort_job(job["id"], True)
    assert aborted["state"] == "Aborted"
    with pytest.raises(SalesforceOperationError, match="Job failure"):
        client.wait_for_job(job["id"], True, wait=0)


def test_compound_fields_fail_the_job(sf: Salesforce) -> None:
    with pytest.raises(SalesforceOperationError, match="Selecting compound data not supported in Bulk Query"):
        list(sf.bulk2.Account.query("SELECT Id, BillingAddress FROM Account", wait=0))


def test_invalid_query_rejected_at_creation(sf: Salesforce) -> None:
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    with pytest.raises(SalesforceMalformedRequest) as info:
        list(sf.bulk2.Account.query("SELECT Id, Nope FROM Account", wait=0))
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest):
        list(sf.bulk2.Account.query("SELECT COUNT() FROM Account", wait=0))


def test_snapshot_at_creation(sf_emulator: Emulator, sf: Salesforce) -> None:
    client = sf.bulk2.Account._client
    job = client.create_job("query", "SELECT Id FROM Account")
    sf_emulator.org.insert("Account", {"Name": "Too late"})
    client.wait_for_job(job["id"], True, wait=0)
    result = client.get_query_results(job["id"])
    assert result["number_of_records"] == sf_emulator.org.count("Account") - 1
    assert (
        json.loads(json.dumps(client.get_job(job["id"], True)))["numberRecordsProcessed"]
        == result["number_of_records"]
    )


def test_abort_is_an_api_call(sf_emulator: Emulator, sf: Salesforce) -> None:
    client = sf.bulk2.Contact._client
    job = client.create_job("query", "SELECT Id FROM Contact")
    used = sf_emulator.org.api_usage[0]
    client.abort_job(job["id"], True)
    assert sf_emulator.org.api_usage[0] == used + 1
    assert sf_emulator.org.counters["bulk2_abort"] == 1
    assert sf_emulator.org.bulk_jobs.get(job["id"]).state == "Aborted"


def test_jobs_can_be_kept_in_progress(sf_emulator: Emulator, sf: Salesforce) -> None:
    client = sf.bulk2.Contact._client
    running = client.create_job("query", "SELECT Id FROM Contact")
    sf_emulator.org.set_bulk_in_progress_polls(3)
    states = [client.get_job(running["id"], True)["state"] for _ in range(4)]
    assert states == ["InProgress", "InProgress", "InProgress", "JobComplete"]
    sf_emulator.org.set_bulk_in_progress_polls(10**9)  # "forever", also for a job already running
    forever = client.create_job("query", "SELECT Id FROM Contact")
    assert {client.get_job(forever["id"], True)["state"] for _ in range(50)} == {"InProgress"}
    assert sf_emulator.org.bulk_jobs.get(forever["id"]).polls == 50
    with pytest.raises(ValueError, match="in_progress_polls"):
        sf_emulator.org.set_bulk_in_progress_polls(-1)
