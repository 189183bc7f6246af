"""Extract one object's records for a window: field planning, SOQL, and bounded chunks.

Pure functions plan the fields (against describe) and build the SOQL; the chunk generators
stream REST pages or Bulk API 2.0 CSV pages through the hook as column chunks of the selected
fields, holding at most one chunk (plus the page it is cut from).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import operator
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.objects import REQUIRED_FIELDS, ObjectSpec
from salesforce_pipeline.prefetch import prefetched
from salesforce_pipeline.settings import SettingsError, is_soql_identifier
from salesforce_pipeline.transform import (
    ColumnChunk,
    kind_for,
    postgres_type,
    snake_case,
)

if TYPE_CHECKING:
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """The SystemModstamp range one run reads. `start` None means all of history."""

    start: datetime | None
    end: datetime | None

    def soql_condition(self) -> str:
        conditions = []
        if self.start is not None:
            conditions.append(f"SystemModstamp >= {soql_datetime(self.start)}")
        if self.end is not None:
            conditions.append(f"SystemModstamp < {soql_datetime(self.end)}")
        return " AND ".join(conditions)

    def describe(self) -> str:
        start = soql_datetime(self.start) if self.start else "beginning"
        end = soql_datetime(self.end) if self.end else "now"
        return f"[{start}, {end})"


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC)."""
    if moment.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incremental_window(interval_start: datetime, interval_end: datetime, lookback: timedelta) -> Window:
    """A run owns [start, end) of its data interval, re-reading `lookback` before the start,
    since a record can commit with a SystemModstamp earlier than a query that already ran."""
    return Window(start=interval_start - lookback, end=interval_end)


# A full refresh has no upper bound: anything newer than the interval is still the truth, and the
# upsert guard keeps it; bounding it would make rows changed since look deleted.
FULL_REFRESH_WINDOW = Window(start=None, end=None)


@dataclass
class FieldPlan:
    """What to select for one object, how to read each field, and what was left out."""

    fields: list[str]
    kinds: dict[str, str]
    hidden_defaults: list[str] = field(default_factory=list)
    extra_columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [snake_case(f) for f in self.fields]


def plan_fields(
    spec: ObjectSpec,
    describe: Mapping[str, Any],
    extra_fields: Sequence[str],
    describe_related: Callable[[str], Mapping[str, Any]],
) -> FieldPlan:
    """Check the field list against describe before anything is extracted.

    Default fields that describe does not show (field-level security, or an edition without
    them) are left out with a warning and their columns stay null. A configured extra field
    that describe does not show is an error: someone asked for it by name.
    """
    by_name = {f["name"]: f for f in describe.get("fields", [])}
    kinds: dict[str, str] = {}
    selected: list[str] = []
    hidden: list[str] = []
    for name in spec.default_fields:
        described = by_name.get(name)
        if described is None:
            if name in REQUIRED_FIELDS:
                raise SettingsError(
                    f"{spec.name}.{name} is not visible to the integration user; the pipeline needs it. "
                    f"Grant read access to {spec.name}.{name} in the user's permission set."
                )
            hidden.append(name)
            continue
        selected.append(name)
        kinds[name] = kind_for(described["type"])

    extra_columns: list[tuple[str, str]] = []
    default_columns = {snake_case(n) for n in spec.default_fields}
    for name in extra_fields:
        if not is_soql_identifier(name):
            raise SettingsError(f"{name!r} is not a SOQL field name")
        if name in selected:
            continue
        described = _describe_path(spec, name, by_name, describe_related)
        if described.get("type") in ("address", "location"):
            raise SettingsError(
                f"{spec.name}.{name} is a compound field, which cannot be extracted as one column; "
                "configure its components instead (e.g. BillingCity, BillingPostalCode)"
            )
        selected.append(name)
        kinds[name] = kind_for(described["type"])
        column = snake_case(name)
        if column in default_columns:
            raise SettingsError(f"Extra field {name!r} maps to column {column!r}, which a default field uses")
        extra_columns.append((column, postgres_type(kinds[name])))
    return FieldPlan(fields=selected, kinds=kinds, hidden_defaults=hidden, extra_columns=extra_columns)


