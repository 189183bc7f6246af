"""Bad credentials and configuration through the real DAG: each wrong or missing field of each
authentication mode fails fast, without retries, names what to fix, and leaves nothing behind."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime

import pytest

from tests.support.pipeline import salesforce_connection_json

DAY = datetime(2026, 11, 30, tzinfo=UTC)


def connection(sf_emulator, mode, *, drop=(), **changes):
    conn = json.loads(salesforce_connection_json(sf_emulator, mode, extra={"retry_base_seconds": 0.05}))
    for key, value in changes.items():
        if key in ("login", "password"):
            conn[key] = value
        else:
            conn["extra"][key] = value
    for key in drop:
        conn.pop(key, None)
        conn["extra"].pop(key, None)
    return json.dumps(conn)


CASES = [
    # (id, mode, changes, fields to drop, text the error must contain)
    ("wrong password", "security_token", {"password": "not-the-password"}, (), "INVALID_LOGIN"),
    ("wrong security token", "security_token", {"security_token": "WRONGTOKEN"}, (), "Security Token"),
    ("missing username", "security_token", {}, ("login",), "Username (login)"),
    ("missing password", "security_token", {"password": ""}, (), "Password (password)"),
    ("missing security token", "security_token", {}, ("security_token",), "Security Token (security_token)"),
    ("wrong consumer key", "client_credentials", {"consumer_key": "3MVG9wrong"}, (), "Consumer Key"),
    (
        "wrong consumer secret",
        "client_credentials",
        {"consumer_secret": "wrong-secret"},
        (),
        "Consumer Secret",
    ),
    (
        "missing consumer secret",
        "client_credentials",
        {"consumer_secret": ""},
        (),
        "Consumer Secret (consumer_secret)",
    ),
    ("client credentials at login", "client_credentials", {"domain": "login"}, (), "My Domain"),
    ("http domain", "client_credentials", {"domain": "http://127.0.0.1:1"}, (), "http://"),
    (
        "unknown auth type",
        "client_credentials",
        {"auth_type": "password"},
        (),
        "Authentication Type (auth_type)",
    ),
]


@pytest.mark.parametrize(
    ("mode", "changes", "drop", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_bad_field_fails_fast_naming_it_and_leaves_nothing(
    pipeline, sf_emulator, monkeypatch, capfd, mode, changes, drop, expected
):
    bad = connection(sf_emulator, mode, drop=drop, **changes)
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", bad)
    dag_run = pipeline.run(DAY)
    output = capfd.readouterr().out
    print(output)
    for task_id in ("sync_account", "sync_contact"):
        ti = dag_run.get_task_instance(task_id)
        assert ti.state == "failed", (task_id, ti.state)
        assert ti.try_number == 1, f"{task_id}: a configuration error must not be retried"
    assert expected in output
    assert (
        sf_emulator.org.counters.get("login_soap", 0) + sf_emulator.org.counters.get("login_oauth", 0) <= 2
    ), "at most one login attempt per task"
    assert pipeline.rows("account") == {}
    assert pipeline.rows("contact") == {}
    for key in ("password", "security_token", "consumer_secret"):
        if changes.get(key):
            assert changes[key] not in output, f"the wrong {key} itself is never printed"


@pytest.mark.parametrize("name", ["Id FROM User--", "Name,(SELECT Id FROM Contacts)", "Name; DROP TABLE"])
def test_names_that_are_not_soql_identifiers_are_refused_before_any_call(pipeline, sf_emulator, capfd, name):
    pipeline.configure(extra_fields={"Account": [name]})
    dag_run = pipeline.run(DAY)
    output = capfd.readouterr().out
    print(output)
    # The settings are checked by the first task, so the run stops there.
    assert dag_run.get_task_instance("prepare_warehouse").state == "failed"
    assert dag_run.get_task_instance("prepare_warehouse").try_number == 1
    assert dag_run.get_task_instance("sync_account").state == "upstream_failed"
    assert "not a SOQL field name" in output
    calls = [urllib.parse.unquote_plus(r["path"]) for r in sf_emulator.org.requests]
    assert calls == [], "refused before any call to Salesforce"
