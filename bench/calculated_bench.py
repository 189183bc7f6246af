"""Benchmark: refreshing formula and roll-up fields against a full refresh of the same object.

    python bench/calculated_bench.py [--contacts 1000000] [--changed 0.01]

The emulator (its own process) serves N Contacts with calculated fields on; the pipeline loads
Contact with ``fields: "all"`` by a full refresh, then a share of the formula values change
without SystemModstamp, and the calculated refresh reads `Id` plus the calculated fields again
and rewrites only the rows that differ. Printed side by side: seconds, API calls, records read
and rows written, and the refresh's time as a share of the full refresh's (target: at most 1/3).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

TARGET_SHARE = 1 / 3


def start_emulator(contacts: int) -> tuple[subprocess.Popen[str], str, str]:
    """The emulator with calculated fields on; its process, base URL and CA file."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "salesforce_emulator", "--port", "0", "--contacts", str(contacts),
         "--accounts", str(max(1, contacts // 10)), "--calculated-fields", "--daily-limit", "50000000"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    _, base_url, ca = line.split(" ")
    return proc, base_url, ca.removeprefix("ca=")


def fresh_database(admin_url: str, name: str) -> str:
    """A new, empty database on the local server; its URL."""
    import psycopg2

    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def configure(base_url: str, ca: str, db_url: str, home: str) -> None:
    """The pipeline's two connections, as environment variables, for this process."""
    from salesforce_emulator.auth import DEMO_CONNECTED_APP

    extra = {
        "domain": base_url,
        "ca_bundle": ca,
        "auth_type": "client_credentials",
        "consumer_key": DEMO_CONNECTED_APP.consumer_key,
        "consumer_secret": DEMO_CONNECTED_APP.consumer_secret,
    }
    os.environ.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_SALESFORCE_DEFAULT=json.dumps({"conn_type": "customerscore_salesforce", "extra": extra}),
        AIRFLOW_CONN_POSTGRES_WAREHOUSE=db_url,
    )


def measure(contacts: int, changed_share: float, admin_url: str, poll_seconds: float) -> dict[str, Any]:
    """Run the full refresh, change values, run the calculated refresh; their figures."""
    from datetime import UTC, datetime

    import requests

    from salesforce_pipeline import sync
    from salesforce_pipeline.calculated import refresh_calculated
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import CONTACT
    from salesforce_pipeline.settings import PipelineSettings
    from salesforce_pipeline.tasks import warehouse_connection

    proc, base_url, ca = start_emulator(contacts)
    try:
        with tempfile.TemporaryDirectory(prefix="calc-bench-") as home:
            configure(base_url, ca, fresh_database(admin_url, "calculated_bench"), home)
            # Polls 0.2 s apart on both sides, as bench/pipeline_bench.py does: the emulator finishes a
            # job in seconds, and the default 2 s first pause would measure the pause, not the work.
            settings = PipelineSettings(
                fields={"Account": "default", "Contact": "all"}, bulk_poll_seconds=poll_seconds
            )
            conn = warehouse_connection(settings.postgres_conn_id, settings)
            now = datetime.now(UTC)
            hook = SalesforcePipelineHook()
            started = time.perf_counter()
            request = sync.SyncRequest(
                spec=CONTACT, settings=settings, dag_run_id="bench-full", interval_start=now,
                interval_end=now, full_refresh=True, method="auto",
            )  # fmt: skip
            full = sync.sync_object(request, hook, conn)
            full_seconds = time.perf_counter() - started
            count = max(1, int(contacts * changed_share))
            answer = requests.post(
                f"{base_url}/__admin/calculated/Contact", json={"count": count}, verify=ca, timeout=600
            )
            answer.raise_for_status()
            hook = SalesforcePipelineHook()
            started = time.perf_counter()
            refresh = refresh_calculated(CONTACT, settings, hook, conn, dag_run_id="bench-refresh")
            refresh_seconds = time.perf_counter() - started
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "contacts": contacts,
        "changed": len(answer.json()["changed"]),
        "full": {"seconds": full_seconds, "api_calls": full.api_calls, "read": full.extracted,
                 "written": full.upserted, "method": full.method},
        "refresh": {"seconds": refresh_seconds, "api_calls": refresh.api_calls, "read": refresh.read,
                    "written": refresh.updated, "method": refresh.method, "fields": list(refresh.fields)},
    }  # fmt: skip


def report(figures: dict[str, Any]) -> str:
    """The two rows side by side, and the refresh's share of the full refresh's time."""
    full, refresh = figures["full"], figures["refresh"]
    share = refresh["seconds"] / full["seconds"]
    lines = [
        f"Calculated fields of {figures['contacts']:,} Contacts ({', '.join(refresh['fields'])}); "
        f"{figures['changed']:,} values changed without SystemModstamp",
        f"  {'':<22} {'seconds':>8} {'API calls':>10} {'read':>10} {'written':>10}  method",
    ]
    for name, row in (("full refresh", full), ("calculated refresh", refresh)):
        lines.append(
            f"  {name:<22} {row['seconds']:>8.1f} {row['api_calls']:>10,} {row['read']:>10,} "
            f"{row['written']:>10,}  {row['method']}"
        )
    verdict = "met" if share <= TARGET_SHARE else "MISSED"
    lines.append(
        f"  refresh / full refresh: {share:.2f}x the time (target at most {TARGET_SHARE:.2f}x: {verdict})"
    )
    return "\n".join(lines)


def main() -> int:
    """Command line: run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of formula values changed")
    parser.add_argument("--poll-seconds", type=float, default=0.2, help="Bulk job poll interval (both runs)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    # Before Airflow is first imported: the figures, not every page's log line.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    admin_url = os.environ.get("WAREHOUSE_ADMIN_URL")
    if not admin_url:
        raise SystemExit("set WAREHOUSE_ADMIN_URL (make bench does: python3 tools/localpg.py ensure)")
    figures = measure(args.contacts, args.changed, admin_url, args.poll_seconds)
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