def _describe_path(spec, name, by_name, describe_related) -> Mapping[str, Any]:
    if "." not in name:
        described = by_name.get(name)
        if described is None:
            raise SettingsError(
                f"Configured extra field {spec.name}.{name} does not exist or is not visible to the "
                f"integration user (checked against describe). Check the API name (custom fields end in "
                f"__c) or grant field-level security, or remove it from extra_fields.{spec.name}."
            )
        return described
    relationship, _, rest = name.partition(".")
    reference = next(
        (f for f in by_name.values() if f.get("relationshipName") == relationship and f.get("referenceTo")),
        None,
    )
    if reference is None:
        raise SettingsError(
            f"Configured extra field {spec.name}.{name}: {relationship!r} is not a relationship of "
            f"{spec.name} (checked against describe)"
        )
    parent = describe_related(reference["referenceTo"][0])
    parent_fields = {f["name"]: f for f in parent.get("fields", [])}
    if "." in rest:
        raise SettingsError(
            f"Configured extra field {spec.name}.{name}: only one relationship level is supported"
        )
    described = parent_fields.get(rest)
    if described is None:
        raise SettingsError(
            f"Configured extra field {spec.name}.{name}: {reference['referenceTo'][0]} has no field {rest!r} "
            "visible to the integration user"
        )
    return described


def build_soql(spec: ObjectSpec, fields: Sequence[str], window: Window) -> str:
    condition = window.soql_condition()
    where = f" WHERE {condition}" if condition else ""
    return f"SELECT {', '.join(fields)} FROM {spec.name}{where}"


def build_count_soql(spec: ObjectSpec, window: Window, *, live_only: bool = False) -> str:
    conditions = [c for c in (window.soql_condition(), "IsDeleted = false" if live_only else "") if c]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT COUNT() FROM {spec.name}{where}"


def estimate_api_calls(record_count: int, method: str, *, rest_batch_size: int, bulk_page_size: int) -> int:
    """Calls an extraction of `record_count` records will cost, for the budget check."""
    if method == "bulk2":
        # create + a few polls + one results call per page
        return 1 + BULK_POLLS_ESTIMATE + bulk_page_calls(record_count, bulk_page_size)
    return max(1, math.ceil(record_count / rest_batch_size))


#: Status polls a Bulk 2.0 job is expected to need; the budget check counts them, and a job
#: that needs more may spend whatever the run's budget has left (and is aborted past that).
BULK_POLLS_ESTIMATE = 5


def bulk_page_calls(record_count: int, bulk_page_size: int) -> int:
    """Results-page calls a Bulk 2.0 job of `record_count` records costs."""
    return max(1, math.ceil(record_count / bulk_page_size))


