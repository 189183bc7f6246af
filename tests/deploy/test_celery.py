"""The pipeline on Airflow's CeleryExecutor, run for real: a private Redis broker, the scheduler,
api-server, dag-processor and two Celery workers, each its own process with its own hostname,
serving the `default` and `salesforce` queues. Several orgs load across both workers; a worker
killed mid-load, a worker frozen mid-load (SIGSTOP, then SIGCONT after its retry committed) and
a Redis restart each end with every org's tables equal to the emulator."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psutil
import psycopg2
import pytest

from salesforce_emulator.server import Emulator
from tests.deploy.airflow_server import describe_runs, loader_database, running_airflow
from tests.deploy.test_connect_page import failed_task_logs
from tests.support import orgs as orgs_support
from tests.support.pipeline import salesforce_connection_json
from tools.local_airflow.launch import start_worker
from tools.local_airflow.layout import ROOT as REPO_ROOT
from tools.local_airflow.server import AirflowServer

pytestmark = pytest.mark.airflow_server

NOW = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
ORGS = ("acme", "globex", "initech", "hooli")
# A worker that stops heartbeating is given up on after this many seconds (Airflow's default is
# 300); the retry then starts on the other worker after SALESFORCE_PIPELINE_RETRY_DELAY_SECONDS.
HEARTBEAT_TIMEOUT = 20


def localredis(command: str, state) -> str:
    """tools/localredis.py, the project's own Redis, in a directory of this test module's."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "localredis.py"), command],
        env={**os.environ, "LOCALREDIS_DIR": str(state)},
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def redis_state(tmp_path_factory):
    state = tmp_path_factory.mktemp("redis")
    yield state
    localredis("stop", state)


@pytest.fixture(scope="module")
def redis(redis_state) -> str:
    return localredis("ensure", redis_state)


@pytest.fixture(scope="module")
def emulator(sf_emulator_ca) -> Iterator[Emulator]:
    emu = Emulator(ca=sf_emulator_ca, accounts=5, contacts=15, seed=97, now=NOW).start()
    for key in ORGS:
        emu.add_org(key, accounts=20, contacts=1000, now=NOW)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def celery(tmp_path_factory, pg_admin_url, emulator, redis) -> Iterator[AirflowServer]:
    home = tmp_path_factory.mktemp("airflow-celery")
    registry = {"chunk_size": 50, "rest_batch_size": 200, "orgs": {key: {} for key in ORGS}}
    with loader_database(pg_admin_url) as warehouse_url:
        connections = {"postgres_warehouse": warehouse_url}
        for key in ORGS:
            org = emulator.org_named(key)
            connections[f"salesforce_{key}"] = salesforce_connection_json(
                emulator, "client_credentials", credentials=org.credentials, extra={"timeout": 30}
            )
        extra = {
            "AIRFLOW_VAR_SALESFORCE_TO_POSTGRES": json.dumps(registry),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "SALESFORCE_PIPELINE_RETRY_DELAY_SECONDS": "2",
        }
        with running_airflow(
            home,
            pg_admin_url,
            connections,
            extra,
            dag_id="salesforce_org_acme",
            celery_workers=2,
            broker_url=redis,
        ) as server:
            server.warehouse_url = warehouse_url
            yield server


def trigger(server: AirflowServer, key: str, logical_date: datetime, **conf) -> str:
    body = {"logical_date": logical_date.isoformat(), "conf": conf}
    return server.api("POST", f"/api/v2/dags/salesforce_org_{key}/dagRuns", json=body)["dag_run_id"]


def wait_for_run(server: AirflowServer, key: str, run_id: str, timeout: float = 240) -> dict:
    dag = f"salesforce_org_{key}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.api("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(1)
    raise AssertionError(
        f"{dag} {run_id} did not finish within {timeout:.0f}s\n{describe_runs(server, dag, [run])}"
    )


