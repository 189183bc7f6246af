"""Benchmark for issue #18: a large first load (parallel slices, checkpoints) against its floors.

Run: ``make bench-large-load`` (1,000,000 Contacts + 100,000 Accounts) or
``python bench/large_load_bench.py --quick`` (100,000 Contacts).

One run, one emulator (its own process), one throwaway database; every variant in a fresh
subprocess of this script (``--worker``), as bench/pipeline_bench.py does, whose floors, emulator,
warehouse helpers and md5 digest this reuses. Variants: the floors (REST pages one after another
over one keep-alive connection, Bulk 2.0 pages, COPY of the same rows into empty tables); the
pipeline's full load by REST with parallel slices, the same with ``max_parallel_slices: 1``, by Bulk
2.0; then, with every page delayed (``--page-latency-ms``), the REST floor and the parallel REST
load again, and a Contact load killed at about 80% of its pages and retried under the same DAG run
id. Targets are printed next to the figures with PASS/MISS; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline_bench as pb

ROOT = pb.ROOT
# Emulator endpoint kinds that serve records (COUNT() queries count too: a few per load).
PAGE_KINDS = ("query", "query_all", "query_more", "bulk2_results")
SAMPLE_SECONDS = 0.1


# ----------------------------------------------------------------------------- measuring a worker
def _peak_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM, KiB); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    """The process's child processes, from its threads' ``/proc/<pid>/task/<tid>/children``: a few
    small reads, where psutil's ``children()`` reads the stat file of every process on the machine."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(OSError),
                open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f,
            ):
                found += [int(child) for child in f.read().split()]
    return found


class Meter:
    """CPU seconds between start and stop of this process (all threads), of its child processes, of
    every Postgres backend connected to the bench database, and of the emulator; and memory: this
    process's peak RSS, each child's (VmHWM) and the peak of their sum at one moment.

    Children's CPU is exact (RUSAGE_CHILDREN once reaped, psutil while alive); a thread samples the
    children's RSS and the backends' CPU every SAMPLE_SECONDS, so a backend that ends between two
    samples loses the CPU of its last interval. RSS counts shared pages in each process.

    The sampling thread runs inside the process it measures, beside the load's threads: it reads
    only the /proc files of the processes it follows (a backend's command line once), so that it
    takes little of the load's CPU and GIL. Scanning every process ten times a second took about
    0.9 CPU-s of a 20 s load, and the floors, which are not sampled, never paid it.
    """

    def __init__(self, cfg: dict[str, Any], conn: Any) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._emulator = psutil.Process(cfg["emulator_pid"])
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid(), current_database()")
            backend, self._db = cur.fetchone()
        conn.commit()
        self._postmaster = psutil.Process(backend).parent().pid
        self._followed: dict[int, Any] = {}  # pid -> psutil.Process, children and own backends
        self._not_ours: set[int] = set()  # backends of other databases
        self._backends: dict[int, float] = {}  # pid -> CPU seconds when last seen
        self._child_peak: dict[int, int] = {}  # pid -> VmHWM KiB
        self.sum_peak_kib = 0
        self._sample()
        self._base = dict(self._backends)
        self._start = (
            self._own_cpu(),
            self._own_cpu(resource.RUSAGE_CHILDREN) + self._alive_cpu,
            self._times(self._emulator),
        )
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench meter", daemon=True)
        self._thread.start()

    @staticmethod
    def _own_cpu(who: int = resource.RUSAGE_SELF) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    @staticmethod
    def _times(process: Any) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def _process(self, pid: int) -> Any:
        if pid not in self._followed:
            self._followed[pid] = self._psutil.Process(pid)
        return self._followed[pid]

    def _descendants(self) -> list[int]:
        found, todo = [], _children(self._me.pid)
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += _children(pid)
        return found

    def _ours(self, pid: int) -> bool:
        """Whether a backend serves the bench database (its title: postgres: user db host state)."""
        if pid in self._not_ours:
            return False
        words = " ".join(self._process(pid).cmdline()).split()
        if len(words) < 3:  # not titled yet: look again next time
            return False
        if words[2] != self._db:
            self._not_ours.add(pid)
            return False
        return True

    def _sample(self) -> None:
        errors = (self._psutil.NoSuchProcess, self._psutil.AccessDenied)
        total_kib, self._alive_cpu = self._me.memory_info().rss // 1024, 0.0
        for pid in self._descendants():
            try:
                child = self._process(pid)
                total_kib += child.memory_info().rss // 1024
                self._alive_cpu += self._times(child)  # a reaped child's CPU is in RUSAGE_CHILDREN
            except errors:
                continue
            self._child_peak[pid] = max(self._child_peak.get(pid, 0), _peak_kib(pid))
        self.sum_peak_kib = max(self.sum_peak_kib, total_kib)
        for pid in _children(self._postmaster):
            try:
                if self._ours(pid):
                    self._backends[pid] = self._times(self._process(pid))
            except errors:
                continue

    def _run(self) -> None:
        while not self._done.wait(SAMPLE_SECONDS):
            self._sample()

    def stop(self) -> dict[str, Any]:
        """CPU seconds per role (`self`, `children`, `postgres`, `emulator`) and the memory figures."""
        self._done.set()
        self._thread.join()
        self._sample()
        cpu = {
            "self": self._own_cpu() - self._start[0],
            "children": self._own_cpu(resource.RUSAGE_CHILDREN) + self._alive_cpu - self._start[1],
            "postgres": sum(seconds - self._base.get(pid, 0.0) for pid, seconds in self._backends.items()),
            "emulator": self._times(self._emulator) - self._start[2],
        }
        return {
            "cpu": {role: round(seconds, 2) for role, seconds in cpu.items()},
            "rss_mb": pb._peak_rss_mb(),
            "children": len(self._child_peak),
            "children_peak_mb": sum(self._child_peak.values()) / 1024,
            "sum_peak_mb": self.sum_peak_kib / 1024,
        }


