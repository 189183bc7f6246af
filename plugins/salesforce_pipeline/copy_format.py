"""Rows in PostgreSQL's COPY text format, serialised column by column (vectorised where it can be).

Pure functions, no I/O: a transformed chunk (a pandas frame) becomes the bytes `COPY ... FROM
STDIN` reads, in the connection's encoding, one block of rows at a time.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_ENCODE_BLOCK_ROWS = 2000
_NULL = "\\N"
_BOOLEAN_TEXTS = {True: "t", False: "f", None: _NULL}
# Columns are escaped as one string, their values joined by a character no value holds: four
# C-level replaces instead of a Python call per value. Text reaching the loader holds no NUL
# (Postgres text cannot), and a column that somehow does is found by the split and takes the
# per-value path.
_SEPARATOR = "\x00"


def _escape(text: str) -> str:
    """COPY's text format: backslash escapes for the four characters that delimit it (the same
    object back when there is nothing to escape)."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text:
        text = text.replace("\t", "\\t")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _copy_value(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, bool):
        return _BOOLEAN_TEXTS[value]
    if value != value:  # NaN / NaT (NaT is a datetime too, so this comes first)
        return _NULL
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _escape_texts(values: np.ndarray) -> list[str] | None:
    """COPY text for an object array of str and nulls (None or NaN), or None when the column
    needs the per-value path. Nulls are found and filled by numpy, not a Python loop."""
    import numpy as np
    import pandas as pd

    nulls = pd.isna(values)
    has_nulls = bool(nulls.any())
    if has_nulls:
        values = values.copy()
        values[nulls] = ""
    filled = values.tolist()
    joined = _SEPARATOR.join(filled)
    escaped = _escape(joined)
    if escaped is joined:  # nothing to escape: the values as they are, unless one held the separator
        if _SEPARATOR in joined and joined.count(_SEPARATOR) != len(filled) - 1:
            return None
        parts = filled
    else:
        parts = escaped.split(_SEPARATOR)
        if len(parts) != len(filled):
            return None
    if not has_nulls:
        return parts
    texts = np.fromiter(parts, dtype=object, count=len(parts))
    texts[nulls] = _NULL
    return texts.tolist()


def _datetime_texts(column: pd.Series) -> list[str]:
    """ISO 8601 text for a datetime64 column, formatted by numpy in C.

    Aware columns are written in UTC with a `Z`; naive ones without an offset, as before (the
    server's TimeZone then applies).
    """
    import numpy as np

    aware = column.dt.tz is not None
    if aware:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = column.to_numpy(dtype="datetime64[us]")
    texts = np.datetime_as_string(stamps, unit="us", timezone="UTC" if aware else "naive")  # UTC: a Z suffix
    texts = texts.astype(object)
    texts[np.isnat(stamps)] = _NULL
    return texts.tolist()


def _column_texts(column: pd.Series) -> list[str]:
    """One column in COPY text form: vectorised for the dtypes transform produces, per value
    for anything else (mixed objects, numpy numbers), with the same rules as `_copy_value`."""
    from pandas.api.types import infer_dtype

    if column.dtype.kind == "M":
        return _datetime_texts(column)
    # Transform's columns hold Python values (None for null); anything else is made so.
    array = column.to_numpy() if column.dtype == object else column.to_numpy(dtype=object, na_value=None)
    kind = infer_dtype(array, skipna=True)
    if kind in ("string", "empty"):
        escaped = _escape_texts(array)
        if escaped is not None:
            return escaped
    values = array.tolist()
    if kind == "boolean":
        with contextlib.suppress(KeyError):  # a NaN among them: the per-value path below
            return list(map(_BOOLEAN_TEXTS.__getitem__, values))
    if kind == "integer":  # `_copy_value`'s rule for them, without a call per value
        return [_NULL if value is None else str(value) for value in values]
    return [_copy_value(value) for value in values]


def _column_blocks(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[list[list[str]], int]:
    return [_column_texts(frame[column]) for column in columns], len(frame)


def _join_rows(serialised: Sequence[Sequence[str]], start: int, stop: int, row_end: str) -> str:
    """Rows start..stop of column-wise COPY texts as one block of lines, each ending in `row_end`.

    Interleaves the columns with their separators by extended-slice assignment into one list
    and joins it once: C-level copying, and no tuple or string per row.
    """
    rows = stop - start
    width = len(serialised)
    pieces: list[str] = [""] * (rows * width * 2)
    tab = ["\t"] * rows
    for position, texts in enumerate(serialised):
        pieces[2 * position :: 2 * width] = texts[start:stop]
        pieces[2 * position + 1 :: 2 * width] = tab if position < width - 1 else [row_end] * rows
    return "".join(pieces)


def lineage_fields(constants: Sequence[Any]) -> str:
    """The values every row of a load ends with (its lineage), in COPY text format and joined by
    tabs: written once per chunk, not once per row, by both ways of preparing a chunk."""
    return "\t".join(_copy_value(constant) for constant in constants)


def _row_end(constants: Sequence[Any]) -> str:
    return (f"\t{lineage_fields(constants)}" if constants else "") + "\n"


def copy_bytes(
    frame: pd.DataFrame, columns: Sequence[str], constants: Sequence[Any], encoding: str
) -> io.BytesIO:
    """The frame's rows in COPY text format (tab-separated, `\\N` for null), each followed by
    `constants` (the same on every row), encoded block by block: the whole chunk never exists
    twice (as text and as bytes); text holding one emoji would even cost 4 bytes per character
    as one str."""
    buffer = io.BytesIO()
    serialised, count = _column_blocks(frame, columns)
    row_end = _row_end(constants)
    for start in range(0, count, _ENCODE_BLOCK_ROWS):
        stop = min(start + _ENCODE_BLOCK_ROWS, count)
        buffer.write(_join_rows(serialised, start, stop, row_end).encode(encoding))
    buffer.seek(0)
    return buffer
