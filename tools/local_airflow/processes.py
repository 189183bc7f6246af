"""Process groups the launcher starts, each recorded under the home so a later `stop` finds it.

A component runs in a new session, so it leads a process group of its own: one signal to the
group ends it and every child it forked (gunicorn/uvicorn workers, the LocalExecutor's
workers). Its pid file also holds its start time, so a recycled pid is never taken for ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from tools.local_airflow.layout import ROOT, Home


@dataclass(frozen=True)
class Process:
    """A process group the launcher started: its leader's pid, start time and log."""

    name: str
    pid: int
    started: float
    log_path: Path

    def alive(self) -> bool:
        """Whether the leader still runs: the same pid and start time (not a recycled pid), not a zombie."""
        try:
            proc = psutil.Process(self.pid)
            # create_time is rounded differently across platforms; a second is plenty apart.
            return abs(proc.create_time() - self.started) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def tail(self, lines: int = 30) -> str:
        """The log's last `lines` lines, or "(no log)" when it cannot be read."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def descendants(self) -> list[psutil.Process]:
        """Every process below the leader, none once it is gone; stop() finds the task processes this way."""
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.pid).children(recursive=True)
        return []


def launch(home: Home, name: str, argv: list[str], env: Mapping[str, str]) -> Process:
    """Start `argv` as the process group `name`, its output appended to `<logs>/<name>.log`."""
    log_path = home.logs / f"{name}.log"
    with log_path.open("ab") as log:
        log.write(f"\n==> {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = Process(name, popen.pid, psutil.Process(popen.pid).create_time(), log_path)
    pid_file(home, name).write_text(
        json.dumps({"pid": process.pid, "started": process.started, "argv": argv})
    )
    return process


def pid_file(home: Home, name: str) -> Path:
    """Where the process group `name` is recorded: its pid, start time and argv."""
    return home.pids / f"{name}.pid"


def recorded(home: Home) -> dict[str, Process]:
    """Every process group whose pid file is under the home, alive or not, by name."""
    found = {}
    for path in sorted(home.pids.glob("*.pid")) if home.pids.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            found[path.stem] = Process(
                path.stem, int(data["pid"]), float(data["started"]), home.logs / f"{path.stem}.log"
            )
        except (OSError, ValueError, KeyError):
            continue
    return found


def stop(
    home: Home, processes: Iterable[Process], grace: float, report: Callable[[str], None] | None = None
) -> None:
    """SIGTERM each live group, wait for all of them together, then SIGKILL what is left.

    Task processes run in process groups of their own (the task SDK's supervisor calls setpgid),
    so a signal to a component's group misses them: they are found first, while their parents
    still exist, and killed one by one if they outlive the groups.
    """
    processes = list(processes)
    live = [p for p in processes if p.alive()]
    strays = [child for p in live for child in p.descendants()]
    leaders = _handles(live)
    for process in live:
        if report:
            report(f"stopping {process.name} (process group {process.pid})")
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        psutil.wait_procs(leaders, timeout=0.2)  # reaps the leaders that are our own children
        if not any(_running(p) for p in live):
            break
    for process in live:
        if _running(process):
            if report:
                report(f"{process.name} did not stop within {grace:.0f}s; killing its process group")
            _signal_group(process.pid, signal.SIGKILL)
    leftover = [proc for proc in strays if proc.is_running()]
    for proc in leftover:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs([*leaders, *leftover], timeout=5)
    for process in processes:
        pid_file(home, process.name).unlink(missing_ok=True)


def _handles(processes: list[Process]) -> list[psutil.Process]:
    handles = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            handles.append(psutil.Process(process.pid))
    return handles


def _running(process: Process) -> bool:
    """The leader, or any process of its group (the leader may go first)."""
    return process.alive() or _group_has_members(process.pid)


def _group_has_members(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        # PermissionError: someone else's group now has that id, not ours to wait for.
        return False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
