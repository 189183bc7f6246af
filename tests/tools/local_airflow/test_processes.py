"""tools/local_airflow/processes.py: started groups are recorded, and stop ends them all, task
processes in groups of their own included."""

from __future__ import annotations

import json
import sys
import time

import psutil
import pytest

from tools.local_airflow.layout import Home
from tools.local_airflow.processes import launch, recorded, stop

# A component that forks a "task process" which moves to a process group of its own, as the
# task SDK's supervisor does; its pid goes to the log so the test can follow it.
FORKS_A_TASK = (
    "import subprocess, sys, time\n"
    "task = subprocess.Popen([sys.executable, '-c', 'import os, time; os.setpgid(0, 0); time.sleep(120)'])\n"
    "print('TASK-PID', task.pid, flush=True)\n"
    "time.sleep(120)\n"
)
IGNORES_SIGTERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(120)\n"


@pytest.fixture
def home(tmp_path) -> Home:
    home = Home(tmp_path)
    home.prepare()
    return home


def task_pid(log_path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("TASK-PID "):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError(f"no task pid in {log_path}")


def test_stop_ends_the_group_and_task_processes_that_left_it(home):
    component = launch(home, "scheduler", [sys.executable, "-c", FORKS_A_TASK], {"PATH": "/usr/bin:/bin"})
    task = psutil.Process(task_pid(component.log_path))
    assert recorded(home) == {"scheduler": component}
    assert component.alive()

    stop(home, [component], grace=5)

    assert not component.alive()
    assert not task.is_running() or task.status() == psutil.STATUS_ZOMBIE
    assert recorded(home) == {}, "the pid file goes with the process"


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace(home):
    stubborn = launch(home, "triggerer", [sys.executable, "-c", IGNORES_SIGTERM], {})
    time.sleep(0.5)  # let it install its handler
    said: list[str] = []
    started = time.monotonic()
    stop(home, [stubborn], grace=1, report=said.append)
    assert time.monotonic() - started < 10
    assert not stubborn.alive()
    assert said == [
        f"stopping triggerer (process group {stubborn.pid})",
        "triggerer did not stop within 1s; killing its process group",
    ]


def test_a_recycled_pid_is_not_ours(home):
    """A pid file whose process started at another time names someone else's process now."""
    (home.pids / "api-server.pid").write_text(json.dumps({"pid": psutil.Process().pid, "started": 1.0}))
    found = recorded(home)["api-server"]
    assert not found.alive()
    stop(home, [found], grace=1)  # nothing is signalled: this test process lives on
    assert recorded(home) == {}
