"""Where a local Airflow keeps its files, where its `airflow` executable is, and free ports."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Home:
    """An instance's AIRFLOW_HOME and the files the launcher keeps in it."""

    path: Path

    @classmethod
    def local(cls) -> Home:
        """The instance of `make airflow` and `make demo` (git-ignored)."""
        return cls(ROOT / ".local" / "airflow")

    @property
    def logs(self) -> Path:
        """Component logs (`<name>.log`) and, below them, Airflow's task logs."""
        return self.path / "logs"

    @property
    def pids(self) -> Path:
        """The launcher's pid files, one per process group it started (see processes.py)."""
        return self.path / "pids"

    @property
    def state_file(self) -> Path:
        """What `start` recorded of a running instance: its API URL, the emulator's URL and CA, the
        warehouse host."""
        return self.path / "state.json"

    @property
    def secrets_file(self) -> Path:
        """The keys every component shares (fernet, JWT, API secret), kept across restarts."""
        return self.path / "secrets.json"

    @property
    def passwords_file(self) -> Path:
        """The admin's password, for Airflow's simple auth manager."""
        return self.path / "simple_auth_manager_passwords.json"

    @property
    def env_script(self) -> Path:
        """`source` it and the `airflow` CLI in that shell talks to this instance."""
        return self.path / "env.sh"

    def prepare(self) -> None:
        """Create the home and its logs and pids folders."""
        for folder in (self.path, self.logs, self.pids):
            folder.mkdir(parents=True, exist_ok=True)


def venv_bin() -> Path:
    """The folder holding `airflow`: components spawn `airflow ...` subprocesses found on PATH."""
    candidate = ROOT / ".venv" / "bin"
    return candidate if (candidate / "airflow").exists() else Path(sys.executable).parent


def airflow_executable() -> str:
    """The `airflow` executable the components and the CLI calls run."""
    return str(venv_bin() / "airflow")


def free_port(preferred: int | None = None) -> int:
    """`preferred` if it can be bound, else any free port on the loopback interface."""
    if preferred:
        with socket.socket() as sock:
            # As the API server binds (SO_REUSEADDR): a port our last run just closed counts
            # as free, so a restart keeps the URL.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