def wait_for_tasks(
    server: AirflowServer, key: str, run_id: str, task_ids: tuple[str, ...], timeout: float
) -> None:
    """Until each of `task_ids` of the run has succeeded; fails at once when one has failed."""
    dag = f"salesforce_org_{key}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {ti["task_id"]: ti["state"] for ti in server.task_instances(dag, run_id)}
        if any(states.get(task) == "failed" for task in task_ids):
            break
        if all(states.get(task) == "success" for task in task_ids):
            return
        time.sleep(1)
    run = server.api("GET", f"/api/v2/dags/{dag}/dagRuns/{run_id}")
    raise AssertionError(
        f"{task_ids} of {dag} {run_id} did not succeed within {timeout:.0f}s\n{describe_runs(server, dag, [run])}"
    )


def org_mismatches(server, emulator, key: str) -> list[str]:
    return orgs_support.org_mismatches(server.warehouse_url, emulator, key)


def query(server: AirflowServer, sql: str) -> list[tuple]:
    conn = psycopg2.connect(server.warehouse_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def advisory_locks_left(server: AirflowServer, wait: float = 15) -> list[tuple]:
    """The warehouse database's advisory locks and who holds them, once sessions that are ending
    have ended (a killed worker's backends exit a moment after it; Airflow's own database's
    locks are not counted)."""
    sql = (
        "SELECT l.pid, a.application_name, a.state FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    deadline = time.monotonic() + wait
    while (held := query(server, sql)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return held


def worker_of(server: AirflowServer, key: str, run_id: str, task_id: str, timeout: float = 60) -> str:
    """The Celery worker component running that task, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in server.task_instances(f"salesforce_org_{key}", run_id):
            if ti["task_id"] == task_id and ti["state"] == "running" and ti.get("hostname"):
                return ti["hostname"].split(".")[0]
        time.sleep(0.2)
    raise AssertionError(f"{task_id} of {key} never ran")


def processes_of(server: AirflowServer, name: str) -> list[psutil.Process]:
    component = next(c for c in server.components if c.name == name)
    root = psutil.Process(component.pid)
    return [root, *root.children(recursive=True)]


def wait_mid_load(server: AirflowServer, schema: str, timeout: float = 60) -> None:
    """Until a load of `schema`'s Contacts is mid-way: its slices have staged rows, and none has
    been applied yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exists = query(server, f"SELECT to_regclass('{schema}.load_checkpoint_slice') IS NOT NULL")
        if exists[0][0]:
            staged = query(
                server,
                f"SELECT count(*) FROM {schema}.load_checkpoint_slice s "
                f"JOIN {schema}.load_checkpoint c USING (checkpoint_id) WHERE c.sobject = 'Contact' AND s.staged > 0",
            )
            if staged[0][0]:
                return
        time.sleep(0.1)
    raise AssertionError(f"no load of {schema}.contact caught mid-way within {timeout:.0f}s")


def test_orgs_load_across_both_workers(celery, emulator):
    day = datetime(2026, 11, 3, tzinfo=UTC)
    runs = {key: trigger(celery, key, day) for key in ORGS}
    for key, run_id in runs.items():
        assert wait_for_run(celery, key, run_id)["state"] == "success", failed_task_logs(
            celery, f"salesforce_org_{key}", []
        )
        assert org_mismatches(celery, emulator, key) == []
    hosts = {
        ti["hostname"].split(".")[0]
        for key, run_id in runs.items()
        for ti in celery.task_instances(f"salesforce_org_{key}", run_id)
        if ti.get("hostname")
    }
    assert hosts == {"worker1", "worker2"}, hosts
    queues = {ti["task_id"]: ti["queue"] for ti in celery.task_instances("salesforce_org_acme", runs["acme"])}
    assert queues["sync_contact"] == "salesforce"
    assert queues["prepare_warehouse"] == "default"


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_a_worker_lost_mid_load_ends_with_the_warehouse_exact(celery, emulator, how):
    key = "globex" if how == "killed" else "initech"
    org = emulator.org_named(key)
    org.inject("delay", endpoint="query_more", seconds=0.4, count=None)  # a load that takes a while
    # A full refresh: every record again, page after slow page, so the load is caught mid-way.
    run_id = trigger(celery, key, datetime(2026, 11, 2, tzinfo=UTC), full_refresh=True)
    worker = worker_of(celery, key, run_id, "sync_contact")
    wait_mid_load(celery, f"salesforce_{key}")
    victims = processes_of(celery, worker)
    started = time.monotonic()
    if how == "killed":
        for proc in victims:
            proc.send_signal(signal.SIGKILL)
    else:
        for proc in victims:
            proc.send_signal(signal.SIGSTOP)
    org.clear_faults()
    lineage = f"SELECT id, _extracted_at FROM salesforce_{key}.contact ORDER BY id"
    after_retry = after_waking = None
    try:
        # The lost load's own recovery: its retry on the other worker, then the Contact sweep.
        wait_for_tasks(
            celery, key, run_id, ("sync_contact", "sweep_contact"), timeout=HEARTBEAT_TIMEOUT + 180
        )
        recovered = time.monotonic() - started
        after_retry = query(celery, lineage)
    finally:
        if how == "frozen":
            for proc in victims:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGCONT)
            time.sleep(10)  # the woken worker gets its chance to commit (it must not)
            after_waking = query(celery, lineage)
            for proc in victims:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        start_worker(celery, worker)  # a fresh worker of the same name
    # A task the lost worker had taken from the queue but not started stays queued until that
    # worker wakes (or Airflow's task_queued_timeout, 600 s): docs/scale-out.md. The rest of the
    # run finishes once the worker is back.
    run = wait_for_run(celery, key, run_id, timeout=HEARTBEAT_TIMEOUT + 180)
    assert run["state"] == "success", failed_task_logs(celery, f"salesforce_org_{key}", [run])
    print(f"{how} worker: the run recovered {recovered:.0f}s after the worker was lost")
    # The documented bound (docs/scale-out.md): Airflow's heartbeat timeout, the retry delay, and
    # the retry's own load; never the frozen try's lock or transaction.
    assert recovered < HEARTBEAT_TIMEOUT + 60
    if how == "frozen":
        assert after_waking == after_retry, "the woken worker committed nothing"
    assert org_mismatches(celery, emulator, key) == []
    audit = query(
        celery,
        f"SELECT try_number, status, error FROM salesforce_{key}.load_audit WHERE sobject = 'Contact' ORDER BY audit_id",
    )
    assert audit[-1][1] == "success"
    lost = [row for row in audit if row[1] != "success"]
    assert lost, "the lost attempt has its audit row"
    assert all(status == "failed" and error for _try, status, error in lost), audit
    assert advisory_locks_left(celery) == [], "no lock left behind in the warehouse"


def test_a_redis_restart_during_a_run_ends_with_the_warehouse_exact(celery, emulator, redis, redis_state):
    key = "hooli"
    org = emulator.org_named(key)
    org.inject("delay", endpoint="query_more", seconds=0.3, count=None)
    run_id = trigger(celery, key, datetime(2026, 11, 2, tzinfo=UTC), full_refresh=True)
    worker_of(celery, key, run_id, "sync_contact")
    assert localredis("restart", redis_state) == redis, "Redis comes back at the same broker URL"
    org.clear_faults()
    run = wait_for_run(celery, key, run_id, timeout=300)
    if run["state"] != "success":  # a run the broker lost may fail: its rerun must land exactly
        run = wait_for_run(
            celery, key, trigger(celery, key, datetime(2026, 11, 1, tzinfo=UTC), full_refresh=True)
        )
    assert run["state"] == "success", describe_runs(celery, f"salesforce_org_{key}", [run]) + celery.tails(
        ("scheduler", "worker1", "worker2")
    )
    assert org_mismatches(celery, emulator, key) == []
