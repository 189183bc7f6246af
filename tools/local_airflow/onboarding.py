"""The demo's customers, onboarded as an operator would: with the `airflow` CLI, into Airflow's
database (`connections import`, `variables import`, `pools set`). Nothing is an `AIRFLOW_CONN_*`
variable, so the connections are listed, editable and testable in the UI."""

from __future__ import annotations

import json
import urllib.parse

from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.server import AirflowServer

# Org key -> (authentication type, the emulator org it logs in to). Their credentials exist only
# inside the emulator, which lists them at GET /__admin/orgs.
DEMO_ORGS = {
    "acme": ("client_credentials", "default"),
    "globex": ("security_token", "globex"),
    "initech": ("client_credentials", "initech"),
}
DAG_IDS = [f"salesforce_org_{key}" for key in DEMO_ORGS]
# One org nobody has connected yet, to try the Connect Salesforce page with.
SPARE_ORG = "spare"
POOL = ("salesforce_extraction", 4, "Salesforce extraction slots, shared by every org")


def emulator_orgs() -> list[str]:
    """The orgs the emulator hosts beside its first one (which is acme's)."""
    return [org for _mode, org in DEMO_ORGS.values() if org != "default"] + [SPARE_ORG]


def salesforce_connections(hosted: dict[str, dict], emulator_url: str, ca_file: str) -> dict[str, dict]:
    """A connection per demo org, in the form `airflow connections import` reads."""
    connections = {}
    for key, (mode, emulator_org) in DEMO_ORGS.items():
        creds = hosted[emulator_org]["credentials"]
        extra = {"auth_type": mode, "domain": emulator_url, "ca_bundle": ca_file}
        conn: dict = {"conn_type": "customerscore_salesforce"}
        if mode == "client_credentials":
            extra.update(consumer_key=creds["consumer_key"], consumer_secret=creds["consumer_secret"])
        else:
            extra["security_token"] = creds["security_token"]
            conn.update(login=creds["username"], password=creds["password"])
        conn["extra"] = json.dumps(extra)
        connections[f"salesforce_{key}"] = conn
    return connections


def warehouse_connection(warehouse_url: str) -> dict:
    """`postgres_warehouse` for the database the URL names."""
    parts = urllib.parse.urlsplit(warehouse_url)
    return {
        "conn_type": "postgres",
        "host": parts.hostname,
        "port": parts.port or 5432,
        "login": urllib.parse.unquote(parts.username or ""),
        "password": urllib.parse.unquote(parts.password or ""),
        "schema": parts.path.lstrip("/"),
    }


def onboard(server: AirflowServer, connections: dict[str, dict]) -> None:
    """The connections (rewritten: the emulator's port changes at every start), the registry (an
    existing one is kept, so orgs added to it survive a restart) and the extraction pool."""
    registry = {
        "pool": POOL[0],
        "orgs": {key: {"salesforce_conn_id": f"salesforce_{key}"} for key in DEMO_ORGS},
    }
    files = {
        "connections": server.home.path / "connections.json",
        "variables": server.home.path / "variables.json",
    }
    for path in files.values():
        path.touch(mode=0o600)
    files["connections"].write_text(json.dumps(connections))
    files["variables"].write_text(json.dumps({"salesforce_to_postgres": registry}))
    steps = [
        ["connections", "import", str(files["connections"]), "--overwrite"],
        ["variables", "import", str(files["variables"]), "--action-on-existing-key", "skip"],
        ["pools", "set", POOL[0], str(POOL[1]), POOL[2]],
    ]
    try:
        for step in steps:
            done = server.cli(*step)
            with (server.logs / "configure.log").open("a") as log:
                log.write(done.stdout + done.stderr)
            if done.returncode != 0:
                raise LocalAirflowError(f"airflow {' '.join(step[:2])} failed:\n{done.stderr[-3000:]}")
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)
