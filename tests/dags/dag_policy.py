"""The rules every DAG file in this project keeps, as a function the tests run over a folder.

Kept apart from the tests so the same check runs over `dags/` (must pass) and over the
deliberately broken files in `tests/dags/bad_dags/` (must catch each rule).
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

MAX_PARSE_SECONDS = 5.0


@contextmanager
def _forbid_connections(opened: list[str]):
    """Record (and refuse) every network or database connection attempted while parsing."""
    import psycopg2
    import requests

    real_connect = socket.socket.connect
    real_pg_connect = psycopg2.connect
    real_send = requests.Session.send

    def refuse_socket(sock, address):
        opened.append(f"socket connect to {address!r}")
        raise OSError("DAG parsing must not open network connections")

    def refuse_pg(*args, **kwargs):
        opened.append("psycopg2.connect")
        raise psycopg2.OperationalError("DAG parsing must not open database connections")

    def refuse_http(session, request, **kwargs):
        opened.append(f"HTTP {request.method} {request.url}")
        raise requests.ConnectionError("DAG parsing must not make HTTP calls")

    socket.socket.connect = refuse_socket
    psycopg2.connect = refuse_pg
    requests.Session.send = refuse_http
    try:
        yield
    finally:
        socket.socket.connect = real_connect
        psycopg2.connect = real_pg_connect
        requests.Session.send = real_send


def check_dag_folder(folder: Path) -> list[str]:
    """Every rule broken by the DAG files in `folder`, one line each; empty when all is well."""
    from airflow.models import DagBag

    opened: list[str] = []
    with _forbid_connections(opened):
        bag = DagBag(dag_folder=str(folder))
    problems = [
        f"import error in {Path(path).name}: {error.strip().splitlines()[-1]}"
        for path, error in bag.import_errors.items()
    ]
    problems += [f"parsing opened a connection: {what}" for what in opened]
    for stat in bag.dagbag_stats:
        seconds = (
            stat.duration.total_seconds() if hasattr(stat.duration, "total_seconds") else float(stat.duration)
        )
        if seconds > MAX_PARSE_SECONDS:
            problems.append(
                f"{Path(stat.file).name} took {seconds:.1f}s to parse (limit {MAX_PARSE_SECONDS}s)"
            )
    for dag_id, dag in sorted(bag.dags.items()):
        owners = {task.owner for task in dag.tasks}
        if not owners or owners & {"airflow", "", None}:
            problems.append(f"{dag_id}: every task needs an owner other than the default 'airflow'")
        if not dag.tags:
            problems.append(f"{dag_id}: has no tags")
        low_retries = sorted(task.task_id for task in dag.tasks if (task.retries or 0) < 2)
        if low_retries:
            problems.append(f"{dag_id}: tasks with retries < 2: {low_retries}")
        unbounded = sorted(task.task_id for task in dag.tasks if task.execution_timeout is None)
        if unbounded:
            problems.append(f"{dag_id}: tasks without an execution_timeout: {unbounded}")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag_id}: has no doc_md")
    return problems
