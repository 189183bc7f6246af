"""Turn Salesforce records into warehouse rows: pure functions over pandas, no I/O.

The same functions serve both extraction paths, which hand over records as columns
(`ColumnChunk`): REST pages (JSON, typed values) and Bulk API 2.0 pages (CSV, every value a
string), so both paths load identical tables.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.column_chunk import ColumnChunk

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


def kind_for(salesforce_type: str) -> str:
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
    return _canonical_number(number)


def _canonical_number(number: Decimal) -> str:
    """The number's exact digits without trailing fractional zeros (no rounding, no exponent).

    REST sends a currency as a JSON number (`59926000.0`), Bulk API 2.0 as text (`59926000`);
    both must land as the same numeric, scale included, or the two paths load different tables.
    """
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
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
    """Convert one column; returns (converted values, {row position: reason}).

    The kinds most columns have (text, ids) take vectorised paths; a column holding anything
    unusual (a number where text was expected, a non-string Id) takes the per-value path.
    """
    if kind == "id":
        fast = _convert_ids(values, api_name, key_prefix)
        if fast is not None:
            return fast
        return _convert_values(values, _check_id(key_prefix), api_name)
    if kind in ("text", "email"):
        fast = _convert_texts(values, email=kind == "email")
        if fast is not None:
            return fast, {}
    if kind == "boolean":
        return _convert_booleans(values, api_name)
    return _convert_values(values, _CONVERTERS[kind], api_name)


def _convert_values(values: Sequence[Any], converter, api_name: str):
    problems: dict[int, str] = {}
    converted: list[Any] = [None] * len(values)
    for position, value in enumerate(values):
        if value is None:
            continue
        try:
            converted[position] = converter(value)
        except _Invalid as exc:
            problems[position] = f"{api_name}: {exc}"
    return converted, problems


def _check_id(key_prefix: str | None):
    def check(value: Any) -> str:
        if not is_valid_id(value, key_prefix):
            raise _Invalid(f"{value!r} is not a valid Salesforce Id")
        return value

    return check


def _all_strings(values: Sequence[Any]) -> bool:
    """Every non-null value is a str (pandas' C-level type inference; no Python loop)."""
    from pandas.api.types import infer_dtype

    return infer_dtype(values, skipna=True) in ("string", "empty")


def _convert_texts(values: Sequence[Any], *, email: bool) -> list[Any] | None:
    """Text kept exactly as sent, minus NUL (Postgres text cannot hold it); emails trimmed and
    lower-cased. None when the column holds non-strings, for the per-value path."""
    if not _all_strings(values):
        return None
    if email:
        return [None if value is None else value.replace("\x00", "").strip().lower() for value in values]
    # One C-level scan of the column's text for the rare NUL; the values are reused as they are.
    if "\x00" not in "".join(filter(None, values)):
        return list(values)
    return [None if value is None else value.replace("\x00", "") for value in values]


# Bits 1, 2, 4, 8, 16 of a 5-character chunk of a 15-character Id, for the checksum.
_CHUNK_WEIGHTS = (1, 2, 4, 8, 16)


def _convert_ids(values: Sequence[Any], api_name: str, key_prefix: str | None):
    """Check a column of Ids with numpy: shape, alphabet, checksum and key prefix in one pass.

    The same rules as `is_valid_id`, on an (n, 18) array of code points instead of a Python loop
    per Id. None when the column holds non-strings, for the per-value path.
    """
    import numpy as np

    if not _all_strings(values):
        return None
    count = len(values)
    if count == 0:
        return [], {}
    # 'S19' stores each value as 19 bytes, zero-padded and cut after 19: an Id has 18 ASCII
    # alphanumerics and a zero in the 19th place. Text that is not ASCII cannot be an Id; it
    # takes 'U19' (19 code points) so that it is reported like any other bad value.
    # (None becomes "None": left out below.)
    try:
        wide = np.array(values, dtype="S19").view(np.uint8).reshape(count, 19)
    except UnicodeEncodeError:
        wide = np.array(values, dtype="U19").view(np.uint32).reshape(count, 19)
    codes = wide[:, :18]
    upper = (codes >= 65) & (codes <= 90)
    lower = (codes >= 97) & (codes <= 122)
    digit = (codes >= 48) & (codes <= 57)
    valid = (wide[:, 18] == 0) & (upper | lower | digit).all(axis=1)
    bits = (upper[:, :15].reshape(count, 3, 5) * np.array(_CHUNK_WEIGHTS, dtype=np.uint8)).sum(axis=2)
    expected = np.frombuffer(_CHECKSUM_ALPHABET.encode("ascii"), dtype=np.uint8)[bits]
    suffix = codes[:, 15:] - np.where(lower[:, 15:], 32, 0).astype(codes.dtype)  # case-insensitive suffix
    valid &= (suffix == expected).all(axis=1)
    for position, char in enumerate(key_prefix or ""):
        valid &= codes[:, position] == ord(char)
    present = np.ones(count, dtype=bool)
    if None in values:
        present[[position for position, value in enumerate(values) if value is None]] = False
    problems = {
        int(position): f"{api_name}: {values[position]!r} is not a valid Salesforce Id"
        for position in np.flatnonzero(present & ~valid)
    }
    if not problems:
        return list(values), {}
    converted = [None if position in problems else value for position, value in enumerate(values)]
    return converted, problems


def _convert_booleans(values: Sequence[Any], api_name: str):
    # REST sends JSON booleans (kept as they are); Bulk sends "true"/"false" text.
    converted: list[Any] = [None] * len(values)
    problems: dict[int, str] = {}
    for position, value in enumerate(values):
        if value is True or value is False or value is None:
            converted[position] = value
            continue
        try:
            converted[position] = _convert_boolean(value)
        except _Invalid as exc:
            problems[position] = f"{api_name}: {exc}"
    return converted, problems


def _raw_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)


