"""A real Airflow (api-server, scheduler, dag-processor, triggerer) for end-to-end tests, from
the project's one launcher (tools/local_airflow, which `make airflow` and `make demo` run too).

`running_airflow(...)` starts it on a free port with its home in a temporary directory, the
LocalExecutor (or Celery workers), its metadata in a throwaway database on the test PostgreSQL
server, the connections as `AIRFLOW_CONN_*` environment variables and a scheduler that makes
only the runs a test asks for; on exit the launcher ends every process it started (task
processes included) and the database is dropped, whether the test passed or not.
"""

from __future__ import annotations

import contextlib
import secrets
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
import requests

from tools.local_airflow import launch
from tools.local_airflow.databases import create_missing, drop, with_database
from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import Home, free_port
from tools.local_airflow.server import AirflowServer

DAG_ID = "salesforce_to_postgres"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
TEST_SETTINGS = {
    # Two cores: a handful of task processes at once is all the machine can run well.
    "AIRFLOW__CORE__PARALLELISM": "4",
    # The scheduler makes no run of its own when a DAG is unpaused (catchup=False still makes one
    # for the latest day): each run is one a test (or the bench) asked for, so the first one of an
    # object is its full refresh.
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    # New DAG files and runs are picked up in about a second instead of the defaults' 5-30 s.
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
}


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<random>` on the admin URL's server, dropped afterwards (even
    while Airflow's processes still hold connections)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    create_missing(admin_url, [name])
    try:
        yield with_database(admin_url, name)
    finally:
        drop(admin_url, [name])


@contextlib.contextmanager
def running_airflow(
    home: Path,
    admin_url: str,
    connections: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    start_timeout: float = 90.0,
    dag_id: str = DAG_ID,
    celery_workers: int = 0,
    broker_url: str | None = None,
) -> Iterator[AirflowServer]:
    """A ready Airflow on a fresh metadata database: the scheduler healthy and the DAG `dag_id`
    parsed (with `orgs` in the Variable, an org's DAG: the single-org DAG then does not exist)."""
    with scratch_database(admin_url, "airflow_test") as metadata_url:
        deployment = launch.Deployment(
            home=Home(home),
            metadata_url=metadata_url,
            api_port=free_port(),
            connections=connections,
            extra_env={**TEST_SETTINGS, **(extra_env or {})},
            workers=celery_workers,
            broker_url=broker_url or "",
        )
        with launch.running_airflow(deployment, [dag_id], start_timeout) as server:
            yield server


def wait_for_runs(
    airflow: AirflowServer,
    dag_id: str,
    logical_dates: list[datetime],
    timeout: float,
    run_type: str = "backfill",
) -> list[dict]:
    """Wait until the runs of those logical dates have finished; returns them in date order.

    Fails at the deadline, or as soon as a run failed, with every run's and task's state.
    """
    wanted = {_iso_z(d.isoformat()) for d in logical_dates}
    deadline = time.monotonic() + timeout
    while True:
        airflow.check_alive()
        runs = [
            r
            for r in airflow.dag_runs(dag_id)
            if r["run_type"] == run_type and _iso_z(r["logical_date"]) in wanted
        ]
        done = len(runs) == len(wanted) and all(r["state"] in FINISHED_RUN_STATES for r in runs)
        if done or any(r["state"] == "failed" for r in runs) or time.monotonic() > deadline:
            break
        time.sleep(1)
    runs.sort(key=lambda r: r["logical_date"])
    if not done or any(r["state"] != "success" for r in runs):
        raise AssertionError(
            f"{run_type} runs for {sorted(wanted)} not all successful (waited up to {timeout:.0f}s):\n"
            f"{describe_runs(airflow, dag_id, runs)}\n{airflow.tails(('scheduler',))}"
        )
    return runs


def describe_runs(airflow: AirflowServer, dag_id: str, runs: list[dict]) -> str:
    """Each run's state and its tasks' states and tries, for a failure message."""
    lines = []
    for run in runs:
        lines.append(f"  {run['dag_run_id']}: {run['state']}")
        with contextlib.suppress(LocalAirflowError, requests.RequestException):
            for ti in airflow.task_instances(dag_id, run["dag_run_id"]):
                lines.append(f"    {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
    return "\n".join(lines) or "  (no runs yet)"


def _iso_z(value: str) -> str:
    return value.replace("+00:00", "Z")


# --- the pipeline deployed on it ------------------------------------------------------------


@dataclass
class DeployedPipeline:
    """A running Airflow whose connections point at one emulator and one warehouse database."""

    airflow: AirflowServer
    emulator: Any
    warehouse_url: str

    def mismatches(self, sobject: str) -> list[str]:
        """Differences between the emulator's records (deleted ones included) and the table."""
        from salesforce_emulator.schema import SCHEMA, describe_sobject
        from salesforce_pipeline.objects import OBJECTS
        from tests.support.warehouse import mismatches, warehouse_rows

        describe = describe_sobject(SCHEMA[sobject], "62.0", frozenset())
        rows = warehouse_rows(self.warehouse_url, OBJECTS[sobject].table)
        return mismatches(sobject, self.emulator.org.snapshot(sobject), rows, describe)

    def secrets(self) -> list[str]:
        """Every credential and live session token the emulator knows: none may reach a log."""
        creds = self.emulator.credentials
        values = [creds.password, creds.security_token, creds.consumer_secret]
        values += [session.token for session in self.emulator.org.sessions]
        return [v for v in values if v]


@contextlib.contextmanager
def loader_database(admin_url: str) -> Iterator[str]:
    """A fresh warehouse database with the least-privilege loader role (include/sql/loader_role.sql)
    owning its `salesforce` schema; yields the *role's* URL, as a deployment's connection has it."""
    from salesforce_pipeline.roles import create_loader_role, drop_loader_role

    role, password = f"sfpipe_loader_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    with scratch_database(admin_url, "sfpipe_e2e") as database_url:
        admin = psycopg2.connect(database_url, connect_timeout=10)
        try:
            create_loader_role(admin, role, password)
        finally:
            admin.close()
        parts = urllib.parse.urlsplit(database_url)
        host = parts.netloc.rpartition("@")[2]
        try:
            yield f"postgresql://{role}:{urllib.parse.quote(password, safe='')}@{host}{parts.path}"
        finally:
            # The role is cluster-wide: drop what it owns and it before the database goes.
            admin = psycopg2.connect(database_url, connect_timeout=10)
            try:
                with admin.cursor() as cur:
                    cur.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
                    )
                admin.commit()
                drop_loader_role(admin, role)
            finally:
                admin.close()


@contextlib.contextmanager
def deployed_pipeline(home: Path, admin_url: str, emulator: Any, mode: str) -> Iterator[DeployedPipeline]:
    """Airflow with `salesforce_default` (auth `mode`) on the emulator and `postgres_warehouse`
    on a fresh database as the loader role; both connections as environment variables, as a
    deployment has them."""
    from tests.support.pipeline import salesforce_connection_json

    with loader_database(admin_url) as warehouse_url:
        connections = {
            "salesforce_default": salesforce_connection_json(emulator, mode),
            "postgres_warehouse": warehouse_url,
        }
        with running_airflow(home, admin_url, connections) as airflow:
            yield DeployedPipeline(airflow, emulator, warehouse_url)
