"""End to end with real Airflow (`dag.test()`), the emulator over HTTPS and a real Postgres.

The emulator's clock stands at NOW; its records were created and changed over the 30 days
before. A run for logical date D (manual, as dag.test makes it) owns [D-1, D).
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 30, tzinfo=UTC)
pytestmark = pytest.mark.emulator(accounts=40, contacts=120, seed=77, now=NOW)


@pytest.fixture(autouse=True)
def frozen_clock(sf_emulator):
    sf_emulator.org.set_clock(NOW)  # changes made by a test are stamped at NOW unless it says otherwise


def test_first_run_is_a_full_refresh_equal_to_salesforce(pipeline):
    dag_run = pipeline.run(TODAY)
    assert dag_run.state == "success"
    assert pipeline.mismatches("Account") == []
    assert pipeline.mismatches("Contact") == []
    audit = pipeline.audit()
    assert {(a["sobject"], a["mode"], a["status"]) for a in audit} == {
        ("Account", "full_refresh", "success"),
        ("Contact", "full_refresh", "success"),
    }


def data_rows(pipeline, table):
    """Rows without the lineage columns, which say which run last wrote a row."""
    return {
        record_id: {k: v for k, v in row.items() if not k.startswith("_")}
        for record_id, row in pipeline.rows(table).items()
    }


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_inserts_updates_deletes_and_undeletes_arrive_with_the_next_daily_run(pipeline, sf_emulator):
    org = sf_emulator.org
    assert pipeline.run(TODAY).state == "success"  # full refresh of everything up to NOW

    # Changes made during the next day [11-30, 12-01), stamped by the org clock (11-30 06:00).
    live_accounts = [r for r in org.snapshot("Account") if not r["IsDeleted"]]
    live_contacts = [r for r in org.snapshot("Contact") if not r["IsDeleted"]]
    deleted_contact = next(r for r in org.snapshot("Contact") if r["IsDeleted"])
    new_account = org.insert("Account", {"Name": "New Co \t\n \\ 'quoted' 山田", "AnnualRevenue": 10.5})
    org.insert("Contact", {"LastName": "Newcomer", "AccountId": new_account, "Email": "  NEW@Example.org "})
    org.update("Contact", live_contacts[0]["Id"], {"Title": "Chief Everything Officer", "Email": None})
    org.update("Account", live_accounts[0]["Id"], {"NumberOfEmployees": 4242})
    org.delete("Account", live_accounts[1]["Id"])  # cascades to its contacts, as in Salesforce
    org.undelete("Contact", deleted_contact["Id"])

    dag_run = pipeline.run(TODAY + timedelta(days=1))
    assert dag_run.state == "success", task_states(dag_run)
    assert pipeline.mismatches("Account") == []
    assert pipeline.mismatches("Contact") == []
    modes = {(a["sobject"], a["mode"]) for a in pipeline.audit()[2:]}
    assert modes == {("Account", "incremental"), ("Contact", "incremental")}


def test_rerunning_a_window_changes_nothing_and_duplicates_nothing(pipeline):
    pipeline.run(TODAY)
    pipeline.run(TODAY + timedelta(days=1))
    before = {t: data_rows(pipeline, t) for t in ("account", "contact")}
    assert pipeline.run(TODAY + timedelta(days=1)).state == "success"
    after = {t: data_rows(pipeline, t) for t in ("account", "contact")}
    assert after == before
    counts = pipeline.query("SELECT count(*), count(DISTINCT id) FROM salesforce.contact")
    assert counts[0][0] == counts[0][1]


def test_a_backfill_of_an_older_day_never_overwrites_newer_data(pipeline, sf_emulator):
    org = sf_emulator.org
    pipeline.run(TODAY)
    account = next(r for r in org.snapshot("Account") if not r["IsDeleted"])
    org.update("Account", account["Id"], {"Name": "Newest name"})  # stamped 11-30 06:00
    assert pipeline.run(TODAY + timedelta(days=1)).state == "success"
    assert pipeline.rows("account")[account["Id"]]["name"] == "Newest name"

    # Salesforce now hands out an *older* version in an older window (as a slow or replayed
    # extraction would): the backfill of that day must not regress the row.
    org.update(
        "Account", account["Id"], {"Name": "Stale name"}, system_modstamp="2026-11-25T12:00:00.000+0000"
    )
    dag_run = pipeline.run(datetime(2026, 11, 26, tzinfo=UTC))  # owns [11-25, 11-26)
    assert dag_run.state == "success", task_states(dag_run)
    summary = dag_run.get_task_instance("sync_account").xcom_pull(task_ids="sync_account")
    assert summary["extracted"] >= 1
    row = pipeline.rows("account")[account["Id"]]
    assert row["name"] == "Newest name"
    assert row["system_modstamp"] == datetime(2026, 11, 30, 6, tzinfo=UTC)


def test_a_record_committed_late_inside_the_lookback_overlap_is_not_missed(pipeline, sf_emulator):
    org = sf_emulator.org
    pipeline.run(datetime(2026, 11, 29, tzinfo=UTC))  # full refresh, up to NOW
    # Committed after that run, but stamped 5 minutes before the next run's interval starts.
    late = org.insert(
        "Contact", {"LastName": "Late Committer"}, system_modstamp="2026-11-28T23:55:00.000+0000"
    )
    dag_run = pipeline.run(datetime(2026, 11, 30, tzinfo=UTC))  # owns [11-29, 11-30)
    assert dag_run.state == "success", task_states(dag_run)
    assert late in pipeline.rows("contact")

    # Without the overlap the same late record is missed: the protection is what finds it.
    pipeline.configure(lookback_minutes=0)
    later = org.insert("Contact", {"LastName": "Later"}, system_modstamp="2026-11-29T23:55:00.000+0000")
    pipeline.run(datetime(2026, 12, 1, tzinfo=UTC))  # owns [11-30, 12-01)
    assert later not in pipeline.rows("contact")


def test_hostile_values_round_trip_exactly(pipeline, sf_emulator):
    hostile = {
        "LastName": 'O\'Brien "Bob" \\ back\\slash, comma\ttab\nnewline\r\nCRLF Zoë 山田 🚀 \\N',
        "FirstName": "  leading and trailing spaces  ",
        "Description": ("∑ line\n\t" * 2700)[:32000],
        "Email": "  MiXeD.Case+tag@Example.COM  ",
        "Title": "NUL\x00inside",
    }
    contact = sf_emulator.org.insert("Contact", hostile)
    assert pipeline.run(TODAY).state == "success"
    row = pipeline.rows("contact")[contact]
    assert row["last_name"] == hostile["LastName"]
    assert row["first_name"] == hostile["FirstName"]
    assert row["description"] == hostile["Description"]
    assert row["email"] == "mixed.case+tag@example.com"
    assert row["title"] == "NULinside"
    assert pipeline.mismatches("Contact") == []


def test_extra_custom_and_relationship_fields_land_in_typed_columns(pipeline, sf_emulator):
    pipeline.configure(
        extra_fields={
            "Account": ["Health_Score__c", "Tier__c", "Onboarded_On__c"],
            "Contact": ["NPS__c", "Is_Champion__c", "Account.Name"],
        }
    )
    assert pipeline.run(TODAY).state == "success"
    assert (
        pipeline.mismatches("Account", fields=["Id", "Health_Score__c", "Tier__c", "Onboarded_On__c"]) == []
    )
    assert pipeline.mismatches("Contact", fields=["Id", "NPS__c", "Is_Champion__c"]) == []
    types = dict(
        pipeline.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'salesforce' AND column_name IN "
            "('health_score__c', 'onboarded_on__c', 'is_champion__c', 'account_name')"
        )
    )
    assert types == {
        "health_score__c": "numeric",
        "onboarded_on__c": "date",
        "is_champion__c": "boolean",
        "account_name": "text",
    }
    names = {r["Id"]: r["Name"] for r in sf_emulator.org.snapshot("Account")}
    contacts = {r["Id"]: r for r in sf_emulator.org.snapshot("Contact")}
    rows = pipeline.rows("contact")
    for contact_id, row in rows.items():
        account_id = contacts[contact_id]["AccountId"]
        # A Contact without an Account, or whose Account is gone, reads the parent as null.
        assert row["account_name"] == names.get(account_id), contact_id
    assert sum(row["account_name"] is not None for row in rows.values()) > len(rows) // 2


def test_an_unknown_configured_field_fails_before_anything_is_extracted(pipeline, sf_emulator):
    pipeline.configure(extra_fields={"Account": ["Helth_Score__c"]})
    dag_run = pipeline.run(TODAY)
    states = task_states(dag_run)
    assert states["sync_account"] == "failed"
    assert states["sync_contact"] == "success"
    ti = dag_run.get_task_instance("sync_account")
    assert ti.try_number == 1, "a configuration error must not be retried"
    assert pipeline.rows("account") == {}
    account_queries = [
        r for r in sf_emulator.org.requests if "FROM Account" in urllib.parse.unquote_plus(r["path"])
    ]
    assert account_queries == [], "nothing may be extracted once the configuration is known to be wrong"
    audit = sorted((a["sobject"], a["status"]) for a in pipeline.audit())
    assert audit == [("Account", "failed"), ("Contact", "success")], "every attempt is audited"
    assert "Helth_Score__c" in next(a["error"] for a in pipeline.audit() if a["sobject"] == "Account")


def test_a_value_postgres_cannot_hold_is_rejected_with_its_reason_and_counted(pipeline, sf_emulator):
    org = sf_emulator.org
    account = next(r for r in org.snapshot("Account") if not r["IsDeleted"])
    org.update("Account", account["Id"], {"NumberOfEmployees": 2**70})  # beyond bigint
    dag_run = pipeline.run(TODAY)
    assert dag_run.state == "success", task_states(dag_run)
    rejects = pipeline.query("SELECT sobject, record_id, reason, raw_record FROM salesforce.load_rejects")
    assert len(rejects) == 1
    sobject, record_id, reason, raw = rejects[0]
    assert (sobject, record_id) == ("Account", account["Id"])
    assert "NumberOfEmployees" in reason
    assert str(2**70) in raw
    assert account["Id"] not in pipeline.rows("account")
    audit = next(a for a in pipeline.audit() if a["sobject"] == "Account")
    assert audit["rejected"] == 1
