"""The hostname each test Celery worker reports to Airflow (`[core] hostname_callable`): the
tests run every worker on one machine, where the real hostname would be the same for all."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return f"{os.environ.get('SALESFORCE_TEST_WORKER_NAME', 'worker')}.{socket.getfqdn()}"
