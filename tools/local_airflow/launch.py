"""Bringing a local Airflow up (metadata schema, components, Celery workers) and down again."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import ROOT, Home, airflow_executable
from tools.local_airflow.processes import Process, launch, stop
from tools.local_airflow.server import COMPONENTS, AirflowServer
from tools.local_airflow.settings import (
    airflow_environment,
    celery_environment,
    celery_worker_argv,
    celery_worker_environment,
    write_admin_password,
)

MIGRATE_TIMEOUT = 600
MAX_WORKERS = 8


@dataclass(frozen=True)
class Deployment:
    """What to start: the home, the metadata database, the API port, connections as environment
    variables, further settings, and Celery workers (0: the LocalExecutor, no broker)."""

    home: Home
    metadata_url: str
    api_port: int
    connections: Mapping[str, str] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 0
    broker_url: str = ""
    url_host: str = "127.0.0.1"


def prepare(deployment: Deployment) -> AirflowServer:
    """The home, the shared environment and a migrated metadata database; nothing runs yet."""
    if not 0 <= deployment.workers <= MAX_WORKERS:
        raise LocalAirflowError(f"workers must be between 0 and {MAX_WORKERS}, got {deployment.workers}")
    home = deployment.home
    home.prepare()
    write_admin_password(home)
    env = airflow_environment(
        home,
        deployment.metadata_url,
        deployment.api_port,
        url_host=deployment.url_host,
        connections=deployment.connections,
        extra=deployment.extra_env,
    )
    if deployment.workers:
        env.update(celery_environment(deployment.broker_url, deployment.metadata_url))
    server = AirflowServer(f"http://127.0.0.1:{deployment.api_port}", home, env)
    migrate(server)
    return server


def migrate(server: AirflowServer) -> None:
    """`airflow db migrate`, its output in `<logs>/db-migrate.log`."""
    log_path = server.logs / "db-migrate.log"
    with log_path.open("ab") as log:
        done = subprocess.run(
            [airflow_executable(), "db", "migrate"],
            cwd=ROOT,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=MIGRATE_TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise LocalAirflowError(f"airflow db migrate failed:\n{tail}")


def start_components(
    server: AirflowServer, workers: int = 0, report: Callable[[str], None] | None = None
) -> None:
    """The api-server, scheduler, dag-processor and triggerer, then `workers` Celery workers."""
    for name in COMPONENTS:
        server.components.append(launch(server.home, name, [airflow_executable(), name], server.env))
        if report:
            report(f"started {name} (log: {server.logs / (name + '.log')})")
    for number in range(1, workers + 1):
        worker = start_worker(server, f"worker{number}")
        if report:
            report(f"started Celery {worker.name} (log: {worker.log_path})")


def start_worker(server: AirflowServer, name: str) -> Process:
    """The Celery worker `name`, in place of any earlier one of that name."""
    server.components = [c for c in server.components if c.name != name]
    worker = launch(server.home, name, celery_worker_argv(name), celery_worker_environment(server.env, name))
    server.components.append(worker)
    return worker


def wait_ready(server: AirflowServer, dag_ids: list[str], timeout: float) -> None:
    """Until the scheduler is healthy and every DAG named is parsed, all within `timeout`."""
    deadline = time.monotonic() + timeout
    server.wait_healthy(timeout)
    for dag_id in dag_ids:
        server.wait_for_dag(dag_id, max(5.0, deadline - time.monotonic()))


def stop_components(
    server: AirflowServer, grace: float = 15.0, report: Callable[[str], None] | None = None
) -> None:
    """Stop the components' process groups, killing what outlives `grace` seconds."""
    stop(server.home, server.components, grace, report)


@contextlib.contextmanager
def running_airflow(deployment: Deployment, dag_ids: list[str], timeout: float) -> Iterator[AirflowServer]:
    """A started Airflow, ready (see wait_ready), stopped afterwards whatever happened."""
    server = prepare(deployment)
    try:
        start_components(server, deployment.workers)
        wait_ready(server, dag_ids, timeout)
        yield server
    finally:
        stop_components(server)
