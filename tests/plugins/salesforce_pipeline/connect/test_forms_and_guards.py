"""The Connect page's pure parts: each type's fields, what a form is read into, where the server
may log in, the CSRF token, and the Test-button body fix."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from salesforce_pipeline.connect import forms, guards
from salesforce_pipeline.connect.app import lag
from salesforce_pipeline.connect.test_button import fixed_body


def test_each_type_shows_only_its_own_fields():
    assert [f.name for f in forms.fields_of("client_credentials")] == [
        "domain",
        "consumer_key",
        "consumer_secret",
    ]
    assert [f.name for f in forms.fields_of("security_token")] == [
        "login",
        "password",
        "security_token",
        "domain",
    ]
    secrets = {f.name for t in forms.AUTH_TYPES for f in forms.fields_of(t) if f.secret}
    assert secrets == {"consumer_secret", "password", "security_token"}


def test_a_form_is_checked_field_by_field_and_keeps_everything_but_the_secrets():
    sub = forms.read_submission(
        {
            "auth_type": "client_credentials",
            "org_key": "Bad Key",
            "domain": "",
            "consumer_key": "k",
            "consumer_secret": "s",
        },
        new_org=True,
    )
    assert set(sub.problems) == {"org_key", "domain"}
    assert "Domain is required" in sub.problems["domain"]
    assert sub.kept_for_the_form() == {"domain": "", "consumer_key": "k", "org_key": "Bad Key"}
    assert forms.read_submission({"auth_type": "password_please"}, new_org=True).problems == {
        "auth_type": "Choose an authentication type."
    }


def test_a_blank_secret_keeps_the_saved_one_only_when_asked():
    form = {"auth_type": "security_token", "login": "u@x.example", "password": "", "security_token": ""}
    assert set(forms.read_submission(form, new_org=False).problems) == {"password", "security_token"}
    kept = forms.read_submission(form, new_org=False, keep={"password": "pw", "security_token": "tok"})
    assert kept.problems == {}
    assert kept.values["password"] == "pw"


def test_the_connection_saved_is_the_pipelines_type_with_the_chosen_mode():
    sub = forms.read_submission(
        {
            "auth_type": "client_credentials",
            "org_key": "acme",
            "domain": "acme.my",
            "consumer_key": "k",
            "consumer_secret": "s",
        },
        new_org=True,
    )
    fields = forms.connection_fields(sub)
    assert (fields["conn_id"], fields["conn_type"], fields["login"]) == (
        "salesforce_acme",
        "customerscore_salesforce",
        None,
    )
    assert json.loads(fields["extra"]) == {
        "auth_type": "client_credentials",
        "domain": "acme.my",
        "consumer_key": "k",
        "consumer_secret": "s",
    }
    assert forms.changed_fields({"domain": "a", "login": ""}, {"domain": "b", "login": ""}) == ["domain"]


@pytest.mark.parametrize(
    "domain", ["acme.my", "login", "test", "https://acme--uat.sandbox.my.salesforce.com"]
)
def test_salesforce_domains_are_allowed(domain):
    base, extra_host = guards.check_login_target(domain)
    assert base.startswith("https://")
    assert extra_host is False


@pytest.mark.parametrize(
    "domain",
    [
        "https://169.254.169.254",
        "https://localhost:8443",
        "https://evil.example.com",
        "https://salesforce.com.evil.io",
    ],
)
def test_any_other_host_is_refused_unless_an_operator_allows_it(domain, monkeypatch):
    monkeypatch.delenv(guards.ALLOWED_HOSTS_ENV, raising=False)
    with pytest.raises(guards.EgressRefused, match="only connects to Salesforce"):
        guards.check_login_target(domain)


def test_an_allowed_host_is_matched_with_its_port(monkeypatch):
    monkeypatch.setenv(guards.ALLOWED_HOSTS_ENV, "127.0.0.1:8443")
    assert guards.check_login_target("https://127.0.0.1:8443") == ("https://127.0.0.1:8443", True)
    with pytest.raises(guards.EgressRefused):
        guards.check_login_target("https://127.0.0.1:5432")
    with pytest.raises(guards.EgressRefused):
        guards.check_instance("https://10.0.0.5")
    guards.check_instance("https://acme.my.salesforce.com")


def test_the_csrf_token_is_bound_to_the_user_and_the_secret():
    token = guards.csrf_token("server-secret", "alice")
    assert guards.csrf_ok("server-secret", "alice", token)
    assert not guards.csrf_ok("server-secret", "mallory", token)
    assert not guards.csrf_ok("another-secret", "alice", token)
    assert not guards.csrf_ok("server-secret", "alice", None)
    assert not guards.csrf_ok("server-secret", "alice", token[:-2] + "xx")


def test_a_post_from_another_origin_is_told_apart():
    assert guards.same_origin("http://airflow:8080", None, "airflow:8080")
    assert not guards.same_origin("http://airflow:9999", None, "airflow:8080")
    assert not guards.same_origin(None, "https://evil.example/form", "airflow:8080")
    assert guards.same_origin(None, None, "airflow:8080"), "a script: the CSRF token still binds it"


def test_the_test_button_body_loses_only_a_zero_port():
    assert json.loads(fixed_body(b'{"connection_id": "x", "port": 0, "host": null}')) == {
        "connection_id": "x",
        "host": None,
    }
    assert fixed_body(b'{"port": 5432}') == b'{"port": 5432}'
    assert fixed_body(b"not json") == b"not json"


def test_a_lag_reads_as_people_say_it():
    assert lag(None) == "—"
    assert lag(timedelta(minutes=12, seconds=30)) == "12 min"
    assert lag(timedelta(hours=17, minutes=41)) == "17 h 41 min"
    assert lag(timedelta(days=2, hours=3, minutes=5)) == "2 d 3 h"


def test_every_string_shown_is_escaped_salesforces_included():
    from datetime import UTC, datetime

    from salesforce_pipeline.connect.app import _templates

    hostile = '<script>alert("x")</script>'
    load = {
        "sobject": "Contact",
        "status": "broken",
        "last_success_at": datetime(2026, 12, 1, tzinfo=UTC),
        "freshness_lag": None,
        "live_rows": 1,
        "api_calls_last_run": 3,
        "last_error": f"Salesforce said: {hostile}",
    }
    row = {
        "key": "acme",
        "editable": True,
        "enabled": True,
        "conn_id": "salesforce_acme",
        "auth_title": hostile,
        "organization_id": hostile,
        "dag_id": "salesforce_org_acme",
        "loads": [load],
    }
    html = (
        _templates()
        .get_template("orgs.html")
        .render(
            user=hostile,
            csrf="t",
            prefix="/salesforce",
            auth_types=forms.AUTH_TYPES,
            orgs={"rows": [row], "problem": hostile},
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
