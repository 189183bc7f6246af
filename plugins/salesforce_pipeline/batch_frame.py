"""Pages as polars frames of text columns, one per selected field: REST JSON and Bulk 2.0 CSV.

REST query pages are read by polars' JSON reader with every field declared as a string: numbers
come out as their digits, booleans as `true`/`false`, so a REST page and a Bulk API 2.0 page (text
already) meet the same rules in `frame_rules`. A relationship field (`Account.Name`) is read from
its parent object, null when the parent is null.

A JSON object or list where a scalar belongs makes polars refuse the whole page. Such a page is
decoded again by `RestColumnDecoder` (msgspec), value by value: each structured value becomes
null, with its reason, so that the record is rejected as before.

A Bulk API 2.0 results page, already checked by the hook on arrival (`bulk_csv.bulk_page_records`:
UTF-8, every record the header's width), is read by polars' CSV reader as text: an empty field is
null, as in the JSON API, and a field the header lacks is all null. A blank line is no record (the
reader makes it a row of nulls; Salesforce never sends a record without its Id).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Sequence
from typing import Any

from salesforce_pipeline.bulk_csv import header_and_body
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
        texts: list[str | None] = []
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


def bulk_page_frame(content: bytes, fields: Sequence[str]) -> pl.DataFrame:
    """A checked Bulk 2.0 results page as a frame of text columns named by API name."""
    header, content = header_and_body(content)
    if not header:
        return pl.DataFrame({name: pl.Series(name, [], dtype=pl.String) for name in fields})
    # Read with its header, so the reader takes the width from it (a blank first line would set
    # it otherwise); columns are then taken by position (the header's names are ours already).
    page = pl.read_csv(io.BytesIO(content), has_header=True, infer_schema=False, quote_char='"')
    del content
    names = page.columns
    position_of = {name: position for position, name in enumerate(header)}  # the last one, as dict() keeps
    columns = []
    for name in fields:
        position = position_of.get(name)
        if position is None:
            columns.append(pl.lit(None, dtype=pl.String).alias(name))
        else:
            column = pl.col(names[position])
            columns.append(pl.when(column.str.len_bytes() > 0).then(column).alias(name))
    blank = pl.all_horizontal(pl.col(name).is_null() for name in names)
    return page.filter(~blank).select(columns)
