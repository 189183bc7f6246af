"""Fault matrix: break one thing on purpose, run the DAG with its retries, compare every row.

After each fault the warehouse must equal the emulator (every field, `is_deleted`, no duplicate,
nothing missing), or, where the fault must fail the run, be exactly as it was before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from tests.support.fault_matrix import FAULT_MATRIX

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 30, tzinfo=UTC)  # a run for DAY owns [11-29, 11-30)
NEXT_DAY = DAY + timedelta(days=1)
# 500 contacts in pages of 200: every extraction has a first page and `query_more` pages after it.
pytestmark = pytest.mark.emulator(accounts=60, contacts=500, seed=2026, now=NOW)


@pytest.fixture(autouse=True)
def frozen_clock(sf_emulator):
    sf_emulator.org.set_clock(NOW)


def retries_used(dag_run) -> int:
    return sum(max(ti.try_number - 1, 0) for ti in dag_run.get_task_instances())


def absorbed_by_the_hook(dag_run) -> int:
    """The task retries a fault the hook handles itself may cost: none. (Airflow's own retries
    would otherwise hide a hook that stopped retrying or refreshing.)"""
    retries = retries_used(dag_run)
    assert retries == 0, f"the hook should have absorbed this fault, but tasks were retried {retries} times"
    return retries


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def compare(pipeline) -> tuple[int, list[str]]:
    problems = pipeline.mismatches("Account") + pipeline.mismatches("Contact")
    rows = len(pipeline.emulator.org.snapshot("Account")) + len(pipeline.emulator.org.snapshot("Contact"))
    return rows, problems


def record(fault: str, runs: int, retries: int, rows: int, problems: list[str]) -> None:
    FAULT_MATRIX.append(
        {"fault": fault, "runs": runs, "retries": retries, "rows": rows, "mismatches": len(problems)}
    )
    assert problems == [], problems[:10]


def change_some_records(org) -> None:
    """Edits, a delete and an insert inside the next day's window, for an incremental run to find."""
    contacts = [r for r in org.snapshot("Contact") if not r["IsDeleted"]]
    for contact in contacts[:25]:
        org.update("Contact", contact["Id"], {"Title": f"Changed {contact['Id'][-4:]}"})
    org.delete("Contact", contacts[30]["Id"])
    org.insert("Account", {"Name": "Fresh Account"})


def warehouse_state(pipeline) -> dict:
    return {t: pipeline.rows(t) for t in ("account", "contact")}


@pytest.mark.parametrize(
    ("fault", "inject"),
    [
        (
            "session expired mid-pagination (REST)",
            lambda org: org.inject("expire_sessions", after=1, endpoint="query_more"),
        ),
        ("burst of 503 SERVER_UNAVAILABLE", lambda org: org.inject("server_unavailable", count=3)),
        (
            "connection dropped mid-page",
            lambda org: org.inject("drop_connection", count=1, endpoint="query_more"),
        ),
        (
            "malformed JSON page (retried)",
            lambda org: org.inject("malformed_json", count=1, endpoint="query_more"),
        ),
    ],
)
def test_transient_salesforce_faults_during_a_full_load(pipeline, sf_emulator, fault, inject):
    inject(sf_emulator.org)
    dag_run = pipeline.run(DAY)
    assert dag_run.state == "success", states(dag_run)
    assert any(f.fired for f in sf_emulator.org.faults.active) or sf_emulator.org.faults.active == []
    rows, problems = compare(pipeline)
    record(fault, 1, absorbed_by_the_hook(dag_run), rows, problems)


def test_a_response_slower_than_the_client_timeout(pipeline, sf_emulator):
    pipeline.configure(connection_extra={"timeout": 1})
    sf_emulator.org.inject("delay", seconds=3, count=1, endpoint="query_more")
    dag_run = pipeline.run(DAY)
    assert dag_run.state == "success", states(dag_run)
    rows, problems = compare(pipeline)
    record("response slower than the client timeout", 1, absorbed_by_the_hook(dag_run), rows, problems)


def test_session_expired_mid_bulk_job(pipeline, sf_emulator):
    sf_emulator.org.inject("expire_sessions", after=1, path_contains="/jobs/query")
    dag_run = pipeline.run(DAY, extraction_method="bulk2")
    assert dag_run.state == "success", states(dag_run)
    assert sf_emulator.org.counters.get("bulk2_results", 0) >= 2
    rows, problems = compare(pipeline)
    record("session expired mid-job (Bulk 2.0)", 1, absorbed_by_the_hook(dag_run), rows, problems)


