"""The drift sweep against the emulator and a real Postgres: it finds each kind of drift, re-reads
only the records that differ, and changes nothing when nothing differs or the budget says no."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest

from salesforce_pipeline import budget, sweep, sync
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from salesforce_pipeline.objects import CONTACT
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.warehouse import apply_schema
from tests.support.pipeline import salesforce_connection_json

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
pytestmark = pytest.mark.emulator(accounts=20, contacts=250, seed=2020, now=NOW)


def settings(**overrides: Any) -> PipelineSettings:
    values: dict[str, Any] = {"chunk_size": 100, "rest_batch_size": 200, "bulk_poll_seconds": 0.0}
    values.update(overrides)
    return PipelineSettings(**values)


@pytest.fixture
def hook(sf_emulator, monkeypatch):
    sf_emulator.org.set_clock(NOW)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_DEFAULT",
        salesforce_connection_json(sf_emulator, extra={"retry_base_seconds": 0.05}),
    )
    return SalesforcePipelineHook()


@pytest.fixture
def conn(warehouse):
    connection = psycopg2.connect(warehouse)
    apply_schema(connection, "salesforce")
    yield connection
    connection.close()


@pytest.fixture
def loaded(hook, conn):
    """Contacts loaded by a full refresh, as a first run would."""
    request = sync.SyncRequest(
        spec=CONTACT,
        settings=settings(),
        dag_run_id="first",
        interval_start=NOW - timedelta(days=1),
        interval_end=NOW,
        full_refresh=True,
    )
    sync.sync_object(request, hook, conn)
    return conn


def execute(conn, statement: str, params: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall() if cur.description else []
    conn.commit()
    return rows


def contact_rows(conn) -> dict[str, tuple]:
    rows = execute(conn, "SELECT id, system_modstamp, is_deleted, last_name FROM salesforce.contact")
    return {row[0]: row[1:] for row in rows}


def run(hook, conn, **overrides) -> sweep.SweepSummary:
    return sweep.run_sweep(CONTACT, settings(**overrides), hook, conn, dag_run_id="sweep-run")


@pytest.mark.parametrize("method", ["rest", "bulk2"])
def test_every_kind_of_drift_is_found_and_healed(sf_emulator, hook, loaded, method):
    org = sf_emulator.org
    live = [r for r in org.snapshot("Contact") if not r["IsDeleted"]]
    late = org.insert("Contact", {"LastName": "Late"}, NOW - timedelta(days=2))  # never in any window
    org.update("Contact", live[0]["Id"], {"LastName": "Changed unseen"}, NOW - timedelta(days=2))
    execute(
        loaded,
        "UPDATE salesforce.contact SET system_modstamp = system_modstamp - interval '1 day' WHERE id = %s",
        (live[0]["Id"],),
    )
    org.delete("Contact", live[1]["Id"])  # a delete no window saw
    execute(loaded, "UPDATE salesforce.contact SET is_deleted = true WHERE id = %s", (live[2]["Id"],))
    org.delete("Contact", live[3]["Id"])
    org.purge("Contact", live[3]["Id"])  # gone from Salesforce altogether
    before = contact_rows(loaded)

    summary = run(hook, loaded, bulk_threshold=0 if method == "bulk2" else 10**6)

    assert summary.method == method
    assert (
        summary.missing,
        summary.stale,
        summary.missed_delete,
        summary.wrongly_deleted,
        summary.purged,
    ) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert summary.reread == 4
    after = contact_rows(loaded)
    assert after[late][1:] == (False, "Late")
    assert after[live[0]["Id"]][2] == "Changed unseen"
    assert after[live[1]["Id"]][1] is True
    assert after[live[2]["Id"]][1] is False
    assert after[live[3]["Id"]][1] is True
    untouched = set(before) - {live[i]["Id"] for i in range(4)}
    assert {i: after[i] for i in untouched} == {i: before[i] for i in untouched}, "nothing else changes"
    (row,) = execute(
        loaded,
        "SELECT mode, status, upserted, deleted, count_difference, count_note, live_difference "
        "FROM salesforce.load_audit WHERE mode = 'sweep'",
    )
    assert row[:5] == ("sweep", "success", 4, 1, 5)
    assert "1 missing" in row[5]
    assert row[6] == 0


def test_nothing_differs_nothing_is_reread(sf_emulator, hook, loaded):
    before = execute(loaded, "SELECT id, _extracted_at, _dag_run_id FROM salesforce.contact ORDER BY id")
    calls = hook.api_calls
    summary = run(hook, loaded)
    assert summary.differences == 0
    assert summary.reread == 0
    assert (
        execute(loaded, "SELECT id, _extracted_at, _dag_run_id FROM salesforce.contact ORDER BY id") == before
    )
    # a count, 2 pages of 200 for 250 records, a recount
    assert hook.api_calls - calls <= 4


def test_the_budget_refusal_changes_nothing(sf_emulator, hook, loaded):
    org = sf_emulator.org
    for record in org.snapshot("Contact")[:10]:
        org.update("Contact", record["Id"], {"Title": "unseen"}, NOW - timedelta(days=3))
        execute(
            loaded,
            "UPDATE salesforce.contact SET system_modstamp = system_modstamp - interval '5 days' WHERE id = %s",
            (record["Id"],),
        )
    # Purged: marked deleted in the sweep's transaction before the re-read is refused, and rolled back.
    purged = next(r for r in org.snapshot("Contact") if not r["IsDeleted"])["Id"]
    org.delete("Contact", purged)
    org.purge("Contact", purged)
    before = contact_rows(loaded)
    org.set_api_usage(org.api_usage[1] - 8)  # 8 calls left: 4 for this run, all spent on the listing
    with pytest.raises(budget.ApiBudgetExceeded):
        run(hook, loaded)
    assert contact_rows(loaded) == before
    (status,) = execute(loaded, "SELECT status FROM salesforce.load_audit WHERE mode = 'sweep'")
    assert status == ("failed",)


def test_a_sweep_is_due_by_its_cadence(loaded):
    # The full refresh that loaded the table compared every record: it counts as a sweep.
    now = datetime.now(UTC)
    assert not sweep.sweep_due(loaded, "salesforce", "Contact", "daily", now)
    assert sweep.sweep_due(loaded, "salesforce", "Contact", "daily", now + timedelta(hours=21))
    assert not sweep.sweep_due(loaded, "salesforce", "Contact", "weekly", now + timedelta(days=3))
    assert sweep.sweep_due(loaded, "salesforce", "Contact", "weekly", now + timedelta(days=7))
    assert not sweep.sweep_due(loaded, "salesforce", "Contact", "off", now + timedelta(days=365))
    assert sweep.sweep_due(loaded, "salesforce", "Account", "weekly", now), "never compared"


def incremental(hook, conn, start: datetime, end: datetime, run_id: str) -> sync.SyncSummary:
    request = sync.SyncRequest(
        spec=CONTACT,
        settings=settings(),
        dag_run_id=run_id,
        interval_start=start,
        interval_end=end,
        full_refresh=False,
    )
    return sync.sync_object(request, hook, conn)


def sweep_audit(conn) -> list[tuple]:
    return execute(
        conn,
        "SELECT status, method, extracted, upserted, deleted, salesforce_count, count_difference, "
        "count_note, error FROM salesforce.load_audit WHERE mode = 'sweep' ORDER BY audit_id",
    )


def test_a_record_committed_late_is_in_the_warehouse_after_the_next_sweep(sf_emulator, hook, loaded):
    org = sf_emulator.org
    # Committed after the first run read the object, stamped 30 minutes before the next run's
    # window starts: that run's 10-minute lookback cannot see it.
    late = org.insert("Contact", {"LastName": "Committed late"}, NOW - timedelta(minutes=30))
    org.set_clock(NOW + timedelta(days=1))
    summary = incremental(hook, loaded, NOW, NOW + timedelta(days=1), "second")
    assert summary.mode == "incremental"
    assert late not in contact_rows(loaded), "the incremental run cannot have seen it"

    swept = run(hook, loaded)

    assert contact_rows(loaded)[late][1:] == (False, "Committed late")
    assert (swept.missing, swept.reread, swept.written, swept.differences) == (1, 1, 1, 1)
    (row,) = sweep_audit(loaded)
    listed = org.count("Contact", include_deleted=True)
    assert row[:7] == ("success", "rest", listed, 1, 0, listed, 1)
    assert "1 missing (committed late or never loaded)" in row[7]
    assert "re-read 1 and wrote 1" in row[7]


def test_a_newer_row_in_the_warehouse_is_never_overwritten_by_the_sweep(sf_emulator, hook, loaded):
    # A row the warehouse holds at a newer SystemModstamp than Salesforce lists (as a run that
    # loaded a later change would leave it): the sweep re-reads it, and the guard keeps it.
    record = next(r for r in sf_emulator.org.snapshot("Contact") if not r["IsDeleted"])
    execute(
        loaded,
        "UPDATE salesforce.contact SET is_deleted = true, system_modstamp = system_modstamp + interval '1 hour' "
        "WHERE id = %s",
        (record["Id"],),
    )
    before = contact_rows(loaded)

    summary = run(hook, loaded)

    assert (summary.wrongly_deleted, summary.reread, summary.written) == (1, 1, 0)
    assert contact_rows(loaded) == before
    (row,) = sweep_audit(loaded)
    assert row[3] == 0, "the audit counts rows written, not rows re-read"


def test_a_row_written_after_the_sweep_began_is_not_marked_deleted(hook, loaded):
    # Not in Salesforce's listing, but written by something the sweep did not compare with it.
    execute(
        loaded,
        "INSERT INTO salesforce.contact (id, system_modstamp, is_deleted, last_name, _extracted_at, _dag_run_id) "
        "VALUES ('003000000000001AAA', %s, false, 'Newer', %s, 'later-run')",
        (NOW, datetime.now(UTC) + timedelta(hours=1)),
    )
    summary = run(hook, loaded)
    assert summary.purged == 0
    assert contact_rows(loaded)["003000000000001AAA"][1] is False


def test_a_listing_that_comes_back_short_marks_nothing_deleted(hook, loaded, monkeypatch):
    # Salesforce counts more records than the listing holds (a page lost on the way): every
    # record not listed would look purged. The sweep stops before marking or re-reading anything.
    pages = hook.query_pages

    def first_page_only(soql: str, **options: Any):
        result = pages(soql, **options)
        if soql.startswith("SELECT Id, SystemModstamp, IsDeleted FROM"):
            yield next(result)
            result.close()
            return
        yield from result

    monkeypatch.setattr(hook, "query_pages", first_page_only)
    before = contact_rows(loaded)

    with pytest.raises(sweep.SweepListIncomplete):
        run(hook, loaded)

    assert contact_rows(loaded) == before
    ((status, *_, error),) = sweep_audit(loaded)
    assert status == "failed"
    assert "nothing was re-read or marked deleted" in error


def test_a_sweep_over_its_budget_lists_nothing_and_changes_nothing(sf_emulator, hook, loaded, monkeypatch):
    org = sf_emulator.org
    live = next(r for r in org.snapshot("Contact") if not r["IsDeleted"])
    org.delete("Contact", live["Id"])  # a difference the sweep would heal
    before = contact_rows(loaded)
    queries: list[str] = []
    pages = hook.query_pages
    monkeypatch.setattr(hook, "query_pages", lambda soql, **o: queries.append(soql) or pages(soql, **o))
    org.set_api_usage(org.api_usage[1] - 3)  # the count leaves 1 or 2: half of it is under 2 pages

    with pytest.raises(budget.ApiBudgetExceeded) as refused:
        run(hook, loaded)

    assert not refused.value.retryable, "a retry would be refused the same way"
    assert queries == [], "nothing listed"
    assert contact_rows(loaded) == before
    ((status, _, extracted, upserted, deleted, *_, error),) = sweep_audit(loaded)
    assert (status, extracted, upserted, deleted) == ("failed", 0, 0, 0)
    assert "Nothing was extracted or loaded" in error


def test_only_a_successful_sweep_or_full_refresh_restarts_the_cadence(sf_emulator, hook, loaded):
    org = sf_emulator.org
    execute(loaded, "UPDATE salesforce.load_audit SET finished_at = finished_at - interval '30 days'")
    now = datetime.now(UTC)
    assert sweep.sweep_due(loaded, "salesforce", "Contact", "weekly", now)

    org.set_api_usage(org.api_usage[1] - 3)
    with pytest.raises(budget.ApiBudgetExceeded):
        run(hook, loaded)
    org.reset_api_usage()
    assert sweep.sweep_due(loaded, "salesforce", "Contact", "daily", datetime.now(UTC)), (
        "a failed sweep does not count"
    )

    run(hook, loaded)
    now = datetime.now(UTC)
    # Slack for a scheduler that starts today's run a little earlier than yesterday's.
    assert not sweep.sweep_due(loaded, "salesforce", "Contact", "daily", now + timedelta(hours=19))
    assert sweep.sweep_due(loaded, "salesforce", "Contact", "daily", now + timedelta(hours=20, minutes=1))
    assert not sweep.sweep_due(loaded, "salesforce", "Contact", "weekly", now + timedelta(days=6))
    assert sweep.sweep_due(loaded, "salesforce", "Contact", "weekly", now + timedelta(days=6, hours=13))
    assert not sweep.sweep_due(loaded, "salesforce", "Contact", "off", now + timedelta(days=365))
