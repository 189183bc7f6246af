"""Benchmark: many small orgs through a real Airflow scheduler, beside one org of the same total size.

Run: ``make bench-orgs`` (50 orgs of 20 Accounts + 60 Contacts) or
``make bench-orgs BENCH_ARGS="--orgs 5"``; ``--accounts``, ``--contacts`` and ``--parallelism``
change the rest. Pure measurement: it prints a table and asserts nothing about time.

One emulator (in this process) hosts N small orgs and one big org holding N times the records of
a small one. One Airflow from the project's launcher (tools/local_airflow, as the deploy tests
start it: api-server, scheduler, dag-processor, triggerer; LocalExecutor with
``--parallelism`` worker slots; metadata in a throwaway database on ``WAREHOUSE_ADMIN_URL``'s
server) has all N + 1 orgs in its registry, so one DAG file makes every DAG in both phases.
Phase 1 triggers one run of every small org's DAG through the REST API; phase 2, once they have
all finished, one run of the big org's DAG. Every run is each org's first, so a full refresh.

Per phase: wall time from just before the first trigger to the last run's end; busy time, the
sum of every task instance's end - start (Airflow's start_date, set as the task process starts,
before it parses the DAG file); effective slots,
min(parallelism, orgs x max_active_loads) (the big org's DAG alone can use only
max_active_loads slots); scheduler overhead per org = (wall x slots - busy) / orgs, the slot
time each org costs outside its tasks (scheduling, queueing, task process start-up, idle slots);
capacity = orgs / wall x 3600. Then every run must have succeeded and every schema must hold
exactly the emulator's records (deleted ones included): failures are printed and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIG = "big"
FINISHED = frozenset({"success", "failed"})


def say(message: str) -> None:
    """A progress line on stderr, so stdout holds only the report."""
    print(f"[orgs-bench] {message}", file=sys.stderr, flush=True)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _pages(airflow: Any, path: str, key: str, **params: Any) -> list[dict]:
    """Every item of a paginated list endpoint (the API returns at most 100 at a time)."""
    items: list[dict] = []
    while True:
        page = airflow.api("GET", path, params={**params, "limit": 100, "offset": len(items)})
        items += page[key]
        if not page[key] or len(items) >= page["total_entries"]:
            return items


def _cpu_busy() -> tuple[float, float]:
    import psutil

    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle, sum(times)


def run_phase(airflow: Any, dag_ids: list[str], logical_date: datetime, timeout: float) -> dict[str, Any]:
    """Trigger one run of each DAG, wait for all to finish, measure; never raises on a failed run."""
    dags = {d["dag_id"]: d for d in _pages(airflow, "/api/v2/dags", "dags", dag_id_pattern="salesforce_org_")}
    missing = [d for d in dag_ids if d not in dags]
    if missing:
        raise SystemExit(f"DAGs not parsed: {missing[:5]} ({len(missing)} missing)")
    for dag_id in dag_ids:
        if dags[dag_id]["is_paused"]:  # non-legacy orgs start unpaused; make sure
            airflow.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    cpu_start, started = _cpu_busy(), datetime.now(UTC)
    run_ids = {}
    for dag_id in dag_ids:
        body = {"logical_date": logical_date.isoformat(), "dag_run_id": f"bench__{dag_id}"}
        run_ids[dag_id] = airflow.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
    deadline, last_report, runs = time.monotonic() + timeout, 0.0, {}
    while time.monotonic() < deadline:
        airflow.check_alive()
        found = _pages(airflow, "/api/v2/dags/~/dagRuns", "dag_runs", run_type="manual")
        runs = {r["dag_id"]: r for r in found if run_ids.get(r["dag_id"]) == r["dag_run_id"]}
        done = sum(r["state"] in FINISHED for r in runs.values())
        if done == len(dag_ids):
            break
        if time.monotonic() - last_report > 15:
            elapsed = (datetime.now(UTC) - started).total_seconds()
            say(f"{done}/{len(dag_ids)} runs finished after {elapsed:.0f} s")
            last_report = time.monotonic()
        time.sleep(1)
    cpu_end = _cpu_busy()
    ends = [_parse(r["end_date"]) for r in runs.values() if r["state"] in FINISHED]
    finished_at = max([e for e in ends if e] or [datetime.now(UTC)])
    tis = [ti for d in dag_ids if d in runs for ti in airflow.task_instances(d, run_ids[d])]
    took = {
        id(t): (_parse(t["end_date"]) - _parse(t["start_date"])).total_seconds() for t in tis if t["end_date"]
    }
    kinds: dict[str, list[float]] = {}  # prepare / sync / sweep: the mean of each, for the docs
    for t in tis:
        kinds.setdefault(t["task_id"].split("_")[0], []).append(took.get(id(t), 0.0))
    return {
        "states": {d: runs[d]["state"] if d in runs else "not created" for d in dag_ids},
        "wall": (finished_at - started).total_seconds(),
        "run_ends": sorted((e - started).total_seconds() for e in ends if e),
        "busy": sum(took.values()),
        "kinds": {k: sum(v) / len(v) for k, v in kinds.items()},
        "tasks": len(took),
        "skipped": sum(t["state"] == "skipped" for t in tis),
        "retries": sum(max(0, (t["try_number"] or 1) - 1) for t in tis),
        "failed_tasks": [t for t in tis if t["state"] not in ("success", "skipped")],
        "cpu": (cpu_end[0] - cpu_start[0]) / max(1e-9, cpu_end[1] - cpu_start[1]),
    }


def row_count_problems(warehouse_url: str, hosted: dict[str, Any], orgs: list[str]) -> list[str]:
    """Each org's tables against its emulator org: rows (deleted records keep theirs) = records."""
    import psycopg2
    from psycopg2 import sql

    from salesforce_pipeline.objects import OBJECTS
    from salesforce_pipeline.registry import default_schema

    problems = []
    conn = psycopg2.connect(warehouse_url)
    try:
        for org in orgs:
            for sobject, spec in OBJECTS.items():
                expected = hosted[org].count(sobject, include_deleted=True)
                try:
                    with conn.cursor() as cur:
                        table = sql.Identifier(default_schema(org), spec.table)
                        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
                        (held,) = cur.fetchone()
                except psycopg2.Error as exc:
                    conn.rollback()
                    held = f"unreadable ({str(exc).strip().splitlines()[0]})"
                if held != expected:
                    problems.append(
                        f"{default_schema(org)}.{spec.table}: {held} rows, emulator has {expected}"
                    )
    finally:
        conn.close()
    return problems


