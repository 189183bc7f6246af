"""`make demo`: the real pipeline end to end on the emulator and a local Postgres, through Airflow.

1. Starts the local Airflow (cli.py: api-server, scheduler, dag-processor, triggerer) and the
   Salesforce emulator hosting three customers' orgs, on fresh demo databases, and onboards them
   as an operator would: a connection per org in Airflow's database (acme and initech with a
   Connected App, globex with a Security Token) and one registry entry each in the Variable
   `salesforce_to_postgres`.
2. Each org's DAG (salesforce_org_<key>) starts unpaused, so the scheduler makes its daily run
   for yesterday; the first run of each object is a full refresh by itself.
3. Backfills the 3 days before for one org (acme) through Airflow's REST API (what the UI's
   Backfill dialog calls): only that org runs. Waits for every run.
4. Prints what landed per org (rows, deleted, rejected, API calls, Organization Id) from each
   org's schema and `salesforce_pipeline.org_status`. Airflow stays up; `make down` stops it.

Run: python -m tools.local_airflow.demo
"""

from __future__ import annotations

import sys
import time
import urllib.parse
from datetime import UTC, date, datetime, timedelta

import psycopg2
import psycopg2.extensions

from tools.local_airflow.cli import METADATA_DB, WAREHOUSE_DB, Options, start, stop_instance
from tools.local_airflow.databases import admin_url, drop, with_database
from tools.local_airflow.errors import LocalAirflowError
from tools.local_airflow.layout import ROOT, Home
from tools.local_airflow.onboarding import DAG_IDS, DEMO_ORGS
from tools.local_airflow.server import AirflowServer
from tools.local_airflow.settings import ADMIN_PASSWORD, ADMIN_USER

RUN_TIMEOUT_SECONDS = 600


def say(message: str) -> None:
    """A progress line, tagged [demo]."""
    print(f"[demo] {message}", flush=True)


def wait_for_runs(airflow: AirflowServer, expected: dict[str, int]) -> dict[str, list[dict]]:
    """Wait until each DAG has its expected number of runs, all finished; returns them by DAG."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    reported = ""
    while time.monotonic() < deadline:
        airflow.check_alive()
        runs = {dag_id: airflow.dag_runs(dag_id) for dag_id in expected}
        states = "; ".join(
            f"{dag_id.removeprefix('salesforce_org_')}: "
            + (", ".join(f"{r['logical_date'][:10]}={r['state']}" for r in dag_runs) or "none yet")
            for dag_id, dag_runs in runs.items()
        )
        if states != reported:
            say(f"runs: {states}")
            reported = states
        if all(
            len(runs[dag_id]) >= count and all(r["state"] in ("success", "failed") for r in runs[dag_id])
            for dag_id, count in expected.items()
        ):
            return runs
        time.sleep(2)
    raise LocalAirflowError(f"runs did not finish within {RUN_TIMEOUT_SECONDS}s; see {airflow.logs}")


def backfill(airflow: AirflowServer, dag_id: str, first: date, last: date) -> None:
    """A backfill through the REST API, as the UI's Backfill dialog makes it."""
    say(
        f"backfilling {first} .. {last} for one org only ({dag_id}) through the REST API (the UI's Backfill\n"
        f"       dialog); the CLI equivalent is airflow backfill create --dag-id {dag_id} --from-date {first} "
        f"--to-date {last}"
    )
    body = {
        "dag_id": dag_id,
        "from_date": f"{first}T00:00:00Z",
        "to_date": f"{last}T00:00:00Z",
        "max_active_runs": 1,
        "reprocess_behavior": "none",
        "dag_run_conf": {},
    }
    airflow.api("POST", "/api/v2/backfills", json=body)


def print_summary(warehouse_url: str, runs: dict[str, list[dict]], base: str) -> None:
    """What landed per org, the runs' outcome and where to look next; exits 1 if a run failed."""
    conn = psycopg2.connect(warehouse_url)
    try:
        with conn.cursor() as cur:
            print_landed(cur)
    finally:
        conn.close()
    all_runs = [run for dag_runs in runs.values() for run in dag_runs]
    failed = [r for r in all_runs if r["state"] != "success"]
    print(f"\n  DAG runs: {len(all_runs) - len(failed)} succeeded, {len(failed)} failed")
    url = base.replace("127.0.0.1", "localhost")
    print(
        f"""
Look at it:
  {psql_command(warehouse_url)} -c "SELECT org, sobject, status, freshness_lag, live_rows FROM salesforce_pipeline.org_status"
  Connect Salesforce page: {url}/salesforce/  (every org, fresh or broken; connect another)
  Airflow UI: {url}  (login {ADMIN_USER} / {ADMIN_PASSWORD}): one DAG per org, task logs with
    the SUMMARY line per object (every line says org=<key>); Admin → Connections has the three orgs'
    connections. It keeps running; `make down` stops it, `make airflow` starts it again.
"""
    )
    if failed:
        raise SystemExit(1)


