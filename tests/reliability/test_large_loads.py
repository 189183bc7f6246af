"""Large loads: sliced, staged in parallel, checkpointed, resumed, applied in one short transaction.

Real parts throughout: the emulator over HTTPS with a page latency, PostgreSQL, `sync_object`
as tasks call it (slices staged through connections of their own), and for kills a real
process SIGKILLed mid-load, whose next try runs in another process as Airflow's retry would.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from salesforce_pipeline import slice_merge, sync
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from salesforce_pipeline.objects import CONTACT
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.warehouse import apply_schema
from tests.support.concurrent_sync import sync_in_this_process
from tests.support.pipeline import Pipeline, salesforce_connection_json

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 29, tzinfo=UTC)
CONTACTS = 2_400
# Slices of about 400 records read 200 at a time: six or more slices, two pages each at least.
SETTINGS = {"chunk_size": 100, "rest_batch_size": 200, "slice_records": 400, "bulk_poll_seconds": 0.05}
pytestmark = pytest.mark.emulator(accounts=100, contacts=CONTACTS, seed=1818, now=NOW)


def _connection(sf_emulator, **extra) -> str:
    return salesforce_connection_json(
        sf_emulator, extra={"retry_base_seconds": 0.05, "max_retries": 2, "timeout": 30, **extra}
    )


def _sync(sf_emulator, monkeypatch, warehouse, *, run_id="run", schema="salesforce", method="auto",
          full_refresh=True, connect=True, extra=None, start=DAY, **overrides):  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", _connection(sf_emulator, **(extra or {})))
    settings = PipelineSettings(**{**SETTINGS, **overrides}, schema=schema)
    conn = psycopg2.connect(warehouse)
    try:
        request = sync.SyncRequest(
            spec=CONTACT,
            settings=settings,
            dag_run_id=run_id,
            interval_start=start,
            interval_end=start + timedelta(days=1),
            full_refresh=full_refresh,
            method=method,
        )
        return sync.sync_object(
            request,
            SalesforcePipelineHook(),
            conn,
            connect=(lambda: psycopg2.connect(warehouse)) if connect else None,
        )
    finally:
        conn.close()


def _query(url: str, statement: str, params=None) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def _rows(url: str, schema: str) -> dict[str, str]:
    return dict(
        _query(
            url, f"SELECT id, (to_jsonb(t) - '_extracted_at' - '_dag_run_id')::text FROM {schema}.contact t"
        )
    )


def _staged(url: str) -> tuple[int, int, int]:
    """(slices, slices done, rows staged) of the Contact checkpoint, zeros when there is none."""
    if not _query(url, "SELECT to_regclass('salesforce.load_checkpoint_slice') IS NOT NULL")[0][0]:
        return 0, 0, 0
    ((slices, done, staged),) = _query(
        url,
        "SELECT count(*), count(*) FILTER (WHERE done), coalesce(sum(staged), 0) "
        "FROM salesforce.load_checkpoint_slice s JOIN salesforce.load_checkpoint c USING (checkpoint_id) "
        "WHERE c.sobject = 'Contact'",
    )
    return slices, done, staged


def _leftovers(url: str) -> list[tuple]:
    """Checkpoints and stage tables left in the schema."""
    return _query(url, "SELECT checkpoint_id::text FROM salesforce.load_checkpoint") + _query(
        url,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'salesforce' "
        "AND (tablename LIKE '\\_stage\\_%%' OR tablename LIKE '\\_merged\\_%%' OR tablename LIKE '\\_rejects\\_%%')",
    )


def _job(
    sf_emulator, warehouse, run_id: str, *, try_number: int = 1, method: str = "auto", **overrides
) -> dict:
    return {
        "salesforce_connection": _connection(sf_emulator),
        "warehouse_url": warehouse,
        "settings": {**SETTINGS, **overrides, **({"bulk_threshold": 0} if method == "bulk2" else {})},
        "sobject": "Contact",
        "run_id": run_id,
        "interval_start": DAY.isoformat(),
        "full_refresh": True,
        "try_number": try_number,
    }


def _run_in_process(queue, job):
    queue.put(sync_in_this_process(job))


def _start(job) -> tuple[multiprocessing.Process, multiprocessing.Queue]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_run_in_process, args=(results, job))
    process.start()
    return process, results


def _kill_when(process: multiprocessing.Process, reached) -> None:
    """SIGKILL the load's process as soon as `reached()` says so (within two minutes)."""
    deadline = time.monotonic() + 120
    try:
        while not reached():
            assert process.is_alive(), "the load ended before the kill point"
            assert time.monotonic() < deadline, "the load never reached the kill point"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
    finally:
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)


def _mismatches(sf_emulator, warehouse, monkeypatch) -> list[str]:
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_WAREHOUSE", warehouse)
    return Pipeline(sf_emulator, warehouse, monkeypatch).mismatches("Contact")


