"""`make airflow`, `make airflow-status`, `make down`: the local Airflow under `.local/airflow`.

    python -m tools.local_airflow start [--port N] [--accounts N] [--contacts N] [--seed N]
                                        [--executor local|celery] [--workers N]
    python -m tools.local_airflow stop|status

`start` runs the Salesforce emulator (three customers' orgs and a spare one) and Airflow's
api-server, scheduler, dag-processor and triggerer (LocalExecutor, or the CeleryExecutor with a
private Redis from tools/localredis.py and N workers), each its own process group. Airflow's
metadata lives in the database `airflow_local` and the pipeline loads into `salesforce_demo`,
both on the server WAREHOUSE_ADMIN_URL names (else the one tools/localpg.py provides): SQLite
cannot serve the LocalExecutor's parallel task processes. The demo orgs are onboarded with the
`airflow` CLI (onboarding.py). The components are started one by one rather than with
`airflow standalone`, which picks its own executor, database and admin password and hides each
component's log. `stop` ends exactly the process groups `start` recorded; `status` reports them.
Nothing here needs root (localpg.py handles Postgres's own rule).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

import requests

from tools import localredis
from tools.local_airflow import launch, onboarding
from tools.local_airflow.databases import admin_url, create_missing, server_host, with_database
from tools.local_airflow.emulator import NAME as EMULATOR
from tools.local_airflow.emulator import RunningEmulator, hosted_orgs, start_emulator
from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import ROOT, Home, free_port
from tools.local_airflow.processes import Process, recorded, stop
from tools.local_airflow.server import COMPONENTS, AirflowServer
from tools.local_airflow.settings import ADMIN_PASSWORD, ADMIN_USER, CELERY_QUEUES, write_env_script

METADATA_DB = "airflow_local"
WAREHOUSE_DB = "salesforce_demo"
STOP_GRACE = 30.0


@dataclass(frozen=True)
class Options:
    """`start`'s options, with `make airflow`'s defaults."""

    port: int = 8080
    accounts: int = 2000
    contacts: int = 6000
    seed: int = 42
    executor: str = "local"
    workers: int = 2
    timeout: float = 180.0
    emulator_timeout: float = 120.0

    @property
    def celery_workers(self) -> int:
        """The Celery workers to start: `workers` under the CeleryExecutor, none under the LocalExecutor."""
        return self.workers if self.executor == "celery" else 0


def say(message: str) -> None:
    """A progress line, tagged [local-airflow]."""
    print(f"[local-airflow] {message}", flush=True)


def start(options: Options, home: Home | None = None) -> AirflowServer:
    """Everything up and healthy, the summary printed; a failed start stops what it began."""
    home = home or Home.local()
    workers = options.celery_workers
    if options.executor == "celery" and not 1 <= workers <= launch.MAX_WORKERS:
        raise LocalAirflowError(f"WORKERS must be between 1 and {launch.MAX_WORKERS}, got {workers}")
    running = recorded(home)
    if _all_running(home, running, workers):
        say("already running")
        summary(home, json.loads(home.state_file.read_text()))
        return AirflowServer(_api_url(home), home, env={}, components=list(running.values()))
    if running:
        say("a previous start left only some components running: stopping them first")
        stop_instance(home)
    home.prepare()
    admin = admin_url()
    for name in create_missing(admin, (METADATA_DB, WAREHOUSE_DB)):
        say(f"created database {name}")
    started: list[Process] = []
    try:
        emulator = _start_emulator(home, options)
        started.append(emulator.process)
        server = _start_airflow(home, options, admin, emulator, started)
        server.wait_healthy(options.timeout)
        state = {
            "url": f"http://localhost:{server.env['AIRFLOW__API__PORT']}",
            "emulator_url": emulator.url,
            "ca_file": emulator.ca_file,
            "warehouse_host": server_host(admin),
        }
        home.state_file.write_text(json.dumps(state))
        summary(home, state, _dags_line(server))
        return server
    except BaseException:
        _stop_in_order(home, started)
        raise


def _start_emulator(home: Home, options: Options) -> RunningEmulator:
    orgs = onboarding.emulator_orgs()
    say(
        f"starting the Salesforce emulator: {len(onboarding.DEMO_ORGS)} orgs and a spare one, "
        f"{options.accounts} accounts and {options.contacts} contacts each"
    )
    emulator = start_emulator(
        home, orgs, (options.accounts, options.contacts, options.seed), options.emulator_timeout
    )
    say(f"emulator ready at {emulator.url}")
    return emulator


def _start_airflow(
    home: Home, options: Options, admin: str, emulator: RunningEmulator, started: list[Process]
) -> AirflowServer:
    """Migrate, onboard the demo orgs, then start the components (recorded in `started`)."""
    workers = options.celery_workers
    if workers:
        say(f"CeleryExecutor with {workers} workers; broker: the local Redis (tools/localredis.py)")
    deployment = launch.Deployment(
        home=home,
        metadata_url=with_database(admin, METADATA_DB),
        api_port=free_port(options.port),
        extra_env={
            # An org added to the registry shows up within 10 s (Airflow's default is 30 s).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            # The Connect Salesforce page may log in at the emulator (not a Salesforce domain).
            "SALESFORCE_CONNECT_ALLOWED_HOSTS": urllib.parse.urlsplit(emulator.url).netloc,
            "SALESFORCE_CONNECT_ALLOWED_HOSTS_CA_BUNDLE": emulator.ca_file,
        },
        workers=workers,
        broker_url=localredis.ensure() if workers else "",
        url_host="localhost",
    )
    say(f"migrating the metadata database {METADATA_DB} (log: {home.logs / 'db-migrate.log'})")
    server = launch.prepare(deployment)
    write_env_script(home, server.env)
    say("adding the orgs' connections, the registry and the extraction pool (airflow CLI)")
    connections = onboarding.salesforce_connections(hosted_orgs(emulator), emulator.url, emulator.ca_file)
    connections["postgres_warehouse"] = onboarding.warehouse_connection(with_database(admin, WAREHOUSE_DB))
    onboarding.onboard(server, connections)
    try:
        launch.start_components(server, workers, report=say)
    finally:
        started.extend(server.components)
    if workers:
        say(f"the Celery workers serve the queues {CELERY_QUEUES}")
    return server


def _dags_line(server: AirflowServer, timeout: float = 90.0) -> str:
    """Whether the orgs' DAGs were parsed, as one line for the summary (never fails the start)."""
    try:
        launch.wait_ready(server, onboarding.DAG_IDS, timeout)
    except (LocalAirflowError, requests.RequestException) as exc:
        return f"DAGs not ready: {str(exc).splitlines()[0][:400]}"
    return f"DAGs {', '.join(onboarding.DAG_IDS)} are loaded"


