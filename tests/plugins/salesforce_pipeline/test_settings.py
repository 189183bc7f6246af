"""Settings validation: every mistake is named before anything is extracted."""

from __future__ import annotations

import json

import pytest

from salesforce_pipeline.settings import PipelineSettings, SettingsError, load_settings


def test_defaults():
    settings = PipelineSettings.from_mapping({})
    assert settings.salesforce_conn_id == "salesforce_default"
    assert settings.postgres_conn_id == "postgres_warehouse"
    assert settings.lookback_minutes == 10


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"lookback": 5}, "Unknown setting"),
        ({"lookback_minutes": -1}, "non-negative integer"),
        ({"rest_batch_size": 5000}, "between 200 and 2000"),
        ({"api_budget_share": 2}, "api_budget_share"),
        ({"extra_fields": {"Lead": ["Name"]}}, "names object 'Lead'"),
        ({"extra_fields": {"Account": "Name"}}, "must be a list"),
        ({"extra_fields": {"Account": ["Id FROM User--"]}}, "not a SOQL field name"),
        ({"extra_fields": {"Contact": ["Name,(SELECT"]}}, "not a SOQL field name"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason(raw, message):
    with pytest.raises(SettingsError, match=message):
        PipelineSettings.from_mapping(raw)


def test_settings_come_from_the_airflow_variable(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_VAR_SALESFORCE_TO_POSTGRES",
        json.dumps({"lookback_minutes": 30, "extra_fields": {"Account": ["Tier__c", "Tier__c"]}}),
    )
    settings = load_settings()
    assert settings.lookback_minutes == 30
    assert settings.extra_fields == {"Account": ("Tier__c",)}


def test_a_variable_that_is_not_json_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SALESFORCE_TO_POSTGRES", "{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_settings()
