"""The properties the pipeline's speed rests on, checked without timing anything.

* REST and Bulk API 2.0 load identical tables from the same data (every column's text, numeric
  scale included), so the automatic switch between them is invisible in the warehouse.
* Memory is bounded by the chunk size: no record list or frame larger than `chunk_size` reaches
  transform or load, and the traced peak stays flat when the data grows fivefold.
* Loads are set-based: a fixed number of statements per chunk (COPY + upsert), none per row.
* API calls are counted, agree with what the org counted, land in load_audit, and a run that would
  overspend the allowance is refused before anything is extracted or loaded.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import psycopg2
import psycopg2.extensions
import pytest

from salesforce_pipeline import budget, frame_prepare, load, sync
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from salesforce_pipeline.objects import ACCOUNT, CONTACT
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.transform import snake_case
from salesforce_pipeline.warehouse import apply_schema
from tests.plugins.salesforce_pipeline.records import make_id, transform, write_frames
from tests.support.pipeline import salesforce_connection_json

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
pytestmark = pytest.mark.emulator(accounts=60, contacts=450, seed=4242, now=NOW)


def settings(**overrides: Any) -> PipelineSettings:
    values: dict[str, Any] = {"chunk_size": 100, "rest_batch_size": 200, "bulk_poll_seconds": 0.0}
    values.update(overrides)
    return PipelineSettings(**values)


@pytest.fixture
def hook_factory(sf_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", salesforce_connection_json(sf_emulator))
    return SalesforcePipelineHook


@pytest.fixture
def conn(warehouse):
    connection = psycopg2.connect(warehouse)
    apply_schema(connection, "salesforce")
    yield connection
    connection.close()


def run_sync(hook, conn, spec, *, method="auto", full_refresh=True, run_id="run", **overrides):
    request = sync.SyncRequest(
        spec=spec,
        settings=settings(**overrides),
        dag_run_id=run_id,
        interval_start=NOW - timedelta(days=1),
        interval_end=NOW,
        full_refresh=full_refresh,
        method=method,
    )
    return sync.sync_object(request, hook, conn)


def table_text(conn, table: str) -> dict[str, str]:
    """Every row as Postgres prints it (numeric scale, timestamps, text), lineage left out."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id, (to_jsonb(t) - '_extracted_at' - '_dag_run_id')::text FROM salesforce.{table} t"
        )
        rows = dict(cur.fetchall())
    conn.commit()
    return rows


