"""Settings validation: every mistake is named before anything is extracted."""

from __future__ import annotations

import json

import pytest

from salesforce_pipeline.settings import (
    PipelineSettings,
    SettingsError,
    check_connections,
    load_settings,
    selected_objects,
)


def test_defaults():
    settings = PipelineSettings.from_mapping({})
    assert settings.salesforce_conn_id == "salesforce_default"
    assert settings.postgres_conn_id == "postgres_warehouse"
    assert settings.lookback_minutes == 10


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"lookback": 5}, "unknown setting"),
        ({"lookback_minutes": -1}, "lookback_minutes must be between 0 and 10,080"),
        ({"lookback_minutes": 10**10}, "lookback_minutes must be between 0 and 10,080"),
        ({"lookback_minutes": True}, "lookback_minutes must be a whole number"),
        ({"lookback_minutes": 1.5}, "lookback_minutes must be a whole number"),
        ({"chunk_size": 10**9}, "chunk_size must be between 1 and 100,000"),
        ({"chunk_size": 0}, "chunk_size must be between 1 and 100,000"),
        ({"bulk_poll_seconds": -1}, "bulk_poll_seconds must be between 0 and 300"),
        ({"bulk_poll_seconds": True}, "bulk_poll_seconds must be a number"),
        ({"bulk_poll_seconds": "2"}, "bulk_poll_seconds must be a number"),
        ({"api_budget_share": True}, "api_budget_share must be a number"),
        ({"api_budget_share": float("nan")}, "api_budget_share must be a number"),
        ({"bulk_max_wait_seconds": 10**6}, "bulk_max_wait_seconds must be between 1 and 86400"),
        ({"lock_timeout_seconds": 0}, "lock_timeout_seconds must be between 0.1 and 600"),
        ({"statement_timeout_seconds": 10**6}, "statement_timeout_seconds must be between"),
        ({"object_lock_wait_seconds": 0}, "object_lock_wait_seconds must be between"),
        ({"sweep": "hourly"}, "sweep must be one of"),
        ({"postgres_conn_id": ""}, "postgres_conn_id must be an Airflow connection id"),
        ({"salesforce_conn_id": "a b"}, "salesforce_conn_id must be an Airflow connection id"),
        ({"salesforce_conn_id": 7}, "salesforce_conn_id must be an Airflow connection id"),
        ({"rest_batch_size": 5000}, "between 200 and 2,000"),
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


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("lookback_minutes", 0, 10_080),
        ("chunk_size", 1, 100_000),
        ("rest_batch_size", 200, 2000),
        ("bulk_page_size", 1, 1_000_000),
        ("bulk_poll_seconds", 0, 300),
        ("lock_timeout_seconds", 0.1, 600),
    ],
)
def test_each_bound_is_accepted_and_just_past_it_refused(name, low, high):
    assert getattr(PipelineSettings.from_mapping({name: low}), name) == low
    assert getattr(PipelineSettings.from_mapping({name: high}), name) == high
    step = 1 if isinstance(low, int) else 0.01
    for outside in (low - step, high + step):
        with pytest.raises(SettingsError, match=name):
            PipelineSettings.from_mapping({name: outside})


def test_one_message_names_every_problem():
    raw = {
        "bulk_poll_seconds": -1,
        "lookback_minutes": True,
        "chunk_size": 10**9,
        "postgres_conn_id": "bad id",
        "sweep": "hourly",
        "lookback": 5,
        "extra_fields": {"Lead": ["Name"]},
    }
    with pytest.raises(SettingsError) as refused:
        PipelineSettings.from_mapping(raw)
    message = str(refused.value)
    assert "7 problem(s)" in message
    for name in (
        "bulk_poll_seconds",
        "lookback_minutes",
        "chunk_size",
        "postgres_conn_id",
        "sweep",
        "'lookback'",
        "Lead",
    ):
        assert name in message, name


@pytest.mark.parametrize("requested", [[], (), "Account", ["Lead"], ["Account", "Opportunity"]])
def test_the_objects_param_must_name_known_objects(requested):
    with pytest.raises(SettingsError, match="objects"):
        selected_objects(requested)


def test_the_objects_param_defaults_to_all_in_their_order():
    assert selected_objects(None) == ["Account", "Contact"]
    assert selected_objects(["Contact", "Account"]) == ["Account", "Contact"]


def test_connections_are_checked_before_anything_runs(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SF_PRESENT", "customerscore_salesforce://")
    monkeypatch.delenv("AIRFLOW_CONN_PG_ABSENT", raising=False)
    settings = PipelineSettings.from_mapping(
        {"salesforce_conn_id": "sf_present", "postgres_conn_id": "pg_absent"}
    )
    with pytest.raises(SettingsError) as refused:
        check_connections(settings)
    assert "postgres_conn_id 'pg_absent'" in str(refused.value)
    assert "sf_present" not in str(refused.value)
    assert "AIRFLOW_CONN_" in str(refused.value)