# ----------------------------------------------------------------------------- the worker
def worker_load(cfg: dict[str, Any]) -> dict[str, Any]:
    """sync_object for each object of cfg["objects"], one hook each as the DAG's tasks do, slice
    workers staging through connections of their own (`connect`)."""
    import msgspec  # noqa: F401  (imported before the clock starts, as in pipeline_bench)
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    from salesforce_pipeline import sync
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import OBJECTS as SPECS
    from salesforce_pipeline.settings import PipelineSettings

    settings = PipelineSettings(**cfg["settings"])
    admin = pb._session(cfg["ca"])

    def served() -> tuple[int, int]:  # the emulator's record pages served and API calls counted
        state = admin.get(f"{cfg['base_url']}/__admin/counters").json()
        return sum(state["counters"].get(k, 0) for k in PAGE_KINDS), state["api_usage"]["used"]

    conn = pb._pg(cfg["db_url"])
    meter = Meter(cfg, conn)
    objects: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for sobject in cfg["objects"]:
        hook = SalesforcePipelineHook()
        pages, calls = served()
        request = sync.SyncRequest(
            spec=SPECS[sobject], settings=settings, dag_run_id=cfg["run_id"], full_refresh=True,
            interval_start=datetime.fromisoformat(cfg["interval_start"]),
            interval_end=datetime.fromisoformat(cfg["interval_end"]),
            method=cfg["method"], try_number=cfg.get("try_number"),
        )  # fmt: skip
        summary = sync.sync_object(request, hook, conn, connect=partial(pb._pg, cfg["db_url"]))
        pages_after, calls_after = served()
        objects[sobject] = {
            "records": summary.extracted, "seconds": summary.seconds, "method": summary.method,
            "api_calls": summary.api_calls, "logins": hook.logins, "org_calls": calls_after - calls,
            "pages": pages_after - pages, "slices": summary.slices, "slices_resumed": summary.slices_resumed,
            "lock_seconds": summary.lock_seconds, "staging_seconds": summary.staging_seconds,
            "merge_seconds": summary.merge_seconds,
        }  # fmt: skip
    seconds = time.perf_counter() - started
    measured = meter.stop()
    conn.close()
    totals = {k: sum(o[k] for o in objects.values()) for k in ("records", "api_calls", "logins", "org_calls")}
    return {**totals, **measured, "seconds": seconds, "objects": objects}


