"""A real Airflow (api-server, scheduler, dag-processor, triggerer) for end-to-end tests.

`running_airflow(...)` starts every component as its own process group on a free port, with
AIRFLOW_HOME in a temporary directory, the LocalExecutor, its metadata in a throwaway database
on the test PostgreSQL server and the connections as `AIRFLOW_CONN_*` environment variables;
on exit it ends every process it started (task processes included, which Airflow puts in
groups of their own) and drops the database, whether the test passed or not.

The port and database helpers come from `tools/local_airflow.py` (loaded by path: `tools/` is
not a package), so `make airflow` and these tests build their Airflow the same way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import requests
from psycopg2 import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "salesforce_to_postgres"
ADMIN_USER = ADMIN_PASSWORD = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED_RUN_STATES = frozenset({"success", "failed"})


def _load_local_airflow():
    spec = importlib.util.spec_from_file_location("_local_airflow", REPO_ROOT / "tools" / "local_airflow.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_local = _load_local_airflow()
free_port = _local.free_port
with_database = _local.with_database
venv_bin = _local.venv_bin


class AirflowServerError(RuntimeError):
    """Airflow did not come up or did not do what was asked; the message has the evidence."""


# --- databases ------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<random>` on the admin URL's server, dropped afterwards (even
    while Airflow's processes still hold connections: WITH (FORCE))."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = psycopg2.connect(admin_url, connect_timeout=10)
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(admin_url, name)
        finally:
            with admin.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        admin.close()


# --- processes ------------------------------------------------------------------------------


@dataclass
class Component:
    name: str
    process: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _launch(name: str, argv: list[str], env: Mapping[str, str], logs: Path) -> Component:
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        # Its own session, so one killpg ends the component and the workers it forks.
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Component(name, process, log_path)


def _descendants(pids: list[int]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.extend(psutil.Process(pid).children(recursive=True))
    return found


def stop_components(components: list[Component], grace: float = 15.0) -> None:
    """SIGTERM every component's process group, then SIGKILL what is left, groups and strays.

    Task processes run in process groups of their own (the task SDK's supervisor calls setpgid),
    so a killpg of the scheduler's group misses them: they are collected first, while their
    parents still exist, and ended one by one after the groups.
    """
    strays = _descendants([c.process.pid for c in components])
    for component in components:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(component.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for component in components:
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for component in components:
        # The leader may be gone while workers of its group live on: kill the group regardless.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(component.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=5)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(strays, timeout=5)


# --- the running Airflow --------------------------------------------------------------------


@dataclass
class AirflowServer:
    """A started Airflow: its URL, home, environment, components and an API client."""

    base_url: str
    home: Path
    env: dict[str, str]
    components: list[Component] = field(default_factory=list)
    _token: str | None = None

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    # --- REST API ---------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            response = requests.post(
                f"{self.base_url}/auth/token",
                json={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
                timeout=10,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a successful call; any other status fails with the API's own explanation."""
        response = self.request(method, path, **kwargs)
        if not response.ok:
            raise AirflowServerError(
                f"{method} {path} answered {response.status_code}: {response.text[:1000]}"
            )
        return response.json() if response.content else None

    # --- waiting ----------------------------------------------------------------------------
    def check_alive(self) -> None:
        for component in self.components:
            if component.process.poll() is not None:
                raise AirflowServerError(
                    f"{component.name} exited with {component.process.returncode}:\n{component.tail()}"
                )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
                # The API answers before the scheduler's first heartbeat; runs need the scheduler.
                statuses = {k: v.get("status") for k, v in health.items() if isinstance(v, dict)}
                if statuses.get("scheduler") == "healthy" and statuses.get("metadatabase") == "healthy":
                    return
                last = str(statuses)
            except (requests.RequestException, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise AirflowServerError(f"Airflow not healthy within {timeout:.0f}s ({last})\n{self.tails()}")

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            response = self.request("GET", f"/api/v2/dags/{dag_id}")
            if response.ok:
                return response.json()
            errors = self.api("GET", "/api/v2/importErrors").get("import_errors", [])
            if errors:
                raise AirflowServerError(f"DAG import errors: {json.dumps(errors)[:3000]}")
            time.sleep(0.5)
        raise AirflowServerError(f"DAG {dag_id} not parsed within {timeout:.0f}s\n{self.tails()}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path)["task_instances"]

    def wait_for_runs(
        self, dag_id: str, logical_dates: list[datetime], timeout: float, run_type: str = "backfill"
    ) -> list[dict]:
        """Wait until the runs of those logical dates have finished; returns them in date order.

        Fails at the deadline, or as soon as a run failed, with every run's and task's state.
        """
        wanted = {d.isoformat().replace("+00:00", "Z") for d in logical_dates}
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while True:
            self.check_alive()
            runs = [
                r
                for r in self.dag_runs(dag_id)
                if r["run_type"] == run_type and _iso_z(r["logical_date"]) in wanted
            ]
            done = len(runs) == len(wanted) and all(r["state"] in FINISHED_RUN_STATES for r in runs)
            if done or any(r["state"] == "failed" for r in runs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        runs.sort(key=lambda r: r["logical_date"])
        if not done or any(r["state"] != "success" for r in runs):
            raise AirflowServerError(
                f"{run_type} runs for {sorted(wanted)} not all successful "
                f"(waited up to {timeout:.0f}s):\n{self.describe_runs(dag_id, runs)}\n{self.tails(('scheduler',))}"
            )
        return runs

    def describe_runs(self, dag_id: str, runs: list[dict]) -> str:
        lines = []
        for run in runs:
            lines.append(f"  {run['dag_run_id']}: {run['state']}")
            with contextlib.suppress(AirflowServerError, requests.RequestException):
                for ti in self.task_instances(dag_id, run["dag_run_id"]):
                    lines.append(f"    {ti['task_id']}: {ti['state']} (try {ti['try_number']})")
        return "\n".join(lines) or "  (no runs yet)"

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The whole task log as text (the JSON form: a list of structured events)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.api("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        return "\n".join(
            item if isinstance(item, str) else json.dumps(item, default=str) for item in body["content"]
        )

    def tails(self, names: tuple[str, ...] = COMPONENTS) -> str:
        return "\n".join(
            f"--- {c.name} log (last lines) ---\n{c.tail()}" for c in self.components if c.name in names
        )


def airflow_environment(
    home: Path, metadata_url: str, api_port: int, connections: Mapping[str, str], extra: Mapping[str, str]
) -> dict[str, str]:
    """The environment every component shares; the caller's own Airflow settings are dropped
    (the test session's conftest points AIRFLOW_HOME and the database at its SQLite)."""
    base_url = f"http://127.0.0.1:{api_port}"
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Two cores: a handful of task processes at once is all the machine can run well.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace(
            "postgresql://", "postgresql+psycopg2://", 1
        ),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # The scheduler would otherwise add a run for the wall clock's latest day when the DAG is
        # unpaused (catchup=False still makes that one). The tests drive backfills only, so each
        # run is one the test asked for and the first one is the full refresh.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # New DAG files and runs are picked up in about a second instead of the defaults' 5-30 s.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in connections.items()},
        **extra,
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    env.update(settings)
    # Airflow components spawn `airflow ...` subprocesses (task runners), found through PATH.
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# The Celery deployment is tools/local_airflow.py's (`make airflow EXECUTOR=celery`), one home.
celery_environment = _local.celery_environment
celery_worker_argv = _local.celery_worker_argv


def celery_worker_env(env: Mapping[str, str], name: str) -> dict[str, str]:
    """Each worker tells Airflow its own name (tests/deploy/worker_identity.py), since every
    test worker shares this machine's hostname."""
    return {
        **env,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deploy.worker_identity.hostname",
        "SALESFORCE_TEST_WORKER_NAME": name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])),
    }


def _fernet_key() -> str:
    from base64 import urlsafe_b64encode

    return urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _iso_z(value: str) -> str:
    return value.replace("+00:00", "Z")


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
    """Migrate a fresh metadata database, start the four components, wait until the scheduler
    is healthy and the DAG `dag_id` is parsed (with `orgs` in the Variable, an org's DAG: the
    single-org DAG then does not exist); yield the server; stop everything and drop the database."""
    with scratch_database(admin_url, "airflow_test") as metadata_url:
        (home / "logs").mkdir(parents=True, exist_ok=True)
        port = free_port()
        extra = dict(extra_env or {})
        if celery_workers:
            extra.update(celery_environment(broker_url or "", metadata_url))
        env = airflow_environment(home, metadata_url, port, connections, extra)
        server = AirflowServer(base_url=f"http://127.0.0.1:{port}", home=home, env=env)
        try:
            with (home / "logs" / "db-migrate.log").open("wb") as log:
                migrate = subprocess.run(
                    [str(venv_bin() / "airflow"), "db", "migrate"],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=start_timeout,
                    check=False,
                )
            if migrate.returncode != 0:
                tail = (home / "logs" / "db-migrate.log").read_text(errors="replace")[-3000:]
                raise AirflowServerError(f"airflow db migrate failed:\n{tail}")
            for name in COMPONENTS:
                server.components.append(
                    _launch(name, [str(venv_bin() / "airflow"), name], env, home / "logs")
                )
            for number in range(1, celery_workers + 1):
                name = f"worker{number}"
                server.components.append(
                    _launch(name, celery_worker_argv(name), celery_worker_env(env, name), home / "logs")
                )
            deadline = time.monotonic() + start_timeout
            server.wait_healthy(deadline - time.monotonic())
            server.wait_for_dag(dag_id, max(5.0, deadline - time.monotonic()))
            yield server
        finally:
            stop_components(server.components)


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
