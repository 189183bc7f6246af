"""REST query pages decoded straight into the selected fields' columns."""

from __future__ import annotations

import json

import pytest

from salesforce_pipeline.rest_columns import RestColumnDecoder

FIELDS = ["Id", "Name", "AnnualRevenue", "IsDeleted", "Account.Name", "Account.Industry"]


def page_body(records, done=True, next_url=None):
    payload = {"totalSize": len(records), "done": done, "records": records}
    if next_url:
        payload["nextRecordsUrl"] = next_url
    return json.dumps(payload, ensure_ascii=False).encode()


def hostile_records():
    return [
        {
            "attributes": {"type": "Contact", "url": "/services/data/v62.0/sobjects/Contact/003A"},
            "Id": "003A",
            "Name": 'Zoë "Z"\t\n\\N 🚀 \u0000',
            "AnnualRevenue": 59926000.0,
            "IsDeleted": False,
            "Account": {"attributes": {"type": "Account"}, "Name": "Acme", "Industry": None},
        },
        {
            "attributes": {},
            "Id": "003B",
            "Name": None,
            "AnnualRevenue": 123456789012345678901234567890,
            "IsDeleted": True,
            "Account": None,
        },
        {"Id": "003C", "Name": "", "IsDeleted": False},  # fields left out: null, as the plain way reads them
        {
            "Id": "003D",
            "Name": {"unexpected": "object"},
            "AnnualRevenue": 0.1,
            "IsDeleted": False,
            "Account": "not an object",
        },
    ]


def plain_columns(records):
    """What the columns must be: each field read from the record dicts, relationship fields
    from their parent object (null when the parent is null or not an object)."""
    columns = {}
    for name in FIELDS:
        top, _, child = name.partition(".")
        if child:
            columns[name] = [r.get(top).get(child) if isinstance(r.get(top), dict) else None for r in records]
        else:
            columns[name] = [r.get(name) for r in records]
    return columns


def as_lists(chunk):
    return {name: list(values) for name, values in chunk.columns.items()}


def test_rest_pages_decode_straight_into_the_fields_columns():
    records = hostile_records()
    decoder = RestColumnDecoder(FIELDS)
    chunk, done, next_url = decoder(
        page_body(records, done=False, next_url="/services/data/v62.0/query/01g-2000")
    )
    assert (done, next_url) == (False, "/services/data/v62.0/query/01g-2000")
    assert chunk.count == len(records)
    assert as_lists(chunk) == plain_columns(records)
    assert chunk.columns["AnnualRevenue"][1] == 123456789012345678901234567890  # exact, not a float


def test_a_page_the_fast_decoder_refuses_is_read_by_the_standard_library_alike():
    records = hostile_records()
    records[0]["Name"] = "lone surrogate \ud800"  # valid for json.loads, refused by msgspec
    body = json.dumps({"done": True, "records": records}).encode()
    chunk, done, _ = RestColumnDecoder(FIELDS)(body)
    assert done is True
    assert as_lists(chunk) == plain_columns(json.loads(body)["records"])


@pytest.mark.parametrize(
    "body",
    [b'{"done": true, "records": [{"Id": "003A"', b"<html>503</html>", b'{"records": [null]}', b"[1, 2]"],
)
def test_a_broken_page_is_a_value_error_so_the_hook_fetches_it_again(body):
    with pytest.raises(ValueError, match=r"JSON|Expecting|Extra data|records|object"):
        RestColumnDecoder(FIELDS)(body)


def test_an_empty_page_has_empty_columns():
    chunk, done, _ = RestColumnDecoder(FIELDS)(b'{"totalSize": 0, "done": true, "records": []}')
    assert (chunk.count, done) == (0, True)
    assert all(len(values) == 0 for values in chunk.columns.values())
