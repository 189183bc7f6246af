"""SOQL parser and evaluator, run in-process against an org with hand-made records."""

from __future__ import annotations

import datetime as dt

import pytest

from salesforce_emulator.soql import SoqlError, compile_query, parse, tokenize
from salesforce_emulator.store import Org

NOW = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def org() -> Org:
    org = Org(accounts=0, contacts=0, seed=1, now=NOW)
    org.set_clock(NOW)
    acme = org.insert(
        "Account",
        {
            "Name": "Acme",
            "NumberOfEmployees": 100,
            "AnnualRevenue": 5e6,
            "Tier__c": "Gold",
            "Onboarded_On__c": "2024-01-15",
        },
        system_modstamp="2024-05-01T10:00:00Z",
    )
    globex = org.insert(
        "Account",
        {"Name": "globex", "NumberOfEmployees": 20, "Tier__c": "Silver", "Health_Score__c": 87.25},
        system_modstamp="2024-05-02T10:00:00Z",
    )
    org.insert(
        "Account",
        {"Name": "O'Brien \\ Sons", "Description": "long text"},
        system_modstamp="2024-05-03T10:00:00Z",
    )
    org.insert(
        "Contact",
        {"LastName": "Smith", "FirstName": "Ann", "AccountId": acme, "Email": "ann@example.com", "NPS__c": 9},
        "2024-05-10T08:00:00Z",
    )
    org.insert(
        "Contact",
        {"LastName": "Zoë", "AccountId": globex, "Email": None, "Is_Champion__c": True},
        "2024-05-11T08:00:00Z",
    )
    org.insert("Contact", {"LastName": "100% real_name", "Email": "X@Example.COM"}, "2024-05-12T08:00:00Z")
    gone = org.insert("Contact", {"LastName": "Deleted", "AccountId": acme}, "2024-05-13T08:00:00Z")
    org.delete("Contact", gone, "2024-05-20T00:00:00Z")
    return org


def names(rows: list[dict], key: str = "LastName") -> list[str]:
    return [r[key] for r in rows]


def test_field_list_and_relationships(org: Org) -> None:
    rows = org.query("SELECT Id, LastName, Account.Name, Account.Owner.Name FROM Contact")
    assert names(rows) == ["Smith", "Zoë", "100% real_name"]
    assert rows[0]["Account.Name"] == "Acme"
    assert rows[0]["Account.Owner.Name"] == "Integration User"
    assert rows[2]["Account.Name"] is None


def test_count(org: Org) -> None:
    assert org.query("SELECT COUNT() FROM Contact") == [{"expr0": 3}]
    assert org.query("SELECT COUNT() FROM Contact", include_deleted=True) == [{"expr0": 4}]
    assert org.query("SELECT COUNT() FROM Contact WHERE IsDeleted = true", include_deleted=True) == [
        {"expr0": 1}
    ]


