"""tools/local_airflow/cli.py and onboarding.py: options, status, and the demo orgs' connections."""

from __future__ import annotations

import json

import pytest

from tools.local_airflow import cli, onboarding
from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import Home

HOSTED = {
    "default": {"credentials": {"consumer_key": "ck-acme", "consumer_secret": "cs-acme"}},
    "globex": {"credentials": {"username": "u@globex", "password": "pw", "security_token": "tok"}},
    "initech": {"credentials": {"consumer_key": "ck-ini", "consumer_secret": "cs-ini"}},
}


def test_make_airflow_options_reach_start():
    command, options = cli.parse_options(
        ["start", "--executor", "celery", "--workers", "3", "--port", "8090"]
    )
    assert command == "start"
    assert (options.celery_workers, options.port, options.accounts) == (3, 8090, 2000)
    assert cli.parse_options(["start", "--workers", "3"])[1].celery_workers == 0, "local: no workers"


@pytest.mark.parametrize("workers", [0, 9])
def test_celery_needs_between_one_and_eight_workers(tmp_path, workers):
    with pytest.raises(LocalAirflowError, match="WORKERS must be between 1 and 8"):
        cli.start(cli.Options(executor="celery", workers=workers), Home(tmp_path))


def test_status_and_stop_of_an_instance_that_never_ran(tmp_path, capsys):
    assert cli.status(Home(tmp_path)) == 3
    assert cli.stop_instance(Home(tmp_path)) == 0
    assert capsys.readouterr().out.count("local Airflow is not running") == 2


def test_each_demo_org_gets_a_connection_of_its_type_and_the_emulator_hosts_a_spare():
    connections = onboarding.salesforce_connections(HOSTED, "https://127.0.0.1:8443", "/ca.pem")
    assert set(connections) == {"salesforce_acme", "salesforce_globex", "salesforce_initech"}
    acme = json.loads(connections["salesforce_acme"]["extra"])
    assert acme == {
        "auth_type": "client_credentials",
        "domain": "https://127.0.0.1:8443",
        "ca_bundle": "/ca.pem",
        "consumer_key": "ck-acme",
        "consumer_secret": "cs-acme",
    }
    globex = connections["salesforce_globex"]
    assert (globex["login"], globex["password"]) == ("u@globex", "pw")
    assert json.loads(globex["extra"])["security_token"] == "tok"
    assert all(c["conn_type"] == "customerscore_salesforce" for c in connections.values())
    assert onboarding.emulator_orgs() == ["globex", "initech", "spare"]
    assert onboarding.DAG_IDS == ["salesforce_org_acme", "salesforce_org_globex", "salesforce_org_initech"]


def test_the_warehouse_connection_names_the_demo_database():
    conn = onboarding.warehouse_connection("postgresql://postgres:p%40ss@127.0.0.1:5433/salesforce_demo")
    assert conn == {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5433,
        "login": "postgres",
        "password": "p@ss",
        "schema": "salesforce_demo",
    }
