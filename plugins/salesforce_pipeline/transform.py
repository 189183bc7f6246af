"""Turn Salesforce records into warehouse rows: pure functions over pandas, no I/O.

The same functions serve both extraction paths: REST pages (JSON, nested relationship objects,
typed values) and Bulk API 2.0 pages (CSV, dotted relationship columns, every value a string),
so both paths load identical tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Kinds of column, from describe's field types. Everything not listed is text.
KIND_BY_SALESFORCE_TYPE = {
    "id": "id",
    "reference": "id",
    "datetime": "datetime",
    "date": "date",
    "currency": "numeric",
    "double": "numeric",
    "percent": "numeric",
    "int": "integer",
    "long": "integer",
    "boolean": "boolean",
    "email": "email",
}

POSTGRES_TYPE_BY_KIND = {
    "id": "varchar(18)",
    "datetime": "timestamptz",
    "date": "date",
    "numeric": "numeric",
    "integer": "bigint",
    "boolean": "boolean",
    "email": "text",
    "text": "text",
}

_ID_PATTERN = re.compile(r"^[A-Za-z0-9]{18}$")
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(api_name: str) -> str:
    """Salesforce API name to a column name.

    `SystemModstamp` → `system_modstamp`, `AccountId` → `account_id`, `Health_Score__c` →
    `health_score__c`, and a relationship path `Account.Name` → `account_name`.
    """
    parts = []
    for part in api_name.split("."):
        suffix = ""
        for custom_suffix in ("__c", "__r"):
            if part.endswith(custom_suffix):
                part, suffix = part[: -len(custom_suffix)], custom_suffix
        parts.append(_CAMEL_BOUNDARY.sub("_", part).lower() + suffix)
    return "_".join(parts)


def kind_for(salesforce_type: str, field_name: str = "") -> str:
    """The column kind for a describe field type (`datetime`, `currency`, ...)."""
    return KIND_BY_SALESFORCE_TYPE.get(salesforce_type, "text")


def postgres_type(kind: str) -> str:
    return POSTGRES_TYPE_BY_KIND[kind]


def id_checksum(id15: str) -> str:
    """The three-character suffix that makes a 15-character Id case-insensitive."""
    suffix = ""
    for start in range(0, 15, 5):
        bits = 0
        for position, char in enumerate(id15[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_ALPHABET[bits]
    return suffix


def is_valid_id(value: Any, key_prefix: str | None = None) -> bool:
    """An 18-character Salesforce Id with a correct checksum (and key prefix, when given)."""
    if not isinstance(value, str) or not _ID_PATTERN.match(value):
        return False
    if key_prefix and not value.startswith(key_prefix):
        return False
    return id_checksum(value[:15]) == value[15:].upper()


def flatten_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Drop `attributes` and flatten parent relationships into dotted keys (`Account.Name`)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, Mapping):
            for child_key, child_value in flatten_record(value).items():
                flat[f"{key}.{child_key}"] = child_value
        else:
            flat[key] = value
    return flat


def blank_to_none(record: Mapping[str, str]) -> dict[str, Any]:
    """Bulk API 2.0 CSV writes null as an empty field; make it None like the JSON API."""
    return {key: (None if value == "" else value) for key, value in record.items()}


@dataclass
class Reject:
    """A record that cannot be loaded, with why and its raw form."""

    record_id: str | None
    reason: str
    raw_record: str


@dataclass
class TransformResult:
    """Rows ready to load (snake_case columns, loadable values) and the records rejected."""

    frame: pd.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    duplicates_dropped: int = 0


class _Invalid(Exception):
    pass


def _convert_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise _Invalid("a structured value where text was expected")
    # Postgres text cannot hold NUL; everything else is kept exactly as Salesforce sent it.
    return str(value).replace("\x00", "")


def _convert_email(value: Any) -> str:
    return _convert_text(value).strip().lower()


def _convert_numeric(value: Any) -> str:
    if isinstance(value, bool):
        raise _Invalid(f"{value!r} is not a number")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Invalid(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise _Invalid(f"{value!r} is not a finite number")
    return text


_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def _convert_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid(f"{value!r} is not an integer")
    if isinstance(value, int):
        number = value
    else:
        try:
            parsed = Decimal(str(value).strip())
        except InvalidOperation:
            raise _Invalid(f"{value!r} is not an integer") from None
        if not parsed.is_finite() or parsed != parsed.to_integral_value():
            raise _Invalid(f"{value!r} is not an integer")
        number = int(parsed)
    # A value the bigint column cannot hold would fail the whole COPY; reject just this record.
    if not _BIGINT_MIN <= number <= _BIGINT_MAX:
        raise _Invalid(f"{value!r} is outside the range of a bigint column")
    return number


def _convert_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Invalid(f"{value!r} is not a boolean")


def _convert_date(value: Any) -> str:
    text = str(value)
    if not _DATE_PATTERN.match(text):
        raise _Invalid(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        date.fromisoformat(text)  # a real calendar day: 2026-02-30 or year 0000 would fail the COPY
    except ValueError:
        raise _Invalid(f"{value!r} is not a calendar date") from None
    return text


_CONVERTERS = {
    "text": _convert_text,
    "email": _convert_email,
    "numeric": _convert_numeric,
    "integer": _convert_integer,
    "boolean": _convert_boolean,
    "date": _convert_date,
}


def _convert_column(values: Sequence[Any], kind: str, api_name: str, key_prefix: str | None):
    """Convert one column; returns (converted values, {row position: reason})."""
    problems: dict[int, str] = {}
    converted: list[Any] = [None] * len(values)
    if kind == "id":
        for position, value in enumerate(values):
            if value is None:
                continue
            if is_valid_id(value, key_prefix):
                converted[position] = value
            else:
                problems[position] = f"{api_name}: {value!r} is not a valid Salesforce Id"
        return converted, problems
    converter = _CONVERTERS[kind]
    for position, value in enumerate(values):
        if value is None:
            continue
        try:
            converted[position] = converter(value)
        except _Invalid as exc:
            problems[position] = f"{api_name}: {exc}"
    return converted, problems


def _raw_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)


def transform_records(
    records: Iterable[Mapping[str, Any]],
    fields: Sequence[str],
    kinds: Mapping[str, str],
    *,
    key_prefix: str,
) -> TransformResult:
    """Records of one object (already flat, dotted relationship keys) to loadable rows.

    `fields` are the API names extracted, `kinds` their column kinds (see `kind_for`). Values
    are checked and normalised by kind; a record with any value that cannot be loaded goes to
    the rejects with every reason found. Duplicate Ids keep the latest SystemModstamp.
    """
    import pandas as pd

    raw = list(records)
    columns: dict[str, list[Any]] = {}
    problems_by_row: dict[int, list[str]] = {}
    for api_name in fields:
        values = [record.get(api_name) for record in raw]
        kind = kinds.get(api_name, "text")
        if api_name == "SystemModstamp" or kind == "datetime":
            converted, problems = _convert_datetimes(values, api_name)
        else:
            prefix = key_prefix if api_name == "Id" else None
            converted, problems = _convert_column(values, kind, api_name, prefix)
        for position, reason in problems.items():
            problems_by_row.setdefault(position, []).append(reason)
        columns[api_name] = converted

    for position, record in enumerate(raw):
        for required in ("Id", "SystemModstamp", "IsDeleted"):
            if record.get(required) is None and required in columns:
                problems_by_row.setdefault(position, []).append(f"{required}: missing")

    rejects = [
        Reject(
            record_id=raw[position].get("Id") if isinstance(raw[position].get("Id"), str) else None,
            reason="; ".join(reasons),
            raw_record=_raw_json(raw[position]),
        )
        for position, reasons in sorted(problems_by_row.items())
    ]
    keep = [position for position in range(len(raw)) if position not in problems_by_row]
    frame = pd.DataFrame(
        {snake_case(api_name): [columns[api_name][p] for p in keep] for api_name in fields},
        dtype=object,
    )
    frame = frame.astype({"system_modstamp": "datetime64[us, UTC]"}) if len(frame) else frame
    before = len(frame)
    if before:
        # Stable sort, so among equal stamps the record that arrived last wins.
        frame = (
            frame.sort_values("system_modstamp", kind="stable")
            .drop_duplicates(subset="id", keep="last")
            .reset_index(drop=True)
        )
    return TransformResult(frame=frame, rejects=rejects, duplicates_dropped=before - len(frame))


def _convert_datetimes(values: Sequence[Any], api_name: str):
    """Salesforce datetimes (`…T20:49:32.000+0000` from REST, `…Z` from Bulk) as UTC timestamps."""
    import pandas as pd

    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
    problems = {
        int(position): f"{api_name}: {values[position]!r} is not a datetime"
        for position in series.index[series.notna() & parsed.isna()]
    }
    converted = [None if pd.isna(stamp) else stamp for stamp in parsed]
    return converted, problems
