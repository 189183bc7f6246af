"""A local Airflow wired to the Salesforce emulator and the local PostgreSQL: `make airflow`.

Usage: python tools/local_airflow.py start|stop|status [--port N] [--accounts N] [--contacts N] [--seed N]

`start` brings up, each in its own process group with its pid under `.local/airflow/pids`:

* the Salesforce emulator (`python -m salesforce_emulator`, on a free port, with its own CA);
* Airflow's api-server (UI + REST API), scheduler (LocalExecutor), dag-processor and triggerer,
  with AIRFLOW_HOME `.local/airflow`, the DAGs from `dags/` and the plugins from `plugins/`.

Airflow's metadata lives in the database `airflow_local` and the pipeline loads into
`salesforce_demo`, both on the server `WAREHOUSE_ADMIN_URL` names (else the one
`tools/localpg.py ensure` provides). SQLite is not used: it cannot serve the LocalExecutor's
parallel task processes. The emulator hosts three customers' orgs, and Airflow's database gets
what an operator would add by hand (`airflow connections import`, `variables import`, `pools
set`): a connection per org in both authentication types (rewritten at every start, since the
emulator's port changes), the warehouse connection, the registry (kept if it exists, so orgs you
add survive a restart) and the extraction pool. Nothing is an `AIRFLOW_CONN_*` variable, so the
connections are listed, editable and testable in the UI. The components are started one by one rather than with `airflow standalone`,
which picks its own executor, database and admin password and hides each component's log.

`stop` ends exactly the process groups `start` recorded; `status` reports each of them.
Runs as root or not: nothing here needs privileges (localpg.py handles Postgres's own rule).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".local" / "airflow"
PIDS = HOME / "pids"
LOGS = HOME / "logs"
STATE_FILE = HOME / "state.json"
SECRETS_FILE = HOME / "secrets.json"
PASSWORDS_FILE = HOME / "simple_auth_manager_passwords.json"
ENV_SCRIPT = HOME / "env.sh"

METADATA_DB = "airflow_local"
WAREHOUSE_DB = "salesforce_demo"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
# The demo's customers: org key -> (authentication type, the emulator org it logs in to). Their
# credentials exist only inside the emulator, which lists them at GET /__admin/orgs.
DEMO_ORGS = {
    "acme": ("client_credentials", "default"),
    "globex": ("security_token", "globex"),
    "initech": ("client_credentials", "initech"),
}
DAG_IDS = [f"salesforce_org_{key}" for key in DEMO_ORGS]
POOL = ("salesforce_extraction", 4, "Salesforce extraction slots, shared by every org")
# Started in this order and stopped in the reverse one, so the emulator outlives the tasks.
EMULATOR = "emulator"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MAX_WORKERS = 8
WORKERS = tuple(f"worker{n}" for n in range(1, MAX_WORKERS + 1))
# The queues every Celery worker here serves: Airflow's default one, and the one the pipeline's
# extraction tasks run on (setting `queue`). docker-compose.celery.yaml has the same shape
# (tests/deploy/test_compose.py compares them).
CELERY_QUEUES = "default,salesforce"

READY_LINE = re.compile(r"^READY (?P<url>https?://\S+) ca=(?P<ca>.+)$")


class LocalAirflowError(RuntimeError):
    """A failure the user can act on; the message says how."""


def say(message: str) -> None:
    print(f"[local-airflow] {message}", flush=True)


def venv_bin() -> Path:
    # Airflow components spawn `airflow ...` subprocesses, so the venv's bin/ must be on PATH.
    candidate = ROOT / ".venv" / "bin"
    return candidate if (candidate / "airflow").exists() else Path(sys.executable).parent


def free_port(preferred: int | None = None) -> int:
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


# --- processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A process `start` launched: its pid (also its process group) and when it began, so a
    recycled pid is never mistaken for ours."""

    name: str
    pid: int
    started: float

    @property
    def pid_file(self) -> Path:
        return PIDS / f"{self.name}.pid"

    def alive(self) -> bool:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            # create_time is rounded differently across platforms; a second is plenty apart.
            return abs(proc.create_time() - self.started) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def recorded(name: str) -> Recorded | None:
    path = PIDS / f"{name}.pid"
    try:
        data = json.loads(path.read_text())
        return Recorded(name, int(data["pid"]), float(data["started"]))
    except (OSError, ValueError, KeyError):
        return None