class Progress:
    """Logs records, pages and rate every few thousand records, for the people watching the task."""

    def __init__(self, sobject: str, every: int = 5000) -> None:
        self.sobject = sobject
        self.every = every
        self.records = 0
        self.pages = 0
        self.started = time.monotonic()
        self._next_report = every

    def page(self, records: int) -> None:
        self.pages += 1
        self.records += records
        if self.records >= self._next_report:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            log.info(
                "%s: extracted %d records in %d pages (%.0f records/s)",
                self.sobject,
                self.records,
                self.pages,
                self.records / elapsed,
            )
            self._next_report = (self.records // self.every + 1) * self.every


class RestColumnDecoder:
    """Decodes a REST query page straight into the columns of the selected fields.

    msgspec decodes each record into a struct with one slot per selected top-level name, skipping
    `attributes` and never building a dict per record; one C-level map per field makes the
    columns. That is several times the speed of json.loads + a dict per record + flattening.
    A body msgspec rejects is decoded by `json.loads` instead, with the same result.

    Values are taken as sent: transform checks each against its field's kind, so an object where
    a scalar belongs is rejected with why. A relationship field (`Account.Name`) is read from its
    parent object, and is null when the parent is null (or not an object).
    """

    def __init__(self, fields: Sequence[str]) -> None:
        import msgspec

        self.fields = list(fields)
        self._tops = list(dict.fromkeys(name.split(".", 1)[0] for name in self.fields))
        self._related = {name: tuple(name.split(".", 1)) for name in self.fields if "." in name}
        # Slots get safe attribute names; `rename` maps them to the JSON keys (API names).
        slots = [f"f{position}" for position in range(len(self._tops))]
        record = msgspec.defstruct(
            "QueryRecord",
            [(slot, Any, None) for slot in slots],
            rename=dict(zip(slots, self._tops, strict=True)),
            gc=False,
        )
        page = msgspec.defstruct(
            "QueryPage",
            [
                ("records", list[record], msgspec.field(default_factory=list)),  # type: ignore[valid-type]
                ("done", bool, True),
                ("nextRecordsUrl", str | None, None),
            ],
        )
        self._decoder = msgspec.json.Decoder(page)
        self._decode_error = msgspec.DecodeError  # ValidationError is one too
        self._slot_values = [operator.attrgetter(slot) for slot in slots]

    def __call__(self, content: bytes) -> tuple[ColumnChunk, bool, str | None]:
        try:
            page = self._decoder.decode(content)
        except self._decode_error:
            return self._plain(content)
        # One C-level map per field: no tuple or dict per record.
        by_top = {
            top: list(map(values_of, page.records))
            for top, values_of in zip(self._tops, self._slot_values, strict=True)
        }
        return self._columns(len(page.records), by_top), page.done, page.nextRecordsUrl

    def _plain(self, content: bytes) -> tuple[ColumnChunk, bool, str | None]:
        from salesforce_pipeline.hooks.pages import records_page

        records, done, next_url = records_page(content)  # ValueError for a broken body: refetched
        if not isinstance(records, list) or not all(type(record) is dict for record in records):
            raise ValueError("a query result's records are JSON objects")
        by_top = {top: [record.get(top) for record in records] for top in self._tops}
        return self._columns(len(records), by_top), done, next_url

    def _columns(self, count: int, by_top: dict[str, list[Any]]) -> ColumnChunk:
        columns: dict[str, Sequence[Any]] = {}
        for name in self.fields:
            if name in self._related:
                top, child = self._related[name]
                columns[name] = [
                    parent.get(child) if type(parent) is dict else None for parent in by_top[top]
                ]
            else:
                columns[name] = by_top[name]
        return ColumnChunk(count, columns)


class ChunkBuffer:
    """Regroups column pages of any size into chunks of exactly `chunk_size` (the last may be
    smaller), holding at most one chunk plus one page."""

    def __init__(self, fields: Sequence[str], chunk_size: int) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.fields = list(fields)
        self.chunk_size = chunk_size
        self._pending: list[ColumnChunk] = []
        self._count = 0

    def add(self, page: ColumnChunk) -> Iterator[ColumnChunk]:
        """Take one page; yield every full chunk it completes."""
        if page.count:
            self._pending.append(page)
            self._count += page.count
        while self._count >= self.chunk_size:
            yield self._take(self.chunk_size)

    def flush(self) -> Iterator[ColumnChunk]:
        if self._count:
            yield self._take(self._count)

    def _take(self, size: int) -> ColumnChunk:
        if len(self._pending) == 1 and self._pending[0].count == size:
            chunk = self._pending.pop()
            self._count = 0
            return chunk
        parts, taken = [], 0
        while taken < size:
            page = self._pending[0]
            wanted = size - taken
            if page.count <= wanted:
                parts.append(self._pending.pop(0))
                taken += page.count
            else:  # split the page: its head completes this chunk, its tail waits for the next
                head = {name: page.columns[name][:wanted] for name in self.fields}
                tail = {name: page.columns[name][wanted:] for name in self.fields}
                parts.append(ColumnChunk(wanted, head))
                self._pending[0] = ColumnChunk(page.count - wanted, tail)
                taken += wanted
        self._count -= size
        columns = {
            name: list(itertools.chain.from_iterable(part.columns[name] for part in parts))
            for name in self.fields
        }
        return ColumnChunk(size, columns)


def rest_chunks(
    hook: SalesforcePipelineHook,
    soql: str,
    fields: Sequence[str],
    *,
    chunk_size: int,
    batch_size: int,
    progress: Progress,
) -> Iterator[ColumnChunk]:
    """queryAll pages (deletes included) regrouped into column chunks of at most `chunk_size`.

    The next page is fetched (and decoded) in a background thread while this one is transformed
    and loaded; at most one page waits.
    """
    buffer = ChunkBuffer(fields, chunk_size)
    pages = hook.query_pages(
        soql, include_deleted=True, batch_size=batch_size, decoder=RestColumnDecoder(fields)
    )
    for page in prefetched(pages, depth=1, name="salesforce page prefetch"):
        progress.page(len(page))
        yield from buffer.add(page)
    yield from buffer.flush()


def bulk_chunks(
    hook: SalesforcePipelineHook,
    soql: str,
    fields: Sequence[str],
    *,
    chunk_size: int,
    page_size: int,
    poll_seconds: float,
    progress: Progress,
    **job_options: Any,
) -> Iterator[ColumnChunk]:
    """A Bulk API 2.0 queryAll job's CSV pages, as column chunks of at most `chunk_size`.

    `job_options` go to the hook's job (`max_polls`, `max_wait`, `resume_job_id`, `on_job_created`).
    Pages are large (`page_size` records, one API call each) to spend few calls; a page's rows
    are parsed only a chunk at a time, and the page is held as the bytes received (never one
    decoded string), so a page's bytes are the most held at once.
    """
    # Not read ahead (as REST pages are): measured at 1,000,000 Contacts, reading the next page
    # while this one is parsed saved 10-15% of the time but held a second page of tens of MB,
    # and the peak went over 300 MB (325 MB against 290). A page is one bytes object, freed only
    # once fully parsed.
    for page in hook.bulk2_query_csv_pages(
        soql, include_deleted=True, max_records=page_size, poll_interval=poll_seconds, **job_options
    ):
        chunks = bulk_page_chunks(page, fields, chunk_size)
        del page  # the parser holds the page now, and lets it go once it is read
        page_records = 0
        for chunk in chunks:
            page_records += chunk.count
            yield chunk
        progress.page(page_records)


def bulk_page_chunks(content: bytes, fields: Sequence[str], chunk_size: int) -> Iterator[ColumnChunk]:
    """One Bulk API 2.0 result page (CSV with a header row, as received) as column chunks of `fields`.

    Bulk CSV writes null as an empty field: it becomes None, as in the JSON API. A field the
    header lacks is all None (as a record without that key would be). Every record is first
    checked to have as many fields as the header (`csv_shape_problem`), then parsed by pandas'
    C reader a chunk at a time, column by column. That reader is about twice the speed of the
    csv module, and its strings are made a column at a time, so each column's text sits together
    in memory and transform and the COPY serialiser, which walk a column at a time, run about a
    third faster over it than over strings made row by row. It is lenient where the csv module
    is strict (it pads a short row, and reads text after a closing quote): the shape check fails
    those pages first. NUL characters are dropped, as simple-salesforce does.
    """
    import numpy as np
    import pandas as pd

    if b"\x00" in content:
        content = content.replace(b"\x00", b"")
    header_end = content.find(b"\n")
    header_line = (content if header_end < 0 else content[:header_end]).decode("utf-8")
    try:
        header = next(csv.reader([header_line.rstrip("\r")], strict=True), None)
    except csv.Error as exc:
        raise ValueError(
            f"Bulk API 2.0 result page is malformed: its header row is not CSV ({exc})"
        ) from None
    if not header:
        return
    width = len(header)
    problem = csv_shape_problem(content, width)
    if problem is not None:
        raise ValueError(f"Bulk API 2.0 result page is malformed: {problem} (truncated download?)")
    position_of = {name: position for position, name in enumerate(header)}  # the last one, as dict() keeps
    # Position 0 always, so that rows are still counted when no selected field is in the header.
    wanted = sorted({position_of[name] for name in fields if name in position_of} | {0})
    reader = pd.read_csv(
        io.BytesIO(content),
        header=None,
        skiprows=1,
        names=list(range(width)),
        usecols=wanted,
        dtype=object,
        na_filter=False,  # text as sent: "NA", "null" or "" stay strings ("" is made None below)
        encoding="utf-8",
        engine="c",
        chunksize=chunk_size,
    )
    del content
    with reader:
        for frame in reader:
            count = len(frame)
            if not count:  # a page of just the header
                continue
            columns: dict[str, Sequence[Any]] = {}
            for name in fields:
                position = position_of.get(name)
                if position is None:
                    columns[name] = (None,) * count
                    continue
                values = frame[position].to_numpy(dtype=object)  # read-only: the frame's own
                empty = values == ""
                if empty.any():
                    values = np.where(empty, None, values)
                columns[name] = values.tolist()
            del frame
            yield ColumnChunk(count, columns)


_SHAPE_CHECK_BLOCK = 1 << 20
_QUOTE, _COMMA, _LF, _CR = b'",\n\r'


def csv_shape_problem(content: bytes, width: int, *, block_size: int = _SHAPE_CHECK_BLOCK) -> str | None:
    """Why `content` is not comma-separated records of exactly `width` fields each, or None.

    RFC 4180 as Salesforce writes it: a quote opens a field (after a comma, a line end or the
    start) and closes it (before a comma, a line end or the end); a doubled quote inside is one
    quote, so a byte is inside a quoted field when the quotes before it are odd in number.
    Blank lines are not records (pandas' reader skips them). Vectorised with numpy over the
    positions of the four bytes that matter, a block of `block_size` bytes at a time (the state
    is carried across blocks), so it costs a few passes over the page and a few MB, not a loop
    per field.
    """
    import numpy as np

    data = np.frombuffer(content, dtype=np.uint8)
    size = len(data)

    def followed_by(positions, allowed) -> bool:  # the byte after each position is allowed (or none is)
        following = data[positions[positions + 1 < size] + 1]
        return bool(np.logical_or.reduce([following == byte for byte in allowed]).all())

    quotes_odd = 0  # the quotes before the block, mod 2
    carried_commas = 0  # separators of the record the previous block ended in
    carried_bytes = 0  # bytes of that record so far (to tell a blank line)
    for start in range(0, size, block_size):
        block = data[start : start + block_size]
        positions = np.flatnonzero((block == _QUOTE) | (block == _COMMA) | (block == _LF) | (block == _CR))
        kinds = block[positions]
        positions += start
        is_quote = kinds == _QUOTE
        inside = (np.cumsum(is_quote, dtype=np.uint8) + quotes_odd) & 1  # after each of those bytes
        if len(inside):
            quotes_odd = int(inside[-1])
        if not followed_by(positions[is_quote & (inside == 0)], (_QUOTE, _COMMA, _LF, _CR)):
            return "text follows a closing quote"
        opening = positions[is_quote & (inside == 1)]
        preceding = data[opening[opening > 0] - 1]
        if not ((preceding == _QUOTE) | (preceding == _COMMA) | (preceding == _LF)).all():
            return "a quote inside a field that does not start with one"
        outside = inside == 0
        if not followed_by(positions[(kinds == _CR) & outside], (_LF,)):  # pandas would end a record there
            return "a carriage return outside quotes that does not end a line"
        ends = positions[(kinds == _LF) & outside]
        separators = positions[(kinds == _COMMA) & outside]
        if len(ends):
            commas = np.diff(np.searchsorted(separators, ends), prepend=0)
            commas[0] += carried_commas
            lengths = np.diff(ends, prepend=start - 1) - 1
            lengths[0] += carried_bytes
            blank = (lengths == 0) | ((lengths == 1) & (data[np.maximum(ends - 1, 0)] == _CR))
            wrong = np.flatnonzero((commas != width - 1) & ~blank)
            if len(wrong):
                return f"a row has {int(commas[wrong[0]]) + 1} fields, the header has {width}"
            carried_commas = len(separators) - int(np.searchsorted(separators, ends[-1]))
            carried_bytes = start + len(block) - int(ends[-1]) - 1
        else:
            carried_commas += len(separators)
            carried_bytes += len(block)
    if quotes_odd:
        return "it ends inside a quoted field"
    last_is_blank = carried_bytes == 0 or (carried_bytes == 1 and data[-1] == _CR)
    if not last_is_blank and carried_commas != width - 1:
        return f"a row has {carried_commas + 1} fields, the header has {width}"
    return None
