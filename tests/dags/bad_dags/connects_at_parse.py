"""A DAG file that opens a network connection at the top level, which parsing must not do."""

import contextlib
import socket
from datetime import datetime, timedelta

from airflow.sdk import dag, task

with contextlib.suppress(OSError):
    socket.create_connection(("127.0.0.1", 9), timeout=0.5).close()


@dag(
    dag_id="bad_connects_at_parse",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["bad"],
    doc_md="connects at parse time",
    default_args={"owner": "tests", "retries": 2, "retry_delay": timedelta(seconds=1)},
)
def bad_connects_at_parse():
    @task
    def noop():
        return None

    noop()


bad_connects_at_parse()