WORKERS = {"load": worker_load}


def spawn(name: str, cfg: dict[str, Any], env: dict[str, str], logs: str) -> subprocess.Popen[str]:
    """The worker `name` started in a process group of its own, `cfg` on its stdin, output to files."""
    out = open(os.path.join(logs, f"{cfg['label']}.out"), "w+")  # noqa: SIM115 (read back by finish)
    err = open(os.path.join(logs, f"{cfg['label']}.err"), "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", name],
        stdin=subprocess.PIPE, stdout=out, stderr=err, text=True, env=env, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(cfg))
    proc.stdin.close()
    return proc


def finish(proc: subprocess.Popen[str], cfg: dict[str, Any], logs: str) -> dict[str, Any]:
    """The worker's result (the last line of its stdout). A failed worker ends the bench, and so does
    one still running after cfg["timeout"] seconds, with the bench database's sessions that wait."""
    try:
        proc.wait(timeout=cfg["timeout"])
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        conn = pb._pg(cfg["db_url"])
        with conn.cursor() as cur:
            cur.execute("SELECT pid, pg_blocking_pids(pid), state, wait_event_type, left(query, 200) "
                        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")  # fmt: skip
            sessions = "\n".join(map(str, cur.fetchall()))
        conn.close()
        raise SystemExit(
            f"worker {cfg['label']} still ran after {cfg['timeout']} s; sessions:\n{sessions}"
        ) from None
    out, err = (Path(logs, f"{cfg['label']}.{ext}").read_text() for ext in ("out", "err"))
    if proc.returncode != 0:
        raise SystemExit(f"worker {cfg['label']} failed:\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- orchestration
def set_latency(emulator: pb.Emulator, ms: float) -> None:
    """Every REST query page and Bulk results page waits `ms` first (0: answered at once), floors and
    pipeline alike: the emulator's latency model (docs/emulator.md), for every org."""
    emulator.admin("PUT", "latency", {"page_latency_ms": ms})


def served_pages(emulator: pb.Emulator) -> int:
    """Record pages (and COUNT() queries) the emulator has served so far."""
    counters = emulator.admin("GET", "counters")["counters"]
    return sum(counters.get(k, 0) for k in PAGE_KINDS)


def kill_and_retry(emulator: pb.Emulator, env: dict[str, str], logs: str, base: dict[str, Any],
                   fresh: dict[str, Any], share: float) -> dict[str, Any]:  # fmt: skip
    """A Contact load SIGKILLed once the emulator has served `share` of the pages the uninterrupted
    load read, then retried in a fresh worker under the same DAG run id."""
    cfg = {**base, "objects": ["Contact"], "method": "rest", "run_id": "large-kill", "try_number": 1}
    target = fresh["objects"]["Contact"]["pages"]
    pages0, calls0 = served_pages(emulator), emulator.admin("GET", "limits")["api_usage"]["used"]
    print(f"  kill at ~{share:.0%} of {target:,} pages ...", end="", flush=True)
    started = time.perf_counter()
    proc = spawn("load", {**cfg, "label": "killed"}, env, logs)
    while proc.poll() is None and served_pages(emulator) - pages0 < share * target:
        if time.perf_counter() - started > cfg["timeout"]:
            break
        time.sleep(0.05)
    if proc.poll() is not None or served_pages(emulator) - pages0 < share * target:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise SystemExit(f"the load ended (rc {proc.returncode}) or hung before {share:.0%} of its pages")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = {
        "seconds": time.perf_counter() - started,
        "pages": served_pages(emulator) - pages0,
        "org_calls": emulator.admin("GET", "limits")["api_usage"]["used"] - calls0,
    }
    conn = pb._pg(base["db_url"])
    with conn.cursor() as cur:  # what the warehouse's checkpoint holds after the kill
        cur.execute("SELECT sum(staged), sum(expected), count(*) FILTER (WHERE done), count(*) "
                    "FROM salesforce.load_checkpoint_slice")  # fmt: skip
        staged, expected, done, slices = cur.fetchone()
    conn.close()
    killed.update(staged=int(staged or 0), expected=int(expected or 0), slices_done=done, slices=slices)
    print(f" killed after {killed['seconds']:.1f} s at {killed['pages']:,} pages; "
          f"{killed['staged']:,} of {killed['expected']:,} records staged", flush=True)  # fmt: skip
    print("  retry (same DAG run id) ...", end="", flush=True)
    retry_cfg = {**cfg, "label": "retry", "try_number": 2}
    retry = finish(spawn("load", retry_cfg, env, logs), retry_cfg, logs)
    print(f" {retry['seconds']:.1f} s, {retry['records']:,} records", flush=True)
    return {"killed": killed, "retry": retry, "digest": pb.table_digest(base["db_url"])["contact"]}


def save(args: argparse.Namespace, res: dict[str, Any]) -> None:
    """The measurements so far to --json (a run that fails half-way keeps what it measured)."""
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2))


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """A throwaway database `sfpipe_bench_<hex>` on the server of WAREHOUSE_ADMIN_URL; its URL."""
    import psycopg2

    admin_url = os.environ.get("WAREHOUSE_ADMIN_URL")
    if not admin_url:
        raise SystemExit("WAREHOUSE_ADMIN_URL is not set; run `make bench-large-load`")
    name = f"sfpipe_bench_{secrets.token_hex(4)}"

    def execute(statement: str) -> None:  # a fresh connection each time: the server may have restarted
        admin = psycopg2.connect(admin_url)
        admin.autocommit = True
        admin.cursor().execute(statement)
        admin.close()

    execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(args: argparse.Namespace, db_url: str) -> dict[str, Any]:
    """Every variant in turn on one emulator and the bench database."""
    print(
        f"bench database {db_url.rpartition('/')[2]}; emulator: {args.accounts:,} + {args.contacts:,}",
        flush=True,
    )
    emulator = pb.Emulator(args.accounts, args.contacts, args.seed)
    work = tempfile.mkdtemp(prefix="sfpipe-large-bench-")
    res: dict[str, Any] = {
        "emulator_startup": emulator.startup,
        "started": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
    }
    try:
        env = pb.worker_env(emulator, tempfile.mkdtemp(prefix="sfpipe-bench-airflow-"))
        now = datetime.fromisoformat(emulator.admin("GET", "clock")["now"])
        from salesforce_pipeline.settings import PipelineSettings

        res["bulk_page"] = PipelineSettings().bulk_page_size
        base = {
            "db_url": db_url, "emulator_pid": emulator.proc.pid, "base_url": emulator.base_url, "ca": emulator.ca,
            "interval_start": (now - timedelta(days=1)).isoformat(), "interval_end": now.isoformat(),
            "settings": {"bulk_poll_seconds": args.poll_seconds}, "objects": list(pb.OBJECTS),
            "timeout": args.worker_timeout,
        }  # fmt: skip

        def floor(label: str, name: str, runs: int = 1, **cfg: Any) -> None:
            # A floor is the best the sequential way can do: the faster of `runs` runs (the
            # pipeline's variants run once each), so a stall in one run does not flatter them.
            print(f"  {label} ...", end="", flush=True)
            tries = [pb.run_worker(name, {**base, **cfg}, env) for _ in range(runs)]
            res[label] = {**min(tries, key=lambda r: r["seconds"]), "runs": [r["seconds"] for r in tries]}
            save(args, res)
            took = ", ".join(f"{r['seconds']:.1f} s" for r in tries)
            print(f" {took}, {res[label]['records']:,} records", flush=True)

        def load(label: str, method: str, **settings: Any) -> None:
            pb.reset_warehouse(db_url)
            print(f"  {label} ...", end="", flush=True)
            cfg = {**base, "label": label, "run_id": f"large-{label}", "method": method,
                   "settings": {**base["settings"], **settings}}  # fmt: skip
            res[label] = finish(spawn("load", cfg, env, work), cfg, work)
            res[f"digest_{label}"] = pb.table_digest(db_url)
            save(args, res)
            print(f" {res[label]['seconds']:.1f} s, {res[label]['records']:,} records", flush=True)

        # Salesforce's limits for a production org: 25 long-running requests, 10 cursors per user.
        emulator.admin("PUT", "limits", {"max_concurrent_requests": 25, "max_cursors_per_user": 10})
        set_latency(emulator, 0)
        floor("warm-up (emulator render cache)", "floor_rest")
        floor("floor_rest", "floor_rest", runs=2)
        floor(
            "floor_bulk", "floor_bulk", runs=2, poll_seconds=args.poll_seconds, max_records=res["bulk_page"]
        )
        load("rest", "rest")
        floor("floor_copy", "floor_copy", runs=2, files=pb.export_tables(db_url, work))
        load("rest_sequential", "rest", max_parallel_slices=1)
        load("bulk", "bulk2")
        set_latency(emulator, args.page_latency_ms)
        floor("floor_rest_latency", "floor_rest")
        load("rest_latency", "rest")
        pb.reset_warehouse(db_url)  # a first load killed, as rest_latency was one
        res["kill"] = kill_and_retry(emulator, env, work, base, res["rest_latency"], args.kill_at)
        save(args, res)
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)
    return res


