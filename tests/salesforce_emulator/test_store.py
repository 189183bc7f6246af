"""The in-process admin API: records, recycle bin, clock, fields, ground truth."""

from __future__ import annotations

import datetime as dt

import pytest

from salesforce_emulator.ids import is_valid_id
from salesforce_emulator.store import Org

NOW = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=dt.UTC)  # the clock of the org fixture


def test_insert_defaults_and_stamp(org: Org) -> None:
    rid = org.insert("Contact", {"LastName": "New", "FirstName": "Brand"})
    rec = org.get("Contact", rid)
    assert rec is not None
    assert is_valid_id(rid)
    assert rid.startswith("003")
    assert rec["Name"] == "Brand New"
    assert rec["IsDeleted"] is False
    assert rec["Is_Champion__c"] is False
    assert (
        rec["CreatedDate"]
        == rec["LastModifiedDate"]
        == rec["SystemModstamp"]
        == "2024-06-01T12:00:00.000+0000"
    )
    rid2 = org.insert(
        "Account", {"Name": "Backdated", "CreatedDate": "2024-01-01T00:00:00Z"}, system_modstamp=NOW
    )
    assert org.get("Account", rid2)["CreatedDate"] == "2024-01-01T00:00:00.000+0000"


def test_insert_validates(org: Org) -> None:
    with pytest.raises(ValueError, match="required"):
        org.insert("Contact", {"FirstName": "NoLast"})
    with pytest.raises(ValueError, match="no writable field"):
        org.insert("Account", {"Name": "x", "Bogus__c": 1})
    with pytest.raises(ValueError, match="no Account with Id"):
        org.insert("Contact", {"LastName": "x", "AccountId": "001Dn00000zzzzzAAA"[:15]})
    with pytest.raises(ValueError, match="expected an int"):
        org.insert("Account", {"Name": "x", "NumberOfEmployees": "many"})
    with pytest.raises(ValueError, match="not writable"):
        org.insert("Contact", {"LastName": "x", "Name": "forced"})


def test_update_touch_modes(org: Org) -> None:
    rid = org.all_ids("Contact", include_deleted=False)[0]
    before = org.get("Contact", rid)
    org.update("Contact", rid, {"Title": "CTO"}, system_modstamp="2024-06-02T00:00:00Z")
    after = org.get("Contact", rid)
    assert after["Title"] == "CTO"
    assert after["LastModifiedDate"] == after["SystemModstamp"] == "2024-06-02T00:00:00.000+0000"
    org.update("Contact", rid, {"Department": "IT"}, system_modstamp="2024-06-03T00:00:00Z", touch="system")
    sys_touch = org.get("Contact", rid)
    assert sys_touch["LastModifiedDate"] == "2024-06-02T00:00:00.000+0000"
    assert sys_touch["SystemModstamp"] == "2024-06-03T00:00:00.000+0000"
    org.update("Contact", rid, {"NPS__c": 3}, touch="none")
    assert org.get("Contact", rid)["SystemModstamp"] == "2024-06-03T00:00:00.000+0000"
    assert before["CreatedDate"] == org.get("Contact", rid)["CreatedDate"]


def test_delete_undelete_purge_with_cascade(org: Org) -> None:
    acc = org.insert("Account", {"Name": "Parent"})
    kids = [org.insert("Contact", {"LastName": f"K{i}", "AccountId": acc}) for i in range(3)]
    org.delete("Account", acc, system_modstamp="2024-06-05T00:00:00Z")
    assert org.get("Account", acc)["IsDeleted"] is True
    assert all(org.get("Contact", k)["IsDeleted"] for k in kids)
    assert org.get("Contact", kids[0])["SystemModstamp"] == "2024-06-05T00:00:00.000+0000"
    assert acc not in org.all_ids("Account", include_deleted=False)
    assert acc in org.all_ids("Account")
    org.undelete("Account", acc)
    assert not any(org.get("Contact", k)["IsDeleted"] for k in kids)
    org.delete("Account", acc)
    org.purge("Account", acc)
    assert org.get("Account", acc) is None
    assert acc not in org.all_ids("Account")
    assert all(org.get("Contact", k) is None for k in kids)
    with pytest.raises(KeyError):
        org.update("Account", acc, {"Name": "ghost"})


def test_delete_errors(org: Org) -> None:
    rid = org.all_ids("Contact", include_deleted=False)[0]
    org.delete("Contact", rid)
    with pytest.raises(ValueError, match="already deleted"):
        org.delete("Contact", rid)
    live = org.all_ids("Contact", include_deleted=False)[0]
    with pytest.raises(ValueError, match="not in the recycle bin"):
        org.undelete("Contact", live)
    with pytest.raises(ValueError, match="cannot be deleted"):
        org.delete("User", org.integration_user_id)


def test_snapshot_is_ground_truth(org: Org) -> None:
    snap = org.snapshot("Account")
    assert len(snap) == 20
    assert "IsDeleted" in snap[0]
    assert "Health_Score__c" in snap[0]
    assert "BillingAddress" not in snap[0]
    org.hide_fields("Account", ["Health_Score__c"])
    assert "Health_Score__c" in org.snapshot("Account")[0]  # ground truth ignores field security
    assert len(org.snapshot("Account", include_deleted=False)) == org.count("Account")


def test_clock(org: Org) -> None:
    assert org.now() == NOW
    org.advance_clock(90)
    assert org.now() == NOW + dt.timedelta(seconds=90)
    org.set_clock("2030-01-01T00:00:00Z", frozen=False)
    assert abs((org.now() - dt.datetime(2030, 1, 1, tzinfo=dt.UTC)).total_seconds()) < 5
    org.set_clock(None)
    assert abs((org.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 5


def test_hidden_fields_admin(org: Org) -> None:
    org.hide_fields("account", ["tier__c"])
    assert org.hidden_fields == {"Account": frozenset({"Tier__c"})}
    org.set_hidden_fields("Account", ["Health_Score__c"])
    assert org.hidden_fields["Account"] == frozenset({"Health_Score__c"})
    org.show_fields("Account")
    assert "Account" not in org.hidden_fields
    with pytest.raises(ValueError, match="Id cannot be hidden"):
        org.hide_fields("Account", ["Id"])
    with pytest.raises(ValueError, match="no field"):
        org.hide_fields("Account", ["Nope"])


def test_api_usage_admin(org: Org) -> None:
    org.set_daily_limit(10)
    org.set_api_usage(9)
    assert org.consume_api_call()
    assert not org.consume_api_call()
    assert org.api_usage == (10, 10)
    org.reset_api_usage()
    assert org.api_usage == (0, 10)