def test_parallel_and_sequential_loads_produce_identical_tables(sf_emulator, warehouse, monkeypatch):
    parallel = _sync(sf_emulator, monkeypatch, warehouse, schema="salesforce", max_parallel_slices=4)
    sequential = _sync(sf_emulator, monkeypatch, warehouse, schema="one_at_a_time", max_parallel_slices=1)
    assert parallel.slices == sequential.slices >= 6
    assert parallel.extracted == sequential.extracted == CONTACTS
    assert _rows(warehouse, "salesforce") == _rows(warehouse, "one_at_a_time")
    assert _mismatches(sf_emulator, warehouse, monkeypatch) == []
    assert _leftovers(warehouse) == [], "the apply drops the checkpoint and every stage table"


def test_the_slices_with_most_records_left_are_read_first(sf_emulator, warehouse, monkeypatch, caplog):
    # One at a time, so that the order they start in is the order they are logged in.
    with caplog.at_level(logging.INFO, logger="salesforce_pipeline.slice_stage"):
        summary = _sync(sf_emulator, monkeypatch, warehouse, method="rest", connect=False)
    started = [
        (int(found[1]), int(found[2]))
        for record in caplog.records
        if (found := re.match(r"Contact: slice (\d+): reading about (\d+) records$", record.getMessage()))
    ]
    numbers, sizes = [number for number, _ in started], [size for _, size in started]
    assert len(started) >= 4
    assert numbers != sorted(numbers), "the plan's own order is not largest first already"
    assert sizes == sorted(sizes, reverse=True)
    assert summary.extracted == CONTACTS


def test_salesforces_live_count_is_asked_while_the_slices_merge(sf_emulator, warehouse, monkeypatch):
    # The merge (index builds, ANALYZE) waits on Postgres and the count on Salesforce: one need not
    # wait for the other. The merge here waits until the live count is asked, for 10 s at most.
    live_count_asked, merges = threading.Event(), []
    real_count, real_merge = SalesforcePipelineHook.count, slice_merge.merge

    def count(hook, soql, *, include_deleted=False):
        if "IsDeleted = false" in soql:
            live_count_asked.set()
        return real_count(hook, soql, include_deleted=include_deleted)

    def merge(saved):
        merges.append(live_count_asked.wait(10))
        return real_merge(saved)

    monkeypatch.setattr(SalesforcePipelineHook, "count", count)
    monkeypatch.setattr(slice_merge, "merge", merge)
    summary = _sync(sf_emulator, monkeypatch, warehouse, method="rest")

    assert merges == [True], "the live count was asked only after the merge"
    assert summary.live_salesforce == summary.extracted - summary.deleted > 0


def test_the_summary_says_how_long_the_load_staged_merged_and_held_the_lock(
    sf_emulator, warehouse, monkeypatch
):
    # A slow load is slow somewhere: reading Salesforce (staging), the warehouse's merge, or the
    # apply under the lock. The merge here takes 0.5 s longer than it would.
    real_merge = slice_merge.merge

    def slow_merge(saved):
        time.sleep(0.5)
        return real_merge(saved)

    monkeypatch.setattr(slice_merge, "merge", slow_merge)
    summary = _sync(sf_emulator, monkeypatch, warehouse, method="rest")

    assert summary.slices >= 4
    assert 0.5 <= summary.merge_seconds < summary.seconds
    assert 0 < summary.staging_seconds < summary.seconds - summary.merge_seconds
    assert summary.lock_seconds > 0
    assert summary.staging_seconds + summary.merge_seconds + summary.lock_seconds <= summary.seconds
    assert (
        f"staging={summary.staging_seconds:.1f}s merge={summary.merge_seconds:.1f}s "
        f"lock={summary.lock_seconds:.1f}s" in summary.line()
    )


def test_a_slice_failing_mid_way_is_read_again_alone(sf_emulator, warehouse, monkeypatch, caplog):
    baseline = _sync(sf_emulator, monkeypatch, warehouse, schema="baseline")
    org = sf_emulator.org
    org.reset_counters()
    _sync(sf_emulator, monkeypatch, warehouse, schema="baseline")
    fresh = org.counters
    org.reset_counters()
    # With no retry in the hook, one failed page fails its slice; the others must not notice.
    org.inject("server_unavailable", endpoint="query_more", after=3, count=1)
    with caplog.at_level(logging.WARNING, logger="salesforce_pipeline.slice_runner"):
        summary = _sync(sf_emulator, monkeypatch, warehouse, extra={"max_retries": 0})
    faulty = org.counters
    assert summary.extracted == baseline.extracted == CONTACTS
    retried = [r.getMessage() for r in caplog.records if "reading it again on its own" in r.getMessage()]
    assert len(retried) == 1, retried
    # The failed slice went on from its stored cursor: one page asked for twice, nothing else again.
    assert faulty["query_all"] == fresh["query_all"]
    assert faulty["query_more"] == fresh["query_more"] + 1
    assert _mismatches(sf_emulator, warehouse, monkeypatch) == []