# ----------------------------------------------------------------------------- report
def _notes(r: dict[str, Any]) -> str:
    parts = []
    for sobject, o in r["objects"].items():
        resumed = f", {o['slices_resumed']} resumed" if o["slices_resumed"] else ""
        # Where the time went: staging (reading and COPY), the merge (index builds, ANALYZE), the lock.
        spent = (
            f"staging {o['staging_seconds']:.1f} s, merge {o['merge_seconds']:.1f} s, "
            if "merge_seconds" in o
            else ""
        )
        parts.append(
            f"{sobject}: {o['method']}, {o['slices']} slices{resumed}, {spent}lock {o['lock_seconds']:.2f} s of "
            f"{o['seconds']:.1f} s"
        )
    if r["children"]:
        parts.append(
            f"{r['children']} child processes: peaks {r['children_peak_mb']:.0f} MB together (parent + children "
            f"{r['rss_mb'] + r['children_peak_mb']:.0f} MB; at one moment at most {r['sum_peak_mb']:.0f} MB)"
        )
    parts.append(f"emulator counted {r['org_calls']:,} calls")
    return "; ".join(parts)


def report(args: argparse.Namespace, res: dict[str, Any]) -> str:
    """The variants' table, the md5 checks, CPU seconds per process, and the targets with PASS/MISS."""
    cores = os.cpu_count() or 1
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ms = args.page_latency_ms
    copy = res["floor_copy"]
    floors = {k: res[k]["seconds"] + copy["seconds"] for k in ("floor_rest", "floor_bulk", "floor_rest_latency")}  # fmt: skip
    lines = [
        f"Measured {res['started']} UTC on {platform.machine()}, {cores} cores, {memory_gib:.0f} GiB, Python "
        f"{platform.python_version()}; {args.accounts:,} Accounts + {args.contacts:,} Contacts (full loads, default "
        f"fields, queryAll; emulator start-up {res['emulator_startup']:.0f} s). Bulk page {res['bulk_page']:,} "
        f'records, polls {args.poll_seconds:g} s apart on both sides. "{ms:g} ms" rows: the emulator waited '
        f"{ms:g} ms before each REST query page and Bulk results page, floors and pipeline alike.",
        "",
        "| variant | records | seconds | records/s | peak RSS MB | API calls | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = (
        ("pipeline full load, REST, parallel slices", "rest"),
        ("pipeline full load, REST, `max_parallel_slices: 1`", "rest_sequential"),
        ("pipeline full load, Bulk 2.0, parallel slices", "bulk"),
        (f"pipeline full load, REST, parallel slices, {ms:g} ms", "rest_latency"),
    )
    for name, key in rows:
        lines.append(pb._row(name, res[key], _notes(res[key])))
    for name, key in (
        ("floor: REST pages, bytes discarded", "floor_rest"),
        ("floor: Bulk 2.0 pages, bytes discarded", "floor_bulk"),
        (f"floor: REST pages, bytes discarded, {ms:g} ms", "floor_rest_latency"),
        ("floor: COPY of the same rows into empty tables", "floor_copy"),
    ):
        runs = res[key].get("runs", [])
        note = (
            f"the faster of {len(runs)} runs ({', '.join(f'{t:.1f} s' for t in runs)})"
            if len(runs) > 1
            else ""
        )
        lines.append(pb._row(name, res[key], note))
    for name, key in (("REST", "floor_rest"), ("Bulk", "floor_bulk"), (f"REST {ms:g} ms", "floor_rest_latency")):  # fmt: skip
        lines.append(pb._row(f"floor {name} = pages + COPY", {**res[key], "seconds": floors[key]}))
    kill, fresh = res["kill"], res["rest_latency"]["objects"]["Contact"]
    killed, retry = kill["killed"], kill["retry"]
    contact = retry["objects"]["Contact"]
    lines.append(
        f"| Contact load killed, {ms:g} ms | {killed['staged']:,} staged | {killed['seconds']:.1f} | — | — | "
        f"{killed['org_calls']:,} (emulator's count) | SIGKILL at {killed['pages']:,} of {fresh['pages']:,} pages "
        f"({killed['pages'] / fresh['pages']:.0%}); checkpoint: {killed['staged']:,} of {killed['expected']:,} "
        f"records staged, {killed['slices_done']} of {killed['slices']} slices done |"
    )
    lines.append(pb._row(f"its retry, same DAG run id, {ms:g} ms", retry, _notes(retry)))
    same_seq = res["digest_rest"] == res["digest_rest_sequential"]
    same_bulk = res["digest_rest"] == res["digest_bulk"] == res["digest_rest_latency"]
    exact = kill["digest"] == res["digest_rest_latency"]["contact"]
    lines += [
        "",
        f"Parallel and sequential (`max_parallel_slices: 1`) loads identical (md5 of every row, lineage excluded): "
        f"{same_seq}",
        f"REST, Bulk 2.0 and the {ms:g} ms REST load identical (same md5): {same_bulk}",
        f"Killed and retried Contact table identical to the uninterrupted load's (same md5): {exact}",
        "",
        f"CPU seconds (user + system) while each ran (children and Postgres backends sampled every "
        f"{SAMPLE_SECONDS:g} s); with {cores} cores no schedule of that work ends in less than total / {cores}:",
        "",
        f"| variant | wall s | this process | its children | Postgres backends | emulator | total | total / {cores} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, key in (*rows, (f"its retry, {ms:g} ms", None)):
        r = res[key] if key else retry
        cpu = r["cpu"]
        total = sum(cpu.values())
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {cpu['self']:.1f} | {cpu['children']:.1f} | {cpu['postgres']:.1f} | "
            f"{cpu['emulator']:.1f} | {total:.1f} | {total / cores:.1f} |"
        )
    size = "" if args.contacts == 1_000_000 else f" (target for 1,000,000; here {args.contacts:,})"
    targets: list[tuple[str, str, bool]] = []

    def versus(name: str, key: str, floor_key: str, limit: float) -> None:
        ratio = res[key]["seconds"] / floors[floor_key]
        detail = f"{ratio:.2f}× ({res[key]['seconds']:.1f} s vs {floors[floor_key]:.1f} s)"
        targets.append((name, detail, ratio <= limit))

    versus(f"full load, REST, {ms:g} ms per page, ≤ 0.6× the sequential floor{size}", "rest_latency",
           "floor_rest_latency", 0.6)  # fmt: skip
    versus("pages at once: REST full load within 1.3× of its floor", "rest", "floor_rest", 1.3)
    versus("pages at once: Bulk 2.0 full load within 1.3× of its floor", "bulk", "floor_bulk", 1.3)
    calls, seconds = contact["api_calls"] / fresh["api_calls"], contact["seconds"] / fresh["seconds"]
    targets.append((f"retry after a kill at ~{args.kill_at:.0%} ≤ 25% of a fresh load's API calls",
                    f"{calls:.0%} ({contact['api_calls']} vs {fresh['api_calls']}; killed at "
                    f"{killed['pages'] / fresh['pages']:.0%} of the pages)", calls <= 0.25))  # fmt: skip
    targets.append(("… and ≤ 25% of its time", f"{seconds:.0%} ({contact['seconds']:.1f} s vs {fresh['seconds']:.1f} s)",
                    seconds <= 0.25))  # fmt: skip
    targets.append(("… and the table exact (md5)", str(exact), exact))
    parallel = [res[k] for k in ("rest", "bulk", "rest_latency")]
    # The load's memory is its process's and any child process's together (there is none since
    # pages are prepared in polars): judged on their sum at one moment (sampled every 0.1 s); the
    # task process alone and the peaks simply added are shown too.
    together = max(r["sum_peak_mb"] for r in parallel)
    alone = max(r["rss_mb"] for r in parallel)
    added = max(r["rss_mb"] + r["children_peak_mb"] for r in parallel)
    measured = f"{together:.0f} MB, the task process and any child process at one moment (alone {alone:.0f} MB; peaks added {added:.0f} MB)"
    targets.append((f"peak RSS < 400 MB with parallel slices{size}", measured, together < 400))
    share, label = max((r["objects"]["Contact"]["lock_seconds"] / r["objects"]["Contact"]["seconds"], name)
                       for name, r in zip(("REST", "Bulk 2.0", f"REST {ms:g} ms"), parallel, strict=True))  # fmt: skip
    targets.append((f"advisory lock held < 10% of the Contact load's time{size}", f"{share:.1%} (worst: {label})",
                    share < 0.10))  # fmt: skip
    targets.append(("parallel and sequential loads identical (md5)", str(same_seq), same_seq))
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'PASS' if ok else 'MISS'} |" for name, value, ok in targets]
    return "\n".join(lines)


def main() -> int:
    """Measure and print the tables; with `--worker NAME`, one variant (its JSON result on stdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, help="default: contacts / 10")
    parser.add_argument("--quick", action="store_true", help="100,000 Contacts: a smoke run")
    parser.add_argument("--page-latency-ms", type=float, default=80.0, help="per page, for the latency rows")
    parser.add_argument("--poll-seconds", type=float, default=0.2, help="Bulk job poll interval (both sides)")
    parser.add_argument(
        "--kill-at", type=float, default=0.8, help="share of the pages served before the kill"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", help="also write the raw measurements here")
    parser.add_argument("--worker-timeout", type=float, default=1800, help="seconds before a worker is ended")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](json.loads(sys.stdin.read()))))
        return 0
    args.contacts = 100_000 if args.quick else args.contacts
    args.accounts = args.accounts or args.contacts // 10
    with bench_database() as db_url:
        results = measure(args, db_url)
    save(args, results)
    print(f"\n{report(args, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
