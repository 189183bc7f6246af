"""Pages grouped into batches, and a batch prepared for COPY (frame_prepare): rejects, duplicates,
the envelope reader, and what a batch refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from salesforce_pipeline.frame_prepare import prepare_batch
from salesforce_pipeline.page_batch import (
    BULK_CSV,
    REST_JSON,
    PageBatch,
    PageFormat,
    RawPage,
    RawPageReader,
    rest_batches,
)
from tests.plugins.salesforce_pipeline.records import make_id

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


def prepared(batch: PageBatch, chunk_size: int = 3) -> tuple[list[bytes], object]:
    payloads: list[bytes] = []
    totals = prepare_batch(page_format(chunk_size), batch, payloads.append)
    return payloads, totals


def test_the_rest_batch_keeps_its_rejects_and_newest_duplicate():
    payloads, totals = prepared(rest_batch())

    assert totals.records == 10
    assert [r.record_id for r in totals.rejects] == [make_id("003", 4)]
    rows = b"".join(payloads).decode().splitlines()
    assert totals.rows == len(rows) == 9 - totals.duplicates == 8
    assert len(payloads) == 3  # chunk_size 3: no payload holds more


def test_a_bulk_page_is_prepared_a_chunk_at_a_time():
    payloads, totals = prepared(bulk_batch())

    assert (totals.records, totals.rows, totals.rejects) == (7, 7, [])
    assert [len(payload.splitlines()) for payload in payloads] == [3, 3, 1]
    assert b'Doe, "0"' in payloads[0]


def test_a_broken_rest_page_is_refused():
    broken = PageBatch(REST_JSON, [b'{"done": true, "records": [{"Id": 1}, "not a record"]}'])
    with pytest.raises(ValueError, match="records are JSON objects"):
        prepared(broken)


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


def test_a_blank_line_in_a_bulk_page_is_no_record():
    body = bulk_batch().bodies[0].replace(b"\n", b"\n\n", 3)
    _payloads, totals = prepared(PageBatch(BULK_CSV, [body]))

    assert (totals.records, totals.rows, totals.rejects) == (7, 7, [])
