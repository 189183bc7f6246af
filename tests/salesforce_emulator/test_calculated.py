"""Calculated fields (formulas and a roll-up count): computed when read, never stamped.

Values are checked through simple-salesforce over HTTPS (REST query/queryAll, Bulk 2.0, sObject
reads, describe) against counts and formulas recomputed here from the plain fields.
"""

from __future__ import annotations

import collections
import csv
import io
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import Emulator
from salesforce_emulator.store import Org

CALCULATED = {
    "Account": ["Number_of_Contacts__c", "Tier_Score__c"],
    "Contact": ["Full_Name__c", "Account_Tier__c", "Engagement_Score__c"],
}
TIER_POINTS = {"Gold": 3.0, "Silver": 2.0, "Bronze": 1.0}
with_calculated = pytest.mark.emulator(calculated_fields=True)


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


def stamps(sf: Salesforce, sobject: str) -> dict[str, tuple[str, str]]:
    soql = f"SELECT Id, LastModifiedDate, SystemModstamp FROM {sobject}"
    return {
        r["Id"]: (r["LastModifiedDate"], r["SystemModstamp"])
        for r in sf.query_all(soql, include_deleted=True)["records"]
    }


def rollups(sf: Salesforce) -> dict[str, float]:
    soql = "SELECT Id, Number_of_Contacts__c FROM Account"
    return {r["Id"]: r["Number_of_Contacts__c"] for r in sf.query_all(soql, include_deleted=True)["records"]}


def counted(sf: Salesforce) -> dict[str, float]:
    """The roll-up recomputed from the Contacts the API shows (not deleted, with an Account)."""
    contacts = sf.query_all("SELECT AccountId FROM Contact")["records"]
    counts = collections.Counter(c["AccountId"] for c in contacts if c["AccountId"])
    accounts = sf.query_all("SELECT Id FROM Account", include_deleted=True)["records"]
    return {a["Id"]: float(counts[a["Id"]]) for a in accounts}


def bulk(sf: Salesforce, sobject: str, soql: str) -> list[dict[str, str]]:
    pages = getattr(sf.bulk2, sobject).query_all(soql, wait=0)
    return [row for page in pages for row in csv.DictReader(io.StringIO(page))]


def test_default_orgs_have_no_calculated_fields(sf_emulator: Emulator, sf: Salesforce) -> None:
    for sobject in ("Account", "Contact", "User"):
        fields = getattr(sf, sobject).describe()["fields"]
        assert not [f["name"] for f in fields if f["calculated"]]
    with pytest.raises(ValueError, match="no calculated field that reads Scorecard"):
        sf_emulator.org.change_calculated_values("Contact", count=1)


@with_calculated
def test_describe(sf: Salesforce) -> None:
    for sobject, names in CALCULATED.items():
        fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
        assert [n for n, f in fields.items() if f["calculated"]] == names
        for name in names:
            f = fields[name]
            assert (f["custom"], f["createable"], f["updateable"], f["nillable"]) == (
                True,
                False,
                False,
                True,
            )
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    rollup = account["Number_of_Contacts__c"]
    assert (rollup["type"], rollup["precision"], rollup["scale"], rollup["soapType"]) == (
        "double",
        18,
        0,
        "xsd:double",
    )
    assert rollup["calculatedFormula"] is None  # a roll-up summary has no formula
    score = account["Tier_Score__c"]
    assert (score["type"], score["precision"], score["scale"]) == ("double", 18, 2)
    assert "$Setup.Scoring__c.Tier_Weight__c" in score["calculatedFormula"]
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    full = contact["Full_Name__c"]
    assert (full["type"], full["length"], full["calculatedFormula"]) == (
        "string",
        1300,
        'FirstName & " " & LastName',
    )
    assert contact["Account_Tier__c"]["calculatedFormula"] == "TEXT(Account.Tier__c)"


def test_calculated_fields_leave_seeded_data_alone(sf_emulator_factory: Any) -> None:
    plain = sf_emulator_factory(accounts=40, contacts=200).org
    calculated = sf_emulator_factory(accounts=40, contacts=200, calculated_fields=True).org
    for sobject, names in CALCULATED.items():
        stored = [{k: v for k, v in r.items() if k not in names} for r in calculated.snapshot(sobject)]
        assert stored == plain.snapshot(sobject)
    soql = "SELECT Id, Name, Tier__c, SystemModstamp FROM Account"
    assert calculated.query(soql, include_deleted=True) == plain.query(soql, include_deleted=True)


