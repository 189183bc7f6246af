"""Unit tests of field planning, SOQL building, windows and Bulk CSV parsing."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from salesforce_pipeline import extract
from salesforce_pipeline.objects import ACCOUNT, CONTACT
from salesforce_pipeline.settings import SettingsError


def describe_of(spec, names, extra=()):
    types = {"Id": "id", "SystemModstamp": "datetime", "IsDeleted": "boolean", "AccountId": "reference"}
    fields = [{"name": n, "type": types.get(n, "string")} for n in names]
    for field in fields:
        if field["name"] == "AccountId":
            field.update(relationshipName="Account", referenceTo=["Account"])
    return {"name": spec.name, "fields": fields + list(extra)}


def no_related(name):
    raise AssertionError(f"describe of {name} was not expected")


UTC = UTC


def test_window_soql_uses_unquoted_utc_literals_and_a_half_open_range():
    window = extract.incremental_window(
        datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC), timedelta(minutes=10)
    )
    assert (
        window.soql_condition()
        == "SystemModstamp >= 2026-11-26T23:50:00Z AND SystemModstamp < 2026-11-28T00:00:00Z"
    )
    soql = extract.build_soql(ACCOUNT, ["Id", "Name"], window)
    assert soql == f"SELECT Id, Name FROM Account WHERE {window.soql_condition()}"
    assert (
        extract.build_count_soql(ACCOUNT, window)
        == f"SELECT COUNT() FROM Account WHERE {window.soql_condition()}"
    )


def test_full_refresh_reads_all_history_without_bounds():
    assert extract.build_soql(CONTACT, ["Id"], extract.FULL_REFRESH_WINDOW) == "SELECT Id FROM Contact"
    assert (
        extract.build_count_soql(CONTACT, extract.FULL_REFRESH_WINDOW, live_only=True)
        == "SELECT COUNT() FROM Contact WHERE IsDeleted = false"
    )


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        extract.soql_datetime(datetime(2026, 11, 27))


def test_plan_keeps_defaults_and_types_from_describe():
    plan = extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, ACCOUNT.default_fields), [], no_related)
    assert plan.fields == list(ACCOUNT.default_fields)
    assert plan.kinds["SystemModstamp"] == "datetime"
    assert plan.hidden_defaults == []


def test_default_fields_hidden_by_field_level_security_are_left_out():
    visible = [f for f in ACCOUNT.default_fields if f not in ("AnnualRevenue", "Phone")]
    plan = extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, visible), [], no_related)
    assert plan.hidden_defaults == ["AnnualRevenue", "Phone"]
    assert "AnnualRevenue" not in plan.fields


def test_a_hidden_required_field_is_an_error():
    visible = [f for f in ACCOUNT.default_fields if f != "SystemModstamp"]
    with pytest.raises(SettingsError, match=r"Account.SystemModstamp is not visible"):
        extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, visible), [], no_related)


def test_extra_custom_fields_get_columns_typed_from_describe():
    describe = describe_of(ACCOUNT, ACCOUNT.default_fields, [{"name": "Health_Score__c", "type": "double"}])
    plan = extract.plan_fields(ACCOUNT, describe, ["Health_Score__c"], no_related)
    assert plan.fields[-1] == "Health_Score__c"
    assert plan.extra_columns == [("health_score__c", "numeric")]


def test_an_unknown_extra_field_fails_with_a_clear_message():
    with pytest.raises(SettingsError, match=r"Account.Helth_Score__c does not exist or is not visible"):
        extract.plan_fields(
            ACCOUNT, describe_of(ACCOUNT, ACCOUNT.default_fields), ["Helth_Score__c"], no_related
        )


@pytest.mark.parametrize("name", ["Id FROM User--", "Name,(SELECT", "Name; DROP", "1Name", ""])
def test_names_that_are_not_soql_identifiers_are_refused(name):
    with pytest.raises(SettingsError, match="not a SOQL field name"):
        extract.plan_fields(ACCOUNT, describe_of(ACCOUNT, ACCOUNT.default_fields), [name], no_related)


def test_relationship_fields_are_checked_against_the_parent_describe():
    asked = []

    def related(name):
        asked.append(name)
        return describe_of(ACCOUNT, ["Id", "Name"])

    plan = extract.plan_fields(
        CONTACT, describe_of(CONTACT, CONTACT.default_fields), ["Account.Name"], related
    )
    assert asked == ["Account"]
    assert plan.extra_columns == [("account_name", "text")]
    with pytest.raises(SettingsError, match="Account has no field 'Nmae'"):
        extract.plan_fields(CONTACT, describe_of(CONTACT, CONTACT.default_fields), ["Account.Nmae"], related)
    with pytest.raises(SettingsError, match="'Parent' is not a relationship of Contact"):
        extract.plan_fields(CONTACT, describe_of(CONTACT, CONTACT.default_fields), ["Parent.Name"], related)


def test_compound_address_fields_are_refused():
    describe = describe_of(ACCOUNT, ACCOUNT.default_fields, [{"name": "BillingAddress", "type": "address"}])
    with pytest.raises(SettingsError, match="compound field"):
        extract.plan_fields(ACCOUNT, describe, ["BillingAddress"], no_related)


def bulk_columns(page: str, fields, chunk_size=1000):
    return list(extract.bulk_page_chunks(page.encode(), fields, chunk_size))


def test_bulk_csv_pages_parse_quotes_newlines_and_nulls():
    page = 'Id,Name,Account.Name,Email\n001A,"Zoë ""Z"", Inc.\nline 2",,\n001B,plain,Acme,a@b.c\n'
    (chunk,) = bulk_columns(page, ["Id", "Name", "Account.Name", "Email", "NotInHeader"])
    assert chunk.count == 2
    assert {name: list(values) for name, values in chunk.columns.items()} == {
        "Id": ["001A", "001B"],
        "Name": ['Zoë "Z", Inc.\nline 2', "plain"],
        "Account.Name": [None, "Acme"],
        "Email": [None, "a@b.c"],
        "NotInHeader": [None, None],
    }
    # Rows are counted even when no selected field is in the header.
    assert [(c.count, c.columns) for c in bulk_columns(page, ["NotInHeader"])] == [
        (2, {"NotInHeader": (None, None)})
    ]


def test_bulk_text_is_kept_exactly_as_sent():
    # pandas' reader would take several of these for missing values or numbers by default.
    texts = ["NA", "null", "NaN", "None", "#N/A", "n/a", "  padded  ", "00123", "1e5", "TRUE", "-0", "\\N"]
    page = '"Id","Name"\r\n' + "".join(f'"001{n:015d}","{text}"\r\n' for n, text in enumerate(texts))
    (chunk,) = bulk_columns(page, ["Id", "Name"])
    assert chunk.columns["Name"] == texts


def test_bulk_pages_skip_blank_lines_and_drop_nul_characters():
    page = 'Id,Name\r\n001A,"a\x00b"\r\n\r\n\n001B,""\r\n'
    (chunk,) = bulk_columns(page, ["Id", "Name"])
    assert chunk.columns == {"Id": ["001A", "001B"], "Name": ["ab", None]}


@pytest.mark.parametrize("page", ["", "Id,Name\n", '"Id","Name"'])
def test_a_bulk_page_without_records_gives_no_chunks(page):
    assert bulk_columns(page, ["Id", "Name"]) == []


def test_bulk_pages_are_cut_into_chunks_of_the_chunk_size():
    page = "Id,Name\n" + "".join(f"001{n:015d},name {n}\n" for n in range(25))
    chunks = bulk_columns(page, ["Id", "Name"], chunk_size=10)
    assert [c.count for c in chunks] == [10, 10, 5]
    assert [v for c in chunks for v in c.columns["Name"]] == [f"name {n}" for n in range(25)]


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ("Id,Name,Email\n001A,Acme,a@b.c\n001B,Trunc\n", "a row has 2 fields, the header has 3"),
        ("Id,Name,Email\n001A,Acme,a@b.c,extra\n", "a row has 4 fields, the header has 3"),
        ("Id,Name,Email\n001A,Acme,a@b.c\n001B,Trunc", "a row has 2 fields, the header has 3"),  # no last LF
        ('Id,Name\n001A,"unterminated\n', "ends inside a quoted field"),
        ('Id,Name\n001A,"quoted"junk\n', "text follows a closing quote"),
        ('Id,Name\n001A,junk"quoted"\n', "a quote inside a field that does not start with one"),
        ("Id,Name\n001A,a\rb\n", "a carriage return outside quotes"),
        ('Id,"Na\n', "its header row is not CSV"),
    ],
)
def test_a_malformed_bulk_page_is_an_error_not_a_partial_chunk(page, problem):
    # pandas' reader alone would pad the short row, drop the extra field and join the junk.
    with pytest.raises(ValueError, match=r"Bulk API 2\.0 result page is malformed") as raised:
        bulk_columns(page, ["Id", "Name", "Email"])
    assert problem in str(raised.value)


# ----------------------------------------------------------------- REST pages as columns
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
    decoder = extract.RestColumnDecoder(FIELDS)
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
    chunk, done, _ = extract.RestColumnDecoder(FIELDS)(body)
    assert done is True
    assert as_lists(chunk) == plain_columns(json.loads(body)["records"])


@pytest.mark.parametrize(
    "body",
    [b'{"done": true, "records": [{"Id": "003A"', b"<html>503</html>", b'{"records": [null]}', b"[1, 2]"],
)
def test_a_broken_page_is_a_value_error_so_the_hook_fetches_it_again(body):
    with pytest.raises(ValueError, match=r"JSON|Expecting|Extra data|records|object"):
        extract.RestColumnDecoder(FIELDS)(body)


def test_an_empty_page_has_empty_columns():
    chunk, done, _ = extract.RestColumnDecoder(FIELDS)(b'{"totalSize": 0, "done": true, "records": []}')
    assert (chunk.count, done) == (0, True)
    assert all(len(values) == 0 for values in chunk.columns.values())


@pytest.mark.parametrize("seed", range(5))
def test_pages_of_any_size_regroup_into_chunks_of_exactly_the_chunk_size(seed):
    rng = random.Random(seed)
    fields = ["Id", "Name"]
    buffer = extract.ChunkBuffer(fields, chunk_size=rng.randint(1, 50))
    serial, chunks = 0, []
    for _ in range(rng.randint(0, 30)):
        size = rng.randint(0, 120)
        page = extract.ColumnChunk(
            size,
            {"Id": [f"id{serial + n}" for n in range(size)], "Name": [f"n{serial + n}" for n in range(size)]},
        )
        serial += size
        chunks.extend(buffer.add(page))
    chunks.extend(buffer.flush())
    assert all(c.count == buffer.chunk_size for c in chunks[:-1])
    assert all(0 < c.count <= buffer.chunk_size for c in chunks)
    assert all(len(c.columns["Id"]) == len(c.columns["Name"]) == c.count for c in chunks)
    assert [v for c in chunks for v in c.columns["Id"]] == [f"id{n}" for n in range(serial)]


def test_api_call_estimates():
    assert extract.estimate_api_calls(0, "rest", rest_batch_size=2000, bulk_page_size=50000) == 1
    assert extract.estimate_api_calls(4001, "rest", rest_batch_size=2000, bulk_page_size=50000) == 3
    assert extract.estimate_api_calls(1_000_000, "bulk2", rest_batch_size=2000, bulk_page_size=50000) == 26


def reference_columns(page: str, fields):
    """What the columns must be: the csv module's parse, empty fields as None."""
    rows = list(csv.reader(io.StringIO(page, newline=""), strict=True))
    header, records = rows[0], rows[1:]
    return {
        name: [(record[header.index(name)] or None) for record in records]
        if name in header
        else [None] * len(records)
        for name in fields
    }


