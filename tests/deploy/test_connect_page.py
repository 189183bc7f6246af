"""The Connect Salesforce page in a real, running Airflow: its guards, route by route.

Every route needs the permission to edit connections; every form needs its CSRF token and a
same-origin post; the server never logs in at a host a form names unless it is Salesforce's or
the operator allowed it. The walk through the page in a browser is tests/deploy/test_connect_browser.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from salesforce_emulator.server import Emulator
from tests.deploy.airflow_server import loader_database, running_airflow
from tools.local_airflow.server import AirflowServer

pytestmark = pytest.mark.airflow_server

NOW = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
ROUTES = [
    ("GET", "/salesforce/"),
    ("GET", "/salesforce/connect"),
    ("GET", "/salesforce/connect?auth_type=client_credentials"),
    ("POST", "/salesforce/connect"),
    ("GET", "/salesforce/orgs/acme"),
    ("GET", "/salesforce/orgs/acme/edit"),
    ("POST", "/salesforce/orgs/acme/edit"),
    ("POST", "/salesforce/orgs/acme/enabled"),
]


def connect_environment(home, emulator: Emulator) -> dict[str, str]:
    """A viewer beside the admin, and the emulator as the one non-Salesforce host allowed."""
    passwords = home / "connect-users.json"
    passwords.write_text(json.dumps({"admin": "admin", "viewer": "viewer"}))
    return {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "SALESFORCE_CONNECT_ALLOWED_HOSTS": f"127.0.0.1:{emulator.port}",
        "SALESFORCE_CONNECT_ALLOWED_HOSTS_CA_BUNDLE": str(emulator.ca_path),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    }


@pytest.fixture(scope="module")
def emulator(sf_emulator_ca) -> Iterator[Emulator]:
    emu = Emulator(ca=sf_emulator_ca, accounts=10, contacts=30, seed=93, now=NOW).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_admin_url, emulator) -> Iterator[AirflowServer]:
    home = tmp_path_factory.mktemp("airflow-connect-home")
    with loader_database(pg_admin_url) as warehouse_url:
        connections = {"postgres_warehouse": warehouse_url}
        with running_airflow(home, pg_admin_url, connections, connect_environment(home, emulator)) as server:
            yield server


def token(airflow: AirflowServer, user: str) -> str:
    response = requests.post(
        f"{airflow.base_url}/auth/token", json={"username": user, "password": user}, timeout=10
    )
    response.raise_for_status()
    return response.json()["access_token"]


def call(
    airflow: AirflowServer, method: str, path: str, bearer: str | None = None, **kwargs
) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return requests.request(
        method, f"{airflow.base_url}{path}", headers=headers, timeout=30, allow_redirects=False, **kwargs
    )


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_every_route_needs_the_permission_to_edit_connections(airflow):
    viewer = token(airflow, "viewer")
    for method, path in ROUTES:
        assert call(airflow, method, path).status_code == 401, f"anonymous {method} {path}"
        assert call(airflow, method, path, viewer).status_code == 403, f"viewer {method} {path}"
    admin = token(airflow, "admin")
    page = call(airflow, "GET", "/salesforce/", admin)
    assert page.status_code == 200
    assert "Connect Salesforce" in page.text
    for hidden in ("/salesforce/docs", "/salesforce/openapi.json", "/salesforce/redoc"):
        assert call(airflow, "GET", hidden, admin).status_code in (401, 403, 404), hidden


def test_a_form_without_its_token_or_from_another_site_is_refused_and_saves_nothing(airflow, emulator):
    admin = token(airflow, "admin")
    form = {
        "auth_type": "client_credentials",
        "org_key": "forged",
        "domain": emulator.base_url,
        "consumer_key": emulator.credentials.consumer_key,
        "consumer_secret": emulator.credentials.consumer_secret,
    }
    assert call(airflow, "POST", "/salesforce/connect", admin, data=form).status_code == 403
    csrf = csrf_of(call(airflow, "GET", "/salesforce/connect?auth_type=client_credentials", admin).text)
    other_site = {"Origin": "http://127.0.0.1:9999"}
    response = requests.post(
        f"{airflow.base_url}/salesforce/connect",
        headers={"Authorization": f"Bearer {admin}", **other_site},
        data={**form, "csrf_token": csrf},
        timeout=30,
    )
    assert response.status_code == 403
    assert (
        call(airflow, "POST", "/salesforce/connect", admin, data={**form, "csrf_token": "forged"}).status_code
        == 403
    )
    assert airflow.request("GET", "/api/v2/connections/salesforce_forged").status_code == 404
    assert emulator.org.logins == {} or not any(emulator.org.logins.values()), "no login was attempted"


@pytest.mark.parametrize(
    "domain",
    [
        "https://169.254.169.254",
        "https://127.0.0.1:5432",
        "https://internal.example.com",
        "http://acme.my.salesforce.com",
    ],
)
def test_the_server_never_logs_in_at_a_host_the_form_names(airflow, emulator, domain):
    admin = token(airflow, "admin")
    csrf = csrf_of(call(airflow, "GET", "/salesforce/connect?auth_type=client_credentials", admin).text)
    form = {
        "csrf_token": csrf,
        "auth_type": "client_credentials",
        "org_key": "ssrf",
        "domain": domain,
        "consumer_key": "k",
        "consumer_secret": "s3cret-value",
    }
    response = call(airflow, "POST", "/salesforce/connect", admin, data=form)
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    assert "s3cret-value" not in response.text
    assert 'id="problem-domain"' in response.text
    assert airflow.request("GET", "/api/v2/connections/salesforce_ssrf").status_code == 404


def test_connect_refuses_a_wrong_secret_then_saves_the_right_one_and_starts_the_first_load(airflow, emulator):
    import time

    admin = token(airflow, "admin")
    creds = emulator.credentials
    csrf = csrf_of(call(airflow, "GET", "/salesforce/connect?auth_type=client_credentials", admin).text)
    form = {
        "csrf_token": csrf,
        "auth_type": "client_credentials",
        "org_key": "acme",
        "domain": emulator.base_url,
        "consumer_key": creds.consumer_key,
        "consumer_secret": "not-the-secret",
    }
    refused = call(airflow, "POST", "/salesforce/connect", admin, data=form)
    assert refused.status_code == 400
    assert 'id="problem-consumer_secret"' in refused.text
    assert "not-the-secret" not in refused.text
    assert f'value="{creds.consumer_key}"' in refused.text, "what was typed is kept, except the secret"
    assert airflow.request("GET", "/api/v2/connections/salesforce_acme").status_code == 404
    assert airflow.request("GET", "/api/v2/variables/salesforce_to_postgres").status_code == 404

    connected = call(
        airflow, "POST", "/salesforce/connect", admin, data={**form, "consumer_secret": creds.consumer_secret}
    )
    assert connected.status_code == 200, connected.text[-2000:]
    assert emulator.org.org_id in connected.text
    assert creds.consumer_secret not in connected.text
    saved = airflow.api("GET", "/api/v2/connections/salesforce_acme")
    assert json.loads(saved["extra"])["ca_bundle"] == str(emulator.ca_path)
    registry = json.loads(airflow.api("GET", "/api/v2/variables/salesforce_to_postgres")["value"])
    assert registry["orgs"]["acme"] == {"salesforce_conn_id": "salesforce_acme"}
    events = airflow.api("GET", "/api/v2/eventLogs", params={"event": "salesforce_connect.connect"})[
        "event_logs"
    ]
    assert [(e["owner"], json.loads(e["extra"])["org"]) for e in events] == [("admin", "acme")]
    assert creds.consumer_secret not in json.dumps(events)

    deadline = time.monotonic() + 240
    runs: list[dict] = []
    while time.monotonic() < deadline:
        response = airflow.request("GET", "/api/v2/dags/salesforce_org_acme/dagRuns")
        runs = response.json()["dag_runs"] if response.ok else []
        if runs and runs[0]["state"] in ("success", "failed"):
            break
        time.sleep(2)
    assert [r["state"] for r in runs] == ["success"], failed_task_logs(airflow, "salesforce_org_acme", runs)
    orgs = call(airflow, "GET", "/salesforce/", admin).text
    assert emulator.org.org_id in orgs
    assert "fresh" in orgs or "stale" in orgs


def failed_task_logs(airflow: AirflowServer, dag: str, runs: list[dict]) -> str:
    """The end of every failed task's log, for a failure message that says why."""
    found = []
    for run in runs:
        for ti in airflow.task_instances(dag, run["dag_run_id"]):
            if ti["state"] == "failed":
                log = airflow.task_log(dag, run["dag_run_id"], ti["task_id"], ti["try_number"])
                found.append(f"--- {ti['task_id']} ---\n{log[-3000:]}")
    return "\n".join(found) or f"runs: {runs}"
