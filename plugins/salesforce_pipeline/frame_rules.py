"""One converter per column kind, over a polars column of text (WORK IN PROGRESS, branch polars-prepare).

Why: preparing batches in pandas holds the GIL, so the slices of a large load take turns on one
core (docs/large-loads.md, "What is not done"). Polars decodes pages and runs these checks without
the GIL. Every page arrives here as text columns: REST JSON decoded with every field declared as a
string (polars writes a number's digits and a boolean's `true`/`false`), Bulk API 2.0 CSV as it is.

Each kind has one rule, the per-value function in `conversions`. A column is split in two:
values already in the rule's normal form (the rule would return them unchanged) are taken as
they are by a vectorised check, and only the others go through the per-value rule, which
converts them or says why not. So the vectorised part can never disagree with the rule; it can
only send a value the slow way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from salesforce_pipeline import conversions as rules

#: A converted column and the reasons its unloadable values were left out, by row position.
Converted = tuple[pl.Series, dict[int, str]]

# Already what the rule returns: no sign but a minus, no leading zero, no trailing fractional zero.
_CANONICAL_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"
# At most 18 digits: always inside a bigint.
_CANONICAL_INTEGER = r"^-?(0|[1-9][0-9]{0,17})$"
_CANONICAL_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# As Salesforce sends them: REST `2026-12-05T10:00:00.000+0000`, Bulk API 2.0 `…00.000Z`.
_CANONICAL_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(\+0000|Z)$"
_DATETIME = pl.Datetime("us", "UTC")


def convert_column(values: pl.Series, kind: str, api_name: str, key_prefix: str | None) -> Converted:
    """Convert one text column of `kind`; returns (values, {position: reason}), a value that
    cannot be loaded null in the result and its reason naming `api_name`."""
    return _CONVERTERS[kind](values, api_name, key_prefix)


def _ids(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    texts = values.to_list()
    valid = rules.valid_ids(texts, key_prefix) | values.is_null().to_numpy()
    if valid.all():
        return values, {}
    bad = np.flatnonzero(~valid)
    problems = {int(p): f"{api_name}: {texts[p]!r} is not a valid Salesforce Id" for p in bad}
    return _nulled(values, bad), problems


def _texts(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    return values.str.replace_all("\x00", "", literal=True), {}


def _emails(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    texts, problems = _texts(values, api_name, key_prefix)
    # Python's strip() also takes the separators U+001C-U+001F, which are no Unicode whitespace.
    padded = texts.str.contains(r"^[\s\x1c-\x1f]|[\s\x1c-\x1f]$")
    canonical = texts.is_null() | ((texts == texts.str.to_lowercase()) & ~padded)
    return _per_value_where(texts, ~canonical, lambda text: text.strip().lower(), api_name, problems)


def _numbers(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    canonical = values.is_null() | values.str.contains(_CANONICAL_NUMBER)
    return _per_value_where(values, ~canonical, rules._as_number, api_name, {})


def _integers(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    canonical = values.is_null() | values.str.contains(_CANONICAL_INTEGER)
    converted, problems = _per_value_where(values, ~canonical, lambda v: str(rules._as_integer(v)), api_name, {})
    return converted.cast(pl.Int64), problems


def _booleans(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    lowered = values.str.to_lowercase()
    known = values.is_null() | lowered.is_in(["true", "false"])
    problems = {
        int(p): f"{api_name}: {values[int(p)]!r} is not a boolean" for p in np.flatnonzero(~known.to_numpy())
    }
    converted = pl.select(pl.when(known).then(lowered == "true")).to_series()
    return converted.alias(values.name), problems


def _dates(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    parsed = values.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    # Year 0 parses here but is no calendar date to Python or Postgres: the rule decides it.
    canonical = values.is_null() | (
        values.str.contains(_CANONICAL_DATE) & parsed.is_not_null() & ~values.str.starts_with("0000")
    )
    converted, problems = _per_value_where(values, ~canonical, rules._as_date, api_name, {})
    return converted.str.strptime(pl.Date, "%Y-%m-%d"), problems


def _datetimes(values: pl.Series, api_name: str, key_prefix: str | None) -> Converted:
    parsed = values.str.strptime(_DATETIME, "%Y-%m-%dT%H:%M:%S%.3f%#z", strict=False)
    canonical = values.is_null() | (
        values.str.contains(_CANONICAL_DATETIME) & parsed.is_not_null() & ~values.str.starts_with("0000")
    )
    if canonical.all():
        return parsed, {}
    # The rule for anything else is pandas' ISO 8601 parser, as before the port.
    odd = np.flatnonzero(~canonical.to_numpy())
    texts = [values[int(p)] for p in odd]
    stamps, problems = rules._datetimes(texts, api_name, None)
    fixed = pl.Series(stamps.dt.tz_localize(None).to_numpy()).dt.replace_time_zone("UTC")
    converted = parsed.clone().scatter(odd, fixed)
    return converted, {int(odd[i]): reason for i, reason in problems.items()}


def _per_value_where(
    values: pl.Series, slow: pl.Series, convert: Any, api_name: str, problems: dict[int, str]
) -> Converted:
    """`values` with the positions in `slow` converted one by one by `convert` (the rule), a
    value it refuses null and its reason in `problems`."""
    positions = np.flatnonzero(slow.to_numpy())
    if not len(positions):
        return values, problems
    replaced: list[str | None] = []
    for position in map(int, positions):
        value = values[position]
        try:
            replaced.append(convert(value))
        except rules._Invalid as exc:
            replaced.append(None)
            problems[position] = f"{api_name}: {exc}"
    return values.clone().scatter(positions, pl.Series(replaced, dtype=pl.String)), problems


def _nulled(values: pl.Series, positions: np.ndarray) -> pl.Series:
    return values.clone().scatter(positions, pl.Series([None] * len(positions), dtype=values.dtype))


_CONVERTERS = {
    "id": _ids,
    "text": _texts,
    "email": _emails,
    "numeric": _numbers,
    "integer": _integers,
    "boolean": _booleans,
    "date": _dates,
    "datetime": _datetimes,
}