def drop_tables(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("TRUNCATE salesforce.account, salesforce.contact, salesforce.load_audit")
    conn.commit()


# ----------------------------------------------------------------------------- 1. REST == Bulk
def test_rest_and_bulk_load_identical_tables(sf_emulator, hook_factory, conn):
    loaded: dict[str, dict[str, dict[str, str]]] = {}
    for method in ("rest", "bulk2"):
        drop_tables(conn)
        for spec in (ACCOUNT, CONTACT):
            summary = run_sync(hook_factory(), conn, spec, method=method, run_id=method)
            assert summary.method == method
            assert summary.extracted == sf_emulator.org.count(spec.name, include_deleted=True)
        loaded[method] = {spec.table: table_text(conn, spec.table) for spec in (ACCOUNT, CONTACT)}

    for table in ("account", "contact"):
        rest, bulk = loaded["rest"][table], loaded["bulk2"][table]
        assert len(rest) > 0
        assert rest.keys() == bulk.keys()
        different = [record_id for record_id in rest if rest[record_id] != bulk[record_id]]
        assert different == [], f"{table}: e.g. {rest[different[0]]} vs {bulk[different[0]]}"


def test_currency_from_json_and_csv_lands_with_the_same_scale():
    # REST sends 59926000.0 (a JSON number), Bulk "59926000"; both must be the same numeric text.
    fields = ["Id", "AnnualRevenue", "SystemModstamp", "IsDeleted"]
    kinds = {"Id": "id", "AnnualRevenue": "numeric", "SystemModstamp": "datetime", "IsDeleted": "boolean"}
    base = {"Id": make_id("001", 1), "SystemModstamp": "2026-11-01T00:00:00.000+0000"}
    for rest_value, bulk_value, text in [
        (59926000.0, "59926000", "59926000"),
        (1234.5, "1234.50", "1234.5"),
        (0.1, "0.10", "0.1"),
        (123456789012.34, "123456789012.34", "123456789012.34"),
    ]:
        rest = transform(
            [{**base, "AnnualRevenue": rest_value, "IsDeleted": False}], fields, kinds, key_prefix="001"
        )
        bulk = transform(
            [{**base, "AnnualRevenue": bulk_value, "IsDeleted": "false"}], fields, kinds, key_prefix="001"
        )
        assert rest.frame.iloc[0]["annual_revenue"] == bulk.frame.iloc[0]["annual_revenue"] == text


# ----------------------------------------------------------------------------- 2. flat memory
@pytest.mark.parametrize(("method", "page_size"), [("rest", 2000), ("bulk2", 150)])
def test_pages_are_converted_a_page_at_a_time_and_loaded_in_chunks(
    method, page_size, hook_factory, conn, monkeypatch
):
    converted: list[int] = []
    loaded: list[int] = []
    real_convert, real_serialise = frame_prepare._converted, frame_prepare._copy_text

    def spy_convert(fmt, raw, problems):
        converted.append(len(raw))
        return real_convert(fmt, raw, problems)

    def spy_serialise(frame, *args, **kwargs):
        loaded.append(len(frame))
        return real_serialise(frame, *args, **kwargs)

    monkeypatch.setattr(frame_prepare, "_converted", spy_convert)
    monkeypatch.setattr(frame_prepare, "_copy_text", spy_serialise)
    summary = run_sync(hook_factory(), conn, CONTACT, method=method, chunk_size=100, bulk_page_size=150)

    assert summary.extracted > 400
    assert max(converted) <= page_size  # memory holds one page's frame at a time
    assert len(converted) > 1
    assert max(loaded) <= 100
    assert sum(converted) == summary.extracted
    assert len(loaded) >= summary.extracted // 100


class SyntheticHook:
    """A hook serving `total` generated Contacts page by page, each page made when asked for.

    The pages are built lazily and dropped by the caller, so whatever stays allocated while the
    pipeline runs is the pipeline's own doing; no emulator shares the traced process.
    """

    def __init__(self, describe: dict[str, Any], total: int) -> None:
        self.describe = describe
        self.total = total
        self.api_calls = 0
        self.api_usage: tuple[int, int] | None = (0, 10_000_000)
        self.logins = 1
        self.organization_id = "00D000000000001AAA"

    def describe_object(self, name: str) -> dict[str, Any]:
        self.api_calls += 1
        return self.describe

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        self.api_calls += 1
        return self.total

    def query_pages_resumable(self, soql: str, *, resume_url=None, **options):
        pages = len(range(0, self.total, options.get("batch_size", 2000)))
        for number, page in enumerate(self.query_pages(soql, **options), 1):
            yield page, None if number == pages else f"/cursor-{number}"

    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int = 2000, decoder=None):
        fields = [f["name"] for f in self.describe["fields"] if f["name"] in CONTACT.default_fields]
        types = {f["name"]: f["type"] for f in self.describe["fields"]}
        for start in range(0, self.total, batch_size):
            self.api_calls += 1
            records = [
                self._record(serial, fields, types)
                for serial in range(start, min(start + batch_size, self.total))
            ]
            if decoder is None:
                yield records
                continue
            # The body Salesforce would send, decoded as the hook would decode it.
            done = start + batch_size >= self.total
            body = json.dumps({"totalSize": self.total, "done": done, "records": records}).encode()
            del records
            page, _, _ = decoder(body)
            yield page

    @staticmethod
    def _record(serial: int, fields, types) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": "Contact"}}
        for name in fields:
            kind = types[name]
            if name == "Id":
                record[name] = make_id("003", serial)
            elif kind in ("id", "reference"):
                record[name] = None
            elif kind == "datetime":
                record[name] = "2026-11-01T10:00:00.000+0000"
            elif kind == "date":
                record[name] = "1990-01-01"
            elif kind == "boolean":
                record[name] = False
            else:
                record[name] = f"{name} {serial} " + "x" * 200
        return record


