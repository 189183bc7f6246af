"""The COPY text serialiser against a per-value reference: hostile text, nulls, any block size."""

from __future__ import annotations

from datetime import datetime, timedelta

from salesforce_pipeline import copy_format
from tests.plugins.salesforce_pipeline.test_load import COLUMNS, T0, frame, rec


def copy_text(frame_, columns):
    """What the loader COPYs for `frame_`, as text."""
    return copy_format.copy_bytes(frame_, columns, (), "utf-8").getvalue().decode("utf-8")


def reference_copy_text(frame_, columns):
    """The per-value serializer the vectorised one replaced: one value at a time."""
    lines = []
    for _, row in frame_.iterrows():
        values = []
        for column in columns:
            value = row[column]
            if hasattr(value, "isoformat") and value == value:
                values.append(value.isoformat())
            else:
                values.append(copy_format._copy_value(None if value is None or value != value else value))
        lines.append("\t".join(values) + "\n")
    return "".join(lines)


def test_copy_text_matches_the_per_value_serializer():
    hostile = ["tab\there", "new\nline\r\n", "back\\slash \\N", "", "山田 Zoë 🚀", None, "plain"]
    records = [
        rec(n, name, T0 + timedelta(seconds=n), deleted=n % 2 == 0, Description=hostile[-1 - n],
            AnnualRevenue=[1.5, None, 10, 0.1, 123456789012.34, None, 7][n], NumberOfEmployees=[1, None, 2**40, 0, 5, 6, None][n])
        for n, name in enumerate(hostile)
    ]  # fmt: skip
    chunk = frame(*records)
    text = copy_text(chunk, COLUMNS)
    assert text.count("\n") == len(records)
    parsed = [line.split("\t") for line in text.splitlines()]
    expected = [line.split("\t") for line in reference_copy_text(chunk, COLUMNS).splitlines()]
    # Timestamps: the same instant, written with a Z by the vectorised path.
    stamp = COLUMNS.index("system_modstamp")
    for got, want in zip(parsed, expected, strict=True):
        assert datetime.fromisoformat(got[stamp]) == datetime.fromisoformat(want[stamp])
        got[stamp] = want[stamp] = ""
    assert parsed == expected


def test_copy_text_handles_frames_not_made_by_transform():
    import pandas as pd

    odd = pd.DataFrame(
        {
            "text": pd.Series(["a\tb", float("nan"), None], dtype=object),
            "str_dtype": pd.Series(["x", None, "z"], dtype="str"),
            "naive": pd.to_datetime(["2026-11-01 10:00", None, "2026-11-02 00:00"]),
            "flag": pd.Series([True, False, None], dtype=object),
            "number": [1.25, float("nan"), 3.0],
        }
    )
    lines = copy_text(odd, list(odd.columns)).splitlines()
    assert lines == [
        "a\\tb\tx\t2026-11-01T10:00:00.000000\tt\t1.25",
        "\\N\t\\N\t\\N\tf\t\\N",
        "\\N\tz\t2026-11-02T00:00:00.000000\t\\N\t3.0",
    ]


def test_an_empty_frame_copies_nothing():
    assert copy_text(frame(), COLUMNS) == ""


def test_copy_bytes_is_the_encoded_payload_in_any_block_size(monkeypatch):
    chunk = frame(*(rec(n, f"name {n} 🚀\t", T0) for n in range(7)))
    monkeypatch.setattr(copy_format, "_ENCODE_BLOCK_ROWS", 10**9)  # the whole chunk as one block
    expected = copy_format.copy_bytes(chunk, COLUMNS, ("run",), "utf-8").getvalue()
    for block in (1, 3, 7, 100):
        monkeypatch.setattr(copy_format, "_ENCODE_BLOCK_ROWS", block)
        assert copy_format.copy_bytes(chunk, COLUMNS, ("run",), "utf-8").getvalue() == expected
