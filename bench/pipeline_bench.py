"""Benchmark: this pipeline against the physical floor and against the naive provider approach.

Run: ``make bench`` (quick: 20,000 Accounts + 200,000 Contacts) or
``make bench BENCH_ARGS=--large`` (100,000 Accounts + 1,000,000 Contacts).

Everything is measured in one run on the same emulator data:

* the emulator runs as its own process (``python -m salesforce_emulator``), so its CPU and RSS
  are not counted in ours; the machine may have only 2 cores, so it competes with us and Postgres;
* every measured variant runs in a fresh subprocess of this script (``--worker``), which reports
  its wall time, its own peak RSS (``ru_maxrss``) and the API calls it made;
* Postgres is the server of ``WAREHOUSE_ADMIN_URL``; the bench creates a database of its own and
  drops it at the end.

Variants: the pipeline's full load by REST and by Bulk API 2.0 (``sync_object``, as the DAG's
tasks call it); the floor (raw HTTPS pages, bytes discarded, plus ``COPY`` of the same rows from
a prepared file into an empty table); the naive baseline (the provider's
``SalesforceHook.make_query`` + ``pandas.DataFrame`` + ``DataFrame.to_sql``); incremental runs
with nothing changed and with 1% of the Contacts changed. Targets are printed next to the
measurements with PASS/MISS; nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CONSUMER_KEY = "3MVG9demoConsumerKey"  # the emulator's demo Connected App
CONSUMER_SECRET = "demo-consumer-secret"
API_VERSION = "62.0"
OBJECTS = ("Account", "Contact")
# The emulator endpoints that serve records: REST query pages and Bulk 2.0 results pages.
PAGE_ENDPOINTS = ("query", "query_all", "query_more", "bulk2_results")
# The emulator renders a record's JSON on first use and caches it; a warm-up pass makes the
# pipeline and its floor read the same (cached) pages.
_NEXT_RE = re.compile(rb'"nextRecordsUrl"\s*:\s*"([^"]+)"')


# ----------------------------------------------------------------------------- worker helpers
def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CpuMeter:
    """CPU seconds (user + system) spent between start and stop by this process (all threads),
    by the Postgres backend serving `conn` (if given) and by the emulator process.

    Wall time alone cannot say whether a target is out of reach: on a 2-core machine the
    pipeline, its Postgres backend and the emulator share two cores, so the CPU they need
    together, halved, is a lower bound on the wall time of any schedule of that work.
    """

    def __init__(self, cfg: dict[str, Any], conn: Any = None) -> None:
        import psutil

        self._processes = {"emulator": psutil.Process(cfg["emulator_pid"])}
        if conn is not None:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                self._processes["postgres"] = psutil.Process(cur.fetchone()[0])
            conn.commit()
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        seconds = {"self": usage.ru_utime + usage.ru_stime}
        for name, process in self._processes.items():
            times = process.cpu_times()
            seconds[name] = times.user + times.system
        return seconds

    def stop(self) -> dict[str, float]:
        """CPU seconds of each process (`self`, `postgres`, `emulator`) since the meter was made."""
        end = self._read()
        return {name: round(end[name] - self._start[name], 3) for name in end}


def _session(ca: str):
    import requests

    class _Verifying(requests.Session):
        # requests lets REQUESTS_CA_BUNDLE win over Session.verify; pass verify= per request.
        def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            kwargs.setdefault("verify", ca)
            return super().request(method, url, *args, **kwargs)

    return _Verifying()


def _login(session, base_url: str) -> tuple[str, str]:
    basic = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
    resp = session.post(
        f"{base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    resp.raise_for_status()
    payload = resp.json()
    return payload["access_token"], payload["instance_url"]


def _soql(sobject: str) -> str:
    from salesforce_pipeline import extract
    from salesforce_pipeline.objects import OBJECTS as SPECS

    spec = SPECS[sobject]
    return extract.build_soql(spec, list(spec.default_fields), extract.FULL_REFRESH_WINDOW)


def _pg(url: str):
    import psycopg2

    return psycopg2.connect(url)


# ----------------------------------------------------------------------------- workers
def worker_pipeline(cfg: dict[str, Any]) -> dict[str, Any]:
    """sync_object for each object, one hook per object as the DAG's tasks do."""
    # Imported before the clock starts, as the naive baseline imports pandas before its clock.
    import msgspec  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    from salesforce_pipeline import slice_stage, sync
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.load_target import LoadTarget
    from salesforce_pipeline.objects import OBJECTS as SPECS
    from salesforce_pipeline.settings import PipelineSettings

    # Stage timings: wrappers around the transform and the COPY serialisation and the staging
    # COPY, summed over the slices' threads (they overlap each other and the HTTP waits).
    # "apply" is the short transaction under the object's lock (the summary's lock_seconds).
    stage = {"transform": 0.0, "serialize": 0.0, "database": 0.0, "apply": 0.0}
    original_transform = slice_stage.transform_columns
    original_prepare, original_copy = LoadTarget.prepare, LoadTarget.copy_into

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                stage[name] += time.perf_counter() - started

        return wrapper

    original_pages = SalesforcePipelineHook.bulk2_query_pages_resumable

    def recorded_pages(self, *args, **kwargs):
        stage["bulk_page"] = kwargs.get("max_records", 0)
        return original_pages(self, *args, **kwargs)

    slice_stage.transform_columns = timed("transform", original_transform)
    LoadTarget.prepare = timed("serialize", original_prepare)
    LoadTarget.copy_into = timed("database", original_copy)
    SalesforcePipelineHook.bulk2_query_pages_resumable = recorded_pages

    settings = PipelineSettings(**cfg.get("settings", {}))
    interval_start = datetime.fromisoformat(cfg["interval_start"])
    interval_end = datetime.fromisoformat(cfg["interval_end"])
    rss_before = _peak_rss_mb()
    conn = _pg(cfg["db_url"])
    totals = {"records": 0, "upserted": 0, "api_calls": 0, "logins": 0, "methods": []}
    meter = CpuMeter(cfg, conn)
    started = time.perf_counter()
    for sobject in OBJECTS:
        hook = SalesforcePipelineHook()
        summary = sync.sync_object(
            sync.SyncRequest(
                spec=SPECS[sobject],
                settings=settings,
                dag_run_id=cfg["run_id"],
                interval_start=interval_start,
                interval_end=interval_end,
                full_refresh=cfg["full_refresh"],
                method=cfg["method"],
            ),
            hook,
            conn,
            connect=lambda: _pg(cfg["db_url"]),  # the slices stage through connections of their own
        )
        stage["apply"] += summary.lock_seconds
        totals["records"] += summary.extracted
        totals["upserted"] += summary.upserted
        totals["api_calls"] += summary.api_calls
        totals["logins"] += hook.logins
        totals["methods"].append(f"{sobject}:{summary.method}/{summary.mode}")
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    conn.close()
    return {
        **totals,
        "seconds": seconds,
        "cpu": cpu,
        "transform_seconds": stage["transform"],
        "serialize_seconds": stage["serialize"],
        "database_seconds": stage["database"],
        "apply_seconds": stage["apply"],
        # The load stage as the naive baseline's to_sql is measured: the rows' serialisation plus
        # the database's work on them (which overlaps extraction in the pipeline).
        "load_seconds": stage["serialize"] + stage["database"],
        "bulk_page": stage.get("bulk_page", 0),
        "rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
    }