def _all_running(home: Home, running: dict[str, Process], workers: int) -> bool:
    return (
        len(running) == 1 + len(COMPONENTS) + workers
        and all(p.alive() for p in running.values())
        and home.state_file.exists()
    )


def _api_url(home: Home) -> str:
    return json.loads(home.state_file.read_text())["url"].replace("localhost", "127.0.0.1")


def _stop_in_order(home: Home, processes: Iterable[Process]) -> None:
    # Airflow's components together (their shutdowns overlap), the emulator after them, so
    # tasks still finishing never see Salesforce vanish first.
    processes = list(processes)
    stop(home, [p for p in processes if p.name != EMULATOR], STOP_GRACE, report=say)
    stop(home, [p for p in processes if p.name == EMULATOR], STOP_GRACE, report=say)


def stop_instance(home: Home | None = None) -> int:
    """Stop every process group `start` recorded."""
    home = home or Home.local()
    running = recorded(home)
    if not running:
        say("local Airflow is not running")
        return 0
    _stop_in_order(home, running.values())
    home.state_file.unlink(missing_ok=True)
    say("stopped")
    return 0


def status(home: Home | None = None) -> int:
    """Each recorded component and what the API's health check says: 0 all up, 1 some, 3 none."""
    home = home or Home.local()
    running = recorded(home)
    if not running:
        say("local Airflow is not running")
        return 3
    names = [EMULATOR, *COMPONENTS, *sorted(n for n in running if n.startswith("worker"))]
    up = 0
    for name in names:
        process = running.get(name)
        alive = process is not None and process.alive()
        up += alive
        say(f"{name:14} {'running, pid ' + str(process.pid) if alive else 'stopped'}")
    if home.state_file.exists():
        url = _api_url(home)
        try:
            health = AirflowServer(url, home, env={}).health()
            say(f"{url}: {', '.join(f'{part} {state}' for part, state in health.items())}")
        except (requests.RequestException, ValueError) as exc:
            say(f"{url}: not answering ({exc})")
    return 0 if up == len(names) else 1


