"""One converter per column kind: a column of values as sent to loadable values, and why not.

Each kind's rule exists once, as a function over a whole column: REST sends JSON values (strings,
numbers, booleans), Bulk API 2.0 sends every value as a string, and both must come out the same.
The kinds most columns have (text, Ids, datetimes) are checked by C-level passes over the
column; a column holding anything unusual (a number where text belongs) is converted value by
value, by the same function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: A converted column and the reasons its unloadable values were left out, by row position.
Converted = tuple[Any, dict[int, str]]

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Bits 1, 2, 4, 8, 16 of a 5-character chunk of a 15-character Id, for the checksum.
_CHUNK_WEIGHTS = (1, 2, 4, 8, 16)
_ID_LENGTH = 18
_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


class _Invalid(Exception):
    pass


def convert_column(values: Sequence[Any], kind: str, api_name: str, key_prefix: str | None) -> Converted:
    """Convert one column of `kind` (see `transform.kind_for`); returns (values, {position: reason}).

    A value that cannot be loaded is None in the result, and its reason names `api_name`.
    `key_prefix` is the object's Id prefix, checked on an `id` column when given.
    """
    return _CONVERTERS[kind](values, api_name, key_prefix)


def valid_ids(values: Sequence[Any], key_prefix: str | None = None) -> np.ndarray:
    """Which values are Salesforce Ids, as a numpy bool array.

    An Id is 18 ASCII letters and digits whose last three are the checksum of the first fifteen
    (in either case; it makes a 15-character Id case-insensitive), starting with `key_prefix`
    when given. None and other non-strings are not Ids. One pass over an (n, 18) array of
    code points, instead of a Python loop per Id.
    """
    import numpy as np

    count = len(values)
    if count == 0:
        return np.zeros(0, dtype=bool)
    if None in values or not _all_strings(values):
        values = [value if type(value) is str else "" for value in values]
    valid = np.fromiter(map(len, values), dtype=np.intp, count=count) == _ID_LENGTH
    codes: np.ndarray
    try:  # Text that is not ASCII cannot be an Id; as code points it is reported like any other.
        codes = np.array(values, dtype=f"S{_ID_LENGTH}").view(np.uint8).reshape(count, _ID_LENGTH)
    except UnicodeEncodeError:
        codes = np.array(values, dtype=f"U{_ID_LENGTH}").view(np.uint32).reshape(count, _ID_LENGTH)
    upper = (codes >= 65) & (codes <= 90)
    lower = (codes >= 97) & (codes <= 122)
    digit = (codes >= 48) & (codes <= 57)
    valid &= (upper | lower | digit).all(axis=1)
    bits = (upper[:, :15].reshape(count, 3, 5) * np.array(_CHUNK_WEIGHTS, dtype=np.uint8)).sum(axis=2)
    expected = np.frombuffer(_CHECKSUM_ALPHABET.encode("ascii"), dtype=np.uint8)[bits]
    suffix = codes[:, 15:] - np.where(lower[:, 15:], 32, 0).astype(codes.dtype)  # case-insensitive suffix
    valid &= (suffix == expected).all(axis=1)
    for position, char in enumerate(key_prefix or ""):
        valid &= codes[:, position] == ord(char)
    return valid


def _ids(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    import numpy as np

    valid = valid_ids(values, key_prefix)
    if None in values:
        valid[[position for position, value in enumerate(values) if value is None]] = True  # null is no Id
    problems = {
        position: f"{api_name}: {values[position]!r} is not a valid Salesforce Id"
        for position in map(int, np.flatnonzero(~valid))
    }
    if not problems:
        return list(values), {}
    return [None if position in problems else value for position, value in enumerate(values)], problems


def _all_strings(values: Sequence[Any]) -> bool:
    """Every non-null value is a str (pandas' C-level type inference; no Python loop)."""
    from pandas.api.types import infer_dtype

    return infer_dtype(values, skipna=True) in ("string", "empty")


def _texts(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    """Text exactly as sent, minus NUL characters (Postgres text cannot hold them). A number or a
    boolean is written as text; a JSON object or list where text belongs is rejected."""
    problems: dict[int, str] = {}
    if not _all_strings(values):
        values, problems = _per_value(values, _as_text, api_name)
    # One C-level scan of the column's text for the rare NUL; the values are reused as they are.
    if "\x00" not in "".join(filter(None, values)):
        return list(values), problems
    return [None if value is None else value.replace("\x00", "") for value in values], problems


def _emails(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    """Text, trimmed and lower-cased."""
    texts, problems = _texts(values, api_name, key_prefix)
    return [None if text is None else text.strip().lower() for text in texts], problems


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise _Invalid("a structured value where text was expected")
    return str(value)


def _booleans(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    """REST sends JSON booleans (kept as they are); Bulk sends "true"/"false" text."""
    converted = list(values)
    problems: dict[int, str] = {}
    for position, value in enumerate(values):
        if value is True or value is False or value is None:
            continue
        text = value.lower() if isinstance(value, str) else None
        if text in ("true", "false"):
            converted[position] = text == "true"
        else:
            converted[position] = None
            problems[position] = f"{api_name}: {value!r} is not a boolean"
    return converted, problems


def _numbers(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    return _per_value(values, _as_number, api_name)


def _as_number(value: Any) -> str:
    """The number's exact digits without trailing fractional zeros (no rounding, no exponent).

    REST sends a currency as a JSON number (`59926000.0`), Bulk API 2.0 as text (`59926000`);
    both must land as the same numeric, scale included, or the two paths load different tables.
    """
    if isinstance(value, bool):
        raise _Invalid(f"{value!r} is not a number")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Invalid(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise _Invalid(f"{value!r} is not a finite number")
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _integers(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    return _per_value(values, _as_integer, api_name)


def _as_integer(value: Any) -> int:
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


def _dates(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    return _per_value(values, _as_date, api_name)


def _as_date(value: Any) -> str:
    text = str(value)
    if not _DATE_PATTERN.match(text):
        raise _Invalid(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        date.fromisoformat(text)  # a real calendar day: 2026-02-30 or year 0000 would fail the COPY
    except ValueError:
        raise _Invalid(f"{value!r} is not a calendar date") from None
    return text


def _datetimes(values: Sequence[Any], api_name: str, key_prefix: str | None) -> Converted:
    """Salesforce datetimes (`…T20:49:32.000+0000` from REST, `…Z` from Bulk) as UTC timestamps:
    a `datetime64[us, UTC]` Series (parsed by pandas in C, NaT for null)."""
    import pandas as pd

    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce").astype("datetime64[us, UTC]")
    # pandas reads "-2" as the year -2, which no timestamptz holds: it would fail the whole COPY.
    parsed = parsed.mask(parsed.dt.year < 1)
    problems = {
        int(position): f"{api_name}: {values[position]!r} is not a datetime"
        for position in series.index[series.notna() & parsed.isna()]
    }
    return parsed, problems


def _per_value(values: Sequence[Any], convert: Callable[[Any], Any], api_name: str) -> Converted:
    problems: dict[int, str] = {}
    converted: list[Any] = [None] * len(values)
    for position, value in enumerate(values):
        if value is None:
            continue
        try:
            converted[position] = convert(value)
        except _Invalid as exc:
            problems[position] = f"{api_name}: {exc}"
    return converted, problems


_CONVERTERS: dict[str, Callable[[Sequence[Any], str, str | None], Converted]] = {
    "id": _ids,
    "text": _texts,
    "email": _emails,
    "numeric": _numbers,
    "integer": _integers,
    "boolean": _booleans,
    "date": _dates,
    "datetime": _datetimes,
}