def test_deleted_rows_only_with_query_all(org: Org) -> None:
    assert org.query("SELECT Id FROM Contact WHERE IsDeleted = true") == []
    assert names(org.query("SELECT LastName FROM Contact WHERE IsDeleted = true", include_deleted=True)) == [
        "Deleted"
    ]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("LastName = 'smith'", ["Smith"]),  # case-insensitive
        ("LastName != 'Smith'", ["Zoë", "100% real_name"]),
        ("Email = null", ["Zoë"]),
        ("Email != null", ["Smith", "100% real_name"]),
        ("Email != 'ann@example.com'", ["Zoë", "100% real_name"]),  # null is a value in SOQL
        ("NPS__c >= 9", ["Smith"]),
        ("NPS__c < 9", []),
        ("Is_Champion__c = TRUE", ["Zoë"]),
        ("Is_Champion__c = false", ["Smith", "100% real_name"]),
        ("LastName IN ('smith', 'ZOË')", ["Smith", "Zoë"]),
        ("LastName NOT IN ('Smith')", ["Zoë", "100% real_name"]),
        ("LastName LIKE 'sm%'", ["Smith"]),
        ("LastName LIKE '_o%'", ["Zoë"]),
        ("LastName LIKE '100\\% real\\_%'", ["100% real_name"]),
        ("LastName LIKE '100\\%x%'", []),
        ("NOT LastName = 'Smith'", ["Zoë", "100% real_name"]),
        ("(LastName = 'Smith' OR LastName = 'Zoë') AND Email != null", ["Smith"]),
        ("LastName = 'Smith' OR (Email = null AND NOT Is_Champion__c = false)", ["Smith", "Zoë"]),
        ("Account.Name = 'Acme'", ["Smith"]),
        ("Account.Tier__c IN ('Gold', 'Silver')", ["Smith", "Zoë"]),
        ("SystemModstamp >= 2024-05-11T08:00:00Z", ["Zoë", "100% real_name"]),
        ("SystemModstamp > 2024-05-11T08:00:00.000+0000", ["100% real_name"]),
        ("SystemModstamp < 2024-05-11T10:00:00+02:00", ["Smith"]),  # 08:00 UTC, exclusive
        ("CreatedDate <= 2024-05-10T08:00:00.000Z", ["Smith"]),
        ("CreatedDate = LAST_N_DAYS:30", ["Smith", "Zoë", "100% real_name"]),
        ("CreatedDate = TODAY", []),
    ],
)
def test_where(org: Org, where: str, expected: list[str]) -> None:
    assert names(org.query(f"SELECT LastName FROM Contact WHERE {where}")) == expected


def test_dates_numbers_and_escapes_on_accounts(org: Org) -> None:
    assert names(org.query("SELECT Name FROM Account WHERE Onboarded_On__c >= 2024-01-01"), "Name") == [
        "Acme"
    ]
    assert names(org.query("SELECT Name FROM Account WHERE Health_Score__c = 87.25"), "Name") == ["globex"]
    assert names(org.query("SELECT Name FROM Account WHERE AnnualRevenue > 1000000"), "Name") == ["Acme"]
    rows = org.query("SELECT Name FROM Account WHERE Name = 'O\\'Brien \\\\ Sons'")
    assert names(rows, "Name") == ["O'Brien \\ Sons"]


def test_order_limit_offset(org: Org) -> None:
    q = "SELECT Name FROM Account ORDER BY Name"
    assert names(org.query(q), "Name") == ["Acme", "globex", "O'Brien \\ Sons"]  # case-insensitive
    assert names(org.query(q + " DESC"), "Name") == ["O'Brien \\ Sons", "globex", "Acme"]
    assert names(org.query(q + " LIMIT 2"), "Name") == ["Acme", "globex"]
    assert names(org.query(q + " LIMIT 1 OFFSET 1"), "Name") == ["globex"]
    # nulls first ascending by default, last descending; both overridable
    tiers = "SELECT Name FROM Account ORDER BY Tier__c"
    assert names(org.query(tiers), "Name")[0] == "O'Brien \\ Sons"
    assert names(org.query(tiers + " DESC"), "Name")[-1] == "O'Brien \\ Sons"
    assert names(org.query(tiers + " ASC NULLS LAST"), "Name")[-1] == "O'Brien \\ Sons"
    assert names(org.query(tiers + " DESC NULLS FIRST"), "Name")[0] == "O'Brien \\ Sons"
    # multiple keys, mixed directions
    rows = org.query("SELECT LastName FROM Contact ORDER BY Account.Name DESC NULLS LAST, LastName ASC")
    assert names(rows) == ["Zoë", "Smith", "100% real_name"]


def test_alias_object_prefix_and_fields_function(org: Org) -> None:
    assert org.query("SELECT c.LastName FROM Contact c WHERE c.LastName = 'Smith'") == [{"LastName": "Smith"}]
    assert org.query("SELECT Account.Name FROM Account WHERE Name = 'Acme'") == [{"Name": "Acme"}]
    rows = org.query("SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme'")
    assert "Health_Score__c" not in rows[0]
    assert rows[0]["Name"] == "Acme"
    custom = org.query("SELECT FIELDS(CUSTOM) FROM Account WHERE Name = 'Acme' LIMIT 1")
    assert set(custom[0]) == {"Health_Score__c", "Tier__c", "Onboarded_On__c"}