# (label, whether a ratio many/one means something); values come from column() in this order.
LABELS = [
    ("records per org (Account + Contact)", False),
    ("DAG runs / task instances run", False),
    ("  of which skipped (sweep not due)", False),
    ("wall time, first trigger -> last end (s)", True),
    ("busy time, sum of task durations (s)", True),
    ("runs finished after (s): first / median", False),
    ("mean task (s): prepare / sync / sweep", False),
    ("effective slots", False),
    ("mean tasks running (busy / wall)", False),
    ("scheduler overhead per org (s)", True),
    ("capacity (orgs per hour)", True),
    ("  per worker slot (orgs/hour/slot)", True),
    ("records per second", True),
    ("machine CPU busy", False),
    ("task retries", False),
    ("runs succeeded", False),
    ("row counts = emulator", False),
]


def column(p: dict[str, Any], orgs: int, accounts: int, contacts: int) -> list[Any]:
    """One phase's values for the report's table, in the order of LABELS."""
    ends, kinds = p["run_ends"], p["kinds"]
    return [
        f"{accounts} + {contacts}",
        f"{orgs} / {p['tasks']}",
        p["skipped"],
        round(p["wall"], 1),
        round(p["busy"], 1),
        f"{ends[0]:.0f} / {ends[len(ends) // 2]:.0f}" if ends else "-",
        " / ".join(f"{kinds.get(k, 0):.1f}" for k in ("prepare", "sync", "sweep")),
        p["slots"],
        round(p["busy"] / p["wall"], 2),
        round(p["overhead"], 1),
        round(p["per_hour"]),
        round(p["per_hour"] / p["slots"]),
        round(p["records"] / p["wall"]),
        f"{p['cpu']:.0%}",
        p["retries"],
        f"{sum(s == 'success' for s in p['states'].values())}/{orgs}",
        f"{len(p['counts'])} differ" if p["counts"] else "yes",
    ]