@with_calculated
def test_formula_values(sf_emulator: Emulator, sf: Salesforce) -> None:
    accounts = {
        r["Id"]: r
        for r in sf.query_all("SELECT Id, Tier__c, Tier_Score__c FROM Account", include_deleted=True)[
            "records"
        ]
    }
    for a in accounts.values():
        assert a["Tier_Score__c"] == TIER_POINTS.get(a["Tier__c"], 0.0)
    live = {a["Id"]: a["Tier__c"] for a in sf.query_all("SELECT Id, Tier__c FROM Account")["records"]}
    soql = (
        "SELECT Id, FirstName, LastName, NPS__c, AccountId, Full_Name__c, Account_Tier__c,"
        " Engagement_Score__c, Account.Tier_Score__c FROM Contact"
    )
    contacts = sf.query_all(soql, include_deleted=True)["records"]
    assert {c["Account_Tier__c"] for c in contacts} >= {"Gold", "Silver", "Bronze", None}
    for c in contacts:
        assert c["Full_Name__c"] == f"{c['FirstName'] or ''} {c['LastName']}"
        assert c["Account_Tier__c"] == live.get(c["AccountId"])
        assert c["Engagement_Score__c"] == (c["NPS__c"] or 0.0)
        if c["Account"] is not None:
            assert c["Account"]["Tier_Score__c"] == accounts[c["AccountId"]]["Tier_Score__c"]
    # Bulk 2.0 and sObject reads compute the same values.
    rows = bulk(sf, "Contact", "SELECT Id, Full_Name__c, Engagement_Score__c FROM Contact")
    by_id = {c["Id"]: c for c in contacts}
    for row in rows:
        assert row["Full_Name__c"] == by_id[row["Id"]]["Full_Name__c"]
        assert float(row["Engagement_Score__c"]) == by_id[row["Id"]]["Engagement_Score__c"]
    one = sf.Contact.get(contacts[0]["Id"])
    assert one["Full_Name__c"] == contacts[0]["Full_Name__c"]
    assert sf_emulator.org.get("Contact", contacts[0]["Id"])["Full_Name__c"] == contacts[0]["Full_Name__c"]


@pytest.mark.emulator(accounts=30, contacts=150, calculated_fields=True)
def test_rollup_follows_insert_delete_undelete_reparent_without_stamps(
    sf_emulator: Emulator, sf: Salesforce
) -> None:
    org = sf_emulator.org
    assert rollups(sf) == counted(sf)
    assert sum(rollups(sf).values()) > 0
    before = stamps(sf, "Account")
    a, b = org.all_ids("Account", include_deleted=False)[:2]
    start = rollups(sf)
    inserted = org.insert("Contact", {"LastName": "New", "AccountId": a})
    assert rollups(sf) == {**start, a: start[a] + 1}
    org.delete("Contact", inserted)
    assert rollups(sf) == start
    org.undelete("Contact", inserted)
    assert rollups(sf)[a] == start[a] + 1
    org.update("Contact", inserted, {"AccountId": b})  # reparent
    assert (rollups(sf)[a], rollups(sf)[b]) == (start[a], start[b] + 1)
    org.update("Contact", inserted, {"AccountId": None})
    org.purge("Contact", org.all_ids("Contact", include_deleted=False)[0])
    assert rollups(sf) == counted(sf)
    assert stamps(sf, "Account") == before  # no Account was touched by any of it
    # Bulk, sObject reads, a parent path from Contact and filters all see the same values.
    now = rollups(sf)
    assert {r["Id"]: float(r["Number_of_Contacts__c"]) for r in bulk(sf, "Account", "SELECT Id, Number_of_Contacts__c FROM Account")} == now  # fmt: skip
    assert sf.Account.get(a)["Number_of_Contacts__c"] == now[a]
    rows = sf.query_all(
        "SELECT AccountId, Account.Number_of_Contacts__c FROM Contact WHERE AccountId != null"
    )
    assert all(r["Account"] is None or r["Account"]["Number_of_Contacts__c"] == now[r["AccountId"]] for r in rows["records"])  # fmt: skip
    soql = "SELECT Id, Number_of_Contacts__c FROM Account WHERE Number_of_Contacts__c > 2 ORDER BY Number_of_Contacts__c"
    busy = sf.query_all(soql)["records"]
    live = set(org.all_ids("Account", include_deleted=False))
    assert {r["Id"] for r in busy} == {i for i, n in now.items() if n > 2 and i in live}
    assert [r["Number_of_Contacts__c"] for r in busy] == sorted(now[r["Id"]] for r in busy)
    deleted_account = org.all_ids("Account", include_deleted=False)[3]
    org.delete("Account", deleted_account)  # its Contacts go to the recycle bin with it
    assert rollups(sf)[deleted_account] == 0.0