@pytest.mark.parametrize("kill_at", [0.0, 0.5, 1.0], ids=["after planning", "half staged", "all staged"])
@pytest.mark.parametrize("method", ["rest", "bulk2"])
def test_a_load_killed_at_any_point_then_retried_ends_exact(
    sf_emulator, warehouse, monkeypatch, kill_at, method
):
    sf_emulator.set_latency(page_latency_ms=60)
    org = sf_emulator.org
    overrides = {"bulk_page_size": 200} if method == "bulk2" else {}
    process, _results = _start(_job(sf_emulator, warehouse, "backfill", method=method, **overrides))

    def reached() -> bool:
        slices, done, staged = _staged(warehouse)
        return bool(slices) and staged >= kill_at * CONTACTS and (kill_at < 1 or done == slices)

    _kill_when(process, reached)
    jobs_before = len(org.bulk_jobs.all())
    ((without_job,),) = _query(
        warehouse,
        "SELECT count(*) FROM salesforce.load_checkpoint_slice WHERE bulk_job_id IS NULL AND NOT done "
        # The slice past the last stamp (records changed since planning) is read by REST.
        "AND NOT (upper_bound IS NULL AND lower_bound IS NOT NULL)",
    )
    sf_emulator.set_latency(page_latency_ms=0)
    assert _query(warehouse, "SELECT count(*) FROM salesforce.contact") == [(0,)], "nothing applied yet"
    org.reset_counters()
    retry = sync_in_this_process(
        _job(sf_emulator, warehouse, "backfill", try_number=2, method=method, **overrides)
    )
    assert retry == "ok", retry
    assert _mismatches(sf_emulator, warehouse, monkeypatch) == []
    assert _leftovers(warehouse) == []
    pages = org.counters.get("query_more", 0) + org.counters.get("bulk2_results", 0)
    if kill_at == 1.0:
        assert pages == 0, "every slice was staged: nothing is read again"
    if method == "bulk2" and kill_at > 0:
        # Only the slices whose job was not created yet get one: the others read their own again.
        assert len(org.bulk_jobs.all()) == jobs_before + without_job


def test_a_concurrent_daily_run_waits_only_for_the_short_apply(sf_emulator, warehouse, monkeypatch):
    _sync(sf_emulator, monkeypatch, warehouse, run_id="first load")
    sf_emulator.set_latency(page_latency_ms=150)
    # One slice at a time: the backfill stages for seconds, well past the daily run's end.
    backfill, results = _start(_job(sf_emulator, warehouse, "backfill", max_parallel_slices=1))
    try:
        deadline = time.monotonic() + 60
        while _staged(warehouse)[2] == 0:
            assert time.monotonic() < deadline, "the backfill never started staging"
            assert backfill.is_alive()
            time.sleep(0.02)
        changed = sf_emulator.org.snapshot("Contact")[3]["Id"]
        sf_emulator.org.set_clock(NOW + timedelta(minutes=1))  # newer than every generated stamp
        sf_emulator.org.update("Contact", changed, {"Title": "Changed during the backfill"})
        daily = _sync(sf_emulator, monkeypatch, warehouse, run_id="daily", full_refresh=False, start=NOW)
        slices, done, _staged_rows = _staged(warehouse)
        assert slices, "the backfill's checkpoint is there"
        assert done < slices, "the daily run finished while the backfill was still staging"
        assert backfill.is_alive()
        assert daily.mode == "incremental"
        titles = _query(warehouse, "SELECT title FROM salesforce.contact WHERE id = %s", (changed,))
        assert titles == [("Changed during the backfill",)]
        backfill.join(120)
        assert results.get(timeout=10) == "ok"
    finally:
        if backfill.is_alive():
            os.kill(backfill.pid, signal.SIGKILL)
    sf_emulator.set_latency(page_latency_ms=0)
    assert _mismatches(sf_emulator, warehouse, monkeypatch) == [], "the backfill's older rows never win"


def test_a_stale_checkpoint_expires_with_its_staged_rows(sf_emulator, warehouse, monkeypatch):
    sf_emulator.set_latency(page_latency_ms=60)
    process, _results = _start(_job(sf_emulator, warehouse, "given up"))
    try:
        deadline = time.monotonic() + 60
        while _staged(warehouse)[2] == 0:
            assert time.monotonic() < deadline
            assert process.is_alive()
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
    sf_emulator.set_latency(page_latency_ms=0)
    assert _leftovers(warehouse), "the killed load left its checkpoint and stage tables"
    conn = psycopg2.connect(warehouse)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE salesforce.load_checkpoint SET updated_at = now() - interval '73 hours'")
        cur.execute("UPDATE salesforce.load_checkpoint_slice SET updated_at = now() - interval '73 hours'")
    conn.close()
    _sync(sf_emulator, monkeypatch, warehouse, run_id="another run", checkpoint_ttl_hours=72)
    assert _leftovers(warehouse) == []


