"""Bulk API 2.0 results pages: the hook's check of a received page, and the parser after it."""

from __future__ import annotations

import csv
import io
import random
import re

import pytest

from salesforce_pipeline import bulk_csv


def bulk_columns(page: str, fields, chunk_size=1000):
    """A page as the pipeline reads it: checked as the hook checks it on arrival, then parsed."""
    content = page.encode()
    records = bulk_csv.bulk_page_records(content)
    chunks = list(bulk_csv.bulk_page_chunks(content, fields, chunk_size))
    assert sum(chunk.count for chunk in chunks) == records
    return chunks


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
def test_a_malformed_page_is_refused_by_the_check_the_hook_makes(page, problem):
    # pandas' reader alone would pad the short row, drop the extra field and join the junk.
    with pytest.raises(ValueError, match=re.escape(problem)):
        bulk_csv.bulk_page_records(page.encode())


@pytest.mark.parametrize(
    ("page", "records"),
    [
        ("", 0),
        ("Id,Name\n", 0),
        ('"Id","Name"', 0),
        ("Id,Name\n001A,a\n001B,b", 2),  # no line end after the last record
        ('Id,Name\r\n001A,"two\r\nlines"\r\n\r\n\n001B,b\r\n\n', 2),  # blank lines are not records
        ('Id,Name\n001A,"a\x00b"\n', 1),
    ],
)
def test_the_check_counts_the_records_after_the_header(page, records):
    assert bulk_csv.bulk_page_records(page.encode()) == records


def test_a_page_that_is_not_utf8_is_a_unicode_error():
    page = "Id,Name\n001A,Zoë\n".encode()
    with pytest.raises(UnicodeDecodeError):
        bulk_csv.bulk_page_records(page[:-2])  # cut inside the two bytes of ë
    with pytest.raises(UnicodeDecodeError):
        bulk_csv.bulk_page_records("Id,Name\n001A,Zoë\n".encode("latin-1"))


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
def test_the_check_carries_its_state_across_blocks(seed, block_size, monkeypatch):
    monkeypatch.setattr(bulk_csv, "_SCAN_BLOCK", block_size)
    rng = random.Random(seed)
    for quoting, line_end in [(csv.QUOTE_ALL, "\n"), (csv.QUOTE_MINIMAL, "\r\n")]:
        page = random_bulk_page(rng, rng.randint(1, 80), quoting).replace("\n", line_end)
        # csv.writer's own line ends became CRLF too; quoted newlines in values are data either way.
        records = list(csv.reader(io.StringIO(page, newline=""), strict=True))
        assert bulk_csv.bulk_page_records(page.encode()) == len(records) - 1
        # Remove one field of one record (or add one): found wherever the block boundaries fall.
        victim = rng.randrange(1, len(records))
        for changed in (records[victim][:-1], [*records[victim], "extra, field"]):
            sink = io.StringIO()
            csv.writer(sink, lineterminator=line_end, quoting=quoting).writerows(
                [*records[:victim], changed, *records[victim + 1 :]]
            )
            with pytest.raises(ValueError, match=f"a row has {len(changed)} fields, the header has 4"):
                bulk_csv.bulk_page_records(sink.getvalue().encode())