def traced_peak(conn, describe, total: int) -> int:
    hook = SyntheticHook(describe, total)
    drop_tables(conn)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        summary = run_sync(hook, conn, CONTACT, method="rest", chunk_size=250, run_id=f"synthetic-{total}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.extracted == total
    return peak


def test_traced_memory_does_not_grow_with_the_number_of_records(conn):
    from salesforce_emulator.schema import SCHEMA, describe_sobject

    describe = describe_sobject(SCHEMA["Contact"], "62.0", frozenset())
    traced_peak(conn, describe, 500)  # warm-up: imports and caches are not the data's
    small = traced_peak(conn, describe, 2_000)
    large = traced_peak(conn, describe, 10_000)
    # Five times the records; proportional growth would be ~5x. Chunks of 250 keep it flat.
    assert large < small * 1.5, f"peak {large:,} bytes for 10,000 records vs {small:,} for 2,000"


# ----------------------------------------------------------------------------- 3. set-based load
class CountingCursor(psycopg2.extensions.cursor):
    counts: ClassVar[Counter[str]] = Counter()

    def execute(self, query, vars=None):
        CountingCursor.counts["execute"] += 1
        return super().execute(query, vars)

    def executemany(self, query, vars_list):
        CountingCursor.counts["executemany"] += 1
        return super().executemany(query, vars_list)

    def copy_expert(self, sql, file, size=8192):
        CountingCursor.counts["copy"] += 1
        return super().copy_expert(sql, file, size)


def account_records(count: int, stamp: datetime) -> list[dict[str, Any]]:
    records = []
    for serial in range(count):
        records.append(
            {
                "Id": make_id("001", serial),
                "Name": f"Account {serial}\twith\\tab",
                "SystemModstamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                "IsDeleted": False,
            }
        )
    return records


def statements_for(url: str, rows: int, chunks: int, *, loaded_before: bool) -> Counter[str]:
    fields = ["Id", "Name", "SystemModstamp", "IsDeleted"]
    kinds = {"Id": "id", "SystemModstamp": "datetime", "IsDeleted": "boolean"}
    records = account_records(rows, NOW)
    per_chunk = -(-rows // chunks)
    frames = [
        transform(records[start : start + per_chunk], fields, kinds, key_prefix="001").frame
        for start in range(0, rows, per_chunk)
    ]
    connection = psycopg2.connect(url, cursor_factory=CountingCursor)
    try:
        apply_schema(connection, "salesforce")
        with connection.cursor() as cur:
            cur.execute("TRUNCATE salesforce.account")
        connection.commit()
        bystanders = 0
        if loaded_before:  # a row not in the data makes the load take the guarded path
            seed = load.ObjectLoad(connection, ACCOUNT, ["id", "system_modstamp", "is_deleted"],
                                   dag_run_id="seed", extracted_at=NOW, schema="salesforce")  # fmt: skip
            seed.begin()
            write_frames(seed, transform(
                [{"Id": make_id("001", 999_999_999_999), "SystemModstamp": "2026-01-01T00:00:00.000+0000",
                  "IsDeleted": False}],
                ["Id", "SystemModstamp", "IsDeleted"], kinds, key_prefix="001").frame)  # fmt: skip
            seed.commit()
            bystanders = 1
        CountingCursor.counts = Counter()
        loader = load.ObjectLoad(
            connection,
            ACCOUNT,
            [snake_case(f) for f in fields],
            dag_run_id="count",
            extracted_at=NOW,
            schema="salesforce",
        )
        loader.begin()
        upserted = write_frames(loader, *frames)
        loader.commit()
        counts = Counter(CountingCursor.counts)  # a copy: the checks below use the cursor too
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM salesforce.account")
            assert cur.fetchone()[0] == rows + bystanders
        assert upserted == rows
        return counts
    finally:
        connection.close()


@pytest.mark.parametrize("loaded_before", [False, True], ids=["empty table", "loaded table"])
def test_loading_takes_the_same_statements_for_ten_rows_or_ten_thousand(warehouse, loaded_before):
    few = statements_for(warehouse, rows=10, chunks=4, loaded_before=loaded_before)
    many = statements_for(warehouse, rows=10_000, chunks=4, loaded_before=loaded_before)
    assert few == many
    assert many["copy"] == 4  # one COPY per chunk
    assert many["executemany"] == 0
    if loaded_before:
        # begin: the lock (between two lock_timeout settings) + emptiness check + rejected-ids,
        # stage and extracted-ids tables; per chunk: truncate stage, record ids, upsert
        assert many["execute"] == 7 + 3 * 4
    else:
        # begin: the lock (between two lock_timeout settings) + emptiness check + rejected-ids
        # table; per chunk: the COPY straight into the table
        assert many["execute"] == 5


# ----------------------------------------------------------------------------- 4. API budget
def test_api_calls_are_counted_logged_and_audited(sf_emulator, hook_factory, conn, caplog):
    caplog.set_level("INFO", logger="salesforce_pipeline.sync")
    hook = hook_factory()
    hook.get_conn()  # the login: not an API call in the org's count
    used_before = sf_emulator.org.api_usage[0]
    summary = run_sync(hook, conn, CONTACT, method="rest", rest_batch_size=200)

    used_after = sf_emulator.org.api_usage[0]
    assert summary.api_calls == hook.api_calls == used_after - used_before
    # describe + COUNT() + ceil(records / 200) pages + the live COUNT() of the reconciliation
    assert summary.api_calls == 2 + -(-summary.extracted // 200) + 1
    assert summary.api_usage == f"{used_after}/{sf_emulator.org.api_usage[1]}"
    assert f"api_calls={summary.api_calls}" in caplog.text
    with conn.cursor() as cur:
        cur.execute("SELECT api_calls, api_usage_after, status FROM salesforce.load_audit")
        assert cur.fetchall() == [(summary.api_calls, summary.api_usage, "success")]


@pytest.mark.parametrize("method", ["rest", "bulk2"])
def test_an_over_budget_extraction_is_refused_before_anything_is_loaded(
    method, sf_emulator, hook_factory, conn
):
    org = sf_emulator.org
    org.set_daily_limit(15_000)
    org.set_api_usage(15_000 - 5)  # after describe and COUNT(), 3 calls left; the run may use half
    hook = hook_factory()

    with pytest.raises(budget.ApiBudgetExceeded) as refused:
        run_sync(hook, conn, CONTACT, method=method, rest_batch_size=200, chunk_size=100)

    message = str(refused.value)
    assert "Nothing was extracted or loaded" in message
    assert "API calls" in message
    assert "api_budget_share" in message
    assert org.counters.get("query_more", 0) == 0
    assert org.counters.get("bulk2_create", 0) == 0
    assert hook.api_calls == 2  # describe and COUNT() only
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM salesforce.contact")
        assert cur.fetchone()[0] == 0
    conn.commit()


def test_the_allowance_running_out_mid_extraction_loads_nothing(sf_emulator, hook_factory, conn):
    # The estimate fitted, then another client spent the rest: the second page gets 403
    # REQUEST_LIMIT_EXCEEDED. The transaction is rolled back; the audit row says why and what it cost.
    from salesforce_pipeline.errors import SalesforcePipelineError

    sf_emulator.org.inject("request_limit", endpoint="query_more", count=None)
    with pytest.raises(SalesforcePipelineError):
        run_sync(hook_factory(), conn, CONTACT, method="rest", rest_batch_size=200)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM salesforce.contact")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT status, api_calls, error FROM salesforce.load_audit")
        ((status, calls, error),) = cur.fetchall()
    assert status == "failed"
    # describe, COUNT(), the first page, the refused second page, and the one /limits/ look the
    # hook takes for the error's usage figures (the fault's 403 carries no Sforce-Limit-Info)
    assert calls == 5
    assert error


def test_a_failed_load_leaves_nothing_on_its_connection_for_the_next_to_commit(
    hook_factory, conn, sf_emulator, warehouse
):
    """A caller that reuses the connection (one per worker, many objects) must not commit the
    rows a failed load had written: the failure rolls them back before anything else runs.

    The load fails at the last moment of its apply, every row written: a later try of its task
    has started meanwhile (a row in load_audit), so the fence refuses to commit."""
    import threading

    from salesforce_pipeline.audit import AttemptSuperseded

    sf_emulator.set_latency(page_latency_ms=100)  # the Contact load takes a while

    def start_a_later_try() -> None:
        other = psycopg2.connect(warehouse)
        other.autocommit = True
        with other.cursor() as cur:
            for _ in range(200):
                cur.execute(
                    "INSERT INTO salesforce.load_audit (dag_run_id, sobject, mode, window_end, started_at, status) "
                    "SELECT dag_run_id, sobject, mode, window_end, now(), 'running' FROM salesforce.load_audit "
                    "WHERE sobject = 'Contact' AND status = 'running' RETURNING audit_id"
                )
                if cur.fetchall():
                    break
                time.sleep(0.02)
        other.close()

    later = threading.Thread(target=start_a_later_try)
    later.start()
    try:
        with pytest.raises(AttemptSuperseded):
            run_sync(hook_factory(), conn, CONTACT, method="rest")
    finally:
        later.join()
        sf_emulator.set_latency(page_latency_ms=0)
    run_sync(hook_factory(), conn, ACCOUNT, method="rest")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM salesforce.contact")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM salesforce.account")
        assert cur.fetchone()[0] == len(sf_emulator.org.snapshot("Account"))
