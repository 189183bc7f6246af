"""`make demo`: the real pipeline end to end on the emulator and a local Postgres, through Airflow.

1. Starts a local Airflow (tools/local_airflow.py: api-server, scheduler, dag-processor,
   triggerer) and the Salesforce emulator with a few thousand generated accounts and contacts,
   on fresh demo databases.
2. Unpauses the DAG, so the scheduler makes the daily run for yesterday; the first run of each
   object is a full refresh by itself.
3. Starts a 3-day backfill of the days before through Airflow's REST API (what the UI's
   Backfill dialog calls), and waits for every run.
4. Prints what landed in Postgres (rows, deleted, rejected, API calls per object) and how to look
   at it. Airflow stays up for the UI; `make down` stops it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
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


def wait_for_runs(base: str, token: str, expected: int) -> list[dict]:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    reported = ""
    while time.monotonic() < deadline:
        runs = api(base, token, f"/api/v2/dags/{la.DAG_ID}/dagRuns?limit=50&order_by=logical_date")[
            "dag_runs"
        ]
        states = ", ".join(f"{r['logical_date'][:10]}={r['state']}" for r in runs)
        if states != reported:
            say(f"runs: {states or 'none yet'}")
            reported = states
        done = [r for r in runs if r["state"] in ("success", "failed")]
        if len(runs) >= expected and len(done) == len(runs):
            return runs
        time.sleep(2)
    raise SystemExit(f"[demo] runs did not finish within {RUN_TIMEOUT_SECONDS}s; see {la.LOGS}")


def print_summary(warehouse_url: str, runs: list[dict], base: str) -> None:
    import psycopg2

    conn = psycopg2.connect(warehouse_url)
    with conn.cursor() as cur:
        print("\nWhat landed in Postgres (database salesforce_demo, schema salesforce):\n")
        print(f"  {'object':<8} {'rows':>7} {'deleted':>8} {'rejected':>9} {'API calls':>10} {'loads':>6}")
        for sobject, table in (("Account", "account"), ("Contact", "contact")):
            cur.execute(f"SELECT count(*), count(*) FILTER (WHERE is_deleted) FROM salesforce.{table}")
            rows, deleted = cur.fetchone()
            cur.execute("SELECT count(*) FROM salesforce.load_rejects WHERE sobject = %s", (sobject,))
            (rejected,) = cur.fetchone()
            cur.execute(
                "SELECT coalesce(sum(api_calls), 0), count(*) FROM salesforce.load_audit "
                "WHERE sobject = %s AND status = 'success'",
                (sobject,),
            )
            calls, loads = cur.fetchone()
            print(f"  {sobject:<8} {rows:>7} {deleted:>8} {rejected:>9} {calls:>10} {loads:>6}")
        cur.execute(
            "SELECT sobject, mode, window_start, window_end, extracted, upserted, deleted, api_calls, status "
            "FROM salesforce.load_audit ORDER BY audit_id"
        )
        print("\n  Loads (salesforce.load_audit):")
        for sobject, mode, start, end, extracted, upserted, deleted, calls, status in cur.fetchall():
            window = (
                f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d})" if start else f"all history to {end:%Y-%m-%d}"
            )
            print(
                f"    {sobject:<8} {mode:<13} {window:<32} extracted={extracted:<6} upserted={upserted:<6} "
                f"deleted={deleted:<4} api_calls={calls:<3} {status}"
            )
    conn.close()
    failed = [r for r in runs if r["state"] != "success"]
    print(f"\n  DAG runs: {len(runs) - len(failed)} succeeded, {len(failed)} failed")
    user, password = la.ADMIN_USER, la.ADMIN_PASSWORD
    print(
        f"""
Look at it:
  {psql_command(warehouse_url)} -c "SELECT id, name, industry, is_deleted FROM salesforce.account LIMIT 5"
  Airflow UI: {base.replace("127.0.0.1", "localhost")}  (login {user} / {password}): the DAG's runs, task logs with
    the SUMMARY line per object. It keeps running; `make down` stops it, `make airflow` starts it again.
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
    say(f"unpausing {la.DAG_ID}: the scheduler makes the daily run for {today - timedelta(days=1)}")
    for _ in range(60):
        try:
            api(base, token, f"/api/v2/dags/{la.DAG_ID}", {"is_paused": False}, method="PATCH")
            break
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: the dag-processor has not parsed the file yet
                raise
            time.sleep(2)
    wait_for_runs(base, token, expected=1)

    first, last = today - timedelta(days=4), today - timedelta(days=2)
    say(
        f"backfilling {first} .. {last} through the REST API (the UI's Backfill dialog); the CLI equivalent is\n"
        f"       airflow backfill create --dag-id {la.DAG_ID} --from-date {first} --to-date {last}"
    )
    api(
        base,
        token,
        "/api/v2/backfills",
        {
            "dag_id": la.DAG_ID,
            "from_date": f"{first}T00:00:00Z",
            "to_date": f"{last}T00:00:00Z",
            "max_active_runs": 1,
            "reprocess_behavior": "none",
            "dag_run_conf": {},
        },
    )
    runs = wait_for_runs(base, token, expected=4)
    print_summary(la.with_database(admin, la.WAREHOUSE_DB), runs, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
