"""Schema drift end to end (real Airflow via `dag.test()`, the emulator over HTTPS, Postgres):
fields added, removed and retyped in Salesforce while the pipeline runs, and formula and roll-up
fields whose values change without SystemModstamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 30, tzinfo=UTC)
TOMORROW = TODAY + timedelta(days=1)
pytestmark = pytest.mark.emulator(accounts=40, contacts=120, seed=78, now=NOW)


@pytest.fixture(autouse=True)
def frozen_clock(sf_emulator):
    sf_emulator.org.set_clock(NOW)


def describe(org, sobject):
    return {"fields": org.fields(sobject)}


def column(pipeline, table, name):
    """{id: value} of one column."""
    return dict(pipeline.query(f'SELECT id, "{name}" FROM salesforce.{table}'))


def changes(pipeline):
    return pipeline.query("SELECT sobject, field, change FROM salesforce.schema_changes ORDER BY change_id")


def all_columns_but(pipeline, table, skipped):
    return {
        record_id: {k: v for k, v in row.items() if k not in skipped and not k.startswith("_")}
        for record_id, row in pipeline.rows(table).items()
    }


def test_a_field_added_in_salesforce_is_added_and_filled_for_every_existing_row(pipeline, sf_emulator):
    org = sf_emulator.org
    pipeline.configure(fields={"Contact": "all"})
    assert pipeline.run(TODAY).state == "success"
    before = all_columns_but(pipeline, "contact", {"loyalty_points__c"})
    contacts = org.snapshot("Contact")
    # An admin adds a field and fills it for every record: no SystemModstamp moves.
    org.add_field(
        "Contact",
        "Loyalty_Points__c",
        "double",
        precision=10,
        scale=2,
        values={r["Id"]: round(len(r["Id"]) * 1.25 + i, 2) for i, r in enumerate(contacts)},
    )
    stamps = {r["Id"]: r["SystemModstamp"] for r in org.snapshot("Contact")}
    assert stamps == {r["Id"]: r["SystemModstamp"] for r in contacts}

    dag_run = pipeline.run(TOMORROW)
    assert dag_run.state == "success"
    fields = [*pipeline_default_fields("Contact"), "Loyalty_Points__c"]
    assert pipeline.mismatches("Contact", fields=fields, describe=describe(org, "Contact")) == []
    assert all(value is not None for value in column(pipeline, "contact", "loyalty_points__c").values())
    # Nothing else in those rows was touched, and the day's window had no changes to load.
    assert all_columns_but(pipeline, "contact", {"loyalty_points__c"}) == before
    assert ("Contact", "Loyalty_Points__c", "added") in changes(pipeline)
    sync = [a for a in pipeline.audit() if a["sobject"] == "Contact" and a["mode"] == "incremental"][-1]
    assert sync["status"] == "success"
    assert sync["api_calls"] >= 2  # the window's query and the new field's re-read, counted together


def test_a_removed_field_keeps_its_column_and_values_and_is_recorded_once(pipeline, sf_emulator):
    org = sf_emulator.org
    ids = [r["Id"] for r in org.snapshot("Account")]
    org.add_field(
        "Account", "Region__c", "string", length=40, values={i: f"R{n % 3}" for n, i in enumerate(ids)}
    )
    pipeline.configure(fields={"Account": "all"})
    assert pipeline.run(TODAY).state == "success"
    kept = column(pipeline, "account", "region__c")
    assert set(kept.values()) == {"R0", "R1", "R2"}

    org.remove_field("Account", "Region__c")
    assert pipeline.run(TOMORROW).state == "success"
    assert pipeline.run(TOMORROW + timedelta(days=1)).state == "success"
    assert column(pipeline, "account", "region__c") == kept
    assert [c for c in changes(pipeline) if c[1] == "Region__c"] == [("Account", "Region__c", "removed")]


def test_a_retyped_field_is_widened_and_its_values_stay_exact(pipeline, sf_emulator):
    org = sf_emulator.org
    ids = [r["Id"] for r in org.snapshot("Contact")]
    org.add_field("Contact", "Visits__c", "int", values={i: n * 7 for n, i in enumerate(ids)})
    org.add_field(
        "Contact", "Score__c", "double", precision=8, scale=2, values={i: n + 0.5 for n, i in enumerate(ids)}
    )
    pipeline.configure(fields={"Contact": "all"})
    assert pipeline.run(TODAY).state == "success"

    org.retype_field("Contact", "Visits__c", "double", precision=18, scale=2)  # integer -> decimal
    org.retype_field("Contact", "Score__c", "string", length=20)  # number -> text
    dag_run = pipeline.run(TOMORROW)
    assert dag_run.state == "success"
    types = dict(
        pipeline.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'salesforce' AND table_name = 'contact' AND column_name IN ('visits__c', 'score__c')"
        )
    )
    assert types == {"visits__c": "numeric", "score__c": "text"}
    fields = [*pipeline_default_fields("Contact"), "Visits__c", "Score__c"]
    assert pipeline.mismatches("Contact", fields=fields, describe=describe(org, "Contact")) == []
    retyped = {c[1] for c in changes(pipeline) if c[2] == "retyped"}
    assert retyped == {"Visits__c", "Score__c"}


@pytest.mark.emulator(accounts=150, contacts=1500, seed=79, now=NOW, calculated_fields=True)
def test_changed_formula_values_are_refreshed_and_only_those_rows_rewritten(pipeline, sf_emulator):
    org = sf_emulator.org
    pipeline.configure(fields="all", calculated_refresh="daily")
    assert pipeline.run(TODAY).state == "success"
    calculated = [f["name"] for f in org.fields("Contact") if f.get("calculated")]
    assert "Engagement_Score__c" in calculated

    # Records outside the next run's window, whose rows that run's own load does not rewrite.
    window_start = TODAY - timedelta(minutes=10)
    outside = [r["Id"] for r in org.snapshot("Contact") if _stamp(r["SystemModstamp"]) < window_start]
    changed = set(org.change_calculated_values("Contact", ids=outside[:1000]))
    assert len(changed) == 1000
    # The day's refresh is due again (as it is a day later).
    pipeline.execute(
        "UPDATE salesforce.load_audit SET finished_at = finished_at - interval '1 day' WHERE mode = 'calculated_refresh'"
    )
    before = dict(pipeline.query("SELECT id, xmin::text FROM salesforce.contact"))
    assert pipeline.run(TOMORROW).state == "success"

    fields = [*pipeline_default_fields("Contact"), *calculated]
    assert pipeline.mismatches("Contact", fields=fields, describe=describe(org, "Contact")) == []
    after = dict(pipeline.query("SELECT id, xmin::text FROM salesforce.contact"))
    in_window = {r["Id"] for r in org.snapshot("Contact") if _stamp(r["SystemModstamp"]) >= window_start}
    rewritten = {record_id for record_id, xmin in after.items() if before[record_id] != xmin}
    assert rewritten - in_window == changed
    refresh = [
        a for a in pipeline.audit() if a["sobject"] == "Contact" and a["mode"] == "calculated_refresh"
    ][-1]
    assert refresh["status"] == "success"
    assert refresh["upserted"] == 1000
    assert refresh["api_calls"] >= 2  # the count and at least one page, in the run's budget and audit


def _stamp(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


def pipeline_default_fields(sobject):
    from salesforce_pipeline.objects import OBJECTS

    return list(OBJECTS[sobject].default_fields)
