"""Helpers for the pipeline's unit tests: records as the pipeline's own stages take them.

Records are written here as dicts (flat, dotted relationship keys), which is how a reader thinks of
them; the helpers hand them to the stages the way extraction does (as a `ColumnChunk`), and write
frames the way `sync_object` does (prepared in this thread, written by the writer thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from salesforce_emulator.ids import checksum_suffix
from salesforce_pipeline.column_chunk import ColumnChunk
from salesforce_pipeline.transform import TransformResult, transform_columns
from salesforce_pipeline.writer import BackgroundWriter


def make_id(prefix: str, serial: int) -> str:
    """An 18-character Id of the object with key `prefix` (the emulator's checksum, written apart
    from the pipeline's)."""
    id15 = f"{prefix}{serial:012d}"
    return id15 + checksum_suffix(id15)


def columns_of(records: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> ColumnChunk:
    """Records as the column chunk extraction hands over (None for a field a record lacks)."""
    rows = list(records)
    return ColumnChunk(len(rows), {name: [record.get(name) for record in rows] for name in fields})


def transform(
    records: Iterable[Mapping[str, Any]], fields: Sequence[str], kinds: Mapping[str, str], *, key_prefix: str
) -> TransformResult:
    """`transform_columns` over the records' columns."""
    return transform_columns(columns_of(records, fields), fields, kinds, key_prefix=key_prefix)


def write_frames(loader: Any, *frames: Any) -> int:
    """Load transformed frames as `sync_object` does; returns the rows written."""
    before = loader.upserted
    with BackgroundWriter("test writer") as writer:
        for frame in frames:
            prepared = loader.prepare_chunk(frame)
            if prepared is not None:
                writer.submit(loader.write_chunk, prepared)
    return loader.upserted - before
