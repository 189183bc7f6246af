"""Page batches prepared in worker processes: the same bytes as in the slice's own thread, and a
worker that fails, dies or falls out of step never corrupts a batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from salesforce_pipeline import page_workers
from salesforce_pipeline.errors import SalesforceTransientError
from salesforce_pipeline.page_batch import (
    BULK_CSV,
    REST_JSON,
    PageBatch,
    PageFormat,
    RawPage,
    RawPageReader,
    prepare_batch,
    rest_batches,
)
from salesforce_pipeline.page_workers import InlinePages, PageWorkers, page_work
from tests.plugins.salesforce_pipeline.records import make_id

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
FIELDS = ("Id", "LastName", "Email", "SystemModstamp", "IsDeleted", "Account.Name")
KINDS = {"Id": "id", "LastName": "text", "Email": "email", "SystemModstamp": "datetime", "IsDeleted": "boolean",
         "Account.Name": "text"}  # fmt: skip
COLUMNS = ("id", "last_name", "email", "system_modstamp", "is_deleted", "account_name")


def page_format(chunk_size: int = 3) -> PageFormat:
    return PageFormat(
        fields=FIELDS, kinds=KINDS, key_prefix="003", data_columns=COLUMNS,
        extracted_at=datetime(2026, 12, 6, tzinfo=UTC), dag_run_id="run 1", encoding="utf-8",
        chunk_size=chunk_size,
    )  # fmt: skip


def record(serial: int, **changes) -> dict:
    base = {
        "attributes": {"type": "Contact"}, "Id": make_id("003", serial), "LastName": f'Zoë "{serial}"\t\\N 🚀',
        "Email": f"c{serial}@example.com", "SystemModstamp": "2026-11-01T10:00:00.000+0000", "IsDeleted": False,
        "Account": {"Name": f"Acme {serial}"} if serial % 2 else None,
    }  # fmt: skip
    return {**base, **changes}


def rest_body(records: list[dict], next_url: str | None = None) -> bytes:
    payload = {"totalSize": 99, "done": next_url is None, "records": records}
    if next_url:
        payload["nextRecordsUrl"] = next_url
    return json.dumps(payload, ensure_ascii=False).encode()


def rest_batch() -> PageBatch:
    """Two pages, with a record that is rejected (a bad stamp) and an Id sent twice."""
    first = [record(n) for n in range(4)] + [record(4, SystemModstamp="not a time")]
    second = [record(n) for n in range(5, 9)] + [record(1, SystemModstamp="2026-11-02T10:00:00.000+0000")]
    return PageBatch(REST_JSON, [rest_body(first, "/services/data/v62.0/query/01g-5"), rest_body(second)], 10)


def bulk_batch() -> PageBatch:
    rows = ['"Id","LastName","Email","SystemModstamp","IsDeleted","Account.Name"']
    for n in range(7):
        rows.append(
            f'"{make_id("003", n)}","Doe, ""{n}""","d{n}@example.com","2026-11-01T10:00:00.000Z","false",""'
        )
    return PageBatch(BULK_CSV, [("\n".join(rows) + "\n").encode()])


def prepared(work, batch: PageBatch) -> tuple[list[bytes], object]:
    payloads: list[bytes] = []
    totals = work.run(page_format(), batch, payloads.append)
    return payloads, totals


@pytest.fixture
def workers():
    pool = PageWorkers(1)
    yield pool
    pool.close()


def worker_pids(pool: PageWorkers) -> list[int]:
    return [w.proc.pid for w in pool._started]


@pytest.mark.parametrize("make", [rest_batch, bulk_batch], ids=["rest", "bulk"])
def test_a_worker_process_prepares_exactly_what_the_slice_thread_would(make, workers):
    inline_payloads, inline_totals = prepared(InlinePages(), make())
    worker_payloads, worker_totals = prepared(workers, make())

    assert b"".join(worker_payloads) == b"".join(inline_payloads)
    assert len(inline_payloads) > 1  # chunk_size 3: the batch came back a chunk at a time
    assert worker_totals == inline_totals
    assert worker_pids(workers)
    assert worker_pids(workers)[0] != os.getpid()


def test_a_worker_parses_a_rest_batch_a_chunk_at_a_time_and_a_bulk_page_half_a_chunk(workers):
    # A Bulk 2.0 results page is many chunks, parsed while the task process holds the other
    # slice's page: half a chunk at a time keeps the two under the memory target.
    def in_chunks_of(size: int, batch: PageBatch) -> list[bytes]:
        payloads: list[bytes] = []
        prepare_batch(page_format(chunk_size=size), batch, payloads.append)
        return payloads

    assert prepared(workers, rest_batch())[0] == in_chunks_of(3, rest_batch())
    assert (
        prepared(workers, bulk_batch())[0] == in_chunks_of(1, bulk_batch()) != in_chunks_of(3, bulk_batch())
    )


