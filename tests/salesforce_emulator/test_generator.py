"""The seeded data generator: determinism, realism and hostility."""

from __future__ import annotations

import datetime as dt

from salesforce_emulator.generator import generate
from salesforce_emulator.ids import is_valid_id
from salesforce_emulator.schema import ACCOUNT, CONTACT

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def contacts_as_dicts(n: int = 2000, seed: int = 3) -> list[dict]:
    data = generate(accounts=200, contacts=n, seed=seed, now=NOW)
    return [dict(zip(CONTACT.storage, r, strict=True)) for r in data.contacts]


def test_deterministic_and_prefix_stable() -> None:
    a = generate(accounts=50, contacts=300, seed=9, now=NOW)
    b = generate(accounts=50, contacts=300, seed=9, now=NOW)
    c = generate(accounts=50, contacts=400, seed=9, now=NOW)
    assert a.contacts == b.contacts
    assert a.accounts == b.accounts
    assert c.contacts[:300] == a.contacts  # record i does not depend on the total
    assert generate(accounts=50, contacts=300, seed=10, now=NOW).contacts != a.contacts


def test_ids_and_prefixes() -> None:
    data = generate(accounts=30, contacts=100, seed=1, now=NOW)
    assert data.org_id.startswith("00D")
    assert is_valid_id(data.org_id)
    assert all(r[0].startswith("001") and is_valid_id(r[0]) for r in data.accounts)
    assert all(r[0].startswith("003") and is_valid_id(r[0]) for r in data.contacts)
    assert all(u[0].startswith("005") for u in data.users)
    assert len({r[0] for r in data.contacts}) == 100


def test_timestamps_ordered_within_period() -> None:
    lo = "2024-05-02T00:00:00.000+0000"
    hi = "2024-06-01T00:00:00.000+0000"
    for rec in contacts_as_dicts():
        assert lo <= rec["CreatedDate"] <= rec["LastModifiedDate"] <= rec["SystemModstamp"] <= hi
        assert rec["CreatedDate"].endswith(".000+0000")


def test_hostile_and_messy_values_present() -> None:
    recs = contacts_as_dicts(3000)
    text = " ".join(str(v) for r in recs for v in r.values() if isinstance(v, str))
    for needle in ("Zoë", "山田", "\t", "\n", '"', ",", "\\", "'"):
        assert needle in text, needle
    assert any(ord(ch) > 0xFFFF for ch in text)  # emoji
    emails = [r["Email"] for r in recs]
    assert None in emails
    assert any(e and e != e.strip() for e in emails)
    assert any(e and e != e.lower() for e in emails)
    assert any(r["Description"] and len(r["Description"]) > 31_000 for r in recs)
    assert any(r["AccountId"] is None for r in recs)
    assert any(r["IsDeleted"] for r in recs)


def test_contacts_on_deleted_accounts_and_custom_fields() -> None:
    data = generate(accounts=200, contacts=3000, seed=4, now=NOW)
    accounts = [dict(zip(ACCOUNT.storage, r, strict=True)) for r in data.accounts]
    deleted = {a["Id"] for a in accounts if a["IsDeleted"]}
    contacts = [dict(zip(CONTACT.storage, r, strict=True)) for r in data.contacts]
    assert any(c["AccountId"] in deleted for c in contacts)
    assert {a["Tier__c"] for a in accounts} == {"Gold", "Silver", "Bronze", None}
    assert all(a["Health_Score__c"] is None or 0 <= a["Health_Score__c"] <= 999.99 for a in accounts)
    assert any(a["ParentId"] for a in accounts)
    assert all(isinstance(c["Is_Champion__c"], bool) for c in contacts)