@pytest.mark.emulator(accounts=60, contacts=1500, calculated_fields=True)
def test_a_thousand_formula_values_change_without_system_modstamp(
    sf_emulator: Emulator, sf: Salesforce
) -> None:
    org = sf_emulator.org
    soql = "SELECT Id, Engagement_Score__c, LastModifiedDate, SystemModstamp FROM Contact"
    before = {r["Id"]: r for r in sf.query_all(soql, include_deleted=True)["records"]}
    changed = org.change_calculated_values("Contact", count=1000)
    assert len(changed) == len(set(changed)) == 1000
    after = {r["Id"]: r for r in sf.query_all(soql, include_deleted=True)["records"]}
    moved = {i for i in after if after[i]["Engagement_Score__c"] != before[i]["Engagement_Score__c"]}
    assert moved == set(changed)
    assert all(after[i]["Engagement_Score__c"] == before[i]["Engagement_Score__c"] + 1 for i in changed)
    strip = ("LastModifiedDate", "SystemModstamp")
    assert {i: [r[k] for k in strip] for i, r in after.items()} == {i: [r[k] for k in strip] for i, r in before.items()}  # fmt: skip
    rows = bulk(sf, "Contact", "SELECT Id, Engagement_Score__c FROM Contact")
    assert {r["Id"]: float(r["Engagement_Score__c"]) for r in rows} == {i: r["Engagement_Score__c"] for i, r in after.items()}  # fmt: skip
    # A filter on SystemModstamp (what an incremental run asks) finds none of them.
    newest = max(r["SystemModstamp"] for r in before.values())
    since = newest.replace(".000+0000", "Z")
    assert sf.query_all(f"SELECT Id FROM Contact WHERE SystemModstamp > {since}")["totalSize"] == 0
    # Given Ids, exactly those change (deleted ones too), by any delta.
    victim = org.all_ids("Contact")[-1]
    assert org.change_calculated_values("Contact", [victim[:15]], delta=-2.5) == [victim]
    assert org.get("Contact", victim)["Engagement_Score__c"] == after[victim]["Engagement_Score__c"] - 2.5


@with_calculated
def test_custom_setting_and_parent_changes_move_formulas_not_stamps(
    sf_emulator: Emulator, sf: Salesforce
) -> None:
    org = sf_emulator.org
    accounts_before = stamps(sf, "Account")
    contacts_before = stamps(sf, "Contact")
    org.set_custom_setting("Tier_Weight__c", 2.5)
    rows = sf.query_all("SELECT Tier__c, Tier_Score__c FROM Account", include_deleted=True)["records"]
    assert all(r["Tier_Score__c"] == TIER_POINTS.get(r["Tier__c"], 0.0) * 2.5 for r in rows)
    assert stamps(sf, "Account") == accounts_before
    # A cross-object formula: the Account is edited (its stamp moves), its Contacts' do not.
    account = next(
        r["AccountId"]
        for r in sf.query_all("SELECT AccountId FROM Contact WHERE AccountId != null")["records"]
    )
    org.update("Account", account, {"Tier__c": "Gold"})
    org.update("Account", account, {"Tier__c": "Silver"})
    mine = sf.query_all(f"SELECT Account_Tier__c FROM Contact WHERE AccountId = '{account}'")["records"]
    assert {r["Account_Tier__c"] for r in mine} == {"Silver"}
    assert stamps(sf, "Contact") == contacts_before
    assert org.custom_settings == {"Tier_Weight__c": 2.5, "NPS_Weight__c": 1.0}
    with pytest.raises(ValueError, match="no custom setting"):
        org.set_custom_setting("Nope__c", 1)


@with_calculated
def test_calculated_fields_are_read_only_and_protect_their_inputs(
    sf_emulator: Emulator, sf: Salesforce
) -> None:
    org = sf_emulator.org
    some = org.all_ids("Account")[0]
    with pytest.raises(ValueError, match="no writable field"):
        org.update("Account", some, {"Number_of_Contacts__c": 3})
    with pytest.raises(ValueError, match=r"referenced by Account\.Tier_Score__c, Contact\.Account_Tier__c"):
        org.remove_field("Account", "Tier__c")
    with pytest.raises(ValueError, match=r"referenced by Contact\.Engagement_Score__c"):
        org.retype_field("Contact", "NPS__c", "string")
    with pytest.raises(ValueError, match="calculated: its type cannot be changed"):
        org.retype_field("Account", "Tier_Score__c", "string")
    # Deleting the formulas first frees the input; a removed formula fails like any unknown field.
    org.remove_field("Account", "Tier_Score__c")
    org.remove_field("Contact", "Account_Tier__c")
    org.remove_field("Account", "Tier__c")
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Tier_Score__c FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(ValueError, match=r"reads Account\.Tier__c, which is gone"):
        org.restore_field("Account", "Tier_Score__c")
    org.restore_field("Account", "Tier__c")
    org.restore_field("Account", "Tier_Score__c")
    assert sf.query("SELECT Tier_Score__c FROM Account LIMIT 1")["records"][0]["Tier_Score__c"] is not None


