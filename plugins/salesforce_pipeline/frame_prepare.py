"""A batch of pages made ready for COPY in polars, which does most of it without the GIL.

Decode (`batch_frame`), convert and check each column (`frame_rules`), reject what cannot be loaded
with every reason and its raw record, keep the latest version per Id, write COPY's text format.
The slices of a large load prepare their batches in their own threads at once, on every core,
where pandas made them take turns (docs/large-loads.md). The same payloads as the pandas path
(`transform_columns`, `copy_bytes`), which the sweep and the formula refresh still take
(tests/plugins/salesforce_pipeline/test_frame_prepare.py).
"""

from __future__ import annotations

import codecs
import functools
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from salesforce_pipeline import frame_rules
from salesforce_pipeline.batch_frame import bulk_page_frame, rest_page_frame
from salesforce_pipeline.copy_format import lineage_fields
from salesforce_pipeline.frames import pl
from salesforce_pipeline.objects import REQUIRED_FIELDS
from salesforce_pipeline.page_batch import BULK_CSV, REST_JSON, BatchTotals, PageBatch, PageFormat
from salesforce_pipeline.rest_columns import RestColumnDecoder
from salesforce_pipeline.transform import reject

_COPY_DATETIME = "%Y-%m-%dT%H:%M:%S%.6fZ"
_ESCAPED = ["\\", "\t", "\n", "\r"]
_ESCAPES = ["\\\\", "\\t", "\\n", "\\r"]


def prepare_batch(fmt: PageFormat, batch: PageBatch, emit: Callable[[bytes], None]) -> BatchTotals:
    """Decode, check and serialise a batch of pages (REST JSON, or a Bulk 2.0 results page), calling
    `emit` with each COPY payload of at most ``fmt.chunk_size`` rows; returns what it found. Each
    page is converted on its own and its body let go, unless a REST record of it is rejected: the
    raw record is then read from the body as it was sent. Raises ValueError for a page that is not
    what its kind says."""
    if batch.kind not in (REST_JSON, BULK_CSV):
        raise ValueError(f"unknown kind of page batch: {batch.kind!r}")
    totals = BatchTotals()
    kept: list[pl.DataFrame] = []
    while batch.bodies:
        kept.append(_page(fmt, batch.kind, batch.bodies.pop(0), totals))
    frame = pl.concat(kept) if len(kept) > 1 else (kept[0] if kept else pl.DataFrame())
    del kept
    if len(frame) and frame["id"].n_unique() != len(frame):
        before = len(frame)
        frame = (
            frame.with_row_index("_arrival")
            .sort("system_modstamp", maintain_order=True)
            .unique("id", keep="last", maintain_order=True)
            .sort("_arrival")
            .drop("_arrival")
        )
        totals.duplicates = before - len(frame)
    totals.rows = len(frame)
    # A chunk at a time: no COPY payload holds more than `chunk_size` rows.
    for start in range(0, totals.rows, max(fmt.chunk_size, 1)):
        emit(_copy_text(frame.slice(start, fmt.chunk_size), (fmt.extracted_at, fmt.dag_run_id), fmt.encoding))
    del frame
    _release_freed_memory()
    return totals


def _page(fmt: PageFormat, kind: str, body: bytes, totals: BatchTotals) -> pl.DataFrame:
    """One page's rows converted, its rejected records and counts added to `totals`."""
    problems: dict[int, list[str]]
    if kind == BULK_CSV:
        # A results page is tens of MB, and its text is all in the frame now: let it go.
        raw, problems, body = bulk_page_frame(body, fmt.fields), {}, b""
    else:
        raw, problems = rest_page_frame(body, fmt.fields)
    totals.records += len(raw)
    ids = raw["Id"].drop_nulls() if "Id" in raw.columns else pl.Series([], dtype=pl.String)
    totals.last_id = ids[-1] if len(ids) else totals.last_id
    frame = _converted(fmt, raw, problems)
    if problems:
        records = _as_sent(kind, raw, body, fmt.fields)
        totals.rejects.extend(
            reject(records, position, reasons) for position, reasons in sorted(problems.items())
        )
        frame = frame.filter(pl.Series([position not in problems for position in range(len(frame))]))
    return frame


def _as_sent(kind: str, raw: pl.DataFrame, body: bytes, fields: Sequence[str]) -> Mapping[str, Sequence[Any]]:
    """The page's records as Salesforce sent them, by field: a Bulk page's text is all in the
    frame; a REST page's numbers and booleans are text there, so it is read again from its body."""
    if kind == BULK_CSV:
        return raw.to_dict(as_series=False)
    return RestColumnDecoder(fields)(body)[0].columns