def test_the_rest_batch_keeps_its_rejects_and_newest_duplicate():
    payloads, totals = prepared(InlinePages(), rest_batch())

    assert totals.records == 10
    assert [r.record_id for r in totals.rejects] == [make_id("003", 4)]
    rows = b"".join(payloads).decode().splitlines()
    assert totals.rows == len(rows) == 9 - totals.duplicates


def test_a_broken_page_is_a_transient_error_and_the_worker_goes_on(workers):
    broken = PageBatch(REST_JSON, [b'{"done": true, "records": [{"Id": 1}, "not a record"]}'])

    with pytest.raises(SalesforceTransientError, match="a page could not be read"):
        prepared(workers, broken)
    pid = worker_pids(workers)
    payloads, _ = prepared(workers, rest_batch())

    assert payloads == prepared(InlinePages(), rest_batch())[0]
    assert worker_pids(workers) == pid  # the same process: it was never out of step


def reading_replies(monkeypatch, first_reply):
    """Call `first_reply(message)` after the worker's first reply is read (pickle.load in the pool)."""
    real_load, calls = page_workers.pickle.load, []

    def load(stream):
        message = real_load(stream)
        calls.append(message)
        if len(calls) == 1:
            first_reply(message)
        return message

    monkeypatch.setattr(page_workers.pickle, "load", load)


def large_rest_batch() -> PageBatch:
    """A page of three chunks of about 600 KB each (chunk_size 3): after the first reply, what is
    left cannot wait in a pipe (64 KB), so its worker is still sending when that reply is read."""
    records = [record(n, LastName="x" * 200_000) for n in range(9)]
    return PageBatch(REST_JSON, [rest_body(records)], 9)


def test_a_worker_killed_mid_batch_fails_the_slice_transiently_and_is_replaced(workers, monkeypatch):
    prepared(workers, rest_batch())  # started
    (victim,) = workers._started

    def kill_it(_message):
        victim.proc.kill()
        victim.proc.wait()

    reading_replies(monkeypatch, kill_it)
    with pytest.raises(SalesforceTransientError, match="stopped mid-batch"):
        prepared(workers, large_rest_batch())
    monkeypatch.undo()
    payloads, _ = prepared(workers, rest_batch())

    assert payloads == prepared(InlinePages(), rest_batch())[0]
    assert workers._started[0] is not victim


def test_a_batch_stopped_while_its_reply_is_read_leaves_no_stale_reply_for_the_next(workers, monkeypatch):
    def stopped(_message):  # as when the task is told to stop while a worker answers
        raise KeyboardInterrupt

    reading_replies(monkeypatch, stopped)
    with pytest.raises(KeyboardInterrupt):
        prepared(workers, large_rest_batch())
    monkeypatch.undo()
    payloads, totals = prepared(workers, bulk_batch())

    expected, expected_totals = prepared(InlinePages(), bulk_batch())
    assert b"".join(payloads) == b"".join(expected)  # not the REST batch's leftover chunks
    assert totals == expected_totals


def test_a_copy_failing_mid_batch_leaves_the_worker_ready_for_the_next_batch(workers):
    def copy_fails(payload: bytes) -> None:
        raise RuntimeError("COPY failed")

    with pytest.raises(RuntimeError, match="COPY failed"):
        workers.run(page_format(), rest_batch(), copy_fails)
    payloads, totals = prepared(workers, bulk_batch())

    expected, expected_totals = prepared(InlinePages(), bulk_batch())
    assert b"".join(payloads) == b"".join(expected)
    assert totals == expected_totals


