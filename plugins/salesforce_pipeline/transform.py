"""Turn Salesforce records into warehouse rows: pure functions over pandas, no I/O.

The same functions serve both extraction paths, which hand over records as columns
(`ColumnChunk`): REST pages (JSON, typed values) and Bulk API 2.0 pages (CSV, every value a
string), so both paths load identical tables. Each column kind's conversion is in
`conversions`; this module names the columns, collects the rejects and keeps one row per Id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.column_chunk import ColumnChunk
from salesforce_pipeline.conversions import convert_column
from salesforce_pipeline.objects import REQUIRED_FIELDS

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
    """The warehouse column type for a column kind."""
    return POSTGRES_TYPE_BY_KIND[kind]


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


def transform_columns(
    chunk: ColumnChunk, fields: Sequence[str], kinds: Mapping[str, str], *, key_prefix: str
) -> TransformResult:
    """Columns of one object's records to loadable rows.

    `fields` are the API names extracted, `kinds` their column kinds (see `kind_for`). Values
    are checked and normalised by kind; a record with any value that cannot be loaded goes to
    the rejects with every reason found and its values as raw JSON. Duplicate Ids keep the latest
    SystemModstamp. Datetime columns are `datetime64[us, UTC]` (NaT for null); the others hold
    Python values (str, bool, int, numeric text, None). Rows keep the order the records arrived in.
    """
    missing_column = (None,) * chunk.count
    raw_columns = {api_name: chunk.columns.get(api_name, missing_column) for api_name in fields}
    converted, problems_by_row = _convert(raw_columns, kinds, key_prefix)
    rejects = [
        reject(raw_columns, position, reasons) for position, reasons in sorted(problems_by_row.items())
    ]
    frame = _frame(converted, chunk.count, problems_by_row.keys())
    latest = _latest_per_id(frame)
    return TransformResult(frame=latest, rejects=rejects, duplicates_dropped=len(frame) - len(latest))


def _convert(
    raw_columns: dict[str, Sequence[Any]], kinds: Mapping[str, str], key_prefix: str
) -> tuple[dict[str, Any], dict[int, list[str]]]:
    """Every column converted by its kind, and every reason a row cannot be loaded."""
    converted: dict[str, Any] = {}
    problems_by_row: dict[int, list[str]] = {}
    for api_name, values in raw_columns.items():
        # SystemModstamp is what the upsert guard compares, whatever describe calls it.
        kind = "datetime" if api_name == "SystemModstamp" else kinds.get(api_name, "text")
        prefix = key_prefix if api_name == "Id" else None
        converted[api_name], problems = convert_column(values, kind, api_name, prefix)
        for position, reason in problems.items():
            problems_by_row.setdefault(position, []).append(reason)
    for required in REQUIRED_FIELDS:
        required_values = raw_columns.get(required)
        if required_values is not None and None in required_values:
            for position, value in enumerate(required_values):
                if value is None:
                    problems_by_row.setdefault(position, []).append(f"{required}: missing")
    return converted, problems_by_row


def reject(raw_columns: Mapping[str, Sequence[Any]], position: int, reasons: list[str]) -> Reject:
    """The record at `position` of `raw_columns` (its values as sent), rejected for `reasons`."""
    record = {api_name: values[position] for api_name, values in raw_columns.items()}
    record_id = record.get("Id")
    return Reject(
        record_id=record_id if isinstance(record_id, str) else None,
        reason="; ".join(reasons),
        raw_record=json.dumps(record, ensure_ascii=False, default=str),
    )


def _frame(converted: dict[str, Any], count: int, rejected: Collection[int]) -> pd.DataFrame:
    """The converted columns as a frame with snake_case names, without the rejected rows."""
    import numpy as np
    import pandas as pd

    keep = np.array([p for p in range(count) if p not in rejected], dtype=np.int64) if rejected else None
    columns = {}
    for api_name, values in converted.items():
        if isinstance(values, pd.Series):  # datetimes, already typed
            column = values if keep is None else values.take(keep).reset_index(drop=True)
        else:
            if keep is not None:
                values = [values[p] for p in keep]
            # dtype=object keeps Python values exactly (pandas 3 would infer its own str dtype).
            column = pd.Series(values, dtype=object)
        columns[snake_case(api_name)] = column
    return pd.DataFrame(columns, copy=False)


def _latest_per_id(frame: pd.DataFrame) -> pd.DataFrame:
    if not len(frame) or frame["id"].is_unique:
        return frame
    # Stable sort, so among equal stamps the record that arrived last wins; then back to arrival order.
    return (
        frame.sort_values("system_modstamp", kind="stable")
        .drop_duplicates(subset="id", keep="last")
        .sort_index()
        .reset_index(drop=True)
    )
