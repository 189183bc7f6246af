"""Pages as polars frames of text columns, one per selected field.

REST query pages are read by polars' JSON reader with every field declared as a string: numbers
come out as their digits, booleans as `true`/`false`, so a REST page and a Bulk API 2.0 page (text
already) meet the same rules in `frame_rules`. A relationship field (`Account.Name`) is read from
its parent object, null when the parent is null.

A JSON object or list where a scalar belongs makes polars refuse the whole page. Such a page is
decoded again by `RestColumnDecoder` (msgspec), value by value: each structured value becomes
null, with its reason, so that the record is rejected as before.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from typing import Any

from salesforce_pipeline.frames import pl
from salesforce_pipeline.rest_columns import RestColumnDecoder

#: Why a record is rejected when a structured value stands where a scalar belongs.
STRUCTURED = "a structured value where text was expected"


def rest_page_frame(body: bytes, fields: Sequence[str]) -> tuple[pl.DataFrame, dict[int, list[str]]]:
    """A REST page as a frame of text columns named by API name, and the reasons found while
    decoding it, by row position."""
    try:
        return _flatten(pl.read_json(io.BytesIO(body), schema=_rest_schema(tuple(fields))), fields), {}
    except pl.exceptions.ComputeError:
        return _values_one_by_one(body, fields)


@functools.lru_cache(maxsize=8)
def _rest_schema(fields: tuple[str, ...]) -> dict[str, Any]:
    tops: dict[str, Any] = {}
    for name in fields:
        top, _, child = name.partition(".")
        if child:
            parent = tops.get(top)
            children = dict(parent.to_schema()) if isinstance(parent, pl.Struct) else {}
            children[child] = pl.String
            tops[top] = pl.Struct(children)
        else:
            tops.setdefault(top, pl.String)
    return {"records": pl.List(pl.Struct(tops))}


def _flatten(page: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    records = page.select(pl.col("records").explode()).unnest("records")
    if len(page) and page["records"].list.len().sum() == 0:
        records = records.clear()
    columns = []
    for name in fields:
        top, _, child = name.partition(".")
        column = pl.col(top).struct.field(child) if child else pl.col(top)
        columns.append(column.alias(name))
    return records.select(columns)


def _values_one_by_one(body: bytes, fields: Sequence[str]) -> tuple[pl.DataFrame, dict[int, list[str]]]:
    chunk, _done, _next = RestColumnDecoder(fields)(body)
    problems: dict[int, list[str]] = {}
    columns = {}
    for name in fields:
        texts = []
        for position, value in enumerate(chunk.columns[name]):
            if isinstance(value, (dict, list)):
                problems.setdefault(position, []).append(f"{name}: {STRUCTURED}")
                texts.append(None)
            else:
                texts.append(_as_json_text(value))
        columns[name] = pl.Series(name, texts, dtype=pl.String)
    return pl.DataFrame(columns), problems


def _as_json_text(value: Any) -> str | None:
    """A scalar as polars' reader writes it: a string as it is, a boolean `true`/`false`, a number
    by its JSON text (the rules read the digits)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
