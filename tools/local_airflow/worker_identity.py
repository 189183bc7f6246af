"""The hostname each local Celery worker reports to Airflow (`[core] hostname_callable`): every
worker of a local Airflow runs on this machine, where the real hostname is the same for all."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """`<worker name>.<this machine's name>`, e.g. `worker1.laptop.example`."""
    return f"{os.environ.get('LOCAL_AIRFLOW_WORKER_NAME', 'worker')}.{socket.getfqdn()}"
