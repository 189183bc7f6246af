"""The org registry: every entry validated with messages naming the org and the field; one org's
mistake never stops another; no `orgs` key means the single org of earlier releases."""

from __future__ import annotations

import json

import pytest

from salesforce_pipeline import registry
from salesforce_pipeline.registry import org_settings, registered_orgs, registry_problems
from salesforce_pipeline.settings import SettingsError


def test_without_orgs_the_single_org_runs_as_before():
    settings = org_settings({"lookback_minutes": 30}, "default")
    assert (settings.org, settings.schema, settings.salesforce_conn_id) == (
        "default",
        "salesforce",
        "salesforce_default",
    )
    assert settings.lookback_minutes == 30
    [org] = registered_orgs({})
    assert (org.key, org.dag_id, org.schema, org.enabled) == (
        "default",
        "salesforce_to_postgres",
        "salesforce",
        True,
    )
    assert [o.dag_id for o in registered_orgs(None)] == ["salesforce_to_postgres"], "an unreadable Variable"


def test_an_org_inherits_the_top_level_and_overrides_it_for_itself_only():
    raw = {
        "lookback_minutes": 15,
        "api_budget_share": 0.4,
        "orgs": {
            "acme": {
                "salesforce_conn_id": "sf_acme",
                "lookback_minutes": 60,
                "extra_fields": {"Account": ["Tier__c"]},
            },
            "globex": {"schema": "globex_raw", "enabled": False, "max_active_loads": 1},
        },
    }
    acme, globex = org_settings(raw, "acme"), org_settings(raw, "globex")
    assert (acme.schema, acme.salesforce_conn_id, acme.lookback_minutes, acme.api_budget_share) == (
        "salesforce_acme",
        "sf_acme",
        60,
        0.4,
    )
    assert acme.extra_fields == {"Account": ("Tier__c",)}
    assert (globex.schema, globex.salesforce_conn_id, globex.lookback_minutes, globex.enabled) == (
        "globex_raw",
        "salesforce_globex",
        15,
        False,
    )
    orgs = {o.key: o for o in registered_orgs(raw)}
    assert orgs["acme"].dag_id == "salesforce_org_acme"
    assert orgs["acme"].enabled
    assert not orgs["globex"].enabled
    assert orgs["globex"].max_active_loads == 1
    assert orgs["globex"].schema == "globex_raw"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"lookback_minutes": -1}, "orgs.acme.lookback_minutes must be between 0 and 10,080"),
        (
            {"lookbak_minutes": 5},
            "unknown setting orgs.acme.'lookbak_minutes'; did you mean 'lookback_minutes'?",
        ),
        ({"schema": "Acme-Prod"}, "orgs.acme.schema must be a lower-case Postgres name"),
        ({"schema": "public"}, "orgs.acme.schema 'public' is reserved"),
        ({"schema": "pg_acme"}, "orgs.acme.schema 'pg_acme' is reserved"),
        ({"schema": "salesforce_pipeline"}, "is reserved"),
        ({"enabled": "yes"}, "orgs.acme.enabled must be true or false"),
        ({"salesforce_conn_id": "bad id\n"}, "orgs.acme.salesforce_conn_id must be an Airflow connection id"),
        ({"extra_fields": {"Account": ["Id FROM User--"]}}, "orgs.acme.extra_fields.Account has"),
        ({"sweep": "hourly"}, "orgs.acme.sweep must be one of"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_org_and_the_field(entry, expected):
    with pytest.raises(SettingsError) as raised:
        org_settings({"orgs": {"acme": entry}}, "acme")
    message = str(raised.value)
    assert "for org 'acme'" in message
    assert "nothing was extracted" in message
    assert expected in message


def test_another_orgs_mistake_does_not_stop_this_org():
    raw = {"orgs": {"acme": {}, "globex": {"lookback_minutes": "ten"}, "Bad Key": {}}}
    assert org_settings(raw, "acme").schema == "salesforce_acme"
    problems = registry_problems(raw)
    assert set(problems) == {"globex", "Bad Key"}
    assert "orgs.globex.lookback_minutes" in problems["globex"]
    assert "org key 'Bad Key' must be 1 to 40 lower-case letters" in problems["Bad Key"]
    # The bad entry still gets its DAG (its runs say what is wrong); the bad key cannot name one.
    assert [o.key for o in registered_orgs(raw)] == ["acme", "globex"]


def test_two_entries_sharing_a_schema_or_a_connection_are_both_refused():
    raw = {
        "orgs": {
            "acme": {"schema": "shared"},
            "globex": {"schema": "shared"},
            "initech": {"salesforce_conn_id": "salesforce_umbrella"},
            "umbrella": {},
        }
    }
    for org, other, what in (("acme", "globex", "schema 'shared'"), ("umbrella", "initech", "connection")):
        with pytest.raises(SettingsError, match=f"both (load into|use) {what}") as raised:
            org_settings(raw, org)
        assert f"orgs.{other}" in str(raised.value)


def test_a_removed_org_says_its_data_is_kept_and_how_to_bring_it_back():
    with pytest.raises(SettingsError, match=r"org 'gone' is not in the registry.*Its tables are kept"):
        org_settings({"orgs": {"acme": {}}}, "gone")
    with pytest.raises(SettingsError, match="orgs must map each org key"):
        org_settings({"orgs": ["acme"]}, "acme")
    with pytest.raises(SettingsError, match="org 'default' is not in the registry"):
        org_settings({"orgs": {"acme": {}}}, "default")


def test_the_top_level_is_validated_for_every_org_and_orgs_only_keys_stay_in_entries():
    with pytest.raises(SettingsError, match="unknown setting 'schema'"):
        org_settings({"schema": "x", "orgs": {"acme": {}}}, "acme")
    with pytest.raises(SettingsError, match="chunk_size must be between"):
        org_settings({"chunk_size": 0, "orgs": {"acme": {}}}, "acme")


def test_the_check_command_lists_every_org_and_fails_on_any_problem(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"orgs": {"acme": {}, "globex": {"enabled": False}}}))
    assert registry.main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "acme" in out
    assert "salesforce_org_acme" in out
    assert "disabled" in out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"orgs": {"acme": {"bulk_threshold": -5}}}))
    assert registry.main([str(bad)]) == 1
    assert "orgs.acme.bulk_threshold" in capsys.readouterr().err


def test_the_single_org_moved_into_the_registry_as_default_keeps_its_dag_and_schema():
    raw = {
        "orgs": {"default": {"salesforce_conn_id": "salesforce_default", "schema": "salesforce"}, "acme": {}}
    }
    orgs = {o.key: o for o in registered_orgs(raw)}
    assert orgs["default"].dag_id == "salesforce_to_postgres"
    assert orgs["default"].schema == "salesforce"
    settings = org_settings(raw, "default")
    assert (settings.org, settings.schema, settings.salesforce_conn_id) == (
        "default",
        "salesforce",
        "salesforce_default",
    )