def test_a_fresh_checkpoint_of_another_run_is_left_alone(sf_emulator, warehouse, monkeypatch):
    conn = psycopg2.connect(warehouse)
    apply_schema(conn, "salesforce")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO salesforce.load_checkpoint (sobject, dag_run_id, fingerprint, method, extracted_at) "
            "VALUES ('Contact', 'running elsewhere', 'x', 'rest', now())"
        )
    conn.commit()
    conn.close()
    _sync(sf_emulator, monkeypatch, warehouse, run_id="this run")
    assert _query(warehouse, "SELECT dag_run_id FROM salesforce.load_checkpoint") == [("running elsewhere",)]


def test_records_changed_while_the_load_runs_are_loaded_at_their_newest_version(
    sf_emulator, warehouse, monkeypatch
):
    sf_emulator.set_latency(page_latency_ms=60)
    org = sf_emulator.org
    process, results = _start(_job(sf_emulator, warehouse, "first load", max_parallel_slices=1))
    try:
        deadline = time.monotonic() + 60
        while _staged(warehouse)[1] == 0:  # the first slice is staged, the others are not
            assert time.monotonic() < deadline
            assert process.is_alive()
            time.sleep(0.01)
        ((first_upper, last_lower),) = _query(
            warehouse,
            "SELECT min(upper_bound), max(lower_bound) FILTER (WHERE upper_bound IS NOT NULL) "
            "FROM salesforce.load_checkpoint_slice",
        )
        stamped = [(_stamp(r["SystemModstamp"]), r["Id"]) for r in org.snapshot("Contact")]
        already_read = next(i for stamp, i in stamped if stamp < first_upper)
        not_yet_read = next(i for stamp, i in stamped if stamp >= last_lower)
        org.set_clock(NOW + timedelta(minutes=1))  # both move to the slice past every stamp
        org.update("Contact", already_read, {"Title": "Changed after its slice was read"})
        org.update("Contact", not_yet_read, {"Title": "Changed before its slice was read"})
        process.join(120)
        assert results.get(timeout=10) == "ok"
    finally:
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
    sf_emulator.set_latency(page_latency_ms=0)
    assert _mismatches(sf_emulator, warehouse, monkeypatch) == []
    titles = dict(
        _query(
            warehouse,
            "SELECT id, title FROM salesforce.contact WHERE id IN %s",
            ((already_read, not_yet_read),),
        )
    )
    assert titles == {
        already_read: "Changed after its slice was read",
        not_yet_read: "Changed before its slice was read",
    }


def _stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def test_a_slice_whose_cursor_is_gone_queries_on_past_its_last_committed_record(
    sf_emulator, warehouse, monkeypatch, caplog
):
    sf_emulator.set_latency(page_latency_ms=60)
    process, _results = _start(_job(sf_emulator, warehouse, "backfill"))
    half_read = "FROM salesforce.load_checkpoint_slice WHERE NOT done AND resume_at IS NOT NULL"
    _kill_when(
        process,
        lambda: _staged(warehouse)[0] > 0 and _query(warehouse, f"SELECT count(*) {half_read}") != [(0,)],
    )
    sf_emulator.set_latency(page_latency_ms=0)
    sf_emulator.org.advance_clock(16 * 60)  # every cursor idle for 15 minutes: Salesforce drops them
    ((half_read_slices,),) = _query(warehouse, f"SELECT count(*) {half_read}")
    ((to_read,),) = _query(
        warehouse, "SELECT sum(expected - staged) FROM salesforce.load_checkpoint_slice WHERE NOT done"
    )
    with caplog.at_level(logging.INFO, logger="salesforce_pipeline"):
        retry = sync_in_this_process(_job(sf_emulator, warehouse, "backfill", try_number=2))
    assert retry == "ok", retry
    messages = [r.getMessage() for r in caplog.records]
    went_on = [m for m in messages if "cursor is gone" in m and "querying on past Id" in m]
    assert len(went_on) == half_read_slices >= 1, messages
    assert not [m for m in messages if "reading it from its start" in m]
    (read,) = [m for m in messages if "records read by this attempt" in m]
    assert f"({to_read} records read by this attempt" in read, "nothing committed was read again"
    assert _mismatches(sf_emulator, warehouse, monkeypatch) == []
    assert _leftovers(warehouse) == []
