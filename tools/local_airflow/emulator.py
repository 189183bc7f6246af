"""The Salesforce emulator as a process of its own, for a local Airflow to log in at."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import ROOT, Home, free_port
from tools.local_airflow.processes import Process, launch, stop

NAME = "emulator"
READY_LINE = re.compile(r"^READY (?P<url>https?://\S+) ca=(?P<ca>.+)$")


@dataclass(frozen=True)
class RunningEmulator:
    """The emulator's process group, its base URL and the CA file that signed its certificate."""

    process: Process
    url: str
    ca_file: str


def start_emulator(
    home: Home, orgs: Iterable[str], records: tuple[int, int, int], timeout: float
) -> RunningEmulator:
    """`python -m salesforce_emulator` on a free port, hosting its first org plus `orgs`, each of
    `records` = (accounts, contacts, seed); returns once it printed its READY line."""
    accounts, contacts, seed = records
    argv = [
        sys.executable,
        "-m",
        "salesforce_emulator",
        *("--host", "127.0.0.1", "--port", str(free_port())),
        *("--accounts", str(accounts), "--contacts", str(contacts), "--seed", str(seed)),
        *[arg for org in orgs for arg in ("--org", org)],
        # A CA that survives restarts, so a trusted path in a browser or shell stays valid.
        *("--state-dir", str(home.path / "emulator")),
    ]
    log_path = home.logs / f"{NAME}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    process = launch(home, NAME, argv, env)
    try:
        url, ca_file = _ready_line(process, offset, timeout)
    except BaseException:
        stop(home, [process], grace=10)
        raise
    return RunningEmulator(process, url, ca_file)


def _ready_line(process: Process, offset: int, timeout: float) -> tuple[str, str]:
    """The URL and CA file of the READY line the emulator writes to its log once it serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with process.log_path.open("rb") as fh:
            fh.seek(offset)
            for raw in fh.read().decode(errors="replace").splitlines():
                match = READY_LINE.match(raw.strip())
                if match:
                    return match.group("url"), match.group("ca").strip()
        if not process.alive():
            raise LocalAirflowError(f"the emulator exited before it was ready:\n{process.tail()}")
        time.sleep(0.2)
    raise LocalAirflowError(f"the emulator printed no READY line within {timeout:.0f}s")


def hosted_orgs(emulator: RunningEmulator) -> dict[str, dict]:
    """The emulator's orgs with their Organization Ids and (emulator-only) credentials."""
    response = requests.get(f"{emulator.url}/__admin/orgs", timeout=10, verify=emulator.ca_file)
    response.raise_for_status()
    return response.json()