def columns_of_records(records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> ColumnChunk:
    """Flat records (dotted relationship keys) as a column chunk of `fields` (None when missing)."""
    raw = records if isinstance(records, list) else list(records)
    return ColumnChunk(len(raw), dict(zip(fields, _columns_of(raw, fields), strict=True)))


def transform_records(
    records: Iterable[Mapping[str, Any]],
    fields: Sequence[str],
    kinds: Mapping[str, str],
    *,
    key_prefix: str,
) -> TransformResult:
    """Records of one object (already flat, dotted relationship keys) to loadable rows.

    `transform_columns` on the records' columns; a rejected record's raw JSON is the record.
    """
    raw = records if isinstance(records, list) else list(records)
    return transform_columns(
        columns_of_records(raw, fields), fields, kinds, key_prefix=key_prefix, raw_records=raw
    )


def transform_columns(
    chunk: ColumnChunk,
    fields: Sequence[str],
    kinds: Mapping[str, str],
    *,
    key_prefix: str,
    raw_records: Sequence[Mapping[str, Any]] | None = None,
) -> TransformResult:
    """Columns of one object's records to loadable rows.

    `fields` are the API names extracted, `kinds` their column kinds (see `kind_for`). Values
    are checked and normalised by kind; a record with any value that cannot be loaded goes to
    the rejects with every reason found, its raw JSON taken from `raw_records` when given, else
    from its values in the chunk. Duplicate Ids keep the latest SystemModstamp. Datetime
    columns are `datetime64[us, UTC]` (NaT for null); the others hold Python values (str, bool,
    int, numeric text, None). Rows keep the order the records arrived in.
    """
    import numpy as np
    import pandas as pd

    count = chunk.count
    missing_column = (None,) * count
    raw_columns = {api_name: chunk.columns.get(api_name, missing_column) for api_name in fields}
    columns: dict[str, Any] = {}
    problems_by_row: dict[int, list[str]] = {}
    for api_name, values in raw_columns.items():
        kind = kinds.get(api_name, "text")
        if api_name == "SystemModstamp" or kind == "datetime":
            converted, problems = _convert_datetimes(values, api_name)
        else:
            prefix = key_prefix if api_name == "Id" else None
            converted, problems = _convert_column(values, kind, api_name, prefix)
        for position, reason in problems.items():
            problems_by_row.setdefault(position, []).append(reason)
        columns[api_name] = converted

    for required in ("Id", "SystemModstamp", "IsDeleted"):
        if required in raw_columns and None in raw_columns[required]:
            for position, value in enumerate(raw_columns[required]):
                if value is None:
                    problems_by_row.setdefault(position, []).append(f"{required}: missing")

    def raw_record(position: int) -> Mapping[str, Any]:
        if raw_records is not None:
            return raw_records[position]
        return {api_name: values[position] for api_name, values in raw_columns.items()}

    rejects = []
    for position, reasons in sorted(problems_by_row.items()):
        record = raw_record(position)
        record_id = record.get("Id")
        rejects.append(
            Reject(
                record_id=record_id if isinstance(record_id, str) else None,
                reason="; ".join(reasons),
                raw_record=_raw_json(record),
            )
        )
    keep = None
    if problems_by_row:
        keep = np.array([p for p in range(count) if p not in problems_by_row], dtype=np.int64)
    frame_columns = {}
    for api_name in fields:
        converted = columns[api_name]
        if isinstance(converted, pd.Series):  # datetimes, already typed
            column = converted if keep is None else converted.take(keep).reset_index(drop=True)
        else:
            if keep is not None:
                converted = [converted[p] for p in keep]
            # dtype=object keeps Python values exactly (pandas 3 would infer its own str dtype).
            column = pd.Series(converted, dtype=object)
        frame_columns[snake_case(api_name)] = column
    frame = pd.DataFrame(frame_columns, copy=False)
    before = len(frame)
    if before and not frame["id"].is_unique:
        # Stable sort, so among equal stamps the record that arrived last wins; then back to
        # arrival order.
        frame = (
            frame.sort_values("system_modstamp", kind="stable")
            .drop_duplicates(subset="id", keep="last")
            .sort_index()
            .reset_index(drop=True)
        )
    return TransformResult(frame=frame, rejects=rejects, duplicates_dropped=before - len(frame))


def _columns_of(raw: list[Mapping[str, Any]], fields: Sequence[str]) -> list[Sequence[Any]]:
    """The records' values field by field (None for a missing key).

    Both APIs send every selected field on every record, so one itemgetter call per record and
    a zip to transpose do it in C; a record without some field sends us the per-field way.
    """
    if not raw:
        return [[] for _ in fields]
    if len(fields) > 1:
        try:
            return list(zip(*map(operator.itemgetter(*fields), raw), strict=True))
        except (KeyError, TypeError):
            pass
    return [[record.get(api_name) for record in raw] for api_name in fields]


def _convert_datetimes(values: Sequence[Any], api_name: str):
    """Salesforce datetimes (`…T20:49:32.000+0000` from REST, `…Z` from Bulk) as UTC timestamps.

    Returns a `datetime64[us, UTC]` Series (parsed by pandas in C) and the unparseable positions.
    """
    import pandas as pd

    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce").astype("datetime64[us, UTC]")
    problems = {
        int(position): f"{api_name}: {values[position]!r} is not a datetime"
        for position in series.index[series.notna() & parsed.isna()]
    }
    return parsed, problems