def print_landed(cur: psycopg2.extensions.cursor) -> None:
    """One line per org and object from its schema and org_status, then the Organization Ids."""
    print(f"\nWhat landed in Postgres (database {WAREHOUSE_DB}, one schema per org):\n")
    print(
        f"  {'org':<8} {'auth':<18} {'object':<8} {'rows':>6} {'deleted':>8} {'rejected':>9} "
        f"{'API calls':>10} {'loads':>6}  status"
    )
    cur.execute("SELECT org, sobject, status, organization_id FROM salesforce_pipeline.org_status")
    status = {(org, sobject): (state, org_id) for org, sobject, state, org_id in cur.fetchall()}
    for key, (mode, _emulator_org) in DEMO_ORGS.items():
        schema = f"salesforce_{key}"
        for sobject, table in (("Account", "account"), ("Contact", "contact")):
            # Schema and table names come from the demo's own constants, not from input.
            cur.execute(f"SELECT count(*), count(*) FILTER (WHERE is_deleted) FROM {schema}.{table}")
            rows, deleted = cur.fetchone()
            cur.execute(f"SELECT count(*) FROM {schema}.load_rejects WHERE sobject = %s", (sobject,))
            (rejected,) = cur.fetchone()
            cur.execute(
                f"SELECT coalesce(sum(api_calls), 0), count(*) FROM {schema}.load_audit "
                "WHERE sobject = %s AND status = 'success'",
                (sobject,),
            )
            calls, loads = cur.fetchone()
            state = status.get((key, sobject), ("?", None))[0]
            print(
                f"  {key:<8} {mode:<18} {sobject:<8} {rows:>6} {deleted:>8} {rejected:>9} {calls:>10} "
                f"{loads:>6}  {state}"
            )
    ids = sorted({(org, org_id) for (org, _), (_, org_id) in status.items()})
    print(
        "\n  Salesforce Organization Ids (the cross-tenant guard): " + ", ".join(f"{o}={i}" for o, i in ids)
    )


def psql_command(url: str) -> str:
    """A psql command for the demo database that does not print the server's password."""
    parts = urllib.parse.urlsplit(url)
    database = parts.path.lstrip("/")
    host, port, login = parts.hostname, parts.port or 5432, urllib.parse.unquote(parts.username or "postgres")
    local_password = ROOT / ".local" / "postgres" / "superuser-password"
    if local_password.exists() and parts.password == urllib.parse.quote(
        local_password.read_text().strip(), safe=""
    ):
        prefix = 'PGPASSWORD="$(cat .local/postgres/superuser-password)" '
    else:
        prefix = "PGPASSWORD=... " if parts.password else ""
    return f"{prefix}psql -h {host} -p {port} -U {login} {database}"


def main() -> int:
    """The demo from empty demo databases (the module's steps); 1 if Airflow or a run fails or times out."""
    home = Home.local()
    admin = admin_url()
    stop_instance(home)
    # Each demo starts from empty demo databases (never a user's own database).
    drop(admin, (METADATA_DB, WAREHOUSE_DB))
    say("starting the emulator and a local Airflow (python -m tools.local_airflow start)")
    try:
        airflow = start(Options(), home)
        today = datetime.now(UTC).date()
        say(
            f"each org's DAG starts unpaused: the scheduler makes its daily run for {today - timedelta(days=1)}"
        )
        wait_for_runs(airflow, dict.fromkeys(DAG_IDS, 1))
        backfilled = DAG_IDS[0]
        backfill(airflow, backfilled, today - timedelta(days=4), today - timedelta(days=2))
        runs = wait_for_runs(airflow, {**dict.fromkeys(DAG_IDS, 1), backfilled: 4})
    except LocalAirflowError as exc:
        print(f"[demo] ERROR: {exc}", file=sys.stderr)
        return 1
    print_summary(with_database(admin, WAREHOUSE_DB), runs, airflow.base_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
