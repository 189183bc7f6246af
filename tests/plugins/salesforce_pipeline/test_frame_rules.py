"""frame_rules (polars expressions over text columns, REST pages) against conversions (the rules,
which Bulk pages and the sweep take over Python values): the same values out and the same reasons,
for every kind, on chosen and on random values."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from salesforce_pipeline import conversions, frame_rules

VALID_ID = "003Dn0000000002IAA"

CASES = {
    "id": [
        VALID_ID,
        VALID_ID.lower()[:15] + "IAA",
        "003Dn0000000002IAB",
        "short",
        "",
        None,
        "003Dn000000000éIAA",
    ],
    "text": ["plain", "", "  padded  ", "nul\x00inside", "tab\tand\nline", None, "émoji 🙂"],
    "email": [
        "A@B.COM",
        "  a@b.com ",
        "a@b.com",
        "",
        None,
        "x\x00y@z.org",
        "\u00a0nbsp@x.org\u2003",
        "\x1fsep@x.org\x1c",
        "ΣΑΣ@X.ORG",
        "İx@y.z",
    ],
    "numeric": [
        "59926000",
        "59926000.0",
        "1.10",
        "-0",
        "-0.0",
        "0",
        "007",
        "+5",
        ".5",
        "1E+20",
        "1e-3",
        " 12 ",
        "abc",
        "NaN",
        "Infinity",
        "",
        None,
        "99999999999999999999",
        "-12.3400",
    ],
    "integer": [
        "0",
        "-7",
        "42",
        "007",
        "+3",
        "3.0",
        "3.5",
        "1e3",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "123456789012345678",
        "x",
        "",
        None,
    ],
    "boolean": ["true", "false", "TRUE", "False", "yes", "1", "", None],
    "date": ["2026-12-05", "2026-02-30", "0000-01-01", "2026-1-5", "20261205", "", None, "2024-02-29"],
    "datetime": [
        "2026-12-05T10:00:00.000+0000",
        "2026-12-05T10:00:00.000Z",
        "2026-12-05T10:00:00Z",
        "2026-12-05T10:00:00.123456+01:00",
        "2026-12-05 10:00:00",
        "2026-13-05T10:00:00.000Z",
        "not a date",
        "",
        None,
    ],
}


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or value != value:  # NaT
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _convert_column(values, kind, api_name, key_prefix):
    """One text column converted through its plan, as `frame_prepare` converts a page's columns all
    at once: (values, {position: reason})."""
    column_plan = frame_rules.plan(kind, api_name)
    frame = (
        values.alias(api_name)
        .to_frame()
        .with_columns(column_plan.value.alias("_value"))
        .select(pl.col("_value"), column_plan.canonical(pl.col("_value")).alias("_canonical"))
    )
    return frame_rules.finish(
        values, frame["_value"], frame["_canonical"], column_plan, kind, api_name, key_prefix
    )


def _oracle(values, kind):
    converted, problems = conversions.convert_column(values, kind, "F", "003" if kind == "id" else None)
    if kind == "datetime":
        converted = [None if v is None or v != v else v.to_pydatetime() for v in converted]
    if kind == "integer":
        converted = [None if v is None else int(v) for v in converted]
    return [_plain(v) for v in converted], problems


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind_converts_and_rejects_as_the_current_rules_do(kind):
    values = CASES[kind]
    expected, expected_problems = _oracle(values, kind)
    series = pl.Series("F", values, dtype=pl.String)
    converted, problems = _convert_column(series, kind, "F", "003" if kind == "id" else None)
    assert [_plain(v) for v in converted.to_list()] == expected
    assert problems == expected_problems


def test_the_input_column_is_left_as_it_was():
    series = pl.Series("F", ["abc", "12"], dtype=pl.String)
    _convert_column(series, "numeric", "F", None)
    assert series.to_list() == ["abc", "12"]


def test_random_text_and_emails_convert_as_the_current_rules_do():
    import random

    rng = random.Random(18)
    alphabet = [chr(c) for c in range(0, 0x250)] + [
        "\u00a0",
        "\u2003",
        "\u180e",
        "\u0130",
        "\u03a3",
        "\u1e9e",
        "🙂",
    ]
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(20000)]
    for kind in ("text", "email"):
        expected, expected_problems = _oracle(values, kind)
        converted, problems = _convert_column(pl.Series("F", values), kind, "F", None)
        assert converted.to_list() == expected, kind
        assert problems == expected_problems


@pytest.mark.parametrize("kind", ["numeric", "integer", "boolean", "date", "datetime", "id"])
def test_random_values_of_each_kind_convert_as_the_current_rules_do(kind):
    import random

    rng = random.Random(kind)
    pieces = {
        "numeric": list("0123456789") * 3 + list("+-. eE") + ["00", "Infinity", "NaN"],
        "integer": list("0123456789") * 3 + list("+-. eE") + ["9223372036854775807"],
        "boolean": ["t", "r", "u", "e", "f", "a", "l", "s", "T", "R", "U", "E", "F", "A", "L", "S", " "],
        "date": list("0123456789") * 4 + ["-", "-", "T", " ", "2024-02-29", "2026-12-05"],
        "datetime": list("0123456789") * 2
        + ["2026-12-05", "T", "10:00:00", ".000", "+0000", "Z", ":", "-", " "],
        "id": [VALID_ID, VALID_ID[:15], "IAA", "iaa", "0", "A", "a", "é"],
    }[kind]
    values = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(5000)]
    values += [None, VALID_ID, "2026-12-05T10:00:00.000+0000", "2026-12-05", "true", "12.50"]
    expected, expected_problems = _oracle(values, kind)
    prefix = "003" if kind == "id" else None
    converted, problems = _convert_column(pl.Series("F", values, dtype=pl.String), kind, "F", prefix)
    assert [_plain(v) for v in converted.to_list()] == expected
    assert problems == expected_problems
