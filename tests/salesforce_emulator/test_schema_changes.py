"""Custom fields added, removed, restored and retyped at run time, as simple-salesforce sees them.

Every test talks to the emulator over HTTPS through the unmodified client (REST query/queryAll,
Bulk 2.0, describe, sObject reads) and checks that no record's SystemModstamp moved.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import Emulator

STAMPS = "SELECT Id, LastModifiedDate, SystemModstamp FROM {} "


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


def stamps(sf: Salesforce, sobject: str) -> dict[str, tuple[str, str]]:
    """Id -> (LastModifiedDate, SystemModstamp) of every record, deleted ones included."""
    records = sf.query_all(STAMPS.format(sobject), include_deleted=True)["records"]
    return {r["Id"]: (r["LastModifiedDate"], r["SystemModstamp"]) for r in records}


def described(sf: Salesforce, sobject: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}


def bulk_rows(sf: Salesforce, sobject: str, soql: str) -> list[dict[str, str]]:
    pages = getattr(sf.bulk2, sobject).query_all(soql, wait=0)
    return [row for page in pages for row in csv.DictReader(io.StringIO(page))]


def invalid_field(call: Any) -> dict[str, str]:
    with pytest.raises(SalesforceMalformedRequest) as info:
        call()
    (body,) = info.value.content
    return body


def test_added_field_with_values_everywhere_and_no_stamp_moves(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    before = stamps(sf, "Account")
    ids = list(before)
    entry = org.add_field(
        "Account",
        "Region__c",
        "picklist",
        picklist_values=["EMEA", "AMER", "APAC"],
        values={ids[0]: "AMER", ids[1][:15]: None},  # 15-character Ids work too
        default="EMEA",
    )
    assert entry["name"] == "Region__c"
    assert entry["custom"] is True
    assert entry["calculated"] is False
    field = described(sf, "Account")["Region__c"]
    assert (field["type"], field["length"], field["soapType"]) == ("picklist", 255, "xsd:string")
    assert [p["value"] for p in field["picklistValues"]] == ["EMEA", "AMER", "APAC"]
    rest = {
        r["Id"]: r["Region__c"]
        for r in sf.query_all("SELECT Id, Region__c FROM Account", include_deleted=True)["records"]
    }
    assert rest == {rid: ("AMER" if i == 0 else None if i == 1 else "EMEA") for i, rid in enumerate(ids)}
    bulk = {r["Id"]: r["Region__c"] for r in bulk_rows(sf, "Account", "SELECT Id, Region__c FROM Account")}
    assert bulk == {rid: value or "" for rid, value in rest.items()}
    assert sf.Account.get(ids[0])["Region__c"] == "AMER"
    assert stamps(sf, "Account") == before
    # FIELDS(CUSTOM) and the admin ground truth have it too.
    custom = sf.query("SELECT FIELDS(CUSTOM) FROM Account LIMIT 1")["records"][0]
    assert list(custom)[-1] == "Region__c"
    assert org.get("Account", ids[0])["Region__c"] == "AMER"
    # New records get null (a default fills existing records only).
    new = org.insert("Account", {"Name": "After the field"})
    assert sf.Account.get(new)["Region__c"] is None


@pytest.mark.parametrize(
    ("kind", "options", "expect"),
    [
        ("string", {"length": 80}, {"type": "string", "length": 80, "byteLength": 240, "filterable": True}),
        ("textarea", {}, {"type": "textarea", "length": 255, "extraTypeInfo": "plaintextarea"}),
        ("textarea", {"length": 32768}, {"type": "textarea", "length": 32768, "filterable": False}),
        ("email", {}, {"type": "email", "length": 80}),
        ("phone", {}, {"type": "phone", "length": 40}),
        ("url", {}, {"type": "url", "length": 255}),
        ("boolean", {}, {"type": "boolean", "nillable": False, "soapType": "xsd:boolean"}),
        ("int", {"precision": 6}, {"type": "int", "digits": 6, "soapType": "xsd:int"}),
        ("double", {"precision": 10, "scale": 3}, {"type": "double", "precision": 10, "scale": 3}),
        ("currency", {}, {"type": "currency", "precision": 18, "scale": 2}),
        ("percent", {"precision": 5, "scale": 1}, {"type": "percent", "precision": 5, "scale": 1}),
        ("date", {}, {"type": "date", "soapType": "xsd:date"}),
        ("datetime", {}, {"type": "datetime", "soapType": "xsd:dateTime"}),
    ],
)
def test_every_custom_field_type_described(
    sf_emulator: Emulator, sf: Salesforce, kind: str, options: dict[str, Any], expect: dict[str, Any]
) -> None:
    sf_emulator.org.add_field("Contact", "New_Field__c", kind, **options)
    field = described(sf, "Contact")["New_Field__c"]
    assert {k: field[k] for k in expect} == expect
    assert (field["custom"], field["calculated"], field["createable"]) == (True, False, True)
    values = {r["New_Field__c"] for r in sf.query_all("SELECT New_Field__c FROM Contact")["records"]}
    assert values == ({False} if kind == "boolean" else {None})


def test_values_from_a_function(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    org.add_field(
        "Contact",
        "Name_Length__c",
        "double",
        precision=4,
        scale=0,
        values=lambda record: len(record["LastName"]),
    )
    for r in sf.query_all("SELECT LastName, Name_Length__c FROM Contact")["records"]:
        assert r["Name_Length__c"] == float(len(r["LastName"]))


SOME_ACCOUNT = "001Dn0000000001IAA"  # the first generated Account


@pytest.mark.parametrize(
    ("sobject", "name", "kind", "options", "match"),
    [
        ("Account", "Region", "string", {}, "ends with __c"),
        ("Account", "Bad__Name__c", "string", {}, "invalid custom field name"),
        ("Account", "tier__c", "string", {}, "already has a field Tier__c"),
        ("Account", "Ref__c", "reference", {}, "unsupported field type"),
        ("Account", "Long__c", "string", {"length": 256}, r"length of a string field is 1\.\.255"),
        ("Account", "Num__c", "double", {"precision": 4, "scale": 5}, r"scale is 0\.\.precision"),
        ("Account", "Pick__c", "picklist", {}, "picklist needs its values"),
        ("Account", "Code__c", "string", {"length": 3, "default": "ABCD"}, "longer than 3 characters"),
        (
            "Account",
            "Small__c",
            "double",
            {"precision": 3, "scale": 1, "values": {SOME_ACCOUNT: 100}},
            "fit 2",
        ),
        ("Account", "Code__c", "string", {"values": {"001Dn000000zzzzIAA": "x"}}, "has no record"),
        ("Lead", "Code__c", "string", {}, "unknown sObject"),
    ],
)
def test_add_field_refusals(
    sf_emulator: Emulator, sobject: str, name: str, kind: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        sf_emulator.org.add_field(sobject, name, kind, **options)
    assert len(sf_emulator.org.fields("Account")) == len(described(sf_emulator.salesforce(), "Account"))


def test_removed_field_fails_like_an_unknown_or_hidden_one(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    soql = "SELECT Id, Health_Score__c FROM Account"
    unknown = invalid_field(lambda: sf.query(soql.replace("Health_Score__c", "Nope__c")))
    org.hide_fields("Account", ["Health_Score__c"])
    hidden_rest = invalid_field(lambda: sf.query(soql))
    hidden_bulk = invalid_field(lambda: bulk_rows(sf, "Account", soql))
    hidden_describe = sf.Account.describe()
    org.show_fields("Account", ["Health_Score__c"])
    before = stamps(sf, "Account")
    org.remove_field("Account", "Health_Score__c")
    removed_rest = invalid_field(lambda: sf.query(soql))
    removed_all = invalid_field(lambda: sf.query_all(soql, include_deleted=True))
    removed_bulk = invalid_field(lambda: bulk_rows(sf, "Account", soql))
    assert removed_rest == hidden_rest == removed_all == removed_bulk == hidden_bulk
    assert removed_rest["errorCode"] == unknown["errorCode"] == "INVALID_FIELD"
    assert removed_rest["message"] == unknown["message"].replace("Nope__c", "Health_Score__c")
    assert sf.Account.describe() == hidden_describe  # describe cannot tell them apart either
    assert "Health_Score__c" not in described(sf, "Account")
    some_id = org.all_ids("Account", include_deleted=False)[0]
    assert "Health_Score__c" not in sf.Account.get(some_id)
    fields_error = invalid_field(lambda: sf.Account.get(some_id, params={"fields": "Id,Health_Score__c"}))
    assert fields_error["errorCode"] == "INVALID_FIELD"
    assert "Health_Score__c" not in sf.query("SELECT FIELDS(ALL) FROM Account LIMIT 5")["records"][0]
    assert "Health_Score__c" not in org.get("Account", some_id)
    assert stamps(sf, "Account") == before
    with pytest.raises(ValueError, match="has no writable field"):
        org.update("Account", some_id, {"Health_Score__c": 1.0})


def test_hidden_and_deleted_differ_only_for_the_admin(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    org.hide_fields("Contact", ["NPS__c"])
    org.remove_field("Contact", "Preferred_Channel__c")
    names = set(described(sf, "Contact"))
    assert not {"NPS__c", "Preferred_Channel__c"} & names
    admin = {f["name"]: f["hidden"] for f in org.fields("Contact")}
    assert admin["NPS__c"] is True
    assert "Preferred_Channel__c" not in admin
    assert org.deleted_fields == {"Contact": ["Preferred_Channel__c"]}
    assert org.hidden_fields == {"Contact": frozenset({"NPS__c"})}
    with pytest.raises(ValueError, match="no field 'Preferred_Channel__c'"):
        org.hide_fields("Contact", ["Preferred_Channel__c"])
    # Showing brings the values back; they were there all along.
    org.show_fields("Contact", ["NPS__c"])
    assert any(r["NPS__c"] is not None for r in sf.query_all("SELECT NPS__c FROM Contact")["records"])


def test_restore_brings_the_values_back(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    original = {r["Id"]: r["Tier__c"] for r in org.snapshot("Account")}
    org.hide_fields("Account", ["Tier__c"])
    org.remove_field("Account", "Tier__c")
    assert org.hidden_fields == {"Account": frozenset()}
    created = org.insert("Account", {"Name": "Born while Tier__c was gone"})
    before = stamps(sf, "Account")
    entry = org.restore_field("Account", "Tier__c")
    assert entry["type"] == "picklist"
    assert org.hidden_fields == {"Account": frozenset({"Tier__c"})}  # hidden as it was
    org.show_fields("Account")
    rows = sf.query_all("SELECT Id, Tier__c FROM Account", include_deleted=True)["records"]
    assert {r["Id"]: r["Tier__c"] for r in rows} == {**original, created: None}
    assert stamps(sf, "Account") == before
    assert org.deleted_fields == {}
    with pytest.raises(KeyError):
        org.restore_field("Account", "Tier__c")


def test_standard_and_unknown_fields_cannot_be_removed(sf_emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="standard field"):
        sf_emulator.org.remove_field("Account", "Industry")
    with pytest.raises(KeyError):
        sf_emulator.org.remove_field("Account", "Nope__c")


@pytest.mark.emulator(accounts=30, contacts=90)
def test_retype_widen_and_convert(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    org.add_field("Account", "Code__c", "string", length=10, default="ABC")
    before = {r["Id"]: r for r in org.snapshot("Account")}
    stamps_before = stamps(sf, "Account")
    org.retype_field("Account", "Code__c", length=200)
    org.retype_field("Account", "Tier__c", "string", length=100)  # picklist -> text
    org.retype_field("Account", "Health_Score__c", "string", length=50)  # number -> text
    org.retype_field("Account", "Onboarded_On__c", "date")  # same type: nothing to do
    fields = described(sf, "Account")
    assert (fields["Code__c"]["type"], fields["Code__c"]["length"]) == ("string", 200)
    assert (fields["Tier__c"]["type"], fields["Tier__c"]["length"]) == ("string", 100)
    assert fields["Tier__c"]["picklistValues"] == []
    assert (fields["Health_Score__c"]["type"], fields["Health_Score__c"]["precision"]) == ("string", 0)
    rows = sf.query_all("SELECT Id, Code__c, Tier__c, Health_Score__c FROM Account", include_deleted=True)[
        "records"
    ]
    for r in rows:
        old = before[r["Id"]]
        assert r["Code__c"] == "ABC"
        assert r["Tier__c"] == old["Tier__c"]
        score = old["Health_Score__c"]
        assert r["Health_Score__c"] == (None if score is None else f"{score:g}")
        if score is not None:
            assert float(r["Health_Score__c"]) == score
    assert stamps(sf, "Account") == stamps_before
    # Bulk renders the new types too; filters follow the new type.
    bulk = bulk_rows(sf, "Account", "SELECT Id, Health_Score__c FROM Account")
    assert {r["Id"]: r["Health_Score__c"] for r in bulk} == {
        r["Id"]: r["Health_Score__c"] or "" for r in rows
    }
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id FROM Account WHERE Health_Score__c > 5")
    assert sf.query("SELECT COUNT() FROM Account WHERE Health_Score__c != '5'")["totalSize"] > 0


def score_values(sf: Salesforce) -> dict[str, Any]:
    rows = sf.query_all("SELECT Id, Score__c FROM Contact", include_deleted=True)["records"]
    return {r["Id"]: r["Score__c"] for r in rows}


def test_retype_numbers(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    ids = org.all_ids("Contact")
    org.add_field("Contact", "Score__c", "double", precision=5, scale=2, values={ids[0]: 12.345, ids[1]: 7})
    assert org.get("Contact", ids[0])["Score__c"] == 12.35  # half up at the field's scale
    org.retype_field("Contact", "Score__c", precision=18, scale=4)  # widen: values unchanged
    field = described(sf, "Contact")["Score__c"]
    assert (field["type"], field["precision"], field["scale"]) == ("double", 18, 4)
    org.retype_field("Contact", "Score__c", "currency")
    assert described(sf, "Contact")["Score__c"]["type"] == "currency"
    org.retype_field("Contact", "Score__c", scale=1)  # narrower scale: rounded half up
    got = score_values(sf)
    assert (got[ids[0]], got[ids[1]]) == (12.4, 7.0)
    with pytest.raises(ValueError, match="does not fit"):
        org.retype_field("Contact", "Score__c", precision=2, scale=1)
    org.retype_field("Contact", "Score__c", "string", length=10)
    got = score_values(sf)
    assert (got[ids[0]], got[ids[1]]) == ("12.4", "7")
    org.retype_field("Contact", "Score__c", "double", precision=6, scale=2)  # text -> number
    got = score_values(sf)
    assert (got[ids[0]], got[ids[1]], got[ids[2]]) == (12.4, 7.0, None)


@pytest.mark.parametrize(
    ("sobject", "name", "kind", "match"),
    [
        ("Contact", "Is_Champion__c", "string", "does not convert boolean to string"),
        ("Account", "Onboarded_On__c", "datetime", "does not convert date to datetime"),
        ("Account", "Health_Score__c", "date", "does not convert double to date"),
        ("Account", "Health_Score__c", "multipicklist", "unsupported field type"),
        ("Contact", "Email", "string", "standard field"),
    ],
)
def test_retype_refusals(sf_emulator: Emulator, sobject: str, name: str, kind: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sf_emulator.org.retype_field(sobject, name, kind)


def test_bulk_job_keeps_its_snapshot_across_a_change(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    client = sf.bulk2.Account._client
    job = client.create_job("query", "SELECT Id, Tier__c FROM Account")
    org.remove_field("Account", "Tier__c")
    client.wait_for_job(job["id"], True, wait=0)
    # A job created before the change serves the snapshot it took, with its columns.
    result = client.get_query_results(job["id"])
    header = result["records"].splitlines()[0]
    assert header == '"Id","Tier__c"'


@pytest.mark.emulator(contacts=450)
def test_cursor_keeps_its_shape_across_a_change(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    first = sf.query("SELECT Id, NPS__c FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    org.add_field("Contact", "Added__c", "string", default="x")
    org.remove_field("Contact", "Preferred_Channel__c")
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert set(rest["records"][0]) == {"attributes", "Id", "NPS__c"}
    expected = {r["Id"]: r["NPS__c"] for r in org.snapshot("Contact", include_deleted=False)}
    assert all(expected[r["Id"]] == r["NPS__c"] for r in first["records"] + rest["records"])
    assert sf.query("SELECT Added__c FROM Contact LIMIT 1")["records"][0]["Added__c"] == "x"


def test_admin_http_fields(sf_emulator: Emulator, sf: Salesforce) -> None:
    acme = sf_emulator.add_org("acme", accounts=5, contacts=10)
    base = f"{sf_emulator.base_url}/__admin/fields"
    some_id = acme.all_ids("Account")[0]
    added = requests.post(
        f"{base}/Account?org=acme",
        json={
            "name": "Region__c",
            "type": "string",
            "length": 40,
            "values": {some_id: "EMEA"},
            "default": "?",
        },
    )
    assert added.status_code == 201
    assert (added.json()["name"], added.json()["length"]) == ("Region__c", 40)
    assert acme.get("Account", some_id)["Region__c"] == "EMEA"
    assert "Region__c" not in described(sf, "Account")  # the default org is untouched
    retyped = requests.patch(f"{base}/Account/Region__c?org=acme", json={"length": 120})
    assert (retyped.status_code, retyped.json()["length"]) == (200, 120)
    listing = requests.get(f"{base}/Account?org=acme").json()
    assert {f["name"]: f["hidden"] for f in listing["fields"]}["Region__c"] is False
    assert requests.delete(f"{base}/Account/Region__c?org=acme").json() == {"deleted": "Region__c"}
    assert requests.get(f"{base}/Account?org=acme").json()["deleted"] == ["Region__c"]
    restored = requests.post(f"{base}/Account/Region__c/restore?org=acme")
    assert (restored.status_code, restored.json()["length"]) == (200, 120)
    assert acme.get("Account", some_id)["Region__c"] == "EMEA"
    bad = requests.post(f"{base}/Account?org=acme", json={"name": "Region", "type": "string"})
    assert bad.status_code == 400
    assert "__c" in bad.json()["error"]
    assert requests.delete(f"{base}/Account/Nope__c").status_code == 404
    assert requests.get(f"{base}/Lead").status_code == 400
    state = requests.get(f"{sf_emulator.base_url}/__admin/state?org=acme").json()
    assert state["deleted_fields"] == {}


def test_retype_between_int_and_decimal(sf_emulator: Emulator, sf: Salesforce) -> None:
    org = sf_emulator.org
    first, second = org.all_ids("Account")[:2]
    org.add_field("Account", "Seats__c", "int", precision=6, values={first: 5, second: 123456})
    org.retype_field("Account", "Seats__c", "double", scale=1)
    field = next(f for f in sf.Account.describe()["fields"] if f["name"] == "Seats__c")
    assert (field["type"], field["precision"], field["scale"]) == ("double", 18, 1)
    org.update("Account", first, {"Seats__c": 2.5}, touch="none")
    org.retype_field("Account", "Seats__c", "int")
    field = next(f for f in sf.Account.describe()["fields"] if f["name"] == "Seats__c")
    assert (field["type"], field["digits"]) == ("int", 18)
    rows = sf.query_all("SELECT Id, Seats__c FROM Account", include_deleted=True)["records"]
    assert {r["Id"]: r["Seats__c"] for r in rows if r["Id"] in (first, second)} == {first: 3, second: 123456}
    with pytest.raises(ValueError, match="does not fit 5 digits"):
        org.retype_field("Account", "Seats__c", precision=5)