def all_recorded() -> list[Recorded]:
    return [r for name in (EMULATOR, *AIRFLOW_COMPONENTS, *WORKERS) if (r := recorded(name))]


def celery_environment(broker_url: str, metadata_url: str) -> dict[str, str]:
    """The CeleryExecutor settings: Redis as the broker, Airflow's metadata database as the
    result backend, two task slots per worker."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
        + metadata_url.replace("postgresql+psycopg2://", "postgresql://", 1),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }


def celery_worker_argv(name: str) -> list[str]:
    """A worker of its own Celery hostname serving both queues. It serves no logs: every worker
    here shares the log folder, which the api-server reads (two log servers on one machine would
    fight over the port)."""
    return [
        str(venv_bin() / "airflow"),
        "celery",
        "worker",
        "--queues",
        CELERY_QUEUES,
        "--celery-hostname",
        f"{name}@%h",
        "--skip-serve-logs",
    ]


def broker_url() -> str:
    """The project's own Redis (tools/localredis.py), started (and installed) when needed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "localredis.py"), "ensure"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def launch(name: str, argv: list[str], env: dict[str, str]) -> Recorded:
    import psutil

    log_path = LOGS / f"{name}.log"
    with log_path.open("ab") as log:
        log.write(f"\n==> {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(argv)}\n".encode())
        log.flush()
        # A new session makes the process the leader of its own group: `stop` can then end it
        # and every child it spawned (task processes, gunicorn/uvicorn workers) in one signal.
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    rec = Recorded(name, proc.pid, psutil.Process(proc.pid).create_time())
    rec.pid_file.write_text(json.dumps({"pid": rec.pid, "started": rec.started, "argv": argv}))
    return rec