def print_report(small: dict, big: dict, args: argparse.Namespace, cores: int, load: float) -> None:
    """Both phases side by side on stdout, under the machine's cores and load average, with the many/one
    ratio where LABELS says it means something."""
    n = args.orgs
    many = column(small, n, args.accounts, args.contacts)
    one = column(big, 1, n * args.accounts, n * args.contacts)
    rows = [("", f"{n} small orgs", "1 org, same total", "many/one")]
    for (label, ratio), a, b in zip(LABELS, many, one, strict=True):
        rows.append((label, a, b, f"{a / b:.2f}x" if ratio and b else ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    print(
        f"\nMany orgs through the scheduler: {cores} cores, LocalExecutor with parallelism={args.parallelism}, "
        f"max_active_loads={args.max_active_loads} per org (default_pool's 128 slots do not bind)\n"
        f"load average {load:.1f} before the start (CPU busy is the whole machine's, other work included)\n"
    )
    for row in rows:
        cells = [str(v).rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        print("  " + "  ".join([str(row[0]).ljust(widths[0]), *cells]))
    print(
        "\n  slots = min(parallelism, orgs x max_active_loads); overhead per org = (wall x slots - busy) / orgs"
    )


def main() -> int:
    """Both phases on one emulator and one Airflow, then the report; 1 if a run, task or row count failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=50, help="number of small orgs (default 50)")
    parser.add_argument("--accounts", type=int, default=20, help="Accounts per small org (default 20)")
    parser.add_argument("--contacts", type=int, default=60, help="Contacts per small org (default 60)")
    slots = 2 * (os.cpu_count() or 1)
    parser.add_argument("--parallelism", type=int, default=slots, help="worker slots (default: 2 per core)")
    parser.add_argument("--max-active-loads", type=int, default=2, help="the setting (default 2)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait per phase")
    args = parser.parse_args()
    admin_url = os.environ.get("WAREHOUSE_ADMIN_URL")
    if not admin_url:
        raise SystemExit("WAREHOUSE_ADMIN_URL is not set; run `make bench-orgs`")
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    from salesforce_emulator.server import Emulator
    from salesforce_pipeline.registry import dag_id
    from tests.deploy.airflow_server import loader_database, running_airflow
    from tests.support.pipeline import salesforce_connection_json

    n, cores, load = args.orgs, os.cpu_count() or 1, os.getloadavg()[0]
    # The emulator's first org is the big one; the small ones are hosted beside it.
    emulator = Emulator(accounts=n * args.accounts, contacts=n * args.contacts).start()
    small = [f"org{i:03d}" for i in range(1, n + 1)]
    hosted = {BIG: emulator.org} | {
        key: emulator.add_org(key, accounts=args.accounts, contacts=args.contacts, now=emulator.org.now())
        for key in small
    }
    logical_date = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    say(
        f"emulator: {n} orgs of {args.accounts} + {args.contacts} records, one of {n * args.accounts} + {n * args.contacts}"
    )
    try:
        with (
            loader_database(admin_url) as warehouse_url,
            tempfile.TemporaryDirectory(prefix="orgs-bench-") as home,
        ):
            connections = {
                f"salesforce_{k}": salesforce_connection_json(emulator, "client_credentials", o.credentials)
                for k, o in hosted.items()
            }
            connections["postgres_warehouse"] = warehouse_url
            registry = {
                "max_active_loads": args.max_active_loads,
                "orgs": {k: {"salesforce_conn_id": f"salesforce_{k}"} for k in hosted},
            }
            extra_env = {
                "AIRFLOW_VAR_SALESFORCE_TO_POSTGRES": json.dumps(registry),
                "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            }
            say(f"starting Airflow with {len(hosted)} orgs in the registry")
            with running_airflow(Path(home), admin_url, connections, extra_env, 240, dag_id(BIG)) as airflow:
                phases = {}
                for label, keys in (("small", small), ("big", [BIG])):
                    say(f"phase {label}: triggering {len(keys)} runs")
                    phase = run_phase(airflow, [dag_id(k) for k in keys], logical_date, args.timeout)
                    phase["slots"] = min(args.parallelism, len(keys) * args.max_active_loads)
                    phase["overhead"] = (phase["wall"] * phase["slots"] - phase["busy"]) / len(keys)
                    phase["per_hour"] = len(keys) / phase["wall"] * 3600
                    phase["records"] = n * (args.accounts + args.contacts)
                    phase["counts"] = row_count_problems(warehouse_url, hosted, keys)
                    phases[label] = phase
                    for ti in phase["failed_tasks"][:3]:  # the evidence, before Airflow's home is gone
                        with contextlib.suppress(Exception):
                            log = airflow.task_log(
                                ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["try_number"]
                            )
                            print(
                                f"--- {ti['dag_id']}.{ti['task_id']} log (end) ---\n{log[-3000:]}",
                                file=sys.stderr,
                            )
    finally:
        emulator.stop()
    print_report(phases["small"], phases["big"], args, cores, load)
    failures = [
        f"{dag}: {state}" for p in phases.values() for dag, state in p["states"].items() if state != "success"
    ]
    failures += [
        f"task {t['dag_id']}.{t['task_id']}: {t['state']}" for p in phases.values() for t in p["failed_tasks"]
    ]
    failures += [f"rows {c}" for p in phases.values() for c in p["counts"]]
    for failure in failures:
        print(f"  FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