def test_calculated_fields_added_at_run_time(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    before = stamps(sf, "Account")
    entry = org.add_calculated_field("account", "number_of_contacts__c")
    assert (entry["name"], entry["calculated"]) == ("Number_of_Contacts__c", True)
    assert rollups(sf) == counted(sf)
    assert stamps(sf, "Account") == before
    with pytest.raises(ValueError, match="no built-in calculated field"):
        org.add_calculated_field("Account", "Nope__c")
    with pytest.raises(ValueError, match="already has a field"):
        org.add_calculated_field("Account", "Number_of_Contacts__c")
    # Any formula, in-process: a Python function of the record.
    org.add_formula_field(
        "Contact",
        "Initials__c",
        "string",
        lambda r: (r["FirstName"] or " ")[0] + r["LastName"][0],
        calculated_formula="LEFT(FirstName, 1) & LEFT(LastName, 1)",
    )
    field = next(f for f in sf.Contact.describe()["fields"] if f["name"] == "Initials__c")
    assert (field["calculated"], field["length"]) == (True, 1300)
    rows = sf.query_all("SELECT FirstName, LastName, Initials__c FROM Contact")["records"]
    assert all(r["Initials__c"] == (r["FirstName"] or " ")[0] + r["LastName"][0] for r in rows)


def test_admin_http_calculated(sf_emulator: Emulator, sf: Salesforce) -> None:
    base = f"{sf_emulator.base_url}/__admin"
    acme = sf_emulator.add_org("acme", accounts=10, contacts=40, calculated_fields=True)
    added = requests.post(
        f"{base}/fields/Contact", json={"name": "Engagement_Score__c", "calculated": True}
    )  # the default org, at run time
    assert (added.status_code, added.json()["calculated"]) == (201, True)
    changed = requests.post(f"{base}/calculated/Contact", json={"count": 5, "delta": 10}).json()["changed"]
    assert len(changed) == 5
    scores = {
        r["Id"]: r["Engagement_Score__c"]
        for r in sf.query_all("SELECT Id, NPS__c, Engagement_Score__c FROM Contact", include_deleted=True)[
            "records"
        ]
    }
    assert all(scores[i] >= 10 for i in changed)
    acme_changed = requests.post(
        f"{base}/calculated/Account?org=acme", json={"ids": acme.all_ids("Account")[:2]}
    )
    assert acme_changed.json() == {"changed": acme.all_ids("Account")[:2]}
    assert requests.post(f"{base}/calculated/Account", json={"count": 1}).status_code == 400  # none here
    assert requests.post(f"{base}/settings?org=acme", json={"NPS_Weight__c": 3}).json() == {
        "Tier_Weight__c": 1.0,
        "NPS_Weight__c": 3.0,
    }
    assert sf_emulator.org.custom_settings["NPS_Weight__c"] == 1.0
    assert requests.get(f"{base}/state?org=acme").json()["custom_settings"]["NPS_Weight__c"] == 3.0
    created = requests.post(
        f"{base}/orgs", json={"key": "beta", "accounts": 3, "contacts": 6, "calculated_fields": True}
    )
    assert created.status_code == 201
    assert "Number_of_Contacts__c" in {f["name"] for f in sf_emulator.org_named("beta").fields("Account")}


def test_in_process_org_option_subset() -> None:
    org = Org(accounts=5, contacts=20, seed=3, calculated_fields=["Account.Number_of_Contacts__c"])
    assert [f["name"] for f in org.fields("Account") if f["calculated"]] == ["Number_of_Contacts__c"]
    assert not [f for f in org.fields("Contact") if f["calculated"]]
    live = set(org.all_ids("Account", include_deleted=False))
    contacts = [c for c in org.snapshot("Contact", include_deleted=False) if c["AccountId"] in live]
    totals = org.query("SELECT Number_of_Contacts__c FROM Account")
    assert sum(r["Number_of_Contacts__c"] for r in totals) == len(contacts)