@pytest.mark.parametrize(
    ("fault", "method", "inject"),
    [
        (
            "truncated CSV page (every try): fails, nothing loaded",
            "bulk2",
            lambda org: org.inject("truncated_csv", count=None, path_contains="/results"),
        ),
        (
            "malformed JSON page (every try): fails, nothing loaded",
            "rest",
            lambda org: org.inject("malformed_json", count=None, endpoint="query_more"),
        ),
    ],
)
def test_a_page_broken_on_every_try_fails_without_a_partial_chunk(
    pipeline, sf_emulator, fault, method, inject
):
    assert pipeline.run(DAY).state == "success"
    before = warehouse_state(pipeline)
    change_some_records(sf_emulator.org)
    inject(sf_emulator.org)
    pipeline.configure(bulk_poll_seconds=0.1)
    # A full refresh of Contact has several pages, so a chunk is loaded before the broken page.
    dag_run = pipeline.run(NEXT_DAY, extraction_method=method, objects=["Contact"], full_refresh=True)
    assert states(dag_run)["sync_contact"] == "failed"
    after = warehouse_state(pipeline)
    problems = [f"{t} changed" for t in before if before[t] != after[t]]
    record(fault, 1, retries_used(dag_run), 0, problems)


def test_the_daily_api_limit_fails_with_the_usage_and_changes_nothing(pipeline, sf_emulator, capfd):
    org = sf_emulator.org
    assert pipeline.run(DAY).state == "success"
    before = warehouse_state(pipeline)
    change_some_records(org)
    # While our Contact extraction waits for its second page, other integrations use up the
    # rest of the org's daily allowance: the next call is refused with REQUEST_LIMIT_EXCEEDED.
    org.inject("delay", seconds=1, count=1, endpoint="query_more")
    spender = threading.Timer(0.4, lambda: org.set_api_usage(org.api_usage[1]))
    spender.start()
    try:
        dag_run = pipeline.run(NEXT_DAY, objects=["Contact"], full_refresh=True)  # several pages
    finally:
        spender.join()
    assert states(dag_run)["sync_contact"] == "failed", states(dag_run)
    assert dag_run.get_task_instance("sync_contact").try_number == 1, "the daily limit must not be retried"
    output = capfd.readouterr().out
    print(output)
    maximum = org.api_usage[1]
    assert "daily API request limit exceeded" in output
    assert f"of {maximum}" in output, "the failure shows the usage figures"
    after = warehouse_state(pipeline)
    problems = [f"{t} changed" for t in before if before[t] != after[t]]
    record("REQUEST_LIMIT_EXCEEDED (daily limit): fails, warehouse unchanged", 1, 0, 0, problems)


def _contact_staging_session(cur) -> int | None:
    """The Contact load's own session once its slices have staged rows (mid-load), else None."""
    cur.execute("SELECT to_regclass('salesforce.load_checkpoint_slice') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute(
        "SELECT a.loader_pid FROM salesforce.load_audit a "
        "JOIN salesforce.load_checkpoint c ON c.sobject = a.sobject AND c.dag_run_id = a.dag_run_id "
        "JOIN salesforce.load_checkpoint_slice s ON s.checkpoint_id = c.checkpoint_id "
        "WHERE a.sobject = 'Contact' AND a.status = 'running' AND s.staged > 0 LIMIT 1"
    )
    row = cur.fetchone()
    return row[0] if row else None


def _kill_backend_when_loading(admin_url: str, killed: list[int], stop: threading.Event) -> None:
    """Terminate the Contact load's Postgres session once it has staged a page.

    Only a termination that took effect counts: a quick load can finish between the sample and
    the kill, and then nothing was broken at all.
    """
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        while not stop.is_set() and not killed:
            pid = _contact_staging_session(cur)
            if pid:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                if cur.fetchone()[0]:
                    killed.append(pid)
            time.sleep(0.02)
    conn.close()


def test_the_postgres_connection_killed_during_a_load(pipeline, sf_emulator, test_database_url):
    # A slow second page holds the load mid-way, its first page staged.
    sf_emulator.org.inject("delay", seconds=1.5, count=1, endpoint="query_more")
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_backend_when_loading, args=(test_database_url, killed, stop))
    killer.start()
    try:
        dag_run = pipeline.run(DAY)
    finally:
        stop.set()
        killer.join()
    assert killed, "the load's backend was terminated"
    assert dag_run.state == "success", states(dag_run)
    assert retries_used(dag_run) >= 1
    rows, problems = compare(pipeline)
    record("Postgres connection killed during a load", 1, retries_used(dag_run), rows, problems)


