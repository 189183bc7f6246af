"""`make demo`: the real pipeline end to end on the emulator and a local Postgres, through Airflow.

1. Starts a local Airflow (tools/local_airflow.py: api-server, scheduler, dag-processor,
   triggerer) and the Salesforce emulator hosting three customers' orgs, on fresh demo databases.
   local_airflow onboards them as an operator would: a connection per org in Airflow's database
   (acme and initech with a Connected App, globex with a Security Token) and one registry entry
   each in the Variable `salesforce_to_postgres`.
2. Each org's DAG (salesforce_org_<key>) starts unpaused, so the scheduler makes its daily run
   for yesterday; the first run of each object is a full refresh by itself.
3. Backfills the 3 days before for one org (acme) through Airflow's REST API (what the UI's
   Backfill dialog calls): only that org runs. Waits for every run.
4. Prints what landed per org (rows, deleted, rejected, API calls, Organization Id) from each
   org's schema and `salesforce_pipeline.org_status`. Airflow stays up; `make down` stops it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_SECONDS = 600


def _load_local_airflow():
    spec = importlib.util.spec_from_file_location("local_airflow", ROOT / "tools" / "local_airflow.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_airflow"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


la = _load_local_airflow()


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def reset_databases(admin: str) -> None:
    """Each demo starts from empty demo databases (never a user's own database)."""
    import psycopg2

    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        for database in (la.METADATA_DB, la.WAREHOUSE_DB):
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    conn.close()


def api(base: str, token: str, path: str, body: dict | None = None, method: str | None = None) -> dict:
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method=method or ("POST" if data else "GET"),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def wait_for_runs(base: str, token: str, expected: dict[str, int]) -> dict[str, list[dict]]:
    """Wait until each DAG has its expected number of runs, all finished; returns them by DAG."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    reported = ""
    while time.monotonic() < deadline:
        runs = {
            dag_id: api(base, token, f"/api/v2/dags/{dag_id}/dagRuns?limit=50&order_by=logical_date")[
                "dag_runs"
            ]
            for dag_id in expected
        }
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
    raise SystemExit(f"[demo] runs did not finish within {RUN_TIMEOUT_SECONDS}s; see {la.LOGS}")


def print_summary(warehouse_url: str, runs: dict[str, list[dict]], base: str) -> None:
    import psycopg2

    conn = psycopg2.connect(warehouse_url)
    with conn.cursor() as cur:
        print("\nWhat landed in Postgres (database salesforce_demo, one schema per org):\n")
        print(
            f"  {'org':<8} {'auth':<18} {'object':<8} {'rows':>6} {'deleted':>8} {'rejected':>9} "
            f"{'API calls':>10} {'loads':>6}  status"
        )
        cur.execute("SELECT org, sobject, status, organization_id FROM salesforce_pipeline.org_status")
        status = {(org, sobject): (state, org_id) for org, sobject, state, org_id in cur.fetchall()}
        for key, (mode, _emulator_org) in la.DEMO_ORGS.items():
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
            "\n  Salesforce Organization Ids (the cross-tenant guard): "
            + ", ".join(f"{o}={i}" for o, i in ids)
        )
    conn.close()
    all_runs = [run for dag_runs in runs.values() for run in dag_runs]
    failed = [r for r in all_runs if r["state"] != "success"]
    print(f"\n  DAG runs: {len(all_runs) - len(failed)} succeeded, {len(failed)} failed")
    user, password = la.ADMIN_USER, la.ADMIN_PASSWORD
    print(
        f"""
Look at it:
  {psql_command(warehouse_url)} -c "SELECT org, sobject, status, freshness_lag, live_rows FROM salesforce_pipeline.org_status"
  Connect Salesforce page: {base.replace("127.0.0.1", "localhost")}/salesforce/  (every org, fresh or broken; connect another)
  Airflow UI: {base.replace("127.0.0.1", "localhost")}  (login {user} / {password}): one DAG per org, task logs with
    the SUMMARY line per object (every line says org=<key>); Admin → Connections has the three orgs'
    connections. It keeps running; `make down` stops it, `make airflow` starts it again.
"""
    )
    if failed:
        raise SystemExit(1)


def psql_command(url: str) -> str:
    """A psql command for the demo database that does not print the server's password."""
    import urllib.parse

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
    admin = la.admin_url()
    la.stop()
    reset_databases(admin)
    say("starting the emulator and a local Airflow (tools/local_airflow.py start)")
    started = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "local_airflow.py"),
            "start",
            "--accounts",
            "2000",
            "--contacts",
            "6000",
        ],
        cwd=ROOT,
        env={**os.environ, "WAREHOUSE_ADMIN_URL": admin},
        check=False,
    )
    if started.returncode != 0:
        return started.returncode
    state = json.loads(la.STATE_FILE.read_text())
    base = state["url"].replace("localhost", "127.0.0.1")
    token = la.http_json(
        f"{base}/auth/token", body={"username": la.ADMIN_USER, "password": la.ADMIN_PASSWORD}
    )["access_token"]

    today = datetime.now(UTC).date()
    say(f"each org's DAG starts unpaused: the scheduler makes its daily run for {today - timedelta(days=1)}")
    wait_for_runs(base, token, dict.fromkeys(la.DAG_IDS, 1))

    first, last = today - timedelta(days=4), today - timedelta(days=2)
    backfilled = la.DAG_IDS[0]
    say(
        f"backfilling {first} .. {last} for one org only ({backfilled}) through the REST API (the UI's Backfill\n"
        f"       dialog); the CLI equivalent is airflow backfill create --dag-id {backfilled} --from-date {first} "
        f"--to-date {last}"
    )
    api(
        base,
        token,
        "/api/v2/backfills",
        {
            "dag_id": backfilled,
            "from_date": f"{first}T00:00:00Z",
            "to_date": f"{last}T00:00:00Z",
            "max_active_runs": 1,
            "reprocess_behavior": "none",
            "dag_run_conf": {},
        },
    )
    runs = wait_for_runs(base, token, {**dict.fromkeys(la.DAG_IDS, 1), backfilled: 4})
    print_summary(la.with_database(admin, la.WAREHOUSE_DB), runs, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
