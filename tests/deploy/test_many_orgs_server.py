"""Many orgs in a real, running Airflow (api-server, scheduler, dag-processor, triggerer): orgs
registered with the README's CLI steps appear as DAGs with no restart, load on their trigger,
and a backfill of one org through the REST API (what the UI's Backfill dialog calls) runs that
org only. The connections and the Variable live in Airflow's database, as the README has them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_emulator.server import Emulator
from tests.deploy.airflow_server import loader_database, running_airflow, wait_for_runs
from tests.support import orgs as orgs_support
from tests.support.pipeline import salesforce_connection_json
from tools.local_airflow.layout import ROOT as REPO_ROOT

pytestmark = pytest.mark.airflow_server

NOW = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 4, tzinfo=UTC)
BACKFILL_DAYS = [datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=n) for n in range(2)]
# Five orgs registered first, in both authentication modes; the sixth is added while Airflow runs.
ORGS = {
    "acme": "client_credentials",
    "globex": "security_token",
    "initech": "client_credentials",
    "hooli": "security_token",
    "soylent": "client_credentials",
}


@pytest.fixture(scope="module")
def emulator(sf_emulator_ca) -> Iterator[Emulator]:
    emu = Emulator(ca=sf_emulator_ca, accounts=10, contacts=30, seed=91, now=NOW).start()
    for key in (*ORGS, "umbrella"):
        emu.add_org(key, accounts=8, contacts=24, now=NOW)
    for org in emu.orgs.values():
        org.set_clock(NOW)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, pg_admin_url, emulator):
    home = tmp_path_factory.mktemp("airflow-orgs-home")
    with loader_database(pg_admin_url) as warehouse_url:
        # Nothing but the settings the test needs: the connections and the registry are added the
        # way the README says, into Airflow's database. A 5 s re-parse keeps the wait short.
        extra = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5"}
        with running_airflow(home, pg_admin_url, connections={}, extra_env=extra) as server:
            server.warehouse_url = warehouse_url
            cli(server, "connections", "add", "postgres_warehouse", "--conn-uri", warehouse_url)
            for key, mode in ORGS.items():
                add_connection(server, emulator, key, mode)
            register(server, tmp_path_factory.mktemp("settings"), {key: {} for key in ORGS})
            for key in ORGS:
                server.wait_for_dag(f"salesforce_org_{key}", 90)
            yield server


def cli(server, *args: str) -> str:
    """`airflow ...` against the running instance, as an operator's shell would run it."""
    done = server.cli(*args)
    assert done.returncode == 0, (
        f"airflow {' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    )
    return done.stdout


def add_connection(server, emulator, key: str, mode: str) -> None:
    org = emulator.org_named(key)
    conn = salesforce_connection_json(emulator, mode, credentials=org.credentials, extra={"timeout": 10})
    cli(server, "connections", "add", f"salesforce_{key}", "--conn-json", conn)


def register(server, folder, entries: dict[str, dict]) -> None:
    """README steps: get the Variable, add the entries under "orgs", check it, set it."""
    current = server.cli("variables", "get", "salesforce_to_postgres")
    settings = json.loads(current.stdout) if current.returncode == 0 else {}
    settings.setdefault("orgs", {}).update(
        {key: {"salesforce_conn_id": f"salesforce_{key}", **entry} for key, entry in entries.items()}
    )
    path = folder / "settings.json"
    path.write_text(json.dumps(settings))
    check = subprocess.run(
        [sys.executable, "-m", "salesforce_pipeline.registry", str(path)],
        env={**server.env, "PYTHONPATH": str(REPO_ROOT / "plugins")},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    cli(server, "variables", "set", "salesforce_to_postgres", path.read_text())


def trigger(server, keys, logical_date: datetime) -> dict[str, dict]:
    """Trigger each org's DAG (the UI's Trigger button), then wait for every run."""
    for key in keys:
        path = f"/api/v2/dags/salesforce_org_{key}/dagRuns"
        server.api("POST", path, json={"logical_date": logical_date.isoformat()})
    return {
        key: wait_for_runs(server, f"salesforce_org_{key}", [logical_date], timeout=240, run_type="manual")[0]
        for key in keys
    }


def org_mismatches(server, emulator, key: str) -> list[str]:
    return orgs_support.org_mismatches(server.warehouse_url, emulator, key)


def test_registered_orgs_load_on_their_trigger_and_a_sixth_org_needs_no_restart(airflow, emulator, tmp_path):
    runs = trigger(airflow, ORGS, TODAY)
    assert {key: run["state"] for key, run in runs.items()} == dict.fromkeys(ORGS, "success")
    for key in ORGS:
        assert org_mismatches(airflow, emulator, key) == [], key
    started = {c.name: c.pid for c in airflow.components}

    # The onboarding steps, with Airflow running: a connection and one registry entry.
    add_connection(airflow, emulator, "umbrella", "client_credentials")
    register(airflow, tmp_path, {"umbrella": {}})
    dag = airflow.wait_for_dag("salesforce_org_umbrella", 90)
    assert dag["is_paused"] is False, "a new org starts unpaused: adding it is the whole onboarding"
    assert trigger(airflow, ["umbrella"], TODAY)["umbrella"]["state"] == "success"
    assert org_mismatches(airflow, emulator, "umbrella") == []
    assert {c.name: c.pid for c in airflow.components} == started, "no component was restarted"


def test_a_backfill_of_one_org_runs_that_org_only(airflow, emulator):
    before = {key: airflow.dag_runs(f"salesforce_org_{key}") for key in ORGS}
    airflow.api(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": "salesforce_org_globex",
            "from_date": BACKFILL_DAYS[0].isoformat(),
            "to_date": BACKFILL_DAYS[-1].isoformat(),
            "reprocess_behavior": "none",
            "max_active_runs": 1,
        },
    )
    runs = wait_for_runs(airflow, "salesforce_org_globex", BACKFILL_DAYS, timeout=150)
    assert [r["state"] for r in runs] == ["success"] * len(BACKFILL_DAYS)
    assert airflow.dag_runs("salesforce_org_acme") == before["acme"], "acme did not run"
    assert org_mismatches(airflow, emulator, "globex") == []