def worker_sweep(cfg: dict[str, Any]) -> dict[str, Any]:
    """The drift sweep over the loaded tables, one hook per object as the DAG's tasks do."""
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import OBJECTS as SPECS
    from salesforce_pipeline.settings import PipelineSettings
    from salesforce_pipeline.sweep import run_sweep

    settings = PipelineSettings(**cfg.get("settings", {}))
    conn = _pg(cfg["db_url"])
    totals = {
        "records": 0,
        "reread": 0,
        "written": 0,
        "differences": 0,
        "api_calls": 0,
        "logins": 0,
        "methods": [],
    }
    started = time.perf_counter()
    for sobject in OBJECTS:
        hook = SalesforcePipelineHook()
        summary = run_sweep(SPECS[sobject], settings, hook, conn, dag_run_id=cfg["run_id"])
        totals["records"] += summary.listed
        totals["reread"] += summary.reread
        totals["written"] += summary.written
        totals["differences"] += summary.differences
        totals["api_calls"] += summary.api_calls
        totals["logins"] += hook.logins
        totals["methods"].append(f"{sobject}:{summary.method}")
    seconds = time.perf_counter() - started
    conn.close()
    return {**totals, "seconds": seconds, "rss_mb": _peak_rss_mb()}


def worker_load_stage(cfg: dict[str, Any]) -> dict[str, Any]:
    """The load stage on its own, as the naive baseline's to_sql is timed on its own.

    A REST extraction's transformed chunks are held in memory first (so this worker's RSS is not
    the pipeline's); then the same chunks are loaded, one object per transaction as the pipeline
    does, three ways: straight COPY into empty tables (what a first load does), staging COPY +
    guarded upsert into empty tables, and the same over the loaded tables (every row rewritten).
    Each way is timed as the pipeline runs it (chunks serialised in this thread while the writer
    thread COPYs and upserts the one before) and all in one thread, as to_sql runs. The way in is
    picked here (the pipeline picks it by whether the table is empty), so that both ways can be
    timed into empty tables.
    """
    from salesforce_pipeline import extract
    from salesforce_pipeline.direct_copy import DirectCopy
    from salesforce_pipeline.guarded_upsert import GuardedUpsert
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.load_target import LoadTarget
    from salesforce_pipeline.objects import OBJECTS as SPECS
    from salesforce_pipeline.transform import transform_columns
    from salesforce_pipeline.writer import BackgroundWriter

    conn = _pg(cfg["db_url"])
    held: list[tuple[Any, list[str], list[Any]]] = []
    for sobject in OBJECTS:
        spec, hook = SPECS[sobject], SalesforcePipelineHook()
        plan = extract.plan_fields(spec, hook.describe_object(spec.name), (), hook.describe_object)
        soql = extract.build_soql(spec, plan.fields, extract.FULL_REFRESH_WINDOW)
        chunks = extract.rest_chunks(
            hook, soql, plan.fields, chunk_size=10_000, batch_size=2000, progress=extract.Progress(sobject)
        )
        frames = [
            transform_columns(chunk, plan.fields, plan.kinds, key_prefix=spec.key_prefix).frame
            for chunk in chunks
        ]
        held.append((spec, plan.columns, frames))
    rows = sum(len(frame) for _, _, frames in held for frame in frames)
    seconds: dict[str, float] = {}
    for threaded in (True, False):
        for path, truncate, way_in in (
            ("direct", True, DirectCopy),
            ("staged_empty", True, GuardedUpsert.begin),
            ("staged_loaded", False, GuardedUpsert.begin),
        ):
            label = path if threaded else f"{path}_one_thread"
            if truncate:
                with conn.cursor() as cur:
                    cur.execute("TRUNCATE salesforce.account, salesforce.contact")
                conn.commit()
            started = time.perf_counter()
            for spec, columns, frames in held:
                target = LoadTarget(
                    conn, spec, columns, schema="salesforce", dag_run_id=f"load-stage-{label}",
                    extracted_at=datetime.now(UTC),
                )  # fmt: skip
                way = way_in(target)
                prepared_chunks = (target.prepare(frame) for frame in frames)
                if threaded:
                    # As sync_object loads: serialise here, the database side in the writer thread.
                    with BackgroundWriter(f"load stage {label}") as writer:
                        for prepared in prepared_chunks:
                            if prepared is not None:
                                writer.submit(way.write, prepared)
                else:
                    for prepared in prepared_chunks:
                        if prepared is not None:
                            way.write(prepared)
                problem = way.verification_problem()
                if problem:
                    raise SystemExit(f"load stage {label}: {problem}")
                conn.commit()
            seconds[label] = time.perf_counter() - started
    conn.close()
    return {
        "records": rows,
        "seconds": seconds["staged_empty"],
        "stage_seconds": seconds,
        "rss_mb": _peak_rss_mb(),
        "api_calls": 0,
        "logins": 0,
    }


