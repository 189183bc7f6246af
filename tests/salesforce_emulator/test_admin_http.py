"""The admin API over HTTP (/__admin/...), as a test in another process would use it."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import SalesforceGeneralError

from salesforce_emulator import Emulator


def test_records_lifecycle(sf_emulator: Emulator) -> None:
    base = f"{sf_emulator.base_url}/__admin"
    created = requests.post(
        f"{base}/records/Account",
        json={"fields": {"Name": "Via HTTP"}, "system_modstamp": "2024-01-02T03:04:05Z"},
    )
    assert created.status_code == 201
    rid = created.json()["id"]
    assert (
        requests.get(f"{base}/records/Account/{rid}").json()["SystemModstamp"]
        == "2024-01-02T03:04:05.000+0000"
    )
    patched = requests.patch(f"{base}/records/Account/{rid}", json={"fields": {"Tier__c": "Gold"}}).json()
    assert patched["Tier__c"] == "Gold"
    assert requests.delete(f"{base}/records/Account/{rid}").json()["IsDeleted"] is True
    assert requests.post(f"{base}/records/Account/{rid}/undelete").json()["IsDeleted"] is False
    assert requests.post(f"{base}/records/Account/{rid}/purge").json() == {"purged": rid}
    assert rid not in requests.get(f"{base}/records/Account/ids").json()
    assert len(requests.get(f"{base}/records/Account").json()) == sf_emulator.org.count(
        "Account", include_deleted=True
    )
    bad = requests.post(f"{base}/records/Account", json={"fields": {"Nope": 1}})
    assert bad.status_code == 400
    assert "Nope" in bad.json()["error"]


def test_clock_fields_limits_faults_counters(sf_emulator: Emulator) -> None:
    base = f"{sf_emulator.base_url}/__admin"
    assert requests.post(f"{base}/clock", json={"now": "2025-01-01T00:00:00Z"}).json() == {
        "now": "2025-01-01T00:00:00+00:00"
    }
    assert (
        requests.post(f"{base}/clock", json={"advance_seconds": 60}).json()["now"]
        == "2025-01-01T00:01:00+00:00"
    )
    hidden = requests.post(f"{base}/hidden_fields", json={"sobject": "Contact", "fields": ["Email"]}).json()
    assert hidden == {"Contact": ["Email"]}
    assert requests.post(f"{base}/limits", json={"daily_limit": 500}).json()["api_usage"] == {
        "used": 0,
        "max": 500,
    }
    fault = requests.post(f"{base}/faults", json={"kind": "server_unavailable", "endpoint": "limits"}).json()
    assert fault["kind"] == "server_unavailable"
    assert fault["endpoints"] == ["limits"]
    sf = sf_emulator.salesforce()
    with pytest.raises(SalesforceGeneralError) as info:
        sf.limits()
    assert info.value.status == 503
    counters = requests.get(f"{base}/counters").json()
    assert counters["counters"]["limits"] == 1
    assert counters["logins"]["oauth"] == 1
    assert counters["api_usage"] == {"used": 0, "max": 500}  # refused calls are not counted
    requests.post(f"{base}/faults", json={"kind": "delay", "seconds": 1})
    assert requests.delete(f"{base}/faults").json() == {"ok": True}
    assert requests.get(f"{base}/faults").json() == []
    assert requests.post(f"{base}/sessions/expire").json() == {"expired": 1}
    state = requests.get(f"{base}/state").json()
    assert state["org_id"] == sf_emulator.org.org_id
    assert state["credentials"]["username"] == "demo@customerscore.example"
    rows = requests.post(f"{base}/query", json={"q": "SELECT COUNT() FROM Contact"}).json()
    assert rows == [{"expr0": sf_emulator.org.count("Contact")}]
    assert requests.get(f"{base}/nothing").status_code == 404
    assert requests.post(f"{base}/counters/reset").json() == {"ok": True}
    assert requests.get(f"{base}/requests").json() == []


def test_bulk_jobs_kept_in_progress(sf_emulator: Emulator) -> None:
    base = f"{sf_emulator.base_url}/__admin"
    assert requests.post(f"{base}/bulk", json={"in_progress_polls": 5}).json() == {
        "in_progress_polls": 5,
        "jobs": [],
    }
    assert sf_emulator.org.bulk_in_progress_polls == 5
    sf = sf_emulator.salesforce()
    client = sf.bulk2.Contact._client
    job = client.create_job("query", "SELECT Id FROM Contact")
    client.get_job(job["id"], True)
    assert requests.get(f"{base}/bulk").json()["jobs"] == [
        {"id": job["id"], "operation": "query", "state": "InProgress", "polls": 1}
    ]
    bad = requests.post(f"{base}/bulk", json={"in_progress_polls": -1})
    assert bad.status_code == 400
    assert "in_progress_polls" in bad.json()["error"]
