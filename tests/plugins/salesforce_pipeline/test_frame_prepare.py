"""frame_prepare (polars) against the pandas path REST pages took before it (msgspec columns,
transform_columns, copy_bytes, which Bulk pages and the sweep still take): the same COPY payload
and the same totals for the same REST pages."""

from __future__ import annotations

import json
import random

import pytest

from salesforce_pipeline import frame_prepare
from salesforce_pipeline.bulk_csv import bulk_page_chunks
from salesforce_pipeline.column_chunk import ChunkBuffer
from salesforce_pipeline.copy_format import copy_bytes
from salesforce_pipeline.page_batch import BULK_CSV, REST_JSON, BatchTotals, PageBatch
from salesforce_pipeline.rest_columns import RestColumnDecoder
from salesforce_pipeline.transform import transform_columns
from tests.plugins.salesforce_pipeline.records import make_id
from tests.plugins.salesforce_pipeline.test_page_batch import page_format, record, rest_batch, rest_body


def _in_pandas(fmt, chunks, emit):
    """Column chunks as the pandas path prepares them: transform_columns, then copy_bytes."""
    totals = BatchTotals()
    for chunk in chunks:
        totals.records += chunk.count
        ids = [value for value in chunk.columns["Id"] if isinstance(value, str)]
        totals.last_id = ids[-1] if ids else totals.last_id
        result = transform_columns(chunk, fmt.fields, fmt.kinds, key_prefix=fmt.key_prefix)
        totals.rejects.extend(result.rejects)
        totals.duplicates += result.duplicates_dropped
        totals.rows += len(result.frame)
        if len(result.frame):
            constants = (fmt.extracted_at, fmt.dag_run_id)
            emit(copy_bytes(result.frame, fmt.data_columns, constants, fmt.encoding).getvalue())
    return totals


def _rest_chunks(fmt, bodies):
    """REST pages as the pandas path decoded them (msgspec), all their records in one chunk."""
    buffer = ChunkBuffer(fmt.fields, 10**9)
    decode = RestColumnDecoder(fmt.fields)
    return [chunk for body in bodies for chunk in buffer.add(decode(body)[0])] + list(buffer.flush())


def _both(fmt, bodies):
    old: list[bytes] = []
    new: list[bytes] = []
    old_totals = _in_pandas(fmt, _rest_chunks(fmt, bodies), old.append)
    new_totals = frame_prepare.prepare_batch(fmt, PageBatch(REST_JSON, list(bodies)), new.append)
    return b"".join(old), old_totals, b"".join(new), new_totals


def _same(fmt, bodies):
    old, old_totals, new, new_totals = _both(fmt, bodies)
    assert new == old
    for name in ("records", "rows", "duplicates", "last_id"):
        assert getattr(new_totals, name) == getattr(old_totals, name), name
    assert [(r.record_id, r.reason) for r in new_totals.rejects] == [
        (r.record_id, r.reason) for r in old_totals.rejects
    ]
    assert [json.loads(r.raw_record) for r in new_totals.rejects] == [
        json.loads(r.raw_record) for r in old_totals.rejects
    ]


def test_a_batch_with_a_reject_a_duplicate_and_relationships_gives_the_same_payload():
    _same(page_format(chunk_size=1000), rest_batch().bodies)


def test_random_records_give_the_same_payload():
    rng = random.Random(18)
    texts = [
        "",
        "plain",
        "tab\there",
        "line\nbreak",
        "back\\slash",
        "cr\rlf",
        "nul\x00",
        "Zoë 🚀",
        "\\N",
        None,
    ]
    stamps = ["2026-11-01T10:00:00.000+0000", "2026-11-02T10:00:00.000Z", "2026-11-01", "bad", None]
    records = []
    for _ in range(400):
        records.append(record(
            rng.randint(0, 300),
            LastName=rng.choice(texts), Email=rng.choice(["A@B.C", " x@y.z ", None, "q\x00@r.s"]),
            SystemModstamp=rng.choice(stamps), IsDeleted=rng.choice([True, False, None, "true"]),
            Account=rng.choice([None, {"Name": rng.choice(texts)}, {"Name": 5}, "not an object"]),
        ))  # fmt: skip
    records[7]["Id"] = "not an id"
    bodies = [rest_body(records[i : i + 50]) for i in range(0, len(records), 50)]
    _same(page_format(chunk_size=10_000), bodies)


def test_only_the_chunks_whose_text_needs_escapes_are_escaped_and_all_match():
    # A column is escaped only in a chunk where one of its values holds a tab, newline, carriage
    # return or backslash: one row a chunk, so each of the four is found alone; no Account name
    # holds one.
    names = ["tab\there", "line\nbreak", "back\\slash", "cr\rlf", "plain", "plain too", "Zoë", None]
    records = [record(n, LastName=name, Account={"Name": "Acme"}) for n, name in enumerate(names)]
    _same(page_format(chunk_size=1), [rest_body(records)])


def test_a_structured_value_where_text_belongs_rejects_its_record_as_before():
    bodies = [rest_body([record(1, LastName={"nested": True}), record(2)])]
    _same(page_format(chunk_size=1000), bodies)


def test_an_empty_page_gives_nothing():
    _same(page_format(chunk_size=1000), [rest_body([])])


def _csv_field(value):
    return "" if value is None else '"' + value.replace('"', '""') + '"'


@pytest.mark.parametrize("header_lacks_account", [False, True])
def test_random_bulk_pages_give_the_same_payload(header_lacks_account):
    rng = random.Random(header_lacks_account)
    fmt = page_format(chunk_size=10_000)
    fields = [f for f in fmt.fields if not (header_lacks_account and f == "Account.Name")]
    texts = [
        "",
        "plain",
        "tab\there",
        "line\nbreak",
        "crlf\r\nin",
        "back\\slash",
        'quo"te',
        "Zoë 🚀",
        "\\N",
        "NA",
        None,
    ]
    lines = [",".join(_csv_field(f) for f in fields)]
    for _ in range(300):
        values = {
            "Id": rng.choice([make_id("003", rng.randint(0, 200))] * 9 + ["bad id", None]),
            "LastName": rng.choice(texts), "Email": rng.choice(["A@B.C", " x@y.z ", None, ""]),
            "SystemModstamp": rng.choice(["2026-11-01T10:00:00.000Z", "2026-11-02T10:00:00.000Z", "bad", None]),
            "IsDeleted": rng.choice(["true", "false", "TRUE", "maybe", None]), "Account.Name": rng.choice(texts),
        }  # fmt: skip
        lines.append(",".join(_csv_field(values[f]) for f in fields))
    body = ("\r\n".join(lines) + "\r\n").encode()
    old, new = [], []
    old_totals = _in_pandas(fmt, bulk_page_chunks(body, fmt.fields, 10**9), old.append)
    new_totals = frame_prepare.prepare_batch(fmt, PageBatch(BULK_CSV, [body]), new.append)
    assert b"".join(new) == b"".join(old)
    for name in ("records", "rows", "duplicates", "last_id"):
        assert getattr(new_totals, name) == getattr(old_totals, name), name
    assert [(r.record_id, r.reason, json.loads(r.raw_record)) for r in new_totals.rejects] == [
        (r.record_id, r.reason, json.loads(r.raw_record)) for r in old_totals.rejects
    ]
