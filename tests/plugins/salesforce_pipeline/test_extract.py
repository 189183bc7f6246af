"""Unit tests of field planning, SOQL building, windows and call estimates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesforce_pipeline import extract
from salesforce_pipeline.objects import ACCOUNT, CONTACT
from salesforce_pipeline.settings import SettingsError


def describe_of(spec, names, extra=()):
    types = {"Id": "id", "SystemModstamp": "datetime", "IsDeleted": "boolean", "AccountId": "reference"}
    fields = [{"name": n, "type": types.get(n, "string")} for n in names]
    for field in fields:
        if field["name"] == "AccountId":
            field.update(relationshipName="Account", referenceTo=["Account"])
    return {"name": spec.name, "fields": fields + list(extra)}


def no_related(name):
    raise AssertionError(f"describe of {name} was not expected")


def test_window_soql_uses_unquoted_utc_literals_and_a_half_open_range():
    window = extract.incremental_window(
        datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC), timedelta(minutes=10)
    )
    assert (
        window.soql_condition()
        == "SystemModstamp >= 2026-11-26T23:50:00Z AND SystemModstamp < 2026-11-28T00:00:00Z"
    )
    soql = extract.build_soql(ACCOUNT, ["Id", "Name"], window)
    assert soql == f"SELECT Id, Name FROM Account WHERE {window.soql_condition()}"
    assert (
        extract.build_count_soql(ACCOUNT, window)
        == f"SELECT COUNT() FROM Account WHERE {window.soql_condition()}"
    )


def test_a_slice_query_reads_in_id_order_and_goes_on_only_past_a_real_id():
    window = extract.Window(start=datetime(2026, 11, 27, tzinfo=UTC), end=None)
    assert extract.build_soql(CONTACT, ["Id"], window, in_id_order=True) == (
        "SELECT Id FROM Contact WHERE SystemModstamp >= 2026-11-27T00:00:00Z ORDER BY Id"
    )
    assert extract.build_soql(
        CONTACT, ["Id"], extract.FULL_REFRESH_WINDOW, after_id="003000000000042AAA"
    ) == ("SELECT Id FROM Contact WHERE Id > '003000000000042AAA' ORDER BY Id")
    # The Id comes from the warehouse's checkpoint table: nothing but an Id reaches the query.
    for not_an_id in ("003' OR Name != '", "003000000000042A", "ｘ" * 15):
        with pytest.raises(ValueError, match="not a Salesforce Id"):
            extract.build_soql(CONTACT, ["Id"], extract.FULL_REFRESH_WINDOW, after_id=not_an_id)


def test_full_refresh_reads_all_history_without_bounds():
    assert extract.build_soql(CONTACT, ["Id"], extract.FULL_REFRESH_WINDOW) == "SELECT Id FROM Contact"
    assert (
        extract.build_count_soql(CONTACT, extract.FULL_REFRESH_WINDOW, live_only=True)
        == "SELECT COUNT() FROM Contact WHERE IsDeleted = false"
    )


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        extract.soql_datetime(datetime(2026, 11, 27))


def test_plan_keeps_defaults_and_types_from_describe():
    plan = extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, ACCOUNT.default_fields), [], no_related)
    assert plan.fields == list(ACCOUNT.default_fields)
    assert plan.kinds["SystemModstamp"] == "datetime"
    assert plan.hidden_defaults == []


def test_default_fields_hidden_by_field_level_security_are_left_out():
    visible = [f for f in ACCOUNT.default_fields if f not in ("AnnualRevenue", "Phone")]
    plan = extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, visible), [], no_related)
    assert plan.hidden_defaults == ["AnnualRevenue", "Phone"]
    assert "AnnualRevenue" not in plan.fields


def test_a_hidden_required_field_is_an_error():
    visible = [f for f in ACCOUNT.default_fields if f != "SystemModstamp"]
    with pytest.raises(SettingsError, match=r"Account.SystemModstamp is not visible"):
        extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, visible), [], no_related)


def test_extra_custom_fields_get_columns_typed_from_describe():
    describe = describe_of(ACCOUNT, ACCOUNT.default_fields, [{"name": "Health_Score__c", "type": "double"}])
    plan = extract.plan_fields(ACCOUNT, describe, ["Health_Score__c"], no_related)
    assert plan.fields[-1] == "Health_Score__c"
    assert plan.extra_columns == [("health_score__c", "numeric")]


def test_an_unknown_extra_field_fails_with_a_clear_message():
    with pytest.raises(SettingsError, match=r"Account.Helth_Score__c does not exist or is not visible"):
        extract.plan_fields(
            ACCOUNT, describe_of(ACCOUNT, ACCOUNT.default_fields), ["Helth_Score__c"], no_related
        )


@pytest.mark.parametrize("name", ["Id FROM User--", "Name,(SELECT", "Name; DROP", "1Name", ""])
def test_names_that_are_not_soql_identifiers_are_refused(name):
    with pytest.raises(SettingsError, match="not a SOQL field name"):
        extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, ACCOUNT.default_fields), [name], no_related)


def test_relationship_fields_are_checked_against_the_parent_describe():
    asked = []

    def related(name):
        asked.append(name)
        return describe_of(ACCOUNT, ["Id", "Name"])

    plan = extract.plan_fields(
        CONTACT, describe_of(CONTACT, CONTACT.default_fields), ["Account.Name"], related
    )
    assert asked == ["Account"]
    assert plan.extra_columns == [("account_name", "text")]
    with pytest.raises(SettingsError, match="Account has no field 'Nmae'"):
        extract.plan_fields(CONTACT, describe_of(CONTACT, CONTACT.default_fields), ["Account.Nmae"], related)
    with pytest.raises(SettingsError, match="'Parent' is not a relationship of Contact"):
        extract.plan_fields(CONTACT, describe_of(CONTACT, CONTACT.default_fields), ["Parent.Name"], related)


def test_compound_address_fields_are_refused():
    describe = describe_of(ACCOUNT, ACCOUNT.default_fields, [{"name": "BillingAddress", "type": "address"}])
    with pytest.raises(SettingsError, match="compound field"):
        extract.plan_fields(ACCOUNT, describe, ["BillingAddress"], no_related)


def test_api_call_estimates():
    assert extract.estimate_api_calls(0, "rest", rest_batch_size=2000, bulk_page_size=50000) == 1
    assert extract.estimate_api_calls(4001, "rest", rest_batch_size=2000, bulk_page_size=50000) == 3
    assert extract.estimate_api_calls(1_000_000, "bulk2", rest_batch_size=2000, bulk_page_size=50000) == 26
