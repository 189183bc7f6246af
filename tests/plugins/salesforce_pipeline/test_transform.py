"""Unit tests of the pure transform functions (no Airflow, no network, no database).

Records go in as `transform_columns` takes them from extraction: as a column chunk.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from salesforce_emulator.ids import checksum_suffix
from salesforce_pipeline.column_chunk import ColumnChunk
from salesforce_pipeline.conversions import valid_ids
from salesforce_pipeline.transform import kind_for, snake_case, transform_columns
from tests.plugins.salesforce_pipeline.records import make_id, transform


@pytest.mark.parametrize(
    ("api_name", "column"),
    [
        ("SystemModstamp", "system_modstamp"),
        ("AccountId", "account_id"),
        ("BillingPostalCode", "billing_postal_code"),
        ("Health_Score__c", "health_score__c"),
        ("NumberOfEmployees", "number_of_employees"),
        ("IsDeleted", "is_deleted"),
        ("NPS__c", "nps__c"),
        ("Id", "id"),
        ("Account.Name", "account_name"),
        ("HasOptedOutOfEmail", "has_opted_out_of_email"),
    ],
)
def test_snake_case(api_name, column):
    assert snake_case(api_name) == column


def test_valid_ids_check_length_alphabet_checksum_and_prefix():
    good = "001Ab00000ZzZzX" + checksum_suffix("001Ab00000ZzZzX")
    values = [
        good,
        good[:15] + good[15:].lower(),  # the suffix is case-insensitive
        good[:15].lower() + good[15:],  # case changes the checksum
        good[:15],
        good + "\x00",
        "001' OR 1=1 --xxxx",
        None,
        1234,
    ]
    assert valid_ids(values, "001").tolist() == [True, True, False, False, False, False, False, False]
    assert valid_ids([good], "003").tolist() == [False]
    assert valid_ids([]).tolist() == []


FIELDS = [
    "Id",
    "Name",
    "Email",
    "AnnualRevenue",
    "NumberOfEmployees",
    "HasOptedOutOfEmail",
    "Birthdate",
    "CreatedDate",
    "SystemModstamp",
    "IsDeleted",
]
KINDS = {
    "Id": "id",
    "Name": "text",
    "Email": "email",
    "AnnualRevenue": "numeric",
    "NumberOfEmployees": "integer",
    "HasOptedOutOfEmail": "boolean",
    "Birthdate": "date",
    "CreatedDate": "datetime",
    "SystemModstamp": "datetime",
    "IsDeleted": "boolean",
}


def record(serial: int, **overrides):
    base = {
        "Id": make_id("001", serial),
        "Name": f"Account {serial}",
        "Email": "  Mixed.Case@Example.COM ",
        "AnnualRevenue": 1234.5,
        "NumberOfEmployees": 12,
        "HasOptedOutOfEmail": False,
        "Birthdate": "1990-02-03",
        "CreatedDate": "2026-11-01T10:00:00.000+0000",
        "SystemModstamp": "2026-11-02T10:00:00.000+0000",
        "IsDeleted": False,
    }
    base.update(overrides)
    return base


def test_values_are_typed_and_text_kept_exactly():
    hostile = 'Zoë "Quote", tab\there\nnew line \\ backslash 山田 🚀'
    result = transform([record(1, Name=hostile)], FIELDS, KINDS, key_prefix="001")
    assert result.rejects == []
    row = result.frame.iloc[0]
    assert list(result.frame.columns) == [snake_case(f) for f in FIELDS]
    assert row["name"] == hostile
    assert row["email"] == "mixed.case@example.com"
    assert row["annual_revenue"] == "1234.5"
    assert row["number_of_employees"] == 12
    assert row["has_opted_out_of_email"] is False
    assert row["birthdate"] == "1990-02-03"
    assert row["created_date"] == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert row["system_modstamp"] == datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_nul_characters_are_removed_and_nothing_else():
    result = transform([record(1, Name="a\x00b\x00")], FIELDS, KINDS, key_prefix="001")
    assert result.frame.iloc[0]["name"] == "ab"


def test_bulk_csv_strings_give_the_same_row_as_rest_json():
    rest = record(1)
    bulk = {
        k: (None if v is None else str(v).lower() if isinstance(v, bool) else str(v)) for k, v in rest.items()
    }
    bulk["CreatedDate"] = "2026-11-01T10:00:00.000Z"
    bulk["SystemModstamp"] = "2026-11-02T10:00:00.000Z"
    from_rest = transform([rest], FIELDS, KINDS, key_prefix="001").frame
    from_bulk = transform([bulk], FIELDS, KINDS, key_prefix="001").frame
    assert from_rest.to_dict("records") == from_bulk.to_dict("records")


def test_duplicate_ids_keep_the_latest_system_modstamp():
    older = record(1, Name="old", SystemModstamp="2026-11-02T10:00:00.000+0000")
    newer = record(1, Name="new", SystemModstamp="2026-11-03T10:00:00.000+0000")
    result = transform([newer, older], FIELDS, KINDS, key_prefix="001")
    assert len(result.frame) == 1
    assert result.frame.iloc[0]["name"] == "new"
    assert result.duplicates_dropped == 1


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"Id": "not-an-id"}, "Id: 'not-an-id' is not a valid Salesforce Id"),
        ({"Id": make_id("003", 1)}, "is not a valid Salesforce Id"),  # a Contact Id in an Account extract
        ({"AnnualRevenue": "lots"}, "AnnualRevenue: 'lots' is not a number"),
        ({"NumberOfEmployees": 1.5}, "NumberOfEmployees: 1.5 is not an integer"),
        ({"HasOptedOutOfEmail": "maybe"}, "HasOptedOutOfEmail: 'maybe' is not a boolean"),
        ({"Birthdate": "03/02/1990"}, "Birthdate: '03/02/1990' is not a date"),
        ({"Birthdate": "2026-02-30"}, "Birthdate: '2026-02-30' is not a calendar date"),
        ({"NumberOfEmployees": 2**70}, "outside the range of a bigint column"),
        ({"CreatedDate": "yesterday"}, "CreatedDate: 'yesterday' is not a datetime"),
        ({"SystemModstamp": None}, "SystemModstamp: missing"),
    ],
)
def test_unloadable_records_are_rejected_with_reason_and_raw_json(override, reason):
    bad = record(2, **override)
    result = transform([record(1), bad], FIELDS, KINDS, key_prefix="001")
    assert len(result.frame) == 1
    assert len(result.rejects) == 1
    reject = result.rejects[0]
    assert reason in reject.reason
    assert json.loads(reject.raw_record) == bad


def test_describe_types_map_to_column_kinds():
    assert kind_for("datetime") == "datetime"
    assert kind_for("currency") == "numeric"
    assert kind_for("double") == "numeric"
    assert kind_for("int") == "integer"
    assert kind_for("boolean") == "boolean"
    assert kind_for("reference") == "id"
    assert kind_for("picklist") == "text"
    assert kind_for("textarea") == "text"


def test_an_empty_chunk_gives_an_empty_frame():
    result = transform([], FIELDS, KINDS, key_prefix="001")
    assert result.frame.empty
    assert result.rejects == []


# ------------------------------------------------------------------ the vectorised paths
def reference_is_id(value, prefix) -> bool:
    """The Id rule one value at a time, as Salesforce documents it."""
    if not isinstance(value, str) or len(value) != 18 or not value.isascii() or not value.isalnum():
        return False
    return value[15:].upper() == checksum_suffix(value[:15]) and value.startswith(prefix or "")


def test_valid_ids_agree_with_the_rule_value_by_value():
    import random
    import string

    rng = random.Random(7)
    values = []
    for _ in range(3000):
        id15 = "001" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(12))
        value = id15 + checksum_suffix(id15)
        mutation = rng.randrange(12)
        if mutation == 0:
            value = value[:15] + value[15:].lower()  # suffix is case-insensitive: still valid
        elif mutation == 1:
            value = value[:15].lower() + value[15:]
        elif mutation == 2:
            value = value[:17]
        elif mutation == 3:
            value += "A"
        elif mutation == 4:
            value = None
        elif mutation == 5:
            value = ""
        elif mutation == 6:
            value = "003" + value[3:]
        elif mutation == 7:
            value = value[:5] + "é" + value[6:]
        elif mutation == 8:
            value = value[:5] + "-" + value[6:]
        values.append(value)
    for prefix in ("001", None):
        assert valid_ids(values, prefix).tolist() == [reference_is_id(v, prefix) for v in values]


def test_a_column_of_ids_rejects_the_invalid_ones_and_keeps_nulls():
    chunk = ColumnChunk(
        3, {"Id": [make_id("001", 1), "bad", make_id("001", 2)], "AccountId": [None, None, 7]}
    )
    result = transform_columns(chunk, ["Id", "AccountId"], {"Id": "id", "AccountId": "id"}, key_prefix="001")
    assert result.frame["id"].tolist() == [make_id("001", 1)]
    assert [r.reason for r in result.rejects] == [
        "Id: 'bad' is not a valid Salesforce Id",
        "AccountId: 7 is not a valid Salesforce Id",
    ]


def test_non_string_values_in_text_columns_take_the_per_value_path():
    result = transform([record(1, Name=12345), record(2, Name={"a": 1})], FIELDS, KINDS, key_prefix="001")
    assert result.frame["name"].tolist() == ["12345"]
    assert "structured value" in result.rejects[0].reason


def test_a_record_without_some_field_reads_it_as_null():
    sparse = record(1)
    del sparse["Email"], sparse["Birthdate"]
    result = transform([record(2), sparse], FIELDS, KINDS, key_prefix="001")
    assert result.rejects == []
    assert result.frame["email"].tolist() == ["mixed.case@example.com", None]
    assert result.frame["birthdate"].tolist() == ["1990-02-03", None]


def test_rows_keep_arrival_order_and_duplicates_keep_the_latest():
    records = [
        record(3, SystemModstamp="2026-11-05T10:00:00.000+0000"),
        record(1, Name="old", SystemModstamp="2026-11-03T10:00:00.000+0000"),
        record(2, SystemModstamp="2026-11-01T10:00:00.000+0000"),
        record(1, Name="new", SystemModstamp="2026-11-04T10:00:00.000+0000"),
        record(1, Name="same stamp, arrived last", SystemModstamp="2026-11-04T10:00:00.000+0000"),
    ]
    result = transform(records, FIELDS, KINDS, key_prefix="001")
    assert result.frame["id"].tolist() == [make_id("001", 3), make_id("001", 2), make_id("001", 1)]
    assert result.frame["name"].tolist()[-1] == "same stamp, arrived last"
    assert result.duplicates_dropped == 2


def test_datetime_columns_are_utc_timestamps_with_nat_for_null():
    result = transform([record(1, CreatedDate=None), record(2)], FIELDS, KINDS, key_prefix="001")
    assert str(result.frame["created_date"].dtype) == "datetime64[us, UTC]"
    assert result.frame["created_date"].isna().tolist() == [True, False]
    assert str(result.frame["system_modstamp"].dtype) == "datetime64[us, UTC]"


def test_a_datetime_before_the_year_1_is_rejected_not_left_to_fail_the_copy():
    from salesforce_pipeline.conversions import convert_column

    converted, problems = convert_column(["-2", "2026-12-05T10:00:00.000+0000", None], "datetime", "F", None)
    assert converted.isna().tolist() == [True, False, True]
    assert problems == {0: "F: '-2' is not a datetime"}


def test_emails_lose_nul_and_padding_and_text_keeps_padding():
    result = transform(
        [record(1, Email=" A\x00B@X.EXAMPLE ", Name="  padded  ")], FIELDS, KINDS, key_prefix="001"
    )
    assert result.frame.iloc[0]["email"] == "ab@x.example"
    assert result.frame.iloc[0]["name"] == "  padded  "


def test_a_field_missing_from_the_chunk_is_null():
    chunk = ColumnChunk(1, {name: [value] for name, value in record(1).items() if name != "Birthdate"})
    result = transform_columns(chunk, FIELDS, KINDS, key_prefix="001")
    assert result.frame["birthdate"].tolist() == [None]