def _converted(fmt: PageFormat, raw: pl.DataFrame, problems: dict[int, list[str]]) -> pl.DataFrame:
    """Every column converted by its kind (one `select` for the page), named as in the table; the
    reasons a row cannot be loaded added to `problems`."""
    kinds = tuple(
        "datetime" if name == "SystemModstamp" else fmt.kinds.get(name, "text") for name in fmt.fields
    )
    plans, convert, check = _conversion(fmt.fields, kinds, fmt.data_columns)
    checked = raw.with_columns(convert).select(check)
    masks = checked.columns[len(plans) :]
    odd = checked.select(pl.col(mask).not_().sum() for mask in masks).row(0)
    columns = {}
    for position, (name, column, kind) in enumerate(zip(fmt.fields, fmt.data_columns, kinds, strict=True)):
        values = checked[column]
        if odd[position] or kind == "id":
            prefix = fmt.key_prefix if name == "Id" else None
            values, found = frame_rules.finish(
                raw[name], values, checked[masks[position]], plans[position], kind, name, prefix
            )
            for row, reason in found.items():
                problems.setdefault(row, []).append(reason)
        columns[column] = values
    for required in REQUIRED_FIELDS:
        if required in raw.columns and raw[required].null_count():
            for row in raw[required].is_null().arg_true().to_list():
                problems.setdefault(row, []).append(f"{required}: missing")
    return pl.DataFrame(columns)


@functools.lru_cache(maxsize=16)
def _conversion(
    fields: tuple[str, ...], kinds: tuple[str, ...], data_columns: tuple[str, ...]
) -> tuple[list[frame_rules.ColumnPlan], list[pl.Expr], list[pl.Expr]]:
    """The plans of a load's columns and the two steps that apply them to a page: each column's
    value, then the values under the table's names and each one's mask (so that a mask can use its
    column's converted value: a date parsed once). Built once per load, not per page: building
    expressions holds the GIL the slices share."""
    plans = [frame_rules.plan(kind, name) for kind, name in zip(kinds, fields, strict=True)]
    value_names = [f"_value_{position}" for position in range(len(plans))]
    convert = [p.value.alias(value) for p, value in zip(plans, value_names, strict=True)]
    check = [
        *(pl.col(value).alias(column) for value, column in zip(value_names, data_columns, strict=True)),
        *(
            p.canonical(pl.col(value)).alias(f"_canonical_{n}")
            for n, (p, value) in enumerate(zip(plans, value_names, strict=True))
        ),
    ]
    return plans, convert, check


def _copy_text(frame: pl.DataFrame, constants: tuple, encoding: str) -> bytes:
    """COPY's text format: tab-separated, `\\N` for null, backslash escapes in text, the lineage
    constants written once into a literal column."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    # COPY's four escapes, in the text columns that hold one of them: finding none costs half
    # of replacing (most columns of most chunks hold none).
    escaped = frame.select(pl.col(texts).str.contains_any(_ESCAPED).any()).row(0) if texts else ()
    needs_escape = {name for name, found in zip(texts, escaped, strict=True) if found}
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if name in needs_escape:  # one pass for COPY's four escapes
            column = column.str.replace_many(_ESCAPED, _ESCAPES)
        elif dtype == pl.Boolean:
            column = pl.when(column).then(pl.lit("t")).otherwise(pl.when(column.not_()).then(pl.lit("f")))
        columns.append(column.alias(name))
    lineage = lineage_fields(constants)  # "<extracted_at>\t<dag_run_id>", escaped
    buffer = io.BytesIO()
    frame.select([*columns, pl.lit(lineage).alias("_lineage")]).write_csv(
        buffer,
        include_header=False,
        separator="\t",
        quote_style="never",
        null_value="\\N",
        datetime_format=_COPY_DATETIME,
    )
    payload = buffer.getvalue()
    return payload if codecs.lookup(encoding).name == "utf-8" else payload.decode().encode(encoding)


def _release_freed_memory() -> None:
    """Give back to the system what the batch's Python objects freed (glibc's malloc_trim): each
    slice thread has a malloc arena of its own, which would keep it (at 1,000,000 Contacts, the
    REST load peaked at 373 MB with this and 394 MB without). Nothing elsewhere."""
    global _malloc_trim
    if _malloc_trim is None:
        import ctypes

        # The symbols already in the process, not ctypes.util.find_library: that forks the task
        # process (hundreds of MB, several threads) to run ldconfig.
        try:
            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None
