"""Pages of one slice, as Salesforce sent them, made ready for COPY: the CPU-bound part of staging.

A slice's thread downloads pages as bytes and groups them into batches of about `chunk_size`
records (whole pages, so that a batch ends where a cursor or locator can resume). Everything
after that is pure computation, here: decoding (REST JSON or Bulk 2.0 CSV), transforming,
serialising for COPY. It needs no connection, no session and no secret, so it can run in another
process (`page_workers`), where the slices' parsing spreads over the machine's cores instead of
taking turns on the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from salesforce_pipeline.column_chunk import ColumnChunk
from salesforce_pipeline.transform import Reject, transform_columns

#: REST pages a slice downloads ahead while its current batch is prepared (the batch's own pages
#: are downloaded as it fills). Each holds about 1.6 MB of JSON (2,000 Contacts) in the task's
#: memory, and is one more page a killed load read for nothing. One kept latency as hidden as two
#: did (the bench's 80 ms load at 0.42x its floor, against 0.44x), for a few MB less.
PAGES_AHEAD = 1

#: The kinds of page a batch holds.
REST_JSON = "rest_json"
BULK_CSV = "bulk_csv"


@dataclass(frozen=True)
class PageFormat:
    """What every batch of one load shares: the fields read, how each converts, the columns
    written and the lineage every row carries."""

    fields: tuple[str, ...]
    kinds: Mapping[str, str]
    key_prefix: str
    data_columns: tuple[str, ...]
    extracted_at: datetime
    dag_run_id: str
    encoding: str
    chunk_size: int


@dataclass
class PageBatch:
    """Whole pages of one slice, as their bodies: REST query pages (JSON) or one Bulk results page."""

    kind: str
    bodies: list[bytes]
    records: int = 0  # as counted when the pages arrived (REST); a Bulk page is counted when parsed


@dataclass
class BatchTotals:
    """What preparing a batch found, besides the COPY payloads it handed on."""

    records: int = 0
    rows: int = 0
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    last_id: str | None = None  # the Id of the batch's last record, as Salesforce sent them


def prepare_batch(fmt: PageFormat, batch: PageBatch, emit: Callable[[bytes], None]) -> BatchTotals:
    """Decode, transform and serialise `batch`, a chunk of at most ``fmt.chunk_size`` records at a
    time, calling `emit` with each chunk's COPY payload as soon as it is ready (memory holds one
    chunk, not the batch). Raises ValueError for a page that is not what its kind says."""
    if batch.kind == REST_JSON:  # in polars, without the GIL (frame_prepare)
        from salesforce_pipeline import frame_prepare

        return frame_prepare.prepare_batch(fmt, batch, emit)
    from salesforce_pipeline.copy_format import copy_bytes

    totals = BatchTotals()
    constants = (fmt.extracted_at, fmt.dag_run_id)
    for chunk in _chunks(fmt, batch):
        if not chunk.count:
            continue
        totals.records += chunk.count
        totals.last_id = _last_id(chunk) or totals.last_id
        result = transform_columns(chunk, fmt.fields, fmt.kinds, key_prefix=fmt.key_prefix)
        del chunk
        totals.rejects.extend(result.rejects)
        totals.duplicates += result.duplicates_dropped
        if not result.frame.empty:
            totals.rows += len(result.frame)
            emit(copy_bytes(result.frame, fmt.data_columns, constants, fmt.encoding).getvalue())
        del result
    return totals


def preload() -> None:
    """Import what preparing a batch imports when first needed (pandas, numpy, msgspec and the
    decoders): about 0.25 s a worker process spends as it starts, while its task still plans and
    downloads the first pages, instead of inside the first batch a slice waits for."""
    import msgspec  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    from pandas.api.types import infer_dtype  # noqa: F401

    from salesforce_pipeline import bulk_csv, copy_format, rest_columns  # noqa: F401


def _last_id(chunk: ColumnChunk) -> str | None:
    ids = chunk.columns.get("Id", ())
    return next((value for value in reversed(ids) if isinstance(value, str)), None)


def _chunks(fmt: PageFormat, batch: PageBatch) -> Iterator[ColumnChunk]:
    if batch.kind != BULK_CSV:
        raise ValueError(f"unknown kind of page batch: {batch.kind!r}")
    from salesforce_pipeline.bulk_csv import bulk_page_chunks

    while batch.bodies:  # each page goes once the parser has it
        yield from bulk_page_chunks(batch.bodies.pop(0), fmt.fields, fmt.chunk_size)


class RawPage:
    """A REST query page kept as its body, its records counted: what the hook hands a slice."""

    __slots__ = ("body", "records")

    def __init__(self, body: bytes, records: int) -> None:
        self.body = body
        self.records = records

    def __len__(self) -> int:
        return self.records


class RawPageReader:
    """A hook page decoder (`PageDecoder`) that reads only a REST page's envelope: ``done``,
    ``nextRecordsUrl`` and how many records, skipping over each record without building it (about
    1 GB/s). The body is checked to be well-formed JSON, so a page cut short is fetched again at
    once, as with a full decode; the records themselves are decoded where the batch is prepared."""

    def __init__(self) -> None:
        import msgspec

        envelope = msgspec.defstruct(
            "QueryEnvelope",
            [
                ("records", list[msgspec.Raw], msgspec.field(default_factory=list)),
                ("done", bool, True),
                ("nextRecordsUrl", str | None, None),
            ],
        )
        self._decoder = msgspec.json.Decoder(envelope)
        self._error = msgspec.DecodeError

    def __call__(self, content: bytes) -> tuple[RawPage, bool, str | None]:
        """A page's body as ``(RawPage, done, nextRecordsUrl)``; ValueError when it is broken."""
        try:
            envelope: Any = self._decoder.decode(content)  # a QueryEnvelope, a struct made at run time
        except self._error as exc:
            raise ValueError(f"not a query result: {exc}") from None
        return RawPage(content, len(envelope.records)), envelope.done, envelope.nextRecordsUrl


def rest_batches(
    pages: Iterator[tuple[RawPage, str | None]], chunk_size: int
) -> Iterator[tuple[PageBatch, str | None]]:
    """Whole REST pages grouped into batches of at least `chunk_size` records (the last may hold
    fewer), each with the cursor after its last page (None after the query's last page)."""
    bodies: list[bytes] = []
    records = 0
    for page, next_url in pages:
        bodies.append(page.body)
        records += page.records
        del page
        if next_url is None or records >= chunk_size:
            yield PageBatch(REST_JSON, bodies, records), next_url
            bodies, records = [], 0
