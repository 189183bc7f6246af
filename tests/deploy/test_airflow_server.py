"""The DAG in a real, running Airflow: a backfill started through the REST API, as the UI does.

One Airflow per module (api-server, scheduler, dag-processor, triggerer; LocalExecutor; metadata
in a throwaway Postgres database), wired by environment variables to an emulator whose clock
stands at NOW and to a fresh warehouse database. The Salesforce connection uses the Connected
App (client credentials) mode here; tests/deploy/test_browser.py runs the other one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_emulator.server import Emulator
from tests.deploy.airflow_server import DAG_ID, DeployedPipeline, deployed_pipeline, wait_for_runs

pytestmark = pytest.mark.airflow_server

NOW = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
# A backfill from 11-01 to 11-03 makes three runs, each owning [D, D+1); the emulator's records
# were created and changed over the 30 days before NOW, so every one of those days has changes.
DAYS = [datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=n) for n in range(3)]
SYNC_TASKS = {"sync_account": "Account", "sync_contact": "Contact"}


@pytest.fixture(scope="module")
def emulator(sf_emulator_ca) -> Iterator[Emulator]:
    # Module-scoped like the Airflow that points at it, so sf_emulator_factory (function-scoped)
    # cannot serve; this is what it does, with the session's CA.
    emu = Emulator(ca=sf_emulator_ca, accounts=40, contacts=120, seed=77, now=NOW).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, pg_admin_url, emulator) -> Iterator[DeployedPipeline]:
    home = tmp_path_factory.mktemp("airflow-home")
    with deployed_pipeline(home, pg_admin_url, emulator, mode="client_credentials") as pipeline:
        yield pipeline


def test_rest_backfill_loads_salesforce_and_logs_summaries_without_secrets(deployed):
    airflow = deployed.airflow
    started = time.monotonic()
    backfill = airflow.api(
        "POST",
        "/api/v2/backfills",
        json={
            "dag_id": DAG_ID,
            "from_date": DAYS[0].isoformat(),
            "to_date": DAYS[-1].isoformat(),
            "reprocess_behavior": "none",
            # One run at a time, oldest first: the first run must be the one that does the full
            # refresh, and the later ones are incremental over their own day.
            "max_active_runs": 1,
        },
    )
    assert backfill["dag_id"] == DAG_ID
    # Backfill runs are created at once but their tasks only run once the DAG is unpaused
    # (the UI's dialog has an "Unpause on trigger" box that makes this same call).
    airflow.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})

    runs = wait_for_runs(airflow, DAG_ID, DAYS, timeout=150)
    elapsed = time.monotonic() - started

    assert [(r["data_interval_start"], r["data_interval_end"]) for r in runs] == [
        (_z(day), _z(day + timedelta(days=1))) for day in DAYS
    ], "each backfill run owns exactly its day"
    assert deployed.mismatches("Account") == []
    assert deployed.mismatches("Contact") == []

    secrets = deployed.secrets()
    assert len(secrets) >= 4, "the emulator should know the three credentials and the tasks' sessions"
    modes: dict[str, list[str]] = {name: [] for name in SYNC_TASKS.values()}
    for run in runs:
        for ti in airflow.task_instances(DAG_ID, run["dag_run_id"]):
            log = airflow.task_log(DAG_ID, run["dag_run_id"], ti["task_id"], ti["try_number"])
            leaked = [f"{s[:3]}…({len(s)} chars)" for s in secrets if s in log]
            assert not leaked, f"{ti['task_id']} of {run['dag_run_id']} logs secrets {leaked}"
            sobject = SYNC_TASKS.get(ti["task_id"])
            if sobject is None:
                continue
            summary = re.search(rf"SUMMARY {sobject}: mode=(\w+) .*?extracted=(\d+) .*?api_calls=(\d+)", log)
            assert summary, f"no SUMMARY line in {ti['task_id']} of {run['dag_run_id']}:\n{log[-2000:]}"
            modes[sobject].append(summary.group(1))
            assert int(summary.group(3)) > 0
    # The first run of each object finds nothing loaded and refreshes fully by itself.
    assert modes == {name: ["full_refresh", "incremental", "incremental"] for name in SYNC_TASKS.values()}
    print(f"backfill of {len(DAYS)} days took {elapsed:.1f}s")


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
