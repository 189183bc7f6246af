"""describe: global list and per-object field metadata consistent with the data served."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce

from salesforce_emulator import Emulator

ACCOUNT_STANDARD = [
    "Id",
    "IsDeleted",
    "MasterRecordId",
    "Name",
    "Type",
    "ParentId",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "BillingAddress",
    "ShippingStreet",
    "ShippingCity",
    "ShippingState",
    "ShippingPostalCode",
    "ShippingCountry",
    "ShippingAddress",
    "Phone",
    "Fax",
    "Website",
    "Industry",
    "AnnualRevenue",
    "NumberOfEmployees",
    "Description",
    "OwnerId",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "AccountSource",
]
CONTACT_STANDARD = [
    "Id",
    "IsDeleted",
    "AccountId",
    "LastName",
    "FirstName",
    "Salutation",
    "Name",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "MailingAddress",
    "Phone",
    "MobilePhone",
    "Email",
    "Title",
    "Department",
    "LeadSource",
    "Birthdate",
    "Description",
    "OwnerId",
    "HasOptedOutOfEmail",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
]


@pytest.fixture
def sf(sf_emulator: Emulator) -> Salesforce:
    return sf_emulator.salesforce()


def test_global_describe(sf: Salesforce) -> None:
    body = sf.describe()
    assert body["encoding"] == "UTF-8"
    assert body["maxBatchSize"] == 200
    by_name = {s["name"]: s for s in body["sobjects"]}
    assert by_name["Account"]["keyPrefix"] == "001"
    assert by_name["Contact"]["keyPrefix"] == "003"
    assert by_name["Account"]["queryable"] is True
    assert by_name["Account"]["urls"]["describe"] == "/services/data/v59.0/sobjects/Account/describe"


def test_account_fields(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert set(ACCOUNT_STANDARD) <= set(fields)
    assert fields["Health_Score__c"]["type"] == "double"
    assert (fields["Health_Score__c"]["precision"], fields["Health_Score__c"]["scale"]) == (5, 2)
    assert fields["Health_Score__c"]["custom"] is True
    assert [p["value"] for p in fields["Tier__c"]["picklistValues"]] == ["Gold", "Silver", "Bronze"]
    assert fields["Onboarded_On__c"]["type"] == "date"
    assert fields["Onboarded_On__c"]["soapType"] == "xsd:date"
    assert fields["AnnualRevenue"]["type"] == "currency"
    assert fields["NumberOfEmployees"]["type"] == "int"
    assert fields["Description"]["type"] == "textarea"
    assert fields["Description"]["length"] == 32000
    assert fields["Description"]["filterable"] is False
    assert fields["BillingAddress"]["type"] == "address"
    assert fields["BillingAddress"]["filterable"] is False
    assert fields["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert fields["ParentId"]["referenceTo"] == ["Account"]
    assert fields["ParentId"]["relationshipName"] == "Parent"
    assert fields["Id"]["type"] == "id"
    assert fields["Id"]["nillable"] is False
    assert fields["Website"]["type"] == "url"
    assert fields["Phone"]["type"] == "phone"
    assert fields["CreatedDate"]["soapType"] == "xsd:dateTime"


def test_contact_fields(sf: Salesforce) -> None:
    body = sf.Contact.describe()
    fields = {f["name"]: f for f in body["fields"]}
    assert set(CONTACT_STANDARD) <= set(fields)
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["NPS__c"]["type"] in ("int", "double")
    assert fields["Preferred_Channel__c"]["type"] == "picklist"
    assert fields["Is_Champion__c"]["type"] == "boolean"
    assert fields["Email"]["type"] == "email"
    assert fields["Birthdate"]["type"] == "date"
    assert fields["HasOptedOutOfEmail"]["type"] == "boolean"
    keys = set(fields["Email"])
    assert {"name", "label", "type", "length", "precision", "scale", "digits", "nillable", "calculated", "custom",
            "filterable", "referenceTo", "relationshipName", "compoundFieldName", "picklistValues", "soapType"} <= keys  # fmt: skip


def test_data_consistent_with_describe(sf_emulator: Emulator, sf: Salesforce) -> None:
    for sobject in ("Account", "Contact"):
        fields = [f for f in sf.restful(f"sobjects/{sobject}/describe")["fields"] if f["type"] != "address"]
        soql = f"SELECT {', '.join(f['name'] for f in fields)} FROM {sobject}"
        for rec in sf.query_all(soql, include_deleted=True)["records"]:
            for f in fields:
                v = rec[f["name"]]
                if v is None:
                    assert f["nillable"], f["name"]
                    continue
                t = f["type"]
                if t in ("string", "textarea", "phone", "url", "email", "picklist"):
                    assert isinstance(v, str), f["name"]
                    assert len(v) <= f["length"], f["name"]
                elif t in ("double", "currency"):
                    assert isinstance(v, float)
                    assert round(v, f["scale"]) == v
                elif t == "int":
                    assert isinstance(v, int)
                elif t == "boolean":
                    assert isinstance(v, bool)
                elif t in ("id", "reference"):
                    assert len(v) == 18
                elif t == "datetime":
                    assert v.endswith(".000+0000")
                elif t == "date":
                    assert len(v) == 10
                if t == "picklist" and f["name"] != "Tier__c":
                    assert v in [p["value"] for p in f["picklistValues"]]


def test_hidden_fields_left_out(sf_emulator: Emulator, sf: Salesforce) -> None:
    sf_emulator.org.hide_fields("Contact", ["NPS__c", "Email"])
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "NPS__c" not in names
    assert "Email" not in names
    assert "LastName" in names


@pytest.mark.emulator(hidden_fields={"Account": ["Tier__c"]})
def test_hidden_fields_from_constructor(sf: Salesforce) -> None:
    assert "Tier__c" not in {f["name"] for f in sf.Account.describe()["fields"]}
    assert sf.Account.metadata()["objectDescribe"]["name"] == "Account"