def random_bulk_page(rng: random.Random, rows: int, quoting: int) -> str:
    pieces = ["a", "Zoë", " ", ",", '"', '","', "\n", '"\n"', "\r\n", "🚀", "\t", "\\", "x" * 50]
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n", quoting=quoting)
    writer.writerow(["Id", "Name", "Description", "Account.Name"])
    for serial in range(rows):
        texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(3)]
        writer.writerow([f"003{serial:015d}", *texts])
    return sink.getvalue()


@pytest.mark.parametrize("quoting", [csv.QUOTE_ALL, csv.QUOTE_MINIMAL], ids=["quoted", "minimal"])
@pytest.mark.parametrize("seed", range(6))
def test_bulk_pages_come_out_as_the_csv_module_parses_them(seed, quoting):
    rng = random.Random(seed)
    page = random_bulk_page(rng, rng.randint(1, 400), quoting)
    fields = ["Id", "Name", "Description", "Account.Name", "Missing"]
    chunks = bulk_columns(page, fields, chunk_size=rng.randint(1, 60))
    assert all(c.count == len(c.columns["Id"]) for c in chunks)
    got = {name: [v for c in chunks for v in c.columns[name]] for name in fields}
    assert got == reference_columns(page, fields)


@pytest.mark.parametrize("block_size", [1, 2, 7, 64, 1 << 20])
@pytest.mark.parametrize("seed", range(4))
def test_the_bulk_shape_check_carries_its_state_across_blocks(seed, block_size):
    rng = random.Random(seed)
    for quoting, line_end in [(csv.QUOTE_ALL, "\n"), (csv.QUOTE_MINIMAL, "\r\n")]:
        page = random_bulk_page(rng, rng.randint(1, 80), quoting).replace("\n", line_end)
        # csv.writer's own line ends became CRLF too; quoted newlines in values are data either way.
        assert extract.csv_shape_problem(page.encode(), 4, block_size=block_size) is None
        records = list(csv.reader(io.StringIO(page, newline=""), strict=True))
        # Remove one field of one record (or add one): found wherever the block boundaries fall.
        victim = rng.randrange(1, len(records))
        for changed in (records[victim][:-1], [*records[victim], "extra, field"]):
            sink = io.StringIO()
            csv.writer(sink, lineterminator=line_end, quoting=quoting).writerows(
                [*records[:victim], changed, *records[victim + 1 :]]
            )
            problem = extract.csv_shape_problem(sink.getvalue().encode(), 4, block_size=block_size)
            assert problem == f"a row has {len(changed)} fields, the header has 4"
