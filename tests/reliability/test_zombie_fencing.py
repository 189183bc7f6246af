"""A worker that freezes (a stopped VM, a long GC pause) in the middle of a load, while its slices
stage with transactions open, neither blocks the task's next try nor, when it wakes up, commits
or stages anything on top of it.

The frozen worker is a real process stopped with SIGSTOP mid-load, and resumed with SIGCONT
after its next try committed; both run the real `sync_object` against the emulator and Postgres.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import UTC, datetime

import psycopg2
import pytest

from tests.support.concurrent_sync import sync_in_this_process
from tests.support.pipeline import Pipeline, salesforce_connection_json

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 29, tzinfo=UTC)
# What the next try may wait for the frozen one at most before this test calls it blocked: far
# below object_lock_wait_seconds below, so only the fence can make it.
NEXT_TRY_BOUND_SECONDS = 30
# One task's attempts, as audit.start_attempt records them.
ATTEMPT = {
    "dag_run_id": "r",
    "sobject": "Contact",
    "mode": "incremental",
    "method": None,
    "window_start": DAY,
    "window_end": NOW,
    "started_at": NOW,
}
pytestmark = pytest.mark.emulator(accounts=30, contacts=400, seed=2121, now=NOW)


def _sync(queue, job):
    queue.put(sync_in_this_process(job))


def _job(sf_emulator, warehouse, try_number: int) -> dict:
    return {
        "salesforce_connection": salesforce_connection_json(
            sf_emulator, extra={"retry_base_seconds": 0.05, "max_retries": 2, "timeout": 60}
        ),
        "warehouse_url": warehouse,
        # A lock wait long enough that only ending the frozen try can unblock the next in time.
        "settings": {
            "chunk_size": 50,
            "rest_batch_size": 200,
            "object_lock_wait_seconds": 300,
            "slice_records": 100,  # several slices, staged at once through connections of their own
        },
        "sobject": "Contact",
        "run_id": "scheduled__2026-11-29",
        "interval_start": DAY.isoformat(),
        "full_refresh": True,
        "try_number": try_number,
    }


def _slice_mid_transaction(url: str) -> bool:
    """Whether a slice of the load has a staging transaction open (holding the checkpoint FOR
    SHARE, which a later try's claim must wait for) at this moment.

    A staging transaction starts with the fence (`checkpoint_fence.sql`, `... FOR SHARE`), then
    COPYs and saves the slice's progress, so its session's last statement is one of those. A slice
    connection is also briefly idle in the transaction that names it (`set_application_name.sql`)
    before it commits: frozen there, it holds no lock, and the test would prove nothing."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'salesforce_to_postgres slices%%' "
                "AND state = 'idle in transaction' "
                "AND (query LIKE '%%FOR SHARE%%' OR query LIKE 'COPY %%' OR query LIKE '%%load_checkpoint_slice%%')"
            )
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


def _freeze_mid_transaction(process, url: str) -> None:
    """SIGSTOP the process while one of its slices has a staging transaction open: stop it when
    one is seen, and let it go on to try again when the transaction ended meanwhile."""
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "the first try never got to staging"
        if _slice_mid_transaction(url):
            os.kill(process.pid, signal.SIGSTOP)
            if _slice_mid_transaction(url):
                return
            os.kill(process.pid, signal.SIGCONT)


def test_a_frozen_worker_neither_blocks_the_next_try_nor_commits_when_it_wakes(
    sf_emulator, warehouse, monkeypatch
):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # Pages come slowly, so the first try is still staging when it is frozen.
    sf_emulator.org.inject("delay", endpoint="query_more", seconds=0.5, count=None)
    frozen = context.Process(target=_sync, args=(results, _job(sf_emulator, warehouse, 1)))
    frozen.start()
    _freeze_mid_transaction(frozen, warehouse)
    try:
        sf_emulator.org.clear_faults()
        # Records change while the first try is frozen: the next try must load them.
        changed = sf_emulator.org.snapshot("Contact")[5]["Id"]
        sf_emulator.org.update("Contact", changed, {"Title": "Changed while the first try was frozen"})

        started = time.monotonic()
        next_try = context.Process(target=_sync, args=(results, _job(sf_emulator, warehouse, 2)))
        next_try.start()
        next_try.join(NEXT_TRY_BOUND_SECONDS + 30)
        waited = time.monotonic() - started
        assert results.get(timeout=5) == "ok"
        assert waited < NEXT_TRY_BOUND_SECONDS, f"the next try waited {waited:.0f}s for the frozen one"
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    frozen.join(60)
    woke = results.get(timeout=30)
    assert woke != "ok", "the frozen try must not succeed after its next try committed"

    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_WAREHOUSE", warehouse)
    pipeline = Pipeline(sf_emulator, warehouse, monkeypatch)
    assert pipeline.mismatches("Contact") == []
    rows = {a["try_number"]: a for a in pipeline.audit()}
    assert rows[2]["status"] == "success"
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"], "the frozen try's row says why it ended"
    locks = pipeline.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert locks == [(0,)], "no lock left behind"


def test_a_stalled_try_that_wakes_after_a_later_try_started_commits_nothing(
    sf_emulator, warehouse, monkeypatch
):
    """The fence inside the apply transaction, for when the later try could not end its sessions."""
    from salesforce_pipeline import audit, load
    from salesforce_pipeline.objects import CONTACT
    from salesforce_pipeline.warehouse import apply_schema

    conn = psycopg2.connect(warehouse)
    later = psycopg2.connect(warehouse)
    try:
        apply_schema(conn, "salesforce")
        first = audit.start_attempt(conn, "salesforce", **ATTEMPT, try_number=1)
        loader = load.ObjectLoad(conn, CONTACT, ["id"], dag_run_id="r", extracted_at=NOW, schema="salesforce")
        loader.begin()
        assert not first.superseded(conn)
        second = audit.start_attempt(later, "salesforce", **ATTEMPT, try_number=2)
        with pytest.raises(audit.AttemptSuperseded, match="commits nothing"):
            audit.commit_if_current(first, loader)
        conn.rollback()
        first.close()
        second.close()
    finally:
        conn.close()
        later.close()


def test_the_next_try_ends_the_sessions_its_predecessors_slices_staged_through(warehouse):
    """A frozen try's slices may hold a staging transaction open (and the checkpoint FOR SHARE,
    which the next try's claim would wait for): their sessions are ended with the try's own."""
    from salesforce_pipeline import audit
    from salesforce_pipeline.warehouse import apply_schema

    conn = psycopg2.connect(warehouse, application_name="salesforce_to_postgres test")
    later = psycopg2.connect(warehouse, application_name="salesforce_to_postgres test")
    try:
        apply_schema(conn, "salesforce")
        first = audit.start_attempt(conn, "salesforce", **ATTEMPT, try_number=1)
        conn.commit()
        slice_session = psycopg2.connect(warehouse, application_name=audit.slice_session_name(first.audit_id))
        with slice_session.cursor() as cur:
            cur.execute("SELECT 1")  # a transaction left open, as a frozen slice's would be
        second = audit.start_attempt(later, "salesforce", **ATTEMPT, try_number=2)
        assert second.end_earlier_tries() == 1
        with pytest.raises(psycopg2.OperationalError), slice_session.cursor() as cur:
            cur.execute("SELECT 1")
        second.close()
        first.close()
    finally:
        conn.close()
        later.close()
