"""One converter per column kind, over a polars column of text.

Why: preparing batches in pandas holds the GIL, so the slices of a large load take turns on one
core (docs/large-loads.md, "What is not done"). Polars decodes pages and runs these checks without
the GIL. Every page arrives here as text columns: REST JSON decoded with every field declared as a
string (polars writes a number's digits and a boolean's `true`/`false`), Bulk API 2.0 CSV as it is.

Each kind has one rule, the per-value function in `conversions`. A column is split in two: the
values in the rule's normal form, which a polars expression converts (the rule would give the
same), and the others, which go through the rule one by one; it converts them or says why not.
So the expressions can never disagree with the rule; they can only send a value the slow way.
All columns' expressions run in one `select` per page: polars' per-call cost is about 0.2 ms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from salesforce_pipeline import conversions as rules
from salesforce_pipeline.frames import pl

#: A converted column and the reasons its unloadable values were left out, by row position.
Converted = tuple[pl.Series, dict[int, str]]

# Already what the rule returns: no sign but a minus, no leading zero, no trailing fractional zero.
_CANONICAL_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"
# At most 18 digits: always inside a bigint.
_CANONICAL_INTEGER = r"^-?(0|[1-9][0-9]{0,17})$"
_CANONICAL_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# As Salesforce sends them: REST `2026-12-05T10:00:00.000+0000`, Bulk API 2.0 `…00.000Z`.
_CANONICAL_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(\+0000|Z)$"
# ASCII without the separators U+001C-U+001F, which Python's strip() takes and Unicode's does not.
_PLAIN_ASCII = r"^[\x00-\x1b\x20-\x7f]*$"
_DATETIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class ColumnPlan:
    """How one column converts: `value`, the expression for values in normal form; `canonical`,
    which values those are, given the converted value (so a parse runs once); `slow`, the rule for
    the others, over a list of raw texts, returning the converted values (as a Series of the
    column's type) and {index in that list: reason}."""

    value: pl.Expr
    canonical: Callable[[pl.Expr], pl.Expr]
    slow: Callable[[list[Any], str, str | None], Converted]


def plan(kind: str, api_name: str) -> ColumnPlan:
    """The plan for a text column named `api_name` of `kind` (see `transform.kind_for`); Ids are
    checked apart, by `id_problems`."""
    column = pl.col(api_name)
    null = column.is_null()
    if kind == "id":
        return ColumnPlan(column, _always, _no_slow)
    if kind == "text":
        return ColumnPlan(column.str.replace_all("\x00", "", literal=True), _always, _no_slow)
    if kind == "email":
        text = column.str.replace_all("\x00", "", literal=True)
        value = text.str.strip_chars().str.to_lowercase()
        return ColumnPlan(value, lambda _: null | text.str.contains(_PLAIN_ASCII), _slow(_email, pl.String))
    if kind == "numeric":
        canonical = null | column.str.contains(_CANONICAL_NUMBER)
        return ColumnPlan(column, lambda _: canonical, _slow(rules._as_number, pl.String))
    if kind == "integer":
        return ColumnPlan(
            column.cast(pl.Int64, strict=False),
            lambda _: null | column.str.contains(_CANONICAL_INTEGER),
            _slow(rules._as_integer, pl.Int64),
        )
    if kind == "boolean":
        lowered = column.str.to_lowercase()
        value = pl.when(lowered == "true").then(True).when(lowered == "false").then(False)
        return ColumnPlan(value, lambda _: null | lowered.is_in(["true", "false"]), _booleans)
    if kind == "date":
        parsed = column.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        # Year 0 parses here but is no calendar date to Python or Postgres: the rule decides it.
        form = column.str.contains(_CANONICAL_DATE) & ~column.str.starts_with("0000")
        return ColumnPlan(parsed, lambda value: null | (form & value.is_not_null()), _dates)
    if kind == "datetime":
        parsed = column.str.strptime(_DATETIME, "%Y-%m-%dT%H:%M:%S%.3f%#z", strict=False)
        form = column.str.contains(_CANONICAL_DATETIME) & ~column.str.starts_with("0000")
        return ColumnPlan(parsed, lambda value: null | (form & value.is_not_null()), _datetimes)
    raise ValueError(f"unknown column kind {kind!r}")


def id_problems(values: pl.Series, api_name: str, key_prefix: str | None) -> dict[int, str]:
    """Why each value of an Id column that is not a Salesforce Id (null is fine) is refused."""
    texts = values.to_list()
    valid = rules.valid_ids(texts, key_prefix) | values.is_null().to_numpy()
    return {int(p): f"{api_name}: {texts[p]!r} is not a valid Salesforce Id" for p in np.flatnonzero(~valid)}


def finish(
    raw: pl.Series,
    value: pl.Series,
    canonical: pl.Series,
    column_plan: ColumnPlan,
    kind: str,
    api_name: str,
    key_prefix: str | None,
) -> Converted:
    """The column's values with the ones not in normal form converted by the rule, and the reasons."""
    if kind == "id":
        problems = id_problems(raw, api_name, key_prefix)
        return _nulled(value, list(problems)), problems
    odd = np.flatnonzero(~canonical.to_numpy())
    if not len(odd):
        return value, {}
    converted, found = column_plan.slow([raw[int(p)] for p in odd], api_name, key_prefix)
    value = value.clone().scatter(odd, converted.cast(value.dtype))
    return value, {int(odd[index]): reason for index, reason in found.items()}


def _always(value: pl.Expr) -> pl.Expr:
    return pl.lit(True)


def _no_slow(values: list[Any], api_name: str, key_prefix: str | None) -> Converted:
    raise AssertionError("every value of this kind is in normal form")


def _slow(convert: Callable[[Any], Any], dtype: Any) -> Callable[[list[Any], str, str | None], Converted]:
    def run(values: list[Any], api_name: str, key_prefix: str | None) -> Converted:
        converted, problems = rules._per_value(values, convert, api_name)
        return pl.Series(converted, dtype=dtype), problems

    return run


def _email(text: str) -> str:
    return text.replace("\x00", "").strip().lower()


def _booleans(values: list[Any], api_name: str, key_prefix: str | None) -> Converted:
    converted, problems = rules._booleans(values, api_name, key_prefix)
    return pl.Series(converted, dtype=pl.Boolean), problems


def _dates(values: list[Any], api_name: str, key_prefix: str | None) -> Converted:
    converted, problems = rules._dates(values, api_name, key_prefix)
    return pl.Series(converted, dtype=pl.String).str.strptime(pl.Date, "%Y-%m-%d"), problems


def _datetimes(values: list[Any], api_name: str, key_prefix: str | None) -> Converted:
    # The rule for anything but Salesforce's own forms is pandas' ISO 8601 parser, as before.
    stamps, problems = rules._datetimes(values, api_name, key_prefix)
    return pl.Series(stamps.dt.tz_localize(None).to_numpy()).dt.replace_time_zone("UTC"), problems


def _nulled(values: pl.Series, positions: list[int]) -> pl.Series:
    if not positions:
        return values
    return values.clone().scatter(positions, pl.Series([None] * len(positions), dtype=values.dtype))
