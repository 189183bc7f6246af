"""A running local Airflow: its REST API, its `airflow` CLI, whether it is ready, and its logs."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import ROOT, Home, airflow_executable
from tools.local_airflow.processes import Process
from tools.local_airflow.settings import ADMIN_PASSWORD, ADMIN_USER

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class AirflowServer:
    """An Airflow whose API answers at `base_url`, with its home, the environment its components
    share and the process groups they run in."""

    base_url: str
    home: Home
    env: dict[str, str]
    components: list[Process] = field(default_factory=list)
    _token: str | None = field(default=None, repr=False)

    @property
    def logs(self) -> Path:
        """The components' logs and the task logs (the home's)."""
        return self.home.logs

    # --- the REST API -----------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the admin user, fetched once."""
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
        """A call to the API as the admin user, whatever its status."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a successful call; any other status fails with the API's own explanation."""
        response = self.request(method, path, **kwargs)
        if not response.ok:
            raise LocalAirflowError(
                f"{method} {path} answered {response.status_code}: {response.text[:1000]}"
            )
        return response.json() if response.content else None

    def dag_runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs, oldest logical date first."""
        params = {"limit": 100, "order_by": "logical_date"}
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's task instances, as the API lists them."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path)["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The whole task log as text (the JSON form: a list of structured events)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        body = self.api("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        return "\n".join(
            item if isinstance(item, str) else json.dumps(item, default=str) for item in body["content"]
        )

    # --- the CLI ----------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """`airflow <args>` against this instance, as an operator's shell would run it."""
        return subprocess.run(
            [airflow_executable(), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # --- readiness --------------------------------------------------------------------------

    def health(self) -> dict[str, str]:
        """Each part's status from /api/v2/monitor/health (no login needed)."""
        body = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        return {part: value.get("status") for part, value in body.items() if isinstance(value, dict)}

    def check_alive(self) -> None:
        """Fail, with its log's last lines, if any component has exited."""
        for component in self.components:
            if not component.alive():
                raise LocalAirflowError(f"{component.name} exited:\n{component.tail()}")

    def wait_healthy(self, timeout: float) -> None:
        """Until the metadata database and the scheduler are healthy: the API answers before the
        scheduler's first heartbeat, and runs need the scheduler."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                statuses = self.health()
                if statuses.get("scheduler") == "healthy" and statuses.get("metadatabase") == "healthy":
                    return
                last = str(statuses)
            except (requests.RequestException, ValueError) as exc:
                last = str(exc)
            time.sleep(0.5)
        raise LocalAirflowError(f"Airflow not healthy within {timeout:.0f}s ({last})\n{self.tails()}")

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict:
        """The DAG's details once it is parsed; fails at once on an import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            response = self.request("GET", f"/api/v2/dags/{dag_id}")
            if response.ok:
                return response.json()
            errors = self.api("GET", "/api/v2/importErrors").get("import_errors", [])
            if errors:
                raise LocalAirflowError(f"DAG import errors: {json.dumps(errors)[:3000]}")
            time.sleep(0.5)
        raise LocalAirflowError(
            f"DAG {dag_id} not parsed within {timeout:.0f}s (see {self.logs / 'dag-processor.log'})\n"
            + self.tails(("dag-processor",))
        )

    def tails(self, names: tuple[str, ...] | None = None) -> str:
        """The last lines of the components' logs (all of them, or those named)."""
        return "\n".join(
            f"--- {c.name} log (last lines) ---\n{c.tail()}"
            for c in self.components
            if names is None or c.name in names
        )