def test_compound_address_selected_as_object(org: Org) -> None:
    org.update("Account", org.all_ids("Account")[0], {"BillingCity": "Paris", "BillingCountry": "France"})
    rows = org.query("SELECT BillingAddress FROM Account WHERE Name = 'Acme'")
    assert rows[0]["BillingAddress"]["City"] == "Paris"


def err(query: str, **kw: object) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        compile_query(query, **kw)  # type: ignore[arg-type]
    return info.value


def test_errors() -> None:
    e = err("SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = 'c'")
    assert e.code == "MALFORMED_QUERY"
    assert "unexpected token: 'OR'" in e.message
    assert "ERROR at Row:1:Column:" in e.message
    assert err("SELECT Id FROM Account WHERE").message.endswith("unexpected token: <EOF>")
    assert err("SELECT Id, Nope__c FROM Account").code == "INVALID_FIELD"
    assert err("SELECT Id FROM Nope").code == "INVALID_TYPE"
    assert err("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01").code == "INVALID_FIELD"
    assert err("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01T00:00:00Z'").code == "INVALID_FIELD"
    assert err("SELECT Id FROM Account WHERE Name = 5").code == "INVALID_FIELD"
    assert err("SELECT Id FROM Account WHERE NumberOfEmployees = '5'").code == "INVALID_FIELD"
    assert "can not be filtered" in err("SELECT Id FROM Account WHERE Description = 'x'").message
    assert "can not be filtered" in err("SELECT Id FROM Account WHERE BillingAddress != null").message
    assert "can not be sorted" in err("SELECT Id FROM Account ORDER BY Description").message
    assert "duplicate field selected" in err("SELECT Id, id FROM Account").message
    assert err("SELECT Id FROM Account WHERE Id = 'nope'").code == "INVALID_QUERY_FILTER_OPERATOR"
    assert err("SELECT Id FROM Account WHERE Name = 'bad \\q escape'").code == "MALFORMED_QUERY"
    assert err("SELECT Id FROM Account WHERE Name = 'open").code == "MALFORMED_QUERY"
    assert err("SELECT Nope.Name FROM Contact").code == "INVALID_FIELD"
    assert err("SELECT FIELDS(ALL) FROM Account").code == "MALFORMED_QUERY"  # needs LIMIT <= 200
    assert err("SELECT Id FROM Account OFFSET 2001").code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert err("SELECT Id, (SELECT Id FROM Contacts) FROM Account").code == "MALFORMED_QUERY"


def test_hidden_fields_are_invalid() -> None:
    hidden = {"Account": frozenset({"Health_Score__c"})}
    assert err("SELECT Health_Score__c FROM Account", hidden=hidden).code == "INVALID_FIELD"
    assert err("SELECT Account.Health_Score__c FROM Contact", hidden=hidden).code == "INVALID_FIELD"
    assert compile_query("SELECT Name FROM Account", hidden=hidden).columns[0].field.name == "Name"


def test_tokenizer_and_parser_shapes() -> None:
    kinds = [t.kind for t in tokenize("SELECT Id FROM A WHERE d > 2024-01-01T00:00:00.000+0000 AND x = -1.5")]
    assert kinds == [
        "ident",
        "ident",
        "ident",
        "ident",
        "ident",
        "ident",
        "op",
        "datetime",
        "ident",
        "ident",
        "op",
        "number",
        "eof",
    ]
    parsed = parse("select id from account where name like 'a%' order by name desc nulls first limit 5")
    assert parsed.sobject == "account"
    assert parsed.limit == 5
    assert parsed.order[0].descending
    assert not parsed.order[0].nulls_last
