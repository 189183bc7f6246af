"""Settings validation: every mistake is named before anything is extracted."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from salesforce_pipeline import settings as settings_module
from salesforce_pipeline.registry import LEGACY_ORG, org_settings
from salesforce_pipeline.settings import (
    ORG_ONLY,
    PipelineSettings,
    SettingsError,
    check_connections,
    raw_settings,
    selected_objects,
)

# Every numeric setting with its range, written out here rather than read from settings.RULES,
# so a range changed by mistake there fails a test.
RANGES = {
    "lookback_minutes": (0, 10_080),
    "chunk_size": (1, 100_000),
    "rest_batch_size": (200, 2000),
    "bulk_threshold": (0, 100_000_000),
    "bulk_page_size": (1, 1_000_000),
    "bulk_poll_seconds": (0.01, 300.0),
    "bulk_max_wait_seconds": (1.0, 86_400.0),
    "api_budget_share": (0.01, 1.0),
    "lock_timeout_seconds": (0.1, 600.0),
    "statement_timeout_seconds": (1.0, 86_400.0),
    "object_lock_wait_seconds": (1.0, 86_400.0),
    "max_active_loads": (1, 16),
    "max_parallel_slices": (1, 8),
    "slice_records": (100, 100_000_000),
    "checkpoint_ttl_hours": (1, 336),
}


def test_defaults():
    settings = PipelineSettings.from_mapping({})
    assert settings.salesforce_conn_id == "salesforce_default"
    assert settings.postgres_conn_id == "postgres_warehouse"
    assert settings.lookback_minutes == 10
    assert settings.lock_timeout_seconds == 10
    assert settings.statement_timeout_seconds == 3600
    assert settings.object_lock_wait_seconds == 3600
    assert settings.bulk_max_wait_seconds == 3600
    assert settings.sweep == "weekly"


def test_every_numeric_setting_has_a_range_with_an_upper_bound():
    numeric = {f.name for f in dataclasses.fields(PipelineSettings) if f.type in ("int", "float")}
    assert set(RANGES) == numeric
    assert set(settings_module.RULES) == numeric


def test_the_documented_example_is_valid_and_names_every_setting():
    example = re.search(r"^    \{$.*?^    \}$", settings_module.__doc__, re.MULTILINE | re.DOTALL)
    documented = json.loads(example.group(0))
    assert set(documented) == {f.name for f in dataclasses.fields(PipelineSettings)} - set(ORG_ONLY)
    settings = PipelineSettings.from_mapping(documented)
    assert settings.extra_fields == {"Account": ("Health_Score__c", "Tier__c"), "Contact": ("Account.Name",)}
    # The example shows the defaults, so a reader can copy it and change only what they need.
    defaults = dataclasses.asdict(PipelineSettings())
    assert {k: v for k, v in documented.items() if k != "extra_fields"} == {
        k: v for k, v in defaults.items() if k != "extra_fields" and k not in ORG_ONLY
    }


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
        ({"bulk_poll_seconds": -1}, "bulk_poll_seconds must be between 0.01 and 300"),
        ({"bulk_poll_seconds": 0}, "bulk_poll_seconds must be between 0.01 and 300"),
        ({"bulk_poll_seconds": None}, "bulk_poll_seconds must be a number"),
        ({"bulk_max_wait_seconds": float("inf")}, "bulk_max_wait_seconds must be between"),
        ({"chunk_size": 10.0}, "chunk_size must be a whole number"),
        ({"chunk_size": "100"}, "chunk_size must be a whole number"),
        ({"bulk_threshold": -1}, "bulk_threshold must be between 0 and 100,000,000"),
        ({"bulk_page_size": 10**7}, "bulk_page_size must be between 1 and 1,000,000"),
        ({"api_budget_share": 0}, "api_budget_share must be between 0.01 and 1"),
        ({"bulk_poll_seconds": True}, "bulk_poll_seconds must be a number"),
        ({"bulk_poll_seconds": "2"}, "bulk_poll_seconds must be a number"),
        ({"api_budget_share": True}, "api_budget_share must be a number"),
        ({"api_budget_share": float("nan")}, "api_budget_share must be a number"),
        ({"bulk_max_wait_seconds": 10**6}, "bulk_max_wait_seconds must be between 1 and 86400"),
        ({"lock_timeout_seconds": 0}, "lock_timeout_seconds must be between 0.1 and 600"),
        ({"statement_timeout_seconds": 10**6}, "statement_timeout_seconds must be between"),
        ({"object_lock_wait_seconds": 0}, "object_lock_wait_seconds must be between"),
        ({"sweep": "hourly"}, "sweep must be one of"),
        ({"sweep": True}, "sweep must be one of"),
        ({"sweep": "Weekly"}, "sweep must be one of"),
        (
            {"salesforce_conn_id": "salesforce_default\n"},
            "salesforce_conn_id must be an Airflow connection id",
        ),
        ({"postgres_conn_id": "x" * 251}, "postgres_conn_id must be an Airflow connection id"),
        ({"postgres_conn_id": "pg;drop"}, "postgres_conn_id must be an Airflow connection id"),
        ({"postgres_conn_id": None}, "postgres_conn_id must be an Airflow connection id"),
        ({"postgres_conn_id": ""}, "postgres_conn_id must be an Airflow connection id"),
        ({"salesforce_conn_id": "a b"}, "salesforce_conn_id must be an Airflow connection id"),
        ({"salesforce_conn_id": 7}, "salesforce_conn_id must be an Airflow connection id"),
        ({"rest_batch_size": 5000}, "between 200 and 2,000"),
        ({"api_budget_share": 2}, "api_budget_share"),
        ({"extra_fields": {"Lead": ["Name"]}}, "names object 'Lead'"),
        ({"extra_fields": {"Account": "Name"}}, "must be a list"),
        ({"extra_fields": {"Account": ["Id FROM User--"]}}, "not a SOQL field name"),
        ({"extra_fields": {"Contact": ["Name,(SELECT"]}}, "not a SOQL field name"),
        ({"extra_fields": ["Name"]}, "extra_fields must map an object name"),
    ],
)
def test_invalid_settings_are_refused_with_the_reason(raw, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        PipelineSettings.from_mapping(raw)


@pytest.mark.parametrize("name", sorted(RANGES))
@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_never_a_number(name, flag):
    # bool is an int in Python: `true` would have been 1 minute of lookback, `false` a 0 s poll.
    with pytest.raises(SettingsError, match=f"{name} must be a (whole )?number between"):
        PipelineSettings.from_mapping({name: flag})


def test_a_whole_number_is_a_valid_float_setting_and_is_kept_as_a_float():
    settings = PipelineSettings.from_mapping({"lock_timeout_seconds": 5, "bulk_poll_seconds": 1})
    assert settings.lock_timeout_seconds == 5.0
    assert isinstance(settings.lock_timeout_seconds, float)
    assert isinstance(settings.bulk_poll_seconds, float)


@pytest.mark.parametrize(
    "conn_id", ["a", "x" * 250, "my-conn.v2", "team/sales:prod", "a_b#c!(d)\\e", "Ünïcode_is_a_word"]
)
def test_every_connection_id_airflow_allows_is_accepted(conn_id):
    settings = PipelineSettings.from_mapping({"salesforce_conn_id": conn_id, "postgres_conn_id": conn_id})
    assert settings.salesforce_conn_id == settings.postgres_conn_id == conn_id


def test_the_values_of_unknown_settings_are_never_shown():
    with pytest.raises(SettingsError) as refused:
        PipelineSettings.from_mapping({"password": "hunter2-do-not-print", "lokback_minutes": 5})
    message = str(refused.value)
    assert "hunter2" not in message
    assert "unknown setting 'password'" in message
    assert "unknown setting 'lokback_minutes'; did you mean 'lookback_minutes'?" in message


def test_a_huge_value_is_refused_with_a_short_message():
    with pytest.raises(SettingsError) as refused:
        PipelineSettings.from_mapping({"chunk_size": 10**5000, "postgres_conn_id": "x" * 10_000})
    message = str(refused.value)
    assert "chunk_size must be between 1 and 100,000" in message
    assert "postgres_conn_id must be an Airflow connection id" in message
    assert len(message) < 1000


def test_settings_come_from_the_airflow_variable(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_VAR_SALESFORCE_TO_POSTGRES",
        json.dumps({"lookback_minutes": 30, "extra_fields": {"Account": ["Tier__c", "Tier__c"]}}),
    )
    settings = org_settings(raw_settings(), LEGACY_ORG)  # what a task does
    assert settings.lookback_minutes == 30
    assert settings.extra_fields == {"Account": ("Tier__c",)}


def test_a_variable_that_is_not_json_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SALESFORCE_TO_POSTGRES", "{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        raw_settings()


@pytest.mark.parametrize(("name", "low", "high"), [(name, *bounds) for name, bounds in RANGES.items()])
def test_each_bound_is_accepted_and_just_past_it_refused(name, low, high):
    assert getattr(PipelineSettings.from_mapping({name: low}), name) == low
    assert getattr(PipelineSettings.from_mapping({name: high}), name) == high
    step = 1 if isinstance(low, int) else 0.001
    for outside in (low - step, high + step):
        with pytest.raises(SettingsError, match=f"{name} must be between") as refused:
            PipelineSettings.from_mapping({name: outside})
        # Each message says how to fix it: the range above, and the default.
        assert f"remove it for the default {getattr(PipelineSettings(), name)!r}" in str(refused.value)


def test_one_message_names_every_problem():
    raw = {
        "bulk_poll_seconds": -1,
        "lookback_minutes": True,
        "chunk_size": 10**9,
        "rest_batch_size": 100,
        "bulk_threshold": "50000",
        "bulk_page_size": 0,
        "bulk_max_wait_seconds": 0,
        "api_budget_share": 1.5,
        "lock_timeout_seconds": 601,
        "statement_timeout_seconds": False,
        "object_lock_wait_seconds": 10**6,
        "salesforce_conn_id": "",
        "postgres_conn_id": "bad id",
        "sweep": "hourly",
        "lookback": 5,
        "extra_fields": {"Lead": ["Name"]},
    }
    with pytest.raises(SettingsError) as refused:
        PipelineSettings.from_mapping(raw)
    message = str(refused.value)
    assert "16 problem(s)" in message
    # One numbered line per problem, each starting with the setting it is about.
    problems = [line.strip().split(". ", 1)[1] for line in message.splitlines()[1:]]
    assert len(problems) == 16, message
    expected = {f"{name} must be" for name in raw} - {"lookback must be", "extra_fields must be"}
    expected |= {"unknown setting 'lookback';", "extra_fields names object 'Lead'"}
    for start in expected:
        assert sum(problem.startswith(start) for problem in problems) == 1, start


@pytest.mark.parametrize(
    "requested",
    [[], (), ("Account",), "Account", {"Account"}, ["Lead"], ["Account", "Opportunity"], [["Account"]], [1]],
)
def test_the_objects_param_must_name_known_objects(requested):
    # `[]` once loaded everything (`params.get("objects") or OBJECTS`).
    with pytest.raises(SettingsError, match=re.escape("param 'objects'")) as refused:
        selected_objects(requested)
    assert "['Account', 'Contact']" in str(refused.value), "the message names the allowed values"


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


def test_connections_that_exist_pass_the_check(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SF_PRESENT", "customerscore_salesforce://")
    monkeypatch.setenv("AIRFLOW_CONN_PG_PRESENT", "postgres://u@localhost/db")
    check_connections(
        PipelineSettings.from_mapping({"salesforce_conn_id": "sf_present", "postgres_conn_id": "pg_present"})
    )


def test_a_connection_from_the_environment_says_it_hides_the_one_saved_in_the_ui(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_SF_PRESENT", "customerscore_salesforce://")
    monkeypatch.setenv("AIRFLOW_CONN_PG_PRESENT", "postgres://u@localhost/db")
    with caplog.at_level("WARNING", logger="salesforce_pipeline.settings"):
        check_connections(
            PipelineSettings.from_mapping(
                {"salesforce_conn_id": "sf_present", "postgres_conn_id": "pg_present"}
            )
        )
    warnings = [r.getMessage() for r in caplog.records if r.name == "salesforce_pipeline.settings"]
    assert any("'sf_present'" in w and "AIRFLOW_CONN_SF_PRESENT" in w and "hides" in w for w in warnings)
    assert any("AIRFLOW_CONN_PG_PRESENT" in w for w in warnings)


def test_every_missing_connection_is_named_in_one_error(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SF_ABSENT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_PG_ABSENT", raising=False)
    settings = PipelineSettings.from_mapping(
        {"salesforce_conn_id": "sf_absent", "postgres_conn_id": "pg_absent"}
    )
    with pytest.raises(SettingsError) as refused:
        check_connections(settings)
    message = str(refused.value)
    assert "salesforce_conn_id 'sf_absent' (e.g. AIRFLOW_CONN_SF_ABSENT)" in message
    assert "postgres_conn_id 'pg_absent' (e.g. AIRFLOW_CONN_PG_ABSENT)" in message
    assert "Admin -> Connections" in message
    assert "airflow connections add" in message