def terminate(records: list[Recorded], grace: float = 30.0) -> None:
    """SIGTERM each recorded process group, wait for all of them together, SIGKILL leftovers."""
    live = [rec for rec in records if rec.alive()]
    for rec in live:
        say(f"stopping {rec.name} (process group {rec.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(r.alive() or group_has_members(r.pid) for r in live):
        time.sleep(0.2)
    for rec in live:
        if rec.alive() or group_has_members(rec.pid):
            say(f"{rec.name} did not stop within {grace:.0f}s; killing its process group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rec.pid, signal.SIGKILL)
    for rec in records:
        rec.pid_file.unlink(missing_ok=True)


def group_has_members(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        # Someone else's group now uses that id: not ours to wait for.
        return False


def log_tail(name: str, lines: int = 25) -> str:
    path = LOGS / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- databases, secrets, environment ---------------------------------------------------------


def admin_url() -> str:
    given = os.environ.get("WAREHOUSE_ADMIN_URL", "").strip()
    if given:
        return given
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "localpg.py"), "ensure"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise LocalAirflowError(f"no PostgreSQL server: {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


def with_database(url: str, database: str, scheme: str = "postgresql") -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


def ensure_databases(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(url, connect_timeout=10)
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for name in (METADATA_DB, WAREHOUSE_DB):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    say(f"creating database {name}")
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def local_secrets() -> dict[str, str]:
    """Keys every component must share (tokens the scheduler signs are checked by the API;
    connections are encrypted with the fernet key), kept across restarts."""
    if SECRETS_FILE.exists():
        return json.loads(SECRETS_FILE.read_text())
    values = {
        "fernet_key": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
    }
    SECRETS_FILE.touch(mode=0o600)
    SECRETS_FILE.write_text(json.dumps(values))
    return values


def airflow_env(admin: str, api_port: int, emulator_url: str, ca_file: str) -> dict[str, str]:
    keys = local_secrets()
    base_url = f"http://localhost:{api_port}"
    settings = {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(PASSWORDS_FILE),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": with_database(admin, METADATA_DB, "postgresql+psycopg2"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(LOGS),
        # An org added to the registry shows up within 10 s (Airflow's default is 30 s).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        # The Connect Salesforce page may log in at the emulator (it is not a Salesforce domain).
        "SALESFORCE_CONNECT_ALLOWED_HOSTS": urllib.parse.urlsplit(emulator_url).netloc,
        "SALESFORCE_CONNECT_ALLOWED_HOSTS_CA_BUNDLE": ca_file,
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    env.update(settings)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    return env


def write_env_script(env: dict[str, str]) -> None:
    # So `airflow backfill create ...` etc. can be run against this instance from a shell.
    lines = ["# source .local/airflow/env.sh: the `airflow` CLI then talks to the local instance"]
    for key in sorted(env):
        if key.startswith(("AIRFLOW", "SALESFORCE_PIPELINE")):
            lines.append(f"export {key}={shlex.quote(env[key])}")
    lines.append(f'export PATH={shlex.quote(str(venv_bin()))}:"$PATH"')
    ENV_SCRIPT.touch(mode=0o600)
    ENV_SCRIPT.write_text("\n".join(lines) + "\n")


def emulator_orgs(emulator_url: str, ca_file: str) -> dict[str, dict]:
    """The emulator's orgs with their Organization Ids and (emulator-only) credentials."""
    import ssl

    context = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(f"{emulator_url}/__admin/orgs", timeout=10, context=context) as response:
        return json.loads(response.read())


def demo_connections(admin: str, emulator_url: str, ca_file: str) -> dict[str, dict]:
    """A connection per demo org, in the form `airflow connections import` reads, and the warehouse."""
    hosted = emulator_orgs(emulator_url, ca_file)
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
    warehouse = urllib.parse.urlsplit(with_database(admin, WAREHOUSE_DB))
    connections["postgres_warehouse"] = {
        "conn_type": "postgres",
        "host": warehouse.hostname,
        "port": warehouse.port or 5432,
        "login": urllib.parse.unquote(warehouse.username or ""),
        "password": urllib.parse.unquote(warehouse.password or ""),
        "schema": WAREHOUSE_DB,
    }
    return connections


def configure_airflow(env: dict[str, str], admin: str, emulator_url: str, ca_file: str) -> None:
    """What an operator adds by hand, through the CLI into Airflow's database."""
    registry = {
        "pool": POOL[0],
        "orgs": {key: {"salesforce_conn_id": f"salesforce_{key}"} for key in DEMO_ORGS},
    }
    files = {"connections": HOME / "connections.json", "variables": HOME / "variables.json"}
    for path in files.values():
        path.touch(mode=0o600)
    files["connections"].write_text(json.dumps(demo_connections(admin, emulator_url, ca_file)))
    files["variables"].write_text(json.dumps({"salesforce_to_postgres": registry}))
    steps = [
        ["connections", "import", str(files["connections"]), "--overwrite"],
        # An existing registry is kept: orgs added to it survive a restart.
        ["variables", "import", str(files["variables"]), "--action-on-existing-key", "skip"],
        ["pools", "set", POOL[0], str(POOL[1]), POOL[2]],
    ]
    try:
        for step in steps:
            with (LOGS / "configure.log").open("ab") as log:
                done = subprocess.run(
                    [str(venv_bin() / "airflow"), *step],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if done.returncode != 0:
                raise LocalAirflowError(f"airflow {' '.join(step[:2])} failed:\n{log_tail('configure')}")
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)


# --- emulator --------------------------------------------------------------------------------


def start_emulator(args: argparse.Namespace) -> tuple[Recorded, str, str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "salesforce_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--accounts",
        str(args.accounts),
        "--contacts",
        str(args.contacts),
        "--seed",
        str(args.seed),
        *[arg for key, (_mode, org) in DEMO_ORGS.items() if org != "default" for arg in ("--org", org)],
        # One org nobody has connected yet, to try the Connect Salesforce page with.
        "--org",
        "spare",
        # A CA that survives restarts, so a trusted path in a browser or shell stays valid.
        "--state-dir",
        str(HOME / "emulator"),
    ]
    log_path = LOGS / f"{EMULATOR}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    rec = launch(EMULATOR, argv, env)
    say(
        f"starting the Salesforce emulator on port {port}: {len(DEMO_ORGS)} orgs of {args.accounts} accounts "
        f"and {args.contacts} contacts each"
    )
    deadline = time.monotonic() + args.emulator_timeout
    while time.monotonic() < deadline:
        with log_path.open("rb") as fh:
            fh.seek(offset)
            for raw in fh.read().decode(errors="replace").splitlines():
                match = READY_LINE.match(raw.strip())
                if match:
                    return rec, match.group("url"), match.group("ca").strip()
        if not rec.alive():
            raise LocalAirflowError(f"the emulator exited before it was ready:\n{log_tail(EMULATOR)}")
        time.sleep(0.2)
    terminate([rec])
    raise LocalAirflowError(f"the emulator printed no READY line within {args.emulator_timeout:.0f}s")


# --- the API server --------------------------------------------------------------------------


def http_json(url: str, token: str | None = None, body: dict | None = None, timeout: float = 5.0) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def wait_healthy(base_url: str, running: list[Recorded], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        for rec in running:
            if not rec.alive():
                raise LocalAirflowError(f"{rec.name} exited during start-up:\n{log_tail(rec.name)}")
        try:
            health = http_json(f"{base_url}/api/v2/monitor/health")
            # The API answers before the scheduler's first heartbeat; wait for that too.
            if health.get("scheduler", {}).get("status") == "healthy":
                return health
            last_error = f"scheduler {health.get('scheduler', {}).get('status')}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = str(exc)
        time.sleep(1)
    raise LocalAirflowError(
        f"{base_url}/api/v2/monitor/health not healthy within {timeout:.0f}s ({last_error})"
    )


def wait_for_dag(base_url: str, timeout: float) -> str:
    """Whether the orgs' DAGs were parsed, as one line for the summary (never fails the start)."""
    try:
        token = http_json(
            f"{base_url}/auth/token", body={"username": ADMIN_USER, "password": ADMIN_PASSWORD}
        )["access_token"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return f"could not log in to check the DAG ({exc})"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for dag_id in DAG_IDS:
                http_json(f"{base_url}/api/v2/dags/{dag_id}", token)
            return f"DAGs {', '.join(DAG_IDS)} are loaded"
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                return f"DAG check answered HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"DAG check failed ({exc})"
        try:
            errors = http_json(f"{base_url}/api/v2/importErrors", token).get("import_errors", [])
        except (urllib.error.URLError, OSError, ValueError):
            errors = []
        if errors:
            first = errors[0]
            return f"DAG import error in {first.get('filename')}: {str(first.get('stack_trace'))[-400:]}"
        time.sleep(1)
    return f"DAGs {', '.join(DAG_IDS)} not parsed yet after {timeout:.0f}s (see {LOGS / 'dag-processor.log'})"


# --- commands --------------------------------------------------------------------------------


def summary(state: dict, dag_line: str | None = None) -> None:
    url = state["url"]
    logs = LOGS.relative_to(ROOT)
    lines = [
        "",
        f"Airflow is up: {url}",
        f"  login:      {ADMIN_USER} / {ADMIN_PASSWORD}",
        f"  emulator:   {state['emulator_url']} (CA {state['ca_file']})",
        f"  warehouse:  database {WAREHOUSE_DB} on {state['warehouse_host']} (connection postgres_warehouse)",
    ]
    if dag_line:
        lines.append(f"  {dag_line}")
    env_script = ENV_SCRIPT.relative_to(ROOT)
    lines += [
        "",
        "Try:",
        f"  * {url}/dags: one DAG per org ({', '.join(DAG_IDS)}), each loading into its own schema",
        "    salesforce_<org>. Trigger one (params: full_refresh, objects, extraction_method); a manual run",
        "    covers the last whole day before its logical date. Backfill: the DAG → Trigger → Backfill.",
        f"  * Or the CLI: source {env_script} && airflow backfill create --dag-id {DAG_IDS[0]} \\",
        "        --from-date 2026-11-01 --to-date 2026-11-03",
        "  * Connections (Admin → Connections): salesforce_acme, salesforce_initech (Connected App) and",
        "    salesforce_globex (Security Token) are in Airflow's database: edit and Test them there, or",
        f"    source {env_script} && airflow connections test salesforce_globex",
        f"  * Connect another org: {url}/salesforce/connect (the Connect Salesforce page; all orgs at",
        f"    {url}/salesforce/, also under Plugins → Salesforce orgs). To try it, the emulator hosts one more",
        f"    org, 'spare': Domain {state['emulator_url']}, credentials at {state['emulator_url']}/__admin/orgs.",
        f"  * Logs: component logs in {logs}/<component>.log, task logs in {logs}/dag_id=<dag>/...",
        "  * Stop: make down   (or python tools/local_airflow.py stop)",
    ]
    print("\n".join(lines), flush=True)


def start(args: argparse.Namespace) -> int:
    records = all_recorded()
    workers = args.workers if args.executor == "celery" else 0
    if not 0 <= workers <= MAX_WORKERS:
        raise LocalAirflowError(f"WORKERS must be between 1 and {MAX_WORKERS}, got {workers}")
    if (
        len(records) == 1 + len(AIRFLOW_COMPONENTS) + workers
        and all(r.alive() for r in records)
        and STATE_FILE.exists()
    ):
        state = json.loads(STATE_FILE.read_text())
        say("already running")
        summary(state)
        return 0
    if records:
        say("a previous start left only some components running: stopping them first")
        stop(args)
    for folder in (HOME, PIDS, LOGS):
        folder.mkdir(parents=True, exist_ok=True)
    PASSWORDS_FILE.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))

    admin = admin_url()
    ensure_databases(admin)
    started: list[Recorded] = []
    try:
        emulator, emulator_url, ca_file = start_emulator(args)
        started.append(emulator)
        say(f"emulator ready at {emulator_url}")

        api_port = free_port(args.port)
        env = airflow_env(admin, api_port, emulator_url, ca_file)
        if workers:
            say(f"CeleryExecutor with {workers} workers; broker: the local Redis (tools/localredis.py)")
            env.update(celery_environment(broker_url(), env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
        write_env_script(env)
        say(f"migrating the metadata database {METADATA_DB} (log: {LOGS / 'db-migrate.log'})")
        with (LOGS / "db-migrate.log").open("ab") as log:
            migrate = subprocess.run(
                [str(venv_bin() / "airflow"), "db", "migrate"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
        if migrate.returncode != 0:
            raise LocalAirflowError(f"airflow db migrate failed:\n{log_tail('db-migrate')}")
        say("adding the orgs' connections, the registry and the extraction pool (airflow CLI)")
        configure_airflow(env, admin, emulator_url, ca_file)

        for component in AIRFLOW_COMPONENTS:
            started.append(launch(component, [str(venv_bin() / "airflow"), component], env))
            say(f"started {component} (log: {LOGS / (component + '.log')})")
        for worker in WORKERS[:workers]:
            started.append(launch(worker, celery_worker_argv(worker), env))
            say(f"started Celery {worker}, queues {CELERY_QUEUES} (log: {LOGS / (worker + '.log')})")

        base_url = f"http://127.0.0.1:{api_port}"
        wait_healthy(base_url, started, args.timeout)
        state = {
            "url": f"http://localhost:{api_port}",
            "emulator_url": emulator_url,
            "ca_file": ca_file,
            "warehouse_host": urllib.parse.urlsplit(admin).netloc.rpartition("@")[2],
        }
        STATE_FILE.write_text(json.dumps(state))
        summary(state, wait_for_dag(base_url, 90))
        return 0
    except BaseException:
        # Leave nothing half-started behind: a failed start stops what it began.
        stop_in_order(started)
        raise


def stop_in_order(records: list[Recorded]) -> None:
    # Airflow's components together (their shutdowns overlap), the emulator after them, so
    # tasks still finishing never see Salesforce vanish first.
    terminate([r for r in records if r.name != EMULATOR])
    terminate([r for r in records if r.name == EMULATOR])


def stop(_args: argparse.Namespace | None = None) -> int:
    records = all_recorded()
    if not records:
        say("local Airflow is not running")
        return 0
    stop_in_order(records)
    STATE_FILE.unlink(missing_ok=True)
    say("stopped")
    return 0


def status(_args: argparse.Namespace | None = None) -> int:
    records = {r.name: r for r in all_recorded()}
    if not records:
        say("local Airflow is not running")
        return 3
    up = 0
    names = [EMULATOR, *AIRFLOW_COMPONENTS, *(w for w in WORKERS if w in records)]
    for name in names:
        rec = records.get(name)
        alive = rec is not None and rec.alive()
        up += alive
        say(f"{name:14} {'running, pid ' + str(rec.pid) if alive else 'stopped'}")
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        try:
            health = http_json(f"{state['url'].replace('localhost', '127.0.0.1')}/api/v2/monitor/health")
            parts = ", ".join(f"{k} {v.get('status')}" for k, v in health.items() if isinstance(v, dict))
            say(f"{state['url']}: {parts}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            say(f"{state['url']}: not answering ({exc})")
    return 0 if up == len(names) else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "status"))
    parser.add_argument("--port", type=int, default=8080, help="API server port (another free one if taken)")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--contacts", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (with --executor celery)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a healthy Airflow")
    parser.add_argument("--emulator-timeout", type=float, default=120.0)
    args = parser.parse_args(argv[1:])
    try:
        return {"start": start, "stop": stop, "status": status}[args.command](args)
    except LocalAirflowError as exc:
        print(f"[local-airflow] ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
