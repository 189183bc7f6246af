"""REST query/queryAll, pagination, snapshots, errors, limits, versions, record reads."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from salesforce_emulator import Emulator

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


@pytest.mark.emulator(accounts=100, contacts=1100)
def test_query_all_iter_many_pages(sf_emulator: Emulator, sf: Salesforce) -> None:
    records = list(sf.query_all_iter("SELECT Id, LastName FROM Contact", headers=BATCH_200))
    expected = sf_emulator.org.all_ids("Contact", include_deleted=False)
    assert [r["Id"] for r in records] == expected
    assert sf_emulator.org.counters["query"] == 1
    assert sf_emulator.org.counters["query_more"] == (len(expected) - 1) // 200
    assert sf.api_usage["api-usage"].used == sf_emulator.org.api_usage[0]


@pytest.mark.emulator(contacts=2500)
def test_default_batch_is_2000_and_locator_form(sf_emulator: Emulator, sf: Salesforce) -> None:
    first = sf.query_all("SELECT Id FROM Contact", include_deleted=True)
    assert first["totalSize"] == 2500
    page = sf.query("SELECT Id FROM Contact")
    assert len(page["records"]) == 2000
    assert page["done"] is False
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert page["nextRecordsUrl"].endswith("-2000")
    cursor_id = page["nextRecordsUrl"].rsplit("/", 1)[1]
    rest = sf.query_more(cursor_id)  # the identifier form works too
    assert rest["done"] is True
    assert len(rest["records"]) == page["totalSize"] - 2000


@pytest.mark.emulator(contacts=500)
def test_batch_size_is_clamped(sf: Salesforce) -> None:
    page = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(page["records"]) == 200


@pytest.mark.emulator(contacts=700)
def test_query_all_sees_deletes_and_remembers_mode(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    victim = org.all_ids("Contact", include_deleted=False)[0]
    org.delete("Contact", victim)
    live = list(sf.query_all_iter("SELECT Id FROM Contact", headers=BATCH_200))
    everything = list(
        sf.query_all_iter("SELECT Id, IsDeleted FROM Contact", include_deleted=True, headers=BATCH_200)
    )
    assert victim not in {r["Id"] for r in live}
    assert (
        len(everything)
        == org.count("Contact", include_deleted=True)
        == len(live) + sum(r["IsDeleted"] for r in everything)
    )
    assert {r["Id"]: r["IsDeleted"] for r in everything}[victim] is True
    # the queryAll locator still reads /query/ but keeps returning deleted rows
    first = sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)
    assert first["totalSize"] == sum(r["IsDeleted"] for r in everything)


@pytest.mark.emulator(contacts=600)
def test_snapshot_pages_do_not_shift(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    page1 = sf.query("SELECT Id, LastName FROM Contact ORDER BY LastName", headers=BATCH_200)
    ids_before = [r["Id"] for r in page1["records"]]
    # mutate between pages: delete a row of page 1, insert rows that would sort first, edit one on page 2
    org.delete("Contact", ids_before[0])
    for i in range(5):
        org.insert("Contact", {"LastName": f"AAA{i}"})
    page2 = sf.query_more(page1["nextRecordsUrl"], identifier_is_url=True, headers=BATCH_200)
    target = page2["records"][0]["Id"]
    org.update("Contact", target, {"LastName": "Changed"})
    rest = [page2, *[]]
    while not rest[-1]["done"]:
        rest.append(sf.query_more(rest[-1]["nextRecordsUrl"], identifier_is_url=True, headers=BATCH_200))
    all_ids = ids_before + [r["Id"] for p in rest for r in p["records"]]
    assert len(all_ids) == len(set(all_ids)) == page1["totalSize"]
    assert not any(r["LastName"].startswith("AAA") for p in rest for r in p["records"])


def test_relationship_fields_nested(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    acc = org.insert("Account", {"Name": "Parent Co"})
    with_acc = org.insert("Contact", {"LastName": "Kid", "AccountId": acc})
    without = org.insert("Contact", {"LastName": "Orphan"})
    rows = sf.query(
        f"SELECT Id, Account.Name, Account.Owner.Name FROM Contact WHERE Id IN ('{with_acc}', '{without}')"
    )
    by_id = {r["Id"]: r for r in rows["records"]}
    nested = by_id[with_acc]["Account"]
    assert nested["attributes"] == {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{acc}"}
    assert nested["Name"] == "Parent Co"
    assert nested["Owner"]["attributes"]["type"] == "User"
    assert by_id[without]["Account"] is None
    assert list(by_id[with_acc]) == ["attributes", "Id", "Account"]


def test_contacts_of_deleted_account(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    acc = org.insert("Account", {"Name": "Doomed"})
    kid = org.insert("Contact", {"LastName": "Left", "AccountId": acc})
    org.delete("Account", acc, cascade=False)
    live = sf.query(f"SELECT Account.Name FROM Contact WHERE Id = '{kid}'")["records"][0]
    assert live["Account"] is None  # a parent in the recycle bin is invisible to query()
    everything = sf.query_all(f"SELECT Account.Name FROM Contact WHERE Id = '{kid}'", include_deleted=True)
    assert everything["records"][0]["Account"]["Name"] == "Doomed"


def test_count_and_values(sf_emulator: Emulator, sf: Salesforce) -> None:
    assert sf.query("SELECT COUNT() FROM Contact") == {
        "totalSize": sf_emulator.org.count("Contact"),
        "done": True,
        "records": [],
    }
    rec = sf.query(
        "SELECT Id, CreatedDate, Birthdate, NPS__c, Is_Champion__c FROM Contact WHERE NPS__c != null LIMIT 1"
    )["records"][0]
    assert len(rec["CreatedDate"]) == 28
    assert rec["CreatedDate"].endswith(".000+0000")
    assert isinstance(rec["NPS__c"], float)
    assert isinstance(rec["Is_Champion__c"], bool)
    addr = sf.query("SELECT MailingAddress FROM Contact WHERE MailingCity != null LIMIT 1")["records"][0][
        "MailingAddress"
    ]
    assert set(addr) == {
        "city",
        "country",
        "geocodeAccuracy",
        "latitude",
        "longitude",
        "postalCode",
        "state",
        "street",
    }


def test_hostile_values_survive_json(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    nasty = 'Zoë 山田 🚀 "quoted", comma\ttab\nnewline \\ backslash'
    rid = org.insert("Contact", {"LastName": nasty, "Description": "x" * 32000})
    rec = sf.query(f"SELECT LastName, Description FROM Contact WHERE Id = '{rid}'")["records"][0]
    assert rec["LastName"] == nasty
    assert len(rec["Description"]) == 32000


def test_trailing_slash_variants(sf_emulator: Emulator, sf: Salesforce) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {sf.session_id}"}
    for path in ("query", "query/", "queryAll", "queryAll/"):
        resp = session.get(
            f"{sf_emulator.base_url}/services/data/v59.0/{path}",
            params={"q": "SELECT Id FROM Account"},
            headers=headers,
        )
        assert resp.status_code == 200, path
        assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_errors(sf_emulator: Emulator, sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Account WHERE")
    assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Nope FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more("01gDn0000000zzzIAA-2000")
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.restful("nothing/here")
    assert info.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    bad = Salesforce(session_id="00Dnope!bad", instance=sf_emulator.instance)
    with pytest.raises(SalesforceExpiredSession) as info:
        bad.query("SELECT Id FROM Account")
    assert info.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_hidden_fields_invalid_over_rest(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.hide_fields("Account", ["Health_Score__c"])
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Health_Score__c FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Health_Score__c' on entity 'Account'" in info.value.content[0]["message"]


def test_api_versions(sf_emulator: Emulator) -> None:
    resp = requests.get(f"{sf_emulator.base_url}/services/data/")
    versions = resp.json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert versions[-1]["version"] == "66.0"
    old = Salesforce(session_id="x", instance=sf_emulator.instance, version="29.0")
    with pytest.raises(SalesforceGeneralError) as info:
        old.query("SELECT Id FROM Account")
    assert info.value.status == 410
    future = Salesforce(session_id="x", instance=sf_emulator.instance, version="99.0")
    with pytest.raises(SalesforceResourceNotFound):
        future.query("SELECT Id FROM Account")


def test_limits_agree_with_header(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf.query("SELECT Id FROM Account LIMIT 1")
    limits = sf.limits()
    used, maximum = sf_emulator.org.api_usage
    assert used == 2
    assert limits["DailyApiRequests"] == {"Max": maximum, "Remaining": maximum - used}
    assert sf.api_usage["api-usage"].used == used
    assert sf.api_usage["api-usage"].total == maximum


def test_record_get(sf_emulator: Emulator, sf: Salesforce) -> None:
    rid = sf_emulator.org.insert("Account", {"Name": "Getme", "Tier__c": "Gold"})
    rec = sf.Account.get(rid)
    assert rec["Name"] == "Getme"
    assert rec["attributes"]["type"] == "Account"
    assert "BillingAddress" in rec
    sf_emulator.org.delete("Account", rid)
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(rid)


def test_cursor_limit_releases_oldest(sf_emulator_factory) -> None:
    emu = sf_emulator_factory(contacts=450, max_open_cursors=2)
    sf = emu.salesforce()
    pages = [sf.query("SELECT Id FROM Contact", headers=BATCH_200) for _ in range(3)]
    with pytest.raises(SalesforceMalformedRequest):
        sf.query_more(pages[0]["nextRecordsUrl"], identifier_is_url=True)
    assert sf.query_more(pages[2]["nextRecordsUrl"], identifier_is_url=True)["records"]


@pytest.mark.emulator(contacts=450)
def test_an_eleventh_cursor_releases_the_users_oldest(sf_emulator: Emulator) -> None:
    # Two clients logged in as the same user share the per-user limit of 10 open cursors.
    first, other = sf_emulator.salesforce(), sf_emulator.salesforce()
    oldest = first.query("SELECT Id FROM Contact", headers=BATCH_200)["nextRecordsUrl"]
    later = [other.query("SELECT Id FROM Contact", headers=BATCH_200)["nextRecordsUrl"] for _ in range(9)]
    assert first.query_more(oldest, identifier_is_url=True)["records"], "ten cursors are still allowed"
    other.query("SELECT Id FROM Contact", headers=BATCH_200)  # the user's 11th
    with pytest.raises(SalesforceMalformedRequest) as released:
        first.query_more(oldest, identifier_is_url=True)
    assert released.value.content == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    ]
    assert other.query_more(later[0], identifier_is_url=True)["records"]


@pytest.mark.emulator(contacts=450)
def test_a_cursor_idle_for_15_minutes_of_the_org_clock_expires(sf_emulator: Emulator, sf: Salesforce) -> None:
    kept = sf.query("SELECT Id FROM Contact", headers=BATCH_200)["nextRecordsUrl"]
    idle = sf.query("SELECT Id FROM Contact", headers=BATCH_200)["nextRecordsUrl"]
    sf_emulator.org.advance_clock(14 * 60)
    kept = sf.query_more(kept, identifier_is_url=True)["nextRecordsUrl"]  # used: its idle time restarts
    sf_emulator.org.advance_clock(2 * 60)
    with pytest.raises(SalesforceMalformedRequest) as expired:
        sf.query_more(idle, identifier_is_url=True)
    assert expired.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert sf.query_more(kept, identifier_is_url=True)["records"]