def test_postgres_restarted_between_two_runs(pipeline, sf_emulator, pg_admin_url):
    port_file = REPO_ROOT / ".local" / "postgres" / "port"
    if not port_file.exists() or urllib.parse.urlsplit(pg_admin_url).port != int(port_file.read_text()):
        pytest.skip(
            "the server is not the private cluster tools/localpg.py runs, so it is not ours to restart"
        )
    assert pipeline.run(DAY).state == "success"
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_POSTGRES_WAREHOUSE"}
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "localpg.py"), "restart"], check=True, env=env)
    change_some_records(sf_emulator.org)
    dag_run = pipeline.run(NEXT_DAY)
    assert dag_run.state == "success", states(dag_run)
    rows, problems = compare(pipeline)
    record("Postgres restarted between two runs", 2, retries_used(dag_run), rows, problems)


def test_the_worker_killed_mid_load_then_the_task_retried(pipeline, sf_emulator, test_database_url, tmp_path):
    """A real task process (`airflow tasks test`) is SIGKILLed mid-load; the retry completes it."""
    sf_emulator.org.inject("delay", seconds=2, count=1, endpoint="query_more")
    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "airflow"),
            "tasks",
            "test",
            "salesforce_to_postgres",
            "sync_contact",
            DAY.date().isoformat(),
        ],
        env=dict(os.environ),
        stdout=worker_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    conn = psycopg2.connect(test_database_url)
    conn.autocommit = True
    try:
        deadline = time.monotonic() + 60
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                # Mid-load: its first page is staged, the second one is on its way.
                if _contact_staging_session(cur):
                    break
                assert worker.poll() is None, (
                    f"the task process ended early: {worker_log.read_text()[-3000:]}"
                )
                time.sleep(0.05)
            else:
                pytest.fail("the task never reached its load")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('salesforce.contact')")
            if cur.fetchone()[0]:
                cur.execute("SELECT count(*) FROM salesforce.contact")
                assert cur.fetchone()[0] == 0, "a killed load must leave nothing behind"
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        conn.close()
    dag_run = pipeline.run(DAY)  # the retry
    assert dag_run.state == "success", states(dag_run)
    audit = pipeline.audit()
    assert [a for a in audit if a["status"] == "running"] == [], "the killed attempt's row is closed"
    (killed,) = [a for a in audit if a["sobject"] == "Contact" and a["status"] == "failed"]
    assert "ended without recording its outcome" in killed["error"]
    assert killed["finished_at"] is not None
    rows, problems = compare(pipeline)
    record("worker SIGKILLed mid-load, then the task retried", 2, 1, rows, problems)


def test_two_runs_of_overlapping_windows_at_the_same_time(pipeline, sf_emulator):
    """A backfill (full refresh) beside the daily run, truly at once: two threads, each with its
    own Salesforce session and Postgres connection, load the same objects concurrently."""
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import OBJECTS
    from salesforce_pipeline.registry import LEGACY_ORG, org_settings
    from salesforce_pipeline.settings import raw_settings
    from salesforce_pipeline.sync import SyncRequest, sync_object
    from salesforce_pipeline.tasks import warehouse_connection

    assert pipeline.run(DAY).state == "success"
    change_some_records(sf_emulator.org)
    sf_emulator.org.inject("delay", seconds=0.3, count=6, endpoint="query_more")
    settings = org_settings(raw_settings(), LEGACY_ORG)
    errors: list[BaseException] = []

    def run(run_id: str, start: datetime, full_refresh: bool) -> None:
        try:
            for sobject in ("Account", "Contact"):
                request = SyncRequest(
                    spec=OBJECTS[sobject],
                    settings=settings,
                    dag_run_id=run_id,
                    interval_start=start,
                    interval_end=start + timedelta(days=1),
                    full_refresh=full_refresh,
                )
                conn = warehouse_connection(settings.postgres_conn_id)
                try:
                    sync_object(request, SalesforcePipelineHook(), conn)
                finally:
                    conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("scheduled__daily", DAY, False)),
        threading.Thread(target=run, args=("backfill__full", DAY - timedelta(days=1), True)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    statuses = pipeline.query(
        "SELECT dag_run_id, status FROM salesforce.load_audit WHERE dag_run_id LIKE '%%__%%'"
    )
    assert sorted(statuses).count(("backfill__full", "success")) == 2
    rows, problems = compare(pipeline)
    record("two overlapping runs at once (backfill beside daily)", 3, 0, rows, problems)