def test_a_worker_gets_none_of_the_tasks_secrets(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", '{"extra": {"consumer_secret": "s3cr3t-value"}}')
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value")
    workers = PageWorkers(1)  # started here, with the task's environment as it is now
    try:
        prepared(workers, rest_batch())
        environ = Path(f"/proc/{worker_pids(workers)[0]}/environ").read_bytes()
    finally:
        workers.close()

    assert b"s3cr3t-value" not in environ
    assert b"AIRFLOW_CONN_" not in environ
    assert str(PLUGINS).encode() in environ  # what it does need: the plugins on its path


def test_closing_the_pool_ends_its_workers(workers):
    prepared(workers, rest_batch())
    procs = [w.proc for w in workers._started]

    workers.close()

    assert [p.poll() for p in procs] == [0]


def test_a_worker_ends_when_the_task_process_is_killed(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(PLUGINS)!r}, {str(PLUGINS.parent)!r}]
        from tests.plugins.salesforce_pipeline.test_page_workers import page_format, rest_batch
        from salesforce_pipeline.page_workers import PageWorkers
        pool = PageWorkers(1)
        pool.run(page_format(), rest_batch(), lambda payload: None)
        print(pool._started[0].proc.pid, flush=True)
        input()
        """
    )
    task = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    worker = int(task.stdout.readline())
    task.kill()
    task.wait()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{worker}").exists():
        if Path(f"/proc/{worker}/stat").read_text().split(") ")[1].startswith("Z"):
            break  # exited, a zombie until init reaps it
        time.sleep(0.1)
    else:
        assert not Path(f"/proc/{worker}").exists(), "the worker outlived its task process"


@pytest.mark.parametrize(
    ("parallel", "slices", "cores", "expected"),
    [(4, 8, 2, 1), (4, 8, 3, 2), (4, 8, 8, 4), (1, 8, 8, 1), (4, 1, 8, 0), (4, 8, 1, 0)],
)
def test_worker_processes_for_loads_of_several_slices_one_core_left_to_the_task(
    parallel, slices, cores, expected, monkeypatch
):
    monkeypatch.setattr(page_workers.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    work = page_work(parallel, slices, "bulk2")
    try:
        assert work.workers == expected
        assert isinstance(work, PageWorkers if expected else InlinePages)
        # With one worker process, the task process prepares batches too (its core is idle).
        assert getattr(work, "here", False) == (expected == 1)
    finally:
        work.close()


@pytest.mark.parametrize("cores", [2, 8])
def test_a_rest_load_prepares_its_pages_in_the_slice_threads_without_a_worker_process(cores, monkeypatch):
    # polars releases the GIL (frame_prepare): the threads prepare their batches at once.
    monkeypatch.setattr(page_workers.os, "sched_getaffinity", lambda _pid: set(range(cores)))
    work = page_work(4, 8, "rest")
    assert isinstance(work, InlinePages)
    assert work.workers == 0


def test_the_workers_start_with_the_pool_and_load_what_a_batch_needs_before_the_first():
    pool = PageWorkers(1)
    try:
        (pid,) = worker_pids(pool)  # started before any batch was sent
        maps = Path(f"/proc/{pid}/maps")
        deadline = time.monotonic() + 30
        while "numpy" not in maps.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "numpy" in maps.read_text(), "the worker imports pandas and numpy only at its first batch"
    finally:
        pool.close()


def test_while_the_only_worker_is_busy_the_task_process_prepares_the_next_batch(monkeypatch):
    here: list[str] = []

    def prepare_here(fmt, batch, emit):
        here.append(threading.current_thread().name)
        return prepare_batch(fmt, batch, emit)

    monkeypatch.setattr(page_workers, "prepare_batch", prepare_here)
    pool = PageWorkers(1, here=True)
    results: dict[str, list[bytes]] = {}

    def run(name: str, make) -> None:
        results[name] = prepared(pool, make())[0]

    try:
        first = threading.Thread(target=run, args=("in the worker", large_rest_batch), name="first")
        first.start()
        deadline = time.monotonic() + 30
        while pool._idle.queue[0] != page_workers._HERE and time.monotonic() < deadline:
            time.sleep(0.001)  # until the first batch has taken the worker
        second = threading.Thread(target=run, args=("here", rest_batch), name="second")
        second.start()
        first.join(60)
        second.join(60)
        assert here == ["second"], "only the batch that found the worker busy was prepared here"
        # The same rows, in smaller chunks here (half a chunk at a time: the task holds more).
        assert b"".join(results["here"]) == b"".join(prepared(InlinePages(), rest_batch())[0])
        assert len(results["here"]) > len(prepared(InlinePages(), rest_batch())[0])
        assert results["in the worker"] == prepared(InlinePages(), large_rest_batch())[0]
        prepared(pool, rest_batch())
        prepared(pool, rest_batch())  # both places are back in the pool
        assert len(worker_pids(pool)) == 1
    finally:
        pool.close()


def test_the_envelope_reader_counts_records_and_refuses_a_page_cut_short():
    body = rest_body([record(1), record(2)], "/services/data/v62.0/query/01g-2")
    page, done, next_url = RawPageReader()(body)

    assert (page.records, done, next_url) == (2, False, "/services/data/v62.0/query/01g-2")
    assert page.body is body
    with pytest.raises(ValueError, match="not a query result"):
        RawPageReader()(body[:-10])


def test_rest_batches_hold_whole_pages_and_the_cursor_after_the_last():
    pages = [(RawPage(b"p1", 2000), "/c1"), (RawPage(b"p2", 2000), "/c2"), (RawPage(b"p3", 2000), "/c3"),
             (RawPage(b"p4", 700), None)]  # fmt: skip

    batches = [(b.bodies, b.records, cursor) for b, cursor in rest_batches(iter(pages), 3000)]

    assert batches == [([b"p1", b"p2"], 4000, "/c2"), ([b"p3", b"p4"], 2700, None)]


def test_prepare_batch_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind"):
        prepare_batch(page_format(), PageBatch("xml", [b"<x/>"]), lambda payload: None)