def summary(home: Home, state: dict, dag_line: str | None = None) -> None:
    """What is up, where, and what to try."""
    url, dag_ids = state["url"], onboarding.DAG_IDS
    logs, env_script = home.logs.relative_to(ROOT), home.env_script.relative_to(ROOT)
    lines = [
        "",
        f"Airflow is up: {url}",
        f"  login:      {ADMIN_USER} / {ADMIN_PASSWORD}",
        f"  emulator:   {state['emulator_url']} (CA {state['ca_file']})",
        f"  warehouse:  database {WAREHOUSE_DB} on {state['warehouse_host']} (connection postgres_warehouse)",
        *([f"  {dag_line}"] if dag_line else []),
        "",
        "Try:",
        f"  * {url}/dags: one DAG per org ({', '.join(dag_ids)}), each loading into its own schema",
        "    salesforce_<org>. Trigger one (params: full_refresh, objects, extraction_method); a manual run",
        "    covers the last whole day before its logical date. Backfill: the DAG → Trigger → Backfill.",
        f"  * Or the CLI: source {env_script} && airflow backfill create --dag-id {dag_ids[0]} \\",
        "        --from-date 2026-11-01 --to-date 2026-11-03",
        "  * Connections (Admin → Connections): salesforce_acme, salesforce_initech (Connected App) and",
        "    salesforce_globex (Security Token) are in Airflow's database: edit and Test them there, or",
        f"    source {env_script} && airflow connections test salesforce_globex",
        f"  * Connect another org: {url}/salesforce/connect (the Connect Salesforce page; all orgs at",
        f"    {url}/salesforce/, also under Plugins → Salesforce orgs). To try it, the emulator hosts one more",
        f"    org, '{onboarding.SPARE_ORG}': Domain {state['emulator_url']}, credentials at {state['emulator_url']}/__admin/orgs.",
        f"  * Logs: component logs in {logs}/<component>.log, task logs in {logs}/dag_id=<dag>/...",
        "  * Stop: make down   (or python -m tools.local_airflow stop)",
    ]
    print("\n".join(lines), flush=True)


def parse_options(argv: list[str]) -> tuple[str, Options]:
    """The command (start, stop or status) and `start`'s Options from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.local_airflow", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument(
        "--port", type=int, default=Options.port, help="API server port (another free one if taken)"
    )
    parser.add_argument("--accounts", type=int, default=Options.accounts)
    parser.add_argument("--contacts", type=int, default=Options.contacts)
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--executor", choices=("local", "celery"), default=Options.executor)
    parser.add_argument(
        "--workers", type=int, default=Options.workers, help="Celery workers (with --executor celery)"
    )
    parser.add_argument(
        "--timeout", type=float, default=Options.timeout, help="seconds to wait for a healthy Airflow"
    )
    parser.add_argument("--emulator-timeout", type=float, default=Options.emulator_timeout)
    args = vars(parser.parse_args(argv))
    return args.pop("command"), Options(**args)


def main(argv: list[str]) -> int:
    """Run the command; its exit status (status's 0, 1 or 3), or 1 with the error if the launcher fails."""
    command, options = parse_options(argv)
    try:
        if command == "start":
            start(options)
            return 0
        return stop_instance() if command == "stop" else status()
    except LocalAirflowError as exc:
        print(f"[local-airflow] ERROR: {exc}", file=sys.stderr)
        return 1