def worker_floor_rest(cfg: dict[str, Any]) -> dict[str, Any]:
    """queryAll + nextRecordsUrl pages over one keep-alive connection; bytes discarded."""
    session = _session(cfg["ca"])
    token, instance_url = _login(session, cfg["base_url"])
    headers = {"Authorization": f"Bearer {token}", "Sforce-Query-Options": "batchSize=2000"}
    records = calls = 0
    meter = CpuMeter(cfg)
    started = time.perf_counter()
    for sobject in OBJECTS:
        url = f"{instance_url}/services/data/v{API_VERSION}/queryAll/"
        params: dict[str, str] | None = {"q": _soql(sobject)}
        while url:
            resp = session.get(url, params=params, headers=headers)
            calls += 1
            resp.raise_for_status()
            body = resp.content
            records += body.count(b'"attributes":')
            found = _NEXT_RE.search(body)
            url, params = (f"{instance_url}{found.group(1).decode()}" if found else ""), None
    return {
        "records": records,
        "api_calls": calls,
        "logins": 1,
        "seconds": time.perf_counter() - started,
        "cpu": meter.stop(),
        "rss_mb": _peak_rss_mb(),
    }


def worker_floor_bulk(cfg: dict[str, Any]) -> dict[str, Any]:
    """One Bulk 2.0 queryAll job per object: create, poll, CSV pages; bytes discarded."""
    session = _session(cfg["ca"])
    token, instance_url = _login(session, cfg["base_url"])
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    jobs_url = f"{instance_url}/services/data/v{API_VERSION}/jobs/query"
    records = calls = 0
    meter = CpuMeter(cfg)
    started = time.perf_counter()
    for sobject in OBJECTS:
        body = {
            "operation": "queryAll",
            "query": _soql(sobject),
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = session.post(jobs_url, json=body, headers=headers)
        calls += 1
        job.raise_for_status()
        job_url = f"{jobs_url}/{job.json()['id']}"
        while True:
            calls += 1
            state = session.get(job_url, headers=headers).json()["state"]
            if state == "JobComplete":
                break
            if state in ("Failed", "Aborted"):
                raise SystemExit(f"bulk job {state}")
            time.sleep(cfg["poll_seconds"])
        locator = None
        while True:
            params: dict[str, Any] = {"maxRecords": cfg["max_records"]}
            if locator:
                params["locator"] = locator
            resp = session.get(f"{job_url}/results", params=params, headers={**headers, "Accept": "text/csv"})
            calls += 1
            resp.raise_for_status()
            records += int(resp.headers["Sforce-NumberOfRecords"])
            locator = resp.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                break
    return {
        "records": records,
        "api_calls": calls,
        "logins": 1,
        "seconds": time.perf_counter() - started,
        "cpu": meter.stop(),
        "rss_mb": _peak_rss_mb(),
    }


def worker_floor_copy(cfg: dict[str, Any]) -> dict[str, Any]:
    """COPY the prepared files into empty tables shaped like the targets (indexes included)."""
    conn = _pg(cfg["db_url"])
    rows = 0
    meter = CpuMeter(cfg, conn)
    started = time.perf_counter()
    with conn.cursor() as cur:
        for sobject, path in cfg["files"].items():
            table = sobject.lower()
            cur.execute(f"DROP TABLE IF EXISTS floor_{table}")
            cur.execute(f"CREATE TABLE floor_{table} (LIKE salesforce.{table} INCLUDING ALL)")
            with open(path, encoding="utf-8") as source:
                cur.copy_expert(f"COPY floor_{table} FROM STDIN", source)
            rows += cur.rowcount
    conn.commit()
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    conn.close()
    return {
        "records": rows,
        "seconds": seconds,
        "cpu": cpu,
        "rss_mb": _peak_rss_mb(),
        "api_calls": 0,
        "logins": 0,
    }


def worker_naive(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a user writes first: make_query (everything in memory), a DataFrame, to_sql."""
    import pandas as pd
    import sqlalchemy
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

    session = _session(cfg["ca"])
    token, _ = _login(session, cfg["base_url"])
    engine = sqlalchemy.create_engine(cfg["db_url"].replace("postgresql://", "postgresql+psycopg2://", 1))
    fetch = to_sql = 0.0
    records = 0

    def org_usage() -> int:  # the emulator's own count of API calls (admin reads are not counted)
        return session.get(f"{cfg['base_url']}/__admin/limits").json()["api_usage"]["used"]

    used_before = org_usage()
    started = time.perf_counter()
    for sobject in OBJECTS:
        # session_id mode with instance_url from the connection (extra), as the provider documents.
        hook = SalesforceHook(salesforce_conn_id="salesforce_naive", session_id=token)
        step = time.perf_counter()
        result = hook.make_query(_soql(sobject), include_deleted=True)
        frame = pd.DataFrame(result["records"]).drop(columns="attributes")
        del result
        fetch += time.perf_counter() - step
        step = time.perf_counter()
        frame.to_sql(sobject.lower(), engine, schema="naive", if_exists="replace", index=False)
        to_sql += time.perf_counter() - step
        records += len(frame)
        del frame
    seconds = time.perf_counter() - started
    engine.dispose()
    calls = org_usage() - used_before
    return {
        "records": records,
        "seconds": seconds,
        "fetch_seconds": fetch,
        "load_seconds": to_sql,
        "rss_mb": _peak_rss_mb(),
        "api_calls": calls,
        "logins": 1,
    }


WORKERS = {
    "pipeline": worker_pipeline,
    "floor_rest": worker_floor_rest,
    "floor_bulk": worker_floor_bulk,
    "floor_copy": worker_floor_copy,
    "load_stage": worker_load_stage,
    "naive": worker_naive,
    "sweep": worker_sweep,
}


def run_worker(name: str, cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The variant `name` in a fresh subprocess of this script, `cfg` on its stdin; its result is the last
    line of its stdout. A failed worker ends the bench with its stderr's tail."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", name],
        input=json.dumps(cfg),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- orchestration
class Emulator:
    """The emulator as a process of its own (`python -m salesforce_emulator`), so its CPU and RSS are not
    counted in the workers'; its URL, CA file and start-up time."""

    def __init__(self, accounts: int, contacts: int, seed: int) -> None:
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "salesforce_emulator", "--port", "0", "--accounts", str(accounts),
             "--contacts", str(contacts), "--seed", str(seed), "--daily-limit", "50000000"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise SystemExit(f"emulator did not start: {line!r}")
        _, self.base_url, ca = line.split(" ")
        self.ca = ca.removeprefix("ca=")
        self.startup = time.perf_counter() - started
        self.http = _session(self.ca)

    def admin(self, method: str, path: str, payload: Any = None) -> Any:
        """A call to the emulator's /__admin API (clock, records, faults); its JSON answer."""
        resp = self.http.request(method, f"{self.base_url}/__admin/{path}", json=payload)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        """SIGTERM the emulator and wait for it to exit."""
        self.proc.terminate()
        self.proc.wait(timeout=30)


def worker_env(emulator: Emulator, airflow_home: str) -> dict[str, str]:
    """The workers' environment: a throwaway AIRFLOW_HOME, the pipeline's connection (salesforce_default)
    and the provider's (salesforce_naive), both at the emulator; the caller's own AIRFLOW_CONN_* dropped."""
    extra = {
        "domain": emulator.base_url,
        "ca_bundle": emulator.ca,
        "auth_type": "client_credentials",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        AIRFLOW_HOME=airflow_home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_SALESFORCE_DEFAULT=json.dumps({"conn_type": "customerscore_salesforce", "extra": extra}),
        AIRFLOW_CONN_SALESFORCE_NAIVE=json.dumps(
            {"conn_type": "salesforce", "extra": {"instance_url": emulator.base_url}}
        ),
        REQUESTS_CA_BUNDLE=emulator.ca,  # for the provider hook, which has no CA setting
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    )
    return env


def export_tables(db_url: str, directory: str) -> dict[str, str]:
    """The loaded tables as COPY text files: the rows the floor COPY loads."""
    conn = _pg(db_url)
    files = {}
    with conn.cursor() as cur:
        for sobject in OBJECTS:
            path = os.path.join(directory, f"{sobject.lower()}.copy")
            with open(path, "w", encoding="utf-8") as sink:
                cur.copy_expert(f"COPY salesforce.{sobject.lower()} TO STDOUT", sink)
            files[sobject] = path
    conn.close()
    return files


def reset_warehouse(db_url: str) -> None:
    """Empty tables for the next load: the pipeline's schema `salesforce` made anew, the naive baseline's
    `naive` emptied."""
    conn = _pg(db_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS salesforce CASCADE")
        cur.execute("DROP SCHEMA IF EXISTS naive CASCADE")
        cur.execute("CREATE SCHEMA naive")
    conn.close()
    from salesforce_pipeline.warehouse import apply_schema

    conn = _pg(db_url)
    apply_schema(conn, "salesforce")
    conn.close()


def table_digest(db_url: str) -> dict[str, str]:
    """md5 of every data column of every row (lineage excluded), to show REST and Bulk agree."""
    conn = _pg(db_url)
    digests = {}
    with conn.cursor() as cur:
        for table in ("account", "contact"):
            cur.execute(
                "SELECT md5(string_agg((to_jsonb(t) - '_extracted_at' - '_dag_run_id')::text, "
                f"E'\\n' ORDER BY t.id)) FROM salesforce.{table} t"
            )
            digests[table] = cur.fetchone()[0]
    conn.close()
    return digests


def change_contacts(emulator: Emulator, share: float, stamp: datetime) -> int:
    """Update `share` of the Contacts over the admin HTTP API, stamped inside the next window."""
    ids = emulator.admin("GET", "records/Contact/ids")
    step = max(1, round(1 / share))
    chosen = ids[::step]
    for serial, record_id in enumerate(chosen):
        emulator.admin(
            "PATCH",
            f"records/Contact/{record_id}",
            {"fields": {"Title": f"Changed {serial}"}, "system_modstamp": stamp.isoformat()},
        )
    return len(chosen)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every variant in turn on one emulator and a bench database of its own (dropped at the end), then the
    peak-RSS reference if asked for; the workers' results by label."""
    import psycopg2

    admin_url = os.environ.get("WAREHOUSE_ADMIN_URL")
    if not admin_url:
        raise SystemExit("WAREHOUSE_ADMIN_URL is not set; run `make bench`")
    db_name = f"sfpipe_bench_{secrets.token_hex(4)}"
    db_url = f"{admin_url.rpartition('/')[0]}/{db_name}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db_name}"')
    print(
        f"bench database {db_name}; starting the emulator ({args.accounts:,} + {args.contacts:,})", flush=True
    )
    emulator = Emulator(args.accounts, args.contacts, args.seed)
    airflow_home = tempfile.mkdtemp(prefix="sfpipe-bench-airflow-")
    work = tempfile.mkdtemp(prefix="sfpipe-bench-")
    results: dict[str, Any] = {"emulator_startup": emulator.startup}
    try:
        env = worker_env(emulator, airflow_home)
        now = datetime.fromisoformat(emulator.admin("GET", "clock")["now"])
        base = {
            "db_url": db_url,
            "emulator_pid": emulator.proc.pid,
            "base_url": emulator.base_url,
            "ca": emulator.ca,
            "interval_start": (now - timedelta(days=1)).isoformat(),
            "interval_end": now.isoformat(),
            "settings": {"bulk_poll_seconds": args.poll_seconds},
        }

        def step(label: str, name: str, **cfg: Any) -> dict[str, Any]:
            print(f"  {label} ...", end="", flush=True)
            result = run_worker(name, {**base, **cfg}, env)
            print(f" {result['seconds']:.1f} s, {result['records']:,} records", flush=True)
            results[label] = result
            return result

        step("warm-up (emulator render cache)", "floor_rest")
        if args.page_latency_ms:
            # A real org takes time to produce each page; the emulator answers at once unless
            # told to wait. Every variant below (floors and naive included) gets the same wait.
            emulator.admin(
                "POST",
                "faults",
                {
                    "kind": "delay",
                    "seconds": args.page_latency_ms / 1000,
                    "count": None,
                    "endpoint": list(PAGE_ENDPOINTS),
                },
            )
        step("floor_rest", "floor_rest")
        reset_warehouse(db_url)
        step("pipeline_rest", "pipeline", method="rest", full_refresh=True, run_id="bench-rest")
        results["digest_rest"] = table_digest(db_url)
        files = export_tables(db_url, work)
        # The same full refresh again, now over loaded tables: the staging COPY + guarded upsert
        # path (every row is rewritten: its stamp equals the stored one).
        step("pipeline_rest_guarded", "pipeline", method="rest", full_refresh=True, run_id="bench-rest-again")
        results["digest_rest_guarded"] = table_digest(db_url)
        step("floor_copy", "floor_copy", files=files)
        reset_warehouse(db_url)
        pipeline_bulk = step(
            "pipeline_bulk", "pipeline", method="bulk2", full_refresh=True, run_id="bench-bulk",
            settings={**base["settings"], **({"chunk_size": args.chunk_size} if args.chunk_size else {})},
        )  # fmt: skip
        results["digest_bulk"] = table_digest(db_url)
        # The floor reads Bulk pages of the size the pipeline asked for.
        max_records = pipeline_bulk["bulk_page"]
        step("floor_bulk", "floor_bulk", poll_seconds=args.poll_seconds, max_records=max_records)
        results["bulk_page"] = max_records
        if not args.skip_naive:
            step("naive", "naive")
            # The load stage alone, to set beside to_sql; it leaves the tables loaded as before.
            step("load_stage", "load_stage")

        # Incremental: the next day's window (plus the 10-minute lookback) after the full load.
        window_start, window_end = now + timedelta(hours=1), now + timedelta(days=1)
        incremental = {
            "interval_start": window_start.isoformat(),
            "interval_end": window_end.isoformat(),
            "full_refresh": False,
            "method": "auto",
        }
        step("incremental_none", "pipeline", run_id="bench-inc-0", **incremental)
        changed = change_contacts(emulator, 0.01, window_start + timedelta(minutes=30))
        results["changed"] = changed
        step("incremental_1pct", "pipeline", run_id="bench-inc-1", **incremental)
        # The drift sweep: 100 Contacts committed "late" (stamped a week back, so no incremental
        # window saw them) for it to find among the whole object's Ids.
        for serial in range(100):
            emulator.admin(
                "POST",
                "records/Contact",
                {
                    "fields": {"LastName": f"Late {serial}"},
                    "system_modstamp": (now - timedelta(days=7)).isoformat(),
                },
            )
        results["late"] = 100
        step("sweep", "sweep", run_id="bench-sweep")
    finally:
        emulator.stop()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()

    if args.rss_reference:
        results["rss_reference"] = rss_reference(args)
    return results


def rss_reference(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of the pipeline's full loads at the reference size (100,000 Contacts), same run."""
    import psycopg2

    contacts = args.rss_reference
    admin_url = os.environ["WAREHOUSE_ADMIN_URL"]
    db_name = f"sfpipe_bench_{secrets.token_hex(4)}"
    db_url = f"{admin_url.rpartition('/')[0]}/{db_name}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db_name}"')
    print(f"reference size for peak RSS: {contacts // 10:,} + {contacts:,}", flush=True)
    emulator = Emulator(contacts // 10, contacts, args.seed)
    out = {"contacts": contacts}
    try:
        env = worker_env(emulator, tempfile.mkdtemp(prefix="sfpipe-bench-airflow-"))
        now = datetime.fromisoformat(emulator.admin("GET", "clock")["now"])
        cfg = {
            "db_url": db_url,
            "emulator_pid": emulator.proc.pid,
            "interval_start": (now - timedelta(days=1)).isoformat(),
            "interval_end": now.isoformat(),
            "settings": {"bulk_poll_seconds": args.poll_seconds},
            "full_refresh": True,
        }
        for method in ("rest", "bulk2"):
            reset_warehouse(db_url)
            result = run_worker("pipeline", {**cfg, "method": method, "run_id": f"ref-{method}"}, env)
            out[method] = result["rss_mb"]
            print(f"  pipeline {method}: peak RSS {result['rss_mb']:.0f} MB", flush=True)
    finally:
        emulator.stop()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        admin.close()
    return out


# ----------------------------------------------------------------------------- report
def cpu_table(res: dict[str, Any]) -> list[str]:
    """CPU seconds per process for the full loads and their floors, and what 2 cores allow."""
    cores = os.cpu_count() or 1
    out = [
        f"CPU seconds (user + system) while each ran; with {cores} cores, no schedule of that work can "
        f"finish in less than total / {cores}:",
        "",
        f"| variant | wall s | this process | its Postgres backend | emulator | total | total / {cores} |",
        "|---|---|---|---|---|---|---|",
    ]

    def line(name: str, wall: float, cpu: dict[str, float]) -> None:
        total = sum(cpu.values())
        out.append(
            f"| {name} | {wall:.1f} | {cpu.get('self', 0):.1f} | {cpu.get('postgres', 0):.1f} | "
            f"{cpu.get('emulator', 0):.1f} | {total:.1f} | {total / cores:.1f} |"
        )

    for key, name in (
        ("pipeline_rest", "pipeline full load, REST"),
        ("pipeline_bulk", "pipeline full load, Bulk 2.0"),
        ("pipeline_rest_guarded", "pipeline full refresh over loaded tables, REST"),
    ):
        line(name, res[key]["seconds"], res[key]["cpu"])
    copy = res["floor_copy"]
    for key, name in (
        ("floor_rest", "floor REST (pages, then COPY)"),
        ("floor_bulk", "floor Bulk (pages, then COPY)"),
    ):
        pages = res[key]
        merged = {k: pages["cpu"].get(k, 0) + copy["cpu"].get(k, 0) for k in ("self", "postgres", "emulator")}
        line(name, pages["seconds"] + copy["seconds"], merged)
    return out


def _row(name: str, r: dict[str, Any], note: str = "") -> str:
    rate = r["records"] / r["seconds"] if r["seconds"] else 0
    calls = f"{r['api_calls']:,} + {r['logins']} login" if "api_calls" in r else "—"
    return f"| {name} | {r['records']:,} | {r['seconds']:.1f} | {rate:,.0f} | {r['rss_mb']:.0f} | {calls} | {note} |"


def report(args: argparse.Namespace, res: dict[str, Any]) -> str:
    """The Markdown report: the machine, every variant's row, whether the loads agree, CPU seconds, and the
    targets with PASS/MISS."""
    lines = []
    cores = os.cpu_count()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines.append(
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {cores} cores, "
        f"{memory_gib:.0f} GiB, Python {platform.python_version()}; {args.accounts:,} Accounts + "
        f"{args.contacts:,} Contacts (Account and Contact extracted, default fields, queryAll; "
        f"emulator start-up {res['emulator_startup']:.0f} s). Bulk page: {res['bulk_page']:,} records. "
        + (
            f"The emulator waited {args.page_latency_ms:g} ms before each REST query page and Bulk results page "
            "(`--page-latency-ms`), for every variant."
            if args.page_latency_ms
            else "The emulator answered every page at once (no `--page-latency-ms`)."
        )
    )
    lines.append("")
    lines.append("| variant | records | seconds | records/s | peak RSS MB | API calls | notes |")
    lines.append("|---|---|---|---|---|---|---|")
    rest, bulk = res["pipeline_rest"], res["pipeline_bulk"]
    fr, fb, fc = res["floor_rest"], res["floor_bulk"], res["floor_copy"]
    floor_rest = fr["seconds"] + fc["seconds"]
    floor_bulk = fb["seconds"] + fc["seconds"]

    def stages(r: dict[str, Any]) -> str:
        # Summed over the slices' threads, which overlap each other and the HTTP waits.
        return (
            f"slices' threads: transform {r['transform_seconds']:.1f} s, serialize {r['serialize_seconds']:.1f} s, "
            f"staging COPY {r['database_seconds']:.1f} s; apply under the lock {r['apply_seconds']:.1f} s; "
            f"RSS after imports {r['rss_before_mb']:.0f} MB"
        )

    guarded = res["pipeline_rest_guarded"]
    lines.append(_row("pipeline full load into empty tables, REST", rest, stages(rest)))
    lines.append(_row("pipeline full load into empty tables, Bulk 2.0", bulk, stages(bulk)))
    lines.append(
        _row(
            "pipeline full refresh over the loaded tables, REST (staging + guarded upsert)",
            guarded,
            stages(guarded),
        )
    )
    lines.append(_row("floor: REST pages, bytes discarded", fr))
    lines.append(_row("floor: Bulk 2.0 pages, bytes discarded", fb))
    lines.append(_row("floor: COPY of the same rows into empty tables", fc, "indexes included"))
    lines.append(
        _row(
            "floor REST = pages + COPY",
            {**fr, "seconds": floor_rest, "rss_mb": max(fr["rss_mb"], fc["rss_mb"])},
        )
    )
    lines.append(
        _row(
            "floor Bulk = pages + COPY",
            {**fb, "seconds": floor_bulk, "rss_mb": max(fb["rss_mb"], fc["rss_mb"])},
        )
    )
    naive = res.get("naive")
    if naive:
        lines.append(
            _row(
                "naive: make_query + DataFrame + to_sql",
                naive,
                f"fetch+DataFrame {naive['fetch_seconds']:.1f} s, to_sql {naive['load_seconds']:.1f} s",
            )
        )
    stage = res.get("load_stage")
    if stage:
        times = stage["stage_seconds"]
        lines.append(
            _row(
                "load stage alone: staging COPY + guarded upsert, empty tables",
                stage,
                f"all in one thread {times['staged_empty_one_thread']:.1f} s; same chunks COPYed straight into "
                f"empty tables {times['direct']:.1f} s (one thread {times['direct_one_thread']:.1f} s); "
                f"staging + upsert over the loaded tables {times['staged_loaded']:.1f} s (one thread "
                f"{times['staged_loaded_one_thread']:.1f} s); RSS holds every chunk (not the pipeline's)",
            )
        )
    inc0, inc1 = res["incremental_none"], res["incremental_1pct"]
    lines.append(_row("incremental, nothing changed", inc0, ", ".join(inc0["methods"])))
    lines.append(
        _row(f"incremental, 1% of Contacts changed ({res['changed']:,})", inc1, ", ".join(inc1["methods"]))
    )
    sweep = res["sweep"]
    lines.append(
        _row(
            f"drift sweep, both objects ({res['late']} Contacts committed late)",
            sweep,
            f"{', '.join(sweep['methods'])}; found {sweep['differences']}, re-read {sweep['reread']}, "
            f"wrote {sweep['written']}",
        )
    )
    same = res["digest_rest"] == res["digest_bulk"]
    again = res["digest_rest"] == res["digest_rest_guarded"]
    lines.append("")
    lines.append(f"REST and Bulk 2.0 loads identical (md5 of every row, lineage excluded): {same}")
    lines.append(f"Full refresh over the loaded tables left them identical (same md5): {again}")
    lines.append("")
    lines.extend(cpu_table(res))
    lines.append("")

    # Targets, shown honestly.
    targets: list[tuple[str, str, bool | None]] = []
    ratio = rest["seconds"] / floor_rest
    targets.append(("full load REST within 1.3× of its floor", f"{ratio:.2f}×", ratio <= 1.3))
    ratio = bulk["seconds"] / floor_bulk
    targets.append(("full load Bulk 2.0 within 1.5× of its floor", f"{ratio:.2f}×", ratio <= 1.5))
    if naive:
        # The load stage alone (serialising the rows + COPY + upsert), as to_sql is timed alone:
        # as the pipeline runs it (the writer thread), and all in one thread.
        stage_seconds = res["load_stage"]["stage_seconds"]
        to_sql = naive["load_seconds"]

        def versus(path: str) -> tuple[float, str]:
            threaded, single = stage_seconds[path], stage_seconds[f"{path}_one_thread"]
            return to_sql / threaded, (
                f"{to_sql / threaded:.1f}× ({threaded:.1f} s vs {to_sql:.1f} s); "
                f"all in one thread {to_sql / single:.1f}× ({single:.1f} s)"
            )

        speed, text = versus("staged_empty")
        targets.append(
            (
                "load stage (staging COPY + upsert, empty tables) ≥ 5× faster than to_sql of the same rows",
                text,
                speed >= 5,
            )
        )
        targets.append(
            (
                "load stage of a first load (COPY straight into the empty tables) vs to_sql",
                versus("direct")[1],
                None,
            )
        )
        targets.append(
            (
                "load stage over the loaded tables (every row rewritten through the guard) vs to_sql",
                versus("staged_loaded")[1],
                None,
            )
        )
        speed = naive["seconds"] / rest["seconds"]
        targets.append(
            (
                f"end to end ≥ 1.5× faster than naive at {args.contacts:,} contacts (REST)",
                f"{speed:.1f}× (Bulk {naive['seconds'] / bulk['seconds']:.1f}×)",
                speed >= 1.5,
            )
        )
    peak = max(rest["rss_mb"], bulk["rss_mb"])
    reference = res.get("rss_reference")
    if reference:
        ref_peak = max(reference["rest"], reference["bulk2"])
        targets.append(
            (
                f"peak RSS < 300 MB at {args.contacts:,} contacts",
                f"{peak:.0f} MB",
                peak < 300,
            )
        )
        growth = peak / ref_peak - 1
        targets.append(
            (
                f"peak RSS within 25% of the {reference['contacts']:,}-contact peak",
                f"{peak:.0f} MB vs {ref_peak:.0f} MB ({growth:+.0%})",
                growth <= 0.25,
            )
        )
    else:
        targets.append(
            (
                f"peak RSS at {args.contacts:,} contacts (< 300 MB target is for 1,000,000)",
                f"{peak:.0f} MB",
                None,
            )
        )
    bulk_calls = bulk["api_calls"]
    targets.append(
        (
            "Bulk full load in ≤ 40 API calls"
            + (
                ""
                if args.contacts == 1_000_000
                else f" (target for 1,000,000 contacts; here {args.contacts:,})"
            ),
            f"{bulk_calls} + {bulk['logins']} logins",
            bulk_calls <= 40,
        )
    )
    per_object = inc0["api_calls"] / len(OBJECTS)
    targets.append(
        (
            # describe, the window's COUNT(), one page, and the live COUNT() that records drift
            "incremental with no changes ≤ 4 calls per object plus the login",
            f"{per_object:.1f} per object + {inc0['logins'] / len(OBJECTS):.0f} login each",
            per_object <= 4,
        )
    )
    lines.append("| target | measured | result |")
    lines.append("|---|---|---|")
    for name, measured, ok in targets:
        verdict = "—" if ok is None else ("PASS" if ok else "MISS")
        lines.append(f"| {name} | {measured} | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    """The bench, or with `--worker` one measured variant, its result printed as a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, help="default: contacts / 10")
    parser.add_argument("--large", action="store_true", help="1,000,000 contacts + 100,000 accounts")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--chunk-size", type=int, help="pipeline chunk_size (default: the setting's default)")
    parser.add_argument("--poll-seconds", type=float, default=0.2, help="Bulk job poll interval (both sides)")
    parser.add_argument(
        "--page-latency-ms",
        type=float,
        default=0.0,
        help="make the emulator wait this long before each REST query page and Bulk results page",
    )
    parser.add_argument("--skip-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument(
        "--rss-reference",
        type=int,
        help="also measure peak RSS at this many contacts (default with --large: 100,000)",
    )
    parser.add_argument("--json", help="also write the raw measurements here")
    args = parser.parse_args()

    if args.worker:
        cfg = json.loads(sys.stdin.read())
        profile_dir = os.environ.get("PIPELINE_BENCH_PROFILE")
        if profile_dir:
            # cProfile slows the worker down; its figures are for finding hot spots only.
            import cProfile

            profiler = cProfile.Profile()
            result = profiler.runcall(WORKERS[args.worker], cfg)
            profiler.dump_stats(os.path.join(profile_dir, f"{args.worker}-{cfg.get('run_id', 'x')}.prof"))
        else:
            result = WORKERS[args.worker](cfg)
        print(json.dumps(result))
        return 0
    if args.large:
        args.contacts = 1_000_000
        if args.rss_reference is None:
            args.rss_reference = 100_000
    if args.accounts is None:
        args.accounts = args.contacts // 10
    results = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print()
    print(report(args, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
